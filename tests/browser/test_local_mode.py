"""The demo page in local mode (`make dev`), in a real browser: pick photos, see them, erase them."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from playwright.sync_api import Dialog, Page, Route, expect

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

    # THEN both upload, both show under their names as thumbnails that load, and the listing holds exactly them,
    # each at a fresh ASCII path the client chose
    assert ui.wait_for_uploads(2) == [("Harbour Walk.JPG", "done"), ("Sunrise.png", "done")]
    expect(ui.page.get_by_test_id("gallery-item")).to_have_count(2)
    assert ui.thumbnails() == {"Sunrise.png": 48, "Harbour Walk.JPG": 64}
    paths = ui.paths()
    assert re.fullmatch(r"photos/harbour-walk-[a-z0-9]{8}\.jpg", paths["Harbour Walk.JPG"])
    assert re.fullmatch(r"photos/sunrise-[a-z0-9]{8}\.png", paths["Sunrise.png"])
    assert ui.files() == sorted(
        [
            (paths["Harbour Walk.JPG"], len(photos[1].data), "image/jpeg"),
            (paths["Sunrise.png"], len(photos[0].data), "image/png"),
        ]
    )
    expect(ui.page.get_by_test_id("status")).to_have_text("2 of 2 photos uploaded.")
    expect(ui.page.get_by_test_id("error")).to_be_empty()

    # WHEN the session is erased
    ui.page.once("dialog", lambda dialog: dialog.accept())  # "Erase this session?"
    ui.page.get_by_test_id("erase-button").click()

    # THEN the gallery is empty, the old session is gone with its files, and a new, empty one has started
    expect(ui.page.get_by_test_id("status")).to_have_text("The session was erased. A new, empty session has started.")
    expect(ui.page.get_by_test_id("gallery-item")).to_have_count(0)
    expect(ui.page.get_by_test_id("session-id")).to_have_text(ui.session()["session_id"])
    assert ui.session()["session_id"] != first["session_id"]
    assert ui.listing(first).status_code == 410
    assert list(site.runtime.service().storage.list_prefix(f"sessions/{first['session_id']}/")) == []
    assert ui.files() == []


@pytest.fixture
def two_photos(start_site: Callable[..., Site], demo: Callable[[str], DemoPage], photos: list[Photo]) -> DemoPage:
    """The demo page of a fresh make dev, with two photos picked and uploaded."""
    site = start_site()
    ui = demo(site.url).open(site.url + "/")
    ui.pick(*photos)
    ui.wait_for_uploads(2)
    return ui


def test_a_photo_can_be_deleted_from_the_gallery(two_photos: DemoPage) -> None:
    ui = two_photos

    paths = ui.paths()

    ui.page.once("dialog", lambda dialog: dialog.accept())  # "Delete “Sunrise.png”?"
    ui.page.get_by_role("button", name="Delete Sunrise.png").click()

    expect(ui.page.get_by_test_id("gallery-item")).to_have_count(1)
    expect(ui.page.get_by_test_id("status")).to_have_text("Deleted Sunrise.png.")
    assert [path for path, _, _ in ui.files()] == [paths["Harbour Walk.JPG"]]


def test_the_upload_button_never_sends_a_finished_photo_again(two_photos: DemoPage) -> None:
    ui = two_photos
    # WHEN Upload is clicked after the picked photos went
    ui.page.get_by_test_id("upload-button").click()
    # THEN nothing is sent twice: the picker was emptied when they were queued
    expect(ui.page.get_by_test_id("status")).to_have_text("Choose photos first.")
    expect(ui.page.get_by_test_id("upload-row")).to_have_count(2)
    assert len(ui.files()) == 2


def test_thumbnails_are_scaled_down_in_the_browser_and_the_picked_file_is_not_downloaded(
    start_site: Callable[..., Site], demo: Callable[[str], DemoPage]
) -> None:
    site = start_site()
    ui = demo(site.url).open(site.url + "/")
    downloads: list[str] = []
    ui.page.on("request", lambda r: r.method == "GET" and "/local-storage/" in r.url and downloads.append(r.url))
    big = Photo("Big Garden.png", noise_png(1800, 1200), 1800)

    def shown() -> tuple[int, int, str, int]:
        """The tile's thumbnail: natural width and height, how its source begins, and the tile's width in pixels."""
        assert ui.thumbnails()  # loaded
        return tuple(
            ui.page.get_by_test_id("gallery-item")
            .locator("img")
            .evaluate(
                """img => [img.naturalWidth, img.naturalHeight, img.src.split(":")[0],
                         Math.round(img.parentElement.clientWidth * devicePixelRatio)]"""
            )
        )

    # WHEN a person uploads a photo of 1800 by 1200 pixels (6.5 MB)
    ui.pick(big)
    assert ui.wait_for_uploads(1) == [(big.name, "done")]
    # THEN its tile shows a copy scaled down to the tile (shorter side = the tile's width), made from the picked
    # file: storage is not asked for the photo at all; the stored file is the whole photo
    width, height, scheme, tile = shown()
    assert (scheme, height) == ("blob", max(tile, 160)) and width == round(1800 * height / 1200), (width, height, tile)
    assert width < 600
    assert downloads == []
    (record,) = ui.records()
    assert (record["width"], record["height"], record["size"]) == (1800, 1200, len(big.data))

    # WHEN the page is opened again THEN the listed photo is fetched once and scaled down the same way
    ui.page.reload()
    expect(ui.page.get_by_test_id("gallery-item")).to_have_count(1, timeout=WAIT_MS)
    width, height, scheme, tile = shown()
    assert (scheme, height) == ("blob", max(tile, 160)) and width < 600
    assert len(downloads) == 1, downloads

    # AND deleting the tile lets go of the thumbnail's bytes (its object URL is revoked)
    url = ui.page.get_by_test_id("gallery-item").locator("img").get_attribute("src")
    ui.page.once("dialog", lambda dialog: dialog.accept())
    ui.page.get_by_role("button", name=f"Delete {big.name}").click()
    expect(ui.page.get_by_test_id("gallery-item")).to_have_count(0)
    gone = ui.page.evaluate("url => fetch(url).then(() => false, () => true)", url)
    assert gone


#: Where a line of a rendered name ends: the character each line (but the last) ends with.
LINE_ENDS = """el => {
    const ends = [];
    let last = null, previous = "";
    const walker = document.createTreeWalker(el, NodeFilter.SHOW_TEXT);
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
        for (let i = 0; i < node.data.length; i++) {
            const range = document.createRange();
            range.setStart(node, i); range.setEnd(node, i + 1);
            const top = Math.round(range.getClientRects()[0]?.top ?? 0);
            if (last !== null && top > last) ends.push(previous);
            last = top; previous = node.data[i];
        }
    }
    return ends;
}"""


def test_long_names_wrap_at_their_separators_not_inside_words(
    start_site: Callable[..., Site], demo: Callable[[str], DemoPage]
) -> None:
    # GIVEN the page on a phone-sized screen
    site = start_site()
    ui = demo(site.url)
    ui.page.set_viewport_size({"width": 360, "height": 780})
    ui.open(site.url + "/")
    name = "IMG_20241129_183012_family-holiday_grandmother_birthday.png"
    # WHEN a photo with a long name is uploaded
    ui.pick(Photo(name, noise_png(8, 8), 8))
    assert ui.wait_for_uploads(1) == [(name, "done")]
    # THEN its row and its tile show the whole name on several lines, each line ending at a separator
    for shown in (ui.page.locator("[data-testid=upload-row] .name"), ui.page.get_by_test_id("photo-name")):
        assert shown.text_content() == name
        ends = shown.evaluate(LINE_ENDS)
        assert ends, "the name fits on one line: the test shows nothing"
        assert set(ends) <= set("_-"), ends


def test_a_failed_upload_is_retried_then_offers_retry(
    start_site: Callable[..., Site], demo: Callable[[str], DemoPage], photos: list[Photo]
) -> None:
    site = start_site()
    ui = demo(site.url).open(site.url + "/")
    puts: list[str] = []

    def storage_down(route: Route) -> None:
        puts.append(route.request.method)
        route.abort()

    # GIVEN storage that drops every upload
    ui.page.route("**/local-storage/**", storage_down)
    ui.pick(photos[0])
    # THEN the client tried more than once by itself, then the row says so and offers Retry
    assert ui.wait_for_uploads(1) == [(photos[0].name, "error")]
    assert len(puts) == 3
    # WHEN storage is back and Retry is clicked THEN the photo goes, once
    ui.page.unroute("**/local-storage/**")
    ui.page.get_by_role("button", name=f"Retry {photos[0].name}").click()
    expect(ui.page.get_by_test_id("gallery-item")).to_have_count(1, timeout=WAIT_MS)
    assert ui.wait_for_uploads(1) == [(photos[0].name, "done")]
    assert len(ui.files()) == 1


def test_delete_and_erase_ask_first_and_cancel_keeps_everything(two_photos: DemoPage) -> None:
    ui = two_photos
    asked: list[str] = []

    def cancel(dialog: Dialog) -> None:
        asked.append(dialog.message)
        dialog.dismiss()

    ui.page.on("dialog", cancel)
    # WHEN Delete and then Erase are clicked, and each question is answered Cancel
    ui.page.get_by_role("button", name="Delete Sunrise.png").click()
    ui.page.get_by_test_id("erase-button").click()
    # THEN each asked first, and nothing was deleted
    expect(ui.page.get_by_test_id("gallery-item")).to_have_count(2)
    assert asked == [
        "Delete “Sunrise.png”? It cannot be undone.",
        "Erase this session? Every photo and document in it is deleted now, for good.",
    ]
    assert len(ui.files()) == 2


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
    # one message per error: the alert says what went wrong, the row only that this file did not go
    expect(page.get_by_test_id("upload-row").locator(".row-status")).to_have_text("Not uploaded")
    expect(page.get_by_test_id("gallery-item")).to_have_count(0)
    assert ui.files() == []
