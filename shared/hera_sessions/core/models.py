"""The domain's values: frozen dataclasses, JSON-ready through ``to_json``."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Literal


def iso(ts: float) -> str:
    """Epoch seconds → ``2026-11-29T05:42:14Z``: the one time format of the API and the reader."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(int(ts)))  # datetime's text at 3x its speed


def epoch(text: str) -> int:
    """``2026-11-29T05:42:14Z`` → epoch seconds (``iso``'s inverse)."""
    return int(datetime.fromisoformat(text).timestamp())


def now() -> float:
    return time.time()


@dataclass(frozen=True, slots=True)
class SessionInfo:
    """A live session: when it began and when it expires (epoch seconds)."""

    session_id: str
    created_at: float
    expires_at: float


@dataclass(frozen=True, slots=True)
class NewSession:
    """The answer to ``POST /v1/sessions``: the session's id, its bearer token and when it expires."""

    session_id: str
    token: str
    expires_at: float

    def to_json(self) -> dict[str, Any]:
        return {"session_id": self.session_id, "token": self.token, "expires_at": iso(self.expires_at)}


@dataclass(frozen=True, slots=True)
class FileRecord:
    """A recorded file of a session, as the API lists it and the AI backend's reader returns it."""

    path: str
    size: int
    content_type: str
    etag: str | None
    uploaded_at: str  # ISO 8601 UTC, to the second (``iso``), as the API shows it
    sequencer: str | None = None
    name: str | None = None  # the picked file's name, NFC
    content_md5: str | None = None  # base64 MD5 the client declared (and storage verified where it can)
    width: int | None = None
    height: int | None = None
    location: str | None = None  # "none" | "stripped" | "kept"

    def to_json(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "size": self.size,
            "content_type": self.content_type,
            "etag": self.etag,
            "uploaded_at": self.uploaded_at,
            "name": self.name,
            "content_md5": self.content_md5,
            "width": self.width,
            "height": self.height,
            "location": self.location,
        }


@dataclass(frozen=True, slots=True)
class UploadRequest:
    """What a client asks ``POST /uploads`` for: a path, its type and size, and how it sends the bytes."""

    path: str
    content_type: str
    size: int
    method: Literal["PUT", "POST"] = "PUT"
    name: str | None = None  # default: the path's last segment
    content_md5: str | None = None  # base64 of the 16-byte MD5
    overwrite: bool = False  # False: a path holding a recorded file is 409 file_exists


@dataclass(frozen=True, slots=True)
class Reservation:
    """What the metadata store holds for a pending upload ticket."""

    path: str
    size: int
    content_type: str
    expires_at: float
    upload_id: str | None = None
    name: str | None = None
    content_md5: str | None = None
    overwrite: bool = False


@dataclass(frozen=True, slots=True)
class UploadPart:
    """One part of a multipart upload: its number and the URL its bytes go to."""

    part_number: int
    url: str


@dataclass(frozen=True, slots=True)
class UploadTicket:
    """The answer to ``POST /uploads``: everything a client needs to send the bytes itself."""

    protocol: str
    method: str
    url: str
    key: str
    expires_at: float
    headers: dict[str, str] = field(default_factory=dict)
    fields: dict[str, str] = field(default_factory=dict)
    upload_id: str | None = None
    part_size: int | None = None
    parts: tuple[UploadPart, ...] = ()
    block_size: int | None = None  # azure-blocks: the size of each Put Block

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "protocol": self.protocol,
            "method": self.method,
            "url": self.url,
            "headers": self.headers,
            "fields": self.fields,
            "key": self.key,
            "upload_id": self.upload_id,
            "expires_at": iso(self.expires_at),
        }
        if self.block_size:
            body["block_size"] = self.block_size
        if self.parts:
            body["part_size"] = self.part_size
            body["parts"] = [{"part_number": p.part_number, "url": p.url} for p in self.parts]
        return body


