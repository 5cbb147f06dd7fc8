"""What the GCS backend signs, checked against the key: V4 PUT, POST policy, resumable start, GET.

The emulator checks no signature, no policy and no expiry, so every URL and policy is verified here with
Google's V4 algorithm and the throwaway key's public half: method, content type, size range, expiry, resource.
Both ways of signing are covered: a key file (local), and IAM signBlob as the runtime's service account
(Cloud Functions, where there is no key on disk).
"""

from __future__ import annotations

import base64
import datetime
import json
import time
from dataclasses import replace
from typing import Any
from urllib.parse import quote, urlsplit

import pytest
import requests
from cryptography.exceptions import InvalidSignature

from hera_sessions import config
from hera_sessions.backends.storage import gcs
from hera_sessions.backends.storage.base import DownloadSpec, UploadSpec
from hera_sessions.core import keys
from hera_sessions.core.errors import ConfigError
from tests.conftest import SERVICE_KEY
from tests.envs import service_env
from tests.gcp.conftest import (
    EMAIL,
    PROJECT,
    Bucket,
    Google,
    ServiceAccount,
    v4_expiry,
    verify_post_policy,
    verify_v4_url,
)
from tests.images import png

PNG = png(size=1032)


def settings_for(bucket: Bucket, **extra: str) -> config.Settings:
    return config.load(service_env("gcs", "redis", bucket=bucket.name, token_secret="t", **extra))


@pytest.fixture
def storage(gcs_bucket: Bucket) -> gcs.GcsStorage:
    """Signing with the key file (GOOGLE_APPLICATION_CREDENTIALS), talking to the emulator."""
    return gcs.from_settings(settings_for(gcs_bucket))


@pytest.fixture
def key(sid: str) -> str:
    return keys.object_key(sid, "photos/user.png")


@pytest.fixture
def sid() -> str:
    return keys.new_session_id()


def spec(key: str, size: int = len(PNG), method: str = "PUT", ttl: int = 300) -> UploadSpec:
    now = time.time()
    return UploadSpec(key, "image/png", size, method, ttl, now + ttl)


# -- PUT ---------------------------------------------------------------------------------------------------
def test_a_put_url_binds_method_type_size_range_resource_and_expiry(
    storage: gcs.GcsStorage, service_account: ServiceAccount, gcs_bucket: Bucket, key: str
) -> None:
    upload = spec(key, size=1234)

    ticket = storage.presign_upload(upload)

    assert (ticket.protocol, ticket.method, ticket.key, ticket.upload_id) == ("put", "PUT", key, None)
    assert ticket.headers == {"Content-Type": "image/png", "x-goog-content-length-range": "0,1234"}
    query = verify_v4_url(ticket.url, "PUT", ticket.headers, service_account.public_key)
    assert urlsplit(ticket.url).path == f"/{gcs_bucket.name}/{quote(key)}"
    assert query["X-Goog-Credential"].startswith(f"{EMAIL}/")
    assert query["X-Goog-SignedHeaders"] == "content-type;host;x-goog-content-length-range"
    assert upload.expires_at - 2 <= v4_expiry(query) <= upload.expires_at
    assert ticket.to_json()["expires_at"] == datetime.datetime.fromtimestamp(
        int(upload.expires_at), datetime.UTC
    ).strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.mark.parametrize(
    ("method", "headers"),
    [
        ("POST", {"Content-Type": "image/png", "x-goog-content-length-range": "0,1234"}),  # another method
        ("PUT", {"Content-Type": "image/jpeg", "x-goog-content-length-range": "0,1234"}),  # another type
        ("PUT", {"Content-Type": "image/png", "x-goog-content-length-range": "0,99999999"}),  # a bigger cap
    ],
)
def test_a_put_url_is_refused_for_another_method_type_or_size(
    storage: gcs.GcsStorage, service_account: ServiceAccount, key: str, method: str, headers: dict[str, str]
) -> None:
    ticket = storage.presign_upload(spec(key, size=1234))

    with pytest.raises(InvalidSignature):
        verify_v4_url(ticket.url, method, headers, service_account.public_key)


def test_a_put_url_is_refused_for_another_key(
    storage: gcs.GcsStorage, service_account: ServiceAccount, key: str
) -> None:
    ticket = storage.presign_upload(spec(key))
    other = ticket.url.replace("photos/user.png", "photos/other.png")

    with pytest.raises(InvalidSignature):
        verify_v4_url(other, "PUT", ticket.headers, service_account.public_key)


def test_the_emulator_takes_the_signed_put_as_gcs_would(storage: gcs.GcsStorage, gcs_bucket: Bucket, key: str) -> None:
    ticket = storage.presign_upload(spec(key))

    response = requests.put(ticket.url, headers=ticket.headers, data=PNG, timeout=10)

    assert response.status_code == 200, response.text
    assert gcs_bucket.get(key) == PNG
    assert gcs_bucket.resource(key)["contentType"] == "image/png"


