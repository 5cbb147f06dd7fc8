"""The API Lambda function: API Gateway HTTP API (payload v2) → the core's routing table."""

from __future__ import annotations

from typing import Any

from hera_sessions.runtime import default as runtime
from hera_sessions.runtimes.aws.observability import observability

logger, metrics = observability()
runtime.prepare_snapshot()


# No clear_state: nothing appends keys per request (log lines carry theirs as `extra`), and each call replaces
# the context keys it sets; clearing them first would cost every call ~10 µs (docs/performance.md).
@logger.inject_lambda_context
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return runtime.handle_http(event, context)
