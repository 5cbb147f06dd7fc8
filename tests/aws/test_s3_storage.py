"""The S3 backend against moto, reading back what we sign (moto itself checks no signature, expiry or policy)."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import parse_qs, parse_qsl, urlsplit

import pytest
import requests

from hera_sessions import config
from hera_sessions.backends.storage import s3
from hera_sessions.backends.storage.base import DownloadSpec, UploadSpec
from hera_sessions.config import MiB
from hera_sessions.core import keys
from hera_sessions.core.errors import ConfigError, NotFoundError, StorageUnavailableError
from hera_sessions.runtime import Runtime
from tests.apiclient import Api
from tests.aws.conftest import REGION, Bucket
from tests.conftest import free_port
from tests.contract.test_storage_contract import PNG, send_upload
from tests.envs import service_env

AUTH_PARAMS = {
    "X-Amz-Algorithm",
    "X-Amz-Credential",
    "X-Amz-Date",
    "X-Amz-Expires",
    "X-Amz-SignedHeaders",
    "X-Amz-Security-Token",
    "X-Amz-Signature",
}


def query(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


def botocore_presigned(url: str, method: str, headers: dict[str, str], secret: str = "testing") -> str:
    """The URL botocore's own SigV4 query signer gives for the same request at the same instant.

    The request is rebuilt from the URL (its operation parameters, without the auth ones) and the headers the
    client must send; equal URLs mean the signature covers exactly those headers and parameters.
    """
    import botocore.auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    q = query(url)
    parts = urlsplit(url)
    access_key, _day, region, *_ = q["X-Amz-Credential"].split("/")
    operation = [(k, v) for k, v in parse_qsl(parts.query) if k not in AUTH_PARAMS]
    base = f"{parts.scheme}://{parts.netloc}{parts.path}"
    request = AWSRequest(method=method, url=base, headers=headers, params=dict(operation))
    signer = botocore.auth.S3SigV4QueryAuth(Credentials(access_key, secret), "s3", region, int(q["X-Amz-Expires"]))
    frozen = dt.datetime.strptime(q["X-Amz-Date"], "%Y%m%dT%H%M%SZ")
    original = botocore.auth.get_current_datetime
    botocore.auth.get_current_datetime = lambda *a, **k: frozen  # type: ignore[assignment]
    try:
        signer.add_auth(request)
    finally:
        botocore.auth.get_current_datetime = original
    return str(request.url)


def signed_as(url: str, method: str, headers: dict[str, str]) -> bool:
    """Whether botocore signs the same request (same address, parameters and signature) as this URL.

    Compared as parameter sets: where the ``awscrt`` package is installed botocore signs with the CRT, which
    orders the parameters differently (tests/aws/test_s3_signing.py compares our signer byte for byte).
    """
    again = botocore_presigned(url, method, headers)
    return again.partition("?")[0] == url.partition("?")[0] and query(again) == query(url)


def spec(key: str, size: int, method: str = "PUT", ttl: int = 300, content_type: str = "image/png") -> UploadSpec:
    return UploadSpec(key, content_type, size, method, ttl, time.time() + ttl)


@pytest.fixture
def sid() -> str:
    return keys.new_session_id()


@pytest.fixture
def storage(s3_bucket: Bucket, moto_server: Any) -> s3.S3Storage:
    return s3.S3Storage(s3_bucket.name, REGION, moto_server.url)


# -- the factory ---------------------------------------------------------------------------------------------
def test_from_settings_builds_the_s3_backend_without_importing_boto3() -> None:
    code = (
        "import sys\n"
        "from hera_sessions import config\n"
        "from hera_sessions.backends.storage import open_storage\n"
        "s = config.load({'STORAGE_MODE': 'cloud', 'CLOUD_STORAGE_TYPE': 's3', 'SESSION_TYPE': 'redis',"
        " 'REDIS_URL': 'redis://127.0.0.1:1/0', 'S3_BUCKET_NAME': 'b', 'TOKEN_SECRET': 't',"
        " 'SERVICE_API_KEYS': 'k'}, environ={})\n"
        "storage = open_storage(s)\n"
        "print(storage.name, storage.supports_post, storage.large_protocol, storage.region,"
        " 'boto3' in sys.modules, 'botocore' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["s3", "True", "s3-multipart", "ap-northeast-1", "False", "False"]


def test_the_endpoint_comes_from_the_s3_variable_first() -> None:
    env = {"AWS_ENDPOINT_URL": "http://a.example:1", "AWS_ENDPOINT_URL_S3": "http://s3.example:2"}
    assert config.load(environ=env).s3_endpoint_url == "http://s3.example:2"
    assert config.load(environ={"AWS_ENDPOINT_URL": "http://a.example:1"}).s3_endpoint_url == "http://a.example:1"


def test_presigned_urls_longer_than_seven_days_are_refused_at_start_up(s3_env: dict[str, str]) -> None:
    settings = config.load({**s3_env, "UPLOAD_URL_TTL": str(8 * 86_400)}, environ={})
    with pytest.raises(ConfigError, match="UPLOAD_URL_TTL"):
        s3.from_settings(settings)


def test_one_client_per_process_with_sigv4_and_short_timeouts(storage: s3.S3Storage, moto_server: Any) -> None:
    client = storage.client
    again = s3.S3Storage(storage.bucket, storage.region, moto_server.url)

    assert again.client is client
    config = client.meta.config
    assert config.signature_version == "s3v4"
    assert config.s3 == {"addressing_style": "path"}
    assert (config.connect_timeout, config.read_timeout) == (2.0, 5.0)
    assert config.retries == {"mode": "standard", "total_max_attempts": 2}


# -- PUT -----------------------------------------------------------------------------------------------------
def test_a_put_url_signs_content_type_and_length(s3_api: Api, s3_env: dict[str, str]) -> None:
    sid, token = s3_api.session()

    ticket = s3_api.ticket(sid, token, "photos/user.png", "image/png", 1234)

    assert ticket["protocol"] == "put"
    assert ticket["method"] == "PUT"
    assert ticket["headers"] == {"Content-Type": "image/png", "If-None-Match": "*"}
    q = query(ticket["url"])
    assert q["X-Amz-Algorithm"] == "AWS4-HMAC-SHA256"
    assert q["X-Amz-SignedHeaders"] == "content-length;content-type;host;if-none-match"
    assert q["X-Amz-Expires"] == "300"  # UPLOAD_URL_TTL's default
    assert q["X-Amz-Credential"].endswith(f"/{REGION}/s3/aws4_request")
    # The signature is botocore's for exactly that type and length...
    headers = {"Content-Type": "image/png", "Content-Length": "1234", "If-None-Match": "*"}
    assert signed_as(ticket["url"], "PUT", headers)
    # ...and for no other.
    assert not signed_as(ticket["url"], "PUT", {**headers, "Content-Length": "1235"})
    assert not signed_as(ticket["url"], "PUT", {**headers, "Content-Type": "image/jpeg"})
    assert not signed_as(ticket["url"], "PUT", {"Content-Type": "image/png", "Content-Length": "1234"})


def test_a_put_url_signs_the_md5_and_overwrite_drops_the_precondition(s3_api: Api) -> None:
    sid, token = s3_api.session()
    md5 = "gnzLDuqKcGxMNKFokfhOew=="
    body = {"path": "a.png", "content_type": "image/png", "size": 5, "content_md5": md5, "overwrite": True}

    answer = s3_api("POST", f"/v1/sessions/{sid}/uploads", body, token)

    assert answer.status == 201, answer.body
    ticket = answer.body
    assert ticket["headers"] == {"Content-Type": "image/png", "Content-MD5": md5}
    assert query(ticket["url"])["X-Amz-SignedHeaders"] == "content-length;content-md5;content-type;host"
    headers = {"Content-Type": "image/png", "Content-Length": "5", "Content-MD5": md5}
    assert signed_as(ticket["url"], "PUT", headers)
    assert not signed_as(ticket["url"], "PUT", {**headers, "Content-MD5": "AAAAAAAAAAAAAAAAAAAAAA=="})


def test_the_put_url_lives_upload_url_ttl(s3_env: dict[str, str], make_runtime: Callable[..., Runtime]) -> None:
    api = Api(make_runtime({**s3_env, "UPLOAD_URL_TTL": "120"}))
    sid, token = api.session()

    ticket = api.ticket(sid, token, "a.png", "image/png", 10)

    assert query(ticket["url"])["X-Amz-Expires"] == "120"


def test_botocore_signs_when_our_signer_is_off(storage: s3.S3Storage, sid: str) -> None:
    slow = s3.S3Storage(storage.bucket, storage.region, storage.endpoint, fast_signing=False)
    key = keys.object_key(sid, "a.png")

    url = slow.presign_upload(spec(key, 10)).url

    assert slow.signer is None
    assert query(url)["X-Amz-SignedHeaders"] == "content-length;content-type;host"
    # (botocore may order the parameters differently where the CRT signs: compare them as a set)
    assert signed_as(url, "PUT", {"Content-Type": "image/png", "Content-Length": "10"})


def test_presigning_needs_no_client_and_no_network(storage: s3.S3Storage, sid: str) -> None:
    s3._clients.clear()
    key = keys.object_key(sid, "a.png")

    storage.presign_upload(spec(key, 10))
    storage.presign_download(DownloadSpec(key, "image/png", "a.png", 900, time.time() + 900))

    assert s3._clients == {}


def test_browsers_of_the_allowed_origins_may_upload_and_read_the_etag(storage: s3.S3Storage, sid: str) -> None:
    # (the bucket's CORS rules, as the s3_bucket fixture and the SAM template set them)
    url = storage.presign_upload(spec(keys.object_key(sid, "a.png"), 3)).url
    preflight = {"Access-Control-Request-Method": "PUT", "Access-Control-Request-Headers": "content-type"}

    allowed = requests.options(url, headers={"Origin": "http://localhost:5173", **preflight}, timeout=10)
    refused = requests.options(url, headers={"Origin": "https://elsewhere.example", **preflight}, timeout=10)
    put = requests.put(
        url, data=b"abc", headers={"Content-Type": "image/png", "Origin": "http://localhost:5173"}, timeout=10
    )

    assert allowed.headers["Access-Control-Allow-Origin"] == "http://localhost:5173"
    assert "PUT" in allowed.headers["Access-Control-Allow-Methods"]
    assert refused.status_code == 403
    assert "Access-Control-Allow-Origin" not in refused.headers
    assert put.headers["Access-Control-Expose-Headers"] == "ETag"
    assert put.headers["ETag"]


# -- POST ----------------------------------------------------------------------------------------------------
def test_a_post_policy_pins_bucket_key_type_size_and_expiry(
    s3_env: dict[str, str], make_runtime: Callable[..., Runtime], s3_bucket: Bucket
) -> None:
    api = Api(make_runtime({**s3_env, "UPLOAD_URL_TTL": "240"}))
    sid, token = api.session()

    before = time.time()
    ticket = api.ticket(sid, token, "photos/user.png", "image/png", 5000, method="POST")

    assert (ticket["protocol"], ticket["method"]) == ("post", "POST")
    fields = ticket["fields"]
    key = f"sessions/{sid}/photos/user.png"
    assert fields["key"] == key
    assert fields["Content-Type"] == "image/png"
    policy = json.loads(base64.b64decode(fields["policy"]))
    conditions = policy["conditions"]
    assert {"bucket": s3_bucket.name} in conditions
    assert {"key": key} in conditions  # exact: no starts-with
    assert not any(isinstance(c, list) and c[0] == "starts-with" for c in conditions)
    assert {"Content-Type": "image/png"} in conditions
    assert ["content-length-range", 1, 5000] in conditions
    expiration = dt.datetime.strptime(policy["expiration"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC)
    assert before + 240 - 2 <= expiration.timestamp() <= time.time() + 240
    # The signature is SigV4 over the policy document, with the credential scope the fields name.
    _, day, region, service, _ = fields["x-amz-credential"].split("/")
    assert (region, service) == (REGION, "s3")
    signing_key = b"AWS4testing"
    for part in (day, region, service, "aws4_request"):
        signing_key = hmac.new(signing_key, part.encode(), hashlib.sha256).digest()
    expected = hmac.new(signing_key, fields["policy"].encode(), hashlib.sha256).hexdigest()
    assert fields["x-amz-signature"] == expected


# -- addressing ----------------------------------------------------------------------------------------------
def test_a_custom_endpoint_gets_path_style_urls(storage: s3.S3Storage, moto_server: Any, sid: str) -> None:
    key = keys.object_key(sid, "a.png")
    prefix = f"{moto_server.url}/{storage.bucket}/"

    assert storage.presign_upload(spec(key, 10)).url.startswith(prefix + key + "?")
    assert storage.presign_upload(spec(key, 10, "POST")).url.rstrip("/") == prefix.rstrip("/")
    download = storage.presign_download(DownloadSpec(key, "image/png", "a.png", 900, time.time() + 900))
    assert download.startswith(prefix + key + "?")


@pytest.mark.parametrize("fast", [True, False])
def test_aws_gets_regional_virtual_hosted_urls(aws_env: dict[str, str], sid: str, fast: bool) -> None:
    # aws_env points AWS_ENDPOINT_URL at moto: the settings, not botocore's own look-up, decide the endpoint.
    settings = config.load(
        service_env("s3", "redis", bucket="hera-prod-files", token_secret="t", service_keys="k", AWS_REGION=REGION),
        environ={},
    )
    storage = s3.from_settings(settings)
    storage.fast_signing = fast
    key = keys.object_key(sid, "photos/user.png")
    host = f"https://hera-prod-files.s3.{REGION}.amazonaws.com"

    put = storage.presign_upload(spec(key, 10)).url
    post = storage.presign_upload(spec(key, 10, "POST")).url
    get = storage.presign_download(DownloadSpec(key, "image/png", "user.png", 900, time.time() + 900))

    assert put.startswith(f"{host}/{key}?X-Amz-Algorithm=AWS4-HMAC-SHA256&")
    assert post == f"{host}/"
    assert get.startswith(f"{host}/{key}?response-content-type=image%2Fpng&")
    assert signed_as(put, "PUT", {"Content-Type": "image/png", "Content-Length": "10"})
    assert signed_as(get, "GET", {})


# -- downloads -----------------------------------------------------------------------------------------------
def test_a_download_url_names_the_type_and_file(storage: s3.S3Storage, s3_bucket: Bucket, sid: str) -> None:
    key = keys.object_key(sid, "photos/user.png")
    s3_bucket.put(key, PNG, "application/octet-stream")

    url = storage.presign_download(DownloadSpec(key, "image/png", "user.png", 900, time.time() + 900))

    q = query(url)
    assert q["response-content-type"] == "image/png"
    assert q["response-content-disposition"] == 'inline; filename="user.png"'
    assert q["X-Amz-Expires"] == "900"
    assert signed_as(url, "GET", {})
    response = requests.get(url, timeout=10)
    assert response.content == PNG
    assert response.headers["Content-Type"] == "image/png"
    assert response.headers["Content-Disposition"] == 'inline; filename="user.png"'


def test_reading_a_missing_key_is_not_found(storage: s3.S3Storage, sid: str) -> None:
    with pytest.raises(NotFoundError):
        storage.read(keys.object_key(sid, "missing.png"))


# -- multipart -----------------------------------------------------------------------------------------------
@pytest.fixture
def large_api(s3_env: dict[str, str], make_runtime: Callable[..., Runtime]) -> Api:
    return Api(
        make_runtime(
            {
                **s3_env,
                "UPLOAD_MAX_BYTES": str(12 * MiB),
                "MULTIPART_THRESHOLD_BYTES": str(5 * MiB),
                "SESSION_MAX_BYTES": str(100 * MiB),
                "LARGE_UPLOAD_TTL": "7200",
            }
        )
    )


BIG = bytes(range(256)) * (11 * MiB // 256)  # 11 MiB


def test_a_large_file_gets_a_multipart_ticket_with_signed_part_lengths(large_api: Api, s3_bucket: Bucket) -> None:
    sid, token = large_api.session()

    ticket = large_api.ticket(sid, token, "videos/big.png", "image/png", len(BIG))

    assert ticket["protocol"] == "s3-multipart"
    assert ticket["method"] == "PUT"
    assert ticket["upload_id"]
    assert ticket["part_size"] == 8 * MiB
    assert [p["part_number"] for p in ticket["parts"]] == [1, 2]
    assert ticket["url"] == ticket["parts"][0]["url"].split("?")[0]
    lengths = [8 * MiB, len(BIG) - 8 * MiB]
    for part, length in zip(ticket["parts"], lengths, strict=True):
        q = query(part["url"])
        assert q["partNumber"] == str(part["part_number"])
        assert q["uploadId"] == ticket["upload_id"]
        assert q["X-Amz-SignedHeaders"] == "content-length;host"
        assert q["X-Amz-Expires"] == "7200"  # LARGE_UPLOAD_TTL
        assert signed_as(part["url"], "PUT", {"Content-Length": str(length)})
    assert s3_bucket.multipart_uploads(f"sessions/{sid}/") == [ticket["upload_id"]]


def test_a_multipart_upload_completes_through_the_api(large_api: Api, s3_bucket: Bucket) -> None:
    sid, token = large_api.session()
    ticket = large_api.ticket(sid, token, "videos/big.png", "image/png", len(BIG))
    sent = send_upload(ticket, BIG)
    assert sent.ok and len(sent.responses) == 2

    done = large_api("POST", f"/v1/sessions/{sid}/uploads/{ticket['upload_id']}/complete", {"parts": sent.parts}, token)

    assert done.status == 200, done.body
    assert done.body == {
        "path": "videos/big.png",
        "size": len(BIG),
        "content_type": "image/png",
        "name": "big.png",
        "content_md5": None,
    }
    key = f"sessions/{sid}/videos/big.png"
    assert s3_bucket.get(key) == BIG
    assert s3_bucket.client.head_object(Bucket=s3_bucket.name, Key=key)["ContentType"] == "image/png"
    assert s3_bucket.multipart_uploads(f"sessions/{sid}/") == []


def test_a_multipart_upload_never_replaces_a_file_stored_meanwhile(large_api: Api, s3_bucket: Bucket) -> None:
    # GIVEN a no-overwrite multipart upload whose parts are sent
    sid, token = large_api.session()
    ticket = large_api.ticket(sid, token, "videos/big.png", "image/png", len(BIG))
    sent = send_upload(ticket, BIG)
    # ... while another upload stores an object at the same key
    key = f"sessions/{sid}/videos/big.png"
    s3_bucket.put(key, PNG, "image/png")

    # WHEN the client completes THEN S3 refuses (IfNoneMatch on CompleteMultipartUpload): 409 file_exists
    done = large_api("POST", f"/v1/sessions/{sid}/uploads/{ticket['upload_id']}/complete", {"parts": sent.parts}, token)

    assert (done.status, done.code) == (409, "file_exists"), done.body
    assert s3_bucket.get(key) == PNG


def test_completing_with_a_wrong_etag_is_invalid_parts(large_api: Api) -> None:
    sid, token = large_api.session()
    ticket = large_api.ticket(sid, token, "videos/big.png", "image/png", len(BIG))
    sent = send_upload(ticket, BIG)
    parts = [{**sent.parts[0], "etag": '"0123456789abcdef0123456789abcdef"'}, sent.parts[1]]

    done = large_api("POST", f"/v1/sessions/{sid}/uploads/{ticket['upload_id']}/complete", {"parts": parts}, token)

    assert (done.status, done.code) == (400, "invalid_parts")


def test_a_multipart_upload_aborts_through_the_api(large_api: Api, s3_bucket: Bucket) -> None:
    sid, token = large_api.session()
    ticket = large_api.ticket(sid, token, "videos/big.png", "image/png", len(BIG))
    send_upload({**ticket, "parts": ticket["parts"][:1]}, BIG)

    aborted = large_api("DELETE", f"/v1/sessions/{sid}/uploads/{ticket['upload_id']}", token=token)

    assert aborted.status == 204, aborted.body
    assert s3_bucket.multipart_uploads(f"sessions/{sid}/") == []
    again = large_api("DELETE", f"/v1/sessions/{sid}/uploads/{ticket['upload_id']}", token=token)
    assert (again.status, again.code) == (404, "upload_not_found")


def test_aborting_an_upload_s3_no_longer_has_is_no_error(storage: s3.S3Storage, sid: str) -> None:
    key = keys.object_key(sid, "big.png")
    ticket = storage.start_large_upload(spec(key, 9 * MiB))
    storage.abort_large_upload(key, str(ticket.upload_id))

    storage.abort_large_upload(key, str(ticket.upload_id))


def test_erasing_aborts_the_sessions_unfinished_uploads(large_api: Api, s3_bucket: Bucket) -> None:
    sid, token = large_api.session()
    other, other_token = large_api.session()
    for path in ("a.png", "b.png"):
        large_api.ticket(sid, token, path, "image/png", 6 * MiB)
    kept = large_api.ticket(other, other_token, "a.png", "image/png", 6 * MiB)

    assert large_api("DELETE", f"/v1/sessions/{sid}", token=token).status == 204

    assert s3_bucket.multipart_uploads(f"sessions/{sid}/") == []
    assert s3_bucket.multipart_uploads(f"sessions/{other}/") == [kept["upload_id"]]


def test_part_urls_live_between_the_upload_ttl_and_seven_days(storage: s3.S3Storage) -> None:
    def part_url_ttl() -> int:
        ticket = storage.start_large_upload(spec("k", 6 * MiB, ttl=300))
        (expires,) = parse_qs(urlsplit(ticket.parts[0].url).query)["X-Amz-Expires"]
        return int(expires)

    storage.large_upload_ttl = 30 * 86_400
    assert part_url_ttl() == 7 * 86_400
    storage.large_upload_ttl = 60
    assert part_url_ttl() == 300


def test_part_sizes_keep_within_ten_thousand_parts() -> None:
    assert s3.part_size_for(11 * MiB) == 8 * MiB
    huge = 5 * 1024 * MiB * 1024  # 5 TiB, S3's largest object
    assert s3.part_size_for(huge) * 10_000 >= huge


# -- erasing -------------------------------------------------------------------------------------------------
@pytest.fixture
def delete_calls(storage: s3.S3Storage) -> Iterator[list[int]]:
    """The number of keys in each DeleteObjects request the backend's client makes."""
    sizes: list[int] = []

    def count(params: dict[str, Any], **_: Any) -> None:
        sizes.append(len(params["Delete"]["Objects"]))

    events = storage.client.meta.events
    events.register("provide-client-params.s3.DeleteObjects", count)
    yield sizes
    events.unregister("provide-client-params.s3.DeleteObjects", count)


