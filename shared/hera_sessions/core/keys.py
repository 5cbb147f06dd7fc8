"""Names in one place: session ids, file paths, object keys and Redis keys.

Object keys are ``sessions/{session_id}/{path}``; every key is built by
:func:`object_key`, which only accepts a validated session id and path, so no key escapes its session.
"""

from __future__ import annotations

import re
import secrets

from hera_sessions.core.errors import InvalidInputError, UnsupportedTypeError

PREFIX = "sessions/"

#: 24 random bytes → 32 URL-safe base64 characters (192 bits, more than the 128 asked for).
SESSION_ID_BYTES = 24
_SESSION_ID = re.compile(r"[A-Za-z0-9_-]{32}")
_SEGMENT = re.compile(r"[A-Za-z0-9._-]+")
#: A whole valid path at once (the hot path of event recording): segments of the allowed characters, none of
#: them "." or ".."; check_path falls back to segment by segment only to say what is wrong.
_PATH = re.compile(r"(?!\.\.?(?:/|$))[A-Za-z0-9._-]+(?:/(?!\.\.?(?:/|$))[A-Za-z0-9._-]+)*")
_META_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")
MAX_PATH_BYTES = 256

EXTENSIONS_BY_TYPE: dict[str, tuple[str, ...]] = {
    "image/png": (".png",),
    "image/jpeg": (".jpg", ".jpeg"),
    "image/webp": (".webp",),
    "image/heic": (".heic",),
    "image/heif": (".heif",),
    "image/gif": (".gif",),
    "image/avif": (".avif",),
    "application/pdf": (".pdf",),
    "application/json": (".json",),
    "text/plain": (".txt",),
}
TYPE_BY_EXTENSION = {ext: ctype for ctype, exts in EXTENSIONS_BY_TYPE.items() for ext in exts}


def new_session_id() -> str:
    return secrets.token_urlsafe(SESSION_ID_BYTES)


def check_session_id(session_id: str) -> str:
    if not isinstance(session_id, str) or not _SESSION_ID.fullmatch(session_id):
        raise InvalidInputError("That is not a session id.", "invalid_session_id")
    return session_id


def is_session_id(value: str) -> bool:
    return bool(_SESSION_ID.fullmatch(value))


def check_path(path: object) -> str:
    """A file path inside a session: relative, at most 256 bytes, segments of ``[A-Za-z0-9._-]``."""
    if not isinstance(path, str) or not path:
        raise InvalidInputError("A file path is required, such as photos/user.png.", "invalid_path")
    if len(path) <= MAX_PATH_BYTES and _PATH.fullmatch(path):  # ASCII only, so characters are bytes
        return path
    if len(path.encode("utf-8")) > MAX_PATH_BYTES:
        raise InvalidInputError(f"A file path may be at most {MAX_PATH_BYTES} bytes long.", "invalid_path")
    for segment in path.split("/"):
        if segment in ("", ".", "..") or not _SEGMENT.fullmatch(segment):
            raise InvalidInputError(
                "A file path is made of folder and file names separated by '/', each of letters, digits, "
                "'.', '_' or '-' (no '..', no leading '/', no spaces or other characters).",
                "invalid_path",
            )
    return path


def extension(path: str) -> str:
    name = path.rsplit("/", 1)[-1]
    dot = name.rfind(".")
    return name[dot:].lower() if dot > 0 else ""


def check_type_fits(path: str, content_type: str, allowed: tuple[str, ...]) -> str:
    """The content type must be allowed and the path's extension must fit it."""
    ctype = content_type.lower().strip() if isinstance(content_type, str) else ""
    if ctype not in allowed:
        raise UnsupportedTypeError(
            f"Files of type {content_type or 'unknown'} are not accepted; allowed: {', '.join(allowed)}.",
        )
    if extension(path) not in EXTENSIONS_BY_TYPE.get(ctype, ()):
        raise InvalidInputError(
            f"The file name {path.rsplit('/', 1)[-1]!r} does not fit its type {ctype}: "
            f"use {' or '.join(EXTENSIONS_BY_TYPE[ctype])}.",
            "extension_mismatch",
        )
    return ctype


def type_from_extension(path: str) -> str | None:
    return TYPE_BY_EXTENSION.get(extension(path))


def check_meta_name(name: str) -> str:
    if not isinstance(name, str) or not _META_NAME.fullmatch(name):
        raise InvalidInputError(
            "A metadata document name is 1 to 64 letters, digits, '_' or '-', such as user_profile.",
            "invalid_meta_name",
        )
    return name


def session_prefix(session_id: str) -> str:
    return f"{PREFIX}{check_session_id(session_id)}/"


def object_key(session_id: str, path: str) -> str:
    return session_prefix(session_id) + check_path(path)


def split_object_key(key: str) -> tuple[str, str] | None:
    """``sessions/{id}/{path}`` → ``(id, path)``; None for a key outside the layout (never raises)."""
    if not key.startswith(PREFIX):
        return None
    session_id, _, path = key[len(PREFIX) :].partition("/")
    if not is_session_id(session_id) or not path:
        return None
    return session_id, path


# Redis keys: the session id is the hash tag, so a whole session lives in one Cluster slot.
def redis_session_key(session_id: str) -> str:
    """Hash: session info, file records and upload tickets (one small hash per session)."""
    return f"session:{{{session_id}}}"


def redis_meta_key(session_id: str) -> str:
    """Hash: the session's JSON documents (``user_profile``, ``conversation``, ...), compressed when large."""
    return f"session:{{{session_id}}}:meta"


def redis_erased_key(session_id: str) -> str:
    """String: the erase marker, kept for ``ERASE_MARKER_TTL`` after an erasure."""
    return f"session:{{{session_id}}}:erased"
