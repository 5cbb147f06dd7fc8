"""The storage abstraction: a small core each backend implements; everything else is built on it once."""

from __future__ import annotations

import re
import unicodedata
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import quote

from hera_sessions.core.errors import HeraError, InvalidInputError
from hera_sessions.core.models import Check, ObjectInfo, UploadTicket

if TYPE_CHECKING:
    from hera_sessions.config import Settings


@dataclass(frozen=True, slots=True)
class UploadSpec:
    """What one upload may be: exactly one key, one type, at most ``size`` bytes, until ``expires_at``."""

    key: str
    content_type: str
    size: int
    method: str  # "PUT" | "POST"
    expires_in: int
    expires_at: float
    #: base64 MD5 of the whole body: bound where the storage verifies it (signed, or a header it checks).
    content_md5: str | None = None
    #: False: the write must create the object, never replace one (a conditional write where storage has one).
    overwrite: bool = True


@dataclass(frozen=True, slots=True)
class DownloadSpec:
    """What a signed download URL is for: the object, how it is served, and for how long."""

    key: str
    content_type: str
    filename: str  # the name a download saves under (any Unicode: the record's name)
    expires_in: int
    expires_at: float

    @property
    def disposition(self) -> str:
        """The ``Content-Disposition`` a download answers with (the key's last segment is the ASCII fallback)."""
        return content_disposition(self.filename, self.key.rsplit("/", 1)[-1])


class Storage(ABC):
    """Object storage under one bucket (or folder); keys are always ``sessions/{id}/{path}``."""

    name: str = "abstract"
    #: Whether browsers can upload with a form POST (S3, GCS and local can; Azure Blob cannot).
    supports_post: bool = True
    #: The large-file protocol name, when the backend has one ("s3-multipart", "gcs-resumable", ...).
    large_protocol: str | None = None
    #: How many reads of one batch's new objects run side by side (``read_head`` over the network waits;
    #: threads overlap the waits).
    read_concurrency: int = 8

    @abstractmethod
    def presign_upload(self, spec: UploadSpec) -> UploadTicket: ...

    @abstractmethod
    def presign_download(self, spec: DownloadSpec) -> str: ...

    @abstractmethod
    def delete(self, key: str) -> None:
        """Delete one object; a missing object is not an error."""

    @abstractmethod
    def list_prefix(self, prefix: str) -> Iterator[ObjectInfo]: ...

    @abstractmethod
    def read(self, key: str) -> bytes:
        """The object's bytes (NotFoundError when absent): for the server-side read API."""

    @abstractmethod
    def check(self) -> None:
        """Raise StorageUnavailableError when the storage cannot be reached (health check)."""

    @abstractmethod
    def read_head(self, key: str, version: str | None, limit: int) -> bytes | None:
        """The first ``limit`` bytes (or fewer) of the object while it is still ``version`` (an event's ETag or
        generation; None: whatever is there), in one ranged read; None when that version is gone."""

    @abstractmethod
    def rewrite(self, key: str, body: bytes, content_type: str, if_version: str) -> bool:
        """Replace the object with ``body`` only while it is still ``if_version`` (a conditional write: a new
        version, and a new "created" event); False when that version is gone."""

    def reachable(self, where: str) -> Check:
        """``storage:reachable``: :meth:`check` passes (``where`` names the bucket for the line)."""
        try:
            self.check()
        except HeraError as exc:
            return Check(
                "storage:reachable",
                "fail",
                f"{where}: {exc.message} ({(exc.__cause__ or exc).__class__.__name__})",
                "check the bucket (container) name, the credentials' permissions and that this machine reaches it",
            )
        return Check("storage:reachable", "ok", f"{where}: listed sessions/")

    def diagnose(self, settings: Settings) -> list[Check]:
        """This backend's lines of ``hera-sessions doctor``; backends add their bucket's configuration."""
        return [self.reachable(self.name)]

    def delete_version(self, key: str, version: str | None) -> None:
        """Delete the object only while it is still ``version`` (the one an event refused), so a newer upload at
        the same path survives. Backends that cannot condition a delete delete unconditionally."""
        self.delete(key)

    def delete_prefix(self, prefix: str) -> int:
        """Delete every object under ``prefix``; backends with batch deletes override this."""
        count = 0
        for info in self.list_prefix(prefix):
            self.delete(info.key)
            count += 1
        return count

    def invalidate_prefix(self, prefix: str) -> None:  # noqa: B027 - optional hook
        """Drop cached copies (CDN) under ``prefix``; nothing to do without a CDN."""

    # Large uploads (multipart, resumable, blocks): backends that have them override these three.
    def start_large_upload(self, spec: UploadSpec) -> UploadTicket:
        raise InvalidInputError("This storage has no large-file uploads.", "method_not_supported")

    def complete_large_upload(
        self, key: str, upload_id: str, parts: list[tuple[int, str]], overwrite: bool = True
    ) -> None:
        """Finish a large upload; with ``overwrite=False`` refuse (FileExistsConflictError) if the key exists."""
        raise InvalidInputError("This storage has no large-file uploads.", "method_not_supported")

    def abort_large_upload(self, key: str, upload_id: str) -> None:
        raise InvalidInputError("This storage has no large-file uploads.", "method_not_supported")

    def abort_prefix_uploads(self, prefix: str) -> None:  # noqa: B027 - optional hook
        """Abort unfinished large uploads under ``prefix`` (erasing a session)."""


#: What may stand in a quoted ``filename="..."`` as it is: printable ASCII but the quote and the backslash.
_PLAIN = re.compile(r"[\x20-\x21\x23-\x5b\x5d-\x7e]+")


def content_disposition(filename: str, fallback: str = "download") -> str:
    """``inline; filename="..."`` and, for a name plain ASCII cannot carry, ``filename*=UTF-8''...`` (RFC 6266,
    RFC 5987 / 8187): the ASCII ``filename`` is the name with accents dropped when nothing else is lost, else
    ``fallback`` (an ASCII name, such as the path's last segment)."""
    if _PLAIN.fullmatch(filename):
        return f'inline; filename="{filename}"'
    ascii_name = unicodedata.normalize("NFKD", filename).encode("ascii", "ignore").decode()
    stripped = "".join(c for c in unicodedata.normalize("NFKD", filename) if not unicodedata.combining(c))
    if ascii_name != stripped or not _PLAIN.fullmatch(ascii_name):
        ascii_name = fallback if _PLAIN.fullmatch(fallback) else "download"
    return f"inline; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(filename, safe='')}"