def test_delete_prefix_deletes_more_than_a_thousand_objects_in_batches(
    storage: s3.S3Storage, s3_bucket: Bucket, sid: str, delete_calls: list[int]
) -> None:
    other = keys.new_session_id()
    names = [keys.object_key(sid, f"p/{i:05d}.png") for i in range(1050)]
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda k: s3_bucket.put(k, b"x"), [*names, keys.object_key(other, "a.png")]))

    deleted = storage.delete_prefix(keys.session_prefix(sid))

    assert deleted == 1050
    assert delete_calls == [1000, 50]
    assert s3_bucket.keys(keys.session_prefix(sid)) == []
    assert s3_bucket.keys(keys.session_prefix(other)) == [keys.object_key(other, "a.png")]


# -- CloudFront ----------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def rsa_key() -> Any:
    from cryptography.hazmat.primitives.asymmetric import rsa

    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def pem(key: Any) -> str:
    from cryptography.hazmat.primitives import serialization

    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def cdn_env(s3_env: dict[str, str], key: Any, **extra: str) -> dict[str, str]:
    return {
        **s3_env,
        "CDN_MODE": "cloudfront-signed",
        "CDN_DOMAIN": "d111111abcdef8.cloudfront.net",
        "CDN_KEY_ID": "K2JCJMDEHXQW5F",
        "CDN_PRIVATE_KEY": pem(key),
        "DOWNLOAD_URL_TTL": "600",
        **extra,
    }


