"""What every Lambda function of hera-sessions sets up once per cold start: Powertools logging and metrics.

The core logs through the standard ``hera_sessions`` logger and counts through :mod:`hera_sessions.core.telemetry`;
here both are routed to Powertools (structured JSON logs, CloudWatch EMF metrics).
"""

from __future__ import annotations

import warnings

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers
from aws_lambda_powertools.metrics import MetricUnit

from hera_sessions.core import telemetry

SERVICE = "hera-sessions"
NAMESPACE = "HeraSessions"


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
