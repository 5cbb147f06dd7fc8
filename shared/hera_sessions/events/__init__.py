"""Storage notifications from each cloud, turned into :class:`hera_sessions.models.StorageEvent` values."""

from __future__ import annotations

from hera_sessions.errors import InvalidInputError


class UnreadableEventError(InvalidInputError):
    """A notification that cannot be understood: reported as failed (retried, then dead-lettered)."""

    default_code = "unreadable_event"
