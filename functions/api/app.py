"""The API Lambda function: API Gateway HTTP API (payload v2) → the core's routing table."""

from __future__ import annotations

from typing import Any

from hera_sessions.runtime import default as runtime
from hera_sessions.runtimes.aws.observability import instrumented, observability

logger, metrics = observability()
runtime.prepare_snapshot()


@instrumented(logger, metrics)
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return runtime.handle_http(event, context)