# -- POST policy -------------------------------------------------------------------------------------------
def test_a_post_policy_binds_the_exact_key_type_size_range_and_expiry(
    storage: gcs.GcsStorage, service_account: ServiceAccount, gcs_bucket: Bucket, key: str
) -> None:
    upload = spec(key, size=777, method="POST")

    ticket = storage.presign_upload(upload)

    assert (ticket.protocol, ticket.method, ticket.headers) == ("post", "POST", {})
    assert ticket.url.endswith(f"/{gcs_bucket.name}/")
    assert ticket.fields["key"] == key
    assert ticket.fields["Content-Type"] == "image/png"
    policy = verify_post_policy(ticket.fields, service_account.public_key)
    conditions = policy["conditions"]
    assert ["content-length-range", 1, 777] in conditions
    assert {"Content-Type": "image/png"} in conditions
    assert {"key": key} in conditions  # exact match: no starts-with, no other key
    assert {"bucket": gcs_bucket.name} in conditions
    assert not [c for c in conditions if isinstance(c, list) and c[0] == "starts-with"]
    expiration = datetime.datetime.fromisoformat(policy["expiration"].replace("Z", "+00:00")).timestamp()
    assert upload.expires_at - 2 <= expiration <= upload.expires_at
    # every signed field the form sends is in the policy (GCS refuses fields the policy does not name)
    for name in ("x-goog-algorithm", "x-goog-credential", "x-goog-date"):
        assert {name: ticket.fields[name]} in conditions


def test_a_tampered_post_policy_fails_verification(
    storage: gcs.GcsStorage, service_account: ServiceAccount, key: str
) -> None:
    ticket = storage.presign_upload(spec(key, size=777, method="POST"))
    policy = json.loads(base64.b64decode(ticket.fields["policy"]))
    policy["conditions"] = [
        c if not isinstance(c, list) else ["content-length-range", 1, 10**9] for c in policy["conditions"]
    ]
    forged = {**ticket.fields, "policy": base64.b64encode(json.dumps(policy).encode()).decode()}

    with pytest.raises(InvalidSignature):
        verify_post_policy(forged, service_account.public_key)


# -- resumable start ---------------------------------------------------------------------------------------
def test_a_resumable_start_url_is_a_signed_post_with_x_goog_resumable(
    storage: gcs.GcsStorage, service_account: ServiceAccount, key: str
) -> None:
    upload = spec(key, size=64 * 1024 * 1024)

    ticket = storage.start_large_upload(upload)

    assert (ticket.protocol, ticket.method, ticket.upload_id) == ("gcs-resumable", "POST", None)
    assert ticket.headers == {
        "Content-Type": "image/png",
        "x-goog-resumable": "start",
        "x-goog-content-length-range": f"0,{64 * 1024 * 1024}",
    }
    query = verify_v4_url(ticket.url, "POST", ticket.headers, service_account.public_key)
    assert "x-goog-resumable" in query["X-Goog-SignedHeaders"].split(";")
    assert upload.expires_at - 2 <= v4_expiry(query) <= upload.expires_at
    with pytest.raises(InvalidSignature):  # a plain PUT or POST without the start header is not what was signed
        verify_v4_url(ticket.url, "PUT", ticket.headers, service_account.public_key)


def test_a_no_overwrite_resumable_start_signs_the_generation_precondition(
    storage: gcs.GcsStorage, service_account: ServiceAccount, key: str
) -> None:
    upload = replace(spec(key, size=64 * 1024 * 1024), overwrite=False, content_md5="gnzLDuqKcGxMNKFokfhOew==")

    ticket = storage.start_large_upload(upload)

    # the precondition applies to the object the session creates; the whole body's MD5 cannot be bound at start
    assert ticket.headers["x-goog-if-generation-match"] == "0"
    assert "Content-MD5" not in ticket.headers
    query = verify_v4_url(ticket.url, "POST", ticket.headers, service_account.public_key)
    assert {"x-goog-if-generation-match", "x-goog-resumable"} <= set(query["X-Goog-SignedHeaders"].split(";"))
    without = {k: v for k, v in ticket.headers.items() if k != "x-goog-if-generation-match"}
    with pytest.raises(AssertionError, match="signed headers"):  # a start without it is not what was signed
        verify_v4_url(ticket.url, "POST", without, service_account.public_key)


def test_a_put_url_signs_the_md5_and_the_precondition(
    storage: gcs.GcsStorage, service_account: ServiceAccount, key: str
) -> None:
    md5 = "gnzLDuqKcGxMNKFokfhOew=="

    ticket = storage.presign_upload(replace(spec(key), overwrite=False, content_md5=md5))

    assert ticket.headers["Content-MD5"] == md5
    query = verify_v4_url(ticket.url, "PUT", ticket.headers, service_account.public_key)
    assert {"content-md5", "x-goog-if-generation-match"} <= set(query["X-Goog-SignedHeaders"].split(";"))
    with pytest.raises(InvalidSignature):
        verify_v4_url(
            ticket.url, "PUT", {**ticket.headers, "Content-MD5": "AAAAAAAAAAAAAAAAAAAAAA=="}, service_account.public_key
        )