def cloudfront_b64decode(value: str) -> bytes:
    return base64.b64decode(value.replace("-", "+").replace("_", "=").replace("~", "/"))


def test_cloudfront_urls_are_signed_with_the_key_until_the_download_ttl(
    s3_env: dict[str, str], rsa_key: Any, sid: str
) -> None:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding

    storage = s3.from_settings(config.load(cdn_env(s3_env, rsa_key), environ={}))
    key = keys.object_key(sid, "photos/user.png")
    expires_at = time.time() + 600

    url = storage.presign_download(DownloadSpec(key, "image/png", "user.png", 600, expires_at))

    parts = urlsplit(url)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == f"https://d111111abcdef8.cloudfront.net/{key}"
    q = query(url)
    assert set(q) == {"Expires", "Signature", "Key-Pair-Id"}
    assert q["Key-Pair-Id"] == "K2JCJMDEHXQW5F"
    assert int(q["Expires"]) == int(expires_at)
    resource = url.split("?")[0]
    policy = (
        '{"Statement":[{"Resource":"%s","Condition":{"DateLessThan":{"AWS:EpochTime":%s}}}]}'  # noqa: UP031
        % (resource, q["Expires"])
    )
    rsa_key.public_key().verify(
        cloudfront_b64decode(q["Signature"]), policy.encode(), padding.PKCS1v15(), hashes.SHA1()
    )


