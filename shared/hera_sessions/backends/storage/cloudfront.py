"""CloudFront signed URLs (``CDN_MODE=cloudfront-signed``) and invalidations.

Downloads go through a CloudFront distribution that reads the bucket with Origin Access Control and serves
only URLs signed with a key of its trusted key group: ``https://{CDN_DOMAIN}/{key}?Expires=...&Signature=...
&Key-Pair-Id=...`` (a canned policy: this object, until ``DOWNLOAD_URL_TTL`` from now). botocore's
``CloudFrontSigner`` writes the URL; the RSA signature (PKCS#1 v1.5 with SHA-1, as CloudFront requires) comes
from ``cryptography``. The private key (``CDN_PRIVATE_KEY``, a PEM resolved from Secrets Manager once per cold
start) is loaded once, when the storage is built, so a bad key fails at start-up with a ConfigError.

The URL carries no ``response-content-*`` parameters: the object's ``Content-Type`` was pinned at upload time
(signed header or POST policy), and the distribution's cache policy keeps query strings out of the cache key.

Invalidations (erasing a session) are best effort: a failure is logged and the erasure goes on. Nothing erased
stays reachable for long anyway: CloudFront only serves signed URLs, which expire within ``DOWNLOAD_URL_TTL``,
and the cache policy keeps nothing longer than that.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from hera_sessions.config import Settings
from hera_sessions.core.errors import ConfigError

logger = logging.getLogger("hera_sessions.backends.storage.cloudfront")


def load_private_key(pem: str) -> Callable[[bytes], bytes]:
    """An RSA signer (PKCS#1 v1.5, SHA-1) for the PEM private key; ConfigError when it is not one."""
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import padding, rsa

    text = pem.strip().replace("\\n", "\n")  # a PEM pasted into one line of an environment variable
    try:
        key = serialization.load_pem_private_key(text.encode(), password=None)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"CDN_PRIVATE_KEY is not an unencrypted PEM private key ({exc.__class__.__name__})") from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ConfigError("CDN_PRIVATE_KEY must be an RSA key: CloudFront key groups take RSA-2048 public keys")

    def sign(message: bytes) -> bytes:
        return key.sign(message, padding.PKCS1v15(), hashes.SHA1())  # noqa: S303 - CloudFront's algorithm

    return sign


class CloudFront:
    """Signed URLs on one distribution's domain, and invalidations on that distribution."""

    def __init__(self, domain: str, key_id: str, rsa_signer: Callable[[bytes], bytes], distribution_id: str | None):
        self.domain = domain.removeprefix("https://").rstrip("/")
        self.key_id = key_id
        self.distribution_id = distribution_id
        self._rsa_signer = rsa_signer
        self._signer: Any = None
        self._client: Any = None
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: Settings) -> CloudFront:
        if not (settings.cdn_domain and settings.cdn_key_id and settings.cdn_private_key):
            raise ConfigError("CDN_MODE=cloudfront-signed needs CDN_DOMAIN, CDN_KEY_ID and CDN_PRIVATE_KEY")
        return cls(
            settings.cdn_domain,
            settings.cdn_key_id,
            load_private_key(settings.cdn_private_key),
            settings.cdn_distribution_id,
        )

    def signed_url(self, key: str, expires_at: float) -> str:
        """``https://{domain}/{key}`` signed with a canned policy that ends at ``expires_at``."""
        if self._signer is None:
            from botocore.signers import CloudFrontSigner

            self._signer = CloudFrontSigner(self.key_id, self._rsa_signer)
        url = f"https://{self.domain}/{quote(key, safe='/~')}"
        until = datetime.fromtimestamp(int(expires_at), UTC)
        signed: str = self._signer.generate_presigned_url(url, date_less_than=until)
        return signed

    @property
    def client(self) -> Any:
        """The CloudFront API client, built on first use (an erasure): its endpoint is botocore's own choice."""
        if self._client is None:
            with self._lock:
                if self._client is None:
                    from botocore.config import Config

                    from hera_sessions.backends.storage.s3 import (
                        CONNECT_TIMEOUT,
                        MAX_ATTEMPTS,
                        READ_TIMEOUT,
                        _boto_session,
                    )

                    config = Config(
                        retries={"mode": "standard", "total_max_attempts": MAX_ATTEMPTS},
                        connect_timeout=CONNECT_TIMEOUT,
                        read_timeout=READ_TIMEOUT,
                    )
                    self._client = _boto_session().create_client("cloudfront", config=config)
        return self._client

    def invalidate(self, prefix: str) -> str | None:
        """Ask CloudFront to drop ``/{prefix}*``; the invalidation's id, or None (no distribution id, or failed)."""
        if not self.distribution_id:
            return None
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            answer = self.client.create_invalidation(
                DistributionId=self.distribution_id,
                InvalidationBatch={
                    "Paths": {"Quantity": 1, "Items": [f"/{quote(prefix, safe='/~')}*"]},
                    "CallerReference": f"hera-sessions-{uuid.uuid4().hex}",
                },
            )
        except (BotoCoreError, ClientError) as exc:
            logger.warning(
                "CloudFront invalidation failed (cached copies expire within DOWNLOAD_URL_TTL)",
                extra={"prefix": prefix, "error": exc.__class__.__name__},
            )
            return None
        invalidation_id: str = answer["Invalidation"]["Id"]
        return invalidation_id
