"""Cloud Functions (gen2) entry points: ``api`` (HTTP) and ``storage_events`` (GCS object CloudEvents).

Both are thin adapters over the ``hera_sessions`` package: in the repo it is the project's own install, in
``gcp/dist`` the copy that ``make gcp-package`` puts beside this file.
"""

from __future__ import annotations

import json
import logging
import sys
from typing import Any

import flask
import functions_framework
from cloudevents.http import CloudEvent

from hera_sessions.core.events import UnreadableEventError
from hera_sessions.core.service import results_summary
from hera_sessions.http.event import answer_parts, http_api_event
from hera_sessions.runtime import Runtime
from hera_sessions.runtimes.gcp import events as gcs

runtime = Runtime()  # settings, Redis and GCS clients: built on first use, once per instance
logger = logging.getLogger("hera_sessions.gcp")


class JsonLines(logging.Formatter):
    """One JSON object a line on stdout: Cloud Logging takes severity, message and the extra fields from it."""

    standard = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}

    def format(self, record: logging.LogRecord) -> str:
        entry = {"severity": record.levelname, "message": record.getMessage(), "logger": record.name}
        entry |= {k: v for k, v in vars(record).items() if k not in self.standard}
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


_package_logger = logging.getLogger("hera_sessions")
if not any(h.get_name() == "cloud-logging" for h in _package_logger.handlers):
    _handler = logging.StreamHandler(sys.stdout)
    _handler.set_name("cloud-logging")
    _handler.setFormatter(JsonLines())
    _package_logger.addHandler(_handler)
    _package_logger.setLevel(logging.INFO)


def _target(request: flask.Request) -> str:
    """The request target as the client sent it: the path still percent-encoded (the API decodes it once)."""
    raw = request.environ.get("RAW_URI") or request.environ.get("REQUEST_URI") or request.path
    query = request.query_string.decode("latin-1")
    return f"{raw.split('?', 1)[0]}?{query}" if query else raw.split("?", 1)[0]


@functions_framework.http
def api(request: flask.Request) -> flask.Response:
    """The v1 API: the request becomes an HTTP API v2 event for the same routing table as on AWS."""
    event = http_api_event(
        request.method, _target(request), dict(request.headers.items()), request.get_data(), request.remote_addr or ""
    )
    answer: dict[str, Any] = runtime.handle_http(event)
    status, headers, body = answer_parts(answer)
    response = flask.Response(body, status=status)
    for name, value in headers.items():
        response.headers[name] = value
    for cookie in answer.get("cookies") or []:
        response.headers.add("Set-Cookie", cookie)
    return response


@functions_framework.cloud_event
def storage_events(cloud_event: CloudEvent) -> None:
    """Raise to have the event delivered again: Redis or GCS unreachable (retried), or an event that cannot be read
    (logged with its reason, changing nothing; Eventarc retries it, then its dead-letter topic keeps it).
    Returning acknowledges it: recorded, or not ours (another bucket, an event type with nothing to record).
    """
    service = runtime.service()
    attributes = cloud_event.get_attributes()
    try:
        events = gcs.parse(attributes, cloud_event.get_data(), service.settings.gcs_bucket_name)
    except UnreadableEventError as exc:
        logger.error(
            "storage event unreadable, failed for the dead-letter topic: %s",
            exc.message,
            extra={"event_id": attributes.get("id"), "subject": attributes.get("subject"), "reason": exc.message},
        )
        raise
    results = service.record_events(events)  # MetadataUnavailableError / StorageUnavailableError: retried
    logger.info(
        "storage event handled",
        extra={"event_id": attributes.get("id"), "subject": attributes.get("subject"), **results_summary(results)},
    )
