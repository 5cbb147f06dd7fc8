"""GCS CloudEvents → StorageEvents, and the storage_events function's ordering, duplicates and retries.

Ordering is by generation (a 64-bit integer) compared exactly; an overwrite sends "finalized" for the new
generation and "deleted" for the old one, in either order, possibly more than once. Every order must end in
the same state.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable, Sequence
from typing import Any

import pytest

from hera_sessions.core import keys
from hera_sessions.core.events import UnreadableEventError
from hera_sessions.core.models import EventKind
from hera_sessions.runtimes.gcp import events as gcs_events
from tests.conftest import RedisServer, load_event
from tests.gcp.conftest import Bucket, Functions, cloud_event
from tests.images import png

SID = "A" * 32
KEY = f"sessions/{SID}/photos/user.png"


# -- parsing -----------------------------------------------------------------------------------------------
def attributes(event: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in event.items() if k != "data"}


def test_the_finalized_sample_becomes_a_created_event_with_size_type_and_md5() -> None:
    event = load_event("gcs-object-finalized.json")

    (parsed,) = gcs_events.parse(attributes(event), event["data"], bucket="hera-sessions-dev")

    assert parsed.kind is EventKind.CREATED
    assert parsed.key == KEY
    assert parsed.size == 69  # a string in the JSON API, an int here
    assert parsed.content_type == "image/png"
    assert parsed.etag == "3ab739d7d4d7296eeafd3b9303b5121b"  # md5Hash, base64 → hex
    assert parsed.sequencer == "000017643949341234560"
    assert parsed.event_time > 0


def test_the_deleted_sample_becomes_a_removed_event_that_sorts_after_its_own_finalize(
    sequencer_order: Callable[[str, str], int],
) -> None:
    finalized, deleted = load_event("gcs-object-finalized.json"), load_event("gcs-object-deleted.json")

    (created,) = gcs_events.parse(attributes(finalized), finalized["data"])
    (removed,) = gcs_events.parse(attributes(deleted), deleted["data"])

    assert removed.kind is EventKind.REMOVED
    assert removed.key == created.key
    assert removed.sequencer and created.sequencer
    assert sequencer_order(removed.sequencer, created.sequencer) > 0  # same generation: the delete came after


@pytest.mark.parametrize(
    ("older", "newer"),
    [
        (1, 2),
        (9, 10),  # string order would get these two wrong without the padding
        (1764394934123456, 1764394934123457),
        (2**53, 2**53 + 1),  # equal as floats
        (2**63, 2**63 + 1),  # equal as floats, and beyond a signed 64-bit integer
        (2**64 - 2, 2**64 - 1),
    ],
)
def test_generations_compare_exactly_never_as_floats(
    older: int, newer: int, sequencer_order: Callable[[str, str], int]
) -> None:
    for kind in EventKind:
        assert sequencer_order(gcs_events.sequencer(str(newer), kind), gcs_events.sequencer(str(older), kind)) > 0
    # the delete of the older generation (an overwrite) sorts before the newer file
    old_delete = gcs_events.sequencer(str(older), EventKind.REMOVED)
    new_create = gcs_events.sequencer(str(newer), EventKind.CREATED)
    assert sequencer_order(new_create, old_delete) > 0


def test_the_same_event_twice_has_the_same_sequencer(sequencer_order: Callable[[str, str], int]) -> None:
    event = load_event("gcs-object-finalized.json")

    first = gcs_events.parse(attributes(event), event["data"])
    again = gcs_events.parse(attributes(event), dict(event["data"]))

    assert first == again
    assert first[0].sequencer and again[0].sequencer
    assert sequencer_order(first[0].sequencer, again[0].sequencer) == 0


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"type": "google.cloud.pubsub.topic.v1.messagePublished"}, "Not a GCS object"),
        ({"data": None}, "without the object resource"),
        ({"data": {"bucket": "b", "generation": "1"}}, "object key is not a non-empty string"),
        ({"data": {"bucket": "b", "name": KEY}}, "no generation"),
        ({"data": {"bucket": "b", "name": KEY, "generation": "1.7e15"}}, "generation is not a string of decimal"),
        ({"data": {"bucket": "b", "name": KEY, "generation": "-1"}}, "generation is not a string of decimal"),
        ({"data": {"bucket": "b", "name": KEY, "generation": str(2**64)}}, "beyond 64 bits"),
        ({"data": {"bucket": "b", "name": KEY, "generation": "1", "size": "ten"}}, "size"),
    ],
)
def test_unreadable_events_are_reported_as_such(change: dict[str, Any], message: str) -> None:
    event = {**load_event("gcs-object-finalized.json"), **change}

    with pytest.raises(UnreadableEventError, match=message):
        gcs_events.parse(attributes(event), event["data"])


def test_events_we_ignore_and_other_buckets_give_nothing_to_record() -> None:
    event = load_event("gcs-object-finalized.json")

    assert gcs_events.parse({**attributes(event), "type": "google.cloud.storage.object.v1.archived"}, {}) == []
    assert gcs_events.parse(attributes(event), event["data"], bucket="another-bucket") == []


# -- the function: generation ordering and duplicates in every order ----------------------------------------
def overwrite(bucket: Bucket, key: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Two generations of one key: the object resources of the first write and of the overwrite."""
    first = bucket.put(key, png(size=118))
    second = bucket.put(key, png(size=131))
    assert int(second["generation"]) > int(first["generation"])
    return first, second


