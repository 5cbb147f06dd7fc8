"""The storage-event function: S3 notifications, EventBridge events, or SQS batches of either → Redis.

The shape is detected from the event (:mod:`hera_sessions.events.aws`): an SQS batch is answered with
Powertools' partial batch response, a direct invocation raises on failure so Lambda retries it
(docs/storage-events.md).
"""

from __future__ import annotations

import warnings
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers
from aws_lambda_powertools.metrics import MetricUnit

from hera_sessions import telemetry
from hera_sessions.events import aws
from hera_sessions.runtime import default as runtime

logger = Logger(service="hera-sessions")
copy_config_to_registered_loggers(source_logger=logger, include={"hera_sessions"})

metrics = Metrics(service="hera-sessions")
if not metrics.namespace:  # POWERTOOLS_METRICS_NAMESPACE, when it is set
    metrics.namespace = "HeraSessions"
telemetry.use(lambda name, value: metrics.add_metric(name=name, unit=MetricUnit.Count, value=value))
# Most calls count nothing (a file listing, a batch of duplicates): that is not worth a warning per call.
warnings.filterwarnings("ignore", message="No application metrics to publish")


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return aws.handle(event, runtime.service().record_events)