def test_large_uploads_get_a_resumable_ticket_and_hold_quota_past_the_url_ttl(
    gcp_env: dict[str, str], make_runtime: Any
) -> None:
    from hera_sessions.core.models import UploadRequest

    mib = 1024 * 1024
    runtime = make_runtime({**gcp_env, "UPLOAD_MAX_BYTES": str(100 * mib), "SESSION_MAX_BYTES": str(200 * mib)})
    service = runtime.service()
    created = service.create_session(f"Bearer {SERVICE_KEY}")
    before = time.time()

    ticket = service.create_upload(created.session_id, UploadRequest("big.png", "image/png", 50 * 1024 * 1024))

    assert ticket.protocol == "gcs-resumable"
    (held,) = service.metadata.reservations(created.session_id)
    assert held.expires_at >= int(before) + runtime.settings.large_upload_ttl  # the session URI outlives the start URL
    assert runtime.settings.erase_marker_ttl > 7 * 86400  # ...and GCS keeps a session URI for up to a week


# -- GET ---------------------------------------------------------------------------------------------------
def test_a_download_url_names_the_type_and_file_and_serves_the_bytes(
    storage: gcs.GcsStorage, service_account: ServiceAccount, gcs_bucket: Bucket, key: str
) -> None:
    gcs_bucket.put(key, PNG)
    now = time.time()

    url = storage.presign_download(DownloadSpec(key, "image/png", "user.png", 900, now + 900))

    query = verify_v4_url(url, "GET", {}, service_account.public_key)
    assert query["response-content-type"] == "image/png"
    assert query["response-content-disposition"] == 'inline; filename="user.png"'
    assert now + 900 - 2 <= v4_expiry(query) <= now + 900
    response = requests.get(url, timeout=10)
    assert response.status_code == 200
    assert response.content == PNG
    assert response.headers["Content-Disposition"] == 'inline; filename="user.png"'


# -- signing without a key on disk: IAM signBlob as the runtime's service account ---------------------------
@pytest.fixture
def iam_storage(gcs_bucket: Bucket, google: Google) -> tuple[gcs.GcsStorage, Any]:
    """As inside Cloud Functions: metadata-server credentials (no key), so URLs are signed by IAM signBlob."""
    from google.auth import compute_engine

    credentials = compute_engine.Credentials()
    storage = gcs.from_settings(settings_for(gcs_bucket), default_credentials=lambda scopes: (credentials, PROJECT))
    return storage, credentials


def test_without_a_key_urls_are_signed_by_iam_sign_blob_as_the_runtime_account(
    iam_storage: tuple[gcs.GcsStorage, Any],
    google: Google,
    service_account: ServiceAccount,
    gcs_bucket: Bucket,
    key: str,
) -> None:
    storage, _ = iam_storage
    assert not storage.signer.local

    ticket = storage.presign_upload(spec(key))

    query = verify_v4_url(ticket.url, "PUT", ticket.headers, service_account.public_key)
    assert query["X-Goog-Credential"].startswith(f"{EMAIL}/")
    (sign_call,) = google.to("iamcredentials.googleapis.com", ":signBlob")
    assert sign_call.path.startswith(f"/v1/projects/-/serviceAccounts/{EMAIL}:signBlob")
    assert sign_call.bearer.startswith("metadata-token-")  # the access token of the default credentials
    assert requests.put(ticket.url, headers=ticket.headers, data=PNG, timeout=10).status_code == 200
    assert gcs_bucket.get(key) == PNG


def test_iam_signing_covers_post_policies_too(
    iam_storage: tuple[gcs.GcsStorage, Any], google: Google, service_account: ServiceAccount, key: str
) -> None:
    storage, _ = iam_storage

    ticket = storage.presign_upload(spec(key, method="POST"))

    policy = verify_post_policy(ticket.fields, service_account.public_key)
    assert {"key": key} in policy["conditions"]
    assert len(google.to("iamcredentials.googleapis.com", ":signBlob")) == 1


def test_an_expired_access_token_is_refreshed_before_signing(
    iam_storage: tuple[gcs.GcsStorage, Any], google: Google, service_account: ServiceAccount, key: str
) -> None:
    storage, credentials = iam_storage
    storage.presign_upload(spec(key))
    first = google.to("iamcredentials.googleapis.com")[-1].bearer
    storage.presign_upload(spec(key))
    assert google.to("iamcredentials.googleapis.com")[-1].bearer == first  # a valid token is reused

    credentials.expiry = datetime.datetime.now(datetime.UTC).replace(tzinfo=None) - datetime.timedelta(minutes=1)
    ticket = storage.presign_upload(spec(key))

    second = google.to("iamcredentials.googleapis.com")[-1].bearer
    assert second != first
    assert second in google.tokens
    verify_v4_url(ticket.url, "PUT", ticket.headers, service_account.public_key)


def test_credentials_that_cannot_sign_are_refused_at_start_up(gcs_bucket: Bucket) -> None:
    from google.oauth2.credentials import Credentials as UserCredentials

    user = UserCredentials(token="user-token")  # gcloud auth application-default login, no impersonation

    with pytest.raises(ConfigError, match="impersonate-service-account"):
        gcs.from_settings(settings_for(gcs_bucket), default_credentials=lambda scopes: (user, PROJECT))
