"""The server-side read API: what the AI backend imports (docs/reader.md).

It reads session documents and files without knowing the Redis layout, the object keys or the encoding
of stored documents (large ones are stored compressed: this is their only reader besides the HTTP API).
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping
from typing import Any, Self

from hera_sessions.core.errors import ConfigError, HeraError
from hera_sessions.core.models import FileRecord
from hera_sessions.core.service import SessionService
from hera_sessions.runtime import Runtime


class ChecksumMismatchError(HeraError, ValueError):
    """The bytes read back are not the bytes the browser declared (their MD5 differs), or cannot be checked."""

    status = 502
    default_code = "checksum_mismatch"


class SessionReader:
    def __init__(self, service: SessionService) -> None:
        self._service = service

    @classmethod
    def from_env(cls, overrides: Mapping[str, str] | None = None) -> SessionReader:
        """A reader configured like the service itself (the same environment variables).

        In local mode it reads the server's SESSIONS_DIR (absolute, or relative to the current folder: the server
        prints the absolute path at start) and refuses one that holds no server's data, rather than starting an
        empty one; download URLs use the running server's address (PUBLIC_BASE_URL when set)."""
        from hera_sessions.config import SERVER_URL_FILE

        settings = dict(overrides or {})
        found = Runtime(settings).settings
        if found.storage_mode == "local":
            folder = found.sessions_dir.resolve()
            if not any((folder / part).exists() for part in (".token_secret", "redis", "objects")):
                raise ConfigError(
                    f"SESSIONS_DIR={folder} holds no hera-sessions data: set SESSIONS_DIR to the absolute path "
                    "make dev prints at start (data: ...), or start make dev first"
                )
            settings["SESSIONS_DIR"] = str(folder)
            published = folder / SERVER_URL_FILE
            if not found.public_base_url and published.is_file():
                settings["PUBLIC_BASE_URL"] = published.read_text().strip()
        return cls(Runtime(settings).service())

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

    def file(self, session_id: str, path: str) -> FileRecord:
        """One file's record (its ``name``, ``content_md5``, ...); NotFoundError when there is none."""
        return self._service.get_file(session_id, path)

    def read(self, session_id: str, path: str, verify: bool | None = None) -> bytes:
        """The file's bytes, fetched from storage by the server (for models that take bytes, not URLs).

        ``verify`` (default: when the record has an MD5) checks the bytes against the MD5 the browser declared
        and raises :class:`ChecksumMismatchError` when they differ; ``verify=True`` on a record without one
        raises it too (there is nothing to check against).
        """
        from hera_sessions.core import keys

        record = self._service.get_file(session_id, path)
        data = self._service.storage.read(keys.object_key(session_id, record.path))
        if verify is None:
            verify = record.content_md5 is not None
        if verify:
            if record.content_md5 is None:
                raise ChecksumMismatchError(
                    f"{record.path!r} was uploaded without content_md5: there is no checksum to verify.",
                    "no_checksum",
                )
            actual = base64.b64encode(hashlib.md5(data, usedforsecurity=False).digest()).decode()
            if actual != record.content_md5:
                raise ChecksumMismatchError(
                    f"The stored bytes of {record.path!r} are not the bytes uploaded: their MD5 is {actual}, "
                    f"the upload declared {record.content_md5}."
                )
        return data
