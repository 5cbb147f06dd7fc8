"""Every AWS file in events/ through the handler it is for: the same events `sam local invoke -e` takes.

The api-*.json files go to functions/api/app.py, the S3, SQS and EventBridge ones to
functions/storage_events/app.py, one runtime behind both (local storage, Redis metadata). The files name the
session AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA and the service key ``dev-service-key``: the session is created first.
"""

from __future__ import annotations

import importlib
import json
import logging
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

import pytest

from hera_sessions.core.models import EventKind
from hera_sessions.runtime import Runtime
from hera_sessions.runtimes.aws import s3events
from hera_sessions.runtimes.aws.events import is_destination_record, is_sqs_batch
from tests.conftest import EVENTS, RedisServer, load_event
from tests.envs import service_env
from tests.images import png

SESSION = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
DEV_SERVICE_KEY = "dev-service-key"

CONTEXT = SimpleNamespace(
    function_name="hera-sessions-dev-function",
    memory_limit_in_mb=256,
    invoked_function_arn="arn:aws:lambda:ap-northeast-1:123456789012:function:hera-sessions-dev-function",
    aws_request_id="0f1e2d3c-0000-4000-8000-000000000000",
)

#: Every file, in the order a session lives through them, and what its handler answers.
#: API events: the HTTP status. Storage events: the direct invocation's outcomes, or the SQS batch's failures.
SCENARIO: list[tuple[str, Any]] = [
    ("api-create-session.json", 201),
    ("api-create-upload.json", 201),  # a ticket for photos/user.png, 12345 bytes
    ("s3-test-event.json", {}),
    ("s3-object-created.json", {"recorded": 1}),  # photos/user.png, 12345 bytes
    ("api-list-files.json", 200),
    ("api-get-file.json", 200),
    ("eventbridge-object-created.json", {"duplicate": 1}),  # the same upload, through EventBridge
    ("sqs-s3-batch.json", {"batchItemFailures": []}),  # child_1.png; other/readme.txt and a test event skipped
    ("sqs-eventbridge-batch.json", {"batchItemFailures": []}),  # partner.png created, user.png deleted
    ("eventbridge-object-deleted.json", {"duplicate": 1}),  # the same delete again
    ("s3-object-removed.json", {"duplicate": 1}),
    ("s3-lifecycle-expiration.json", {"removed": 1}),  # later than the delete (a greater sequencer)
    ("api-delete-session.json", 204),
]


