"""Event Grid delivered to a plain HTTPS endpoint: ``POST /events/eventgrid`` (the ``eventgrid_webhook`` function)."""

from __future__ import annotations

import json
from types import ModuleType
from typing import Any

import requests

from hera_sessions.core import keys
from tests.azure.conftest import Api, Container, blob_created_event, sequencer
from tests.conftest import free_port, load_event
from tests.images import png

PNG = png(size=208)


def deliver(module: ModuleType, body: Any, method: str = "POST", headers: dict[str, str] | None = None) -> Any:
    import azure.functions as func

    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    sent = {"content-type": "application/json", "aeg-event-type": "Notification", **(headers or {})}
    request = func.HttpRequest(
        method, "https://hera-sessions.azurewebsites.net/events/eventgrid?code=function-key", headers=sent, body=raw
    )
    return module.eventgrid_webhook(request)


def test_the_subscription_validation_handshake_echoes_the_code(function_app: ModuleType) -> None:
    response = deliver(
        function_app,
        load_event("eventgrid-subscription-validation.json"),
        headers={"aeg-event-type": "SubscriptionValidation"},
    )

    assert response.status_code == 200
    assert json.loads(response.get_body()) == {"validationResponse": "512d38b6-c7b8-40c8-89fe-f46f9e9622b6"}


def test_the_cloud_events_handshake_allows_the_origin(function_app: ModuleType) -> None:
    response = deliver(function_app, b"", "OPTIONS", {"WebHook-Request-Origin": "eventgrid.azure.net"})

    assert response.status_code == 200
    assert response.headers["WebHook-Allowed-Origin"] == "eventgrid.azure.net"
    assert deliver(function_app, b"", "OPTIONS").status_code == 400


def test_a_delivered_blob_created_event_records_the_file(
    api: Api, function_app: ModuleType, azure_container: Container
) -> None:
    # GIVEN a file uploaded with its ticket
    sid, token = api.create_session()
    ticket = api(
        "POST", f"/v1/sessions/{sid}/uploads", {"path": "a.png", "content_type": "image/png", "size": len(PNG)}, token
    ).json()
    sent = requests.put(ticket["url"], data=PNG, headers=ticket["headers"], timeout=30)
    assert sent.status_code == 201
    key = keys.object_key(sid, "a.png")
    event = blob_created_event(
        azure_container.name,
        key,
        size=len(PNG),
        content_type="image/png",
        etag=sent.headers["ETag"],
        sequencer=sequencer(1),
    )

    # WHEN Event Grid posts it to the webhook (a list of events, as it always does)
    response = deliver(function_app, [event])

    # THEN it is recorded
    assert response.status_code == 200
    assert json.loads(response.get_body()) == {"results": {"recorded": 1}}
    assert [f["path"] for f in api("GET", f"/v1/sessions/{sid}/files", token=token).json()["files"]] == ["a.png"]


def test_an_unreadable_delivery_is_400_so_that_event_grid_does_not_retry(function_app: ModuleType) -> None:
    assert deliver(function_app, b"{not json").status_code == 400
    assert deliver(function_app, [{"eventType": "Microsoft.Storage.BlobCreated", "data": {}}]).status_code == 400


def test_redis_down_is_503_so_that_event_grid_retries(
    function_app: ModuleType,
    azure_env: dict[str, str],
    azure_container: Container,
    make_runtime: Any,
    monkeypatch: Any,
) -> None:
    dead = make_runtime({**azure_env, "REDIS_URL": f"redis://127.0.0.1:{free_port()}/0", "REDIS_TIMEOUT": "0.2"})
    monkeypatch.setattr(function_app, "runtime", dead)
    key = keys.object_key(keys.new_session_id(), "a.png")
    stored = azure_container.client.upload_blob(key, PNG).get_blob_properties()  # the event path reads it first
    event = blob_created_event(
        azure_container.name, key, size=len(PNG), content_type="image/png", etag=stored["etag"], sequencer=sequencer(1)
    )

    response = deliver(function_app, [event])

    assert response.status_code == 503
    assert json.loads(response.get_body())["error"]["code"] == "metadata_unavailable"
