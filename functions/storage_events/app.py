"""The storage-event function: S3 notifications, EventBridge events, or SQS batches of either → Redis.

The shape is detected from the event (:mod:`hera_sessions.runtimes.aws.events`): an SQS batch is answered with
Powertools' partial batch response, a direct invocation raises on failure so Lambda retries it
(docs/storage-events.md).
"""

from __future__ import annotations

from typing import Any

from hera_sessions.runtime import default as runtime
from hera_sessions.runtimes.aws import events as aws
from hera_sessions.runtimes.aws.observability import instrumented, observability

logger, metrics = observability()
runtime.prepare_snapshot()


@instrumented(logger, metrics)
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return aws.handle(event, runtime.service().record_events)
