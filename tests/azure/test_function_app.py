"""azure/function_app.py in-process, over Azurite and a real Redis: the whole flow, and the event rules.

The API function gets ``azure.functions.HttpRequest`` objects, the Event Grid trigger gets
``azure.functions.EventGridEvent`` objects built from events shaped exactly like events/eventgrid-*.json,
for the blobs that the test really uploaded to Azurite.
"""

from __future__ import annotations

import json
import logging
import time
from types import ModuleType
from typing import Any

import pytest
import requests

from hera_sessions.core import keys
from hera_sessions.core.errors import MetadataUnavailableError
from hera_sessions.core.events import UnreadableEventError
from hera_sessions.runtime import Runtime
from tests.azure.conftest import (
    Api,
    Container,
    blob_created_event,
    blob_deleted_event,
    sequencer,
    trigger_event,
)
from tests.azure.test_webhook import deliver
from tests.conftest import RedisServer, free_port
from tests.images import png

PNG = png(size=1032)


def upload(api: Api, sid: str, token: str, path: str, body: bytes, content_type: str = "image/png") -> dict[str, Any]:
    """Ask for a ticket and PUT the body exactly as it says; returns the ticket and the storage's answer."""
    answer = api(
        "POST", f"/v1/sessions/{sid}/uploads", {"path": path, "content_type": content_type, "size": len(body)}, token
    )
    assert answer.status == 201, answer.body
    ticket = answer.json()
    sent = requests.put(ticket["url"], data=body, headers=ticket["headers"], timeout=30)
    assert sent.status_code == 201, sent.text
    return {"ticket": ticket, "etag": sent.headers["ETag"]}


def created(container: Container, key: str, blob_etag: str, n: int, **overrides: Any) -> dict[str, Any]:
    """The BlobCreated event Azure would send for the blob now stored at ``key``."""
    props = container.client.get_blob_client(key).get_blob_properties()
    values = {
        "size": props.size,
        "content_type": props.content_settings.content_type,
        "etag": blob_etag,
        "sequencer": sequencer(n),
    }
    return blob_created_event(container.name, key, **(values | overrides))


def redis_keys(redis_server: RedisServer, sid: str) -> list[str]:
    import redis

    client = redis.Redis.from_url(redis_server.url)
    return sorted(k.decode() for k in client.keys(f"session:{{{sid}}}*"))


def test_the_whole_flow_upload_event_listing_download_erase(
    api: Api, function_app: ModuleType, azure_container: Container, redis_server: RedisServer
) -> None:
    # GIVEN a session and an upload ticket for a PNG
    sid, token = api.create_session()
    key = keys.object_key(sid, "photos/user.png")

    # WHEN the client PUTs the file exactly as the ticket says
    sent = upload(api, sid, token, "photos/user.png", PNG)
    ticket = sent["ticket"]
    assert ticket["protocol"] == "put"
    assert ticket["method"] == "PUT"
    assert ticket["headers"]["x-ms-blob-type"] == "BlockBlob"
    assert azure_container.names("sessions/") == [key]
    # ... and Event Grid delivers the BlobCreated event to the trigger
    function_app.storage_events(trigger_event(created(azure_container, key, sent["etag"], 1)))

    # THEN the file is listed with its size, type and ETag
    listed = api("GET", f"/v1/sessions/{sid}/files", token=token)
    assert listed.status == 200
    (record,) = listed.json()["files"]
    assert (record["path"], record["size"], record["content_type"]) == ("photos/user.png", len(PNG), "image/png")
    assert record["etag"] == sent["etag"].strip('"')
    # ... and its download URL returns the same bytes, named and typed
    download = api("GET", f"/v1/sessions/{sid}/files/photos/user.png", token=token)
    assert download.status == 200
    got = requests.get(download.json()["url"], timeout=30)
    assert got.status_code == 200
    assert got.content == PNG
    assert got.headers["Content-Type"] == "image/png"
    assert got.headers["Content-Disposition"] == 'inline; filename="user.png"'

    # WHEN the session is erased
    erased = api("DELETE", f"/v1/sessions/{sid}", token=token)

    # THEN no blob is left under its prefix and Redis holds only the erase marker
    assert erased.status == 204
    assert azure_container.names(keys.session_prefix(sid)) == []
    assert redis_keys(redis_server, sid) == [keys.redis_erased_key(sid)]
    assert api("GET", f"/v1/sessions/{sid}/files", token=token).status == 410


