"""One error hierarchy. Every error the service raises on purpose is a :class:`HeraError`.

Each carries its HTTP status and a stable snake_case ``code``; the API turns them into
``{"error": {"code", "message"}}`` in exactly one place (:mod:`hera_sessions.http.api`).
"""

from __future__ import annotations

from typing import ClassVar


class HeraError(Exception):
    """Root of every deliberate error. ``code`` is stable and machine-readable; the message is for a person."""

    status: ClassVar[int] = 500
    default_code: ClassVar[str] = "internal_error"

    def __init__(self, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code or self.default_code

    def to_body(self) -> dict[str, dict[str, str]]:
        return {"error": {"code": self.code, "message": self.message}}


class ConfigError(HeraError):
    """A setting is missing or wrong; raised at start-up, before any request is served."""

    default_code = "config_error"


class InvalidInputError(HeraError, ValueError):
    status = 400
    default_code = "invalid_input"


class UnauthorizedError(HeraError):
    status = 401
    default_code = "missing_token"


class ForbiddenError(HeraError, PermissionError):
    status = 403
    default_code = "forbidden"


class NotFoundError(HeraError, FileNotFoundError):
    status = 404
    default_code = "not_found"


class MethodNotAllowedError(HeraError):
    status = 405
    default_code = "method_not_allowed"


class GoneError(HeraError):
    status = 410
    default_code = "session_erased"


class TooLargeError(HeraError):
    status = 413
    default_code = "too_large"


class UnsupportedTypeError(HeraError):
    status = 415
    default_code = "content_type_not_allowed"


class ConflictError(HeraError):
    status = 409
    default_code = "conflict"


class QuotaExceededError(ConflictError):
    default_code = "quota_exceeded"


class FileExistsConflictError(ConflictError, FileExistsError):
    """The path already holds a recorded file and the upload did not ask to overwrite it."""

    default_code = "file_exists"


class UnavailableError(HeraError):
    """A backend (metadata or storage) could not be reached in time: retry later."""

    status = 503
    default_code = "unavailable"


class MetadataUnavailableError(UnavailableError):
    default_code = "metadata_unavailable"


class StorageUnavailableError(UnavailableError):
    default_code = "storage_unavailable"
