"""Issue 11 on local mode, end to end over HTTP: no silent overwrite, names as people give them, checksums.

The local object endpoint answers as S3 does: a write that would replace an object under ``If-None-Match: *``
is ``412 PreconditionFailed``, a body whose MD5 is not its ``Content-MD5`` is ``400 BadDigest``.
"""

from __future__ import annotations

import base64
import hashlib
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from typing import Any
from urllib.parse import unquote

import pytest
import requests

from hera_sessions.reader import ChecksumMismatchError, SessionReader
from hera_sessions.runtimes.local.server import LocalServer
from tests.images import jpeg
from tests.local.helpers import local_server, new_session, settle

JPEG = jpeg(4, 3)  # real images: the event path records nothing else
OTHER_JPEG = jpeg(6, 5)


def md5_of(body: bytes) -> str:
    return base64.b64encode(hashlib.md5(body, usedforsecurity=False).digest()).decode()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalServer]:
    with local_server(tmp_path_factory.mktemp("sessions")) as srv:
        yield srv


@pytest.fixture
def session(server: LocalServer) -> tuple[str, dict[str, str]]:
    return new_session(server)


def ask(server: LocalServer, session: tuple[str, dict[str, str]], body: bytes, **extra: Any) -> requests.Response:
    sid, auth = session
    request = {"path": "photos/image.jpg", "content_type": "image/jpeg", "size": len(body), **extra}
    return requests.post(f"{server.url}/v1/sessions/{sid}/uploads", json=request, headers=auth, timeout=5)


def send(ticket: dict[str, Any], body: bytes, **headers: str) -> requests.Response:
    return requests.put(ticket["url"], data=body, headers={**ticket["headers"], **headers}, timeout=10)


def s3_code(answer: requests.Response) -> str:
    assert answer.headers["Content-Type"] == "application/xml"
    code = ET.fromstring(answer.content).findtext("Code")
    assert answer.headers["x-amz-error-code"] == code
    return str(code)


def files(server: LocalServer, session: tuple[str, dict[str, str]]) -> dict[str, dict[str, Any]]:
    sid, auth = session
    listed = requests.get(f"{server.url}/v1/sessions/{sid}/files", headers=auth, timeout=5).json()["files"]
    return {f["path"]: f for f in listed}


# -- no silent overwrite ---------------------------------------------------------------------------------


def test_two_photos_named_image_jpg_never_become_one(server: LocalServer, session: tuple[str, dict[str, str]]) -> None:
    # GIVEN a picked image.jpg got a ticket
    first = ask(server, session, JPEG, name="image.jpg", content_md5=md5_of(JPEG))
    assert first.status_code == 201

    # WHEN a second picked image.jpg (another file) asks for the same path THEN 409 file_exists
    second = ask(server, session, OTHER_JPEG, name="image.jpg", content_md5=md5_of(OTHER_JPEG))
    assert (second.status_code, second.json()["error"]["code"]) == (409, "file_exists")
    # ... while the first file asking again (a retry) gets a fresh ticket
    retry = ask(server, session, JPEG, name="image.jpg", content_md5=md5_of(JPEG)).json()

    # WHEN the first is stored THEN its path is taken: storage refuses a second write under a no-overwrite ticket
    assert send(retry, JPEG).status_code == 200
    stale = send(first.json(), JPEG)
    assert (stale.status_code, s3_code(stale)) == (412, "PreconditionFailed")
    settle(server.runtime)

    # ... and the API refuses a ticket for it: the client must choose another path, or overwrite
    again = ask(server, session, OTHER_JPEG)
    assert (again.status_code, again.json()["error"]["code"]) == (409, "file_exists")
    assert server.runtime.service().storage.read(retry["key"]) == JPEG
    assert files(server, session)["photos/image.jpg"]["size"] == len(JPEG)


def test_overwrite_true_replaces_the_file(server: LocalServer, session: tuple[str, dict[str, str]]) -> None:
    assert send(ask(server, session, JPEG).json(), JPEG).status_code == 200
    settle(server.runtime)

    ticket = ask(server, session, OTHER_JPEG, overwrite=True).json()
    assert "If-None-Match" not in ticket["headers"]
    assert send(ticket, OTHER_JPEG).status_code == 200
    settle(server.runtime)

    assert files(server, session)["photos/image.jpg"]["size"] == len(OTHER_JPEG)


def test_the_precondition_is_signed(server: LocalServer, session: tuple[str, dict[str, str]]) -> None:
    ticket = ask(server, session, JPEG).json()
    headers = {k: v for k, v in ticket["headers"].items() if k != "If-None-Match"}

    dropped = requests.put(ticket["url"], data=JPEG, headers=headers, timeout=10)

    assert (dropped.status_code, s3_code(dropped)) == (403, "SignatureDoesNotMatch")


# -- checksums ---------------------------------------------------------------------------------------------


