"""Azure Functions entry points (Python v2 programming model), thin adapters over the ``hera_sessions`` package.

- ``api``: every HTTP request (route ``{*path}``; ``host.json`` sets the route prefix to ``""``) becomes an
  HTTP API v2 event for the same routing table as on AWS and GCP.
- ``storage_events``: the Event Grid trigger for ``Microsoft.Storage.BlobCreated`` / ``BlobDeleted``.
  It raises when Redis or storage cannot be reached, and for an event it cannot read (logged with the reason,
  changing nothing), so that Event Grid delivers the event again and then dead-letters it (``azure/deploy.sh``
  gives the subscription a dead-letter container).
- ``eventgrid_webhook``: the same events delivered by Event Grid to a plain HTTPS endpoint
  (``POST /events/eventgrid?code=<function key>``), with the subscription validation handshake. An unreadable
  event gets 400, which Event Grid dead-letters at once (never retried); the readable events of the same
  delivery are recorded.

In the repo ``hera_sessions`` is the project's own install; deployed, ``azure/deploy.sh`` copies it beside
this file.
"""

from __future__ import annotations

import json
import logging
from typing import Any
from urllib.parse import urlencode, urlsplit

import azure.functions as func

from hera_sessions.core.errors import UnavailableError
from hera_sessions.core.events import UnreadableEventError
from hera_sessions.core.models import EventResult
from hera_sessions.core.service import results_summary
from hera_sessions.http.event import answer_parts, http_api_event
from hera_sessions.runtime import Runtime
from hera_sessions.runtimes.azure import events as blob_events

runtime = Runtime()  # settings, Redis and Blob clients: built on first use, once per instance
logger = logging.getLogger("hera_sessions.azure")
logging.getLogger("hera_sessions").setLevel(logging.INFO)

app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)

WEBHOOK_ROUTE = "events/eventgrid"
JSON = "application/json"


def _json(status: int, body: Any, headers: dict[str, str] | None = None) -> func.HttpResponse:
    return func.HttpResponse(json.dumps(body), status_code=status, mimetype=JSON, headers=headers)


# -- the v1 API ------------------------------------------------------------------------------------------
def _target(req: func.HttpRequest) -> str:
    """The request target as the client sent it: the path still percent-encoded (the API decodes it once)."""
    parts = urlsplit(req.url)
    query = parts.query or urlencode(dict(req.params))
    return f"{parts.path or '/'}?{query}" if query else parts.path or "/"


def _client_ip(req: func.HttpRequest) -> str:
    """The caller's address, as the Functions front end forwards it (``203.0.113.7:51234`` → ``203.0.113.7``)."""
    forwarded = (req.headers.get("x-forwarded-for") or "").split(",")[0].strip()
    if forwarded.count(":") == 1:  # IPv4 with a port; IPv6 addresses have more colons
        forwarded = forwarded.split(":")[0]
    return forwarded.strip("[]") or "127.0.0.1"


def api(req: func.HttpRequest) -> func.HttpResponse:
    """The v1 API: the request becomes an HTTP API v2 event for the same routing table as the other clouds."""
    event = http_api_event(req.method, _target(req), dict(req.headers.items()), req.get_body(), _client_ip(req))
    status, headers, body = answer_parts(runtime.handle_http(event))
    return func.HttpResponse(body, status_code=status, headers=headers)


# -- storage events --------------------------------------------------------------------------------------
def record(payload: Any) -> list[EventResult]:
    """Record the blob events of one Event Grid delivery (either schema; an event or a list of events).

    Each event is read on its own: the readable ones are recorded, then UnreadableEventError is raised when any
    could not be read (each is logged with its reason and changes nothing). Raises UnavailableError when Redis
    or storage cannot be reached (retry: recording is idempotent).
    """
    service = runtime.service()
    events, problems = blob_events.read(payload, service.settings.azure_container_name)
    results = service.record_events(events) if events else []
    for problem in problems:
        logger.error("storage event unreadable: %s", problem.message, extra={"reason": problem.message})
    if problems:
        raise UnreadableEventError("; ".join(p.message for p in problems))
    return results


def event_payload(event: func.EventGridEvent) -> dict[str, Any]:
    """The trigger's event object back in the Event Grid schema, as :mod:`hera_sessions.runtimes.azure.events` reads."""
    return {
        "id": event.id,
        "topic": event.topic,
        "subject": event.subject,
        "eventType": event.event_type,
        "eventTime": event.event_time.isoformat() if event.event_time else None,
        "data": event.get_json(),
        "dataVersion": event.data_version,
    }


def storage_events(event: func.EventGridEvent) -> None:
    """Raise to have the event delivered again, then dead-lettered: Redis or storage unreachable, or unreadable."""
    try:
        results = record(event_payload(event))
    except UnreadableEventError as exc:
        logger.error(
            "storage event failed for the dead-letter container: %s", exc.message, extra={"event_id": event.id}
        )
        raise
    logger.info(
        "storage event handled",
        extra={"event_id": event.id, "subject": event.subject, **results_summary(results)},
    )


def eventgrid_webhook(req: func.HttpRequest) -> func.HttpResponse:
    """Event Grid over a plain webhook: 200 when done, 400 dead-lettered at once (never retried), 503 retried."""
    if req.method == "OPTIONS":  # CloudEvents schema: the abuse-protection handshake
        origin = req.headers.get("webhook-request-origin")
        if not origin:
            return _json(400, {"error": {"code": "invalid_handshake", "message": "No WebHook-Request-Origin."}})
        return func.HttpResponse(status_code=200, headers={"WebHook-Allowed-Origin": origin})
    try:
        payload = json.loads(req.get_body() or b"null")
        code = blob_events.validation_code(payload)
        if code is not None:  # Event Grid schema: echo the code back to prove we own the endpoint
            logger.info("Event Grid subscription validated")
            return _json(200, {"validationResponse": code})
        results = record(payload)
    except (ValueError, UnreadableEventError) as exc:
        message = exc.message if isinstance(exc, UnreadableEventError) else "The body is not JSON."
        logger.error("storage event delivery refused: %s", message)
        return _json(400, {"error": {"code": "unreadable_event", "message": message}})
    except UnavailableError as exc:
        logger.warning("storage events not recorded, to be retried: %s", exc.message)
        return _json(503, exc.to_body(), {"Retry-After": "30"})
    summary = results_summary(results)
    logger.info("storage events handled", extra=summary)
    return _json(200, {"results": summary})


# -- registration (the functions above stay plain functions, callable in tests) ---------------------------
app.route(route="{*path}", methods=["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD"])(api)
app.event_grid_trigger(arg_name="event")(storage_events)
app.route(route=WEBHOOK_ROUTE, methods=["POST", "OPTIONS"], auth_level=func.AuthLevel.FUNCTION)(eventgrid_webhook)
