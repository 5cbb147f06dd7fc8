"""The local server under clients that lie, stall, smuggle or flood, over raw sockets."""

from __future__ import annotations

import concurrent.futures
import hashlib
import json
import socket
import subprocess
import threading
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests

from hera_sessions.backends.storage.local import LocalStorage
from hera_sessions.runtime import Runtime
from hera_sessions.runtimes.local.server import LocalServer
from tests.conftest import SERVICE_KEY, free_port
from tests.envs import service_env
from tests.images import png
from tests.local.helpers import exchange, settle, statuses

PNG = png(size=100)  # 100 bytes


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalServer]:
    port = free_port()
    env = service_env(sessions_dir=tmp_path_factory.mktemp("sessions"), PORT=str(port))
    srv = LocalServer(Runtime(env), port=port, timeout=2).start()
    yield srv
    srv.stop()
    srv.runtime.service().metadata.close()


def storage_of(server: LocalServer) -> LocalStorage:
    storage = server.runtime.service().storage
    assert isinstance(storage, LocalStorage)
    return storage


def new_session(server: LocalServer) -> tuple[str, dict[str, str]]:
    created = requests.post(
        f"{server.url}/v1/sessions", headers={"Authorization": f"Bearer {SERVICE_KEY}"}, timeout=5
    ).json()
    return created["session_id"], {"Authorization": f"Bearer {created['token']}"}


def ticket_for(
    server: LocalServer, method: str = "PUT", path: str = "photos/user.png", **extra: Any
) -> tuple[str, dict[str, Any]]:
    sid, auth = new_session(server)
    answer = requests.post(
        f"{server.url}/v1/sessions/{sid}/uploads",
        json={"path": path, "content_type": "image/png", "size": len(PNG), "method": method, **extra},
        headers=auth,
        timeout=5,
    )
    assert answer.status_code == 201, answer.text
    return sid, answer.json()


def target_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}"


def raw_put(ticket: dict[str, Any], body: bytes, length: int) -> bytes:
    return (
        f"PUT {target_of(ticket['url'])} HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\n"
        f"Content-Length: {length}\r\n\r\n"
    ).encode() + body


def recorded(server: LocalServer, sid: str) -> list[str]:
    settle(server.runtime)
    return [f.path for f in server.runtime.service().list_files(sid)]