def test_a_form_post_upload_is_refused_with_method_not_supported(api: Api) -> None:
    sid, token = api.create_session()

    answer = api(
        "POST",
        f"/v1/sessions/{sid}/uploads",
        {"path": "a.png", "content_type": "image/png", "size": 10, "method": "POST"},
        token,
    )

    assert answer.status == 400
    assert answer.json()["error"]["code"] == "method_not_supported"


def test_a_blob_bigger_than_declared_is_deleted_and_not_recorded(
    api: Api, function_app: ModuleType, azure_container: Container
) -> None:
    # GIVEN a ticket for 100 bytes, used to write more (a SAS binds no size)
    sid, token = api.create_session()
    key = keys.object_key(sid, "big.png")
    answer = api(
        "POST", f"/v1/sessions/{sid}/uploads", {"path": "big.png", "content_type": "image/png", "size": 100}, token
    )
    ticket = answer.json()
    sent = requests.put(ticket["url"], data=PNG, headers=ticket["headers"], timeout=30)
    assert sent.status_code == 201  # Azure takes it: nothing in the SAS says how big

    # WHEN its BlobCreated event arrives
    function_app.storage_events(trigger_event(created(azure_container, key, sent.headers["ETag"], 1)))

    # THEN the blob is gone and nothing is recorded
    assert azure_container.names(keys.session_prefix(sid)) == []
    assert api("GET", f"/v1/sessions/{sid}/files", token=token).json()["files"] == []


def test_a_blob_of_another_type_than_declared_is_deleted_and_not_recorded(
    api: Api, function_app: ModuleType, azure_container: Container
) -> None:
    # GIVEN a PNG ticket, used with other headers: the blob is stored as application/octet-stream
    sid, token = api.create_session()
    key = keys.object_key(sid, "photo.png")
    ticket = api(
        "POST",
        f"/v1/sessions/{sid}/uploads",
        {"path": "photo.png", "content_type": "image/png", "size": len(PNG)},
        token,
    ).json()
    sent = requests.put(ticket["url"], data=PNG, headers={"x-ms-blob-type": "BlockBlob"}, timeout=30)
    assert sent.status_code == 201
    event = created(azure_container, key, sent.headers["ETag"], 1)
    assert event["data"]["contentType"] == "application/octet-stream"

    # WHEN its BlobCreated event arrives
    function_app.storage_events(trigger_event(event))

    # THEN the blob is gone and nothing is recorded
    assert azure_container.names(keys.session_prefix(sid)) == []
    assert api("GET", f"/v1/sessions/{sid}/files/photo.png", token=token).status == 404


def test_events_are_ordered_by_sequencer_and_deduplicated_by_event(
    api: Api, function_app: ModuleType, azure_container: Container
) -> None:
    sid, token = api.create_session()
    key = keys.object_key(sid, "photo.png")
    sent = upload(api, sid, token, "photo.png", PNG)
    first = created(azure_container, key, sent["etag"], 5, event_id="evt-5")

    # GIVEN a recorded upload
    function_app.storage_events(trigger_event(first))
    # WHEN the same event is delivered again, then an older deletion arrives late
    function_app.storage_events(trigger_event(first))
    function_app.storage_events(trigger_event(blob_deleted_event(azure_container.name, key, sequencer=sequencer(4))))

    # THEN the file is still there, recorded once
    files = api("GET", f"/v1/sessions/{sid}/files", token=token).json()["files"]
    assert [f["path"] for f in files] == ["photo.png"]

    # WHEN a newer deletion arrives
    function_app.storage_events(trigger_event(blob_deleted_event(azure_container.name, key, sequencer=sequencer(6))))
    # ... and then the older creation once more (a retried delivery)
    function_app.storage_events(trigger_event(first))

    # THEN the file stays gone
    assert api("GET", f"/v1/sessions/{sid}/files", token=token).json()["files"] == []


