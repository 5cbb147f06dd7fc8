"""Event Grid blob events → StorageEvent: both schemas, keys, sequencers (ordered by the rules, in Redis), skips."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from hera_sessions.core.events import UnreadableEventError
from hera_sessions.core.models import EventKind
from hera_sessions.runtimes.azure import events as blob_events
from tests.conftest import load_event

CONTAINER = "hera-sessions"
KEY = "sessions/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA/photos/user.png"


def created() -> dict[str, Any]:
    return copy.deepcopy(load_event("eventgrid-blob-created.json")[0])  # type: ignore[index]


def as_cloud_event(event: dict[str, Any]) -> dict[str, Any]:
    """The same event in the CloudEvents 1.0 schema, as Event Grid delivers it when asked to."""
    return {
        "specversion": "1.0",
        "id": event["id"],
        "source": event["topic"],
        "subject": event["subject"],
        "type": event["eventType"],
        "time": event["eventTime"],
        "data": event["data"],
    }


def test_the_sample_blob_created_event() -> None:
    (event,) = blob_events.parse(load_event("eventgrid-blob-created.json"), CONTAINER)

    assert event.kind is EventKind.CREATED
    assert event.key == KEY
    assert (event.size, event.content_type, event.etag) == (12345, "image/png", "0x8DD3567A1B2C3D4")
    assert event.sequencer == "00000000000000000000000000026D6E0000000000A1B2C3"
    assert event.event_time == pytest.approx(1736935205.123456)


def test_the_sample_blob_deleted_event(sequencer_order: Callable[[str, str], int]) -> None:
    (event,) = blob_events.parse(load_event("eventgrid-blob-deleted.json"), CONTAINER)

    assert (event.kind, event.key, event.size) == (EventKind.REMOVED, KEY, None)
    (created_event,) = blob_events.parse(load_event("eventgrid-blob-created.json"))
    assert event.sequencer and created_event.sequencer
    assert sequencer_order(event.sequencer, created_event.sequencer) > 0


def test_the_cloud_events_schema_reads_the_same() -> None:
    grid = created()

    assert blob_events.parse(as_cloud_event(grid), CONTAINER) == blob_events.parse([grid], CONTAINER)


def test_one_event_or_a_list_of_events() -> None:
    assert blob_events.parse(created(), CONTAINER) == blob_events.parse([created(), {"eventType": "Other"}], CONTAINER)


def test_other_event_types_are_skipped() -> None:
    tier = created() | {"eventType": "Microsoft.Storage.BlobTierChanged"}

    assert blob_events.parse([tier], CONTAINER) == []


def test_events_about_another_container_are_skipped() -> None:
    event = created()
    event["subject"] = event["subject"].replace(CONTAINER, "other")

    assert blob_events.parse(event, CONTAINER) == []
    assert len(blob_events.parse(event)) == 1  # without a container to compare with, every blob counts


def test_the_key_comes_from_the_subject_as_is() -> None:
    event = created()
    event["subject"] = event["subject"].replace(KEY, "exports/user%20name.png")

    (parsed,) = blob_events.parse(event, CONTAINER)

    assert parsed.key == "exports/user%20name.png"  # the subject holds the name as stored: not decoded


def test_without_a_blob_subject_the_key_comes_from_the_url_decoded_once() -> None:
    event = created()
    event["subject"] = ""
    event["data"]["url"] = f"https://herasessions.blob.core.windows.net/{CONTAINER}/exports/a%2520b.png"

    (parsed,) = blob_events.parse(event, CONTAINER)

    assert parsed.key == "exports/a%20b.png"


def test_the_url_of_a_path_style_emulator_account() -> None:
    event = created()
    event["subject"] = None
    event["data"]["url"] = f"http://127.0.0.1:10000/devstoreaccount1/{CONTAINER}/{KEY}"

    assert blob_events.parse(event, CONTAINER)[0].key == KEY


def with_sequencer(value: Any) -> dict[str, Any]:
    event = created()
    event["data"]["sequencer"] = value
    return event


@pytest.mark.parametrize(
    ("raw", "normalized"),
    [
        ("00000000000004420000000000028963", "00000000000004420000000000028963"),
        ("00000000000000000000000000010C26000000000067dc78", "00000000000000000000000000010C26000000000067DC78"),
        (None, None),
    ],
)
def test_sequencers_are_upper_case_hex(raw: Any, normalized: str | None) -> None:
    assert blob_events.parse(with_sequencer(raw))[0].sequencer == normalized


def test_sequencers_of_the_same_width_order_as_their_values(sequencer_order: Callable[[str, str], int]) -> None:
    lower = blob_events.parse(with_sequencer("000000000000000000000000000100000000000000009fff"))[0].sequencer
    upper = blob_events.parse(with_sequencer("00000000000000000000000000010000000000000000a000"))[0].sequencer

    assert upper and lower
    assert sequencer_order(upper, lower) > 0  # "a" < "9" would be wrong; "A" > "9" as hex wants
    assert sequencer_order(lower, lower) == 0


def test_the_subscription_validation_code() -> None:
    payload = load_event("eventgrid-subscription-validation.json")

    assert blob_events.validation_code(payload) == "512d38b6-c7b8-40c8-89fe-f46f9e9622b6"
    assert blob_events.validation_code([created()]) is None
    assert blob_events.parse(payload) == []


@pytest.mark.parametrize(
    "payload",
    [
        [],
        "text",
        [1, 2],
        [{"eventType": blob_events.BLOB_CREATED, "subject": "/blobServices/default/containers/c/blobs/k"}],
        [{"eventType": blob_events.BLOB_CREATED, "subject": "not-a-blob", "data": {"contentLength": 1}}],
    ],
)
def test_unreadable_deliveries(payload: Any) -> None:
    with pytest.raises(UnreadableEventError):
        blob_events.parse(payload)


#: (where, field, value) that make a BlobCreated event unreadable: "subject" holds the key, "data" the rest.
HOSTILE_FIELDS: list[tuple[str, Any]] = [
    ("key", "sessions/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA/photos/\ud800.png"),
    ("key", "sessions/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA/../../x.png"),
    ("key", "sessions/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA/photos/a b.png"),
    ("key", "sessions/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA/photos/%41.png"),  # not decoded: "%" breaks the rules
    ("key", "sessions/short/a.png"),
    ("url", 123),  # no blob subject, and a url that is no string
    ("url", f"https://a.blob.core.windows.net/{CONTAINER}/sessions/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA/%FF.png"),
    ("url", f"https://a.blob.core.windows.net/{CONTAINER}/sessions/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA/%2E%2E/x.png"),
    ("contentLength", None),
    ("contentLength", -500),
    ("contentLength", 5.5),
    ("contentLength", True),
    ("contentLength", "12"),
    ("contentLength", "²"),
    ("sequencer", "-00000000001"),
    ("sequencer", " 0000000000F"),
    ("sequencer", "0x1F"),
    ("sequencer", "not-hex"),
    ("sequencer", ""),
    ("sequencer", 12),
    ("eTag", ["x"]),
    ("contentType", 5),
]


def hostile(field: str, value: Any) -> dict[str, Any]:
    """The sample BlobCreated event with one field replaced (``key``: the subject's blob name)."""
    event = created()
    if field == "key":
        event["subject"] = f"/blobServices/default/containers/{CONTAINER}/blobs/{value}"
    elif field == "url":
        event["subject"] = None
        event["data"]["url"] = value
    elif value is None:
        del event["data"][field]
    else:
        event["data"][field] = value
    return event


@pytest.mark.parametrize(("field", "value"), HOSTILE_FIELDS, ids=lambda v: repr(v)[:40])
def test_a_hostile_field_makes_the_event_unreadable(field: str, value: Any) -> None:
    event = hostile(field, value)

    with pytest.raises(UnreadableEventError):
        blob_events.parse(event, CONTAINER)
    with pytest.raises(UnreadableEventError):
        blob_events.parse(as_cloud_event(event), CONTAINER)
    # read one by one, the good events of the same delivery are kept and the bad one is reported
    events, problems = blob_events.read([created(), event, created()], CONTAINER)
    assert len(events) == 2
    assert len(problems) == 1
