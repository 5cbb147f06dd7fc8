"""Storage notifications from each cloud, turned into :class:`hera_sessions.core.models.StorageEvent` values."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from hera_sessions.core.errors import InvalidInputError


class UnreadableEventError(InvalidInputError):
    """A notification that cannot be understood: reported as failed (retried, then dead-lettered)."""

    default_code = "unreadable_event"


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