def test_a_blob_that_arrives_after_the_erase_is_deleted(
    api: Api, function_app: ModuleType, azure_container: Container, redis_server: RedisServer
) -> None:
    # GIVEN a ticket issued before the session was erased, used after
    sid, token = api.create_session()
    key = keys.object_key(sid, "late.png")
    ticket = api(
        "POST",
        f"/v1/sessions/{sid}/uploads",
        {"path": "late.png", "content_type": "image/png", "size": len(PNG)},
        token,
    ).json()
    assert api("DELETE", f"/v1/sessions/{sid}", token=token).status == 204
    sent = requests.put(ticket["url"], data=PNG, headers=ticket["headers"], timeout=30)
    assert sent.status_code == 201

    # WHEN its BlobCreated event arrives
    function_app.storage_events(trigger_event(created(azure_container, key, sent.headers["ETag"], 1)))

    # THEN the blob is deleted and Redis still holds only the erase marker
    assert azure_container.names(keys.session_prefix(sid)) == []
    assert redis_keys(redis_server, sid) == [keys.redis_erased_key(sid)]


def test_an_event_about_another_container_is_ignored(
    api: Api, function_app: ModuleType, azure_container: Container
) -> None:
    sid, token = api.create_session()
    key = keys.object_key(sid, "photo.png")
    sent = upload(api, sid, token, "photo.png", PNG)
    event = created(azure_container, key, sent["etag"], 1, size=10**9)  # would be rejected (and deleted)
    event["subject"] = event["subject"].replace(azure_container.name, "someone-elses")

    function_app.storage_events(trigger_event(event))

    assert azure_container.names(keys.session_prefix(sid)) == [key]  # not ours: neither recorded nor deleted
    assert api("GET", f"/v1/sessions/{sid}/files", token=token).json()["files"] == []


