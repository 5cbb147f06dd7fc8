"""SigV4 query-string signing for S3 presigned GET and PUT URLs, without botocore's request machinery.

botocore builds a whole request object, resolves the endpoint through its rule set, runs the event hooks and
then signs; for one presigned URL that is about 0.2 ms of CPU. The URLs we presign are always the same two
shapes, so this module writes them directly with ``hmac``/``hashlib`` and produces **byte-identical** URLs to
botocore's own ``S3SigV4QueryAuth`` (``tests/aws/test_s3_signing.py`` proves it over hundreds of keys, types,
sizes and expiries with the clock frozen):

- ``PUT``: ``Content-Type`` and ``Content-Length`` are signed headers, as with
  ``generate_presigned_url("put_object", Params={..., "ContentType": t, "ContentLength": n})``, and, when asked,
  ``Content-MD5`` and ``If-None-Match`` (``Params={..., "ContentMD5": m, "IfNoneMatch": "*"}``);
- ``GET``: ``response-content-type`` and ``response-content-disposition`` in the query, as with
  ``generate_presigned_url("get_object", Params={..., "ResponseContentType": ..., "ResponseContentDisposition": ...})``.

The signing key (four chained HMACs) depends only on the secret key, the day and the region: it is derived
once per day and cached. Credentials are the ones botocore resolves (environment variables on Lambda, or any
provider in its chain), read through ``get_frozen_credentials()`` on every URL so refreshable credentials are
renewed exactly when botocore would renew them.

Only the two URL layouts written by :func:`base_url` are signed here: a custom endpoint with path-style
addressing, and regional virtual-hosted addressing on AWS. Everything else (POST policies, multipart parts,
FIPS or dual-stack endpoints, other partitions) stays with botocore.

Note: where the ``awscrt`` package is installed, botocore signs with the CRT instead, which orders the query
parameters differently (the signature is the same); the layer ships without ``awscrt``, as does Lambda's own
boto3, so on Lambda botocore's output is the pure-Python signer's, which is what this module reproduces.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from collections.abc import Callable, Mapping
from functools import lru_cache
from typing import Any, NamedTuple
from urllib.parse import quote, urlsplit

ALGORITHM = "AWS4-HMAC-SHA256"
UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"
_SAFE = "-_.~"  # what botocore leaves unescaped in query strings
_DEFAULT_PORTS = {"http": 80, "https": 443}
#: Regions of the standard ``aws`` partition whose virtual-hosted endpoint is ``BUCKET.s3.REGION.amazonaws.com``
#: (us-east-1 is left to botocore: its legacy global endpoint differs).
_STANDARD_REGION = re.compile(r"(?!us-east-1$)(af|ap|ca|eu|il|me|mx|sa|us)-[a-z]+-\d")
_PLAIN_BUCKET = re.compile(r"[a-z0-9][a-z0-9-]{1,61}[a-z0-9]")


class FrozenCredentials(NamedTuple):
    access_key: str
    secret_key: str
    token: str | None


class CredentialsSource:
    """What the signer needs from botocore's credentials: ``get_frozen_credentials()`` (a structural type)."""

    def get_frozen_credentials(self) -> Any: ...  # pragma: no cover - documentation only


class StaticCredentials(CredentialsSource):
    """Credentials given as values, which never change (botocore's environment provider treats them the same)."""

    def __init__(self, access_key: str, secret_key: str, token: str | None = None) -> None:
        self._frozen = FrozenCredentials(access_key, secret_key, token)

    def get_frozen_credentials(self) -> FrozenCredentials:
        return self._frozen


def environment_credentials(env: Mapping[str, str]) -> StaticCredentials | None:
    """The credentials in ``AWS_ACCESS_KEY_ID`` / ``AWS_SECRET_ACCESS_KEY`` / ``AWS_SESSION_TOKEN``, if any.

    That is where Lambda puts the function role's credentials, and the first place botocore's chain looks, so
    signing with them gives the URL botocore would, without importing botocore (about 0.3 s of a cold start).
    None when they are absent, or when ``AWS_CREDENTIAL_EXPIRATION`` makes botocore refresh them: then botocore's
    chain is used.
    """
    access_key, secret_key = env.get("AWS_ACCESS_KEY_ID"), env.get("AWS_SECRET_ACCESS_KEY")
    if not access_key or not secret_key or env.get("AWS_CREDENTIAL_EXPIRATION"):
        return None
    token = env.get("AWS_SESSION_TOKEN") or env.get("AWS_SECURITY_TOKEN") or None
    return StaticCredentials(access_key, secret_key, token)


def base_url(bucket: str, region: str, endpoint: str | None) -> str | None:
    """The URL every object URL starts with, when it is a layout this module signs; None otherwise.

    - custom endpoint (``AWS_ENDPOINT_URL_S3``/``AWS_ENDPOINT_URL``): path-style, ``{endpoint}/{bucket}``;
    - AWS: regional virtual-hosted, ``https://{bucket}.s3.{region}.amazonaws.com``, for bucket names that are
      plain DNS labels (no dots) in a standard region.
    """
    if endpoint:
        parts = urlsplit(endpoint)
        if parts.scheme not in _DEFAULT_PORTS or not parts.hostname or parts.path not in ("", "/") or parts.query:
            return None
        return f"{parts.scheme}://{parts.netloc}/{quote(bucket, safe='')}"
    if not _STANDARD_REGION.fullmatch(region) or not _PLAIN_BUCKET.fullmatch(bucket) or "--" in bucket:
        return None
    return f"https://{bucket}.s3.{region}.amazonaws.com"


