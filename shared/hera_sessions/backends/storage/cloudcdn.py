"""Cloud CDN signed URLs and cache invalidation (``CDN_MODE=cloudcdn-signed``).

A signed URL is the object's URL on the CDN host plus ``Expires=<epoch>&KeyName=<name>&Signature=<sig>``,
where ``sig`` is the URL-safe base64 HMAC-SHA1, keyed with the signing key, of everything before
``&Signature=``. The key is what ``gcloud compute backend-buckets add-signed-url-key`` was given: 16 random bytes,
URL-safe base64 encoded (``CDN_PRIVATE_KEY``, normally a Secret Manager reference; ``CDN_KEY_ID`` is its name).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import logging
from typing import Any
from urllib.parse import quote

from hera_sessions.core.errors import ConfigError

logger = logging.getLogger("hera_sessions")

COMPUTE_API = "https://compute.googleapis.com/compute/v1"


def decode_key(encoded: str) -> bytes:
    """The raw signing key from its URL-safe base64 form (padding optional)."""
    text = encoded.strip()
    try:
        key = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise ConfigError("CDN_PRIVATE_KEY is not URL-safe base64 (a Cloud CDN signed URL key).") from None
    if len(key) != 16:
        raise ConfigError(f"CDN_PRIVATE_KEY decodes to {len(key)} bytes; a Cloud CDN signing key is 16 bytes.")
    return key


def sign_url(url: str, key_name: str, key: bytes, expires_at: int) -> str:
    """``url`` signed for Cloud CDN until ``expires_at`` (epoch seconds)."""
    separator = "&" if "?" in url else "?"
    unsigned = f"{url}{separator}Expires={expires_at}&KeyName={key_name}"
    digest = hmac.new(key, unsigned.encode("utf-8"), hashlib.sha1).digest()
    return f"{unsigned}&Signature={base64.urlsafe_b64encode(digest).decode()}"


class CloudCdn:
    """Signs object URLs on the CDN host and invalidates cached paths through the URL map."""

    def __init__(self, domain: str, key_name: str, encoded_key: str, url_map: str | None) -> None:
        host = domain.strip().removeprefix("https://").removeprefix("http://").rstrip("/")
        self.base_url = f"https://{host}"
        self.key_name = key_name
        self.key = decode_key(encoded_key)
        self.url_map = url_map

    def signed_url(self, key: str, expires_at: float) -> str:
        return sign_url(f"{self.base_url}/{quote(key, safe='/~')}", self.key_name, self.key, int(expires_at))

    def url_map_path(self, project: str | None) -> str:
        """``projects/P/global/urlMaps/NAME`` from CDN_URL_MAP (a name, or that full path)."""
        assert self.url_map
        if "/" in self.url_map:
            return self.url_map.strip("/")
        if not project:
            raise ConfigError("CDN_URL_MAP is a bare name and no project is known: give projects/P/global/urlMaps/N")
        return f"projects/{project}/global/urlMaps/{self.url_map}"

    def invalidate(self, session: Any, project: str | None, prefix: str, api: str = COMPUTE_API) -> None:
        """Ask Cloud CDN to drop every cached object under ``prefix`` (``urlMaps.invalidateCache``).

        ``session`` is a ``google.auth.transport.requests.AuthorizedSession``. The operation runs on after
        the call returns; a failure is logged, not raised: the objects are gone and every signed URL for them
        expires within DOWNLOAD_URL_TTL, which also bounds the cache's TTL.
        """
        if not self.url_map:
            logger.warning("CDN_URL_MAP is not set: cached copies under %s stay until their TTL ends", prefix)
            return
        url = f"{api}/{self.url_map_path(project)}/invalidateCache"
        try:
            response = session.post(url, json={"path": f"/{quote(prefix, safe='/~')}*"}, timeout=10)
        except Exception as exc:  # network errors of any transport
            logger.error("Cloud CDN invalidation of %s failed: %s", prefix, exc.__class__.__name__)
            return
        if response.status_code >= 300:
            logger.error("Cloud CDN invalidation of %s failed: HTTP %s", prefix, response.status_code)
