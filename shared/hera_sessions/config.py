"""Settings: the only module that reads the environment.

One rule resolves a setting: an explicit argument to :func:`load`, then the environment, then the default.
Every setting is declared once in :mod:`hera_sessions.settings_table`; :func:`load` reads and validates them all
at start-up, so a bad value fails fast with a message that names it. A blank value means unset.
Secrets (``REDIS_URL``, ``TOKEN_SECRET``, ``SERVICE_API_KEYS``, ...) may be plain values or references to the
cloud's secret store; :mod:`hera_sessions.backends.secrets` resolves references once per process.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Literal

from hera_sessions.core.errors import ConfigError
from hera_sessions.settings_table import DAY, SETTINGS, MiB, OneOf, Part, Setting

__all__ = ["DAY", "SECRET_SETTINGS", "MiB", "Settings", "load"]

StorageMode = Literal["local", "cloud"]
CloudStorageType = Literal["s3", "gcs", "azure"]
SessionType = Literal["local", "redis"]
CdnMode = Literal["none", "cloudfront-signed", "cloudcdn-signed"]
LocationMetadata = Literal["strip", "refuse", "keep"]

SECRET_SETTINGS = frozenset(s.field for s in SETTINGS if s.secret)
# In SESSIONS_DIR while the local server runs: its base URL, which the reader's download URLs use.
SERVER_URL_FILE = "server-url"


@dataclass(frozen=True, slots=True)
class Settings:
    """The validated settings; fields and defaults agree with ``SETTINGS`` (checked by a test)."""

    storage_mode: StorageMode = "local"
    cloud_storage_type: CloudStorageType | None = None
    sessions_dir: Path = Path("./tmp/user_sessions")
    session_type: SessionType = "local"
    redis_url: str | None = None
    redis_cluster: bool = False
    redis_timeout: float = 1.0
    session_ttl: int = DAY
    s3_bucket_name: str | None = None
    aws_region: str = "ap-northeast-1"
    s3_endpoint_url: str | None = None
    gcs_bucket_name: str | None = None
    azure_account_url: str | None = None
    azure_connection_string: str | None = None
    azure_container_name: str | None = None
    upload_max_bytes: int = 10 * MiB
    multipart_threshold_bytes: int = 16 * MiB
    allowed_content_types: tuple[str, ...] = ("image/png", "image/jpeg", "image/webp", "image/heic")
    location_metadata: LocationMetadata = "strip"
    upload_url_ttl: int = 300
    download_url_ttl: int = 900
    large_upload_ttl: int = DAY
    session_max_files: int = 50
    session_max_bytes: int = 200 * MiB
    meta_max_bytes: int = 1 * MiB
    erase_marker_ttl: int = 8 * DAY
    object_expiry_days: int = 7
    token_secret: str | None = None
    token_secret_previous: str | None = None
    service_api_keys: tuple[str, ...] = ()
    cors_allowed_origins: tuple[str, ...] = ()
    cdn_mode: CdnMode = "none"
    cdn_domain: str | None = None
    cdn_key_id: str | None = None
    cdn_private_key: str | None = None
    cdn_distribution_id: str | None = None
    cdn_url_map: str | None = None
    public_base_url: str | None = None
    host: str = "127.0.0.1"
    port: int = 3000
    snap_start: bool = False  # this Lambda init is taking a SnapStart snapshot: build everything before it
    extra: Mapping[str, str] = field(default_factory=dict, repr=False, compare=False)  # the whole environment

    @property
    def storage_backend(self) -> str:
        """The storage backend's registry name: ``local``, ``s3``, ``gcs`` or ``azure``."""
        return "local" if self.storage_mode == "local" else str(self.cloud_storage_type)

    @property
    def open_session_creation(self) -> bool:
        """Local mode with no service keys lets anyone create a session (for the demo page)."""
        return self.storage_mode == "local" and not self.service_api_keys

    @property
    def browser_origins(self) -> tuple[str, ...]:
        """The origins the API and the object endpoints answer: CORS_ALLOWED_ORIGINS, and in local mode also the
        demo page's own (the server's address, by 127.0.0.1 and by localhost), so it works with no setting."""
        if self.storage_mode != "local":
            return self.cors_allowed_origins
        port = f":{self.port}"
        own = (self.base_url, f"http://127.0.0.1{port}", f"http://localhost{port}")
        return tuple(dict.fromkeys((*self.cors_allowed_origins, *own)))

    @property
    def base_url(self) -> str:
        """Where the local server is reached (used in local object URLs)."""
        return (self.public_base_url or f"http://{self.host}:{self.port}").rstrip("/")

    def __repr__(self) -> str:  # never print secrets
        shown = ", ".join(
            f"{f.name}={'***' if f.name in SECRET_SETTINGS and getattr(self, f.name) else getattr(self, f.name)!r}"
            for f in fields(self)
            if f.name != "extra"
        )
        return f"Settings({shown})"


