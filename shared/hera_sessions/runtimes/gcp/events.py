"""GCS object events, as CloudEvents (Eventarc → Cloud Functions gen2), turned into StorageEvents.

The event's ``data`` is the object resource of the JSON API: ``name`` is the plain key (not URL-encoded),
``generation``, ``size`` and ``metageneration`` are decimal strings. Every field is checked by the rules of
:mod:`hera_sessions.core.events`; one that breaks them makes the event unreadable.

Ordering. Every write of a key makes a new ``generation`` (a 64-bit integer, microseconds since the epoch in
practice); an overwrite sends ``finalized`` for the new generation and ``deleted`` for the old one, in any order.
Generations are compared exactly, as integers, never as floats (2**53 < 2**63): each becomes a zero-padded
20-digit decimal string, so string order is number order, and a one-digit suffix orders the two events of one
generation: ``0`` for finalized, ``1`` for deleted (an object is deleted after it was written). So the delete
of an old generation never removes a newer file, and the same event delivered twice has the same sequencer,
which the metadata store reports as a duplicate (deduplication by event id follows from it).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from typing import Any

from hera_sessions.core import events as fields
from hera_sessions.core.events import UnreadableEventError, event_time
from hera_sessions.core.models import EventKind, StorageEvent

FINALIZED = "google.cloud.storage.object.v1.finalized"
DELETED = "google.cloud.storage.object.v1.deleted"
#: Object events with nothing to record (storage class changes, metadata edits on versioned buckets).
IGNORED = ("google.cloud.storage.object.v1.archived", "google.cloud.storage.object.v1.metadataUpdated")
KINDS = {FINALIZED: EventKind.CREATED, DELETED: EventKind.REMOVED}
_SUFFIX = {EventKind.CREATED: "0", EventKind.REMOVED: "1"}
_MAX_GENERATION = 2**64 - 1


def sequencer(generation: Any, kind: EventKind) -> str:
    """``"1700000000000001"`` (finalized) → ``"000017000000000000010"``: 20 digits, then 0 or 1."""
    number = fields.decimal(generation, "generation")
    if number > _MAX_GENERATION:
        raise UnreadableEventError(f"GCS event has a generation beyond 64 bits: {generation!r}")
    return f"{number:020d}{_SUFFIX[kind]}"


def md5_hex(md5_base64: Any) -> str | None:
    """GCS reports ``md5Hash`` in base64; the API shows it as hex (the XML API's ETag, S3's convention)."""
    if not isinstance(md5_base64, str) or not md5_base64:
        return None
    try:
        return base64.b64decode(md5_base64, validate=True).hex()
    except (binascii.Error, ValueError):
        return None


def parse(attributes: Mapping[str, Any], data: Any, bucket: str | None = None) -> list[StorageEvent]:
    """The storage event in one CloudEvent; [] for an event type we ignore or another bucket's object.

    Raises UnreadableEventError (and nothing else) for anything else that is not a GCS object event we can read.
    """
    event_type = attributes.get("type")
    if event_type in IGNORED:
        return []
    kind = KINDS.get(str(event_type))
    if kind is None:
        raise UnreadableEventError(f"Not a GCS object finalized/deleted CloudEvent (type {event_type!r}).")
    if not isinstance(data, Mapping):
        raise UnreadableEventError("GCS CloudEvent without the object resource as data.")
    if bucket is not None and data.get("bucket") != bucket:
        return []  # a trigger wired to another bucket: its keys are not ours to record or delete
    if "generation" not in data:
        raise UnreadableEventError("GCS CloudEvent data has no generation.")
    return [
        StorageEvent(
            kind=kind,
            key=fields.object_key(data.get("name")),
            sequencer=sequencer(data["generation"], kind),
            size=fields.decimal(data.get("size"), "size") if kind is EventKind.CREATED else None,
            etag=md5_hex(data.get("md5Hash")) or fields.text(data.get("etag"), "etag"),
            content_type=fields.text(data.get("contentType"), "content type"),
            event_time=event_time(attributes.get("time")) or event_time(data.get("updated")),
            version=str(data["generation"]),
        )
    ]
