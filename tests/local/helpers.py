"""Helpers for the local server's tests: wait for the outbox, talk raw HTTP."""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import requests

from hera_sessions.backends.storage.local import LocalStorage
from hera_sessions.runtime import Runtime
from hera_sessions.runtimes.local.outbox import Outbox
from hera_sessions.runtimes.local.server import LocalServer
from tests.envs import SERVICE_KEY, service_env
from tests.images import png
from tests.servers import free_port

PNG = png(size=208)


@contextlib.contextmanager
def local_server(
    sessions_dir: Path, *, origins: Iterable[str] | None = None, timeout: float | None = None, **settings: str
) -> Iterator[LocalServer]:
    """A local server on a free port (local files, embedded metadata); stopped, its metadata closed, at the end."""
    port = free_port()
    env = service_env(sessions_dir=sessions_dir, origins=origins, PORT=str(port), **settings)
    options: dict[str, Any] = {} if timeout is None else {"timeout": timeout}
    server = LocalServer(Runtime(env), port=port, **options).start()
    try:
        yield server
    finally:
        server.stop()
        server.runtime.service().metadata.close()


def new_session(server: LocalServer) -> tuple[str, dict[str, str]]:
    """A session made with the service key: its id and the headers that carry its token."""
    created = requests.post(
        f"{server.url}/v1/sessions", headers={"Authorization": f"Bearer {SERVICE_KEY}"}, timeout=5
    ).json()
    return created["session_id"], {"Authorization": f"Bearer {created['token']}"}


def outbox_of(runtime: Runtime) -> Outbox:
    storage = runtime.service().storage
    assert isinstance(storage, LocalStorage)
    assert isinstance(storage.events, Outbox)
    return storage.events


def eventually(check: Callable[[], bool], within: float = 15.0) -> bool:
    """Poll ``check`` until it holds (events are recorded after the answer, by the outbox's deliverer)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.02)
    return check()


def settle(runtime: Runtime) -> None:
    """Wait until every pending storage event has been delivered."""
    outbox = outbox_of(runtime)
    assert eventually(lambda: not outbox.pending()), [p.name for p in outbox.pending()]


def exchange(address: tuple[str, int], raw: bytes, half_close: bool = False, timeout: float = 5.0) -> bytes:
    """Send ``raw`` bytes on a fresh connection; everything the server answers until it closes or goes quiet."""
    with socket.create_connection(address, timeout=timeout) as sock:
        sock.sendall(raw)
        if half_close:
            sock.shutdown(socket.SHUT_WR)
        chunks = []
        try:
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        except (TimeoutError, ConnectionResetError):
            pass
        return b"".join(chunks)


def statuses(answer: bytes) -> list[int]:
    """The status codes of every HTTP answer in ``answer`` (pipelined or smuggled requests show up here)."""
    found = []
    for line in answer.split(b"\r\n"):
        if line.startswith(b"HTTP/1."):
            found.append(int(line.split()[1]))
    return found


def new_ticket(base: str) -> tuple[str, dict[str, str], dict[str, Any]]:
    """A session created with the service key, and its ticket for ``photos/user.png`` (``PNG``)."""
    created = requests.post(f"{base}/v1/sessions", headers={"Authorization": f"Bearer {SERVICE_KEY}"}, timeout=5)
    assert created.status_code == 201, created.text
    sid, token = created.json()["session_id"], created.json()["token"]
    auth = {"Authorization": f"Bearer {token}"}
    ticket = requests.post(
        f"{base}/v1/sessions/{sid}/uploads",
        json={"path": "photos/user.png", "content_type": "image/png", "size": len(PNG)},
        headers=auth,
        timeout=5,
    ).json()
    return sid, auth, ticket


def listed(base: str, sid: str, auth: dict[str, str]) -> list[str]:
    """The paths the API lists for the session (none while it answers an error)."""
    answer = requests.get(f"{base}/v1/sessions/{sid}/files", headers=auth, timeout=10)
    return [f["path"] for f in answer.json()["files"]] if answer.status_code == 200 else []