def test_a_key_that_is_not_an_rsa_private_key_fails_at_start_up(s3_env: dict[str, str], rsa_key: Any) -> None:
    settings = config.load({**cdn_env(s3_env, rsa_key), "CDN_PRIVATE_KEY": "not a key"}, environ={})
    with pytest.raises(ConfigError, match="CDN_PRIVATE_KEY"):
        s3.from_settings(settings)


def test_erasing_invalidates_the_session_on_cloudfront(
    s3_env: dict[str, str], rsa_key: Any, make_runtime: Callable[..., Runtime], moto_server: Any
) -> None:
    import boto3

    cloudfront = boto3.client("cloudfront", region_name="us-east-1", endpoint_url=moto_server.url)
    distribution = cloudfront.create_distribution(
        DistributionConfig={
            "CallerReference": uuid.uuid4().hex,
            "Comment": "hera-sessions test",
            "Enabled": True,
            "Origins": {
                "Quantity": 1,
                "Items": [
                    {"Id": "s3", "DomainName": "b.s3.amazonaws.com", "S3OriginConfig": {"OriginAccessIdentity": ""}}
                ],
            },
            "DefaultCacheBehavior": {"TargetOriginId": "s3", "ViewerProtocolPolicy": "https-only", "MinTTL": 0},
        }
    )["Distribution"]["Id"]
    api = Api(make_runtime(cdn_env(s3_env, rsa_key, CDN_DISTRIBUTION_ID=distribution)))
    sid, token = api.session()

    assert api("DELETE", f"/v1/sessions/{sid}", token=token).status == 204

    listed = cloudfront.list_invalidations(DistributionId=distribution)["InvalidationList"]["Items"]
    paths = [
        cloudfront.get_invalidation(DistributionId=distribution, Id=i["Id"])["Invalidation"]["InvalidationBatch"][
            "Paths"
        ]["Items"]
        for i in listed
    ]
    assert paths == [[f"/sessions/{sid}/*"]]