@dataclass(frozen=True, slots=True)
class ObjectInfo:
    """An object as storage reports it (listing, head)."""

    key: str
    size: int
    etag: str | None
    content_type: str | None
    last_modified: float
    version: str | None = None


class EventKind(StrEnum):
    CREATED = "created"
    REMOVED = "removed"


@dataclass(slots=True)  # not frozen: built for every event of a batch, and a frozen __init__ costs 3x as much
class StorageEvent:
    """One storage notification, whatever the cloud: the key is already decoded.

    ``sequencer`` orders events on the same key (S3's ``sequencer``, GCS's zero-padded generation,
    Azure's ``sequencer``); the greater wins, equal means the same event.
    """

    kind: EventKind
    key: str
    sequencer: str | None
    size: int | None = None
    etag: str | None = None
    content_type: str | None = None
    event_time: float = 0.0
    #: The object version the event describes (S3/local/Azure: its ETag; GCS: its generation): a refused object
    #: is deleted only while it is still that version, never a newer upload at the same path.
    version: str | None = None


class Outcome(StrEnum):
    """What recording one storage event did."""

    RECORDED = "recorded"
    REMOVED = "removed"
    DUPLICATE = "duplicate"  # the same event again (equal sequencer)
    STALE = "stale"  # an older event than what is already recorded
    ERASED = "erased"  # the session was erased: the object must go
    REJECTED = "rejected"  # the object breaks the rules (size, type, quota): the object must go
    UNKNOWN_SESSION = "unknown_session"  # no such live session: left to the bucket lifecycle
    SKIPPED = "skipped"  # not ours (outside sessions/, a test event)


@dataclass(slots=True)  # not frozen: one for every event of a batch (see StorageEvent)
class EventResult:
    """What became of one storage event (:class:`Outcome`), and why when it was not recorded."""

    event: StorageEvent
    outcome: Outcome
    reason: str = ""


@dataclass(frozen=True, slots=True)
class Check:
    """One line of ``hera-sessions doctor``: what was checked, ``ok`` / ``warn`` / ``fail``, and what to do."""

    check: str
    status: Literal["ok", "warn", "fail"]
    detail: str
    fix: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"check": self.check, "status": self.status, "detail": self.detail, "fix": self.fix or None}


@dataclass(frozen=True, slots=True)
class SessionSnapshot:
    """Everything the metadata store holds about one session, for an operator (``hera-sessions inspect``).

    TTLs are seconds left (None: the key is absent); ``documents`` maps a name to its size in bytes."""

    session_id: str
    created_at: float | None
    ttl: float | None
    files: list[FileRecord]
    tombstones: list[str]
    reservations: list[Reservation]
    documents: dict[str, int]
    documents_ttl: float | None
    erase_marker_ttl: float | None

    @property
    def state(self) -> str:
        if self.erase_marker_ttl is not None:
            return "erased"
        return "live" if self.created_at is not None else "missing"

    def to_json(self) -> dict[str, Any]:
        return {
            "session_id": self.session_id,
            "state": self.state,
            "created_at": iso(self.created_at) if self.created_at is not None else None,
            "ttl_seconds": _seconds(self.ttl),
            "files": [r.to_json() for r in self.files],
            "tombstones": self.tombstones,
            "pending_uploads": [
                {"path": r.path, "size": r.size, "content_type": r.content_type, "expires_at": iso(r.expires_at)}
                for r in self.reservations
            ],
            "documents": [{"name": n, "bytes": size} for n, size in sorted(self.documents.items())],
            "documents_ttl_seconds": _seconds(self.documents_ttl),
            "erase_marker": None
            if self.erase_marker_ttl is None
            else {"ttl_seconds": _seconds(self.erase_marker_ttl), "expires_at": iso(now() + self.erase_marker_ttl)},
        }


def _seconds(ttl: float | None) -> int | None:
    return None if ttl is None else int(ttl)
