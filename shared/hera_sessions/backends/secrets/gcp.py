"""Google Secret Manager through its REST API, with google-auth's default credentials.

A reference is ``projects/P/secrets/S`` (the latest version) or ``projects/P/secrets/S/versions/V``. No
Secret Manager client library is needed: one ``GET v1/{name}:access`` through an ``AuthorizedSession``
(google-auth comes with google-cloud-storage). The function's service account needs
``roles/secretmanager.secretAccessor`` on each secret.
"""

from __future__ import annotations

import base64
import functools
import re
from typing import Any

from hera_sessions.core.errors import ConfigError

ENDPOINT = "https://secretmanager.googleapis.com/v1"
SCOPE = "https://www.googleapis.com/auth/cloud-platform"
_NAME = re.compile(r"projects/[^/]+/secrets/[^/]+/versions/[^/]+")


def version_name(reference: str) -> str:
    """``projects/P/secrets/S`` → ``projects/P/secrets/S/versions/latest``; a full version name is kept."""
    name = reference.strip().strip("/")
    if "/versions/" not in name:
        name = f"{name}/versions/latest"
    if not _NAME.fullmatch(name):
        raise ConfigError(f"{reference!r} is not a Secret Manager name (projects/P/secrets/S[/versions/V])")
    return name


def access(name: str, session: Any, endpoint: str = ENDPOINT) -> str:
    """The secret version's payload as text; ``session`` is an ``AuthorizedSession`` (or any requests Session)."""
    response = session.get(f"{endpoint}/{name}:access", timeout=10)
    if response.status_code != 200:
        try:
            message = response.json()["error"]["message"]
        except (ValueError, KeyError, TypeError):
            message = response.reason
        raise ConfigError(f"Secret Manager answered {response.status_code} for {name}: {message}")
    payload = response.json()["payload"]
    data = base64.b64decode(payload["data"])
    if "dataCrc32c" in payload:
        import google_crc32c

        if int(payload["dataCrc32c"]) != google_crc32c.value(data):
            raise ConfigError(f"Secret Manager's payload for {name} failed its CRC32C check")
    return data.decode("utf-8")


@functools.cache
def _session() -> Any:
    """One authorized session for every reference of a cold start: one token, reused connections."""
    import google.auth
    from google.auth.transport.requests import AuthorizedSession

    credentials, _ = google.auth.default(scopes=[SCOPE])
    return AuthorizedSession(credentials)  # type: ignore[no-untyped-call]


def resolve(reference: str) -> str:
    return access(version_name(reference), _session(), ENDPOINT)
