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
(``...00010C26000000000067dc78``): it is checked and upper-cased (:func:`hera_sessions.core.events.hex_sequencer`)
so that comparing strings compares the values, and
the rules (``core/rules/state.lua`` ``later``) compare tokens of different widths as S3 does (the shorter right-padded).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote, urlsplit

from hera_sessions.core import events as fields
from hera_sessions.core.events import UnreadableEventError, event_time
from hera_sessions.core.models import EventKind, StorageEvent

BLOB_CREATED = "Microsoft.Storage.BlobCreated"
BLOB_DELETED = "Microsoft.Storage.BlobDeleted"
SUBSCRIPTION_VALIDATION = "Microsoft.EventGrid.SubscriptionValidationEvent"
_KINDS = {BLOB_CREATED: EventKind.CREATED, BLOB_DELETED: EventKind.REMOVED}
_SUBJECT = re.compile(r"/blobServices/default/containers/(?P<container>[^/]+)/blobs/(?P<blob>.+)")


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


def blob_key(subject: Any, url: Any, container: str | None = None) -> tuple[str | None, str, str | None]:
    """(container, blob name, its encoding) from the subject (not encoded), else from ``data.url`` (``"url"``)."""
    if isinstance(subject, str) and (match := _SUBJECT.fullmatch(subject)):
        return match["container"], match["blob"], None
    if not isinstance(url, str) or not url:
        raise UnreadableEventError("A blob event with neither a blob subject nor a data.url.")
    path = urlsplit(url).path
    if container is not None:  # https://acct.blob.core.windows.net/c/k or http://127.0.0.1:10000/acct/c/k
        marker = f"/{container}/"
        if marker in path:
            return container, path.split(marker, 1)[1], "url"
    segments = path.split("/", 2)  # ["", container, key]
    if len(segments) < 3 or not segments[2]:
        raise UnreadableEventError(f"Cannot find a blob name in data.url {url!r}.")
    return unquote(segments[1]), segments[2], "url"


def parse_event(event: Mapping[str, Any], container: str | None = None) -> StorageEvent | None:
    """One Event Grid event → a StorageEvent; None for other event types or for another container's blob."""
    kind = _KINDS.get(event_type(event))
    if kind is None:
        return None
    data = event.get("data")
    if not isinstance(data, Mapping):
        raise UnreadableEventError(f"A {event_type(event)} event without data.")
    event_container, name, encoding = blob_key(event.get("subject"), data.get("url"), container)
    if container is not None and event_container != container:
        return None  # another container's blob: never ours to record, nor to delete
    key = fields.object_key(name, encoding)  # decoded once, checked
    etag = fields.text(data.get("eTag") or data.get("etag"), "eTag")
    return StorageEvent(
        kind=kind,
        key=key,
        sequencer=fields.hex_sequencer(data.get("sequencer")),
        size=fields.size(data.get("contentLength")) if kind is EventKind.CREATED else None,
        etag=etag.strip('"') if etag else None,
        content_type=fields.text(data.get("contentType"), "content type"),
        event_time=event_time(event.get("eventTime") or event.get("time")),
        version=etag,
    )


def parse(payload: Any, container: str | None = None) -> list[StorageEvent]:
    """Every blob event in one delivery (an event or a list of events, either schema); raises for any unreadable.

    ``container``: the only container whose blobs are ours; events about others are skipped.
    """
    return [e for item in _events(payload) if (e := parse_event(item, container)) is not None]


def read(payload: Any, container: str | None = None) -> tuple[list[StorageEvent], list[UnreadableEventError]]:
    """:func:`parse`, each event on its own: the readable events, and why each unreadable one is so."""
    events: list[StorageEvent] = []
    problems: list[UnreadableEventError] = []
    for item in _events(payload):
        try:
            event = parse_event(item, container)
        except UnreadableEventError as exc:
            problems.append(exc)
            continue
        if event is not None:
            events.append(event)
    return events, problems
