"""The local object endpoints behave toward clients as S3 does.

Any client that uploads with a presigned request (a URL, headers, form fields) must work against local mode
unchanged and learn why an upload was refused: S3's status codes, S3's XML error document (``Code``,
``Message``) and the ``x-amz-error-code`` header. CORS answers are compared with a real bucket (moto in
server mode) configured from the same origins setting.
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import pytest
import requests

from hera_sessions.backends.storage.base import DownloadSpec, UploadSpec
from hera_sessions.backends.storage.local import LocalStorage
from hera_sessions.http import cors
from hera_sessions.runtimes.local.server import LocalServer
from tests.conftest import MotoServer, free_port
from tests.images import png
from tests.local.helpers import local_server, new_session

APP = "http://app.test"
OTHER = "http://evil.test"
PNG = png(size=1032)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalServer]:
    """One local server for the module (each test works in a session of its own)."""
    with local_server(tmp_path_factory.mktemp("sessions"), origins=[APP]) as srv:
        yield srv


@pytest.fixture
def session(server: LocalServer) -> tuple[str, dict[str, str]]:
    return new_session(server)


def ticket_for(
    server: LocalServer, session: tuple[str, dict[str, str]], method: str = "PUT", size: int = len(PNG)
) -> dict[str, Any]:
    sid, auth = session
    answer = requests.post(
        f"{server.url}/v1/sessions/{sid}/uploads",
        json={"path": "photos/user.png", "content_type": "image/png", "size": size, "method": method},
        headers=auth,
        timeout=5,
    )
    assert answer.status_code == 201, answer.text
    ticket: dict[str, Any] = answer.json()
    return ticket


def storage_of(server: LocalServer) -> LocalStorage:
    storage = server.runtime.service().storage
    assert isinstance(storage, LocalStorage)
    return storage


def put(ticket: dict[str, Any], body: bytes, **headers: str) -> requests.Response:
    return requests.put(ticket["url"], data=body, headers={**ticket["headers"], **headers}, timeout=5)


def post(ticket: dict[str, Any], body: bytes | None, **fields: str) -> requests.Response:
    files = {"file": ("user.png", body, "image/png")} if body is not None else None
    data = {**ticket["fields"], **fields}
    if files is None:  # a form with no file still goes as multipart/form-data
        return requests.post(ticket["url"], files={k: (None, v) for k, v in data.items()}, timeout=5)
    return requests.post(ticket["url"], data=data, files=files, timeout=5)


def with_query(url: str, **changes: str) -> str:
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query)) | changes
    return urlunsplit(parts._replace(query=urlencode(query)))


def s3_error(answer: requests.Response) -> tuple[str, str]:
    """The (Code, Message) of S3's XML error document; its header must name the same code."""
    assert answer.headers["Content-Type"] == "application/xml"
    root = ET.fromstring(answer.content)
    assert root.tag == "Error"
    code, message = root.findtext("Code"), root.findtext("Message")
    assert code and message
    assert answer.headers["x-amz-error-code"] == code
    return code, message


# -- what works ------------------------------------------------------------------------------------------


def test_a_presigned_put_stores_the_bytes_and_answers_their_etag(
    server: LocalServer, session: tuple[str, dict[str, str]]
) -> None:
    ticket = ticket_for(server, session)

    answer = put(ticket, PNG)

    assert answer.status_code == 200
    assert answer.headers["ETag"] == f'"{hashlib.md5(PNG).hexdigest()}"'
    assert storage_of(server).read(ticket["key"]) == PNG


def test_a_form_post_stores_the_bytes_and_answers_204_with_the_etag(
    server: LocalServer, session: tuple[str, dict[str, str]]
) -> None:
    ticket = ticket_for(server, session, "POST")
    assert next(iter(ticket["fields"])) == "key"  # the fields go first, the file last, as S3 wants

    answer = post(ticket, PNG)

    assert answer.status_code == 204
    assert answer.headers["ETag"] == f'"{hashlib.md5(PNG).hexdigest()}"'
    assert storage_of(server).read(ticket["key"]) == PNG


# -- refusals: S3's status, Code and Message -------------------------------------------------------------


def test_an_expired_upload_url_is_403_access_denied(server: LocalServer) -> None:
    # GIVEN a correctly signed URL whose time is up
    storage = storage_of(server)
    past = time.time() - 60
    ticket = storage.presign_upload(UploadSpec("sessions/" + "a" * 32 + "/x.png", "image/png", 4, "PUT", 1, past))

    answer = requests.put(ticket.url, data=b"abcd", headers=ticket.headers, timeout=5)

    assert answer.status_code == 403
    assert s3_error(answer) == ("AccessDenied", "Request has expired")