@pytest.fixture
def handlers(
    redis_server: RedisServer,
    make_runtime: Callable[[dict[str, str]], Runtime],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[tuple[ModuleType, ModuleType, Runtime]]:
    """Both handler modules over one runtime; their Powertools logging take-over is undone afterwards."""
    core = logging.getLogger("hera_sessions")
    saved = (core.handlers[:], core.propagate, core.level)
    api = importlib.import_module("functions.api.app")
    storage_events = importlib.import_module("functions.storage_events.app")
    redis_server.flush()
    runtime = make_runtime(
        service_env(
            "local",
            "redis",
            redis_url=redis_server.url,
            sessions_dir=tmp_path / "sessions",
            service_keys=DEV_SERVICE_KEY,
        )
    )
    service = runtime.service()
    service.storage.events = None  # type: ignore[attr-defined]  # only the function records
    service.metadata.create_session(SESSION, time.time(), service.settings.session_ttl)
    monkeypatch.setattr(api, "runtime", runtime)
    monkeypatch.setattr(storage_events, "runtime", runtime)
    yield api, storage_events, runtime
    core.handlers, core.propagate = saved[0], saved[1]
    core.setLevel(saved[2])


def objects_described(event: dict[str, Any]) -> list[tuple[str, bytes]]:
    """The objects an event file's "created" events describe under sessions/: ``png(size=N)`` (the files' ETags
    are those images' MD5s), which a test stores before the event, as the upload would have (the event path
    reads each new object)."""
    bodies = [json.loads(r["body"]) for r in event["Records"]] if is_sqs_batch(event) else [event]
    objects = []
    for body in bodies:
        notice = body["requestPayload"] if is_destination_record(body) else body
        for item in s3events.parse(notice):
            if item.kind is EventKind.CREATED and item.key.startswith("sessions/") and item.size:
                objects.append((item.key, png(size=item.size)))
    return objects


def invoke(name: str, api: ModuleType, storage_events: ModuleType, runtime: Runtime) -> Any:
    event = load_event(name)
    if name.startswith("api-"):
        answer = api.lambda_handler(event, CONTEXT)
        return answer["statusCode"], answer
    for key, body in objects_described(event):
        runtime.service().storage.write(key, body)  # type: ignore[attr-defined]
    return storage_events.lambda_handler(event, CONTEXT), None


#: The AWS files in events/ (the gcs-* and eventgrid-* ones are for the other clouds' functions).
AWS_PREFIXES = ("api-", "s3-", "sqs-", "eventbridge-")


def test_the_scenario_drives_every_aws_file_in_events() -> None:
    aws_files = sorted(p.name for p in EVENTS.glob("*.json") if p.name.startswith(AWS_PREFIXES))
    assert sorted(name for name, _ in SCENARIO) == aws_files


def test_every_event_file_through_its_handler(handlers: tuple[ModuleType, ModuleType, Runtime]) -> None:
    api, storage_events, runtime = handlers
    files_seen: dict[str, list[str]] = {}
    for name, expected in SCENARIO:
        # WHEN the file is the event THEN its handler answers as expected
        if name.startswith("api-"):
            status, answer = invoke(name, api, storage_events, runtime)
            assert status == expected, (name, answer.get("body"))
            if name == "api-list-files.json":
                listed = json.loads(answer["body"])["files"]
                files_seen[name] = [f["path"] for f in listed]
        else:
            assert invoke(name, api, storage_events, runtime)[0] == expected, name
    # AND the session held what the events said, then was erased
    assert files_seen["api-list-files.json"] == ["photos/user.png"]
    assert runtime.service().metadata.is_erased(SESSION)


def test_the_storage_events_leave_the_files_they_describe(handlers: tuple[ModuleType, ModuleType, Runtime]) -> None:
    api, storage_events, runtime = handlers
    for name, _ in SCENARIO:
        if name == "api-delete-session.json":
            break
        invoke(name, api, storage_events, runtime)
    files = {r.path: r for r in runtime.service().list_files(SESSION)}
    assert sorted(files) == ["photos/child_1.png", "photos/partner.png"]
    assert (files["photos/partner.png"].size, files["photos/partner.png"].sequencer) == (23456, "0055AED6DCD902830B")
    assert files["photos/child_1.png"].etag == "766f8b7aeaf38148815bf495a5ed07ce"


def test_a_storage_event_after_the_erasure_is_refused(handlers: tuple[ModuleType, ModuleType, Runtime]) -> None:
    api, storage_events, runtime = handlers
    status, _ = invoke("api-delete-session.json", api, storage_events, runtime)
    assert status == 204
    assert invoke("s3-object-created.json", api, storage_events, runtime)[0] == {"erased": 1}
    assert invoke("sqs-eventbridge-batch.json", api, storage_events, runtime)[0] == {"batchItemFailures": []}
    assert runtime.service().metadata.get_session(SESSION) is None


def test_each_call_logs_with_its_own_lambda_context_and_nothing_left_from_the_last(
    handlers: tuple[ModuleType, ModuleType, Runtime],
) -> None:
    # GIVEN both functions (their Logger decorators keep no clear_state: nothing appends keys per request)
    api, storage_events, _ = handlers
    for module in (api, storage_events):
        event = load_event("api-list-files.json" if module is api else "sqs-s3-batch.json")
        # WHEN two calls come with different request ids
        keys = []
        for request_id in ("first-request", "second-request"):
            context = SimpleNamespace(**{**vars(CONTEXT), "aws_request_id": request_id})
            module.lambda_handler(event, context)
            keys.append(dict(module.logger.get_current_keys()))
        # THEN the second call's keys are its own context's, and no key of the first call is left over
        assert keys[1]["function_request_id"] == "second-request"
        assert keys[1]["cold_start"] is False
        assert set(keys[1]) == set(keys[0])
