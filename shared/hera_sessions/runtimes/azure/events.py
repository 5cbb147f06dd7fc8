"""Azure Blob storage events from Event Grid, in either delivery schema, turned into StorageEvents.

- Event Grid schema: ``{"id", "topic", "subject", "eventType", "eventTime", "data", "dataVersion"}``
- CloudEvents 1.0 schema: ``{"id", "source", "subject", "type", "time", "specversion", "data"}``

Only ``Microsoft.Storage.BlobCreated`` and ``Microsoft.Storage.BlobDeleted`` are storage events; anything else is
skipped. The key comes from the ``subject``
(``/blobServices/default/containers/{container}/blobs/{blob name}``, the name as stored, not encoded), or, when
the subject does not have that shape, from ``data.url`` (percent-encoded: decoded exactly once, here).

Ordering: ``data.sequencer`` is, per Microsoft, "an opaque string value representing the logical sequence of
events for any particular blob name" that "standard string comparison" orders. It is hexadecimal, seen 32 digits
long in older events and 48 in newer ones, and the 48-digit form mixes letter case
(``...00010C26000000000067dc78``): it is upper-cased here so that comparing strings compares the values, and
:func:`hera_sessions.core.keys.later` compares tokens of different widths as strings do (the shorter right-padded).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote, urlsplit

from hera_sessions.core.events import UnreadableEventError, event_time
from hera_sessions.core.models import EventKind, StorageEvent

BLOB_CREATED = "Microsoft.Storage.BlobCreated"
BLOB_DELETED = "Microsoft.Storage.BlobDeleted"
SUBSCRIPTION_VALIDATION = "Microsoft.EventGrid.SubscriptionValidationEvent"
_KINDS = {BLOB_CREATED: EventKind.CREATED, BLOB_DELETED: EventKind.REMOVED}
_SUBJECT = re.compile(r"^/blobServices/default/containers/(?P<container>[^/]+)/blobs/(?P<blob>.+)$")
_HEX = re.compile(r"[0-9A-Fa-f]+")


def normalize_sequencer(value: Any) -> str | None:
    """``data.sequencer`` as an order token: upper-case hexadecimal (None when absent or not hexadecimal)."""
    if not isinstance(value, str) or not _HEX.fullmatch(value):
        return None
    return value.upper()


def event_type(event: Mapping[str, Any]) -> str:
    """The event's type in either schema (``eventType`` for Event Grid, ``type`` for CloudEvents)."""
    return str(event.get("eventType") or event.get("type") or "")


def _events(payload: Any) -> list[Mapping[str, Any]]:
    items = payload if isinstance(payload, list) else [payload]
    if not items or not all(isinstance(item, Mapping) for item in items):
        raise UnreadableEventError("An Event Grid delivery is an event object or a list of event objects.")
    return items


def validation_code(payload: Any) -> str | None:
    """The code of a ``SubscriptionValidationEvent`` (the webhook handshake), None for any other delivery."""
    for event in _events(payload):
        if event_type(event) == SUBSCRIPTION_VALIDATION:
            data = event.get("data")
            code = data.get("validationCode") if isinstance(data, Mapping) else None
            if not isinstance(code, str) or not code:
                raise UnreadableEventError("A subscription validation event without a validationCode.")
            return code
    return None


def blob_key(subject: Any, url: Any, container: str | None = None) -> tuple[str | None, str]:
    """(container, blob name) from the subject, else from ``data.url`` (decoded once)."""
    if isinstance(subject, str) and (match := _SUBJECT.match(subject)):
        return match["container"], match["blob"]
    if not isinstance(url, str) or not url:
        raise UnreadableEventError("A blob event with neither a blob subject nor a data.url.")
    path = urlsplit(url).path
    if container is not None:  # https://acct.blob.core.windows.net/c/k or http://127.0.0.1:10000/acct/c/k
        marker = f"/{container}/"
        if marker in path:
            return container, unquote(path.split(marker, 1)[1], errors="strict")
    segments = path.split("/", 2)  # ["", container, key]
    if len(segments) < 3 or not segments[2]:
        raise UnreadableEventError(f"Cannot find a blob name in data.url {url!r}.")
    return unquote(segments[1]), unquote(segments[2], errors="strict")


def parse_event(event: Mapping[str, Any], container: str | None = None) -> StorageEvent | None:
    """One Event Grid event → a StorageEvent; None for other event types or for another container's blob."""
    kind = _KINDS.get(event_type(event))
    if kind is None:
        return None
    data = event.get("data")
    if not isinstance(data, Mapping):
        raise UnreadableEventError(f"A {event_type(event)} event without data.")
    event_container, key = blob_key(event.get("subject"), data.get("url"), container)
    if container is not None and event_container != container:
        return None  # another container's blob: never ours to record, nor to delete
    size = data.get("contentLength")
    if kind is EventKind.CREATED and (isinstance(size, bool) or not isinstance(size, int) or size < 0):
        raise UnreadableEventError("A BlobCreated event without a whole contentLength.")
    etag = data.get("eTag") or data.get("etag")
    content_type = data.get("contentType")
    return StorageEvent(
        kind=kind,
        key=key,
        sequencer=normalize_sequencer(data.get("sequencer")),
        size=size if kind is EventKind.CREATED else None,
        etag=etag.strip('"') if isinstance(etag, str) and etag else None,
        content_type=content_type if isinstance(content_type, str) and content_type else None,
        event_time=event_time(event.get("eventTime") or event.get("time")),
        event_id=str(event["id"]) if event.get("id") else None,
        source="azure",
        version=etag if isinstance(etag, str) and etag else None,
    )


def parse(payload: Any, container: str | None = None) -> list[StorageEvent]:
    """Every blob event in one delivery (an event or a list of events, either schema).

    ``container``: the only container whose blobs are ours; events about others are skipped.
    """
    try:
        return [e for item in _events(payload) if (e := parse_event(item, container)) is not None]
    except UnicodeDecodeError:
        raise UnreadableEventError("A blob name that is not UTF-8 once decoded.") from None
