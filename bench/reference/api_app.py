"""The idiomatic Powertools API function: ``POST /v1/sessions/{id}/uploads`` and ``GET .../files/{path}``.

What a Lambda guide would write: the Powertools ``Logger`` and ``Metrics`` decorators, an
``APIGatewayHttpResolver``, a boto3 S3 client with ``generate_presigned_url``, a redis-py client, all built at
import, and one metric per call. The routes do the same work as hera-sessions' routes: check the session token,
validate the request, read the session (it must exist) and its files for the quota in one Redis round trip, then
sign; a download reads the file's record and signs a GET. It does less than ours in one respect, in its favour:
it reserves nothing (ours records an upload ticket atomically in the same round trip).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import re
import time
from datetime import UTC, datetime
from typing import Any

import boto3
import redis
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.metrics import MetricUnit
from botocore.config import Config

logger = Logger(service="reference")
metrics = Metrics(service="reference", namespace="Reference")
app = APIGatewayHttpResolver()
s3 = boto3.client("s3", region_name=os.environ["AWS_REGION"], config=Config(signature_version="s3v4"))
cache = redis.Redis.from_url(os.environ["REDIS_URL"], socket_timeout=1.0)

BUCKET = os.environ["S3_BUCKET_NAME"]
SECRET = os.environ["TOKEN_SECRET"].encode()
SERVICE_KEYS = {k.strip().encode() for k in os.environ.get("SERVICE_API_KEYS", "").split(",") if k.strip()}
ALLOWED = {"image/png": (".png",), "image/jpeg": (".jpg", ".jpeg"), "image/webp": (".webp",), "image/heic": (".heic",)}
MAX_FILES, MAX_BYTES, MAX_UPLOAD, URL_TTL, DOWNLOAD_TTL = 50, 200 * 1024 * 1024, 10 * 1024 * 1024, 300, 900
PATH = re.compile(r"[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+)*")


def _error(status: int, code: str) -> Response[Any]:
    return Response(status, "application/json", json.dumps({"error": {"code": code, "message": code}}))


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(int(ts), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def authorized(session_id: str, header: str | None) -> bool:
    """``Bearer v1.<kid>.<HMAC-SHA256 of the session id>`` (the same token format as hera-sessions) or a key."""
    presented = (header or "").removeprefix("Bearer ").strip()
    if any(hmac.compare_digest(presented.encode(), key) for key in SERVICE_KEYS):
        return True
    mac = hmac.new(SECRET, b"hera-session:" + session_id.encode(), hashlib.sha256).digest()
    return hmac.compare_digest(presented.rpartition(".")[2].encode(), _b64(mac).encode())


def valid_path(path: str) -> bool:
    return bool(PATH.fullmatch(path)) and ".." not in path.split("/")


@app.post("/v1/sessions/<session_id>/uploads")
def create_upload(session_id: str) -> Response[Any]:
    if not authorized(session_id, app.current_event.headers.get("authorization")):
        return _error(403, "invalid_token")
    body = app.current_event.json_body
    path, content_type, size = body["path"], body["content_type"], body["size"]
    if not valid_path(path):
        return _error(400, "invalid_path")
    if content_type not in ALLOWED or not path.lower().endswith(ALLOWED[content_type]):
        return _error(415, "unsupported_type")
    if not isinstance(size, int) or not 0 < size <= MAX_UPLOAD:
        return _error(413, "file_too_large")
    fields: dict[bytes, bytes] = cache.hgetall(f"session:{{{session_id}}}")  # type: ignore[assignment]
    if not fields:  # the session and its files came in one round trip
        return _error(404, "session_not_found")
    files = [json.loads(v) for k, v in fields.items() if k.startswith(b"f:")]
    sizes = [f["s"] for f in files if not f.get("d")]
    if len(sizes) + 1 > MAX_FILES or sum(sizes) + size > MAX_BYTES:
        return _error(409, "quota_exceeded")
    key = f"sessions/{session_id}/{path}"
    url = s3.generate_presigned_url(
        "put_object",
        Params={"Bucket": BUCKET, "Key": key, "ContentType": content_type, "ContentLength": size},
        ExpiresIn=URL_TTL,
    )
    metrics.add_metric(name="UploadsIssued", unit=MetricUnit.Count, value=1)
    ticket = {"method": "PUT", "url": url, "headers": {"Content-Type": content_type}, "key": key}
    return Response(201, "application/json", json.dumps({**ticket, "expires_at": _iso(time.time() + URL_TTL)}))


@app.get("/v1/sessions/<session_id>/files/.+")
def get_file(session_id: str) -> Response[Any]:
    if not authorized(session_id, app.current_event.headers.get("authorization")):
        return _error(403, "invalid_token")
    path = app.current_event.path.split(f"/v1/sessions/{session_id}/files/", 1)[1]
    if not valid_path(path):
        return _error(400, "invalid_path")
    raw = cache.hget(f"session:{{{session_id}}}", f"f:{path}")
    if raw is None:
        return _error(404, "file_not_found")
    record = json.loads(raw)
    url = s3.generate_presigned_url(
        "get_object",
        Params={"Bucket": BUCKET, "Key": f"sessions/{session_id}/{path}", "ResponseContentType": record["t"]},
        ExpiresIn=DOWNLOAD_TTL,
    )
    metrics.add_metric(name="DownloadsSigned", unit=MetricUnit.Count, value=1)
    answer = {"url": url, "expires_at": _iso(time.time() + DOWNLOAD_TTL), "path": path, "size": record["s"]}
    return Response(200, "application/json", json.dumps(answer))


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return app.resolve(event, context)
