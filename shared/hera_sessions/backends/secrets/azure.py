"""Azure Key Vault secret references: ``https://VAULT.vault.azure.net/secrets/NAME[/VERSION]``.

Read with one REST call (``GET {vault}/secrets/{name}/{version}?api-version=7.4``) under a token for
``https://vault.azure.net/.default`` from azure-identity's ``DefaultAzureCredential`` (the function's managed
identity when deployed, ``az login`` on a workstation): no Key Vault SDK needed. The identity needs the
"Key Vault Secrets User" role on the vault (or on the secret).
"""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
from typing import Any, Protocol
from urllib.parse import quote

from hera_sessions.core.errors import ConfigError

SCOPE = "https://vault.azure.net/.default"
API_VERSION = "7.4"
TIMEOUT = 5.0
_REFERENCE = re.compile(
    r"^(?P<vault>https://[A-Za-z0-9-]{3,24}\.vault\.azure\.net)/secrets/(?P<name>[A-Za-z0-9-]{1,127})"
    r"(?:/(?P<version>[A-Za-z0-9]{32}))?/?$"
)


class TokenCredential(Protocol):
    """What this module needs from a credential (azure-identity's credentials have it)."""

    def get_token(self, *scopes: str, **kwargs: Any) -> Any: ...


def parse_reference(reference: str) -> tuple[str, str, str | None]:
    """``https://v.vault.azure.net/secrets/name[/version]`` → (vault URL, name, version or None)."""
    match = _REFERENCE.match(reference)
    if match is None:
        raise ConfigError(
            f"{reference!r} is not a Key Vault secret reference like https://VAULT.vault.azure.net/secrets/NAME "
            "(optionally /VERSION)."
        )
    return match["vault"], match["name"], match["version"]


def read_secret(
    vault_url: str, name: str, version: str | None, credential: TokenCredential, timeout: float = TIMEOUT
) -> str:
    """The secret's value, from the Key Vault REST API (``vault_url`` without a trailing slash)."""
    token = credential.get_token(SCOPE).token
    url = f"{vault_url}/secrets/{quote(name)}/{quote(version or '')}?api-version={API_VERSION}"
    request = urllib.request.Request(  # noqa: S310 - the URL is https://*.vault.azure.net (or a test server)
        url, headers={"Authorization": f"Bearer {token}", "Accept": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            body = json.load(response)
    except urllib.error.HTTPError as exc:
        code = _error_code(exc)
        raise ConfigError(
            f"Key Vault refused to read the secret {name!r}: {exc.code} {code} "
            "(does the identity have the 'Key Vault Secrets User' role on the vault?)"
        ) from None
    except (urllib.error.URLError, TimeoutError, ValueError) as exc:
        raise ConfigError(f"Could not reach Key Vault for the secret {name!r}: {exc.__class__.__name__}") from None
    value = body.get("value") if isinstance(body, dict) else None
    if not isinstance(value, str):
        raise ConfigError(f"Key Vault answered without a value for the secret {name!r}.")
    return value


def _error_code(exc: urllib.error.HTTPError) -> str:
    try:
        error = json.loads(exc.read() or b"{}").get("error") or {}
        return str(error.get("code") or "")
    except (ValueError, AttributeError):
        return ""


def resolve(reference: str) -> str:
    """Resolve a reference with the default credential (once per process, by :mod:`hera_sessions.backends.secrets`)."""
    from azure.identity import DefaultAzureCredential

    vault_url, name, version = parse_reference(reference)
    return read_secret(vault_url, name, version, DefaultAzureCredential())
