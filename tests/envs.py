"""Settings of a service under test, built in one place: ``service_env("s3", "redis", redis_url=..., bucket=...)``.

``storage`` is where files go (local disk, or an S3 / GCS / Azure bucket), ``metadata`` where records go (the
embedded local server under ``SESSIONS_DIR``, or Redis at ``REDIS_URL``). Keyword overrides are setting names
(``PORT="3000"``) and win over everything. Nothing here imports pytest or reads the environment.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Literal

type StorageKind = Literal["local", "s3", "gcs", "azure"]
type MetadataKind = Literal["local", "redis"]

SERVICE_KEY = "test-service-key"
TOKEN_SECRET = "test-token-secret"
#: Where settings-only tests point Redis: a port nothing listens on (building a service never connects).
UNREACHABLE_REDIS = "redis://127.0.0.1:1/0"

#: The setting naming the bucket (container) of each cloud storage.
BUCKET_SETTING = {"s3": "S3_BUCKET_NAME", "gcs": "GCS_BUCKET_NAME", "azure": "AZURE_CONTAINER_NAME"}


def service_env(
    storage: StorageKind = "local",
    metadata: MetadataKind = "local",
    *,
    bucket: str | None = None,
    redis_url: str | None = None,
    sessions_dir: Path | str | None = None,
    origins: Iterable[str] | None = None,
    token_secret: str | None = TOKEN_SECRET,
    service_keys: str | None = SERVICE_KEY,
    **overrides: str,
) -> dict[str, str]:
    """The settings of a Runtime with files in ``storage`` and records in ``metadata``.

    ``bucket`` names the S3 bucket, GCS bucket or Azure container; ``redis_url`` defaults to an unreachable
    Redis; ``sessions_dir`` is required by local storage or local metadata; ``origins`` become
    ``CORS_ALLOWED_ORIGINS``; ``token_secret`` or ``service_keys`` of None leave that setting out (local mode's
    defaults)."""
    env: dict[str, str] = {}
    if storage == "local":
        env["STORAGE_MODE"] = "local"
    else:
        env |= {"STORAGE_MODE": "cloud", "CLOUD_STORAGE_TYPE": storage}
        if bucket is not None:
            env[BUCKET_SETTING[storage]] = bucket
    env["SESSION_TYPE"] = metadata
    if metadata == "redis":
        env["REDIS_URL"] = redis_url or UNREACHABLE_REDIS
    if sessions_dir is not None:
        env["SESSIONS_DIR"] = str(sessions_dir)
    elif "local" in (storage, metadata) and "SESSIONS_DIR" not in overrides:
        raise ValueError(f"{storage} storage with {metadata} metadata needs a sessions_dir")
    if token_secret is not None:
        env["TOKEN_SECRET"] = token_secret
    if service_keys is not None:
        env["SERVICE_API_KEYS"] = service_keys
    if origins is not None:
        env["CORS_ALLOWED_ORIGINS"] = ",".join(origins)
    return env | overrides
