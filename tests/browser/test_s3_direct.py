"""Direct browser-to-S3: the demo page uploads straight to a bucket (moto in server mode, which answers CORS
from the bucket's own rules only), and the bucket's CORS rules decide which pages may.

The API runs in S3 mode behind the local server, which also serves the page. The bucket's CORS rules come from
:func:`hera_sessions.http.cors.s3_rules` for the same origins as the API's ``CORS_ALLOWED_ORIGINS``. Files are recorded
as in production: the bucket notifies an SQS queue, and a background thread hands each batch to the
storage-event function, as Lambda's SQS trigger would, while the page waits for the record.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests
from playwright.sync_api import BrowserContext, expect

from hera_sessions.http import cors
from hera_sessions.runtime import Runtime
from tests.aws.conftest import Bucket, NotificationQueue
from tests.browser.conftest import (
    PUT_BODY,
    WAIT_MS,
    DemoPage,
    Photo,
    Site,
    hand_over,
    new_session,
    polling,
    put_from,
    serve_site,
)

pytestmark = pytest.mark.browser

MiB = 1024 * 1024


@pytest.fixture
def s3_bucket(s3_bucket: Bucket, allowed_origins: tuple[str, ...]) -> Bucket:
    """The bucket, its CORS rules put as a deploy script puts them (``python -m hera_sessions.http.cors s3``)."""
    s3_bucket.client.put_bucket_cors(Bucket=s3_bucket.name, CORSConfiguration=cors.s3_rules(allowed_origins))
    return s3_bucket


@pytest.fixture
def s3_env(s3_env: dict[str, str]) -> dict[str, str]:
    """S3 mode with the cap raised above the multipart threshold, so an 11 MiB photo goes in parts."""
    return {**s3_env, "UPLOAD_MAX_BYTES": str(12 * MiB), "MULTIPART_THRESHOLD_BYTES": str(5 * MiB)}


@pytest.fixture
def site(s3_runtime: Runtime, site_port: int) -> Iterator[Site]:
    """The local server in S3 mode: the page and the API at an allowed origin; the bytes go to the bucket."""
    yield from serve_site(s3_runtime, site_port)


@pytest.fixture
def recorder(s3_queue: NotificationQueue, storage_events: Callable[[dict[str, Any]], Any]) -> Iterator[list[str]]:
    """Poll the bucket's queue in the background and hand each batch to the storage-event function."""

    def step(problems: list[str]) -> None:
        event = s3_queue.receive()
        if event["Records"]:
            answer = storage_events(event)
            if answer and answer.get("batchItemFailures"):
                problems.append(f"failed records: {answer['batchItemFailures']}")

    with polling(step, "sqs-to-storage-events") as problems:
        yield problems


@pytest.mark.parametrize("protocol", ["put", "post", "s3-multipart"])
def test_the_page_uploads_straight_to_the_bucket(
    site: Site,
    s3_bucket: Bucket,
    recorder: list[str],
    context: BrowserContext,
    demo: Callable[[str], DemoPage],
    photos: list[Photo],
    big_photo: Photo,
    protocol: str,
) -> None:
    # GIVEN the page, served from an allowed origin, with a session from the app's backend
    session = new_session(site)
    hand_over(context, session)
    ui = demo(site.url).open(f"{site.url}/?method={'POST' if protocol == 'post' else 'PUT'}")
    expect(ui.page.get_by_test_id("session-id")).to_have_text(session["session_id"])
    picked = [big_photo] if protocol == "s3-multipart" else photos
    prefix = f"sessions/{session['session_id']}/"

    # WHEN a person picks the photos
    ui.pick(*picked)

    # THEN the bytes land in the bucket, each file is recorded (through the storage events) while the page waits,
    # and every thumbnail loads from its signed S3 URL
    assert ui.wait_for_uploads(len(picked)) == sorted((p.name, "done") for p in picked)
    expected = {path: next(p for p in picked if p.name == name) for name, path in ui.paths().items()}
    rows = ui.page.get_by_test_id("upload-row")
    assert rows.locator(".row-status").all_inner_texts() == ["Uploaded"] * len(picked)  # recorded, not pending
    assert sorted(s3_bucket.keys(prefix)) == sorted(prefix + path for path in expected)
    ui.check_thumbnails(picked)  # scaled from the picked files
    listing = ui.listing().json()["files"]
    assert sorted((f["path"], f["size"]) for f in listing) == sorted((p, len(f.data)) for p, f in expected.items())
    if protocol == "s3-multipart":  # the browser read each part's ETag: the bucket's CORS exposes it
        assert listing[0]["etag"].strip('"').endswith("-2")
        # S3 announces a multipart upload twice (Put, then CompleteMultipartUpload): the record keeps its name
        assert listing[0]["name"] == big_photo.name
        assert s3_bucket.multipart_uploads(prefix) == []
    assert recorder == []

    # AND opened again, the page lists them and scales each down from its signed URL (read through the CORS rule)
    ui.page.reload()
    expect(ui.page.get_by_test_id("gallery-item")).to_have_count(len(picked), timeout=WAIT_MS)
    ui.check_thumbnails(picked)

    # WHEN the session is erased THEN the bucket holds nothing of it
    ui.page.once("dialog", lambda dialog: dialog.accept())  # "Erase this session?"
    ui.page.get_by_test_id("erase-button").click()
    expect(ui.page.get_by_test_id("gallery-item")).to_have_count(0)
    expect(ui.page.get_by_test_id("status")).to_have_text("The session was erased.")
    assert s3_bucket.keys(prefix) == []


def test_a_page_from_an_origin_that_is_not_allowed_is_blocked_by_the_browser(
    site: Site,
    s3_bucket: Bucket,
    start_site: Callable[..., Site],
    context: BrowserContext,
    demo: Callable[[str], DemoPage],
    photos: list[Photo],
) -> None:
    # GIVEN the same page served from another origin (another local server), pointed at the same API
    elsewhere = start_site()
    assert elsewhere.url not in s3_bucket.origins
    session = new_session(site)
    hand_over(context, session, base_url=site.url)
    ui = demo(site.url).open(elsewhere.url + "/")

    # WHEN a person picks a photo THEN the browser blocks it and the page says the upload failed
    ui.pick(photos[0])
    assert ui.wait_for_uploads(1) == [("Sunrise.png", "error")]
    expect(ui.page.get_by_role("alert")).to_contain_text("“Sunrise.png” could not be sent", timeout=WAIT_MS)
    assert s3_bucket.keys() == []

    # AND a valid presigned PUT sent from that page straight to the bucket is blocked too: the bucket's CORS
    ticket = requests.post(
        f"{site.url}/v1/sessions/{session['session_id']}/uploads",
        json={"path": "photos/direct.png", "content_type": "image/png", "size": len(PUT_BODY)},
        headers={"Authorization": f"Bearer {session['token']}"},
        timeout=5,
    ).json()
    assert put_from(ui.page, ticket["url"], ticket["headers"]) == {"blocked": "TypeError: Failed to fetch"}
    assert s3_bucket.keys() == []

    # while the same request from the allowed origin goes through, and the page can read the ETag
    allowed = context.new_page()
    allowed.goto(site.url + "/web/style.css")
    sent = put_from(allowed, ticket["url"], ticket["headers"])
    assert sent["status"] == 200
    assert sent["etag"]
    assert s3_bucket.keys() == [ticket["key"]]
