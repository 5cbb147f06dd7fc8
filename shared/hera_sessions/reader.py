"""The server-side read API: what the AI backend (the seed's "ADK/Backend") imports.

It reads session documents and files without knowing the Redis layout, the object keys or the encoding
of stored documents (large ones are stored compressed: this is their only reader besides the HTTP API).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Self

from hera_sessions.core.models import FileRecord
from hera_sessions.core.service import SessionService
from hera_sessions.runtime import Runtime


class SessionReader:
    def __init__(self, service: SessionService) -> None:
        self._service = service

    @classmethod
    def from_env(cls, overrides: Mapping[str, str] | None = None) -> SessionReader:
        """A reader configured like the service itself (the same environment variables). In local mode it uses
        the embedded metadata server of SESSIONS_DIR, which it finds (or starts) on its own."""
        return cls(Runtime(dict(overrides or {})).service())

    def close(self) -> None:
        """Let go of the metadata store (in local mode, the last user of the embedded server stops it)."""
        self._service.metadata.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def exists(self, session_id: str) -> bool:
        return self._service.metadata.get_session(session_id) is not None

    def document(self, session_id: str, name: str, default: Any = None) -> Any:
        """A JSON document (``user_profile``, ``conversation``, ...), or ``default`` when absent."""
        from hera_sessions.core.errors import NotFoundError

        try:
            return self._service.get_meta(session_id, name)
        except NotFoundError as exc:
            if exc.code == "meta_not_found":
                return default
            raise

    def files(self, session_id: str) -> list[FileRecord]:
        return self._service.list_files(session_id)

    def download_url(self, session_id: str, path: str) -> str:
        """A signed URL (or a signed CDN URL) valid for ``DOWNLOAD_URL_TTL`` seconds."""
        return self._service.download(session_id, path).url

    def read(self, session_id: str, path: str) -> bytes:
        """The file's bytes, fetched from storage by the server (for models that take bytes, not URLs)."""
        from hera_sessions.core import keys

        record = self._service.get_file(session_id, path)
        return self._service.storage.read(keys.object_key(session_id, record.path))