def form(fields: dict[str, str], file: bytes, boundary: str = "b0und", close: bool = True) -> bytes:
    parts = [f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n' for k, v in fields.items()]
    body = "".join(parts).encode()
    body += f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="f"\r\n\r\n'.encode() + file
    return body + (f"\r\n--{boundary}--\r\n".encode() if close else b"\r\n")


# -- bodies shorter than they say -----------------------------------------------------------------------


@pytest.mark.parametrize("half_close", [True, False])
def test_a_put_shorter_than_its_content_length_is_never_stored(server: LocalServer, half_close: bool) -> None:
    # GIVEN a valid upload URL; WHEN the client declares 100 bytes, sends 10 and closes (or goes silent)
    sid, ticket = ticket_for(server)
    answer = exchange(server.address, raw_put(ticket, PNG[:10], len(PNG)), half_close=half_close, timeout=10)
    # THEN nothing is stored or recorded: a client still there to read is told why, as S3 tells it
    if half_close:
        assert statuses(answer) == [400]
        assert ET.fromstring(answer.split(b"\r\n\r\n", 1)[1]).findtext("Code") == "IncompleteBody"
    else:  # silent: dropped after the idle timeout
        assert answer == b""
    with pytest.raises(FileNotFoundError):
        storage_of(server).read(ticket["key"])
    assert recorded(server, sid) == []


def test_a_form_post_without_its_closing_boundary_is_refused(server: LocalServer) -> None:
    sid, ticket = ticket_for(server, "POST")
    body = form(ticket["fields"], PNG, close=False)

    answer = requests.post(
        ticket["url"], data=body, headers={"Content-Type": "multipart/form-data; boundary=b0und"}, timeout=5
    )

    assert answer.status_code == 400
    assert ET.fromstring(answer.content).findtext("Code") == "MalformedPOSTRequest"
    assert recorded(server, sid) == []
    # the same form, closed, is stored: the refusal is about the boundary alone
    closed = form(ticket["fields"], PNG)
    ok = requests.post(
        ticket["url"], data=closed, headers={"Content-Type": "multipart/form-data; boundary=b0und"}, timeout=5
    )
    assert ok.status_code == 204, ok.text
    assert recorded(server, sid) == ["photos/user.png"]


# -- floods and stalls ----------------------------------------------------------------------------------


def test_the_listen_backlog_holds_a_burst(server: LocalServer) -> None:
    # ss shows a listening socket's backlog in its Send-Q column
    listing = subprocess.run(
        ["ss", "-Hltn", f"sport = :{server.address[1]}"], capture_output=True, text=True, check=True
    ).stdout.split()
    assert int(listing[2]) >= 128


def test_a_burst_of_connections_is_served_without_resets(server: LocalServer) -> None:
    def health(_: int) -> int:
        return requests.get(server.url + "/health", timeout=30).status_code

    with concurrent.futures.ThreadPoolExecutor(24) as pool:
        codes = list(pool.map(health, range(40)))
    assert codes == [200] * 40


def test_stalled_clients_hold_nothing_and_are_closed(server: LocalServer) -> None:
    # GIVEN 30 clients that send half a request and then nothing
    stalled = []
    for _ in range(30):
        sock = socket.create_connection(server.address, timeout=15)
        sock.sendall(b"PUT /v1/sessions HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nabc")
        stalled.append(sock)
    try:
        # WHEN others come: THEN they are served (no thread is held by the stalled ones)
        assert requests.get(server.url + "/health", timeout=10).status_code == 200
        # AND each stalled connection is closed by the server after its idle timeout (2 s here)
        for sock in stalled:
            assert sock.recv(1024) == b""
    finally:
        for sock in stalled:
            sock.close()


def test_an_idle_keep_alive_connection_is_closed(server: LocalServer) -> None:
    with socket.create_connection(server.address, timeout=15) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        first = sock.recv(65536)
        assert first.startswith(b"HTTP/1.1 200")
        while sock.recv(65536):  # the rest of the answer, then the server's close
            pass


# -- smuggling ------------------------------------------------------------------------------------------


def test_a_request_hidden_in_a_chunked_body_is_not_executed(server: LocalServer) -> None:
    hidden = b"POST /v1/sessions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + SERVICE_KEY.encode() + b"\r\n\r\n"
    raw = (
        b"POST /v1/sessions HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n"
        b"Connection: close\r\n\r\n" + f"{len(hidden):x}\r\n".encode() + hidden + b"\r\n0\r\n\r\n"
    )
    answer = exchange(server.address, raw)
    assert statuses(answer) == [400]  # one answer: Transfer-Encoding with Content-Length is refused
    answer = exchange(server.address, raw.replace(b"Content-Length: 4\r\n", b""))
    assert statuses(answer) == [401]  # one answer: the outer request, with no credentials


def test_a_second_content_length_is_refused(server: LocalServer) -> None:
    hidden = b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n"
    raw = b"POST /v1/sessions HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nContent-Length: 35\r\n\r\n" + hidden
    answer = exchange(server.address, raw)
    assert statuses(answer) == [400]
    assert json.loads(answer.split(b"\r\n\r\n", 1)[1])["error"]["code"] == "invalid_request"


def test_an_unsupported_transfer_encoding_is_refused(server: LocalServer) -> None:
    raw = b"POST /v1/sessions HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n"
    answer = exchange(server.address, raw)
    assert statuses(answer) == [501]


# -- methods no route serves ----------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["TRACE", "PATCH", "CONNECT", "BREW"])
@pytest.mark.parametrize("path", ["/v1/sessions", "/health", "/", "/web/hera-sessions.js", "/local-storage/x"])
def test_methods_no_route_serves_are_405_with_allow(server: LocalServer, method: str, path: str) -> None:
    answer = exchange(server.address, f"{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
    head, _, body = answer.partition(b"\r\n\r\n")
    assert statuses(answer) == [405]
    if path.startswith("/local-storage"):  # S3's answer on the object routes
        assert b"<Code>MethodNotAllowed</Code>" in body
    else:
        assert json.loads(body)["error"]["code"] == "method_not_allowed"
    allow = next(line for line in head.split(b"\r\n") if line.lower().startswith(b"allow:"))
    assert method.encode() not in allow


@pytest.mark.parametrize("method", ["GET", "TRACE", "DELETE"])
def test_a_path_no_route_serves_is_404_for_every_method(server: LocalServer, method: str) -> None:
    answer = exchange(server.address, f"{method} /nope HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
    assert statuses(answer) == [404]
    assert json.loads(answer.partition(b"\r\n\r\n")[2])["error"]["code"] == "route_not_found"


# -- odd Content-Length values --------------------------------------------------------------------------


@pytest.mark.parametrize("length", ["²", "١٢", "+5"])
def test_non_ascii_digits_in_content_length_are_400(server: LocalServer, length: str) -> None:
    api = exchange(
        server.address, f"POST /v1/sessions HTTP/1.1\r\nHost: x\r\nContent-Length: {length}\r\n\r\n".encode()
    )
    assert statuses(api) == [400]
    assert json.loads(api.split(b"\r\n\r\n", 1)[1])["error"]["code"] == "invalid_request"
    obj = exchange(
        server.address, f"PUT /local-storage/x HTTP/1.1\r\nHost: x\r\nContent-Length: {length}\r\n\r\n".encode()
    )
    assert statuses(obj) == [400]
    assert ET.fromstring(obj.split(b"\r\n\r\n", 1)[1]).findtext("Code") == "InvalidArgument"


# -- paths and races ------------------------------------------------------------------------------------


def test_the_longest_path_the_rules_accept_uploads(server: LocalServer) -> None:
    path = "b" * 246 + ".png"  # 250 bytes in one file name: a temporary name beside it would pass NAME_MAX
    sid, ticket = ticket_for(server, path=path)

    answer = requests.put(ticket["url"], data=PNG, headers=ticket["headers"], timeout=5)

    assert answer.status_code == 200, answer.text
    assert recorded(server, sid) == [path]


def test_racing_puts_leave_the_record_matching_the_stored_object(server: LocalServer) -> None:
    sid, ticket = ticket_for(server, overwrite=True)
    bodies = [PNG[:-1] + bytes([i]) for i in range(4)]
    for _ in range(25):
        barrier = threading.Barrier(4)

        def put(body: bytes, barrier: threading.Barrier = barrier) -> int:
            barrier.wait()
            return requests.put(ticket["url"], data=body, headers=ticket["headers"], timeout=10).status_code

        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            assert list(pool.map(put, bodies)) == [200] * 4
        settle(server.runtime)
        stored = hashlib.md5(storage_of(server).read(ticket["key"])).hexdigest()
        (record,) = server.runtime.service().list_files(sid)
        assert (record.etag or "").strip('"') == stored


def test_racing_no_overwrite_puts_store_exactly_one(server: LocalServer) -> None:
    # GIVEN one no-overwrite ticket, sent four times at once with four different bodies
    sid, ticket = ticket_for(server)
    assert ticket["headers"]["If-None-Match"] == "*"
    bodies = [PNG[:-1] + bytes([i]) for i in range(4)]
    barrier = threading.Barrier(4)

    def put(body: bytes) -> int:
        barrier.wait()
        return requests.put(ticket["url"], data=body, headers=ticket["headers"], timeout=10).status_code

    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        statuses_seen = list(pool.map(put, bodies))

    # THEN one is stored, three get S3's 412 PreconditionFailed, and the record is the one stored
    assert sorted(statuses_seen) == [200, 412, 412, 412]
    settle(server.runtime)
    stored = storage_of(server).read(ticket["key"])
    assert stored == bodies[statuses_seen.index(200)]
    (record,) = server.runtime.service().list_files(sid)
    assert (record.etag or "").strip('"') == hashlib.md5(stored).hexdigest()


def test_a_body_larger_than_any_route_takes_is_refused_before_it_is_read(server: LocalServer) -> None:
    huge = 10**12
    api = exchange(server.address, f"POST /v1/sessions HTTP/1.1\r\nHost: x\r\nContent-Length: {huge}\r\n\r\n".encode())
    assert statuses(api) == [413]
    assert json.loads(api.split(b"\r\n\r\n", 1)[1])["error"]["code"] == "too_large"
    obj = exchange(
        server.address, f"PUT /local-storage/x HTTP/1.1\r\nHost: x\r\nContent-Length: {huge}\r\n\r\n".encode()
    )
    assert statuses(obj) == [400]
    assert ET.fromstring(obj.split(b"\r\n\r\n", 1)[1]).findtext("Code") == "EntityTooLarge"
