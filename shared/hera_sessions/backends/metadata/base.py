"""What a metadata store does, and the rules every store applies.

A session's state is one small map of fields (the same map in Redis, where it is a hash, and on disk,
where it is a JSON file):

- ``@c``            → creation time (epoch seconds)
- ``f:<path>``      → a file record ``{"s": size, "t": type, "e": etag, "u": uploaded_at, "q": sequencer}``,
  or a tombstone ``{"d": 1, "q": sequencer, "w": written_at}`` left by a removal so that a late "created" cannot
  resurrect it (the oldest are pruned beyond :attr:`Limits.max_tombstones`)
- ``t:<path>``      → an upload ticket (a quota reservation) ``{"s", "t", "x": expires_at, "u": upload_id}``

JSON documents live beside it (``session:{id}:meta`` in Redis), and an erase marker outlives the session.
:class:`SessionState` holds the rules in Python (the local store runs them); :mod:`.redis_scripts` holds the
same rules for Redis, where they run atomically in one round trip. One contract suite runs over both.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from hera_sessions.core.errors import QuotaExceededError
from hera_sessions.core.keys import later
from hera_sessions.core.models import EventKind, FileRecord, Outcome, Reservation, SessionInfo


@dataclass(frozen=True, slots=True)
class Limits:
    max_files: int
    max_bytes: int
    upload_max: int

    @property
    def max_tombstones(self) -> int:
        """Tombstones kept per session: enough to order every late event of every recent deletion, and a bound
        so that a session deleting and uploading again and again cannot make its hash (and each script) grow."""
        return max(100, 4 * self.max_files)


@dataclass(frozen=True, slots=True)
class CheckedEvent:
    """A storage event addressed to one session, with the stateless checks already made."""

    session_id: str
    path: str
    kind: EventKind
    sequencer: str | None
    size: int = 0
    etag: str | None = None
    content_type: str | None = None  # as the event reports it (None for S3)
    type_guess: str | None = None  # from the extension, when that type is allowed
    problem: str | None = None  # why the object breaks the rules, found without state
    event_time: float = 0.0

    def to_wire(self) -> str:
        """Compact JSON for the Redis script (absent values are left out: Lua has no null)."""
        wire: dict[str, Any] = {"k": "c" if self.kind is EventKind.CREATED else "r", "p": self.path}
        for name, value in (
            ("q", self.sequencer),
            ("s", self.size),
            ("e", self.etag),
            ("t", self.content_type),
            ("g", self.type_guess),
            ("x", self.problem),
            ("u", int(self.event_time) if self.event_time else None),
        ):
            if value is not None:
                wire[name] = value
        return json.dumps(wire, separators=(",", ":"))


def dumps(value: Mapping[str, Any]) -> str:
    return json.dumps(value, separators=(",", ":"))


def record_from_field(path: str, raw: str) -> FileRecord | None:
    value = json.loads(raw)
    if value.get("d"):
        return None
    return FileRecord(
        path=path,
        size=int(value["s"]),
        content_type=value["t"],
        etag=value.get("e"),
        uploaded_at=float(value.get("u", 0)),
        sequencer=value.get("q"),
    )


def record_to_field(r: FileRecord) -> str:
    wire: dict[str, Any] = {"s": r.size, "t": r.content_type, "u": int(r.uploaded_at)}
    if r.etag:
        wire["e"] = r.etag
    if r.sequencer is not None:
        wire["q"] = r.sequencer
    return dumps(wire)


def records_from_fields(fields: Mapping[str, str]) -> list[FileRecord]:
    records = []
    for name, raw in fields.items():
        if name.startswith("f:") and (record := record_from_field(name[2:], raw)):
            records.append(record)
    return sorted(records, key=lambda r: r.path)


def reservations_from_fields(fields: Mapping[str, str]) -> list[Reservation]:
    out = []
    for name, raw in fields.items():
        if name.startswith("t:"):
            v = json.loads(raw)
            out.append(Reservation(name[2:], int(v["s"]), v["t"], float(v["x"]), v.get("u")))
    return out


class SessionState:
    """The rules, over a session's field map (Python twin of :mod:`.redis_scripts`)."""

    def __init__(self, fields: dict[str, str], now: float) -> None:
        self.fields = fields
        self.now = now

    def usage(self, except_path: str) -> tuple[int, int]:
        """Files and bytes held or reserved, counting each path once, leaving ``except_path`` out."""
        sizes: dict[str, int] = {}
        for name, raw in self.fields.items():
            kind, path = name[:2], name[2:]
            if path == except_path:
                continue
            if kind == "t:":
                ticket = json.loads(raw)
                if ticket["x"] > self.now:
                    sizes[path] = int(ticket["s"])  # a pending upload replaces what the path holds
            elif kind == "f:" and path not in sizes:
                record = json.loads(raw)
                if not record.get("d"):
                    sizes[path] = int(record["s"])
        return len(sizes), sum(sizes.values())

    def check_quota(self, path: str, size: int, limits: Limits) -> str | None:
        files, used = self.usage(path)
        if files + 1 > limits.max_files:
            return f"the session already holds {files} files (at most {limits.max_files})"
        if used + size > limits.max_bytes:
            return f"the session would hold {used + size} bytes (at most {limits.max_bytes})"
        return None

    def reserve(self, reservation: Reservation, limits: Limits) -> None:
        problem = self.check_quota(reservation.path, reservation.size, limits)
        if problem:
            raise QuotaExceededError(f"No room for this file: {problem}.")
        for name in [n for n in self.fields if n.startswith("t:")]:
            if json.loads(self.fields[name])["x"] <= self.now:
                del self.fields[name]  # expired tickets release their reservation
        ticket: dict[str, Any] = {
            "s": reservation.size,
            "t": reservation.content_type,
            "x": int(reservation.expires_at),
        }
        if reservation.upload_id:
            ticket["u"] = reservation.upload_id
        self.fields["t:" + reservation.path] = dumps(ticket)
        self.prune_tombstones(limits.max_tombstones)

    def prune_tombstones(self, keep: int) -> None:
        """Drop the oldest tombstones beyond ``keep`` (oldest written first, then by name, bytewise)."""
        stones = []
        for name, raw in self.fields.items():
            if name.startswith("f:"):
                value = json.loads(raw)
                if value.get("d"):
                    stones.append((int(value.get("w", 0)), name.encode(), name))
        for _, _, name in sorted(stones)[: max(0, len(stones) - keep)]:
            del self.fields[name]

    def forget(self, path: str) -> str | None:
        """The API deleted the object: its record becomes a tombstone holding the record's own sequencer, so
        a redelivered "created" of that upload is a duplicate while the removal event and new uploads still win.
        Returns the live record that was there, if any."""
        name = "f:" + path
        raw = self.fields.get(name)
        if raw is None:
            return None
        record = json.loads(raw)
        if record.get("d"):
            return None
        if record.get("q") is None:
            del self.fields[name]
        else:
            self.fields[name] = dumps({"d": 1, "q": record["q"], "w": int(self.now)})
        return raw

    def apply(self, event: CheckedEvent, limits: Limits) -> tuple[Outcome, str]:
        name = "f:" + event.path
        current = json.loads(self.fields[name]) if name in self.fields else None
        if current is not None and current.get("q") is not None and event.sequencer is not None:
            order = later(event.sequencer, current["q"])
            if order == 0:
                return Outcome.DUPLICATE, ""
            if order < 0:
                return Outcome.STALE, ""
        if event.kind is EventKind.REMOVED:
            if event.sequencer is None:
                self.fields.pop(name, None)
            else:
                self.fields[name] = dumps({"d": 1, "q": event.sequencer, "w": int(self.now)})
            return Outcome.REMOVED, ""

        if event.problem:
            return Outcome.REJECTED, event.problem
        ticket = json.loads(self.fields["t:" + event.path]) if "t:" + event.path in self.fields else None
        declared = int(ticket["s"]) if ticket else limits.upload_max
        if ticket and event.content_type and event.content_type != ticket["t"]:
            return Outcome.REJECTED, f"stored as {event.content_type}, declared as {ticket['t']}"
        content_type = ticket["t"] if ticket else (event.content_type or event.type_guess)
        if not content_type:
            return Outcome.REJECTED, "its type is not allowed"
        if event.size > declared:
            return Outcome.REJECTED, f"{event.size} bytes, more than the {declared} declared"
        problem = self.check_quota(event.path, event.size, limits)
        if problem:
            return Outcome.REJECTED, problem
        record = FileRecord(
            event.path, event.size, content_type, event.etag, event.event_time or self.now, event.sequencer
        )
        self.fields[name] = record_to_field(record)
        self.fields.pop("t:" + event.path, None)
        return Outcome.RECORDED, ""


