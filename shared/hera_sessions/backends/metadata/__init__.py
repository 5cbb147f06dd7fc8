"""The metadata store: Redis (standalone or Cluster), or in local mode an embedded server under SESSIONS_DIR."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from hera_sessions.backends.metadata.base import MetadataStore
    from hera_sessions.config import Settings


def open_metadata(settings: Settings) -> MetadataStore:
    if settings.session_type == "redis":
        from hera_sessions.backends.metadata.redis import RedisMetadataStore
        from hera_sessions.backends.secrets import resolve

        url = resolve(settings.redis_url or "")
        return RedisMetadataStore.from_url(url, settings.redis_timeout, settings.redis_cluster or None)
    from hera_sessions.backends.metadata.embedded import open_embedded

    return open_embedded(settings.sessions_dir, settings.redis_timeout)
