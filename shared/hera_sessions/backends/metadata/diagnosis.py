"""Redis's lines of ``hera-sessions doctor``: the container version's troubleshooting steps (``redis-cli ping``,
``info memory``, ``maxmemory-policy``) and what the session rules need (Redis 7, as deployed and tested; the
scripts load).

INFO is read from every primary of a Cluster (``INFO`` alone asks one node) and the worst node is reported.
``CONFIG GET`` is never used: ElastiCache and Memorystore refuse it; INFO carries ``maxmemory_policy``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from hera_sessions.core import rules
from hera_sessions.core.errors import HeraError
from hera_sessions.core.models import Check

if TYPE_CHECKING:
    from hera_sessions.backends.metadata.redis import RedisMetadataStore

#: The version the SAM template deploys (ElastiCache 7.1), Memorystore runs (redis_7_0) and the tests use.
TESTED_MAJOR = 7
#: used_memory / maxmemory from which a full Redis is near (noeviction then refuses writes: 503s).
WARN_RATIO, FAIL_RATIO = 0.80, 0.95
EVICTION_FIX = (
    "set maxmemory-policy to noeviction: ElastiCache, in the cluster's parameter group (the SAM template's "
    "RedisParameterGroup does); Memorystore, `gcloud redis instances update NAME --region R --update-redis-config "
    "maxmemory-policy=noeviction`; Azure Managed Redis, `az redisenterprise database update --cluster-name NAME "
    "-g RG --eviction-policy NoEviction`; your own Redis, `CONFIG SET maxmemory-policy noeviction` "
    "and the same line in redis.conf"
)


def _infos(store: RedisMetadataStore, section: str) -> dict[str, dict[str, Any]]:
    """INFO ``section`` by node address (one entry for a standalone Redis, one per primary in a Cluster)."""
    import redis

    client = store.client
    if isinstance(client, redis.RedisCluster):
        answer: dict[str, dict[str, Any]] = store._call(
            lambda: client.info(section, target_nodes=redis.RedisCluster.PRIMARIES)
        )
        return answer
    kwargs = client.connection_pool.connection_kwargs
    where = f"{kwargs.get('host', kwargs.get('path', '?'))}:{kwargs.get('port', '')}".rstrip(":")
    return {where: store._call(lambda: client.info(section))}


def redis_checks(store: RedisMetadataStore) -> list[Check]:
    try:
        store.ping()
        servers = _infos(store, "server")
    except HeraError as exc:
        return [
            Check(
                "redis:reachable",
                "fail",
                f"{exc.message} ({(exc.__cause__ or exc).__class__.__name__}: {exc.__cause__ or ''})",
                "check REDIS_URL (host, port, password, rediss:// for TLS), that this machine reaches it (VPC, "
                "security group, firewall), then `redis-cli -h HOST -a PASSWORD ping`",
            )
        ]
    kind = "embedded server" if store.embedded else f"{len(servers)} node(s)"
    checks = [Check("redis:reachable", "ok", f"PING answered by {', '.join(servers)} ({kind})")]
    checks.append(_version(servers))
    checks.append(_scripts(store))
    memory = _infos(store, "memory")
    checks.append(_memory(memory, store.embedded))
    checks.append(_eviction(memory))
    return checks


def _version(servers: dict[str, dict[str, Any]]) -> Check:
    versions = {node: str(info.get("redis_version", "?")) for node, info in servers.items()}
    lowest = min(versions.values(), key=lambda v: [int(p) if p.isdigit() else 0 for p in v.split(".")])
    flavour = " (Valkey)" if any("valkey_version" in info for info in servers.values()) else ""
    major = int(lowest.split(".")[0]) if lowest.split(".")[0].isdigit() else 0
    if major >= TESTED_MAJOR:
        return Check("redis:version", "ok", f"Redis {lowest}{flavour}")
    return Check(
        "redis:version",
        "warn",
        f"Redis {lowest}{flavour}: the session rules are deployed and tested on Redis {TESTED_MAJOR}",
        f"upgrade to Redis {TESTED_MAJOR} or newer (ElastiCache EngineVersion 7.1, Memorystore redis_7_0)",
    )


def _scripts(store: RedisMetadataStore) -> Check:
    """Load every script (SCRIPT LOAD caches it; nothing in the keyspace changes): the server runs our Lua."""
    from redis.exceptions import ResponseError

    def load(name: str) -> None:
        store._call(lambda: store.client.script_load(rules.script(name)))

    name = ""
    try:
        for name in rules.SCRIPTS:
            load(name)
    except (ResponseError, HeraError) as exc:
        return Check(
            "redis:scripts",
            "fail",
            f"the server refused the script {name!r}: {exc}",
            "use a Redis that runs Lua scripts (EVALSHA, SCRIPT LOAD); some proxies and 'Redis-compatible' "
            "services do not",
        )
    return Check("redis:scripts", "ok", f"the {len(rules.SCRIPTS)} session scripts load ({', '.join(rules.SCRIPTS)})")


def _memory(memory: dict[str, dict[str, Any]], embedded: bool) -> Check:
    def ratio(info: dict[str, Any]) -> float:
        limit = int(info.get("maxmemory", 0))
        return int(info.get("used_memory", 0)) / limit if limit else 0.0

    node, info = max(memory.items(), key=lambda item: ratio(item[1]))
    used, limit = int(info.get("used_memory", 0)), int(info.get("maxmemory", 0))
    shown = f"used_memory {used / 2**20:.1f} MiB"
    if not limit:
        if embedded:
            return Check("redis:memory", "ok", f"{shown}, no maxmemory (local mode: bounded by this machine)")
        return Check(
            "redis:memory",
            "warn",
            f"{shown} on {node}, no maxmemory: Redis grows until the host runs out of memory",
            "set maxmemory (`CONFIG SET maxmemory 256mb`, and in redis.conf) so that a full Redis refuses writes "
            "(503, the memory alarm) instead of being killed; managed services set it from the node size",
        )
    share = used / limit
    detail = f"{shown} of maxmemory {limit / 2**20:.1f} MiB ({share:.0%}) on {node}"
    if share < WARN_RATIO:
        return Check("redis:memory", "ok", detail)
    fix = (
        "a bigger node (RedisNodeType), or shorter lifetimes (SESSION_TTL); with noeviction a full Redis "
        "refuses writes (503) until memory is freed"
    )
    return Check("redis:memory", "fail" if share >= FAIL_RATIO else "warn", detail, fix)


def _eviction(memory: dict[str, dict[str, Any]]) -> Check:
    policies = {node: str(info.get("maxmemory_policy", "?")) for node, info in memory.items()}
    wrong = {node: policy for node, policy in policies.items() if policy != "noeviction"}
    if not wrong:
        return Check("redis:eviction", "ok", "maxmemory-policy noeviction")
    shown = ", ".join(sorted(set(wrong.values())))
    return Check(
        "redis:eviction",
        "warn",
        f"maxmemory-policy {shown}: a full Redis silently evicts sessions, file records and erase markers "
        "(an erased session's late upload would then be recorded)",
        EVICTION_FIX,
    )
