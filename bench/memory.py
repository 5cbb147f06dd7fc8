"""Figure 4: Redis memory per session for the seed's mix, ours against the seed's one-key-per-item layout.

Each session holds a 300-byte user profile, an 8 KB conversation (natural-looking text, different in every
session) and 3 file records. Ours is written through the real :class:`RedisMetadataStore` (``create_session``,
``put_meta`` twice, ``apply_events`` for the 3 files, as the storage-event function records them); the seed's
layout is 5 string keys with ``EX``. Bytes per session = the ``used_memory`` delta (``INFO memory``) over all the
sessions, each layout in its own fresh redis-server.
"""

from __future__ import annotations

import random
import statistics
import time
from typing import Any

from bench.common import BUCKET, REGION, Result, Row, log, redis_server
from bench.reference.seed_layout import SEED_FILES, store_session
from bench.workload import conversation, etag, profile, session_ids

TTL = 86_400


def _documents(count: int) -> list[dict[str, bytes]]:
    rng = random.Random(4)
    return [{"user_profile": profile(rng), "conversation": conversation(rng)} for _ in range(count)]


def _settle(client: Any) -> int:
    """``used_memory`` once the server is idle (lazy frees and client buffers done)."""
    time.sleep(0.2)
    return int(client.info("memory")["used_memory"])


def measure_ours(
    url: str, sessions: list[str], documents: list[dict[str, bytes]], redis_config: dict[str, str] | None = None
) -> dict[str, Any]:
    from hera_sessions.backends.metadata.base import CheckedEvent, Limits
    from hera_sessions.backends.metadata.redis import RedisMetadataStore, encode_document
    from hera_sessions.core.models import EventKind

    store = RedisMetadataStore.from_url(url)
    client: Any = store.client
    for name, value in (redis_config or {}).items():
        client.config_set(name, value)
    limits = Limits(50, 200 * 1024 * 1024, 10 * 1024 * 1024)
    rng = random.Random(5)
    before = _settle(client)
    now = time.time()
    sequencer = 0x0062A3F1B2C4D5E600
    for session_id, docs in zip(sessions, documents, strict=True):
        store.create_session(session_id, now, TTL)
        for name, document in docs.items():
            store.put_meta(session_id, name, document, now, TTL)
        events = []
        for path in SEED_FILES:
            sequencer += 0x31
            events.append(
                CheckedEvent(
                    session_id=session_id,
                    path=path,
                    kind=EventKind.CREATED,
                    sequencer=f"{sequencer:018X}",
                    size=rng.randint(200_000, 4_000_000),
                    etag=etag(rng),
                    type_guess="image/png",
                    event_time=now,
                )
            )
        outcomes = store.apply_events(events, limits, now, TTL)
        assert all(outcome.value == "recorded" for outcome, _ in outcomes), outcomes
    after = _settle(client)
    sample = sessions[: min(200, len(sessions))]
    keys = {"session hash": "session:{%s}", "documents hash": "session:{%s}:meta"}
    usage = {
        label: statistics.mean(client.memory_usage(pattern % s, samples=0) for s in sample)
        for label, pattern in keys.items()
    }
    encodings = {label: client.object("encoding", pattern % sessions[0]).decode() for label, pattern in keys.items()}
    stored = [len(encode_document(d)) for docs in documents for d in docs.values()]
    raw = [len(d) for docs in documents for d in docs.values()]
    longest_field = max(len(v) for v in client.hvals(f"session:{{{sessions[0]}}}"))
    store.close()
    return {
        "bytes": (after - before) / len(sessions),
        "memory_usage_by_key": {k: round(v) for k, v in usage.items()},
        "encoding": encodings,
        "documents_raw_bytes": sum(raw) / len(sessions),
        "documents_stored_bytes": sum(stored) / len(sessions),
        "longest_session_hash_value": longest_field,
    }


def measure_seed(url: str, sessions: list[str], documents: list[dict[str, bytes]]) -> dict[str, Any]:
    import redis

    client: Any = redis.Redis.from_url(url)
    before = _settle(client)
    for session_id, docs in zip(sessions, documents, strict=True):
        pipe = client.pipeline(transaction=False)
        store_session(pipe, session_id, docs, SEED_FILES, TTL, BUCKET, REGION)
        pipe.execute()
    after = _settle(client)
    sample = sessions[: min(200, len(sessions))]
    names = {
        "user_profile": "session:%s:meta:user_profile",
        "conversation": "session:%s:meta:conversation",
        "file (each)": "session:%s:meta:file:photos/user.png",
    }
    usage = {
        label: statistics.mean(client.memory_usage(pattern % s, samples=0) for s in sample)
        for label, pattern in names.items()
    }
    client.close()
    return {"bytes": (after - before) / len(sessions), "memory_usage_by_key": {k: round(v) for k, v in usage.items()}}


def run(quick: bool) -> Result:
    count = 1_000 if quick else 10_000
    log(f"[memory] {count:,} sessions: 300 B profile + 8 KB conversation + 3 files each")
    sessions = session_ids(count, random.Random(3))
    documents = _documents(count)
    with redis_server() as server:
        ours = measure_ours(server.url, sessions, documents)
    with redis_server() as server:
        seed = measure_seed(server.url, sessions, documents)
    # What the Redis setting alone would buy: file records (~110 bytes of JSON) keep the session hash out of the
    # compact listpack encoding under the default hash-max-listpack-value (64 bytes).
    with redis_server() as server:
        listpack = measure_ours(server.url, sessions, documents, {"hash-max-listpack-value": "128"})
    log(f"[memory] ours {ours['bytes']:,.0f} B/session, seed layout {seed['bytes']:,.0f} B/session")
    log(f"[memory] ours with hash-max-listpack-value 128: {listpack['bytes']:,.0f} B/session")
    return Result(
        "redis_memory",
        "4. Redis memory per session",
        [Row("profile, 8 KB conversation, 3 files", "B/session", ours["bytes"], seed["bytes"], target=0.4)],
        {
            "sessions": count,
            "ours": ours,
            "seed_layout": seed,
            "ours_with_hash_max_listpack_value_128": listpack,
            "ratio_with_hash_max_listpack_value_128": round(listpack["bytes"] / seed["bytes"], 4),
        },
    )
