"""Storage backends, by name. A backend's SDK is imported the first time it is used, never before."""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from hera_sessions.backends.storage.base import Storage
    from hera_sessions.config import Settings

#: name → "module:factory"; each factory takes the Settings and returns a Storage.
BACKENDS = {
    "local": "hera_sessions.backends.storage.local:from_settings",
    "s3": "hera_sessions.backends.storage.s3:from_settings",
    "gcs": "hera_sessions.backends.storage.gcs:from_settings",
    "azure": "hera_sessions.backends.storage.azure:from_settings",
}


def open_storage(settings: Settings) -> Storage:
    module, _, factory = BACKENDS[settings.storage_backend].partition(":")
    storage: Storage = getattr(import_module(module), factory)(settings)
    return storage
