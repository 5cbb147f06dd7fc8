"""Session tokens and service keys.

A session token is ``v1.<kid>.<mac>``: ``mac`` is HMAC-SHA256 over the session id with the token secret,
``kid`` names that secret (a short digest of it), so a token signed with ``TOKEN_SECRET_PREVIOUS`` is still
accepted while secrets rotate. The token holds no expiry: it is valid exactly while its session lives
(the API checks that the session exists), and dies with it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass

from hera_sessions.core.errors import ForbiddenError, UnauthorizedError

_VERSION = "v1"


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


@dataclass(frozen=True, slots=True)
class _Key:
    """One signing key of the token secret, by its key id, with its HMAC already keyed for session ids."""

    kid: str
    secret: bytes
    sessions: hmac.HMAC  # HMAC-SHA256(secret) fed b"hera-session:": each MAC copies it (no rekeying per call)


class TokenAuthority:
    def __init__(self, secret: str, previous: str | None = None, service_keys: tuple[str, ...] = ()) -> None:
        self._keys = [self._key(s) for s in (secret, previous) if s]
        self._service_keys = tuple(k.encode() for k in service_keys)

    @staticmethod
    def _key(secret: str) -> _Key:
        raw = secret.encode()
        kid = _b64(hashlib.sha256(b"hera-kid:" + raw).digest())[:8]
        return _Key(kid, raw, hmac.new(raw, b"hera-session:", hashlib.sha256))

    @staticmethod
    def _mac(key: _Key, session_id: str) -> str:
        mac = key.sessions.copy()
        mac.update(session_id.encode())
        return _b64(mac.digest())

    def issue(self, session_id: str) -> str:
        key = self._keys[0]
        return f"{_VERSION}.{key.kid}.{self._mac(key, session_id)}"

    def is_service_key(self, presented: str) -> bool:
        candidate = presented.encode("utf-8", "surrogateescape")
        found = False
        for key in self._service_keys:  # every key is compared, so timing says nothing about which matched
            found |= hmac.compare_digest(candidate, key)
        return found

    def verify(self, session_id: str, presented: str) -> bool:
        if not presented.isascii():
            return False
        version, _, rest = presented.partition(".")
        kid, _, mac = rest.partition(".")
        if version != _VERSION:
            return False
        for key in self._keys:
            if hmac.compare_digest(kid, key.kid):
                return hmac.compare_digest(mac.encode(), self._mac(key, session_id).encode())
        return False

    def require_service(self, authorization: str | None) -> None:
        self.authorize(authorization, None, what="a service key")

    def authorize(self, authorization: str | None, session_id: str | None, what: str = "a session token") -> None:
        """Pass when the header holds a service key or this session's token; 401 when absent, 403 when not good."""
        if not authorization:
            raise UnauthorizedError(f"This call needs {what}: 'Authorization: Bearer <token>'.", "missing_token")
        scheme, _, presented = authorization.strip().partition(" ")
        presented = presented.strip()
        if scheme.lower() != "bearer" or not presented:
            raise UnauthorizedError("Send the token as 'Authorization: Bearer <token>'.", "missing_token")
        if self.is_service_key(presented) or (session_id is not None and self.verify(session_id, presented)):
            return
        if session_id is None:
            raise ForbiddenError("Creating a session takes one of the service keys.", "invalid_service_key")
        raise ForbiddenError("This token is not valid for this session.", "invalid_token")