# -- S3 unreachable ------------------------------------------------------------------------------------------
@pytest.fixture
def down_api(s3_env: dict[str, str], make_runtime: Callable[..., Runtime]) -> Api:
    return Api(
        make_runtime(
            {
                **s3_env,
                "AWS_ENDPOINT_URL_S3": f"http://127.0.0.1:{free_port()}",  # nothing listens there
                "UPLOAD_MAX_BYTES": str(12 * MiB),
                "MULTIPART_THRESHOLD_BYTES": str(5 * MiB),
            }
        )
    )


def test_an_unreachable_s3_is_a_503_never_a_500(down_api: Api) -> None:
    sid, token = down_api.session()  # Redis only

    health = down_api("GET", "/health")
    large = down_api(
        "POST", f"/v1/sessions/{sid}/uploads", {"path": "big.png", "content_type": "image/png", "size": 6 * MiB}, token
    )
    erase = down_api("DELETE", f"/v1/sessions/{sid}", token=token)

    assert (health.status, health.body["checks"]["storage"]) == (503, "storage_unavailable")
    assert (large.status, large.code) == (503, "storage_unavailable")
    assert (erase.status, erase.code) == (503, "storage_unavailable")


def test_presigning_works_while_s3_is_unreachable(down_api: Api) -> None:
    sid, token = down_api.session()

    ticket = down_api.ticket(sid, token, "a.png", "image/png", 100)

    assert ticket["protocol"] == "put"


def test_every_storage_call_maps_an_unreachable_s3_to_storage_unavailable(
    sid: str, aws_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(s3, "MAX_ATTEMPTS", 1)  # no retry: the mapping is what is tested here (a new client)
    storage = s3.S3Storage("hera-down", REGION, f"http://127.0.0.1:{free_port()}")
    key = keys.object_key(sid, "a.png")
    calls: list[Callable[[], object]] = [
        storage.check,
        lambda: storage.read(key),
        lambda: storage.delete(key),
        lambda: list(storage.list_prefix(keys.session_prefix(sid))),
        lambda: storage.delete_prefix(keys.session_prefix(sid)),
        lambda: storage.abort_prefix_uploads(keys.session_prefix(sid)),
        lambda: storage.start_large_upload(spec(key, 6 * MiB)),
        lambda: storage.complete_large_upload(key, "u", [(1, "e")]),
        lambda: storage.abort_large_upload(key, "u"),
    ]
    for call in calls:
        with pytest.raises(StorageUnavailableError) as caught:
            call()
        assert caught.value.status == 503
        assert caught.value.code == "storage_unavailable"