def test_an_expired_download_url_is_403_access_denied(server: LocalServer, session: tuple[str, dict[str, str]]) -> None:
    ticket = ticket_for(server, session)
    assert put(ticket, PNG).status_code == 200
    url = storage_of(server).presign_download(DownloadSpec(ticket["key"], "image/png", "user.png", 1, time.time() - 1))

    answer = requests.get(url, timeout=5)

    assert answer.status_code == 403
    assert s3_error(answer)[0] == "AccessDenied"


@pytest.mark.parametrize(
    "tamper",
    [
        {"X-Hera-Signature": "bm90LXRoZS1zaWduYXR1cmU"},
        {"X-Hera-Size": str(len(PNG) * 100)},  # a bigger size than was signed
        {"X-Hera-Expires": "9999999999"},  # a later expiry than was signed
    ],
    ids=["signature", "size", "expiry"],
)
def test_a_tampered_upload_url_is_403_signature_does_not_match(
    server: LocalServer, session: tuple[str, dict[str, str]], tamper: dict[str, str]
) -> None:
    ticket = ticket_for(server, session)

    answer = put({**ticket, "url": with_query(ticket["url"], **tamper)}, PNG)

    assert answer.status_code == 403
    assert s3_error(answer)[0] == "SignatureDoesNotMatch"
    assert list(storage_of(server).list_prefix(f"sessions/{session[0]}/")) == []


def test_a_url_with_no_signature_is_403_access_denied(server: LocalServer, session: tuple[str, dict[str, str]]) -> None:
    ticket = ticket_for(server, session)
    parts = urlsplit(ticket["url"])

    answer = requests.put(urlunsplit(parts._replace(query="")), data=PNG, headers=ticket["headers"], timeout=5)

    assert answer.status_code == 403
    assert s3_error(answer)[0] == "AccessDenied"


def test_more_bytes_than_signed_is_400_entity_too_large(
    server: LocalServer, session: tuple[str, dict[str, str]]
) -> None:
    ticket = ticket_for(server, session)

    answer = put(ticket, PNG + b"more")

    assert answer.status_code == 400
    code, message = s3_error(answer)
    assert code == "EntityTooLarge"
    assert "exceeds the maximum allowed size" in message


def test_a_content_type_other_than_the_signed_one_is_403_signature_does_not_match(
    server: LocalServer, session: tuple[str, dict[str, str]]
) -> None:
    ticket = ticket_for(server, session)

    answer = put(ticket, PNG, **{"Content-Type": "text/html"})

    assert answer.status_code == 403
    assert s3_error(answer)[0] == "SignatureDoesNotMatch"


def test_a_put_without_content_length_is_411(server: LocalServer, session: tuple[str, dict[str, str]]) -> None:
    ticket = ticket_for(server, session)

    def chunks() -> Iterator[bytes]:  # a generator body goes chunked, with no Content-Length
        yield PNG

    answer = requests.put(ticket["url"], data=chunks(), headers=ticket["headers"], timeout=5)

    assert answer.status_code == 411
    assert s3_error(answer)[0] == "MissingContentLength"


@pytest.mark.parametrize(
    ("change", "status", "code"),
    [
        ({"key": "sessions/" + "b" * 32 + "/other.png"}, 403, "AccessDenied"),
        ({"Content-Type": "text/html"}, 403, "AccessDenied"),
        ({"x-hera-signature": "bm90LXRoZS1zaWduYXR1cmU"}, 403, "SignatureDoesNotMatch"),
        ({"policy": base64.b64encode(b'{"expiration": "9999999999", "conditions": []}').decode()}, 403, None),
    ],
    ids=["other-key", "other-type", "bad-signature", "rewritten-policy"],
)
def test_a_form_post_that_breaks_its_policy_is_refused(
    server: LocalServer, session: tuple[str, dict[str, str]], change: dict[str, str], status: int, code: str | None
) -> None:
    ticket = ticket_for(server, session, "POST")

    answer = post(ticket, PNG, **change)

    assert answer.status_code == status
    got, message = s3_error(answer)
    assert got == (code or "SignatureDoesNotMatch")
    if got == "AccessDenied":
        assert message.startswith("Invalid according to Policy")
    assert list(storage_of(server).list_prefix(f"sessions/{session[0]}/")) == []


