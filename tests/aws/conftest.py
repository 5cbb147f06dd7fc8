"""Fixtures for the AWS tests: buckets and queues on the moto server, and runtimes in S3 mode.

Every test gets its own bucket (a unique name), so tests share the moto server without seeing each other's
objects. The fixtures, from the bottom up:

- ``allowed_origins``: the CORS origins of the bucket and the API (override it in a module to change them);
- ``s3_client`` / ``sqs_client``: boto3 clients on moto, for the test's own checks and set-up;
- ``s3_bucket``: a fresh bucket with CORS rules from ``allowed_origins`` (a :class:`Bucket`);
- ``s3_queue``: an SQS queue that the bucket notifies of ``ObjectCreated:*`` / ``ObjectRemoved:*`` (a
  :class:`NotificationQueue`; ``receive()`` returns the messages as Lambda's SQS event);
- ``s3_env``: the settings of a Runtime in ``STORAGE_MODE=cloud CLOUD_STORAGE_TYPE=s3 SESSION_TYPE=redis`` mode on
  that bucket and the test Redis (add or change keys before building the runtime);
- ``s3_runtime``: a Runtime built from ``s3_env``; ``s3_api``: an :class:`Api` calling it with HTTP API v2 events;
- ``storage_events``: invokes the storage-event function (``functions/storage_events/app.py``) with an event,
  bound to ``s3_runtime``;
- ``send_upload``: sends a file as an upload ticket says (PUT, POST or S3 multipart) with ``requests``.
"""

from __future__ import annotations

import importlib.util
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import pytest

from hera_sessions.runtime import Runtime
from tests.apiclient import Api
from tests.conftest import ROOT, MotoServer, RedisServer
from tests.contract.test_storage_contract import send_upload as _send_upload
from tests.envs import service_env

REGION = "ap-northeast-1"
ACCOUNT = "123456789012"  # moto's default account
STORAGE_EVENTS_APP = ROOT / "functions" / "storage_events" / "app.py"


# -- AWS clients on moto -------------------------------------------------------------------------------------
@pytest.fixture
def allowed_origins() -> tuple[str, ...]:
    return ("http://localhost:5173",)


@pytest.fixture
def s3_client(aws_env: dict[str, str], moto_server: MotoServer) -> Any:
    import boto3

    return boto3.client("s3", region_name=REGION, endpoint_url=moto_server.url)


@pytest.fixture
def sqs_client(aws_env: dict[str, str], moto_server: MotoServer) -> Any:
    import boto3

    return boto3.client("sqs", region_name=REGION, endpoint_url=moto_server.url)


@dataclass
class Bucket:
    """A bucket on moto, with the test's own client (not the service's)."""

    name: str
    client: Any
    origins: tuple[str, ...] = ()

    def keys(self, prefix: str = "") -> list[str]:
        pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=self.name, Prefix=prefix)
        return [obj["Key"] for page in pages for obj in page.get("Contents", [])]

    def put(self, key: str, body: bytes, content_type: str = "image/png") -> str:
        """Store an object directly (no ticket, no checks); its ETag."""
        etag: str = self.client.put_object(Bucket=self.name, Key=key, Body=body, ContentType=content_type)["ETag"]
        return etag

    def get(self, key: str) -> bytes:
        body: bytes = self.client.get_object(Bucket=self.name, Key=key)["Body"].read()
        return body

    def multipart_uploads(self, prefix: str = "") -> list[str]:
        answer = self.client.list_multipart_uploads(Bucket=self.name, Prefix=prefix)
        return [u["UploadId"] for u in answer.get("Uploads", [])]


def cors_rules(origins: tuple[str, ...]) -> list[dict[str, Any]]:
    """The bucket CORS rules the SAM template sets: presigned PUT/POST/GET from the app's origins, ETag exposed."""
    return [
        {
            "AllowedOrigins": list(origins),
            "AllowedMethods": ["GET", "PUT", "POST", "HEAD"],
            "AllowedHeaders": ["*"],
            "ExposeHeaders": ["ETag"],
            "MaxAgeSeconds": 3000,
        }
    ]


@pytest.fixture
def s3_bucket(s3_client: Any, allowed_origins: tuple[str, ...]) -> Bucket:
    name = f"hera-test-{uuid.uuid4().hex[:16]}"
    s3_client.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": REGION})
    if allowed_origins:
        s3_client.put_bucket_cors(Bucket=name, CORSConfiguration={"CORSRules": cors_rules(allowed_origins)})
    return Bucket(name, s3_client, allowed_origins)


