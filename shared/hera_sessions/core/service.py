"""The use cases, cloud-agnostic: every runtime (Lambda, Cloud Functions, Azure, the local server) calls these.

``SessionService`` knows nothing of HTTP or of any cloud SDK: it is given a :class:`Storage`, a
:class:`MetadataStore` and the :class:`Settings`, and speaks in the domain's values and errors.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any, cast

from hera_sessions.backends.metadata.base import MetadataStore
from hera_sessions.backends.storage.base import DownloadSpec, Storage, UploadSpec
from hera_sessions.config import Settings
from hera_sessions.core import keys, telemetry
from hera_sessions.core.errors import (
    HeraError,
    InvalidInputError,
    NotFoundError,
    TooLargeError,
)
from hera_sessions.core.events import UnreadableEventError, session_key
from hera_sessions.core.jsonio import load_json
from hera_sessions.core.models import (
    EventKind,
    EventResult,
    FileRecord,
    NewSession,
    Outcome,
    Reservation,
    StorageEvent,
    UploadRequest,
    UploadTicket,
    iso,
    now,
)
from hera_sessions.core.rules import CheckedEvent, Limits
from hera_sessions.core.tokens import TokenAuthority

logger = logging.getLogger("hera_sessions")

#: A second, larger read when an image's size lies beyond its first HEAD_BYTES (a JPEG whose EXIF, ICC profile
#: and other segments come first); beyond this, the object is refused.
HEADER_MAX_BYTES = 1024 * 1024
#: The outcomes of events that are recorded (or already were): nothing to delete, nothing to log.
_RECORDED = frozenset({Outcome.RECORDED, Outcome.REMOVED, Outcome.DUPLICATE})


@dataclass(frozen=True, slots=True)
class Download:
    """A file's record with a signed URL that serves its bytes until ``expires_at``."""

    record: FileRecord
    url: str
    expires_at: float


@dataclass(frozen=True, slots=True)
class ReconcileReport:
    """What ``reconcile`` changed in a session's records: adopted, dropped and kept files."""

    session_id: str
    adopted: int
    dropped: int
    kept: int


#: A file name: at most this many bytes of UTF-8 (what most file systems allow), after NFC normalisation.
MAX_NAME_BYTES = 255
#: What a name may not hold: control characters (C0, DEL, C1).
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")


def check_name(name: object) -> str:
    """The name a person gave a file, NFC-normalised: any Unicode but control characters (C0, DEL, C1)."""
    if not isinstance(name, str) or not name:
        raise InvalidInputError("'name' must be a non-empty string, the file's name.", "invalid_name")
    name = unicodedata.normalize("NFC", name)
    try:
        size = len(name.encode("utf-8"))
    except UnicodeEncodeError:  # a lone surrogate (a JSON "\ud800" escape)
        raise InvalidInputError("'name' is not valid Unicode text.", "invalid_name") from None
    if size > MAX_NAME_BYTES:
        raise InvalidInputError(
            f"'name' is {size} bytes of UTF-8; at most {MAX_NAME_BYTES} are allowed.", "invalid_name"
        )
    if _CONTROL.search(name):
        raise InvalidInputError("'name' may not hold control characters.", "invalid_name")
    return name


def check_content_md5(value: object) -> str | None:
    """None, or the base64 of a 16-byte MD5 (as the ``Content-MD5`` header carries it)."""
    if value is None:
        return None
    try:
        if isinstance(value, str) and len(base64.b64decode(value, validate=True)) == 16 and len(value) == 24:
            return value
    except binascii.Error:
        pass
    raise InvalidInputError(
        "'content_md5' must be the base64 of the file's 16-byte MD5 digest (24 characters), as Content-MD5.",
        "invalid_content_md5",
    )


