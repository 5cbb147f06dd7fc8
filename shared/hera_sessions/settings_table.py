"""Every setting the service reads, declared once: name, field, parser, default, owner, meaning.

:func:`hera_sessions.config.load` is driven by :data:`SETTINGS`; the settings table of ``docs/settings.md`` and the
README's table of the main settings are rendered from it (:func:`markdown_table`, run
``python -m hera_sessions.settings_table``) and a test checks them, the ``Settings`` dataclass and ``template.yaml``
against it. Imported on every cold start: data and small parsers only.

``default`` is spelt as the environment would spell it (``None``: unset); the dataclass holds the typed default.
``owner`` is the part that reads it: ``core``, ``local`` (the local server and disk), ``redis``, ``s3``, ``gcs``,
``azure``, ``cdn``, or ``lambda`` (set by the Lambda runtime). ``required_by`` names the part that cannot run
without it (``cloud``: ``STORAGE_MODE=cloud``; or an owner, while that part is in use).
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from pathlib import Path
from typing import Literal, NamedTuple

from hera_sessions.core.errors import ConfigError

MiB = 1024 * 1024
DAY = 86_400

Owner = Literal["core", "local", "redis", "s3", "gcs", "azure", "cdn", "lambda"]
Part = Literal["cloud", "redis", "s3", "gcs", "azure", "cdn"]


# -- parsers: (name, value) -> typed value; value is stripped and non-empty (blank means unset) ----------------
# NamedTuples, not dataclasses: this module is imported on every cold start and a dataclass costs ~1 ms to define.
class Text(NamedTuple):
    def __call__(self, name: str, value: str) -> str:
        return value


class FilePath(NamedTuple):
    def __call__(self, name: str, value: str) -> Path:
        return Path(value)


class Whole(NamedTuple):
    minimum: int = 1

    def __call__(self, name: str, value: str) -> int:
        try:
            number = int(value)
        except ValueError:
            raise ConfigError(f"{name}={value!r} is not a whole number") from None
        if number < self.minimum:
            raise ConfigError(f"{name}={number} must be at least {self.minimum}")
        return number


class Seconds(NamedTuple):
    """A float in ``(above, at_most]``."""

    above: float
    at_most: float

    def __call__(self, name: str, value: str) -> float:
        try:
            number = float(value)
        except ValueError:
            raise ConfigError(f"{name}={value!r} is not a number") from None
        if not self.above < number <= self.at_most:
            raise ConfigError(f"{name}={number} must be between {self.above:g} and {self.at_most:g} seconds")
        return number


class Flag(NamedTuple):
    def __call__(self, name: str, value: str) -> bool:
        if value.lower() not in ("1", "true", "yes", "0", "false", "no"):
            raise ConfigError(f"{name}={value!r} is not true or false")
        return value.lower() in ("1", "true", "yes")


class Equals(NamedTuple):
    """True when the value is exactly ``expected`` (a marker set by the platform)."""

    expected: str

    def __call__(self, name: str, value: str) -> bool:
        return value == self.expected


class OneOf(NamedTuple):
    options: tuple[str, ...]

    def __call__(self, name: str, value: str) -> str:
        value = value.lower()
        if value not in self.options:
            raise ConfigError(f"{name}={value!r} is not one of {', '.join(self.options)}")
        return value


class Items(NamedTuple):
    """A comma-separated list; ``each`` normalises an item; ``at_least_one`` names an item when one is needed."""

    each: Callable[[str], str] | None = None
    at_least_one: str | None = None

    def __call__(self, name: str, value: str) -> tuple[str, ...]:
        items = tuple(item.strip() for item in value.split(",") if item.strip())
        if self.each is not None:
            items = tuple(self.each(item) for item in items)
        if not items and self.at_least_one:
            raise ConfigError(f"{name} must name at least one {self.at_least_one}")
        return items


def _origin(origin: str) -> str:
    return origin.rstrip("/")


Parser = Text | FilePath | Whole | Seconds | Flag | Equals | OneOf | Items


class Setting(NamedTuple):
    env: str
    field: str
    parse: Parser
    default: str | None
    owner: Owner
    meaning: str
    secret: bool = False
    required_by: Part | None = None
    fallbacks: tuple[str, ...] = ()  # read, in order, when ``env`` is unset
    or_else: str | None = None  # another setting that satisfies ``required_by`` instead of this one
    shown_default: str | None = None  # the table's wording when the default is not a plain value


_STR = Text()
_TTL = Whole()

SETTINGS: tuple[Setting, ...] = (
    Setting("STORAGE_MODE", "storage_mode", OneOf(("local", "cloud")), "local", "core",
            "`local` (files on disk) or `cloud`"),
    Setting("CLOUD_STORAGE_TYPE", "cloud_storage_type", OneOf(("s3", "gcs", "azure")), None, "core",
            "`s3`, `gcs` or `azure` (required in cloud mode)", required_by="cloud"),
    Setting("SESSIONS_DIR", "sessions_dir", FilePath(), "./tmp/user_sessions", "local",
            "local mode: objects in `objects/`, the embedded metadata server's data in `redis/`"),
    Setting("SESSION_TYPE", "session_type", OneOf(("local", "redis")), "local", "core",
            "`local` (an embedded Redis under `SESSIONS_DIR`) or `redis` (`REDIS_URL`); cloud mode requires `redis` "
            "and refuses to start otherwise",
            shown_default="`local` in local mode"),
    Setting("REDIS_URL", "redis_url", _STR, None, "redis",
            "`redis://`, `rediss://` (TLS), with a password (`redis://:pw@host:6379/0`); add `?cluster=true` for "
            "Redis Cluster", secret=True, required_by="redis"),
    Setting("REDIS_CLUSTER", "redis_cluster", Flag(), "false", "redis", "the same as `?cluster=true`"),
    Setting("REDIS_TIMEOUT", "redis_timeout", Seconds(0, 60), "1.0", "redis",
            "seconds before a slow or absent Redis becomes a 503 `metadata_unavailable`"),
    Setting("SESSION_TTL", "session_ttl", _TTL, str(DAY), "core",
            "seconds a session's records and documents live after its last write"),
    Setting("S3_BUCKET_NAME", "s3_bucket_name", _STR, None, "s3", "the S3 bucket (cloud, s3)", required_by="s3"),
    Setting("AWS_REGION", "aws_region", _STR, "ap-northeast-1", "s3",
            "the S3 region (SigV4, regional virtual-hosted URLs)", fallbacks=("AWS_DEFAULT_REGION",)),
    Setting("AWS_ENDPOINT_URL_S3", "s3_endpoint_url", _STR, None, "s3",
            "an S3-compatible endpoint (path-style URLs)", fallbacks=("AWS_ENDPOINT_URL",)),
    Setting("GCS_BUCKET_NAME", "gcs_bucket_name", _STR, None, "gcs",
            "the GCS bucket (cloud, gcs); `STORAGE_EMULATOR_HOST` is honoured", required_by="gcs"),
    Setting("AZURE_STORAGE_ACCOUNT_URL", "azure_account_url", _STR, None, "azure",
            "the Blob account, reached with a managed identity", required_by="azure",
            or_else="AZURE_STORAGE_CONNECTION_STRING"),
    Setting("AZURE_STORAGE_CONNECTION_STRING", "azure_connection_string", _STR, None, "azure",
            "the Blob account, reached with its account key (instead of `AZURE_STORAGE_ACCOUNT_URL`)", secret=True),
    Setting("AZURE_CONTAINER_NAME", "azure_container_name", _STR, None, "azure", "the Blob container",
            required_by="azure"),
    Setting("UPLOAD_MAX_BYTES", "upload_max_bytes", Whole(), str(10 * MiB), "core", "the largest file"),
    Setting("MULTIPART_THRESHOLD_BYTES", "multipart_threshold_bytes", Whole(5 * MiB), str(16 * MiB), "core",
            "above it, large-file protocols (off with the default cap)"),
    Setting("ALLOWED_CONTENT_TYPES", "allowed_content_types", Items(str.lower, at_least_one="content type"),
            "image/png,image/jpeg,image/webp,image/heic", "core", "accepted types; the extension must fit"),
    Setting("LOCATION_METADATA", "location_metadata", OneOf(("strip", "refuse", "keep")), "strip", "core",
            "a stored image's EXIF GPS position: `strip` it (rewritten in place), `refuse` the file, or `keep` it"),
    Setting("UPLOAD_URL_TTL", "upload_url_ttl", _TTL, "300", "core",
            "seconds an upload URL lives (any TTL of 1 s or more is valid)"),
    Setting("DOWNLOAD_URL_TTL", "download_url_ttl", _TTL, "900", "core", "seconds a download URL lives"),
    Setting("LARGE_UPLOAD_TTL", "large_upload_ttl", _TTL, str(DAY), "core",
            "seconds a large upload's quota is held (multipart/resumable sessions outlive URLs)"),
    Setting("SESSION_MAX_FILES", "session_max_files", Whole(), "50", "core",
            "files per session (uploaded or reserved)"),
    Setting("SESSION_MAX_BYTES", "session_max_bytes", Whole(), str(200 * MiB), "core", "bytes per session"),
    Setting("META_MAX_BYTES", "meta_max_bytes", Whole(), str(MiB), "core", "the largest JSON document"),
    Setting("ERASE_MARKER_TTL", "erase_marker_ttl", _TTL, str(8 * DAY), "core",
            "how long an erased session stays erased: a late upload or storage event finds it and leaves nothing"),
    Setting("OBJECT_EXPIRY_DAYS", "object_expiry_days", Whole(), "7", "local",
            "local mode: the lifecycle sweep deletes objects older than this (the buckets' lifecycle rule in the "
            "cloud)"),
    Setting("TOKEN_SECRET", "token_secret", _STR, None, "core",
            "the HMAC secret of session tokens (required in cloud mode)", secret=True, required_by="cloud",
            shown_default="generated in `SESSIONS_DIR` locally"),
    Setting("TOKEN_SECRET_PREVIOUS", "token_secret_previous", _STR, None, "core",
            "the previous secret, still accepted while secrets rotate", secret=True),
    Setting("SERVICE_API_KEYS", "service_api_keys", Items(), None, "core",
            "comma-separated keys of the app's backend (required in cloud mode; empty = open creation, local only)",
            secret=True, required_by="cloud"),
    Setting("CORS_ALLOWED_ORIGINS", "cors_allowed_origins", Items(_origin), None, "core",
            "comma-separated origins; empty means none. Feeds the API, the local object endpoints, the S3 bucket "
            "rules and the GCS/Azure CORS"),
    Setting("CDN_MODE", "cdn_mode", OneOf(("none", "cloudfront-signed", "cloudcdn-signed")), "none", "cdn",
            "`cloudfront-signed` (S3) or `cloudcdn-signed` (GCS); there is no unsigned public mode"),
    Setting("CDN_DOMAIN", "cdn_domain", _STR, None, "cdn", "the CDN's host", required_by="cdn"),
    Setting("CDN_KEY_ID", "cdn_key_id", _STR, None, "cdn",
            "the signing key id (CloudFront key pair id / Cloud CDN key name)", required_by="cdn"),
    Setting("CDN_PRIVATE_KEY", "cdn_private_key", _STR, None, "cdn", "the signing key", secret=True,
            required_by="cdn"),
    Setting("CDN_DISTRIBUTION_ID", "cdn_distribution_id", _STR, None, "cdn",
            "CloudFront: the distribution an erasure invalidates"),
    Setting("CDN_URL_MAP", "cdn_url_map", _STR, None, "gcs",
            "Cloud CDN: the URL map whose cache an erasure invalidates"),
    Setting("PUBLIC_BASE_URL", "public_base_url", _STR, None, "local", "local mode: the base of local object URLs",
            shown_default="`http://HOST:PORT`"),
    Setting("HOST", "host", _STR, "127.0.0.1", "local", "where `make dev` listens"),
    Setting("PORT", "port", Whole(0), "3000", "local", "the port `make dev` listens on"),
    Setting("AWS_LAMBDA_INITIALIZATION_TYPE", "snap_start", Equals("snap-start"), None, "lambda",
            "`snap-start`: build everything during the SnapStart snapshot init", shown_default="set by Lambda"),
)  # fmt: skip


def shown_default(setting: Setting) -> str:
    """The table's wording of a default: the value, with its size in MiB or days where that helps."""
    if setting.shown_default is not None:
        return setting.shown_default
    if setting.default is None:
        return "—"
    shown = f"`{setting.default}`"
    if setting.env.endswith("_BYTES") and int(setting.default) % MiB == 0:
        shown += f" ({int(setting.default) // MiB} MiB)"
    elif setting.env.endswith("_TTL") and int(setting.default) % DAY == 0:
        days = int(setting.default) // DAY
        shown += f" ({days} day{'s' if days > 1 else ''})"
    return shown


def markdown_table(names: Collection[str] | None = None) -> str:
    """The settings table (name | default | meaning): a row per setting, or per setting ``names`` holds (the README
    shows the main ones), in the order of :data:`SETTINGS`."""
    rows = ["| variable | default | meaning |", "|---|---|---|"]
    for s in SETTINGS:
        if names is not None and s.env not in names:
            continue
        name = ", else ".join(f"`{env}`" for env in (s.env, *s.fallbacks))
        rows.append(f"| {name} | {shown_default(s)} | {s.meaning} |")
    return "\n".join(rows) + "\n"


if __name__ == "__main__":
    print(markdown_table(), end="")
