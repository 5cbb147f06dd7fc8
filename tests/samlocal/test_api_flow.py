"""The API's core flow through `sam local start-api` (API Gateway's $default route as SAM emulates it), the
storage event through `sam local start-lambda`: both functions in Lambda containers, S3 on moto, Redis here.

A browser-like client: creates a session, gets an upload ticket, sends the bytes to S3 itself (the presigned
URL the container signed for moto), the bucket notifies an SQS queue, and its messages go to the storage-event
function as Lambda's SQS trigger hands them; then lists, downloads, writes and reads a document, erases.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import unquote_plus

import requests

from tests.aws.conftest import NotificationQueue
from tests.contract.test_storage_contract import send_upload
from tests.images import png
from tests.samlocal.conftest import BUCKET, ORIGIN, SERVICE_KEY


def test_the_core_flow_through_start_api(api_url: str, lambda_client: Any, queue: NotificationQueue, s3: Any) -> None:
    http = requests.Session()

    def call(method: str, path: str, token: str, body: Any = None) -> requests.Response:
        headers = {"authorization": f"Bearer {token}", "origin": ORIGIN}
        data = json.dumps(body) if body is not None else None
        if data is not None:
            headers["content-type"] = "application/json"
        return http.request(method, f"{api_url}{path}", headers=headers, data=data, timeout=120)

    # a session, then a ticket for one photo
    created = call("POST", "/v1/sessions", SERVICE_KEY)
    assert created.status_code == 201, created.text
    sid, token = created.json()["session_id"], created.json()["token"]
    print(f"start-api POST /v1/sessions -> {created.status_code}")
    photo = png(size=2056)  # a real PNG: the storage-event function reads it before recording
    ticket = call(
        "POST", f"/v1/sessions/{sid}/uploads", token, {"path": "photos/user.png", "content_type": "image/png",
                                                        "size": len(photo), "method": "PUT"}
    )  # fmt: skip
    assert ticket.status_code == 201, ticket.text
    print(f"start-api POST /v1/sessions/{{sid}}/uploads -> {ticket.status_code}")

    # the bytes straight to S3 (moto) with the URL the container signed
    sent = send_upload(ticket.json(), photo)
    assert [r.status_code for r in sent.responses] == [200], [r.text for r in sent.responses]

    # the storage event: S3 -> SQS -> the storage-event function in its container
    event = queue.receive()  # moto's s3:TestEvent (from configuring the notification) too: the function skips it
    keys = [unquote_plus(b["Records"][0]["s3"]["object"]["key"]) for b in queue.bodies(event) if "Records" in b]
    assert keys == [f"sessions/{sid}/photos/user.png"]
    invoked = lambda_client.invoke(FunctionName="StorageEventsFunction", Payload=json.dumps(event).encode())
    answer = json.loads(invoked["Payload"].read())
    print(f"start-lambda invoke StorageEventsFunction (SQS batch of 1) -> {answer}")
    assert invoked["StatusCode"] == 200 and "FunctionError" not in invoked, answer
    assert answer == {"batchItemFailures": []}

    # listed, then downloaded through the signed URL
    listed = call("GET", f"/v1/sessions/{sid}/files", token)
    assert listed.status_code == 200, listed.text
    assert [(f["path"], f["size"]) for f in listed.json()["files"]] == [("photos/user.png", len(photo))]
    got = call("GET", f"/v1/sessions/{sid}/files/photos/user.png", token)
    assert got.status_code == 200, got.text
    assert requests.get(got.json()["url"], timeout=30).content == photo

    # a document written and read back
    profile = {"name": "Ada", "children": 2}
    assert call("PUT", f"/v1/sessions/{sid}/meta/user_profile", token, profile).status_code == 204
    read = call("GET", f"/v1/sessions/{sid}/meta/user_profile", token)
    assert (read.status_code, read.json()) == (200, profile)

    # a CORS preflight from the demo page's origin
    preflight = http.options(
        f"{api_url}/v1/sessions/{sid}/uploads",
        headers={"origin": ORIGIN, "access-control-request-method": "POST",
                 "access-control-request-headers": "authorization,content-type"},
        timeout=60,
    )  # fmt: skip
    print(f"start-api OPTIONS (preflight) -> {preflight.status_code} {dict(preflight.headers)}")
    assert preflight.status_code in (200, 204), preflight.text
    assert preflight.headers.get("access-control-allow-origin") == ORIGIN

    # erased: the objects go, the session answers 410 from then on
    erased = call("DELETE", f"/v1/sessions/{sid}", token)
    assert erased.status_code == 204, erased.text
    assert s3.list_objects_v2(Bucket=BUCKET, Prefix=f"sessions/{sid}/").get("KeyCount", 0) == 0
    after = call("GET", f"/v1/sessions/{sid}/files", token)
    assert (after.status_code, after.json()["error"]["code"]) == (410, "session_erased")
