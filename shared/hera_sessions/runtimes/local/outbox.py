"""At-least-once delivery of local storage events, as S3 delivers its notifications.

Each event is an S3 notification (the JSON S3 itself would send) written to ``{folder}/{sequencer}-{uuid}.json``
and fsync'd before :meth:`Outbox.put` returns, so an acknowledged upload's event survives a crash. A background
deliverer hands pending entries, oldest first, to ``deliver`` and removes each once delivered. An
:class:`UnavailableError` (Redis down) keeps the entry and retries with backoff; any other error that says the
event cannot be processed moves it to ``failed/`` and is logged, so one bad event never blocks the queue. A
process that starts again (also after ``kill -9``) delivers whatever is still pending.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hera_sessions.core.errors import HeraError, UnavailableError
from hera_sessions.core.events import UnreadableEventError

if TYPE_CHECKING:
    from hera_sessions.core.service import SessionService

logger = logging.getLogger("hera_sessions.runtimes.local.outbox")


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class Outbox:
    """A durable folder of pending S3 notifications and the thread that delivers them."""

    def __init__(
        self,
        folder: Path,
        deliver: Callable[[dict[str, Any]], object],
        first_retry: float = 0.2,
        max_retry: float = 5.0,
    ) -> None:
        self.folder = Path(folder)
        self.failed = self.folder / "failed"
        self.tmp = self.folder / "tmp"
        for path in (self.folder, self.failed, self.tmp):
            path.mkdir(parents=True, exist_ok=True)
        self.deliver = deliver
        self.first_retry, self.max_retry = first_retry, max_retry
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    # -- the producer side -------------------------------------------------------------------------------
    def put(self, payload: dict[str, Any]) -> None:
        """Keep ``payload`` durably, then wake the deliverer."""
        obj = payload["Records"][0]["s3"]["object"]
        name = f"{obj['sequencer']}-{uuid.uuid4().hex}.json"
        tmp = self.tmp / name
        with tmp.open("w") as f:
            json.dump(payload, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.folder / name)
        _fsync_dir(self.folder)
        self._wake.set()

    def pending(self) -> list[Path]:
        """Entries not yet delivered, in the order they were written."""
        return sorted(self.folder.glob("*.json"))

    # -- the deliverer -----------------------------------------------------------------------------------
    def start(self) -> Outbox:
        if self._thread is None:
            self._stopping.clear()
            self._thread = threading.Thread(target=self._run, name="hera-outbox", daemon=True)
            self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _run(self) -> None:
        delay = self.first_retry
        while not self._stopping.is_set():
            self._wake.clear()
            if self.deliver_pending():
                delay = self.first_retry
                self._wake.wait(60)  # a put wakes it at once; the timeout only re-checks the folder
            else:
                self._wake.wait(delay)  # a put does not shorten the backoff of an outage
                delay = min(delay * 2, self.max_retry)

    def deliver_pending(self) -> bool:
        """Deliver every pending entry in order; False when delivery must be retried later (unavailable)."""
        for entry in self.pending():
            if self._stopping.is_set():
                return True
            try:
                payload = json.loads(entry.read_bytes())
                self.deliver(payload)
            except FileNotFoundError:
                continue  # delivered by another deliverer of the same folder
            except UnavailableError as exc:
                logger.warning("storage event delivery deferred: %s (%s)", exc.message, entry.name)
                return False
            except (HeraError, UnreadableEventError, ValueError) as exc:
                reason = getattr(exc, "message", str(exc))
                logger.error(
                    "storage event moved to outbox/failed: %s",
                    reason,
                    extra={"key": _key_of(entry), "reason": reason, "entry": entry.name},
                )
                os.replace(entry, self.failed / entry.name)
                continue
            except Exception:
                logger.exception("storage event delivery failed; retrying (%s)", entry.name)
                return False
            entry.unlink(missing_ok=True)
        return True


def _key_of(entry: Path) -> str | None:
    try:
        return str(json.loads(entry.read_bytes())["Records"][0]["s3"]["object"]["key"])
    except (OSError, ValueError, KeyError, IndexError, TypeError):
        return None


def connect_local_storage(service: SessionService) -> Outbox:
    """Give local storage its outbox (``SESSIONS_DIR/outbox``), delivered through the same S3 reader and
    :meth:`SessionService.record_events` as the cloud functions; the deliverer starts at once, so what an
    earlier process left pending is delivered too."""
    from hera_sessions.backends.storage.local import LocalStorage
    from hera_sessions.runtimes.aws import s3events

    storage = service.storage
    assert isinstance(storage, LocalStorage)
    outbox = Outbox(
        service.settings.sessions_dir / "outbox", lambda payload: service.record_events(s3events.parse(payload))
    )
    storage.connect(outbox)
    return outbox.start()
