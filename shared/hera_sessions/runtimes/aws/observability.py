"""What every Lambda function of hera-sessions sets up once per cold start: Powertools logging and metrics.

The core logs through the standard ``hera_sessions`` logger and counts through :mod:`hera_sessions.core.telemetry`;
here both are routed to Powertools (structured JSON logs, CloudWatch EMF metrics).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers
from aws_lambda_powertools.metrics import MetricUnit

from hera_sessions.core import telemetry

SERVICE = "hera-sessions"
NAMESPACE = "HeraSessions"

Handler = Callable[[Any, Any], Any]


def observability() -> tuple[Logger, Metrics]:
    logger = Logger(service=SERVICE)
    copy_config_to_registered_loggers(source_logger=logger, include={"hera_sessions"})
    metrics = Metrics(service=SERVICE)
    if not metrics.namespace:  # POWERTOOLS_METRICS_NAMESPACE, when it is set
        metrics.namespace = NAMESPACE
    telemetry.use(lambda name, value: metrics.add_metric(name=name, unit=MetricUnit.Count, value=value))
    # Most calls count nothing (a file listing, a batch of duplicates): that is not worth a warning per call.
    warnings.filterwarnings("ignore", message="No application metrics to publish")
    return logger, metrics


def instrumented(logger: Logger, metrics: Metrics) -> Callable[[Handler], Handler]:
    """What every function's handler wears: the Lambda context on its log lines, its metrics flushed as EMF.

    No ``clear_state``: nothing appends log keys per request (lines carry theirs as ``extra``) and each call
    replaces the context keys it sets, so clearing them first would only cost every call ~10 µs."""

    def wrap(handler: Handler) -> Handler:
        return logger.inject_lambda_context(metrics.log_metrics(handler))

    return wrap