def replay(functions: Functions, events: Sequence[dict[str, Any]]) -> None:
    for event in events:
        response = functions.send(event)
        assert response.status_code == 200, response.get_data(as_text=True)


def files(functions: Functions, sid: str) -> list[dict[str, Any]]:
    return [r.to_json() | {"q": r.sequencer} for r in functions.runtime.service().metadata.list_files(sid)]


def test_an_overwrite_keeps_the_new_file_whatever_the_order_and_duplicates(
    functions: Functions, gcs_bucket: Bucket
) -> None:
    """finalized(g2), deleted(g1), finalized(g1) and a duplicate of finalized(g2): 12 distinct orders."""
    orders = sorted(set(itertools.permutations(["f1", "d1", "f2", "f2"])))
    assert len(orders) == 12
    for order in orders:
        sid, _ = functions.session()
        key = keys.object_key(sid, "photos/user.png")
        first, second = overwrite(gcs_bucket, key)
        events = {"f1": cloud_event("finalized", first), "d1": cloud_event("deleted", first)}
        events["f2"] = cloud_event("finalized", second, event_id="same-event-id")

        replay(functions, [events[name] for name in order])

        (record,) = files(functions, sid)
        assert record["size"] == int(second["size"]), order
        assert record["etag"] == gcs_events.md5_hex(second["md5Hash"])
        assert record["q"] == gcs_events.sequencer(second["generation"], EventKind.CREATED)


def test_a_deletion_wins_over_its_own_finalize_in_either_order(functions: Functions, gcs_bucket: Bucket) -> None:
    for order in (("f", "d"), ("d", "f"), ("f", "d", "f", "d"), ("d", "d", "f")):
        sid, _ = functions.session()
        resource = gcs_bucket.put(keys.object_key(sid, "a.png"), png(size=104))
        events = {"f": cloud_event("finalized", resource), "d": cloud_event("deleted", resource)}

        replay(functions, [events[name] for name in order])

        assert files(functions, sid) == [], order


def test_generations_beyond_float_precision_are_ordered_exactly(functions: Functions, gcs_bucket: Bucket) -> None:
    """2**63 and 2**63 + 1 are the same float: compared as floats, the old delete would remove the new file."""
    sid, _ = functions.session()
    resource = gcs_bucket.put(keys.object_key(sid, "a.png"), png(size=104))
    newer = {**resource, "generation": str(2**63 + 1)}
    older = {**resource, "generation": str(2**63)}

    replay(functions, [cloud_event("finalized", newer), cloud_event("deleted", older)])

    (record,) = files(functions, sid)
    assert record["q"] == f"{2**63 + 1:020d}0"


