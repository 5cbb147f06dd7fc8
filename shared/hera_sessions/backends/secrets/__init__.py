"""Secret references: a setting may name a secret in the cloud's store instead of holding its value.

- ``arn:aws:secretsmanager:...``                  → AWS Secrets Manager (Powertools parameters)
- ``projects/P/secrets/S[/versions/V]``           → Google Secret Manager
- ``https://VAULT.vault.azure.net/secrets/NAME``  → Azure Key Vault

Each reference is resolved once per process (once per cold start) and cached.
"""

from __future__ import annotations

import functools
import re
from importlib import import_module

from hera_sessions.core.errors import ConfigError

#: prefix pattern → "module:function" taking the reference and returning the secret's value
RESOLVERS: dict[str, str] = {
    r"arn:aws:secretsmanager:": "hera_sessions.backends.secrets.aws:resolve",
    r"projects/[^/]+/secrets/": "hera_sessions.backends.secrets.gcp:resolve",
    r"https://[^/]+\.vault\.azure\.net/secrets/": "hera_sessions.backends.secrets.azure:resolve",
}
_PATTERNS = [(re.compile(prefix), target) for prefix, target in RESOLVERS.items()]


def is_reference(value: str) -> bool:
    return any(pattern.match(value) for pattern, _ in _PATTERNS)


@functools.cache
def resolve(value: str) -> str:
    """The secret's value for a reference, or ``value`` itself when it is a plain value."""
    for pattern, target in _PATTERNS:
        if pattern.match(value):
            module, _, function = target.partition(":")
            try:
                resolved: str = getattr(import_module(module), function)(value)
            except ConfigError:
                raise
            except Exception as exc:
                raise ConfigError(f"Could not read the secret {value}: {exc.__class__.__name__}") from exc
            return resolved.strip()
    return value


def resolve_list(values: tuple[str, ...]) -> tuple[str, ...]:
    """A comma-separated list where the whole list, or any item, may be a reference."""
    out: list[str] = []
    for value in values:
        out.extend(item.strip() for item in resolve(value).split(",") if item.strip())
    return tuple(out)
