"""The local server's connection limits and deadlines, and its framing rules, over raw sockets."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator

import pytest

from hera_sessions.runtime import Runtime
from hera_sessions.runtimes.local.server import LocalServer, _Channel
from tests.conftest import SERVICE_KEY, free_port
from tests.local.helpers import exchange, statuses

HEALTH = b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"


def start(tmp: str, **options: float) -> LocalServer:
    port = free_port()
    env = {
        "STORAGE_MODE": "local",
        "SESSION_TYPE": "local",
        "SESSIONS_DIR": tmp,
        "TOKEN_SECRET": "test-token-secret",
        "SERVICE_API_KEYS": SERVICE_KEY,
        "PORT": str(port),
    }
    return LocalServer(Runtime(env), port=port, **options).start()  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def strict(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalServer]:
    """A server with short deadlines: 3 s of silence, 1 s for a request head."""
    srv = start(str(tmp_path_factory.mktemp("strict")), timeout=3, head_timeout=1)
    yield srv
    srv.stop()
    srv.runtime.service().metadata.close()


@pytest.fixture(scope="module")
def plain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalServer]:
    """A server with the default deadlines, idle connections closed after 3 s."""
    srv = start(str(tmp_path_factory.mktemp("plain")), timeout=3)
    yield srv
    srv.stop()
    srv.runtime.service().metadata.close()


def closed_while_trickling(address: tuple[str, int], head: bytes, piece: bytes, pieces: int) -> bool:
    """Send ``head``, then ``piece`` every 0.5 s (never silent for long); True if the server closes first."""
    with socket.create_connection(address, timeout=5) as sock:
        sock.sendall(head)
        for _ in range(pieces):
            sock.settimeout(0.5)
            try:
                if sock.recv(4096) == b"":
                    return True
            except TimeoutError:
                pass
            except ConnectionResetError:
                return True
            try:
                sock.sendall(piece)
            except (BrokenPipeError, ConnectionResetError):
                return True
    return False


# 2: a head trickled a line at a time, and a body trickled a byte at a time, are cut off
def test_a_request_head_trickled_line_by_line_is_closed(strict: LocalServer) -> None:
    assert closed_while_trickling(strict.address, b"GET /health HTTP/1.1\r\n", b"X-A: b\r\n", 120)


def test_a_body_trickled_byte_by_byte_is_closed(strict: LocalServer) -> None:
    head = b"PUT /v1/sessions/x/meta/a HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n"
    assert closed_while_trickling(strict.address, head, b"a", 120)
    assert statuses(exchange(strict.address, HEALTH)) == [200]  # the server itself is fine


def test_more_than_a_hundred_half_sent_requests_lock_nobody_out(tmp_path_factory: pytest.TempPathFactory) -> None:
    srv = start(str(tmp_path_factory.mktemp("many")), timeout=60, head_timeout=60)
    socks = []
    try:
        for _ in range(150):
            sock = socket.create_connection(srv.address, timeout=5)
            sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n")
            socks.append(sock)
        time.sleep(0.5)  # let the server accept them all
        assert statuses(exchange(srv.address, HEALTH, timeout=10)) == [200]
    finally:
        for sock in socks:
            sock.close()
        srv.stop()
        srv.runtime.service().metadata.close()


# 8: Transfer-Encoding and Content-Length together are refused, and the connection is closed
@pytest.mark.parametrize("path", ["/v1/sessions/x/meta/a", "/local-storage/sessions/x/a.png"])
def test_a_request_with_both_transfer_encoding_and_content_length_is_refused(plain: LocalServer, path: str) -> None:
    request = (
        f"PUT {path} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n"
        "2\r\n{}\r\n0\r\n\r\n"
    ).encode()
    answer = exchange(plain.address, request + HEALTH)  # a second request on the same connection
    assert statuses(answer) == [400]  # answered once, then closed: the second request never runs
    body = answer.partition(b"\r\n\r\n")[2]
    if path.startswith("/v1"):
        assert json.loads(body)["error"]["code"] == "invalid_request"
    else:
        assert b"<Code>InvalidArgument</Code>" in body


# 18: a read that finds nothing (EAGAIN) keeps the connection
def test_a_spurious_wakeup_keeps_the_connection(plain: LocalServer) -> None:
    mine, theirs = socket.socketpair()
    try:
        mine.setblocking(False)
        channel = _Channel(plain.server, mine, ("127.0.0.1", 0), plain.server.adj, map={})
        channel.handle_read()  # nothing to read: recv raises BlockingIOError
        assert channel.connected and mine.fileno() != -1
        theirs.sendall(HEALTH)
        theirs.shutdown(socket.SHUT_WR)
        channel.handle_read()
        assert channel.requests  # the request was read on the same connection
    finally:
        mine.close()
        theirs.close()


def session_token(server: LocalServer) -> tuple[str, str]:
    answer = exchange(
        server.address,
        f"POST /v1/sessions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {SERVICE_KEY}\r\n"
        "Content-Length: 0\r\nConnection: close\r\n\r\n".encode(),
    )
    created = json.loads(answer.partition(b"\r\n\r\n")[2])
    return created["session_id"], created["token"]


def header(answer: bytes, name: str) -> str | None:
    for line in answer.partition(b"\r\n\r\n")[0].split(b"\r\n")[1:]:
        key, _, value = line.partition(b":")
        if key.strip().lower() == name.lower().encode():
            return value.strip().decode()
    return None


# 9: every oversize metadata document is 413 meta_too_large, also one the server refuses before the app
@pytest.mark.parametrize("size", [2 * 1024 * 1024, 50 * 1024 * 1024])
def test_an_oversize_metadata_document_is_meta_too_large(plain: LocalServer, size: int) -> None:
    sid, token = session_token(plain)
    request = (
        f"PUT /v1/sessions/{sid}/meta/profile HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {size}\r\nConnection: close\r\n\r\n"
    ).encode()
    body = b'"' + b"a" * (size - 2) + b'"' if size < 10 * 1024 * 1024 else b""
    answer = exchange(plain.address, request + body)
    assert statuses(answer) == [413]
    assert json.loads(answer.partition(b"\r\n\r\n")[2])["error"]["code"] == "meta_too_large"


# 12: one rule for 405s, with Allow on every one
@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("DELETE", "/local-storage/sessions/x/a.png", "GET, HEAD, OPTIONS, PUT"),
        ("POST", "/local-storage/sessions/x/a.png", "GET, HEAD, OPTIONS, PUT"),
        ("PUT", "/local-storage/", "GET, HEAD, OPTIONS, POST"),
        ("DELETE", "/", "GET, HEAD"),
        ("POST", "/web/app.js", "GET, HEAD"),
        ("TRACE", "/", "GET, HEAD"),
        ("DELETE", "/health", "GET, HEAD, OPTIONS"),
        ("PATCH", "/v1/sessions", "OPTIONS, POST"),
    ],
)
def test_every_405_names_what_the_route_serves(plain: LocalServer, method: str, path: str, allow: str) -> None:
    answer = exchange(plain.address, f"{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
    assert statuses(answer) == [405]
    assert header(answer, "Allow") == allow


def test_head_is_served_wherever_get_is(plain: LocalServer) -> None:
    answer = exchange(plain.address, b"HEAD /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert statuses(answer) == [200]
    assert answer.endswith(b"\r\n\r\n")  # no body


# 15: a path that starts with // is a path
@pytest.mark.parametrize("path", ["//health", "//v1/sessions", "//"])
def test_a_path_starting_with_two_slashes_is_not_another_route(plain: LocalServer, path: str) -> None:
    answer = exchange(plain.address, f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
    assert statuses(answer) == [404]  # not the index page, not a route of another path
    error = json.loads(answer.partition(b"\r\n\r\n")[2])["error"]
    assert error["code"] == "route_not_found" and path in error["message"]


# 16: status lines carry the standard reason phrase
def test_status_lines_have_their_reason_phrases(plain: LocalServer) -> None:
    sid, token = session_token(plain)
    body = json.dumps({"path": "a.png", "content_type": "image/png", "size": 5}).encode()
    created = exchange(
        plain.address,
        f"POST /v1/sessions/{sid}/uploads HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
        + body,
    )
    assert created.startswith(b"HTTP/1.1 201 Created\r\n"), created[:100]
    refused = exchange(
        plain.address, f"GET /v1/sessions/{sid}/files HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode()
    )
    assert refused.startswith(b"HTTP/1.1 401 Unauthorized\r\n"), refused[:100]
    unsupported = exchange(
        plain.address, b"PUT /v1/sessions/x/meta/a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n"
    )
    assert unsupported.startswith(b"HTTP/1.1 501 Not Implemented\r\n"), unsupported[:100]
