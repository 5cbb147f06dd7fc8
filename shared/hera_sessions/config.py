"""Settings: the only module that reads the environment.

One rule resolves a setting: an explicit argument to :func:`load`, then the environment, then the default.
Every value is validated here, at start-up, so a bad value fails fast with a message that names it.
Secrets (``REDIS_URL``, ``TOKEN_SECRET``, ``SERVICE_API_KEYS``, ...) may be plain values or references to the
cloud's secret store; :mod:`hera_sessions.backends.secrets` resolves references once per process.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Literal, cast

from hera_sessions.core.errors import ConfigError

MiB = 1024 * 1024
DAY = 86_400

DEFAULT_CONTENT_TYPES = ("image/png", "image/jpeg", "image/webp", "image/heic")

StorageMode = Literal["local", "cloud"]
CloudStorageType = Literal["s3", "gcs", "azure"]
SessionType = Literal["local", "redis"]
CdnMode = Literal["none", "cloudfront-signed", "cloudcdn-signed"]


class Env:
    """Names of every environment variable the service reads (documented in the README's table)."""

    STORAGE_MODE = "STORAGE_MODE"
    CLOUD_STORAGE_TYPE = "CLOUD_STORAGE_TYPE"
    SESSIONS_DIR = "SESSIONS_DIR"
    SESSION_TYPE = "SESSION_TYPE"
    REDIS_URL = "REDIS_URL"
    REDIS_TIMEOUT = "REDIS_TIMEOUT"
    REDIS_CLUSTER = "REDIS_CLUSTER"
    SESSION_TTL = "SESSION_TTL"
    S3_BUCKET_NAME = "S3_BUCKET_NAME"
    AWS_REGION = "AWS_REGION"
    AWS_ENDPOINT_URL_S3 = "AWS_ENDPOINT_URL_S3"
    AWS_ENDPOINT_URL = "AWS_ENDPOINT_URL"
    GCS_BUCKET_NAME = "GCS_BUCKET_NAME"
    AZURE_STORAGE_ACCOUNT_URL = "AZURE_STORAGE_ACCOUNT_URL"
    AZURE_STORAGE_CONNECTION_STRING = "AZURE_STORAGE_CONNECTION_STRING"
    AZURE_CONTAINER_NAME = "AZURE_CONTAINER_NAME"
    UPLOAD_MAX_BYTES = "UPLOAD_MAX_BYTES"
    MULTIPART_THRESHOLD_BYTES = "MULTIPART_THRESHOLD_BYTES"
    ALLOWED_CONTENT_TYPES = "ALLOWED_CONTENT_TYPES"
    UPLOAD_URL_TTL = "UPLOAD_URL_TTL"
    DOWNLOAD_URL_TTL = "DOWNLOAD_URL_TTL"
    SESSION_MAX_FILES = "SESSION_MAX_FILES"
    SESSION_MAX_BYTES = "SESSION_MAX_BYTES"
    META_MAX_BYTES = "META_MAX_BYTES"
    ERASE_MARKER_TTL = "ERASE_MARKER_TTL"
    LARGE_UPLOAD_TTL = "LARGE_UPLOAD_TTL"
    OBJECT_EXPIRY_DAYS = "OBJECT_EXPIRY_DAYS"
    TOKEN_SECRET = "TOKEN_SECRET"
    TOKEN_SECRET_PREVIOUS = "TOKEN_SECRET_PREVIOUS"
    SERVICE_API_KEYS = "SERVICE_API_KEYS"
    CORS_ALLOWED_ORIGINS = "CORS_ALLOWED_ORIGINS"
    CDN_MODE = "CDN_MODE"
    CDN_DOMAIN = "CDN_DOMAIN"
    CDN_KEY_ID = "CDN_KEY_ID"
    CDN_PRIVATE_KEY = "CDN_PRIVATE_KEY"
    CDN_DISTRIBUTION_ID = "CDN_DISTRIBUTION_ID"
    CDN_URL_MAP = "CDN_URL_MAP"
    PUBLIC_BASE_URL = "PUBLIC_BASE_URL"
    PORT = "PORT"
    HOST = "HOST"
    AWS_LAMBDA_INITIALIZATION_TYPE = "AWS_LAMBDA_INITIALIZATION_TYPE"  # set by Lambda: "snap-start" when snapshotting


SECRET_SETTINGS = (
    "redis_url",
    "token_secret",
    "token_secret_previous",
    "service_api_keys",
    "cdn_private_key",
    "azure_connection_string",
)


@dataclass(frozen=True, slots=True)
class Settings:
    storage_mode: StorageMode = "local"
    cloud_storage_type: CloudStorageType | None = None
    sessions_dir: Path = Path("./tmp/user_sessions")
    session_type: SessionType = "local"
    redis_url: str | None = None
    redis_timeout: float = 1.0
    redis_cluster: bool = False
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
    allowed_content_types: tuple[str, ...] = DEFAULT_CONTENT_TYPES
    upload_url_ttl: int = 300
    download_url_ttl: int = 900
    session_max_files: int = 50
    session_max_bytes: int = 200 * MiB
    meta_max_bytes: int = 1 * MiB
    erase_marker_ttl: int = 8 * DAY
    large_upload_ttl: int = DAY
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
    cdn_url_map: str | None = None  # Cloud CDN: the URL map whose cache an erasure invalidates
    public_base_url: str | None = None
    host: str = "127.0.0.1"
    port: int = 3000
    snap_start: bool = False  # this Lambda init is taking a SnapStart snapshot: build everything before it
    extra: Mapping[str, str] = field(default_factory=dict, repr=False, compare=False)

    @property
    def storage_backend(self) -> str:
        """The storage backend's registry name: ``local``, ``s3``, ``gcs`` or ``azure``."""
        return "local" if self.storage_mode == "local" else str(self.cloud_storage_type)

    @property
    def open_session_creation(self) -> bool:
        """Local mode with no service keys lets anyone create a session (for the demo page)."""
        return self.storage_mode == "local" and not self.service_api_keys

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


def _str(env: Mapping[str, str], name: str) -> str | None:
    value = env.get(name, "").strip()
    return value or None


def _choice[T: str](env: Mapping[str, str], name: str, allowed: tuple[T, ...], default: T | None) -> T | None:
    value = _str(env, name)
    if value is None:
        return default
    value = value.lower()
    if value not in allowed:
        raise ConfigError(f"{name}={value!r} is not one of {', '.join(allowed)}")
    return value


def _int(env: Mapping[str, str], name: str, default: int, minimum: int = 1) -> int:
    value = _str(env, name)
    if value is None:
        return default
    try:
        number = int(value)
    except ValueError:
        raise ConfigError(f"{name}={value!r} is not a whole number") from None
    if number < minimum:
        raise ConfigError(f"{name}={number} must be at least {minimum}")
    return number


def _float(env: Mapping[str, str], name: str, default: float) -> float:
    value = _str(env, name)
    if value is None:
        return default
    try:
        number = float(value)
    except ValueError:
        raise ConfigError(f"{name}={value!r} is not a number") from None
    if not 0 < number <= 60:
        raise ConfigError(f"{name}={number} must be between 0 and 60 seconds")
    return number


def _bool(env: Mapping[str, str], name: str, default: bool = False) -> bool:
    value = _str(env, name)
    if value is None:
        return default
    if value.lower() not in ("1", "true", "yes", "0", "false", "no"):
        raise ConfigError(f"{name}={value!r} is not true or false")
    return value.lower() in ("1", "true", "yes")


def _list(env: Mapping[str, str], name: str, default: tuple[str, ...] = ()) -> tuple[str, ...]:
    value = env.get(name)
    if value is None:
        return default
    return tuple(item.strip() for item in value.split(",") if item.strip())


def load(overrides: Mapping[str, str] | None = None, environ: Mapping[str, str] | None = None) -> Settings:
    """Read and validate the settings: ``overrides`` first, then the environment, then the defaults."""
    env: dict[str, str] = dict(os.environ if environ is None else environ)
    env.update(overrides or {})

    storage_mode = _choice(env, Env.STORAGE_MODE, ("local", "cloud"), "local")
    assert storage_mode is not None
    cloud_type = _choice(env, Env.CLOUD_STORAGE_TYPE, ("s3", "gcs", "azure"), None)
    session_type = _choice(env, Env.SESSION_TYPE, ("local", "redis"), "local" if storage_mode == "local" else None)

    if storage_mode == "cloud":
        if cloud_type is None:
            raise ConfigError("STORAGE_MODE=cloud needs CLOUD_STORAGE_TYPE (s3, gcs or azure)")
        if session_type != "redis":
            raise ConfigError(
                "STORAGE_MODE=cloud needs SESSION_TYPE=redis: cloud functions share no disk, "
                "so session metadata must live in Redis"
            )
    assert session_type is not None

    redis_url = _str(env, Env.REDIS_URL)
    if session_type == "redis":
        if not redis_url:
            raise ConfigError("SESSION_TYPE=redis needs REDIS_URL (redis://, rediss:// or a secret reference)")
        _check_redis_url(redis_url)

    upload_max = _int(env, Env.UPLOAD_MAX_BYTES, 10 * MiB)
    allowed_types = tuple(t.lower() for t in _list(env, Env.ALLOWED_CONTENT_TYPES, DEFAULT_CONTENT_TYPES))
    if not allowed_types:
        raise ConfigError("ALLOWED_CONTENT_TYPES must name at least one content type")
    from hera_sessions.core.keys import EXTENSIONS_BY_TYPE

    unknown = [t for t in allowed_types if t not in EXTENSIONS_BY_TYPE]
    if unknown:
        raise ConfigError(
            f"ALLOWED_CONTENT_TYPES has types with no known file extension: {', '.join(unknown)} "
            f"(known: {', '.join(sorted(EXTENSIONS_BY_TYPE))})"
        )

    settings = Settings(
        storage_mode=cast("StorageMode", storage_mode),
        cloud_storage_type=cast("CloudStorageType | None", cloud_type),
        sessions_dir=Path(_str(env, Env.SESSIONS_DIR) or "./tmp/user_sessions"),
        session_type=cast("SessionType", session_type),
        redis_url=redis_url,
        redis_timeout=_float(env, Env.REDIS_TIMEOUT, 1.0),
        redis_cluster=_bool(env, Env.REDIS_CLUSTER),
        session_ttl=_int(env, Env.SESSION_TTL, DAY),
        s3_bucket_name=_str(env, Env.S3_BUCKET_NAME),
        aws_region=_str(env, Env.AWS_REGION) or _str(env, "AWS_DEFAULT_REGION") or "ap-northeast-1",
        s3_endpoint_url=_str(env, Env.AWS_ENDPOINT_URL_S3) or _str(env, Env.AWS_ENDPOINT_URL),
        gcs_bucket_name=_str(env, Env.GCS_BUCKET_NAME),
        azure_account_url=_str(env, Env.AZURE_STORAGE_ACCOUNT_URL),
        azure_connection_string=_str(env, Env.AZURE_STORAGE_CONNECTION_STRING),
        azure_container_name=_str(env, Env.AZURE_CONTAINER_NAME),
        upload_max_bytes=upload_max,
        multipart_threshold_bytes=_int(env, Env.MULTIPART_THRESHOLD_BYTES, 16 * MiB, minimum=5 * MiB),
        allowed_content_types=allowed_types,
        upload_url_ttl=_int(env, Env.UPLOAD_URL_TTL, 300),
        download_url_ttl=_int(env, Env.DOWNLOAD_URL_TTL, 900),
        session_max_files=_int(env, Env.SESSION_MAX_FILES, 50),
        session_max_bytes=_int(env, Env.SESSION_MAX_BYTES, 200 * MiB),
        meta_max_bytes=_int(env, Env.META_MAX_BYTES, 1 * MiB),
        erase_marker_ttl=_int(env, Env.ERASE_MARKER_TTL, 8 * DAY),
        large_upload_ttl=_int(env, Env.LARGE_UPLOAD_TTL, DAY),
        object_expiry_days=_int(env, Env.OBJECT_EXPIRY_DAYS, 7),
        token_secret=_str(env, Env.TOKEN_SECRET),
        token_secret_previous=_str(env, Env.TOKEN_SECRET_PREVIOUS),
        service_api_keys=_list(env, Env.SERVICE_API_KEYS),
        cors_allowed_origins=tuple(o.rstrip("/") for o in _list(env, Env.CORS_ALLOWED_ORIGINS)),
        cdn_mode=cast("CdnMode", _choice(env, Env.CDN_MODE, ("none", "cloudfront-signed", "cloudcdn-signed"), "none")),
        cdn_domain=_str(env, Env.CDN_DOMAIN),
        cdn_key_id=_str(env, Env.CDN_KEY_ID),
        cdn_private_key=_str(env, Env.CDN_PRIVATE_KEY),
        cdn_distribution_id=_str(env, Env.CDN_DISTRIBUTION_ID),
        cdn_url_map=_str(env, Env.CDN_URL_MAP),
        public_base_url=_str(env, Env.PUBLIC_BASE_URL),
        host=_str(env, Env.HOST) or "127.0.0.1",
        port=_int(env, Env.PORT, 3000, minimum=0),
        snap_start=env.get(Env.AWS_LAMBDA_INITIALIZATION_TYPE) == "snap-start",
        extra=env,
    )
    _check_cloud(settings)
    return settings


def _check_redis_url(url: str) -> None:
    from hera_sessions.backends.secrets import is_reference

    if is_reference(url):
        return
    if not url.startswith(("redis://", "rediss://", "unix://")):
        raise ConfigError("REDIS_URL must start with redis://, rediss:// or unix:// (or be a secret reference)")


def _check_cloud(s: Settings) -> None:
    if s.storage_mode == "cloud":
        needed = {
            "s3": [(Env.S3_BUCKET_NAME, s.s3_bucket_name)],
            "gcs": [(Env.GCS_BUCKET_NAME, s.gcs_bucket_name)],
            "azure": [
                (Env.AZURE_CONTAINER_NAME, s.azure_container_name),
                (
                    f"{Env.AZURE_STORAGE_ACCOUNT_URL} or {Env.AZURE_STORAGE_CONNECTION_STRING}",
                    s.azure_account_url or s.azure_connection_string,
                ),
            ],
        }[str(s.cloud_storage_type)]
        missing = [name for name, value in needed if not value]
        if missing:
            raise ConfigError(f"CLOUD_STORAGE_TYPE={s.cloud_storage_type} needs {', '.join(missing)}")
        if not s.token_secret:
            raise ConfigError("STORAGE_MODE=cloud needs TOKEN_SECRET (a plain value or a secret reference)")
        if not s.service_api_keys:
            raise ConfigError("STORAGE_MODE=cloud needs SERVICE_API_KEYS: sessions are created by your backend")
    if s.cdn_mode != "none" and not (s.cdn_domain and s.cdn_key_id and s.cdn_private_key):
        raise ConfigError(f"CDN_MODE={s.cdn_mode} needs CDN_DOMAIN, CDN_KEY_ID and CDN_PRIVATE_KEY")
    if s.cdn_mode == "cloudfront-signed" and s.cloud_storage_type != "s3":
        raise ConfigError("CDN_MODE=cloudfront-signed goes with CLOUD_STORAGE_TYPE=s3")
    if s.cdn_mode == "cloudcdn-signed" and s.cloud_storage_type != "gcs":
        raise ConfigError("CDN_MODE=cloudcdn-signed goes with CLOUD_STORAGE_TYPE=gcs")
    for origin in s.cors_allowed_origins:
        if origin != "*" and not origin.startswith(("http://", "https://")):
            raise ConfigError(f"CORS_ALLOWED_ORIGINS has {origin!r}: an origin looks like https://app.example.com")
