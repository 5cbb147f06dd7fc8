"""S3 notifications, in every shape they reach a function: S3's own ``Records`` and EventBridge events.

Keys are decoded exactly once, here. S3 records carry them URL-encoded, form style (a space arrives as
``+``): ``unquote_plus`` decodes them. EventBridge events carry the key as it is, not encoded, yet Powertools'
``S3EventBridgeNotificationObject.key`` applies ``unquote_plus`` to it all the same. That is harmless for
every key this service writes: valid paths (:func:`hera_sessions.core.keys.check_path`) never hold ``+``, ``%``
or a space, so decoding leaves them unchanged. A key holding one of those (an object someone wrote without
our URLs) decodes into another key that breaks the path rules: it is refused and never recorded, but the
delete that follows misses the real object, which the bucket's lifecycle rule then removes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote_plus

from hera_sessions.core.events import UnreadableEventError, event_time
from hera_sessions.core.models import EventKind, StorageEvent

_CREATED = ("ObjectCreated:",)
_REMOVED = ("ObjectRemoved:", "LifecycleExpiration:")
_EVENTBRIDGE_KINDS = {"Object Created": EventKind.CREATED, "Object Deleted": EventKind.REMOVED}


def _sequencer(value: Any) -> str | None:
    return str(value).upper() if value else None


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
    """Every storage event in one S3 or EventBridge payload; [] for a test event or an event we ignore."""
    try:
        if is_test_event(payload):
            return []
        if is_eventbridge(payload):
            return _from_eventbridge(payload)
        if is_s3_notification(payload):
            return [e for r in payload["Records"] if (e := _from_record(r)) is not None]
    except (KeyError, TypeError, ValueError) as exc:
        raise UnreadableEventError(f"Malformed S3 event: {exc.__class__.__name__}: {exc}") from None
    raise UnreadableEventError("Not an S3 notification nor an EventBridge S3 event.")


def _from_record(record: Mapping[str, Any]) -> StorageEvent | None:
    name = str(record["eventName"]).removeprefix("s3:")
    if name.startswith(_CREATED):
        kind = EventKind.CREATED
    elif name.startswith(_REMOVED):
        kind = EventKind.REMOVED
    else:
        return None  # restores, transitions, tagging, replication: nothing to record
    obj = record["s3"]["object"]
    return StorageEvent(
        kind=kind,
        key=unquote_plus(obj["key"]),
        sequencer=_sequencer(obj.get("sequencer")),
        size=int(obj["size"]) if kind is EventKind.CREATED else None,
        etag=obj.get("eTag") or None,
        version=obj.get("eTag") or None,
        event_time=event_time(record.get("eventTime")),
        event_id=(record.get("responseElements") or {}).get("x-amz-request-id"),
        source="s3",
    )


def _from_eventbridge(payload: Mapping[str, Any]) -> list[StorageEvent]:
    from aws_lambda_powertools.utilities.data_classes.s3_event import S3EventBridgeNotificationEvent

    event = S3EventBridgeNotificationEvent(dict(payload))
    kind = _EVENTBRIDGE_KINDS.get(event.detail_type)
    if kind is None:
        return []
    obj = event.detail.object
    return [
        StorageEvent(
            kind=kind,
            key=obj.key,
            sequencer=_sequencer(obj.get("sequencer")),
            size=int(obj["size"]) if kind is EventKind.CREATED else None,
            etag=obj.etag or None,
            version=obj.etag or None,
            event_time=event_time(event.time),
            event_id=event.get_id,
            source="s3",
        )
    ]
