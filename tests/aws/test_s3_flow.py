"""The whole flow on AWS's parts, over HTTP: API → presigned upload to S3 → S3 → SQS → storage-event function →
Redis → listing and download → erasure, with moto's S3 and SQS and a real Redis.

Uploads go by PUT, by form POST and by multipart (UPLOAD_MAX_BYTES raised above MULTIPART_THRESHOLD_BYTES). The
bucket notifies an SQS queue of ``s3:ObjectCreated:*`` and ``s3:ObjectRemoved:*``; the messages are read from
the queue and handed to the storage-event function as Lambda's SQS event source would.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import redis
import requests

from hera_sessions.config import MiB
from tests.apiclient import Api
from tests.aws.conftest import Bucket, NotificationQueue
from tests.conftest import RedisServer
from tests.contract.test_storage_contract import send_upload
from tests.images import jpeg, png

PNG = png(size=10248)
JPEG = jpeg(width=6, height=5)
BIG = png(size=11 * MiB)  # 11 MiB: two parts of 8 MiB and 3 MiB


@pytest.fixture
def s3_env(s3_env: dict[str, str]) -> dict[str, str]:
    return {
        **s3_env,
        "UPLOAD_MAX_BYTES": str(12 * MiB),
        "MULTIPART_THRESHOLD_BYTES": str(5 * MiB),  # the smallest threshold the settings allow
        "SESSION_MAX_BYTES": str(100 * MiB),
    }


def deliver(queue: NotificationQueue, storage_events: Callable[[dict[str, Any]], Any]) -> list[dict[str, Any]]:
    """Hand every message waiting in the queue to the storage-event function; the message bodies."""
    event = queue.receive()
    if event["Records"]:
        answer = storage_events(event)
        assert answer == {"batchItemFailures": []}
    return queue.bodies(event)


def session_keys(redis_server: RedisServer, sid: str) -> list[str]:
    client = redis.Redis.from_url(redis_server.url)
    try:
        return sorted(k.decode() for k in client.scan_iter(match=f"session:{{{sid}}}*"))
    finally:
        client.close()


def test_upload_list_download_and_erase(
    s3_api: Api,
    s3_bucket: Bucket,
    s3_queue: NotificationQueue,
    storage_events: Callable[[dict[str, Any]], Any],
    redis_server: RedisServer,
) -> None:
    # GIVEN a session (created with the service key), and the queue drained of S3's test event
    deliver(s3_queue, storage_events)
    sid, token = s3_api.session()

    # WHEN the client uploads by PUT, by POST and by multipart, exactly as the tickets say
    put = s3_api.ticket(sid, token, "photos/user.png", "image/png", len(PNG))
    post = s3_api.ticket(sid, token, "photos/cat.jpg", "image/jpeg", len(JPEG), method="POST")
    large = s3_api.ticket(sid, token, "scans/big.png", "image/png", len(BIG))
    assert (put["protocol"], post["protocol"], large["protocol"]) == ("put", "post", "s3-multipart")
    assert send_upload(put, PNG).ok
    assert send_upload(post, JPEG).ok
    parts = send_upload(large, BIG)
    assert parts.ok
    done = s3_api("POST", f"/v1/sessions/{sid}/uploads/{large['upload_id']}/complete", {"parts": parts.parts}, token)
    assert done.status == 200, done.body

    # AND S3's notifications reach the storage-event function through SQS
    bodies = deliver(s3_queue, storage_events)
    names = {r["eventName"] for body in bodies for r in body.get("Records", [])}
    # (moto also sends an ObjectCreated:Put for a completed multipart upload: a duplicate, harmless)
    assert names == {"ObjectCreated:CompleteMultipartUpload", "ObjectCreated:Post", "ObjectCreated:Put"}

    # THEN the files are listed with their sizes and types
    listed = s3_api("GET", f"/v1/sessions/{sid}/files", token=token)
    assert listed.status == 200
    files = {f["path"]: (f["size"], f["content_type"]) for f in listed.body["files"]}
    assert files == {
        "photos/user.png": (len(PNG), "image/png"),
        "photos/cat.jpg": (len(JPEG), "image/jpeg"),
        "scans/big.png": (len(BIG), "image/png"),
    }

    # AND each download URL returns the same bytes, with the type
    for path, body, ctype in (
        ("photos/user.png", PNG, "image/png"),
        ("photos/cat.jpg", JPEG, "image/jpeg"),
        ("scans/big.png", BIG, "image/png"),
    ):
        answer = s3_api("GET", f"/v1/sessions/{sid}/files/{path}", token=token)
        assert answer.status == 200, answer.body
        response = requests.get(answer.body["url"], timeout=30)
        assert response.status_code == 200
        assert response.content == body
        assert response.headers["Content-Type"] == ctype

    # WHEN the session is erased (and the removal notifications delivered)
    assert s3_api("DELETE", f"/v1/sessions/{sid}", token=token).status == 204
    removed = deliver(s3_queue, storage_events)

    # THEN nothing is left in S3, and in Redis only the erase marker
    assert len(removed) == 3
    assert s3_bucket.keys(f"sessions/{sid}/") == []
    assert s3_bucket.multipart_uploads(f"sessions/{sid}/") == []
    assert session_keys(redis_server, sid) == [f"session:{{{sid}}}:erased"]
    gone = s3_api("GET", f"/v1/sessions/{sid}/files", token=token)
    assert (gone.status, gone.code) == (410, "session_erased")


def test_an_upload_made_after_the_erasure_is_deleted_and_not_recorded(
    s3_api: Api,
    s3_bucket: Bucket,
    s3_queue: NotificationQueue,
    storage_events: Callable[[dict[str, Any]], Any],
    redis_server: RedisServer,
) -> None:
    # GIVEN an upload URL issued before the session was erased
    deliver(s3_queue, storage_events)
    sid, token = s3_api.session()
    ticket = s3_api.ticket(sid, token, "photos/late.png", "image/png", len(PNG))
    assert s3_api("DELETE", f"/v1/sessions/{sid}", token=token).status == 204

    # WHEN the client still uses it (the URL has not expired yet), and S3's event arrives
    assert send_upload(ticket, PNG).ok
    assert s3_bucket.keys(f"sessions/{sid}/") == ["sessions/" + sid + "/photos/late.png"]
    deliver(s3_queue, storage_events)

    # THEN the function deleted the object, and recorded nothing
    assert s3_bucket.keys(f"sessions/{sid}/") == []
    assert session_keys(redis_server, sid) == [f"session:{{{sid}}}:erased"]
    # (and the removal it caused is itself a no-op when delivered)
    deliver(s3_queue, storage_events)
    assert session_keys(redis_server, sid) == [f"session:{{{sid}}}:erased"]


def test_deleting_one_file_removes_it_from_the_listing(
    s3_api: Api,
    s3_bucket: Bucket,
    s3_queue: NotificationQueue,
    storage_events: Callable[[dict[str, Any]], Any],
) -> None:
    deliver(s3_queue, storage_events)
    sid, token = s3_api.session()
    for path in ("a.png", "b.png"):
        assert send_upload(s3_api.ticket(sid, token, path, "image/png", len(PNG)), PNG).ok
    deliver(s3_queue, storage_events)

    assert s3_api("DELETE", f"/v1/sessions/{sid}/files/a.png", token=token).status == 204
    deliver(s3_queue, storage_events)

    listed = s3_api("GET", f"/v1/sessions/{sid}/files", token=token)
    assert [f["path"] for f in listed.body["files"]] == ["b.png"]
    assert s3_bucket.keys(f"sessions/{sid}/") == [f"sessions/{sid}/b.png"]
