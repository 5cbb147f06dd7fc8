"""The demo page in local mode (`make dev`), in a real browser: pick photos, see them, erase them."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import WAIT_MS, DemoPage, Photo, Site, noise_png

pytestmark = pytest.mark.browser


@pytest.mark.parametrize("method", ["PUT", "POST"])
def test_two_photos_upload_show_as_thumbnails_and_erase_empties_the_session(
    start_site: Callable[..., Site], demo: Callable[[str], DemoPage], photos: list[Photo], method: str
) -> None:
    # GIVEN the demo page of a local server with no service keys (the page creates its own session)
    site = start_site()
    ui = demo(site.url).open(f"{site.url}/?method={method}")
    first = ui.session()

    # WHEN a person picks two photos
    ui.pick(*photos)

    # THEN both upload, both show as thumbnails that load, and the listing holds exactly them
    assert ui.wait_for_uploads(2) == [("photos/Harbour_Walk.jpg", "done"), ("photos/Sunrise.png", "done")]
    expect(ui.page.get_by_test_id("gallery-item")).to_have_count(2)
    assert ui.thumbnails() == {"photos/Sunrise.png": 48, "photos/Harbour_Walk.jpg": 64}
    assert ui.files() == [
        ("photos/Harbour_Walk.jpg", len(photos[1].data), "image/jpeg"),
        ("photos/Sunrise.png", len(photos[0].data), "image/png"),
    ]
    expect(ui.page.get_by_test_id("status")).to_have_text("2 of 2 photos uploaded.")
    expect(ui.page.get_by_test_id("error")).to_be_empty()

    # WHEN the session is erased
    ui.page.get_by_test_id("erase-button").click()

    # THEN the gallery is empty, the old session is gone with its files, and a new, empty one has started
    expect(ui.page.get_by_test_id("status")).to_have_text("The session was erased. A new, empty session has started.")
    expect(ui.page.get_by_test_id("gallery-item")).to_have_count(0)
    expect(ui.page.get_by_test_id("session-id")).to_have_text(ui.session()["session_id"])
    assert ui.session()["session_id"] != first["session_id"]
    assert ui.listing(first).status_code == 410
    assert list(site.runtime.service().storage.list_prefix(f"sessions/{first['session_id']}/")) == []
    assert ui.files() == []


def test_a_photo_can_be_deleted_from_the_gallery(
    start_site: Callable[..., Site], demo: Callable[[str], DemoPage], photos: list[Photo]
) -> None:
    site = start_site()
    ui = demo(site.url).open(site.url + "/")
    ui.pick(*photos)
    ui.wait_for_uploads(2)

    ui.page.get_by_role("button", name="Delete photos/Sunrise.png").click()

    expect(ui.page.get_by_test_id("gallery-item")).to_have_count(1)
    assert [path for path, _, _ in ui.files()] == ["photos/Harbour_Walk.jpg"]


@pytest.mark.parametrize(
    ("env", "photo", "message"),
    [
        (
            {"UPLOAD_MAX_BYTES": "4096"},
            Photo("Big Panorama.png", noise_png(64, 64), 64),
            "“Big Panorama.png” is too large: the limit is 4 KB.",
        ),
        (
            {},
            Photo("party.gif", b"GIF89a\x01\x00\x01\x00\x00\x00\x00;", 1),
            "“party.gif” is not a supported type: use PNG, JPEG, WebP or HEIC.",
        ),
    ],
    ids=["too-large", "type-not-allowed"],
)
def test_an_upload_the_api_refuses_shows_why_in_words_a_person_understands(
    start_site: Callable[..., Site],
    demo: Callable[[str], DemoPage],
    page: Page,
    env: dict[str, str],
    photo: Photo,
    message: str,
) -> None:
    site = start_site(env)
    ui = demo(site.url).open(site.url + "/")

    ui.pick(photo)

    expect(page.get_by_role("alert")).to_have_text(message, timeout=WAIT_MS)
    assert [status for _, status in ui.wait_for_uploads(1)] == ["error"]
    expect(page.get_by_test_id("gallery-item")).to_have_count(0)
    assert ui.files() == []