def _host(url: str) -> str:
    """The ``host`` header botocore signs: the host name, with the port unless it is the scheme's default."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    if parts.port is not None and parts.port != _DEFAULT_PORTS.get(parts.scheme):
        host = f"{host}:{parts.port}"
    return host


@lru_cache(maxsize=64)
def _quoted(value: str) -> str:
    """A query value that repeats from URL to URL (the credential scope, the signed headers, the session token
    of several hundred characters), escaped once."""
    return quote(value, safe=_SAFE)


def _hmac(key: bytes, msg: str) -> bytes:
    return hmac.new(key, msg.encode(), hashlib.sha256).digest()


class QuerySigner:
    """Presigned S3 GET and PUT URLs under one bucket URL (see :func:`base_url`)."""

    def __init__(
        self,
        base: str,
        region: str,
        credentials: CredentialsSource,
        clock: Callable[[], float] = time.time,
    ) -> None:
        parts = urlsplit(base.rstrip("/"))
        self._origin = f"{parts.scheme}://{parts.netloc}"
        self._path_prefix = parts.path  # "" (virtual-hosted) or "/bucket" (path-style)
        self._host = _host(base)
        self._region = region
        self._credentials = credentials
        self._clock = clock
        self._scope_tail = f"/{region}/s3/aws4_request"
        self._signing_key: tuple[str, str, bytes] | None = None  # (secret key, day, key)

    def _key(self, secret_key: str, day: str) -> bytes:
        cached = self._signing_key
        if cached is not None and cached[0] == secret_key and cached[1] == day:
            return cached[2]
        k = _hmac(f"AWS4{secret_key}".encode(), day)
        k = _hmac(k, self._region)
        k = _hmac(k, "s3")
        k = _hmac(k, "aws4_request")
        self._signing_key = (secret_key, day, k)
        return k

    def put_url(
        self,
        key: str,
        content_type: str,
        content_length: int,
        expires_in: int,
        *,
        content_md5: str | None = None,
        if_none_match: str | None = None,
    ) -> str:
        """``PUT`` exactly ``content_length`` bytes of ``content_type`` (both signed headers); with
        ``content_md5`` and ``if_none_match`` those headers are signed too (S3 checks the body's MD5 and refuses
        to replace an existing object), as botocore signs ``ContentMD5`` / ``IfNoneMatch``."""
        signed = {"content-length": str(content_length), "content-type": content_type}
        if content_md5 is not None:
            signed["content-md5"] = content_md5
        if if_none_match is not None:
            signed["if-none-match"] = if_none_match
        signed["host"] = self._host
        names = sorted(signed)
        headers = "".join(f"{name}:{' '.join(signed[name].split())}\n" for name in names)
        return self._sign("PUT", key, (), headers=headers, signed_headers=";".join(names), expires_in=expires_in)

    def get_url(
        self,
        key: str,
        expires_in: int,
        response_content_type: str | None = None,
        response_content_disposition: str | None = None,
    ) -> str:
        """``GET`` the object, with S3 answering with these ``Content-Type`` / ``Content-Disposition``."""
        params: list[tuple[str, str]] = []
        if response_content_type is not None:
            params.append(("response-content-type", quote(response_content_type, safe=_SAFE)))
        if response_content_disposition is not None:
            params.append(("response-content-disposition", quote(response_content_disposition, safe=_SAFE)))
        return self._sign(
            "GET", key, params, headers=f"host:{self._host}\n", signed_headers="host", expires_in=expires_in
        )

    def _sign(
        self,
        method: str,
        key: str,
        params: tuple[tuple[str, str], ...] | list[tuple[str, str]],
        *,
        headers: str,
        signed_headers: str,
        expires_in: int,
    ) -> str:
        creds = self._credentials.get_frozen_credentials()
        access_key, secret_key, token = creds.access_key, creds.secret_key, creds.token
        timestamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(self._clock()))
        day = timestamp[:8]
        path = f"{self._path_prefix}/{quote(key, safe='/~')}"
        auth = [
            ("X-Amz-Algorithm", ALGORITHM),
            ("X-Amz-Credential", _quoted(f"{access_key}/{day}{self._scope_tail}")),
            ("X-Amz-Date", timestamp),
            ("X-Amz-Expires", str(int(expires_in))),
            ("X-Amz-SignedHeaders", _quoted(signed_headers)),
        ]
        if token is not None:
            auth.append(("X-Amz-Security-Token", _quoted(token)))
        pairs = [*params, *auth]
        query = "&".join(f"{k}={v}" for k, v in pairs)
        canonical_query = "&".join(f"{k}={v}" for k, v in sorted(pairs))
        canonical_request = f"{method}\n{path}\n{canonical_query}\n{headers}\n{signed_headers}\n{UNSIGNED_PAYLOAD}"
        string_to_sign = (
            f"{ALGORITHM}\n{timestamp}\n{day}{self._scope_tail}\n"
            f"{hashlib.sha256(canonical_request.encode()).hexdigest()}"
        )
        signature = hmac.new(self._key(secret_key, day), string_to_sign.encode(), hashlib.sha256).hexdigest()
        return f"{self._origin}{path}?{query}&X-Amz-Signature={signature}"