# -- the function: the same rules as on AWS ------------------------------------------------------------------
def test_an_object_that_breaks_the_rules_is_deleted(functions: Functions, gcs_bucket: Bucket) -> None:
    sid, _ = functions.session()
    key = keys.object_key(sid, "photos/user.png")
    resource = gcs_bucket.put(key, b"<html>not an image</html>", content_type="text/html")

    replay(functions, [cloud_event("finalized", resource)])

    assert files(functions, sid) == []
    assert gcs_bucket.keys(keys.session_prefix(sid)) == []


def test_a_late_object_of_an_erased_session_is_deleted(functions: Functions, gcs_bucket: Bucket) -> None:
    sid, token = functions.session()
    assert functions.call("DELETE", f"/v1/sessions/{sid}", token=token).status_code == 204
    key = keys.object_key(sid, "photos/user.png")
    resource = gcs_bucket.put(key, png(size=152))

    replay(functions, [cloud_event("finalized", resource)])

    assert gcs_bucket.keys(keys.session_prefix(sid)) == []


def test_objects_outside_the_session_layout_are_left_alone(functions: Functions, gcs_bucket: Bucket) -> None:
    resource = gcs_bucket.put("exports/report.png", png(size=104))

    replay(functions, [cloud_event("finalized", resource)])

    assert gcs_bucket.keys("exports/") == ["exports/report.png"]


# -- the function: retries ----------------------------------------------------------------------------------
def test_an_unreadable_event_fails_with_a_reason_for_the_dead_letter_topic(
    functions: Functions, gcs_bucket: Bucket, caplog: pytest.LogCaptureFixture
) -> None:
    event = cloud_event("finalized", {"bucket": gcs_bucket.name, "name": KEY})  # no generation

    with caplog.at_level(logging.INFO):
        response = functions.send(event)

    assert response.status_code == 500  # failed: Eventarc retries it, then its dead-letter topic keeps it
    (line,) = [r for r in caplog.records if r.getMessage().startswith("storage event unreadable")]
    assert "no generation" in line.getMessage()
    assert line.reason == "GCS CloudEvent data has no generation."  # type: ignore[attr-defined]


#: (field, value) that make a GCS object resource unreadable (None: the field is left out).
HOSTILE_RESOURCE_FIELDS: list[tuple[str, Any]] = [
    ("name", 123),
    ("name", None),
    ("name", "sessions/{sid}/photos/\ud800.png"),  # a lone surrogate
    ("name", "sessions/{sid}/../../x.png"),
    ("name", "sessions/{sid}/photos/./x.png"),
    ("name", "sessions/{sid}/photos/a b.png"),
    ("name", "sessions/{sid}/"),
    ("name", "sessions/short-id/a.png"),
    ("size", "-500"),
    ("size", -500),
    ("size", "5.5"),
    ("size", 5.5),
    ("size", True),
    ("size", 12),  # the JSON API sends a decimal string
    ("size", "²"),  # a digit to str.isdigit(), not to int()
    ("size", " 12"),
    ("size", ""),
    ("size", None),
    ("generation", "²"),
    ("generation", "-1"),
    ("generation", "0x1F"),
    ("generation", " 12"),
    ("generation", 12),
    ("generation", "1e3"),
    ("generation", str(2**64)),
    ("generation", "9" * 5000),  # past int()'s digit limit: still the project's error
    ("size", "1" * 21),
    ("contentType", 7),
]


