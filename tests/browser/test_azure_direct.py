"""Direct browser-to-Azure Blob storage: the demo page uploads to Azurite (which checks SAS signatures and the
Blob service's CORS rules, like Azure) by PUT and by blocks, and the CORS rules decide which pages may.

The API runs in Azure mode behind the local server, which also serves the page. The Blob service's CORS rule
comes from :func:`hera_sessions.http.cors.azure_rule` for the same origins as the API's ``CORS_ALLOWED_ORIGINS`` (the
``azure_container`` fixture sets it as ``azure/deploy.sh`` does). Files are recorded as in production: Event Grid
``BlobCreated`` events for the blobs that appear, handed to the function app's Event Grid trigger by a
background thread while the page waits.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from types import ModuleType

import pytest
import requests
from playwright.sync_api import BrowserContext, Page, expect

from hera_sessions.runtime import Runtime
from tests.azure.conftest import Container, blob_created_event, sequencer, trigger_event
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
def azure_env(azure_env: dict[str, str]) -> dict[str, str]:
    """Azure mode with the cap raised above the threshold, so an 11 MiB photo goes in blocks."""
    return {**azure_env, "UPLOAD_MAX_BYTES": str(12 * MiB), "MULTIPART_THRESHOLD_BYTES": str(5 * MiB)}


@pytest.fixture
def site(azure_runtime: Runtime, site_port: int) -> Iterator[Site]:
    yield from serve_site(azure_runtime, site_port)


@pytest.fixture
def recorder(azure_container: Container, function_app: ModuleType) -> Iterator[list[str]]:
    """Event Grid, in the background: a BlobCreated event for each blob that appears (or changes), delivered to
    the function app's trigger."""
    seen: dict[str, str] = {}

    def step(problems: list[str]) -> None:
        for blob in azure_container.client.list_blobs():
            if seen.get(blob.name) == blob.etag:
                continue
            seen[blob.name] = blob.etag
            event = blob_created_event(
                azure_container.name,
                blob.name,
                size=blob.size,
                content_type=blob.content_settings.content_type,
                etag=blob.etag,
                sequencer=sequencer(len(seen)),
            )
            function_app.storage_events(trigger_event(event))

    with polling(step, "eventgrid") as problems:
        yield problems


@pytest.mark.parametrize("protocol", ["put", "azure-blocks"])
def test_the_page_uploads_straight_to_blob_storage(
    site: Site,
    azure_container: Container,
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
    ui = demo(site.url).open(site.url + "/")
    picked = [big_photo] if protocol == "azure-blocks" else photos
    prefix = f"sessions/{session['session_id']}/"

    # WHEN a person picks the photos
    ui.pick(*picked)

    # THEN the blobs are stored, recorded through the storage events while the page waits, and shown
    assert ui.wait_for_uploads(len(picked)) == sorted((p.name, "done") for p in picked)
    expected = {path: next(p for p in picked if p.name == name) for name, path in ui.paths().items()}
    rows = ui.page.get_by_test_id("upload-row")
    assert rows.locator(".row-status").all_inner_texts() == ["Uploaded"] * len(picked)
    assert azure_container.names(prefix) == sorted(prefix + path for path in expected)
    ui.check_thumbnails(picked)  # scaled from the picked files
    listing = ui.listing().json()["files"]
    assert sorted((f["path"], f["size"], f["content_type"]) for f in listing) == sorted(
        (p, len(f.data), "image/png" if p.endswith(".png") else "image/jpeg") for p, f in expected.items()
    )
    if protocol == "azure-blocks":  # committed from two blocks by the browser's Put Block List
        (path,) = expected
        committed, _ = azure_container.client.get_blob_client(prefix + path).get_block_list("committed")
        assert len(committed) == 2
    assert recorder == []

    # AND opened again, the page lists them and scales each down from its signed URL (read through the CORS rule)
    ui.page.reload()
    expect(ui.page.get_by_test_id("gallery-item")).to_have_count(len(picked), timeout=WAIT_MS)
    ui.check_thumbnails(picked)

    # WHEN the session is erased THEN the container holds nothing of it
    ui.page.once("dialog", lambda dialog: dialog.accept())  # "Erase this session?"
    ui.page.get_by_test_id("erase-button").click()
    expect(ui.page.get_by_test_id("status")).to_have_text("The session was erased.")
    assert azure_container.names(prefix) == []


def test_a_page_from_an_origin_that_is_not_allowed_cannot_put_a_blob(
    site: Site, azure_container: Container, start_site: Callable[..., Site], context: BrowserContext, page: Page
) -> None:
    # GIVEN a valid upload URL, and the page served from an origin the CORS rule does not name
    elsewhere = start_site()
    session = new_session(site)
    ticket = requests.post(
        f"{site.url}/v1/sessions/{session['session_id']}/uploads",
        json={"path": "photos/direct.png", "content_type": "image/png", "size": len(PUT_BODY)},
        headers={"Authorization": f"Bearer {session['token']}"},
        timeout=5,
    ).json()
    blocked, allowed = page, context.new_page()  # the test's page: screenshotted on failure
    blocked.goto(elsewhere.url + "/web/style.css")
    allowed.goto(site.url + "/web/style.css")

    # WHEN each page sends the same PUT THEN the browser blocks the other origin's, and nothing is stored
    assert put_from(blocked, ticket["url"], ticket["headers"]) == {"blocked": "TypeError: Failed to fetch"}
    assert azure_container.names() == []

    # while the allowed origin's goes through and can read the ETag
    sent = put_from(allowed, ticket["url"], ticket["headers"])
    assert sent["status"] == 201
    assert sent["etag"]
    assert azure_container.names() == [ticket["key"]]
