"""The obvious storage-event function: for each SQS message, for each S3 record, one Redis round trip.

Each created object is written under the seed's layout (``session:{id}:meta:file:{path}``) with ``SET ... EX``
(value and expiry in one command, so one round trip per event); a removed object is one ``DEL``. A message that
fails is reported in ``batchItemFailures``. There is no ordering guard, no quota and no session check: the
reference does less than ours, in its favour.
"""

from __future__ import annotations

import json
import os
from typing import Any
from urllib.parse import unquote_plus

import redis
from aws_lambda_powertools import Logger

logger = Logger(service="reference")
cache = redis.Redis.from_url(os.environ["REDIS_URL"], socket_timeout=1.0)
TTL = int(os.environ.get("SESSION_TTL", "86400"))


def record(notice: dict[str, Any]) -> None:
    for item in notice.get("Records", []):
        obj = item["s3"]["object"]
        key = unquote_plus(obj["key"])
        prefix, session_id, path = key.split("/", 2)
        if prefix != "sessions":
            continue
        name = f"session:{session_id}:meta:file:{path}"
        if item["eventName"].startswith("ObjectCreated:"):
            url = f"https://{item['s3']['bucket']['name']}.s3.amazonaws.com/{key}"
            value = {"url": url, "size": obj["size"], "etag": obj.get("eTag"), "sequencer": obj.get("sequencer")}
            cache.set(name, json.dumps(value), ex=TTL)
        elif item["eventName"].startswith("ObjectRemoved:"):
            cache.delete(name)


@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    failures = []
    for message in event["Records"]:
        try:
            record(json.loads(message["body"]))
        except Exception:
            logger.exception("message failed", message_id=message["messageId"])
            failures.append({"itemIdentifier": message["messageId"]})
    return {"batchItemFailures": failures}
