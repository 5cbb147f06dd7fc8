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
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from hera_sessions.core.errors import ConfigError
from hera_sessions.core.models import Check

if TYPE_CHECKING:
    from hera_sessions.config import Settings

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


def diagnose(settings: Settings) -> list[Check]:
    """``secret:NAME`` lines of ``hera-sessions doctor``: each reference resolves (or why not); in cloud mode, a
    secret held as a plain value is a warning (anyone who reads the function's configuration reads it)."""
    from hera_sessions.settings_table import SETTINGS

    checks: list[Check] = []
    plain: list[str] = []
    for setting in (s for s in SETTINGS if s.secret):
        raw = getattr(settings, setting.field)
        values = [raw] if isinstance(raw, str) else list(raw or ())
        for value in values:
            if not is_reference(value):
                if setting.env != "REDIS_URL" or urlsplit(value).password:
                    plain.append(setting.env)
                continue
            try:
                resolve(value)
                checks.append(Check(f"secret:{setting.env}", "ok", f"{value} resolved"))
            except ConfigError as exc:
                checks.append(Check(f"secret:{setting.env}", "fail", exc.message, _ACCESS_FIX))
    plain = sorted(set(plain))
    if plain and settings.storage_mode == "cloud":
        checks.append(
            Check(
                "secrets",
                "warn",
                f"{', '.join(plain)} held as plain values in the environment",
                "store them in the cloud's secret store and set the variable to the reference (see docs/aws.md, "
                "docs/gcp.md, docs/azure.md)",
            )
        )
    elif not checks:
        checks.append(Check("secrets", "ok", f"no secret references ({', '.join(plain) or 'none'} set as values)"))
    return checks


_ACCESS_FIX = (
    "let this identity read the secret: AWS secretsmanager:GetSecretValue, Google roles/secretmanager."
    "secretAccessor, Azure 'Key Vault Secrets User'; and check the reference's name"
)