def test_the_trigger_raises_when_redis_is_down_so_that_event_grid_retries(
    function_app: ModuleType,
    azure_env: dict[str, str],
    azure_container: Container,
    make_runtime: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    dead = make_runtime({**azure_env, "REDIS_URL": f"redis://127.0.0.1:{free_port()}/0", "REDIS_TIMEOUT": "0.2"})
    monkeypatch.setattr(function_app, "runtime", dead)
    key = keys.object_key(keys.new_session_id(), "photo.png")
    stored = azure_container.client.upload_blob(key, PNG).get_blob_properties()  # the event path reads it first
    event = blob_created_event(
        azure_container.name, key, size=len(PNG), content_type="image/png", etag=stored["etag"], sequencer=sequencer(1)
    )

    with pytest.raises(MetadataUnavailableError):
        function_app.storage_events(trigger_event(event))


def test_the_trigger_fails_an_unreadable_event_for_the_dead_letter_container(
    function_app: ModuleType, azure_container: Container, caplog: pytest.LogCaptureFixture
) -> None:
    key = keys.object_key(keys.new_session_id(), "photo.png")
    event = blob_created_event(azure_container.name, key, size=10, content_type="image/png", etag="x", sequencer="1")
    del event["data"]["contentLength"]

    with caplog.at_level(logging.ERROR), pytest.raises(UnreadableEventError, match="size"):
        function_app.storage_events(trigger_event(event))  # raised: retried, then dead-lettered
    assert any("dead-letter" in r.getMessage() and "size" in r.getMessage() for r in caplog.records)


#: (field, value) that make a BlobCreated event unreadable; ``{sid}`` is the session's id.
HOSTILE_FIELDS: list[tuple[str, Any]] = [
    ("key", "sessions/{sid}/photos/\ud800.png"),  # a lone surrogate
    ("key", "sessions/{sid}/../../victim.png"),
    ("key", "sessions/{sid}/photos/a b.png"),
    ("contentLength", -500),
    ("contentLength", 5.5),
    ("contentLength", True),
    ("contentLength", "12"),
    ("contentLength", "²"),
    ("sequencer", "-00000000001"),
    ("sequencer", " 0000000000F"),
    ("sequencer", "0x1F"),
]


def hostile_event(container: Container, sid: str, blob_etag: str, field: str, value: Any) -> dict[str, Any]:
    """The BlobCreated event of the session's victim.png, oversize (it would be deleted), with one bad field."""
    event = created(container, keys.object_key(sid, "victim.png"), blob_etag, 9, size=10**9)
    if field == "key":
        event["subject"] = f"/blobServices/default/containers/{container.name}/blobs/{value.format(sid=sid)}"
    else:
        event["data"][field] = value
    return event


@pytest.mark.parametrize(("field", "value"), HOSTILE_FIELDS, ids=lambda v: repr(v)[:40])
def test_a_hostile_field_fails_its_event_alone_and_changes_nothing(
    api: Api,
    function_app: ModuleType,
    azure_container: Container,
    redis_server: RedisServer,
    field: str,
    value: Any,
) -> None:
    # GIVEN a session with a recorded victim.png, and a BlobCreated event about it with one bad field
    sid, token = api.create_session()
    sent = upload(api, sid, token, "victim.png", PNG)
    function_app.storage_events(
        trigger_event(created(azure_container, keys.object_key(sid, "victim.png"), sent["etag"], 1))
    )
    good = [upload(api, sid, token, name, PNG) for name in ("a.png", "b.png")]
    bad = hostile_event(azure_container, sid, sent["etag"], field, value)
    before = (redis_keys(redis_server, sid), files_of(api, sid, token), azure_container.names())

    # WHEN the trigger gets it THEN it raises (Event Grid retries it, then dead-letters it) and nothing changes
    with pytest.raises(UnreadableEventError):
        function_app.storage_events(trigger_event(bad))
    assert (redis_keys(redis_server, sid), files_of(api, sid, token), azure_container.names()) == before

    # WHEN the webhook gets it in one delivery with good events
    deliveries = [
        created(azure_container, keys.object_key(sid, name), good[i]["etag"], 2)
        for i, name in enumerate(("a.png", "b.png"))
    ]
    answer = deliver(function_app, [deliveries[0], bad, deliveries[1]])

    # THEN the delivery gets 400 (dead-lettered at once), the good events are recorded, the bad one changed nothing
    assert answer.status_code == 400
    assert json.loads(answer.get_body())["error"]["code"] == "unreadable_event"
    recorded = files_of(api, sid, token)
    assert [f["path"] for f in recorded] == ["a.png", "b.png", "victim.png"]
    assert recorded[2] == before[1][0]
    assert azure_container.names() == before[2]


def files_of(api: Api, sid: str, token: str) -> list[dict[str, Any]]:
    files: list[dict[str, Any]] = api("GET", f"/v1/sessions/{sid}/files", token=token).json()["files"]
    return sorted(files, key=lambda f: f["path"])


def test_the_api_answers_health_and_cors_preflight(api: Api, allowed_origins: tuple[str, ...]) -> None:
    health = api("GET", "/health")
    assert health.status == 200
    assert health.json()["checks"] == {"metadata": "ok", "storage": "ok"}

    preflight = api(
        "OPTIONS",
        "/v1/sessions/x/uploads",
        headers={"origin": allowed_origins[0], "access-control-request-method": "POST"},
    )
    assert preflight.status in (200, 204)
    assert preflight.headers.get("Access-Control-Allow-Origin") == allowed_origins[0]


def test_health_says_storage_unavailable_when_azurite_cannot_be_reached(
    function_app: ModuleType, azure_env: dict[str, str], make_runtime: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    port = free_port()
    connection = azure_env["AZURE_STORAGE_CONNECTION_STRING"].rsplit("BlobEndpoint=", 1)[0]
    env = {**azure_env, "AZURE_STORAGE_CONNECTION_STRING": f"{connection}BlobEndpoint=http://127.0.0.1:{port}/x;"}
    runtime: Runtime = make_runtime(env)
    monkeypatch.setattr(function_app, "runtime", runtime)

    started = time.monotonic()
    health = Api(function_app)("GET", "/health")

    assert health.status == 503
    assert health.json()["checks"]["storage"] == "storage_unavailable"
    assert time.monotonic() - started < 30  # fails fast, not after the SDK's default minutes of retries