@pytest.mark.parametrize(("field", "value"), HOSTILE_RESOURCE_FIELDS, ids=lambda v: repr(v)[:40])
def test_a_hostile_field_fails_its_event_alone_and_changes_nothing(
    functions: Functions,
    gcs_bucket: Bucket,
    redis_server: RedisServer,
    caplog: pytest.LogCaptureFixture,
    field: str,
    value: Any,
) -> None:
    # GIVEN a session whose victim.png is recorded and stored, and a finalized event about it with one bad field
    sid, _ = functions.session()
    victim = gcs_bucket.put(keys.object_key(sid, "photos/victim.png"), png(size=111), content_type="text/html")
    replay(functions, [cloud_event("finalized", {**victim, "contentType": "image/png"})])
    hostile = cloud_event("finalized", {**victim, "size": "999999999"})  # refused (and deleted) if it were read
    if value is None:
        del hostile["data"][field]
    else:
        hostile["data"][field] = value.format(sid=sid) if field == "name" and isinstance(value, str) else value
    good = [gcs_bucket.put(keys.object_key(sid, name), png(size=104)) for name in ("a.png", "b.png")]
    before = (redis_keys(redis_server, sid), files(functions, sid), gcs_bucket.keys())

    # WHEN it is delivered between two good events
    with caplog.at_level(logging.INFO):
        events = [cloud_event("finalized", good[0]), hostile, cloud_event("finalized", good[1])]
        answers = [functions.send(event).status_code for event in events]

    # THEN it alone fails (Eventarc retries it, then dead-letters it) with its reason logged, and changes nothing
    assert answers == [200, 500, 200]
    reasons = [getattr(r, "reason", "") for r in caplog.records if r.getMessage().startswith("storage event unread")]
    assert len(reasons) == 1 and reasons[0]
    recorded = files(functions, sid)
    assert [r["path"] for r in recorded] == ["a.png", "b.png", "photos/victim.png"]
    assert recorded[2] == before[1][0]
    assert gcs_bucket.keys() == before[2]
    assert redis_keys(redis_server, sid) == before[0]


def redis_keys(redis_server: RedisServer, sid: str) -> list[str]:
    import redis

    client = redis.Redis.from_url(redis_server.url)
    try:
        return sorted(k.decode() for k in client.keys(f"session:{{{sid}}}*"))
    finally:
        client.close()


def test_redis_down_fails_the_event_for_a_retry_and_the_replay_ends_as_a_clean_run(
    functions: Functions, gcs_bucket: Bucket, redis_server: RedisServer
) -> None:
    # GIVEN two sessions with the same overwrite of one file; one is the clean run
    clean_sid, _ = functions.session()
    sid, _ = functions.session()
    runs = {}
    for session in (clean_sid, sid):
        first, second = overwrite(gcs_bucket, keys.object_key(session, "photos/user.png"))
        runs[session] = [
            cloud_event("finalized", first),
            cloud_event("finalized", second),
            cloud_event("deleted", first),
        ]
    replay(functions, runs[clean_sid])
    replay(functions, runs[sid][:1])

    # WHEN Redis goes away (kept on disk, as a restarted Memorystore instance keeps it) during delivery
    redis_server.command("SAVE")
    redis_server.stop()
    try:
        failed = [functions.send(event).status_code for event in runs[sid][1:]]
    finally:
        redis_server.start()
        redis_server.command("PING")  # answered once the dump is loaded (the port opens before): then remove it
        (redis_server.workdir / "dump.rdb").unlink(missing_ok=True)

    # THEN each delivery failed (Eventarc delivers it again), and the redelivery of everything ends as the clean run
    assert failed == [500, 500]
    replay(functions, runs[sid])
    clean, replayed = files(functions, clean_sid), files(functions, sid)
    assert [(r["path"], r["size"], r["content_type"]) for r in replayed] == [
        (r["path"], r["size"], r["content_type"]) for r in clean
    ]
    assert replayed[0]["q"] == gcs_events.sequencer(runs[sid][1]["data"]["generation"], EventKind.CREATED)


def test_requests_that_are_no_cloudevent_are_refused_by_the_framework(functions: Functions) -> None:
    no_headers = functions.events.post("/", data="{}", headers={"Content-Type": "application/json"})
    not_json = functions.events.post(
        "/",
        data="{not json",
        headers={
            "Content-Type": "application/cloudevents+json",
        },
    )

    assert 400 <= no_headers.status_code < 500
    assert 400 <= not_json.status_code < 500