def test_the_md5_goes_from_ticket_to_record_and_the_reader_checks_it(
    server: LocalServer, session: tuple[str, dict[str, str]]
) -> None:
    sid, _ = session
    ticket = ask(server, session, JPEG, content_md5=md5_of(JPEG)).json()
    assert ticket["headers"]["Content-MD5"] == md5_of(JPEG)

    assert send(ticket, JPEG).status_code == 200
    settle(server.runtime)

    assert files(server, session)["photos/image.jpg"]["content_md5"] == md5_of(JPEG)
    reader = SessionReader(server.runtime.service())
    assert reader.read(sid, "photos/image.jpg") == JPEG  # verified: the record has an MD5
    assert reader.file(sid, "photos/image.jpg").content_md5 == md5_of(JPEG)

    # WHEN the stored bytes change behind the service's back THEN the reader says so
    target = server.runtime.service().storage._file(ticket["key"])  # type: ignore[attr-defined]
    target.write_bytes(JPEG[:-1] + b"\x00")
    with pytest.raises(ChecksumMismatchError, match="not the bytes uploaded"):
        reader.read(sid, "photos/image.jpg")
    assert reader.read(sid, "photos/image.jpg", verify=False) == JPEG[:-1] + b"\x00"


def test_a_body_that_is_not_its_md5_is_bad_digest(server: LocalServer, session: tuple[str, dict[str, str]]) -> None:
    ticket = ask(server, session, JPEG, content_md5=md5_of(JPEG)).json()
    corrupted = JPEG[:-1] + b"\x00"

    answer = send(ticket, corrupted)

    assert (answer.status_code, s3_code(answer)) == (400, "BadDigest")
    assert list(server.runtime.service().storage.list_prefix(f"sessions/{session[0]}/")) == []
    # a different Content-MD5 than the one signed breaks the signature, as on S3
    other = send(ticket, corrupted, **{"Content-MD5": md5_of(corrupted)})
    assert (other.status_code, s3_code(other)) == (403, "SignatureDoesNotMatch")


def test_an_unsigned_content_md5_is_still_checked(server: LocalServer, session: tuple[str, dict[str, str]]) -> None:
    ticket = ask(server, session, JPEG).json()
    assert s3_code(send(ticket, JPEG, **{"Content-MD5": md5_of(b"other")})) == "BadDigest"
    assert s3_code(send(ticket, JPEG, **{"Content-MD5": "not-base64"})) == "InvalidDigest"
    assert send(ticket, JPEG, **{"Content-MD5": md5_of(JPEG)}).status_code == 200


def test_a_form_post_of_other_bytes_is_never_recorded(server: LocalServer, session: tuple[str, dict[str, str]]) -> None:
    # GIVEN a form POST ticket declaring JPEG's MD5 (a POST policy cannot bind it, on S3 as here)
    sid, _ = session
    ticket = ask(server, session, JPEG, method="POST", content_md5=md5_of(JPEG)).json()
    other = JPEG[:-2] + b"\x00\xd9"

    # WHEN other bytes of the same size are posted THEN storage takes them, but the event is refused: its ETag
    # (the object's MD5) is not the declared one, so the object is deleted and never recorded
    posted = requests.post(ticket["url"], data=ticket["fields"], files={"file": ("x", other)}, timeout=10)
    assert posted.status_code == 204
    settle(server.runtime)

    assert "photos/image.jpg" not in files(server, session)
    assert list(server.runtime.service().storage.list_prefix(f"sessions/{sid}/")) == []


def test_verify_true_without_an_md5_says_there_is_nothing_to_check(
    server: LocalServer, session: tuple[str, dict[str, str]]
) -> None:
    sid, _ = session
    assert send(ask(server, session, JPEG).json(), JPEG).status_code == 200
    settle(server.runtime)
    reader = SessionReader(server.runtime.service())
    assert reader.read(sid, "photos/image.jpg") == JPEG  # nothing to verify by default
    with pytest.raises(ChecksumMismatchError) as raised:
        reader.read(sid, "photos/image.jpg", verify=True)
    assert raised.value.code == "no_checksum"


# -- names -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "ascii_fallback"),
    [
        ("Фото \u0441 дачи.jpg", "image.jpg"),
        ("Café crème.jpg", "Cafe creme.jpg"),
        ("東京タワー 🗼.jpg", "image.jpg"),
        ('say "cheese".jpg', "image.jpg"),
    ],
)
def test_a_download_saves_under_the_name_given(
    server: LocalServer, session: tuple[str, dict[str, str]], name: str, ascii_fallback: str
) -> None:
    sid, auth = session
    assert send(ask(server, session, JPEG, name=name).json(), JPEG).status_code == 200
    settle(server.runtime)
    assert files(server, session)["photos/image.jpg"]["name"] == name

    got = requests.get(f"{server.url}/v1/sessions/{sid}/files/photos/image.jpg", headers=auth, timeout=5).json()
    assert got["name"] == name
    download = requests.get(got["url"], timeout=5)

    assert download.status_code == 200
    assert download.content == JPEG
    disposition = download.headers["Content-Disposition"]
    assert disposition.startswith(f"inline; filename=\"{ascii_fallback}\"; filename*=UTF-8''")
    # what a browser does with it (RFC 6266): the extended parameter wins, UTF-8 percent-decoded (RFC 5987)
    assert unquote(disposition.split("filename*=UTF-8''", 1)[1], errors="strict") == name