# When each part is in use, and how a message names that condition.
PARTS: dict[Part, tuple[Callable[[Settings], bool], Callable[[Settings], str]]] = {
    "cloud": (lambda s: s.storage_mode == "cloud", lambda s: "STORAGE_MODE=cloud"),
    "redis": (lambda s: s.session_type == "redis", lambda s: "SESSION_TYPE=redis"),
    "s3": (lambda s: s.storage_backend == "s3", lambda s: "CLOUD_STORAGE_TYPE=s3"),
    "gcs": (lambda s: s.storage_backend == "gcs", lambda s: "CLOUD_STORAGE_TYPE=gcs"),
    "azure": (lambda s: s.storage_backend == "azure", lambda s: "CLOUD_STORAGE_TYPE=azure"),
    "cdn": (lambda s: s.cdn_mode != "none", lambda s: f"CDN_MODE={s.cdn_mode}"),
}


def _raw(env: Mapping[str, str], setting: Setting) -> str | None:
    for name in (setting.env, *setting.fallbacks):
        value = env.get(name, "").strip()
        if value:
            return value
    return None


def load(overrides: Mapping[str, str] | None = None, environ: Mapping[str, str] | None = None) -> Settings:
    """Read and validate the settings: ``overrides`` first, then the environment, then the defaults."""
    env: dict[str, str] = dict(os.environ if environ is None else environ)
    env.update(overrides or {})
    values: dict[str, Any] = {}
    for setting in SETTINGS:
        raw = _raw(env, setting)
        if raw is not None:  # unset: the dataclass default
            values[setting.field] = setting.parse(setting.env, raw)
    settings = Settings(**values, extra=env)
    if settings.storage_mode == "cloud" and settings.session_type != "redis":
        raise ConfigError(
            "STORAGE_MODE=cloud needs SESSION_TYPE=redis: cloud functions share no disk, "
            "so session metadata must live in Redis"
        )
    _check_required(settings)
    _check_values(settings)
    return settings


def _check_required(s: Settings) -> None:
    """Each part in use needs the settings that name it in ``required_by``: all that are missing, in one message."""
    missing: dict[str, list[str]] = {}
    by_env = {setting.env: setting for setting in SETTINGS}
    for setting in SETTINGS:
        part = setting.required_by
        if part is None or not PARTS[part][0](s) or getattr(s, setting.field):
            continue
        if setting.or_else is not None and getattr(s, by_env[setting.or_else].field):
            continue
        name = setting.env if setting.or_else is None else f"{setting.env} or {setting.or_else}"
        if isinstance(setting.parse, OneOf):
            name += f" ({_or(list(setting.parse.options))})"
        missing.setdefault(PARTS[part][1](s), []).append(name)
    if missing:
        raise ConfigError("; ".join(f"{condition} needs {', '.join(names)}" for condition, names in missing.items()))


def _or(names: list[str]) -> str:
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}"


def _check_values(s: Settings) -> None:
    """The rules that tie one value to another, or to the code (known content types)."""
    if s.session_type == "redis" and s.redis_url:
        from hera_sessions.backends.secrets import is_reference

        if not is_reference(s.redis_url) and not s.redis_url.startswith(("redis://", "rediss://", "unix://")):
            raise ConfigError("REDIS_URL must start with redis://, rediss:// or unix:// (or be a secret reference)")
    from hera_sessions.core.keys import EXTENSIONS_BY_TYPE

    unknown = [t for t in s.allowed_content_types if t not in EXTENSIONS_BY_TYPE]
    if unknown:
        raise ConfigError(
            f"ALLOWED_CONTENT_TYPES has types with no known file extension: {', '.join(unknown)} "
            f"(known: {', '.join(sorted(EXTENSIONS_BY_TYPE))})"
        )
    if s.cdn_mode == "cloudfront-signed" and s.cloud_storage_type != "s3":
        raise ConfigError("CDN_MODE=cloudfront-signed goes with CLOUD_STORAGE_TYPE=s3")
    if s.cdn_mode == "cloudcdn-signed" and s.cloud_storage_type != "gcs":
        raise ConfigError("CDN_MODE=cloudcdn-signed goes with CLOUD_STORAGE_TYPE=gcs")
    for origin in s.cors_allowed_origins:
        if origin != "*" and not origin.startswith(("http://", "https://")):
            raise ConfigError(f"CORS_ALLOWED_ORIGINS has {origin!r}: an origin looks like https://app.example.com")
