"""gcp/main.py end to end: the v1 API as an HTTP function and GCS events as a CloudEvent function.

The whole flow on the GCS emulator and a real Redis, as on AWS: create a session, get a signed upload URL,
upload with requests, deliver the "finalized" CloudEvent (binary and structured content modes), list the file,
download it by its signed URL, erase the session. One test runs the real ``functions-framework`` server.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from hera_sessions.core import keys
from tests.conftest import SERVICE_KEY, free_port
from tests.gcp.conftest import MAIN, Bucket, Functions, ServiceAccount, cloud_event, verify_v4_url
from tests.images import png
from tests.servers import FunctionsFramework

PNG = png(size=4104)


@pytest.mark.parametrize("mode", ["binary", "structured"])
def test_the_whole_flow_by_signed_put(
    functions: Functions, gcs_bucket: Bucket, service_account: ServiceAccount, mode: str
) -> None:
    # GIVEN a session and an upload ticket for a PNG
    sid, token = functions.session()
    answer = functions.call(
        "POST",
        f"/v1/sessions/{sid}/uploads",
        {"path": "photos/user.png", "content_type": "image/png", "size": len(PNG)},
        token,
    )
    assert answer.status_code == 201, answer.get_data(as_text=True)
    ticket = answer.json
    assert (ticket["protocol"], ticket["method"], ticket["upload_id"], ticket["fields"]) == ("put", "PUT", None, {})
    assert ticket["key"] == keys.object_key(sid, "photos/user.png")
    verify_v4_url(ticket["url"], "PUT", ticket["headers"], service_account.public_key)

    # WHEN the browser uploads it and GCS sends the finalized event
    uploaded = requests.put(ticket["url"], headers=ticket["headers"], data=PNG, timeout=10)
    assert uploaded.status_code == 200, uploaded.text
    delivered = functions.send(cloud_event("finalized", gcs_bucket.resource(ticket["key"])), mode)
    assert delivered.status_code == 200, delivered.get_data(as_text=True)

    # THEN the file is listed, and its download URL returns the same bytes
    listed = functions.call("GET", f"/v1/sessions/{sid}/files", token=token)
    assert listed.status_code == 200
    (record,) = listed.json["files"]
    assert (record["path"], record["size"], record["content_type"]) == ("photos/user.png", len(PNG), "image/png")
    download = functions.call("GET", f"/v1/sessions/{sid}/files/photos/user.png", token=token)
    assert download.status_code == 200
    assert download.headers["Cache-Control"] == "no-store"
    fetched = requests.get(download.json["url"], timeout=10)
    assert fetched.status_code == 200
    assert fetched.content == PNG

    # AND erasing the session leaves nothing in the bucket
    assert functions.call("DELETE", f"/v1/sessions/{sid}", token=token).status_code == 204
    assert gcs_bucket.keys(keys.session_prefix(sid)) == []
    assert functions.call("GET", f"/v1/sessions/{sid}/files", token=token).status_code in (404, 410)


def test_erasing_a_session_deletes_every_object_under_its_prefix(functions: Functions, gcs_bucket: Bucket) -> None:
    sid, token = functions.session()
    other, _ = functions.session()
    for index in range(130):  # more than one batch of deletes
        gcs_bucket.put(keys.object_key(sid, f"pages/p{index:03d}.png"), png(size=104))
    gcs_bucket.put(keys.object_key(other, "a.png"), png(size=104))

    assert functions.call("DELETE", f"/v1/sessions/{sid}", token=token).status_code == 204

    assert gcs_bucket.keys(keys.session_prefix(sid)) == []
    assert gcs_bucket.keys(keys.session_prefix(other)) == [keys.object_key(other, "a.png")]


def test_the_api_function_answers_health_cors_and_bad_input_like_the_lambda(functions: Functions) -> None:
    health = functions.api.get("/health")
    assert health.status_code == 200
    assert health.json == {"status": "ok", "checks": {"metadata": "ok", "storage": "ok"}}

    preflight = functions.api.open(
        "/v1/sessions",
        method="OPTIONS",
        headers={"Origin": "http://localhost:5173", "Access-Control-Request-Method": "POST"},
    )
    assert preflight.status_code == 204
    assert preflight.headers["Access-Control-Allow-Origin"] == "http://localhost:5173"

    sid, token = functions.session()
    bad_json = functions.api.post(
        f"/v1/sessions/{sid}/uploads", data="{not json", headers={"Authorization": f"Bearer {token}"}
    )
    assert (bad_json.status_code, bad_json.json["error"]["code"]) == (400, "invalid_json")
    escaping = functions.api.get(
        f"/v1/sessions/{sid}/files/photos%2F..%2Fx.png", headers={"Authorization": f"Bearer {token}"}
    )
    assert (escaping.status_code, escaping.json["error"]["code"]) == (400, "invalid_path")
    assert functions.api.get("/v1/nothing").status_code == 404


def test_health_reports_unreachable_storage_without_waiting_for_retries(
    gcp_env: dict[str, str], make_runtime: Any
) -> None:
    runtime = make_runtime({**gcp_env, "STORAGE_EMULATOR_HOST": f"http://127.0.0.1:{free_port()}"})  # nobody there

    assert runtime.service().health() == {"metadata": "ok", "storage": "storage_unavailable"}


def test_a_post_ticket_carries_the_policy_fields(functions: Functions, service_account: ServiceAccount) -> None:
    sid, token = functions.session()

    answer = functions.call(
        "POST",
        f"/v1/sessions/{sid}/uploads",
        {"path": "a.png", "content_type": "image/png", "size": 10, "method": "POST"},
        token,
    )

    assert answer.status_code == 201
    assert (answer.json["protocol"], answer.json["method"], answer.json["headers"]) == ("post", "POST", {})
    assert answer.json["fields"]["key"] == keys.object_key(sid, "a.png")
    assert {"policy", "x-goog-signature", "x-goog-credential", "Content-Type"} <= set(answer.json["fields"])


# -- the real functions-framework server ---------------------------------------------------------------------
@pytest.fixture
def framework_server(gcp_env: dict[str, str], tmp_path: Path) -> Iterator[str]:
    """``functions-framework --target api --source gcp/main.py`` in its own process, in GCS mode."""
    with FunctionsFramework("api", MAIN, gcp_env, tmp_path) as server:
        yield server.url


def test_the_functions_framework_server_serves_the_api_over_http(
    framework_server: str, functions: Functions, gcs_bucket: Bucket
) -> None:
    base = framework_server
    assert requests.get(f"{base}/health", timeout=10).json()["status"] == "ok"

    created = requests.post(f"{base}/v1/sessions", headers={"Authorization": f"Bearer {SERVICE_KEY}"}, timeout=10)
    assert created.status_code == 201, created.text
    sid, token = created.json()["session_id"], created.json()["token"]
    auth = {"Authorization": f"Bearer {token}"}
    ticket = requests.post(
        f"{base}/v1/sessions/{sid}/uploads",
        json={"path": "photos/user.png", "content_type": "image/png", "size": len(PNG)},
        headers=auth,
        timeout=10,
    ).json()
    assert requests.put(ticket["url"], headers=ticket["headers"], data=PNG, timeout=10).status_code == 200
    assert functions.send(cloud_event("finalized", gcs_bucket.resource(ticket["key"]))).status_code == 200

    listed = requests.get(f"{base}/v1/sessions/{sid}/files", headers=auth, timeout=10)
    assert [f["path"] for f in listed.json()["files"]] == ["photos/user.png"]
    redirect = requests.get(
        f"{base}/v1/sessions/{sid}/files/photos/user.png?redirect=true", headers=auth, allow_redirects=False, timeout=10
    )
    assert redirect.status_code == 302
    assert requests.get(redirect.headers["Location"], timeout=10).content == PNG
    missing = requests.get(f"{base}/v1/sessions/{sid}/files/photos/none.png", headers=auth, timeout=10)
    assert (missing.status_code, missing.json()["error"]["code"]) == (404, "file_not_found")


def test_the_real_server_fails_an_unreadable_event_with_one_clear_log_line(
    gcp_env: dict[str, str], gcs_bucket: Bucket, tmp_path: Path
) -> None:
    # GIVEN functions-framework serving storage_events, its stdout (Cloud Logging's input) kept
    with FunctionsFramework("storage_events", MAIN, gcp_env, tmp_path) as server:
        out, port = server.log, server.port
        # WHEN a finalized event whose size is "²" (a digit to str.isdigit(), not to int()) arrives
        resource = gcs_bucket.put(keys.object_key(keys.new_session_id(), "a.png"), png(size=104))
        event = cloud_event("finalized", {**resource, "size": "²"})
        headers = {f"ce-{k}": str(v) for k, v in event.items() if k not in ("data", "datacontenttype")}
        answer = requests.post(
            f"http://127.0.0.1:{port}/",
            data=json.dumps(event["data"]),
            headers={**headers, "Content-Type": "application/json"},
            timeout=10,
        )

    # THEN it fails (Eventarc retries it, then its dead-letter topic keeps it) with the project's error only
    assert answer.status_code == 500
    lines = [json.loads(line) for line in out.read_text().splitlines() if line.startswith("{")]
    (line,) = [entry for entry in lines if entry["severity"] == "ERROR"]
    assert line["message"].startswith("storage event unreadable")
    assert line["reason"] == "The size is not a string of decimal digits: '²'."
    assert line["event_id"] == event["id"]
