"""S3 notifications, in every shape they reach a function: S3's own ``Records`` and EventBridge events.

Keys are decoded exactly once, here. S3 records carry them URL-encoded, form style (a space arrives as
``+``). EventBridge events carry the key as it is, not encoded, yet Powertools'
``S3EventBridgeNotificationObject.key`` applies ``unquote_plus`` to it all the same; it is read the same way here
(strictly: escapes that are not UTF-8 make the event unreadable). That is harmless for every key this service
writes: valid paths (:func:`hera_sessions.core.keys.check_path`) never hold ``+``, ``%`` or a space, so decoding
leaves them unchanged. A key under ``sessions/`` that breaks the path rules once decoded (an object someone wrote
without our URLs) makes its event unreadable: it fails, is retried and dead-lettered, and the bucket's lifecycle
rule removes the object.

Every field is checked by the rules of :mod:`hera_sessions.core.events`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from hera_sessions.core import events as fields
from hera_sessions.core.events import UnreadableEventError, event_time
from hera_sessions.core.models import EventKind, StorageEvent

_CREATED = ("ObjectCreated:",)
_REMOVED = ("ObjectRemoved:", "LifecycleExpiration:")
_EVENTBRIDGE_KINDS = {"Object Created": EventKind.CREATED, "Object Deleted": EventKind.REMOVED}


def is_test_event(payload: Mapping[str, Any]) -> bool:
    return payload.get("Event") == "s3:TestEvent"


def is_eventbridge(payload: Mapping[str, Any]) -> bool:
    return payload.get("source") == "aws.s3" and "detail-type" in payload


def is_s3_notification(payload: Mapping[str, Any]) -> bool:
    records = payload.get("Records")
    return (
        isinstance(records, list)
        and bool(records)
        and all(isinstance(r, dict) and r.get("eventSource") == "aws:s3" for r in records)
    )


def parse(payload: Mapping[str, Any]) -> list[StorageEvent]:
    """Every storage event in one S3 or EventBridge payload; [] for a test event or an event we ignore.

    Raises UnreadableEventError when any part of it cannot be read: the whole payload then changes nothing.
    """
    try:
        if is_test_event(payload):
            return []
        if is_eventbridge(payload):
            return _from_eventbridge(payload)
        if is_s3_notification(payload):
            return [e for r in payload["Records"] if (e := _from_record(r)) is not None]
    except UnreadableEventError:
        raise
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise UnreadableEventError(f"Malformed S3 event: {exc.__class__.__name__}: {exc}") from None
    raise UnreadableEventError("Not an S3 notification nor an EventBridge S3 event.")


def _event(kind: EventKind, obj: Mapping[str, Any], etag_field: str, time: Any) -> StorageEvent:
    etag = fields.text(obj.get(etag_field), "ETag")
    return StorageEvent(
        kind=kind,
        key=fields.object_key(obj.get("key"), "form"),
        sequencer=fields.hex_sequencer(obj.get("sequencer")),
        size=fields.size(obj.get("size")) if kind is EventKind.CREATED else None,
        etag=etag,
        version=etag,
        event_time=event_time(time),
    )


def _from_record(record: Mapping[str, Any]) -> StorageEvent | None:
    name = str(record["eventName"]).removeprefix("s3:")
    if name.startswith(_CREATED):
        kind = EventKind.CREATED
    elif name.startswith(_REMOVED):
        kind = EventKind.REMOVED
    else:
        return None  # restores, transitions, tagging, replication: nothing to record
    return _event(kind, record["s3"]["object"], "eTag", record.get("eventTime"))


def _from_eventbridge(payload: Mapping[str, Any]) -> list[StorageEvent]:
    from aws_lambda_powertools.utilities.data_classes.s3_event import S3EventBridgeNotificationEvent

    event = S3EventBridgeNotificationEvent(dict(payload))
    kind = _EVENTBRIDGE_KINDS.get(event.detail_type)
    if kind is None:
        return []
    # The raw object: Powertools' ``key`` property decodes leniently (bad escapes become U+FFFD).
    obj = event.detail.object.raw_event
    return [_event(kind, obj, "etag", event.time)]
