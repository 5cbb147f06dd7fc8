"""Metadata on local disk: one JSON file per session, read-modify-write under a per-session file lock.

``{SESSIONS_DIR}/meta/{id}.json`` holds ``{"exp": expiry, "fields": {...}, "meta": {name: document}}``;
``{id}.erased`` holds the erase marker's expiry. Expiry is checked on every read, like Redis' TTL, so the
semantics match the Redis store; two processes never lose each other's updates (``fcntl.flock``).
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import json
import os
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from hera_sessions.backends.metadata.base import (
    CheckedEvent,
    Limits,
    MetadataStore,
    SessionState,
    dumps,
    record_from_field,
    record_to_field,
    records_from_fields,
    reservations_from_fields,
)
from hera_sessions.core.errors import GoneError, NotFoundError
from hera_sessions.core.models import FileRecord, Outcome, Reservation, SessionInfo


class LocalMetadataStore(MetadataStore):
    name = "local"

    def __init__(self, root: Path) -> None:
        self.root = Path(root) / "meta"
        self.root.mkdir(parents=True, exist_ok=True)

    # -- files -------------------------------------------------------------------------------------------
    def _path(self, session_id: str, suffix: str) -> Path:
        return self.root / f"{session_id}{suffix}"

    @contextlib.contextmanager
    def _locked(self, session_id: str) -> Iterator[None]:
        with open(self._path(session_id, ".lock"), "a+") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _load(self, session_id: str) -> dict[str, Any] | None:
        try:
            data: dict[str, Any] = json.loads(self._path(session_id, ".json").read_bytes())
        except FileNotFoundError:
            return None
        if data["exp"] <= time.time():
            self._path(session_id, ".json").unlink(missing_ok=True)
            return None
        return data

    def _save(self, session_id: str, data: dict[str, Any]) -> None:
        target = self._path(session_id, ".json")
        tmp = target.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(dumps(data))
        os.replace(tmp, target)

    def _erased_until(self, session_id: str) -> float:
        try:
            until = float(self._path(session_id, ".erased").read_text())
        except (FileNotFoundError, ValueError):
            return 0.0
        return until if until > time.time() else 0.0

    def _live(self, session_id: str) -> dict[str, Any]:
        if self._erased_until(session_id):
            raise GoneError("This session was erased.")
        data = self._load(session_id)
        if data is None:
            raise NotFoundError("No such session (it may have expired).", "session_not_found")
        return data

    # -- sessions ----------------------------------------------------------------------------------------
    def create_session(self, session_id: str, now: float, ttl: int) -> SessionInfo:
        with self._locked(session_id):
            self._save(session_id, {"exp": now + ttl, "fields": {"@c": str(int(now))}, "meta": {}})
        return SessionInfo(session_id, now, now + ttl)

    def get_session(self, session_id: str) -> SessionInfo | None:
        if self._erased_until(session_id):
            return None
        data = self._load(session_id)
        if data is None:
            return None
        return SessionInfo(session_id, float(data["fields"].get("@c", 0)), float(data["exp"]))

    def is_erased(self, session_id: str) -> bool:
        return bool(self._erased_until(session_id))

    def erase(self, session_id: str, marker_ttl: int) -> None:
        with self._locked(session_id):
            self._path(session_id, ".erased").write_text(str(time.time() + marker_ttl))
            self._path(session_id, ".json").unlink(missing_ok=True)

    # -- uploads -----------------------------------------------------------------------------------------
    def reserve_upload(self, session_id: str, reservation: Reservation, limits: Limits, now: float, ttl: int) -> None:
        with self._locked(session_id):
            data = self._live(session_id)
            SessionState(data["fields"], now).reserve(reservation, limits)
            data["exp"] = now + ttl
            self._save(session_id, data)

    def release_upload(self, session_id: str, path: str) -> None:
        with self._locked(session_id):
            data = self._load(session_id)
            if data and data["fields"].pop("t:" + path, None) is not None:
                self._save(session_id, data)

    def reservations(self, session_id: str) -> list[Reservation]:
        return reservations_from_fields(self._live(session_id)["fields"])

    # -- records -----------------------------------------------------------------------------------------
    def list_files(self, session_id: str) -> list[FileRecord]:
        return records_from_fields(self._live(session_id)["fields"])

    def get_file(self, session_id: str, path: str) -> FileRecord | None:
        raw = self._live(session_id)["fields"].get("f:" + path)
        return record_from_field(path, raw) if raw else None

    def forget_file(self, session_id: str, path: str, now: float, ttl: int) -> FileRecord | None:
        with self._locked(session_id):
            data = self._live(session_id)
            raw = SessionState(data["fields"], now).forget(path)
            data["exp"] = now + ttl
            self._save(session_id, data)
        return record_from_field(path, raw) if raw else None

    def replace_files(self, session_id: str, records: list[FileRecord], now: float, ttl: int) -> None:
        with self._locked(session_id):
            data = self._live(session_id)
            fields = {k: v for k, v in data["fields"].items() if not k.startswith("f:")}
            for r in records:
                fields["f:" + r.path] = record_to_field(r)
            data["fields"], data["exp"] = fields, now + ttl
            self._save(session_id, data)

    def apply_events(
        self, events: Iterable[CheckedEvent], limits: Limits, now: float, ttl: int
    ) -> list[tuple[Outcome, str]]:
        results: list[tuple[Outcome, str]] = []
        for event in events:
            with self._locked(event.session_id):
                if self._erased_until(event.session_id):
                    results.append((Outcome.ERASED, "the session was erased"))
                    continue
                data = self._load(event.session_id)
                if data is None:
                    results.append((Outcome.UNKNOWN_SESSION, "no live session"))
                    continue
                outcome = SessionState(data["fields"], now).apply(event, limits)
                if outcome[0] in (Outcome.RECORDED, Outcome.REMOVED):
                    data["exp"] = now + ttl
                    self._save(event.session_id, data)
                results.append(outcome)
        return results

    # -- documents ---------------------------------------------------------------------------------------
    def put_meta(self, session_id: str, name: str, document: bytes, now: float, ttl: int) -> None:
        with self._locked(session_id):
            data = self._live(session_id)
            data["meta"][name] = base64.b64encode(document).decode()
            data["exp"] = now + ttl
            self._save(session_id, data)

    def get_meta(self, session_id: str, name: str) -> bytes | None:
        raw = self._live(session_id)["meta"].get(name)
        return base64.b64decode(raw) if raw is not None else None

    def delete_meta(self, session_id: str, name: str, now: float, ttl: int) -> bool:
        with self._locked(session_id):
            data = self._live(session_id)
            found = data["meta"].pop(name, None) is not None
            data["exp"] = now + ttl
            self._save(session_id, data)
        return found

    def ping(self) -> None:
        if not os.access(self.root, os.W_OK):
            from hera_sessions.core.errors import MetadataUnavailableError

            raise MetadataUnavailableError(f"The metadata folder {self.root} is not writable.")
