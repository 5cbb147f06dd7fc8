"""The API Lambda function: API Gateway HTTP API (payload v2) → the core's routing table."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers

from hera_sessions.runtime import default as runtime

logger = Logger(service="hera-sessions")
copy_config_to_registered_loggers(source_logger=logger, include={"hera_sessions"})


@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return runtime.handle_http(event, context)
