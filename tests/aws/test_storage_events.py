"""The storage-event function through its Lambda handler: every shape, ordering, duplicates, failures, refusals.

Real parts: redis-server (the session's, or one of the test's own when Redis must go down), local storage on
disk (so the deletes of refused objects are real). Events are built from the files in events/, with the
realistic sequencers moto does not send.
"""

from __future__ import annotations

import hashlib
import importlib
import itertools
import json
import logging
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any
from urllib.parse import quote_plus

import pytest

from hera_sessions.backends.storage.local import LocalStorage
from hera_sessions.core.errors import InvalidInputError, MetadataUnavailableError, StorageUnavailableError
from hera_sessions.core.events import UnreadableEventError
from hera_sessions.core.keys import check_path, new_session_id, split_object_key
from hera_sessions.core.models import EventKind, FileRecord, UploadRequest
from hera_sessions.core.service import SessionService
from hera_sessions.runtime import Runtime
from hera_sessions.runtimes.aws import s3events
from hera_sessions.runtimes.aws.events import is_destination_record, is_sqs_batch
from tests.conftest import ROOT, RedisServer, load_event
from tests.envs import service_env
from tests.images import png

#: Ascending under S3's rule (right-pad with zeros, then compare), with lengths that differ on purpose.
SEQUENCERS = ("005F1A2B3C4D5E6F70", "005F1A2B3C4D5E6F7100", "005F1A2B3C4D5E6F72", "005F1A2B3C4D5E6F7201")

#: What the apply script (core/rules/apply.lua) runs inside Redis: counted by commandstats too.
SCRIPT_COMMANDS = {"hgetall", "hmget", "hlen", "hset", "hdel", "exists", "expire"}

CONTEXT = SimpleNamespace(
    function_name="hera-sessions-dev-StorageEventsFunction",
    memory_limit_in_mb=256,
    invoked_function_arn="arn:aws:lambda:ap-northeast-1:123456789012:function:hera-sessions-dev-StorageEventsFunction",
    aws_request_id="5b6c7d8e-0000-4000-8000-000000000000",
)


# -- events, shaped like the files in events/ -------------------------------------------------------------------
def etag(size: int) -> str:
    """The ETag of the object the tests store for that size (``png(size=size)``): what S3 would report."""
    return hashlib.md5(png(size=size) if size else b"", usedforsecurity=False).hexdigest()


def is_valid_path(path: str) -> bool:
    try:
        check_path(path)
    except InvalidInputError:
        return False
    return True


def s3_event(name: str, key: str, sequencer: str | None, size: int | None = None) -> dict[str, Any]:
    """An S3 notification (``ObjectCreated:Put``, ``ObjectRemoved:Delete``...): its key URL-encoded, as S3 sends it."""
    event = load_event("s3-object-created.json")
    record = event["Records"][0]
    record["eventName"] = name
    obj: dict[str, Any] = {"key": quote_plus(key, safe="/")}
    if size is not None:
        obj |= {"size": size, "eTag": etag(size)}
    if sequencer is not None:
        obj["sequencer"] = sequencer
    record["s3"]["object"] = obj
    return event


def eventbridge_event(detail_type: str, key: str, sequencer: str | None, size: int | None = None) -> dict[str, Any]:
    """An EventBridge event from S3 ("Object Created" / "Object Deleted"): its key as it is."""
    event = load_event(
        "eventbridge-object-created.json" if detail_type == "Object Created" else "eventbridge-object-deleted.json"
    )
    obj: dict[str, Any] = {"key": key}
    if size is not None:
        obj |= {"size": size, "etag": etag(size)}
    if sequencer is not None:
        obj["sequencer"] = sequencer
    event["detail"]["object"] = obj
    return event


def created(key: str, sequencer: str | None, size: int, shape: str = "s3") -> dict[str, Any]:
    if shape == "s3":
        return s3_event("ObjectCreated:Put", key, sequencer, size)
    return eventbridge_event("Object Created", key, sequencer, size)


def removed(key: str, sequencer: str | None, shape: str = "s3") -> dict[str, Any]:
    if shape == "s3":
        return s3_event("ObjectRemoved:Delete", key, sequencer)
    return eventbridge_event("Object Deleted", key, sequencer)


def sqs_batch(*bodies: object) -> dict[str, Any]:
    """An SQS event whose messages carry ``bodies`` (JSON-encoded unless already text)."""
    template = load_event("sqs-s3-batch.json")["Records"][0]
    records = []
    for body in bodies:
        text = body if isinstance(body, str) else json.dumps(body)
        message_id = f"{hashlib.sha1(text.encode(), usedforsecurity=False).hexdigest()[:8]}-{len(records):04d}"
        records.append(
            {**template, "messageId": message_id, "body": text, "md5OfBody": hashlib.md5(text.encode()).hexdigest()}
        )
    return {"Records": records}


