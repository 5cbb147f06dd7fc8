"""At-least-once delivery of local storage events, as S3 delivers its notifications.

Each event is an S3 notification (the JSON S3 itself would send) written to ``{folder}/{sequencer}-{uuid}.json``
and fsync'd before :meth:`Outbox.put` returns, so an acknowledged upload's event survives a crash. A background
deliverer hands pending entries, oldest first, to ``deliver`` and removes each once delivered. An
:class:`UnavailableError` (Redis down) keeps the entry and retries the queue with backoff; an error that says
the event cannot be processed removes it to ``failed/`` at once; any other error is retried on later rounds
while the queue goes on, and after ``max_attempts`` the entry goes to ``failed/`` too, so one bad event never
blocks the queue. ``hera-sessions outbox replay`` puts failed entries back. Only one deliverer runs per folder
(an exclusive lock on ``.lock``); others stay idle until it goes. A process that starts again (also after
``kill -9``) delivers whatever is still pending.
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import json
import logging
import os
import threading
import uuid
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hera_sessions.backends.storage.local import fsync_dir, remove_older_than
from hera_sessions.core.errors import HeraError, UnavailableError
from hera_sessions.core.events import UnreadableEventError

if TYPE_CHECKING:
    from hera_sessions.core.service import SessionService

logger = logging.getLogger("hera_sessions.runtimes.local.outbox")

#: Seconds between tries to become the folder's deliverer while another process is.
LOCK_RETRY = 5.0
#: A tmp/ file untouched this long was left by an interrupted put.
TMP_MAX_AGE = 600


def replay(folder: Path) -> int:
    """Move every entry of ``{folder}/failed/`` back into the queue; how many were moved."""
    folder = Path(folder)
    moved = 0
    for entry in sorted((folder / "failed").glob("*.json")):
        try:
            os.replace(entry, folder / entry.name)
        except FileNotFoundError:
            continue
        moved += 1
    if moved:
        fsync_dir(folder)
    return moved


#: Outboxes whose deliverer runs in this process: stopped at exit, so no thread outlives the process's logging.
_running: weakref.WeakSet[Outbox] = weakref.WeakSet()


@atexit.register
def _stop_running() -> None:
    for outbox in list(_running):
        outbox.stop(timeout=1.0)


class Outbox:
    """A durable folder of pending S3 notifications and the thread that delivers them."""

    def __init__(
        self,
        folder: Path,
        deliver: Callable[[dict[str, Any]], object],
        first_retry: float = 0.2,
        max_retry: float = 5.0,
        max_attempts: int = 5,
    ) -> None:
        self.folder = Path(folder)
        self.failed = self.folder / "failed"
        self.tmp = self.folder / "tmp"
        for path in (self.folder, self.failed, self.tmp):
            path.mkdir(parents=True, exist_ok=True)
        self.deliver = deliver
        self.first_retry, self.max_retry, self.max_attempts = first_retry, max_retry, max_attempts
        self._attempts: dict[str, int] = {}  # entry name → failed deliveries (errors other than the known ones)
        self._outage = False  # the last round ended on UnavailableError: only the backoff retries
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock_fd: int | None = None

    # -- the producer side -------------------------------------------------------------------------------
    def put(self, payload: dict[str, Any]) -> None:
        """Keep ``payload`` durably, then wake the deliverer (unless it is backing off an outage)."""
        obj = payload["Records"][0]["s3"]["object"]
        name = f"{obj['sequencer']}-{uuid.uuid4().hex}.json"
        tmp = self.tmp / name
        try:
            with tmp.open("w") as f:
                json.dump(payload, f)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.folder / name)
        finally:
            tmp.unlink(missing_ok=True)
        fsync_dir(self.folder)
        if not self._outage:
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
            _running.add(self)
        return self

    def stop(self, timeout: float = 5.0) -> None:
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        _running.discard(self)

    @property
    def delivering(self) -> bool:
        """This outbox holds the folder's lock: its thread is the one deliverer."""
        return self._lock_fd is not None

    def _take_lock(self) -> bool:
        fd = os.open(self.folder / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        self._lock_fd = fd
        return True

    def _release_lock(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # closing the file releases the lock
            self._lock_fd = None

    def sweep_tmp(self, older_than: float = TMP_MAX_AGE) -> int:
        """Remove ``tmp/`` files an interrupted put left (untouched for ``older_than`` seconds)."""
        return remove_older_than(self.tmp, older_than)

    def _run(self) -> None:
        try:
            while not self._take_lock():  # another process delivers this folder; stay idle until it goes
                if self._stopping.wait(LOCK_RETRY):
                    return
            try:
                self.sweep_tmp()
            except OSError:
                logger.exception("could not sweep outbox/tmp")
            delay = self.first_retry
            while not self._stopping.is_set():
                self._wake.clear()
                try:
                    done = self.deliver_pending()
                except Exception:  # the deliverer never dies: log, back off, go on
                    logger.exception("storage event delivery round failed")
                    done = False
                if done:
                    delay = self.first_retry
                    self._wake.wait(60)  # a put wakes it at once; the timeout only re-checks the folder
                else:
                    self._wake.wait(delay)  # during an outage a put does not wake it (see put)
                    delay = min(delay * 2, self.max_retry)
        finally:
            self._release_lock()

    def deliver_pending(self) -> bool:
        """Deliver every pending entry in order; False when something is left to retry later."""
        left = False
        for entry in self.pending():
            if self._stopping.is_set():
                return True
            try:
                payload = json.loads(entry.read_bytes())
                self.deliver(payload)
            except FileNotFoundError:
                continue  # handled meanwhile (delivered, or moved by hand)
            except UnavailableError as exc:
                logger.warning("storage event delivery deferred: %s (%s)", exc.message, entry.name)
                self._outage = True
                return False
            except (HeraError, UnreadableEventError, ValueError) as exc:
                self._fail(entry, getattr(exc, "message", str(exc)))
                continue
            except Exception as exc:
                attempts = self._attempts.get(entry.name, 0) + 1
                if attempts >= self.max_attempts:
                    self._attempts.pop(entry.name, None)
                    self._fail(entry, f"{type(exc).__name__}: {exc} (after {attempts} attempts)")
                else:
                    self._attempts[entry.name] = attempts
                    logger.exception("storage event delivery failed (attempt %d); retrying (%s)", attempts, entry.name)
                    left = True
                continue
            self._attempts.pop(entry.name, None)
            entry.unlink(missing_ok=True)
        self._outage = False
        return not left

    def _fail(self, entry: Path, reason: str) -> None:
        logger.error(
            "storage event moved to outbox/failed: %s",
            reason,
            extra={"key": _key_of(entry), "reason": reason, "entry": entry.name},
        )
        with contextlib.suppress(FileNotFoundError):  # handled meanwhile
            os.replace(entry, self.failed / entry.name)


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
