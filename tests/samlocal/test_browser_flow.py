"""The demo page in Chromium against `sam local start-api`: the photo goes straight from the browser to S3 (moto)
with the presigned URL the API function signed in its Lambda container, and the storage-event function (through
`sam local start-lambda`) records it while the page waits.

The page (``web/``) is served by a static server on loopback at ``Local.page_origin``, the one origin (with the
conftest's ``ORIGIN``) that the API function's ``CORS_ALLOWED_ORIGINS`` and the bucket's CORS rules allow. SAM's
local HTTP API passes CORS preflights to the function, which answers them itself (docs/aws.md).
"""

from __future__ import annotations

import json
import shutil
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests
from playwright.sync_api import BrowserContext, expect

from tests.aws.conftest import NotificationQueue
from tests.browser.conftest import WAIT_MS, DemoPage, Photo, hand_over, png, polling
from tests.conftest import ROOT
from tests.samlocal.conftest import BUCKET, SERVICE_KEY, Local
from tests.servers import ServerProcess

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def page_url(local: Local) -> Iterator[str]:
    """The demo page as the local server lays it out (``/`` the page, ``/web/`` its files), served by
    ``python -m http.server`` on loopback at the origin the conftest allowed."""
    site = local.workdir / "site"
    site.mkdir()
    shutil.copy(ROOT / "web" / "index.html", site / "index.html")
    (site / "web").symlink_to(ROOT / "web")
    argv = [sys.executable, "-m", "http.server", "--bind", "127.0.0.1", "--directory", str(site), str(local.page_port)]
    with ServerProcess(argv, port=local.page_port, name="demo-page", logs=local.workdir) as server:
        assert server.url == local.page_origin
        yield server.url


def invoke_storage_events(lambda_client: Any, event: dict[str, Any]) -> Any:
    """The storage-event function in its container (start-lambda), as Lambda's trigger would hand it ``event``."""
    invoked = lambda_client.invoke(FunctionName="StorageEventsFunction", Payload=json.dumps(event).encode())
    answer = json.loads(invoked["Payload"].read())
    assert invoked["StatusCode"] == 200 and "FunctionError" not in invoked, answer
    return answer


@pytest.fixture
def recorder(queue: NotificationQueue, lambda_client: Any) -> Iterator[list[str]]:
    """The storage events delivered in the background: the bucket's queue polled, each batch handed to the
    function; a batch with failures lands in the list. The function's container is started (warm) first."""
    warm = json.loads((ROOT / "events" / "s3-test-event.json").read_text())
    invoke_storage_events(lambda_client, warm)  # the cold start, before the page waits (~5 s) for a record

    def step(problems: list[str]) -> None:
        event = queue.receive()
        if event["Records"]:
            answer = invoke_storage_events(lambda_client, event)
            if answer and answer.get("batchItemFailures"):
                problems.append(f"failed records: {answer['batchItemFailures']}")

    with polling(step, "sqs-to-start-lambda") as problems:
        yield problems


def test_the_page_uploads_straight_to_s3_through_start_api(
    local: Local,
    api_url: str,
    page_url: str,
    s3: Any,
    recorder: list[str],
    context: BrowserContext,
    demo: Callable[[str], DemoPage],
    tmp_path: Any,
) -> None:
    # GIVEN a session made by the app's backend (its service key) through start-api, handed to the page,
    # which is served from an allowed origin and pointed at the start-api URL
    created = requests.post(f"{api_url}/v1/sessions", headers={"Authorization": f"Bearer {SERVICE_KEY}"}, timeout=120)
    assert created.status_code == 201, created.text
    session = created.json()
    hand_over(context, session, base_url=api_url)
    ui = demo(api_url).open(f"{page_url}/?method=PUT")
    expect(ui.page.get_by_test_id("session-id")).to_have_text(session["session_id"])
    photo = Photo("Sunrise.png", png(48, 32, lambda x, y: (255, 120 + 4 * y, 4 * x)), 48)
    prefix = f"sessions/{session['session_id']}/"

    # WHEN a person picks the photo
    requested: list[tuple[str, str]] = []
    ui.page.on("request", lambda r: requested.append((r.method, r.url)))
    ui.pick(photo)

    # THEN Chromium sends the bytes to moto with the presigned URL the container signed (a cross-origin PUT: the
    # bucket's CORS), the storage-event function records it, and the page shows it recorded
    assert ui.wait_for_uploads(1) == [(photo.name, "done")]
    (path,) = ui.paths().values()
    puts = [url for method, url in requested if method == "PUT"]
    assert [url.split("?")[0] for url in puts] == [f"{local.moto_url}/{BUCKET}/{prefix}{path}"], puts
    print(f"Chromium PUT {puts[0].split('?')[0]} (signed in the container), page at {page_url}, API at {api_url}")
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET, Prefix=prefix).get("Contents", [])]
    assert keys == [prefix + path]
    assert s3.get_object(Bucket=BUCKET, Key=prefix + path)["Body"].read() == photo.data
    deadline = time.monotonic() + 60  # the page waits ~5 s for the record; a slow container may take longer
    while not ui.records() and time.monotonic() < deadline:
        time.sleep(0.5)
    assert [(f["path"], f["size"], f["content_type"]) for f in ui.records()] == [(path, len(photo.data), "image/png")]
    assert recorder == []
    status = ui.page.get_by_test_id("upload-row").locator(".row-status").all_inner_texts()
    print(f"the page's upload row: {status} (Uploaded: the record was seen while the page waited)")
    assert status == ["Uploaded"]
    assert ui.thumbnails() == {photo.name: photo.width}  # from the picked file (no bigger than a tile)

    # AND the page, opened again, lists it from the API
    ui.page.reload()
    expect(ui.page.get_by_test_id("gallery-item")).to_have_count(1, timeout=WAIT_MS)
    assert list(ui.thumbnails().values()) == [photo.width]

    # WHEN the session is erased from the page THEN the bucket holds nothing of it
    ui.page.once("dialog", lambda dialog: dialog.accept())  # "Erase this session?"
    ui.page.get_by_test_id("erase-button").click()
    expect(ui.page.get_by_test_id("status")).to_have_text("The session was erased.", timeout=WAIT_MS)
    expect(ui.page.get_by_test_id("gallery-item")).to_have_count(0)
    assert s3.list_objects_v2(Bucket=BUCKET, Prefix=prefix).get("KeyCount", 0) == 0
