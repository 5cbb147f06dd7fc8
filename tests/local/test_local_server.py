"""The local server over real HTTP: the embedded default, end to end, as a user of `make dev` meets it."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from hera_sessions.runtime import Runtime
from hera_sessions.runtimes.local.server import LocalServer
from tests.conftest import SERVICE_KEY, free_port
from tests.images import png
from tests.local.helpers import settle
from tests.servers import HeraServe

PNG = png(size=10248)


@pytest.fixture
def server(local_env: dict[str, str]) -> Iterator[LocalServer]:
    port = free_port()
    runtime = Runtime({**local_env, "PORT": str(port), "CORS_ALLOWED_ORIGINS": "http://app.test"})
    srv = LocalServer(runtime, port=port).start()
    yield srv
    srv.stop()


def new_session(base: str) -> tuple[str, dict[str, str]]:
    created = requests.post(f"{base}/v1/sessions", headers={"Authorization": f"Bearer {SERVICE_KEY}"}, timeout=5)
    assert created.status_code == 201
    body = created.json()
    return body["session_id"], {"Authorization": f"Bearer {body['token']}"}


def send(ticket: dict[str, Any], body: bytes) -> requests.Response:
    """Upload exactly as the ticket says: PUT with its headers, or a form POST with its fields first."""
    if ticket["protocol"] == "post":
        return requests.post(ticket["url"], data=ticket["fields"], files={"file": ("f", body)}, timeout=10)
    return requests.request(ticket["method"], ticket["url"], data=body, headers=ticket["headers"], timeout=10)


@pytest.mark.parametrize("method", ["PUT", "POST"])
def test_the_whole_flow_over_http(server: LocalServer, method: str) -> None:
    base = server.url
    sid, auth = new_session(base)

    ticket = requests.post(
        f"{base}/v1/sessions/{sid}/uploads",
        json={"path": "photos/user.png", "content_type": "image/png", "size": len(PNG), "method": method},
        headers=auth,
        timeout=5,
    ).json()
    stored = send(ticket, PNG)
    assert stored.status_code in (200, 204), stored.text
    assert stored.headers["ETag"].startswith('"')
    settle(server.runtime)

    files = requests.get(f"{base}/v1/sessions/{sid}/files", headers=auth, timeout=5).json()["files"]
    assert [(f["path"], f["size"], f["content_type"]) for f in files] == [("photos/user.png", len(PNG), "image/png")]

    download = requests.get(f"{base}/v1/sessions/{sid}/files/photos/user.png", headers=auth, timeout=5).json()
    fetched = requests.get(download["url"], timeout=5)
    assert fetched.status_code == 200
    assert fetched.content == PNG
    assert fetched.headers["Content-Type"] == "image/png"
    assert fetched.headers["Content-Disposition"] == 'inline; filename="user.png"'

    assert requests.delete(f"{base}/v1/sessions/{sid}", headers=auth, timeout=5).status_code == 204
    assert requests.get(f"{base}/v1/sessions/{sid}/files", headers=auth, timeout=5).status_code == 410
    assert requests.get(download["url"], timeout=5).status_code == 404
    assert send(ticket, PNG).status_code in (200, 204)  # a URL issued before the erasure still uploads...
    settle(server.runtime)
    objects = server.runtime.service().storage.list_prefix(f"sessions/{sid}/")
    assert list(objects) == []  # ...and leaves nothing behind


def test_the_demo_page_and_openapi_are_served(server: LocalServer) -> None:
    page = requests.get(server.url + "/", timeout=5)
    assert page.status_code == 200
    assert "text/html" in page.headers["Content-Type"]
    assert requests.get(server.url + "/web/hera-sessions.js", timeout=5).headers["Content-Type"] == "text/javascript"
    assert requests.get(server.url + "/web/../pyproject.toml", timeout=5).status_code == 404
    spec = requests.get(server.url + "/openapi.json", timeout=5).json()
    assert spec["openapi"].startswith("3.")


def test_make_dev_serves_on_port_and_stops_cleanly_on_ctrl_c(tmp_path: Path) -> None:
    server = HeraServe({"SESSIONS_DIR": str(tmp_path / "data")}, tmp_path, separate_stderr=True, start=False)
    server.env.pop("SERVICE_API_KEYS", None)  # type: ignore[union-attr]
    port, proc = server.port, server.start().proc
    try:
        assert requests.get(f"http://127.0.0.1:{port}/health", timeout=5).json()["status"] == "ok"
        created = requests.post(f"http://127.0.0.1:{port}/v1/sessions", timeout=5)
        assert created.status_code == 201  # local mode with no keys: open, with a warning
    finally:
        server.signal(signal.SIGINT)
        server.wait(10)
        out, err = server.output(), server.errors()
    assert proc.returncode == 0
    assert b"hera-sessions stopped" in out
    assert b"SERVICE_API_KEYS is empty" in err
    assert b"POST /v1/sessions 201" in err  # each request is logged...
    assert created.json()["token"].encode() not in err  # ...never a token


def test_make_dev_stops_when_signals_come_in_a_burst(tmp_path: Path) -> None:
    # GIVEN make dev serving; WHEN Ctrl-C and SIGTERM arrive many times in a row (make, timeout and a shell may each
    # forward one) THEN it still stops cleanly (a handler that locks could interrupt itself and hang)
    server = HeraServe({"SESSIONS_DIR": str(tmp_path / "data")}, tmp_path, start=False)
    proc = server.start().proc
    assert proc is not None
    try:
        assert requests.get(f"{server.url}/health", timeout=5).json()["status"] == "ok"
    finally:
        for _ in range(50):
            server.signal(signal.SIGINT)
            server.signal(signal.SIGTERM)
        server.wait(20)
    assert proc.returncode == 0
    assert b"hera-sessions stopped" in server.output()


def test_a_bad_setting_stops_make_dev_with_a_clear_message(tmp_path: Path) -> None:
    env = {**os.environ, "SESSION_TTL": "soon", "SESSIONS_DIR": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-m", "hera_sessions.cli", "serve"], env=env, capture_output=True, timeout=30
    )
    assert done.returncode == 2
    assert b"SESSION_TTL='soon' is not a whole number" in done.stderr


@pytest.mark.parametrize(
    ("host", "says"),
    [
        ("127.0.0.1", "the port is already in use (another make dev?); stop that one or set PORT to a free port"),
        ("192.0.2.1", "HOST is not an address of this machine"),
        ("no-such-host.invalid", "HOST is not an address of this machine"),
    ],
)
def test_a_port_it_cannot_listen_on_is_one_line_and_a_non_zero_exit(tmp_path: Path, host: str, says: str) -> None:
    # GIVEN a port another program holds (or a HOST that is not this machine's)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = {**os.environ, "PORT": str(port), "HOST": host, "SESSIONS_DIR": str(tmp_path / "data")}
        # WHEN make dev starts on it
        done = subprocess.run(
            [sys.executable, "-m", "hera_sessions.cli", "serve"], env=env, capture_output=True, text=True, timeout=60
        )
    # THEN it says so in one line naming the address, and exits non-zero: no traceback
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1].startswith(f"hera-sessions: cannot listen on {host}:{port}: {says}")
    assert "Traceback" not in done.stderr
    # and the embedded metadata server it had started is stopped again
    assert not (tmp_path / "data" / "redis" / "server.json").exists()


def test_the_local_lifecycle_expires_old_objects(server: LocalServer) -> None:
    storage = server.runtime.service().storage
    sid, _ = new_session(server.url)
    storage.write(f"sessions/{sid}/photos/old.png", PNG)  # type: ignore[attr-defined]
    storage.write(f"sessions/{sid}/photos/new.png", PNG)  # type: ignore[attr-defined]
    old = storage.open(f"sessions/{sid}/photos/old.png")  # type: ignore[attr-defined]
    eight_days_ago = old.stat().st_mtime - 8 * 86_400
    os.utime(old, (eight_days_ago, eight_days_ago))
    assert storage.expire(7 * 86_400) == 1  # type: ignore[attr-defined]
    settle(server.runtime)
    assert [o.key.rsplit("/", 1)[1] for o in storage.list_prefix(f"sessions/{sid}/")] == ["new.png"]
    assert [f.path for f in server.runtime.service().list_files(sid)] == ["photos/new.png"]


def raw_request(server: LocalServer, method: str, path: str, headers: dict[str, str], body: bytes = b"") -> int:
    """A request as a hostile client sends it (http.client lets headers lie)."""
    import http.client

    host, port = server.address
    conn = http.client.HTTPConnection(str(host), int(port), timeout=5)
    conn.putrequest(method, path, skip_accept_encoding=True)
    for name, value in headers.items():
        conn.putheader(name, value)
    conn.endheaders(body or None)
    status = conn.getresponse().status
    conn.close()
    return status


@pytest.mark.parametrize("length", ["-1", "abc", "1e9", " "])
def test_a_malformed_content_length_is_400_before_anything_is_read(server: LocalServer, length: str) -> None:
    for path, ctype in (("/v1/sessions", "application/json"), ("/local-storage/", "multipart/form-data; boundary=x")):
        assert raw_request(server, "POST", path, {"Content-Length": length, "Content-Type": ctype}) == 400


def test_an_oversized_api_body_is_413_json(server: LocalServer) -> None:
    sid, auth = new_session(server.url)
    big = {"text": "x" * (1024 * 1024 + 70 * 1024)}
    answer = requests.put(f"{server.url}/v1/sessions/{sid}/meta/doc", json=big, headers=auth, timeout=10)
    assert answer.status_code == 413
    assert answer.json()["error"]["code"] == "meta_too_large"


def test_nul_bytes_in_static_paths_are_404(server: LocalServer) -> None:
    assert requests.get(f"{server.url}/web/%00", timeout=5).status_code == 404
    assert requests.get(f"{server.url}/web/app.js%00.png", timeout=5).status_code == 404