def test_a_form_post_larger_than_its_policy_is_400_entity_too_large(
    server: LocalServer, session: tuple[str, dict[str, str]]
) -> None:
    ticket = ticket_for(server, session, "POST", size=16)

    answer = post(ticket, PNG)

    assert answer.status_code == 400
    assert s3_error(answer)[0] == "EntityTooLarge"


def test_an_empty_file_in_a_form_post_is_400_entity_too_small(
    server: LocalServer, session: tuple[str, dict[str, str]]
) -> None:
    ticket = ticket_for(server, session, "POST")

    answer = post(ticket, b"")

    assert answer.status_code == 400
    assert s3_error(answer)[0] == "EntityTooSmall"


def test_an_expired_post_policy_is_403_access_denied(server: LocalServer) -> None:
    storage = storage_of(server)
    past = time.time() - 60
    ticket = storage.presign_upload(UploadSpec("sessions/" + "a" * 32 + "/x.png", "image/png", 4, "POST", 1, past))

    answer = requests.post(ticket.url, data=ticket.fields, files={"file": ("x.png", b"abcd")}, timeout=5)

    assert answer.status_code == 403
    assert s3_error(answer) == ("AccessDenied", "Invalid according to Policy: Policy expired.")


def test_a_form_post_with_no_file_is_400_invalid_argument(
    server: LocalServer, session: tuple[str, dict[str, str]]
) -> None:
    ticket = ticket_for(server, session, "POST")

    answer = post(ticket, None)

    assert answer.status_code == 400
    assert s3_error(answer)[0] == "InvalidArgument"


def test_a_post_that_is_not_a_form_is_412_precondition_failed(
    server: LocalServer, session: tuple[str, dict[str, str]]
) -> None:
    ticket = ticket_for(server, session, "POST")

    answer = requests.post(ticket["url"], data=json.dumps(ticket["fields"]), timeout=5)

    assert answer.status_code == 412
    assert s3_error(answer)[0] == "PreconditionFailed"


def test_a_missing_object_is_404_no_such_key(server: LocalServer) -> None:
    # GIVEN a validly signed download URL for an object that is not there
    url = storage_of(server).presign_download(
        DownloadSpec("sessions/" + "a" * 32 + "/gone.png", "image/png", "gone.png", 60, time.time() + 60)
    )

    answer = requests.get(url, timeout=5)

    assert answer.status_code == 404
    assert s3_error(answer) == ("NoSuchKey", "The specified key does not exist.")
    assert ET.fromstring(answer.content).findtext("Resource") == "/sessions/" + "a" * 32 + "/gone.png"


@pytest.mark.parametrize("method", ["DELETE"])
def test_other_methods_are_405_method_not_allowed(
    server: LocalServer, session: tuple[str, dict[str, str]], method: str
) -> None:
    ticket = ticket_for(server, session)

    answer = requests.request(method, ticket["url"], timeout=5)

    assert answer.status_code == 405
    assert s3_error(answer)[0] == "MethodNotAllowed"


def test_an_s3_client_reads_why_it_was_refused_from_the_error_document(
    server: LocalServer, session: tuple[str, dict[str, str]]
) -> None:
    """botocore parses S3 error documents into its ClientError: the local endpoints' are read the same way."""
    from botocore.parsers import create_parser

    ticket = ticket_for(server, session)
    answer = put(ticket, PNG + b"more")

    parsed = create_parser("rest-xml").parse(
        {"status_code": answer.status_code, "headers": dict(answer.headers), "body": answer.content},
        None,  # type: ignore[arg-type]  # no output shape: only the error is read
    )

    assert parsed["Error"]["Code"] == "EntityTooLarge"
    assert "maximum allowed size" in parsed["Error"]["Message"]


# -- CORS, exactly as the bucket -------------------------------------------------------------------------


def preflight(url: str, origin: str, method: str = "PUT", headers: str = "content-type") -> requests.Response:
    return requests.options(
        url,
        headers={"Origin": origin, "Access-Control-Request-Method": method, "Access-Control-Request-Headers": headers},
        timeout=5,
    )


def test_a_preflight_from_an_allowed_origin_is_answered_as_s3_does(
    server: LocalServer, session: tuple[str, dict[str, str]]
) -> None:
    ticket = ticket_for(server, session)

    answer = preflight(ticket["url"], APP)

    assert answer.status_code == 200
    assert answer.headers["Access-Control-Allow-Origin"] == APP
    assert answer.headers["Access-Control-Allow-Methods"] == "PUT, POST, GET"
    assert answer.headers["Access-Control-Allow-Headers"] == "content-type"
    assert answer.headers["Access-Control-Expose-Headers"] == "ETag"
    assert answer.headers["Access-Control-Max-Age"] == "3000"


