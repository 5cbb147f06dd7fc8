"""Metadata in Redis (standalone or Cluster), through redis-py; one client per process.

Layout (the session id is the hash tag, so one session is one Cluster slot):

- ``session:{id}``         hash: ``@c`` creation time, ``f:<path>`` file records, ``t:<path>`` upload tickets
- ``session:{id}:meta``    hash: JSON documents by name, zlib-compressed when that makes them smaller
- ``session:{id}:erased``  string: the erase marker

Every write that checks state runs as one Lua script (:mod:`hera_sessions.core.rules`): one round trip, atomic.
A batch of storage events is one script call per session, all pipelined in a single round trip.
"""

from __future__ import annotations

import contextlib
import time
import zlib
from collections import defaultdict
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from hera_sessions.backends.metadata.base import (
    CheckedEvent,
    Limits,
    MetadataStore,
    dumps,
    record_from_field,
    record_to_field,
    records_from_fields,
    reservations_from_fields,
)
from hera_sessions.core import rules
from hera_sessions.core.errors import (
    FileExistsConflictError,
    GoneError,
    MetadataUnavailableError,
    NotFoundError,
    QuotaExceededError,
)
from hera_sessions.core.keys import redis_erased_key, redis_meta_key, redis_session_key
from hera_sessions.core.models import Check, FileRecord, Outcome, Reservation, SessionInfo, SessionSnapshot

if TYPE_CHECKING:
    import redis

T = TypeVar("T")

_OUTCOMES = {outcome.value: outcome for outcome in Outcome}
#: The most events of one session in one script call: the script reads and writes their fields in one command
#: each, and Lua's unpack() takes a few thousand values at most.
APPLY_MAX_EVENTS = 1000

#: Documents smaller than this are stored as they are (compression would not pay for its header).
COMPRESS_FROM = 200
_RAW, _ZLIB = b"j", b"z"


def encode_document(document: bytes) -> bytes:
    if len(document) >= COMPRESS_FROM:
        packed = zlib.compress(document, 6)
        if len(packed) < len(document):
            return _ZLIB + packed
    return _RAW + document


def decode_document(stored: bytes) -> bytes:
    return zlib.decompress(stored[1:]) if stored[:1] == _ZLIB else stored[1:]


def _seconds(pttl: int) -> float | None:
    """A PTTL answer in seconds; None for an absent key (-2). A key without expiry (-1) is shown as -1."""
    return None if pttl == -2 else (pttl / 1000 if pttl >= 0 else -1.0)


def connect(url: str, timeout: float, cluster: bool | None = None) -> redis.Redis | redis.RedisCluster:
    """One client from a URL; ``?cluster=true`` (or ``cluster=True``) makes it a Redis Cluster client."""
    from hera_sessions import lazy

    lazy.defer("redis.asyncio")  # the synchronous client only: redis-py's asyncio client stays off the cold start
    import redis
    from redis.backoff import ExponentialBackoff
    from redis.driver_info import DriverInfo
    from redis.retry import Retry

    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    cluster = cluster or query.pop("cluster", "").lower() in ("1", "true", "yes")
    url = urlunsplit(parts._replace(query=urlencode(query)))
    common: dict[str, Any] = {
        "socket_timeout": timeout,
        "socket_connect_timeout": timeout,
        "retry": Retry(ExponentialBackoff(cap=0.1, base=0.01), 1),
        # Given, redis-py does not look its own version up in the installed packages' metadata on the first
        # connection (importlib.metadata scans every folder on sys.path: 5-15 ms of a cold start).
        "driver_info": DriverInfo(lib_version=redis.__version__),
    }
    if cluster:
        return redis.RedisCluster.from_url(url, **common)
    return redis.Redis.from_url(url, health_check_interval=30, **common)


