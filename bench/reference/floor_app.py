"""The floor under figure 1: what any API function built on Powertools and redis-py pays before doing anything.

A Powertools resolver with the one route, the Powertools logger, a redis-py client and one Redis read: no boto3,
no hera-sessions. Its cold start is the least an implementation that keeps Powertools and redis-py can reach,
so ``floor / reference`` is the best ratio figure 1 can show without replacing either library.
"""

from __future__ import annotations

import json
import os
from typing import Any

import redis
from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response

logger = Logger(service="floor")
app = APIGatewayHttpResolver()
cache = redis.Redis.from_url(os.environ["REDIS_URL"], socket_timeout=1.0)


@app.post("/v1/sessions/<session_id>/uploads")
def create_upload(session_id: str) -> Response[Any]:
    fields = cache.hgetall(f"session:{{{session_id}}}")
    return Response(201, "application/json", json.dumps({"fields": len(fields), "url": "https://example.invalid/"}))


@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return app.resolve(event, context)