@pytest.mark.parametrize(
    ("origin", "method"),
    [(OTHER, "PUT"), (APP, "DELETE"), ("http://app.test:8080", "PUT")],
    ids=["other-origin", "method-not-in-the-rule", "other-port"],
)
def test_a_preflight_the_rules_do_not_allow_is_403_access_forbidden(
    server: LocalServer, session: tuple[str, dict[str, str]], origin: str, method: str
) -> None:
    ticket = ticket_for(server, session)

    answer = preflight(ticket["url"], origin, method)

    assert answer.status_code == 403
    assert s3_error(answer)[0] == "AccessForbidden"
    assert "Access-Control-Allow-Origin" not in answer.headers


def test_a_preflight_without_an_origin_is_400(server: LocalServer, session: tuple[str, dict[str, str]]) -> None:
    ticket = ticket_for(server, session)

    answer = requests.options(ticket["url"], headers={"Access-Control-Request-Method": "PUT"}, timeout=5)

    assert answer.status_code == 400
    assert s3_error(answer)[0] == "BadRequest"


@pytest.mark.parametrize("method", ["PUT", "POST"])
def test_uploads_from_an_allowed_origin_expose_the_etag(
    server: LocalServer, session: tuple[str, dict[str, str]], method: str
) -> None:
    ticket = ticket_for(server, session, method)

    answer = put(ticket, PNG, Origin=APP) if method == "PUT" else _post_from(ticket, APP)

    assert answer.status_code in (200, 204)
    assert answer.headers["Access-Control-Allow-Origin"] == APP
    assert answer.headers["Access-Control-Expose-Headers"] == "ETag"
    assert answer.headers["ETag"]


def test_refusals_carry_cors_headers_so_the_page_can_read_why(
    server: LocalServer, session: tuple[str, dict[str, str]]
) -> None:
    ticket = ticket_for(server, session)

    answer = put(ticket, PNG + b"more", Origin=APP)

    assert answer.status_code == 400
    assert answer.headers["Access-Control-Allow-Origin"] == APP


def test_answers_to_other_origins_carry_no_cors_headers(
    server: LocalServer, session: tuple[str, dict[str, str]]
) -> None:
    ticket = ticket_for(server, session)

    answer = put(ticket, PNG, Origin=OTHER)

    assert "Access-Control-Allow-Origin" not in answer.headers


def _post_from(ticket: dict[str, Any], origin: str) -> requests.Response:
    return requests.post(
        ticket["url"], data=ticket["fields"], files={"file": ("user.png", PNG)}, headers={"Origin": origin}, timeout=5
    )


@pytest.fixture
def bucket_url(aws_env: dict[str, str], moto_server: MotoServer) -> Iterator[str]:
    """A moto bucket whose CORS rules come from cors.py for the same origins as the local server."""
    import boto3

    s3 = boto3.client("s3", endpoint_url=moto_server.url)
    name = f"cors-{free_port()}"
    s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": "ap-northeast-1"})
    s3.put_bucket_cors(Bucket=name, CORSConfiguration=cors.s3_rules([APP]))  # type: ignore[arg-type]
    yield f"{moto_server.url}/{name}/sessions/x/user.png"
    s3.delete_bucket_cors(Bucket=name)


@pytest.mark.parametrize("origin", [APP, OTHER])
def test_local_preflights_agree_with_the_bucket(
    server: LocalServer, session: tuple[str, dict[str, str]], bucket_url: str, origin: str
) -> None:
    # GIVEN the same origins setting behind the local endpoints and behind a bucket's CORS rules
    ticket = ticket_for(server, session)

    local, bucket = preflight(ticket["url"], origin), preflight(bucket_url, origin)

    assert local.status_code == bucket.status_code
    compared = ("Access-Control-Allow-Origin", "Access-Control-Expose-Headers", "Access-Control-Max-Age")
    assert {h: local.headers.get(h) for h in compared} == {h: bucket.headers.get(h) for h in compared}
    if bucket.status_code == 200:
        methods = {m.strip() for m in bucket.headers["Access-Control-Allow-Methods"].split(",")}
        assert {m.strip() for m in local.headers["Access-Control-Allow-Methods"].split(",")} == methods
    else:
        assert s3_error(local)[0] == ET.fromstring(bucket.content).findtext("Code") == "AccessForbidden"