class MetadataStore(ABC):
    """Session metadata: records, tickets, documents, erase markers. Implementations: local disk, Redis."""

    name: str = "abstract"

    @abstractmethod
    def create_session(self, session_id: str, now: float, ttl: int) -> SessionInfo: ...

    @abstractmethod
    def get_session(self, session_id: str) -> SessionInfo | None:
        """The live session, or None (expired, erased or never created)."""

    @abstractmethod
    def reserve_upload(self, session_id: str, reservation: Reservation, limits: Limits, now: float, ttl: int) -> None:
        """Hold quota for an upload ticket; replaces a pending ticket for the same path.

        Raises NotFoundError (no session), GoneError (erased) or QuotaExceededError.
        """

    @abstractmethod
    def release_upload(self, session_id: str, path: str) -> None: ...

    @abstractmethod
    def reservations(self, session_id: str) -> list[Reservation]: ...

    @abstractmethod
    def list_files(self, session_id: str) -> list[FileRecord]:
        """Every file record of a live session (NotFoundError when there is no such session)."""

    @abstractmethod
    def get_file(self, session_id: str, path: str) -> FileRecord | None: ...

    @abstractmethod
    def forget_file(self, session_id: str, path: str, now: float, ttl: int) -> FileRecord | None:
        """Drop a file's record (the API deleted the object; its removal event will leave a tombstone)."""

    @abstractmethod
    def put_meta(self, session_id: str, name: str, document: bytes, now: float, ttl: int) -> None: ...

    @abstractmethod
    def get_meta(self, session_id: str, name: str) -> bytes | None: ...

    @abstractmethod
    def delete_meta(self, session_id: str, name: str, now: float, ttl: int) -> bool: ...

    @abstractmethod
    def erase(self, session_id: str, marker_ttl: int) -> None:
        """Forget everything of the session and leave an erase marker for ``marker_ttl`` seconds."""

    @abstractmethod
    def is_erased(self, session_id: str) -> bool: ...

    @abstractmethod
    def apply_events(
        self, events: Iterable[CheckedEvent], limits: Limits, now: float, ttl: int
    ) -> list[tuple[Outcome, str]]:
        """Apply storage events, in order, atomically per session; one outcome per event."""

    @abstractmethod
    def replace_files(self, session_id: str, records: list[FileRecord], now: float, ttl: int) -> None:
        """Make the session's file records exactly ``records`` (reconcile)."""

    @abstractmethod
    def ping(self) -> None:
        """Raise MetadataUnavailableError when the store cannot be reached."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections and locks."""
