"""Storage notifications from each cloud, turned into :class:`hera_sessions.core.models.StorageEvent` values.

The field rules live here, once, for every reader (S3, EventBridge, GCS, Event Grid). A field that breaks its
rule makes the whole notification unreadable (:class:`UnreadableEventError`): it is reported as failed and
changes nothing, so the cloud retries it and then dead-letters it.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any
from urllib.parse import unquote, unquote_plus

from hera_sessions.core import keys
from hera_sessions.core.errors import InvalidInputError


class UnreadableEventError(InvalidInputError):
    """A notification that cannot be understood: reported as failed (retried, then dead-lettered)."""

    default_code = "unreadable_event"


_HEX = re.compile(r"[0-9A-Fa-f]+")
_DIGITS = re.compile(r"[0-9]{1,20}")  # 64 bits at most (sizes, GCS generations): never a huge int() to parse


def event_time(value: Any) -> float:
    """An event's ISO 8601 time as epoch seconds; 0.0 when absent or unreadable (the store then uses now).

    Event Grid writes 7 fractional digits (``2017-06-26T18:41:00.9584103Z``); Python reads at most 6.
    """
    if not isinstance(value, str) or not value:
        return 0.0
    try:  # the common case, fast: Python 3.11+ reads Z and up to 6 fractional digits
        return datetime.fromisoformat(value).timestamp()
    except ValueError:
        pass
    text = re.sub(r"(\.\d{6})\d+", r"\1", value.replace("Z", "+00:00"))
    try:
        return datetime.fromisoformat(text).timestamp()
    except ValueError:
        return 0.0


def session_key(key: str) -> tuple[str, str] | None:
    """``(session id, path)`` of a key under ``sessions/``; None for a key outside it (not ours: skipped).

    A key under ``sessions/`` must follow the path rules (:func:`keys.split_object_key` and
    :func:`keys.check_path`, so no ``..``): otherwise the event is unreadable, and nothing touches that key.
    """
    if not key.startswith(keys.PREFIX):
        return None
    parts = keys.split_object_key(key)
    if parts is None:
        raise UnreadableEventError(f"The key {key!r} is under {keys.PREFIX} but names no session file.")
    try:
        keys.check_path(parts[1])
    except InvalidInputError:
        raise UnreadableEventError(f"The key {key!r} breaks the path rules.") from None
    return parts


def object_key(value: Any, encoding: str | None = None) -> str:
    """An event's object key, decoded once: ``encoding`` is ``"form"`` (``+`` is a space), ``"url"``, or None.

    Unreadable: not a non-empty string, percent-escapes that are not UTF-8, a lone surrogate, or a key under
    ``sessions/`` that breaks the path rules (:func:`session_key`).
    """
    if not isinstance(value, str) or not value:
        raise UnreadableEventError(f"The object key is not a non-empty string: {type(value).__name__}.")
    key: str = value
    try:
        if encoding == "form":
            key = unquote_plus(key, errors="strict")
        elif encoding == "url":
            key = unquote(key, errors="strict")
        key.encode("utf-8")
    except UnicodeError:
        raise UnreadableEventError(f"The object key {value!r} is not UTF-8 text.") from None
    session_key(key)
    return key


def size(value: Any) -> int:
    """An object size as a JSON number: a non-negative integer (not a bool, a float or a string)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise UnreadableEventError(f"The object size is not a non-negative integer: {value!r}.")
    return value


def decimal(value: Any, field: str) -> int:
    """A whole number sent as a decimal string (GCS's size and generation): 1 to 20 ASCII digits."""
    if not isinstance(value, str) or not _DIGITS.fullmatch(value):
        raise UnreadableEventError(f"The {field} is not a string of decimal digits: {value!r}.")
    return int(value)


def hex_sequencer(value: Any) -> str | None:
    """An order token of hexadecimal digits, upper-cased (so string order is value order); None when absent."""
    if value is None:
        return None
    if not isinstance(value, str) or not _HEX.fullmatch(value):
        raise UnreadableEventError(f"The sequencer is not hexadecimal: {value!r}.")
    return value.upper()


def text(value: Any, field: str) -> str | None:
    """An optional text field (ETag, content type): None when absent or empty, else UTF-8 text."""
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise UnreadableEventError(f"The {field} is not text: {value!r}.")
    try:
        value.encode("utf-8")
    except UnicodeError:
        raise UnreadableEventError(f"The {field} is not UTF-8 text.") from None
    return value