class RedisMetadataStore(MetadataStore):
    name = "redis"

    def __init__(
        self,
        client: redis.Redis | redis.RedisCluster,
        on_close: Callable[[], None] | None = None,
        *,
        embedded: bool = False,
    ) -> None:
        self.client = client
        self._on_close = on_close  # local mode: let go of the embedded server
        self.embedded = embedded  # local mode's own server (no maxmemory: bounded by this machine)
        self._reserve = client.register_script(rules.script("reserve"))
        self._apply = client.register_script(rules.script("apply"))
        self._write = client.register_script(rules.script("write"))
        self._replace = client.register_script(rules.script("replace_files"))

    @classmethod
    def from_url(cls, url: str, timeout: float = 1.0, cluster: bool | None = None) -> RedisMetadataStore:
        return cls(connect(url, timeout, cluster))

    @staticmethod
    def _keys(session_id: str) -> list[str]:
        return [redis_session_key(session_id), redis_meta_key(session_id), redis_erased_key(session_id)]

    def _call(self, fn: Callable[[], T]) -> T:
        """Run one Redis exchange; an unreachable or slow Redis becomes a 503, never a hang or a 500."""
        from redis.exceptions import (
            BusyLoadingError,
            ClusterError,
            ConnectionError,
            OutOfMemoryError,
            ReadOnlyError,
            TimeoutError,
            TryAgainError,
        )

        # Unreachable, slow, loading, failing over (READONLY, TRYAGAIN) or full (noeviction's OOM): all
        # conditions that pass, so all a 503 the client (or SQS) retries.
        try:
            return fn()
        except (
            ConnectionError,
            TimeoutError,
            BusyLoadingError,
            ClusterError,
            OutOfMemoryError,
            ReadOnlyError,
            TryAgainError,
        ) as exc:
            raise MetadataUnavailableError("Session metadata is unavailable right now; try again shortly.") from exc

    @staticmethod
    def _gate(answer: list[Any]) -> list[Any]:
        status = answer[0].decode() if isinstance(answer[0], bytes) else answer[0]
        if status == "erased":
            raise GoneError("This session was erased.")
        if status == "missing":
            raise NotFoundError("No such session (it may have expired).", "session_not_found")
        return answer

    # -- sessions ----------------------------------------------------------------------------------------
    def create_session(self, session_id: str, now: float, ttl: int) -> SessionInfo:
        key = redis_session_key(session_id)

        def run() -> None:
            pipe = self.client.pipeline(transaction=True)
            pipe.hset(key, "@c", int(now))
            pipe.expire(key, ttl)
            pipe.execute()

        self._call(run)
        return SessionInfo(session_id, now, now + ttl)

    def get_session(self, session_id: str) -> SessionInfo | None:
        sess, _, erased = self._keys(session_id)

        def run() -> list[Any]:
            pipe = self.client.pipeline(transaction=False)
            pipe.hget(sess, "@c")
            pipe.pttl(sess)
            pipe.exists(erased)
            return pipe.execute()

        created, pttl, is_erased = self._call(run)
        if is_erased or created is None or pttl < 0:
            return None
        return SessionInfo(session_id, float(created), time.time() + pttl / 1000)

    def is_erased(self, session_id: str) -> bool:
        return bool(self._call(lambda: self.client.exists(redis_erased_key(session_id))))

    def erase(self, session_id: str, marker_ttl: int) -> None:
        sess, meta, erased = self._keys(session_id)

        def run() -> None:
            pipe = self.client.pipeline(transaction=True)
            pipe.set(erased, 1, ex=marker_ttl)
            pipe.delete(sess, meta)
            pipe.execute()

        self._call(run)

    # -- uploads -----------------------------------------------------------------------------------------
    def reserve_upload(self, session_id: str, reservation: Reservation, limits: Limits, now: float, ttl: int) -> None:
        ticket: dict[str, Any] = {"s": reservation.size, "t": reservation.content_type}
        ticket["x"] = int(reservation.expires_at)
        if reservation.upload_id:
            ticket["u"] = reservation.upload_id
        if reservation.name is not None:
            ticket["n"] = reservation.name
        if reservation.content_md5 is not None:
            ticket["m"] = reservation.content_md5
        if reservation.overwrite:
            ticket["o"] = 1
        args: list[Any] = [
            int(now),
            ttl,
            limits.max_files,
            limits.max_bytes,
            reservation.path,
            dumps(ticket),
            limits.max_tombstones,
        ]
        answer = self._gate(self._call(lambda: self._reserve(self._keys(session_id), args)))
        if answer[0] == b"quota":
            raise QuotaExceededError(f"No room for this file: {answer[1].decode()}.")
        if answer[0] == b"exists":
            raise FileExistsConflictError(
                f"The session already holds a file at {reservation.path!r}; choose another path, or send "
                '"overwrite": true to replace it.'
            )
        if answer[0] == b"pending":
            raise FileExistsConflictError(
                f"Another file is being uploaded to {reservation.path!r}; choose another path, or send "
                '"overwrite": true to replace it.'
            )

    def release_upload(self, session_id: str, path: str) -> None:
        with contextlib.suppress(NotFoundError, GoneError):
            self._write_op(session_id, 0, "release", path, str(int(time.time())).encode())

    def reservations(self, session_id: str) -> list[Reservation]:
        return reservations_from_fields(self._fields(session_id))

    # -- records -----------------------------------------------------------------------------------------
    def _fields(self, session_id: str) -> dict[str, str]:
        sess, _, erased = self._keys(session_id)

        def run() -> list[Any]:
            pipe = self.client.pipeline(transaction=False)
            pipe.exists(erased)
            pipe.hgetall(sess)
            return pipe.execute()

        is_erased, flat = self._call(run)
        if is_erased:
            raise GoneError("This session was erased.")
        if not flat:
            raise NotFoundError("No such session (it may have expired).", "session_not_found")
        return {k.decode(): v.decode() for k, v in flat.items()}

    def list_files(self, session_id: str) -> list[FileRecord]:
        return records_from_fields(self._fields(session_id))

    def get_file(self, session_id: str, path: str) -> FileRecord | None:
        raw = self._fields(session_id).get("f:" + path)
        return record_from_field(path, raw) if raw else None

    def forget_file(self, session_id: str, path: str, now: float, ttl: int) -> FileRecord | None:
        previous = self._write_op(session_id, ttl, "forget", path, str(int(now)).encode())
        return record_from_field(path, previous.decode()) if previous else None

    def replace_files(self, session_id: str, records: list[FileRecord], now: float, ttl: int) -> None:
        args: list[Any] = [ttl]
        for r in records:
            args += ["f:" + r.path, record_to_field(r)]
        self._gate(self._call(lambda: self._replace(self._keys(session_id), args)))

    def apply_events(
        self, events: Iterable[CheckedEvent], limits: Limits, now: float, ttl: int
    ) -> list[tuple[Outcome, str]]:
        import orjson  # the event path only: the API's cold start does without it
        from redis.exceptions import NoScriptError

        events = list(events)
        by_session: dict[str, list[int]] = defaultdict(list)
        for index, event in enumerate(events):
            by_session[event.session_id].append(index)
        # one call per session, in order (a session of very many events: a few calls, one after the other)
        calls = [
            (session_id, indexes[start : start + APPLY_MAX_EVENTS])
            for session_id, indexes in by_session.items()
            for start in range(0, len(indexes), APPLY_MAX_EVENTS)
        ]
        head = [int(now), ttl, limits.max_files, limits.max_bytes, limits.upload_max]

        def run(reload: bool = True) -> list[Any]:
            pipe = self.client.pipeline(transaction=False)
            for session_id, indexes in calls:
                # execute_command, not pipe.evalsha: redis-py blocks that method in cluster pipelines,
                # though every key of one call shares a slot (the session id is the hash tag).
                wire = orjson.dumps([events[i].wire() for i in indexes])
                pipe.execute_command("EVALSHA", self._apply.sha, 3, *self._keys(session_id), *head, wire)
            try:
                return pipe.execute()
            except NoScriptError:  # a new or restarted node: load the script everywhere, then once more
                if not reload:
                    raise
                self.client.script_load(rules.script("apply"))
                return run(reload=False)

        results: list[tuple[Outcome, str]] = [(Outcome.SKIPPED, "")] * len(events)
        for (_, indexes), answers in zip(calls, self._call(run), strict=True):
            for index, answer in zip(indexes, orjson.loads(answers), strict=True):
                outcome, _, reason = answer.partition("|")
                results[index] = (_OUTCOMES[outcome], reason)
        return results

    # -- documents ---------------------------------------------------------------------------------------
    def _write_op(self, session_id: str, ttl: int, op: str, field: str, value: bytes = b"") -> Any:
        args: list[Any] = [ttl, op, field] + ([value] if value else [])
        return self._gate(self._call(lambda: self._write(self._keys(session_id), args)))[1]

    def put_meta(self, session_id: str, name: str, document: bytes, now: float, ttl: int) -> None:
        self._write_op(session_id, ttl, "put", name, encode_document(document))

    def get_meta(self, session_id: str, name: str) -> bytes | None:
        sess, meta, erased = self._keys(session_id)

        def run() -> list[Any]:
            pipe = self.client.pipeline(transaction=False)
            pipe.exists(erased)
            pipe.exists(sess)
            pipe.hget(meta, name)
            return pipe.execute()

        is_erased, exists, stored = self._call(run)
        if is_erased:
            raise GoneError("This session was erased.")
        if not exists:
            raise NotFoundError("No such session (it may have expired).", "session_not_found")
        return decode_document(stored) if stored is not None else None

    def delete_meta(self, session_id: str, name: str, now: float, ttl: int) -> bool:
        return bool(self._write_op(session_id, ttl, "delete", name))

    def ping(self) -> None:
        self._call(self.client.ping)

    def snapshot(self, session_id: str) -> SessionSnapshot:
        sess, meta, erased = self._keys(session_id)

        def run() -> list[Any]:
            pipe = self.client.pipeline(transaction=False)
            for command in (pipe.hgetall, pipe.pttl):
                for key in (sess, meta):
                    command(key)
            pipe.pttl(erased)
            return pipe.execute()

        fields, stored, ttl, meta_ttl, marker_ttl = self._call(run)
        fields = {k.decode(): v.decode() for k, v in fields.items()}
        created = fields.get("@c")
        return SessionSnapshot(
            session_id,
            float(created) if created is not None else None,
            _seconds(ttl),
            records_from_fields(fields),
            sorted(f[2:] for f, raw in fields.items() if f.startswith("f:") and record_from_field(f[2:], raw) is None),
            reservations_from_fields(fields),
            {name.decode(): len(decode_document(value)) for name, value in stored.items()},
            _seconds(meta_ttl),
            _seconds(marker_ttl),
        )

    def diagnose(self) -> list[Check]:
        from hera_sessions.backends.metadata import diagnosis

        return diagnosis.redis_checks(self)

    def close(self) -> None:
        self.client.close()
        if self._on_close is not None:
            on_close, self._on_close = self._on_close, None
            on_close()