def message_ids(batch: dict[str, Any], *indexes: int) -> list[dict[str, str]]:
    return [{"itemIdentifier": batch["Records"][i]["messageId"]} for i in indexes]


def redeliver(batch: dict[str, Any], answer: dict[str, Any]) -> dict[str, Any]:
    """What SQS delivers again: the messages the function reported as failed."""
    failed = {f["itemIdentifier"] for f in answer["batchItemFailures"]}
    return {"Records": [r for r in batch["Records"] if r["messageId"] in failed]}


# -- the function, driven through its handler -------------------------------------------------------------------
class Function:
    """functions/storage_events/app.py's handler over one runtime (local storage, Redis metadata)."""

    def __init__(
        self, app: ModuleType, runtime: Runtime, monkeypatch: pytest.MonkeyPatch, order: Callable[[str, str], int]
    ) -> None:
        self.app = app
        self.order = order  # the rules' own sequencer order (the Lua later(), run in Redis)
        self.runtime = runtime
        self.monkeypatch = monkeypatch
        self.sequencers: dict[str, str | None] = {}  # the latest event stock() has seen on each key
        self.service: SessionService = runtime.service()
        if hasattr(self.service.storage, "events"):
            # Only the function records: the local storage's own notifications are switched off.
            self.service.storage.events = None

    def __call__(self, event: dict[str, Any]) -> dict[str, Any]:
        self.stock(event)
        self.monkeypatch.setattr(self.app, "runtime", self.runtime)
        answer: dict[str, Any] = self.app.lambda_handler(event, CONTEXT)
        return answer

    def stock(self, event: dict[str, Any]) -> None:
        """The bucket holds what the events describe (the event path reads each new object): the object of each
        readable "created" event, a real PNG of its size (so of its ETag), unless a later event on that key came
        first; a later removal takes it away. Only with local storage (on S3 the tests upload real objects)."""
        storage = self.service.storage
        if not isinstance(storage, LocalStorage):
            return
        bodies = [r.get("body") for r in event["Records"]] if is_sqs_batch(event) else [event]
        for body in bodies:
            try:
                payload = json.loads(body) if isinstance(body, str) else body
                if not isinstance(payload, dict):
                    continue
                notice = payload["requestPayload"] if is_destination_record(payload) else payload
                described = s3events.parse(notice)
            except (ValueError, KeyError, TypeError, UnreadableEventError):
                continue  # unreadable: the function refuses it without reading any object
            for item in described:
                split = split_object_key(item.key)
                if split is None or not is_valid_path(split[1]):
                    continue
                path = self.object_file(item.key)
                seen = self.sequencers.get(item.key)
                if item.sequencer is not None and seen is not None and self.order(item.sequencer, seen) <= 0:
                    continue
                self.sequencers[item.key] = item.sequencer
                if item.kind is EventKind.REMOVED:
                    path.unlink(missing_ok=True)
                elif item.size:
                    path.parent.mkdir(parents=True, exist_ok=True)
                    path.write_bytes(png(size=item.size))

    def new_session(self, session_id: str | None = None) -> str:
        session_id = session_id or new_session_id()
        self.service.metadata.create_session(session_id, time.time(), self.service.settings.session_ttl)
        return session_id

    def state(self, session_id: str) -> dict[str, FileRecord]:
        return {r.path: r for r in self.service.list_files(session_id)}

    def object_file(self, key: str) -> Path:
        """Where local storage keeps ``key``; for a key it refuses, where a careless writer would put it."""
        from hera_sessions.backends.storage.local import LocalStorage, S3Error

        storage = self.service.storage
        assert isinstance(storage, LocalStorage)
        try:
            return storage._file(key)
        except S3Error:
            return Path(self.service.settings.sessions_dir) / "objects" / key


@pytest.fixture
def storage_events_app(caplog: pytest.LogCaptureFixture) -> Iterator[ModuleType]:
    """The handler module; its Powertools logging take-over of ``hera_sessions`` is undone around each test."""
    core = logging.getLogger("hera_sessions")
    saved = (core.handlers[:], core.propagate, core.level)
    app = importlib.import_module("functions.storage_events.app")
    core.handlers, core.propagate = [], True  # records reach caplog; Powertools formats them in Lambda
    core.setLevel(logging.INFO)
    app.metrics.clear_metrics()
    yield app
    core.handlers, core.propagate = saved[0], saved[1]
    core.setLevel(saved[2])


def events_env(redis_url: str, sessions_dir: Path) -> dict[str, str]:
    return service_env("local", "redis", redis_url=redis_url, sessions_dir=sessions_dir, UPLOAD_MAX_BYTES="1000000")


