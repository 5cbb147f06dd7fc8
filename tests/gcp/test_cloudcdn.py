"""Cloud CDN signed URLs (``CDN_MODE=cloudcdn-signed``) and the cache invalidation an erasure asks for."""

from __future__ import annotations

import base64
import time
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from cryptography.hazmat.primitives import hashes, hmac

from hera_sessions import config
from hera_sessions.backends.storage import cloudcdn, gcs
from hera_sessions.backends.storage.base import DownloadSpec
from hera_sessions.core import keys
from hera_sessions.core.errors import ConfigError
from tests.envs import service_env
from tests.gcp.conftest import PROJECT, Bucket, Google
from tests.images import png

#: Google's published vectors for Cloud CDN signed URLs (python-docs-samples, cdn/snippets_test.py).
GOOGLE_KEY = "nZtRohdNF9m3cKM24IcK4w=="
GOOGLE_VECTORS = [
    (
        "http://35.186.234.33/index.html",
        "http://35.186.234.33/index.html?Expires=1549751401&KeyName=my-key&Signature=CRFqQnVfFyiUyR63OQf-HRUpIwc=",
    ),
    (
        "http://www.example.com/",
        "http://www.example.com/?Expires=1549751401&KeyName=my-key&Signature=OqDUFfHpN5Vxga6r80bhsgxKves=",
    ),
    (
        "http://www.example.com/some/path?some=query&another=param",
        "http://www.example.com/some/path?some=query&another=param&Expires=1549751401&KeyName=my-key"
        "&Signature=9Q9TCxSju8-W5nUkk5CuTrun2_o=",
    ),
]


@pytest.mark.parametrize(("url", "signed"), GOOGLE_VECTORS)
def test_signatures_match_googles_published_vectors(url: str, signed: str) -> None:
    assert cloudcdn.sign_url(url, "my-key", cloudcdn.decode_key(GOOGLE_KEY), 1549751401) == signed


def independent_signature(url_with_expires_and_key_name: str, key: bytes) -> str:
    """HMAC-SHA1 with another implementation (cryptography's), URL-safe base64."""
    mac = hmac.HMAC(key, hashes.SHA1())
    mac.update(url_with_expires_and_key_name.encode())
    return base64.urlsafe_b64encode(mac.finalize()).decode()


@pytest.fixture
def cdn_key() -> str:
    return base64.urlsafe_b64encode(bytes(range(100, 116))).decode()  # what `head -c 16 /dev/urandom | base64` gives


@pytest.fixture
def cdn_storage(gcs_bucket: Bucket, google: Google, cdn_key: str) -> gcs.GcsStorage:
    settings = config.load(
        service_env(
            "gcs",
            "redis",
            bucket=gcs_bucket.name,
            token_secret="t",
            CDN_MODE="cloudcdn-signed",
            CDN_DOMAIN="files.example.com",
            CDN_KEY_ID="hera-key",
            CDN_PRIVATE_KEY=cdn_key,
            CDN_URL_MAP="hera-sessions-dev-cdn",
        )
    )
    return gcs.from_settings(settings)


def test_download_urls_are_cloud_cdn_signed_urls_on_the_cdn_host(cdn_storage: gcs.GcsStorage, cdn_key: str) -> None:
    sid = keys.new_session_id()
    key = keys.object_key(sid, "photos/user.png")
    expires_at = time.time() + 900

    url = cdn_storage.presign_download(DownloadSpec(key, "image/png", "user.png", 900, expires_at))

    parts = urlsplit(url)
    assert (parts.scheme, parts.netloc, parts.path) == ("https", "files.example.com", f"/{key}")
    query = {name: values[0] for name, values in parse_qs(parts.query).items()}
    assert query["Expires"] == str(int(expires_at))
    assert query["KeyName"] == "hera-key"
    unsigned = url.rsplit("&Signature=", 1)[0]
    assert query["Signature"] == independent_signature(unsigned, base64.urlsafe_b64decode(cdn_key))


def test_erasing_invalidates_the_session_path_through_the_url_map(
    cdn_storage: gcs.GcsStorage, google: Google, gcs_bucket: Bucket
) -> None:
    sid = keys.new_session_id()
    gcs_bucket.put(keys.object_key(sid, "a.png"), png(size=104))
    prefix = keys.session_prefix(sid)

    cdn_storage.delete_prefix(prefix)
    cdn_storage.invalidate_prefix(prefix)

    (call,) = google.to("compute.googleapis.com")
    assert call.method == "POST"
    assert call.path == f"/compute/v1/projects/{PROJECT}/global/urlMaps/hera-sessions-dev-cdn/invalidateCache"
    assert call.json() == {"path": f"/sessions/{sid}/*"}
    assert call.bearer.startswith("oauth-token-")  # the service account's token, from its key (JWT grant)


def test_a_failed_invalidation_is_logged_not_raised(
    cdn_storage: gcs.GcsStorage, google: Google, caplog: pytest.LogCaptureFixture
) -> None:
    assert cdn_storage.cdn is not None
    cdn_storage.cdn.url_map = "projects/other-project/global/urlMaps/theirs"  # no permission there: a 403

    class Unreachable:
        def post(self, *args: Any, **kwargs: Any) -> Any:
            raise ConnectionError("network unreachable")

    cdn_storage.invalidate_prefix("sessions/x/")
    cdn_storage.cdn.invalidate(Unreachable(), PROJECT, "sessions/y/")

    messages = [r.getMessage() for r in caplog.records]
    assert any("invalidation of sessions/x/ failed: HTTP 403" in m for m in messages)
    assert any("invalidation of sessions/y/ failed: ConnectionError" in m for m in messages)


@pytest.mark.parametrize(
    ("key", "message"),
    [("not base64 !", "base64"), (base64.urlsafe_b64encode(b"short").decode(), "16 bytes")],
)
def test_a_bad_signing_key_is_refused_at_start_up(key: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        cloudcdn.CloudCdn("files.example.com", "k", key, None)


def test_a_bare_url_map_name_needs_a_project() -> None:
    cdn = cloudcdn.CloudCdn("files.example.com", "k", GOOGLE_KEY, "my-map")

    assert cdn.url_map_path("p1") == "projects/p1/global/urlMaps/my-map"
    with pytest.raises(ConfigError):
        cdn.url_map_path(None)
