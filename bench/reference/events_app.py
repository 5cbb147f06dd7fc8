"""The idiomatic Powertools storage-event function: ``BatchProcessor`` over SQS, one Redis round trip per event.

What a Lambda guide would write: the Powertools ``Logger`` and ``Metrics`` decorators, ``BatchProcessor`` with
``process_partial_response`` (a record handler per message), redis-py, one metric per call. Each created object
is written under the seed's layout (``session:{id}:meta:file:{path}``) with ``SET ... EX`` (value and expiry in
one command, so one round trip per event); a removed object is one ``DEL``. With S3 storage
(``STORAGE_MODE=cloud``, the cold-start figure) it first reads each new object's first bytes with boto3's
``get_object`` and checks they are an image, as ours does; the ingestion figure runs without S3 (ours reads local
files there). There is no ordering guard, no quota and no session check: the reference does less than ours, in
its favour.
"""

from __future__ import annotations

import json
import os
from typing import Any
from urllib.parse import unquote_plus

import redis
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

logger = Logger(service="reference")
metrics = Metrics(service="reference", namespace="Reference")
processor = BatchProcessor(event_type=EventType.SQS)
cache = redis.Redis.from_url(os.environ["REDIS_URL"], socket_timeout=1.0)
TTL = int(os.environ.get("SESSION_TTL", "86400"))
BUCKET = os.environ.get("S3_BUCKET_NAME", "")
if os.environ.get("STORAGE_MODE") == "cloud":
    import boto3

    s3: Any = boto3.client("s3", endpoint_url=os.environ.get("AWS_ENDPOINT_URL_S3"))
else:
    s3 = None
#: The first bytes of the image types the function takes.
MAGIC = (b"\x89PNG", b"\xff\xd8\xff", b"RIFF")


def is_image(key: str) -> bool:
    head: bytes = s3.get_object(Bucket=BUCKET, Key=key, Range="bytes=0-4095")["Body"].read()
    return head.startswith(MAGIC)


def record_handler(record: SQSRecord) -> None:
    for item in record.json_body.get("Records", []):
        obj = item["s3"]["object"]
        key = unquote_plus(obj["key"])
        prefix, session_id, path = key.split("/", 2)
        if prefix != "sessions":
            continue
        name = f"session:{session_id}:meta:file:{path}"
        if item["eventName"].startswith("ObjectCreated:"):
            if s3 is not None and not is_image(key):
                continue
            url = f"https://{item['s3']['bucket']['name']}.s3.amazonaws.com/{key}"
            value = {"url": url, "size": obj["size"], "etag": obj.get("eTag"), "sequencer": obj.get("sequencer")}
            cache.set(name, json.dumps(value), ex=TTL)
        elif item["eventName"].startswith("ObjectRemoved:"):
            cache.delete(name)


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    answer = dict(process_partial_response(event, record_handler, processor, context))
    metrics.add_metric(name="EventsRecorded", unit=MetricUnit.Count, value=len(event["Records"]))
    return answer