@pytest.fixture
def function(
    storage_events_app: ModuleType,
    redis_server: RedisServer,
    make_runtime: Callable[[dict[str, str]], Runtime],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    sequencer_order: Callable[[str, str], int],
) -> Function:
    redis_server.flush()
    runtime = make_runtime(events_env(redis_server.url, tmp_path / "a"))
    return Function(storage_events_app, runtime, monkeypatch, sequencer_order)


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A redis-server this test may stop; append-only with fsync on every write, so a restart keeps the data."""
    server = RedisServer(tmp_path / "own-redis", "--appendonly", "yes", "--appendfsync", "always")
    yield server
    server.stop()


@pytest.fixture
def outage_function(
    storage_events_app: ModuleType,
    own_redis: RedisServer,
    make_runtime: Callable[[dict[str, str]], Runtime],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    sequencer_order: Callable[[str, str], int],
) -> Function:
    runtime = make_runtime(events_env(own_redis.url, tmp_path / "b"))
    return Function(storage_events_app, runtime, monkeypatch, sequencer_order)


# -- every shape ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("deliver", "shape"),
    [("direct", "s3"), ("direct", "eventbridge"), ("sqs", "s3"), ("sqs", "eventbridge")],
)
def test_every_shape_records_and_removes(function: Function, deliver: str, shape: str) -> None:
    # GIVEN a session and an object key in it
    sid = function.new_session()
    key = f"sessions/{sid}/photos/user.png"

    def send(payload: dict[str, Any]) -> dict[str, Any]:
        return function(payload) if deliver == "direct" else function(sqs_batch(payload))

    # WHEN the object is created, THEN it is recorded with the event's size and ETag
    answer = send(created(key, SEQUENCERS[0], 1234, shape))
    assert answer == ({"recorded": 1} if deliver == "direct" else {"batchItemFailures": []})
    record = function.state(sid)["photos/user.png"]
    assert (record.size, record.etag, record.content_type, record.sequencer) == (
        1234,
        etag(1234),
        "image/png",
        SEQUENCERS[0],
    )

    # WHEN it is deleted, THEN its record is gone
    answer = send(removed(key, SEQUENCERS[1], shape))
    assert answer == ({"removed": 1} if deliver == "direct" else {"batchItemFailures": []})
    assert function.state(sid) == {}


def test_lifecycle_expiration_removes_the_record(function: Function) -> None:
    sid = function.new_session()
    key = f"sessions/{sid}/photos/user.png"
    function(created(key, SEQUENCERS[0], 110))
    expiry = s3_event("LifecycleExpiration:Delete", key, SEQUENCERS[1])
    assert function(sqs_batch(expiry)) == {"batchItemFailures": []}
    assert function.state(sid) == {}


def test_a_destination_record_redriven_to_the_queue_is_recorded(function: Function) -> None:
    # GIVEN what the on-failure destination keeps after a direct invocation failed for good
    sid = function.new_session()
    record = {
        "version": "1.0",
        "timestamp": "2025-01-15T10:05:00.000Z",
        "requestContext": {
            "requestId": "e4b46cbf-b738-xmpl-8880-a18cdf61200e",
            "functionArn": f"{CONTEXT.invoked_function_arn}:$LATEST",
            "condition": "RetriesExhausted",
            "approximateInvokeCount": 3,
        },
        "requestPayload": created(f"sessions/{sid}/photos/user.png", SEQUENCERS[0], 199),
        "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
        "responsePayload": {"errorMessage": "Session metadata is unavailable right now; try again shortly."},
    }
    # WHEN it is redriven to the queue THEN its event is recorded
    assert function(sqs_batch(record)) == {"batchItemFailures": []}
    assert function.state(sid)["photos/user.png"].size == 199


def test_keys_are_decoded_exactly_once(function: Function) -> None:
    # GIVEN an object whose key holds "%20" literally (written without our URLs: it breaks the path rules)
    sid = function.new_session()
    key = f"sessions/{sid}/photos/user%20x.png"
    function.object_file(key).parent.mkdir(parents=True, exist_ok=True)
    function.object_file(key).write_bytes(png(size=110))  # local storage itself refuses such keys
    # WHEN S3 reports it (S3 encodes "%" as "%25") THEN the once-decoded key is the one refused: the event is
    # unreadable (twice decoded would be "user x.png"), and nothing is touched (the lifecycle rule removes it)
    with pytest.raises(UnreadableEventError, match=r"user%20x\.png"):
        function(s3_event("ObjectCreated:Put", key, SEQUENCERS[0], 110))
    assert function.object_file(key).exists()
    assert function.state(sid) == {}
    # AND a key that holds "+" decodes to a space (form encoding), which the path rules refuse too
    with pytest.raises(UnreadableEventError, match=r"user x\.png"):
        function(s3_event("ObjectCreated:Put", f"sessions/{sid}/photos/user x.png", SEQUENCERS[0], 110))


# -- order and duplicates ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("last", ["created", "removed"])
def test_every_order_of_creates_and_deletes_ends_in_the_latest_state(function: Function, last: str) -> None:
    # GIVEN four events on one key, creates and deletes alternating, the latest (by sequencer) being `last`
    kinds = ("created", "removed") * 2 if last == "removed" else ("removed", "created") * 2
    expected_size = 103  # the latest create, when it is the latest event

    def event(i: int, shape: str) -> dict[str, Any]:
        return (
            created(key, SEQUENCERS[i], 100 + i, shape) if kinds[i] == "created" else removed(key, SEQUENCERS[i], shape)
        )

    for order in itertools.permutations(range(4)):
        # WHEN they arrive in this order, one invocation each (S3 and EventBridge shapes, direct and through SQS),
        # and the first one again at the end (a duplicate)
        sid = function.new_session()
        key = f"sessions/{sid}/photos/user.png"
        for n, i in enumerate((*order, order[0])):
            payload = event(i, ("s3", "eventbridge")[n % 2])
            if n % 3 == 0:
                function(payload)
            else:
                assert function(sqs_batch(payload)) == {"batchItemFailures": []}
        # THEN the key holds what the latest event says
        state = function.state(sid)
        if last == "removed":
            assert state == {}, order
        else:
            assert (state["photos/user.png"].size, state["photos/user.png"].sequencer) == (
                expected_size,
                SEQUENCERS[3],
            ), order

        # AND the same events in one SQS batch, in this order and duplicated, end the same way
        sid = function.new_session()
        key = f"sessions/{sid}/photos/user.png"
        batch = sqs_batch(*(event(i, ("s3", "eventbridge")[i % 2]) for i in (*order, *order)))
        assert function(batch) == {"batchItemFailures": []}
        state = function.state(sid)
        assert (state == {}) if last == "removed" else (state["photos/user.png"].size == expected_size), order


def test_a_duplicate_changes_nothing(function: Function) -> None:
    sid = function.new_session()
    event = created(f"sessions/{sid}/photos/user.png", SEQUENCERS[0], 142)
    assert function(event) == {"recorded": 1}
    before = function.state(sid)
    assert function(event) == {"duplicate": 1}
    assert function(eventbridge_event("Object Created", f"sessions/{sid}/photos/user.png", SEQUENCERS[0], 142)) == {
        "duplicate": 1
    }
    assert function.state(sid) == before


def test_a_late_event_is_stale(function: Function) -> None:
    sid = function.new_session()
    key = f"sessions/{sid}/photos/user.png"
    assert function(removed(key, SEQUENCERS[2])) == {"removed": 1}
    # a "created" older than the delete does not resurrect the file
    assert function(created(key, SEQUENCERS[1], 105)) == {"stale": 1}
    assert function.state(sid) == {}
    assert function(created(key, SEQUENCERS[3], 106)) == {"recorded": 1}
    # a "deleted" older than the upload does not remove it
    assert function(removed(key, SEQUENCERS[0])) == {"stale": 1}
    assert function.state(sid)["photos/user.png"].size == 106


def test_events_without_a_sequencer_apply_in_arrival_order(function: Function) -> None:
    sid = function.new_session()
    key = f"sessions/{sid}/photos/user.png"
    # no sequencer on either side: the later arrival wins
    function(created(key, None, 107))
    assert function(removed(key, None)) == {"removed": 1}
    assert function.state(sid) == {}
    assert function(created(key, None, 108)) == {"recorded": 1}
    assert function.state(sid)["photos/user.png"].size == 108
    # a sequenced record does not protect itself from an unsequenced event, nor the other way round
    assert function(created(key, SEQUENCERS[3], 109)) == {"recorded": 1}
    assert function(removed(key, None)) == {"removed": 1}
    assert function.state(sid) == {}
    assert function(created(key, None, 110)) == {"recorded": 1}
    assert function(created(key, SEQUENCERS[0], 111)) == {"recorded": 1}
    assert function.state(sid)["photos/user.png"].size == 111


# -- skipped -----------------------------------------------------------------------------------------------------
def test_test_events_and_keys_outside_sessions_are_skipped_and_logged(
    function: Function, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN a batch with S3's test event, an object outside sessions/ and a restore we have nothing to do with
    restore = s3_event("ObjectRestore:Completed", "sessions/x/photos/a.png", SEQUENCERS[0], 110)
    batch = sqs_batch(load_event("s3-test-event.json"), created("other/readme.txt", SEQUENCERS[0], 142), restore)
    with caplog.at_level(logging.INFO, logger="hera_sessions"):
        # WHEN the function gets it THEN nothing fails
        assert function(batch) == {"batchItemFailures": []}
        # AND a direct test event is skipped too
        assert function(load_event("s3-test-event.json")) == {}
    # AND each skip is logged
    skipped = [getattr(r, "notice", None) for r in caplog.records if r.getMessage() == "storage notification skipped"]
    assert skipped == ["s3:TestEvent", "ObjectRestore:Completed", "s3:TestEvent"]
    outside = [r for r in caplog.records if r.getMessage() == "storage event not recorded"]
    assert [(r.key, r.outcome) for r in outside] == [("other/readme.txt", "skipped")]  # type: ignore[attr-defined]
    assert emf_values(capsys)[0]["EventsSkipped"] == 3


# -- refusals ----------------------------------------------------------------------------------------------------
def test_an_object_larger_than_its_ticket_is_deleted_and_not_recorded(
    function: Function, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN an upload ticket for 100 bytes and 200 bytes stored under its key
    sid = function.new_session()
    function.service.create_upload(sid, UploadRequest("photos/big.png", "image/png", 100))
    key = f"sessions/{sid}/photos/big.png"
    function.service.storage.write(key, png(size=200))  # type: ignore[attr-defined]
    assert function.object_file(key).exists()
    # WHEN its event arrives
    with caplog.at_level(logging.INFO, logger="hera_sessions"):
        answer = function(sqs_batch(created(key, SEQUENCERS[0], 200, "eventbridge")))
    # THEN the object is deleted, nothing is recorded, the reason is logged, and the refusal is counted
    assert answer == {"batchItemFailures": []}
    assert not function.object_file(key).exists()
    assert function.state(sid) == {}
    reasons = [r.reason for r in caplog.records if r.getMessage() == "storage event not recorded"]  # type: ignore[attr-defined]
    assert reasons == ["200 bytes, more than the 100 declared"]
    assert emf_values(capsys)[0]["EventsRefused"] == 1


def test_an_object_of_an_erased_session_is_deleted_and_leaves_nothing(function: Function) -> None:
    # GIVEN an erased session, and an object uploaded into it late
    sid = function.new_session()
    function.service.erase_session(sid)
    key = f"sessions/{sid}/photos/late.png"
    function.service.storage.write(key, png(size=110))  # type: ignore[attr-defined]
    # WHEN its event arrives THEN the object is deleted and nothing is left for the session in Redis
    assert function(created(key, SEQUENCERS[0], 110)) == {"erased": 1}
    assert not function.object_file(key).exists()
    assert function.service.metadata.get_session(sid) is None
    assert function.service.metadata.is_erased(sid)


def test_on_s3_a_refused_object_is_deleted_from_the_bucket(
    storage_events_app: ModuleType,
    s3_runtime: Runtime,
    s3_bucket: Any,
    s3_queue: Any,
    monkeypatch: pytest.MonkeyPatch,
    sequencer_order: Callable[[str, str], int],
) -> None:
    # GIVEN the service on S3 (moto), tickets for two 100-byte files, and one of them uploaded 200 bytes long
    function = Function(storage_events_app, s3_runtime, monkeypatch, sequencer_order)
    sid = function.new_session()
    for path in ("photos/big.png", "photos/ok.png"):
        function.service.create_upload(sid, UploadRequest(path, "image/png", 100))
    s3_bucket.put(f"sessions/{sid}/photos/big.png", png(size=200))
    s3_bucket.put(f"sessions/{sid}/photos/ok.png", png(size=100))
    # WHEN the bucket's notifications reach the function through the queue
    assert function(s3_queue.receive()) == {"batchItemFailures": []}
    # THEN the oversize object is gone from the bucket and only the good one is recorded
    assert s3_bucket.keys("sessions/") == [f"sessions/{sid}/photos/ok.png"]
    assert sorted(function.state(sid)) == ["photos/ok.png"]
    # AND the delete's own notification changes nothing
    removal = s3_queue.receive()
    assert [json.loads(r["body"])["Records"][0]["eventName"] for r in removal["Records"]] == ["ObjectRemoved:Delete"]
    assert function(removal) == {"batchItemFailures": []}
    assert sorted(function.state(sid)) == ["photos/ok.png"]


# -- failures ----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "poison",
    [
        "this is not JSON",
        "",
        "[1, 2, 3]",
        '{"hello": "world"}',
        '{"Records": [{"eventSource": "aws:s3", "eventName": "ObjectCreated:Put"}]}',
        '{"source": "aws.s3", "detail-type": "Object Created", "detail": {"object": {"size": 5}}}',
    ],
    ids=["text", "empty", "array", "unknown-object", "s3-without-object", "eventbridge-without-key"],
)
def test_a_poison_message_fails_alone(function: Function, poison: str) -> None:
    # GIVEN a batch with one message that cannot be read among good ones
    sid = function.new_session()
    batch = sqs_batch(
        created(f"sessions/{sid}/photos/a.png", SEQUENCERS[0], 101),
        poison,
        created(f"sessions/{sid}/photos/b.png", SEQUENCERS[0], 102, "eventbridge"),
        load_event("s3-test-event.json"),
    )
    # WHEN the function gets it THEN exactly that message is reported as failed
    assert function(batch) == {"batchItemFailures": message_ids(batch, 1)}
    # AND the others are recorded
    assert sorted(function.state(sid)) == ["photos/a.png", "photos/b.png"]


def test_redis_down_fails_every_message_with_an_event_and_a_replay_matches_a_clean_run(
    function: Function, outage_function: Function, own_redis: RedisServer, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN the same sessions in two stores, and two batches of events for them
    sids = [function.new_session(new_session_id()) for _ in range(2)]
    for sid in sids:
        outage_function.new_session(sid)
    first = sqs_batch(
        created(f"sessions/{sids[0]}/photos/a.png", SEQUENCERS[0], 110),
        created(f"sessions/{sids[1]}/photos/b.png", SEQUENCERS[0], 120, "eventbridge"),
    )
    second = sqs_batch(
        removed(f"sessions/{sids[0]}/photos/a.png", SEQUENCERS[1], "eventbridge"),
        created(f"sessions/{sids[1]}/photos/c.png", SEQUENCERS[2], 130),
        "poison",
        load_event("s3-test-event.json"),
        created(f"sessions/{sids[1]}/photos/b.png", SEQUENCERS[0], 120),  # a duplicate
        created(f"sessions/{sids[0]}/photos/a.png", SEQUENCERS[0], 110),  # late: older than the delete
    )
    # AND a clean run of both
    assert function(first) == {"batchItemFailures": []}
    assert function(second) == {"batchItemFailures": message_ids(second, 2)}
    clean = [function.state(sid) for sid in sids]

    # WHEN Redis goes down after the first batch
    assert outage_function(first) == {"batchItemFailures": []}
    own_redis.stop()
    capsys.readouterr()
    answer = outage_function(second)
    # THEN every message that carried an event is reported as failed (the test event is done with)
    assert answer == {"batchItemFailures": message_ids(second, 0, 1, 2, 4, 5)}
    assert emf_values(capsys)[0]["BatchFailures"] == 5

    # WHEN Redis is back and SQS delivers the failed messages again
    own_redis.start()
    assert outage_function(redeliver(second, answer)) == {
        "batchItemFailures": message_ids(redeliver(second, answer), 2)
    }
    # THEN the state is the clean run's
    assert [outage_function.state(sid) for sid in sids] == clean


def test_storage_down_while_deleting_a_refused_object_fails_the_batch_for_a_replay(
    function: Function, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN an oversize object, a good one, and storage that cannot delete right now
    sid = function.new_session()
    function.service.create_upload(sid, UploadRequest("photos/big.png", "image/png", 100))
    big = f"sessions/{sid}/photos/big.png"
    function.service.storage.write(big, png(size=200))  # type: ignore[attr-defined]
    batch = sqs_batch(
        created(big, SEQUENCERS[0], 200),
        created(f"sessions/{sid}/photos/ok.png", SEQUENCERS[0], 150),
        load_event("s3-test-event.json"),
    )

    def unavailable(key: str) -> None:
        raise StorageUnavailableError("The storage is unavailable right now.")

    with monkeypatch.context() as patch:
        patch.setattr(function.service.storage, "delete", unavailable)
        # WHEN the batch arrives THEN both messages with events fail
        answer = function(batch)
    assert answer == {"batchItemFailures": message_ids(batch, 0, 1)}
    assert function.object_file(big).exists()

    # WHEN they come again with the storage back THEN the object is deleted and the good one stays recorded
    assert function(redeliver(batch, answer)) == {"batchItemFailures": []}
    assert not function.object_file(big).exists()
    assert sorted(function.state(sid)) == ["photos/ok.png"]


def test_a_direct_invocation_raises_when_redis_is_down(
    outage_function: Function, own_redis: RedisServer, capsys: pytest.CaptureFixture[str]
) -> None:
    sid = outage_function.new_session()
    own_redis.stop()
    capsys.readouterr()
    # WHEN S3 or EventBridge invokes the function THEN it raises, so Lambda retries (then the destination keeps it)
    with pytest.raises(MetadataUnavailableError):
        outage_function(created(f"sessions/{sid}/photos/a.png", SEQUENCERS[0], 110))
    with pytest.raises(MetadataUnavailableError):
        outage_function(eventbridge_event("Object Deleted", f"sessions/{sid}/photos/b.png", SEQUENCERS[1]))
    assert [doc["BatchFailures"] for doc in emf_values(capsys)] == [1, 1]
    own_redis.start()
    # Lambda's retry, once Redis is back
    assert outage_function(created(f"sessions/{sid}/photos/a.png", SEQUENCERS[0], 110)) == {"recorded": 1}


@pytest.mark.parametrize("event", [{}, {"hello": "world"}, {"Records": [{"EventSource": "aws:sns"}]}])
def test_a_direct_invocation_with_an_unreadable_event_raises(function: Function, event: dict[str, Any]) -> None:
    with pytest.raises(UnreadableEventError):
        function(event)


# -- batches -----------------------------------------------------------------------------------------------------
def test_a_batch_of_1000_messages_is_recorded_in_one_pipelined_call(
    function: Function, redis_server: RedisServer
) -> None:
    import redis

    # GIVEN 100 sessions and a batch of 1,000 messages, 10 files per session, S3 and EventBridge bodies mixed
    sids = [function.new_session() for _ in range(100)]
    bodies = [
        created(f"sessions/{sid}/photos/{n}.png", SEQUENCERS[n % 4], 100 + n, ("s3", "eventbridge")[n % 2])
        for sid in sids
        for n in range(10)
    ]
    batch = sqs_batch(*bodies)
    function(sqs_batch(load_event("s3-object-created.json")))  # the script is loaded: no reload in the count
    client = redis.Redis.from_url(redis_server.url)
    before = client.info("commandstats")

    # WHEN the function gets the batch
    answer = function(batch)

    # THEN every event is recorded, with one script call per session and nothing else, all in one pipeline
    after = client.info("commandstats")
    calls = {
        name.removeprefix("cmdstat_"): stats["calls"] - before.get(name, {}).get("calls", 0)
        for name, stats in after.items()
        if name != "cmdstat_info" and stats["calls"] != before.get(name, {}).get("calls", 0)
    }
    assert answer == {"batchItemFailures": []}
    # (commandstats also counts the commands a script runs: it reads the paths it touches, and each new session's
    # hash once in full, to count what it holds)
    assert calls["evalsha"] == calls["hmget"] == calls["hgetall"] == 100
    assert set(calls) <= {"evalsha", *SCRIPT_COMMANDS}
    assert sum(len(function.state(sid)) for sid in sids) == 1000

    # AND delivered again (duplicates), the batch reads only the paths it touches: no session is read in full
    before = client.info("commandstats")
    assert function(batch) == {"batchItemFailures": []}
    after = client.info("commandstats")
    assert after["cmdstat_hmget"]["calls"] - before["cmdstat_hmget"]["calls"] == 100
    assert after["cmdstat_hgetall"]["calls"] == before["cmdstat_hgetall"]["calls"]
    client.close()


# -- metrics and cold start --------------------------------------------------------------------------------------
def emf_values(capsys: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    """The CloudWatch EMF documents Powertools Metrics printed: metric name → value, plus the namespace."""
    documents = []
    for line in capsys.readouterr().out.splitlines():
        if line.startswith("{") and '"_aws"' in line:
            emf = json.loads(line)
            (directive,) = emf["_aws"]["CloudWatchMetrics"]
            values = {m["Name"]: sum(emf[m["Name"]]) for m in directive["Metrics"]}
            documents.append({"namespace": directive["Namespace"], **values})
    return documents


def test_metrics_count_each_outcome_in_the_namespace(function: Function, capsys: pytest.CaptureFixture[str]) -> None:
    sid = function.new_session()
    key = f"sessions/{sid}/photos/user.png"
    function(created(key, SEQUENCERS[0], 101))
    capsys.readouterr()
    batch = sqs_batch(
        removed(key, SEQUENCERS[1]),
        created(f"sessions/{sid}/photos/new.png", SEQUENCERS[0], 101),
        created(f"sessions/{sid}/photos/empty.png", SEQUENCERS[0], 0),  # refused: empty
        created(key, SEQUENCERS[0], 101),  # stale
        load_event("s3-test-event.json"),
        "poison",
    )
    function(batch)
    assert emf_values(capsys) == [
        {
            "namespace": "HeraSessions",
            "EventsRemoved": 1.0,
            "EventsRecorded": 1.0,
            "EventsRefused": 1.0,
            "EventsSuperseded": 1.0,
            "EventsSkipped": 1.0,
            "BatchFailures": 1.0,
        }
    ]


def test_the_handler_module_imports_no_sdk() -> None:
    # GIVEN a fresh interpreter WHEN it imports the handler THEN neither redis nor boto3 comes with it
    # (Powertools itself imports the botocore package, for its user agent - not botocore's client machinery)
    code = (
        "import sys, functions.storage_events.app\n"
        "print(sorted(m for m in ('redis', 'boto3', 'botocore.client', 'botocore.session') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


# -- hostile fields: each malformed message fails alone and changes nothing -------------------------------------
def _snapshot(function: Function, redis_server: RedisServer, root: Path) -> tuple[dict[str, Any], list[str]]:
    """Everything Redis holds and every file under ``root``: what a malformed event must leave as it was."""
    import redis

    client = redis.Redis.from_url(redis_server.url)
    try:
        data = {k.decode(): client.dump(k) for k in sorted(client.keys("*"))}
    finally:
        client.close()
    return data, sorted(str(p.relative_to(root)) for p in root.rglob("*"))


#: (field, value) pairs that make an S3 or EventBridge object unreadable. ``{sid}`` is the session's id.
HOSTILE_OBJECT_FIELDS: list[tuple[str, Any]] = [
    ("key", 123),
    ("key", None),
    ("key", ["sessions/x"]),
    ("key", "sessions/{sid}/photos/\ud800.png"),  # a lone surrogate: no UTF-8 (nor Lua cjson) can hold it
    ("key", "sessions/{sid}/photos/%FF.png"),  # an escape that is not UTF-8
    ("key", "sessions/{sid}/photos/%ED%A0%80.png"),  # a surrogate, UTF-8 encoded
    ("key", "sessions/{sid}/../../../../victim.png"),  # outside SESSIONS_DIR once joined
    ("key", "sessions/{sid}/photos/../x.png"),
    ("key", "sessions/{sid}/"),
    ("key", "sessions/not-a-session-id/a.png"),
    ("size", -500),
    ("size", 5.5),
    ("size", True),
    ("size", "12"),
    ("size", "²"),
    ("size", None),
    ("sequencer", "-00000000001"),
    ("sequencer", " 0000000000F"),
    ("sequencer", "0x1F"),
    ("sequencer", ""),
    ("sequencer", 12),
    ("eTag", {"not": "text"}),
]


def hostile(shape: str, sid: str, field: str, value: Any) -> dict[str, Any]:
    """A created event for ``sessions/{sid}/photos/victim.png`` with one field replaced, as S3 would carry it."""
    event = created(f"sessions/{sid}/photos/victim.png", SEQUENCERS[3], 110, shape)
    obj = event["Records"][0]["s3"]["object"] if shape == "s3" else event["detail"]["object"]
    if shape == "eventbridge" and field == "eTag":
        field = "etag"
    obj[field] = value.format(sid=sid) if isinstance(value, str) and field == "key" else value
    if value is None:
        del obj[field]
    return event


@pytest.mark.parametrize("shape", ["s3", "eventbridge"])
@pytest.mark.parametrize(("field", "value"), HOSTILE_OBJECT_FIELDS, ids=lambda v: repr(v)[:40])
def test_a_hostile_field_fails_its_message_alone_and_changes_nothing(
    function: Function,
    redis_server: RedisServer,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    shape: str,
    field: str,
    value: Any,
) -> None:
    # GIVEN a session with a recorded file, a stored object at the hostile event's key, and a file outside
    # SESSIONS_DIR where "../" would lead
    sid = function.new_session()
    function.service.storage.write(f"sessions/{sid}/photos/victim.png", png(size=110))  # type: ignore[attr-defined]
    assert function(created(f"sessions/{sid}/photos/victim.png", SEQUENCERS[0], 110, shape)) == {"recorded": 1}
    (tmp_path / "victim.png").write_bytes(b"outside")
    event = hostile(shape, sid, field, value)
    before = _snapshot(function, redis_server, tmp_path)

    # WHEN S3 or EventBridge invokes the function directly THEN it raises (Lambda retries, then the destination
    # keeps it), with the reason logged, and neither Redis nor storage changed
    with caplog.at_level(logging.ERROR, logger="hera_sessions"), pytest.raises(UnreadableEventError):
        function(event)
    reasons = [getattr(r, "reason", "") for r in caplog.records if "Lambda retries" in r.getMessage()]
    assert reasons and all(reasons)
    assert _snapshot(function, redis_server, tmp_path) == before

    # WHEN it comes in an SQS batch among good messages
    batch = sqs_batch(
        created(f"sessions/{sid}/photos/a.png", SEQUENCERS[0], 101, shape),
        event,
        {"requestContext": {"condition": "RetriesExhausted"}, "requestPayload": event},  # its destination record
        created(f"sessions/{sid}/photos/b.png", SEQUENCERS[0], 102, shape),
    )
    answer = function(batch)

    # THEN exactly it (and its destination record) fail; the good ones are recorded; the rest is as it was
    assert answer == {"batchItemFailures": message_ids(batch, 1, 2)}
    state = function.state(sid)
    assert sorted(state) == ["photos/a.png", "photos/b.png", "photos/victim.png"]
    assert state["photos/victim.png"].sequencer == SEQUENCERS[0]
    assert function.object_file(f"sessions/{sid}/photos/victim.png").exists()
    assert (tmp_path / "victim.png").read_bytes() == b"outside"


def test_a_key_with_dot_dot_never_reaches_storage_even_past_the_readers(function: Function, tmp_path: Path) -> None:
    # GIVEN an event that a reader would refuse, handed straight to the service (the defensive check)
    from hera_sessions.core.models import EventKind, StorageEvent

    sid = function.new_session()
    (tmp_path / "victim.png").write_bytes(b"outside")
    bad = StorageEvent(EventKind.CREATED, f"sessions/{sid}/../../../../victim.png", "01", 5, content_type="text/html")
    good = StorageEvent(EventKind.CREATED, f"sessions/{sid}/photos/a.png", "01", 5)
    # WHEN it is recorded THEN it is refused before anything is written or deleted
    with pytest.raises(UnreadableEventError):
        function.service.record_events([good, bad])
    with pytest.raises(UnreadableEventError):
        function.service.check_event(bad)
    assert (tmp_path / "victim.png").read_bytes() == b"outside"
    assert function.state(sid) == {}