class SessionService:
    def __init__(self, settings: Settings, storage: Storage, metadata: MetadataStore, tokens: TokenAuthority) -> None:
        self.settings = settings
        self.storage = storage
        self.metadata = metadata
        self.tokens = tokens
        self.limits = Limits(settings.session_max_files, settings.session_max_bytes, settings.upload_max_bytes)

    # -- sessions ----------------------------------------------------------------------------------------
    def create_session(self, authorization: str | None) -> NewSession:
        if not self.settings.open_session_creation:
            self.tokens.require_service(authorization)
        session_id = keys.new_session_id()
        info = self.metadata.create_session(session_id, now(), self.settings.session_ttl)
        return NewSession(session_id, self.tokens.issue(session_id), info.expires_at)

    def authorize(self, session_id: str, authorization: str | None) -> None:
        keys.check_session_id(session_id)
        self.tokens.authorize(authorization, session_id)

    def erase_session(self, session_id: str) -> None:
        """Erase marker first (late events then delete what they find), then records, then objects.

        Idempotent: erasing an erased session deletes again whatever is left under its prefix (a retry after
        storage failed half-way), so a client may simply repeat ``DELETE /v1/sessions/{id}``.
        """
        if self.metadata.get_session(session_id) is not None:
            self.metadata.erase(session_id, self.settings.erase_marker_ttl)
        elif not self.metadata.is_erased(session_id):
            raise NotFoundError("No such session (it may have expired).", "session_not_found")
        prefix = keys.session_prefix(session_id)
        self.storage.abort_prefix_uploads(prefix)
        deleted = self.storage.delete_prefix(prefix)
        self.storage.invalidate_prefix(prefix)
        logger.info("session erased", extra={"session_id": session_id, "objects_deleted": deleted})

    # -- uploads -----------------------------------------------------------------------------------------
    def create_upload(self, session_id: str, request: UploadRequest) -> UploadTicket:
        path = keys.check_path(request.path)
        name = check_name(request.name if request.name is not None else path.rsplit("/", 1)[-1])
        content_md5 = check_content_md5(request.content_md5)
        content_type = keys.check_type_fits(path, request.content_type, self.settings.allowed_content_types)
        if request.size > self.settings.upload_max_bytes:
            raise TooLargeError(
                f"This file is {request.size} bytes; the limit is {self.settings.upload_max_bytes} bytes.",
                "file_too_large",
            )
        large = self.storage.large_protocol is not None and request.size > self.settings.multipart_threshold_bytes
        if request.method == "POST" and not self.storage.supports_post:
            raise InvalidInputError(
                "This storage takes uploads by PUT only; leave 'method' out or send PUT.",
                "method_not_supported",
            )
        issued = now()
        # A large upload's URLs (parts, blocks, the resumable start) live as long as its reservation: a big
        # file over a slow link must not fail half-way. Seven days at most, what every cloud signs for.
        expires_in = min(self.settings.large_upload_ttl, 7 * 86_400) if large else self.settings.upload_url_ttl
        spec = UploadSpec(
            key=keys.object_key(session_id, path),
            content_type=content_type,
            size=request.size,
            method=request.method,
            expires_in=expires_in,
            expires_at=issued + expires_in,
            content_md5=content_md5,
            overwrite=request.overwrite,
        )
        # Quota and the no-overwrite rule first (atomic in the store), then signing, which needs no network unless
        # it is a large upload.
        reservation = Reservation(
            path,
            request.size,
            content_type,
            issued + expires_in,
            name=name,
            content_md5=content_md5,
            overwrite=request.overwrite,
        )
        self.metadata.reserve_upload(session_id, reservation, self.limits, issued, self.settings.session_ttl)
        telemetry.count("UploadsIssued")
        if not large:
            return self.storage.presign_upload(spec)
        ticket = self.storage.start_large_upload(spec)
        self.metadata.reserve_upload(
            session_id,
            replace(reservation, upload_id=ticket.upload_id),
            self.limits,
            issued,
            self.settings.session_ttl,
        )
        return ticket

    def _reservation(self, session_id: str, upload_id: str) -> Reservation:
        for reservation in self.metadata.reservations(session_id):
            if reservation.upload_id == upload_id:
                return reservation
        raise NotFoundError("No such unfinished upload in this session.", "upload_not_found")

    def complete_upload(self, session_id: str, upload_id: str, parts: list[tuple[int, str]]) -> dict[str, Any]:
        reservation = self._reservation(session_id, upload_id)
        key = keys.object_key(session_id, reservation.path)
        self.storage.complete_large_upload(key, upload_id, parts, overwrite=reservation.overwrite)
        return {
            "path": reservation.path,
            "size": reservation.size,
            "content_type": reservation.content_type,
            "name": reservation.name,
            "content_md5": reservation.content_md5,
        }

    def abort_upload(self, session_id: str, upload_id: str) -> None:
        reservation = self._reservation(session_id, upload_id)
        self.storage.abort_large_upload(keys.object_key(session_id, reservation.path), upload_id)
        self.metadata.release_upload(session_id, reservation.path)

    # -- files -------------------------------------------------------------------------------------------
    def list_files(self, session_id: str) -> list[FileRecord]:
        return self.metadata.list_files(session_id)

    def get_file(self, session_id: str, path: str) -> FileRecord:
        record = self.metadata.get_file(session_id, keys.check_path(path))
        if record is None:
            raise NotFoundError(f"No file {path!r} in this session.", "file_not_found")
        return record

    def download(self, session_id: str, path: str) -> Download:
        record = self.get_file(session_id, path)
        expires_in = self.settings.download_url_ttl
        expires_at = now() + expires_in
        url = self.storage.presign_download(
            DownloadSpec(
                key=keys.object_key(session_id, record.path),
                content_type=record.content_type,
                filename=record.name or record.path.rsplit("/", 1)[-1],
                expires_in=expires_in,
                expires_at=expires_at,
            )
        )
        return Download(record, url, expires_at)

    def delete_file(self, session_id: str, path: str) -> None:
        path = keys.check_path(path)
        if self.metadata.get_file(session_id, path) is None:
            raise NotFoundError(f"No file {path!r} in this session.", "file_not_found")
        self.storage.delete(keys.object_key(session_id, path))
        self.metadata.forget_file(session_id, path, now(), self.settings.session_ttl)

    # -- documents ---------------------------------------------------------------------------------------
    def put_meta(self, session_id: str, name: str, body: bytes) -> None:
        keys.check_meta_name(name)
        if len(body) > self.settings.meta_max_bytes:
            raise TooLargeError(
                f"A metadata document may be at most {self.settings.meta_max_bytes} bytes.", "meta_too_large"
            )
        document = load_json(body)
        compact = json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode()
        self.metadata.put_meta(session_id, name, compact, now(), self.settings.session_ttl)

    def get_meta(self, session_id: str, name: str) -> Any:
        stored = self.metadata.get_meta(session_id, keys.check_meta_name(name))
        if stored is None:
            raise NotFoundError(f"No document {name!r} in this session.", "meta_not_found")
        return json.loads(stored)

    def delete_meta(self, session_id: str, name: str) -> None:
        keys.check_meta_name(name)
        if not self.metadata.delete_meta(session_id, name, now(), self.settings.session_ttl):
            raise NotFoundError(f"No document {name!r} in this session.", "meta_not_found")

    # -- storage events ----------------------------------------------------------------------------------
    def check_event(self, event: StorageEvent) -> CheckedEvent | None:
        """The stateless checks: None for an object outside ``sessions/`` (skipped, never deleted).

        Raises UnreadableEventError for a key under ``sessions/`` that breaks the path rules (the readers refuse
        those already: this is the same rule once more, before any metadata write or storage call).
        """
        parts = session_key(event.key)
        if parts is None:
            return None
        session_id, path = parts
        problem = None
        type_guess = None
        if event.kind is EventKind.CREATED:
            problem = self._object_problem(path, event)
            guess = keys.type_from_extension(path)
            type_guess = guess if guess in self.settings.allowed_content_types else None
        return CheckedEvent(
            session_id=session_id,
            path=path,
            kind=event.kind,
            sequencer=event.sequencer,
            size=event.size or 0,
            etag=event.etag,
            content_type=event.content_type.lower() if event.content_type else None,
            type_guess=type_guess,
            problem=problem,
            event_time=event.event_time,
        )

    def _object_problem(self, path: str, event: StorageEvent) -> str | None:
        if not event.size:
            return "it is empty"
        if event.size > self.settings.upload_max_bytes:
            return f"{event.size} bytes, more than the {self.settings.upload_max_bytes} allowed"
        if event.content_type:
            try:
                keys.check_type_fits(path, event.content_type, self.settings.allowed_content_types)
            except HeraError as exc:
                return exc.message
        return None

    def inspect_object(self, event: StorageEvent, item: CheckedEvent) -> CheckedEvent | EventResult:
        """Read a new image's first bytes: its real format and size, and its GPS position (``LOCATION_METADATA``).

        Returns the event to record (with width, height and location, or with the problem that refuses it), or
        the result of an event that must not be recorded: its version is gone (stale), or it was rewritten
        without its GPS position (the new version's own event records it, as ``stripped``).
        """
        # The record's type is the extension's: a ticket's type and an event's must fit the extension (each
        # extension belongs to one type), so this is the ticket's declared type, else the event's, else the guess.
        from hera_sessions.core import images  # the event path only: the API's cold start does without it

        expected = keys.type_from_extension(item.path)
        if expected is None or not _is_image_upload(item):
            return item
        head = self.storage.read_head(event.key, event.version, images.HEAD_BYTES)
        if head is None:
            return EventResult(event, Outcome.STALE, "that version of the object is gone")
        info = images.sniff(head)
        if info is not None and info.width is None and len(head) < item.size:
            head = self.storage.read_head(event.key, event.version, HEADER_MAX_BYTES)
            if head is None:
                return EventResult(event, Outcome.STALE, "that version of the object is gone")
            info = images.sniff(head)
        if info is None or not info.fits(expected):
            seen = f"it is {images.name(info.content_type)}" if info else "no image format it knows"
            return replace(item, problem=f"its bytes are not a {images.name(expected)} image ({seen})")
        if info.width is None or info.height is None:
            return replace(item, problem=f"its {images.name(expected)} header (the image size) could not be read")
        if not info.gps:  # (most photos: one copy of the event, not two)
            return replace(item, width=info.width, height=info.height, location="stripped" if info.stripped else "none")
        sized = replace(item, width=info.width, height=info.height)
        mode = self.settings.location_metadata
        if mode == "keep":
            return replace(sized, location="kept")
        if mode == "refuse":
            return replace(sized, problem="it carries a GPS position (LOCATION_METADATA=refuse)")
        if not event.version:  # a rewrite must be conditional on the version the event describes
            return replace(sized, problem="it carries a GPS position, and its event names no version to rewrite")
        if not self._is_declared_md5(item.session_id, item.path, event.etag):
            return sized  # other bytes than the client declared: the rules refuse them, nothing is rewritten
        body = self.storage.read_head(event.key, event.version, item.size)
        if body is None:
            return EventResult(event, Outcome.STALE, "that version of the object is gone")
        stripped = images.strip_gps(body)
        if stripped is None:
            return replace(sized, problem="it carries a GPS position that could not be removed")
        if not self.storage.rewrite(event.key, stripped, expected, event.version):
            return EventResult(event, Outcome.STALE, "that version of the object is gone")
        return EventResult(event, Outcome.SKIPPED, "rewritten without its GPS position (the new version is recorded)")

    def _is_declared_md5(self, session_id: str, path: str, etag: str | None) -> bool:
        """False when the path's ticket declares a ``content_md5`` and the ETag (a plain MD5) is another one."""
        plain = (etag or "").strip('"').lower()
        if len(plain) != 32 or any(c not in "0123456789abcdef" for c in plain):
            return True  # multipart and Azure ETags say nothing of the MD5
        for reservation in self.metadata.reservations(session_id):
            if reservation.path == path and reservation.content_md5:
                return base64.b64decode(reservation.content_md5).hex() == plain
        return True

    def _inspect_all(
        self, events: Sequence[StorageEvent], checked: list[tuple[int, CheckedEvent]]
    ) -> dict[int, CheckedEvent | EventResult]:
        """:meth:`inspect_object` for each new image of the batch, a few reads side by side when there are several."""
        reads = [(i, c) for i, c in checked if _is_image_upload(c)]
        threads = min(self.storage.read_concurrency, len(reads))
        if threads < 2:
            return {i: self.inspect_object(events[i], c) for i, c in reads}
        from concurrent.futures import ThreadPoolExecutor  # batches only: a single event never pays for it

        with ThreadPoolExecutor(threads) as pool:
            return dict(
                zip(
                    (i for i, _ in reads),
                    pool.map(lambda r: self.inspect_object(events[r[0]], r[1]), reads),
                    strict=True,
                )
            )

    def record_events(self, events: Sequence[StorageEvent]) -> list[EventResult]:
        """Record a batch of storage events in one metadata round trip; delete objects that must go.

        Every new image is read first (:meth:`inspect_object`): one that is not what its type says, or that
        carries a GPS position under ``LOCATION_METADATA=refuse``, is rejected (and deleted). Every event that is
        not recorded is logged with its key, its outcome as ``code`` and the reason.

        Raises MetadataUnavailableError (retry the whole batch: recording is idempotent) when Redis is down, and
        UnreadableEventError, before anything is written or deleted, when a key breaks the path rules.
        """
        results: list[EventResult | None] = [None] * len(events)
        checked: list[tuple[int, CheckedEvent]] = []
        for index, event in enumerate(events):
            item = self.check_event(event)
            if item is None:
                results[index] = EventResult(event, Outcome.SKIPPED, "outside sessions/")
            else:
                checked.append((index, item))
        inspected = self._inspect_all(events, checked)
        if inspected:
            kept: list[tuple[int, CheckedEvent]] = []
            for index, item in checked:
                found = inspected.get(index, item)
                if isinstance(found, EventResult):
                    results[index] = found
                else:
                    kept.append((index, found))
            checked = kept
        if checked:
            outcomes = self.metadata.apply_events(
                [c for _, c in checked], self.limits, now(), self.settings.session_ttl
            )
            for (index, _), (outcome, reason) in zip(checked, outcomes, strict=True):
                results[index] = EventResult(events[index], outcome, reason)
        done = cast("list[EventResult]", results)
        for result in done:
            if result.outcome in _RECORDED:
                continue
            if result.event.kind is EventKind.CREATED and result.outcome is Outcome.REJECTED:
                self.storage.delete_version(result.event.key, result.event.version)
            elif result.event.kind is EventKind.CREATED and result.outcome is Outcome.ERASED:
                self.storage.delete(result.event.key)  # an erased session keeps no version at all
            logger.info(
                "storage event not recorded",
                extra={
                    "key": result.event.key,
                    "code": result.outcome.value,
                    "outcome": result.outcome.value,
                    "reason": result.reason,
                },
            )
        return done

    # -- repair ------------------------------------------------------------------------------------------
    def reconcile(self, session_id: str) -> ReconcileReport:
        """Rebuild a session's file records from what storage holds (after a Redis loss or missed events)."""
        before = {r.path: r for r in self.metadata.list_files(session_id)}
        prefix = keys.session_prefix(session_id)
        records: list[FileRecord] = []
        for info in self.storage.list_prefix(prefix):
            path = info.key[len(prefix) :]
            known = before.get(path)
            if known is not None and known.size == info.size:
                records.append(known)
                continue
            ctype = known.content_type if known else (info.content_type or keys.type_from_extension(path))
            try:
                checked = self.check_event(
                    StorageEvent(EventKind.CREATED, info.key, None, info.size, info.etag, ctype, info.last_modified)
                )
            except UnreadableEventError:  # a key that breaks the path rules: never recorded
                checked = None
            if checked is None or checked.problem or not ctype:
                logger.warning("reconcile left an object unrecorded", extra={"key": info.key})
                continue
            records.append(FileRecord(path, info.size, ctype, info.etag, iso(info.last_modified), None))
        self.metadata.replace_files(session_id, records, now(), self.settings.session_ttl)
        kept = sum(1 for r in records if r.path in before)
        return ReconcileReport(session_id, len(records) - kept, len(before) - kept, kept)

    def health(self) -> dict[str, str]:
        checks: dict[str, str] = {}
        for name, probe in (("metadata", self.metadata.ping), ("storage", self.storage.check)):
            try:
                probe()
                checks[name] = "ok"
            except HeraError as exc:
                checks[name] = exc.code
        return checks


def _is_image_upload(item: CheckedEvent) -> bool:
    """A new object, not refused yet, whose extension names an image type: its bytes are read."""
    from hera_sessions.core import images  # the event path only: the API's cold start does without it

    return (
        item.kind is EventKind.CREATED
        and not item.problem
        and keys.type_from_extension(item.path) in images.IMAGE_TYPES
    )


def results_summary(results: Iterable[EventResult]) -> dict[str, int]:
    summary: dict[str, int] = {}
    for result in results:
        summary[result.outcome.value] = summary.get(result.outcome.value, 0) + 1
    return summary