@dataclass
class NotificationQueue:
    """An SQS queue the bucket notifies; ``receive()`` reads it as Lambda's SQS event source would."""

    url: str
    arn: str
    client: Any
    received: list[dict[str, Any]] = field(default_factory=list)

    def receive(self, max_messages: int = 10) -> dict[str, Any]:
        """Every message waiting (deleted from the queue, as Lambda does after a batch), as one SQS event."""
        records: list[dict[str, Any]] = []
        while True:
            answer = self.client.receive_message(
                QueueUrl=self.url,
                MaxNumberOfMessages=max_messages,
                WaitTimeSeconds=0,
                AttributeNames=["All"],
                MessageAttributeNames=["All"],
            )
            messages = answer.get("Messages", [])
            if not messages:
                break
            for message in messages:
                records.append(sqs_record(message, self.arn))
                self.client.delete_message(QueueUrl=self.url, ReceiptHandle=message["ReceiptHandle"])
        self.received.extend(records)
        return {"Records": records}

    def bodies(self, event: dict[str, Any]) -> list[dict[str, Any]]:
        return [json.loads(record["body"]) for record in event["Records"]]


def sqs_record(message: dict[str, Any], queue_arn: str) -> dict[str, Any]:
    """One SQS message as Lambda hands it to a function (``Records[]`` of an SQS event)."""
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": message.get("Attributes", {}),
        "messageAttributes": message.get("MessageAttributes", {}),
        "md5OfBody": message["MD5OfBody"],
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": REGION,
    }


@pytest.fixture
def s3_queue(s3_bucket: Bucket, sqs_client: Any) -> NotificationQueue:
    name = f"hera-events-{uuid.uuid4().hex[:12]}"
    url = sqs_client.create_queue(QueueName=name)["QueueUrl"]
    arn = f"arn:aws:sqs:{REGION}:{ACCOUNT}:{name}"
    s3_bucket.client.put_bucket_notification_configuration(
        Bucket=s3_bucket.name,
        NotificationConfiguration={
            "QueueConfigurations": [
                {
                    "Id": "hera-sessions-events",
                    "QueueArn": arn,
                    "Events": ["s3:ObjectCreated:*", "s3:ObjectRemoved:*"],
                    "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": "sessions/"}]}},
                }
            ]
        },
    )
    return NotificationQueue(url, arn, sqs_client)


# -- the service in S3 mode ----------------------------------------------------------------------------------
@pytest.fixture
def s3_env(
    redis_server: RedisServer,
    moto_server: MotoServer,
    aws_env: dict[str, str],
    s3_bucket: Bucket,
    allowed_origins: tuple[str, ...],
) -> dict[str, str]:
    return service_env(
        "s3",
        "redis",
        bucket=s3_bucket.name,
        redis_url=redis_server.url,
        origins=allowed_origins,
        AWS_REGION=REGION,
        AWS_ENDPOINT_URL_S3=moto_server.url,
    )


@pytest.fixture
def s3_runtime(s3_env: dict[str, str], make_runtime: Callable[[dict[str, str]], Runtime]) -> Runtime:
    return make_runtime(s3_env)


@pytest.fixture
def s3_api(s3_runtime: Runtime) -> Api:
    return Api(s3_runtime)


# -- the storage-event function ------------------------------------------------------------------------------
@dataclass(frozen=True)
class LambdaContext:
    function_name: str = "hera-sessions-test-storage-events"
    function_version: str = "$LATEST"
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:hera-sessions-test-storage-events"
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    log_group_name: str = "/aws/lambda/hera-sessions-test-storage-events"
    log_stream_name: str = "test"

    def get_remaining_time_in_millis(self) -> int:
        return 60_000


def load_storage_events_app() -> ModuleType:
    """``functions/storage_events/app.py`` as a module (it is a Lambda entry point, not a package)."""
    spec = importlib.util.spec_from_file_location("hera_storage_events_app", STORAGE_EVENTS_APP)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def storage_events(s3_runtime: Runtime, monkeypatch: pytest.MonkeyPatch) -> Callable[[dict[str, Any]], Any]:
    """Invoke the storage-event function with an event, its process runtime being ``s3_runtime``."""
    app = load_storage_events_app()
    monkeypatch.setattr(app, "runtime", s3_runtime)
    return lambda event: app.lambda_handler(event, LambdaContext())


@pytest.fixture
def send_upload() -> Callable[..., Any]:
    return _send_upload
