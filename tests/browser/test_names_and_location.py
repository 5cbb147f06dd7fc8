"""Issue 11 in a real browser: every picked photo arrives intact, under its own name, at its own path, and
without its location.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import re
import struct
from collections.abc import Callable

import pytest
from playwright.sync_api import Browser, Request, expect

from hera_sessions.core.models import FileRecord
from tests.browser.conftest import (
    GPS_IFD_POINTER,
    ORIENTATION,
    DemoPage,
    Photo,
    Site,
    exif_app1,
    gps_bytes,
    read_exif,
    with_segment,
)

pytestmark = pytest.mark.browser

#: A path the client makes: ASCII, a slug (or "photo"), "-", 8 random characters, the type's extension.
CLIENT_PATH = re.compile(r"photos/[a-z0-9-]+-[a-z0-9]{8}\.jpg")
NAMES = ["祖母.jpg", "祖父.jpg", "image.jpg", "image.jpg"]


def md5_base64(data: bytes) -> str:
    return base64.b64encode(hashlib.md5(data).digest()).decode()


@pytest.fixture(scope="module")
def jpeg(browser: Browser) -> bytes:
    """A real 64x40 baseline JPEG, drawn and encoded by the browser's canvas."""
    page = browser.new_page()
    try:
        encoded = page.evaluate(
            """() => {
                const canvas = Object.assign(document.createElement("canvas"), {width: 64, height: 40});
                const g = canvas.getContext("2d");
                g.fillStyle = "#2a9d8f"; g.fillRect(0, 0, 64, 40);
                g.fillStyle = "#e76f51"; g.fillRect(0, 0, 16, 40);
                return canvas.toDataURL("image/jpeg", 0.9).split(",")[1];
            }"""
        )
    finally:
        page.close()
    data = base64.b64decode(encoded)
    assert data[:3] == b"\xff\xd8\xff"
    return data


def comment(text: str) -> bytes:
    """A JPEG COM segment: makes otherwise equal photos distinct bytes."""
    body = text.encode()
    return b"\xff\xfe" + struct.pack(">H", len(body) + 2) + body


@pytest.fixture
def family(jpeg: bytes) -> list[Photo]:
    """祖母.jpg, 祖父.jpg, and two different photos both named image.jpg (from two folders)."""
    return [Photo(name, with_segment(jpeg, comment(f"photo {i}")), 64) for i, name in enumerate(NAMES)]


def test_four_picks_two_of_them_image_jpg_become_four_photos_each_under_its_name(
    start_site: Callable[..., Site], demo: Callable[[str], DemoPage], family: list[Photo]
) -> None:
    # GIVEN the demo page in local mode
    site = start_site()
    ui = demo(site.url).open(site.url + "/")

    # WHEN a person picks 祖母.jpg, 祖父.jpg and two image.jpg from different folders
    ui.pick_payloads(*family)

    # THEN four uploads finish, four tiles show the four names, and four objects are stored at four ASCII paths,
    # each with the bytes of its own photo (none overwritten)
    assert ui.wait_for_uploads(4) == sorted((name, "done") for name in NAMES)
    expect(ui.page.get_by_test_id("gallery-item")).to_have_count(4)
    assert [name for name, _ in ui.tiles()] == sorted(NAMES)
    uploaded = ui.uploaded()
    paths = [path for _, path in uploaded]
    assert len(set(paths)) == 4
    assert all(CLIENT_PATH.fullmatch(path) for path in paths), paths
    assert sorted(path for path, _, _ in ui.files()) == sorted(paths)
    stored = sorted(ui.stored(path) for path in paths)
    assert stored == sorted(photo.data for photo in family)
    assert not any(path.startswith("photos/__") for path in paths)
    expect(ui.page.get_by_test_id("error")).to_be_empty()


def test_the_records_carry_each_picked_name_and_the_md5_of_the_bytes_sent(
    start_site: Callable[..., Site], demo: Callable[[str], DemoPage], family: list[Photo]
) -> None:
    site = start_site()
    ui = demo(site.url).open(site.url + "/")
    puts: list[Request] = []
    ui.page.on("request", lambda r: puts.append(r) if r.method == "PUT" and "/local-storage/" in r.url else None)

    ui.pick_payloads(*family)
    ui.wait_for_uploads(4)

    # each PUT carried the ticket's "only if new" condition and the MD5 of its own bytes
    sent = sorted((r.all_headers().get("content-md5"), r.all_headers().get("if-none-match")) for r in puts)
    assert sent == sorted((md5_base64(photo.data), "*") for photo in family)
    records = ui.records()
    assert sorted(r["name"] for r in records) == sorted(NAMES)
    by_md5 = {md5_base64(photo.data): photo.name for photo in family}
    assert {r["content_md5"]: r["name"] for r in records} == by_md5
    if "width" in {f.name for f in dataclasses.fields(FileRecord)}:  # the storage-event side of issue 11
        # the page shows the records' dimensions next to their size
        assert all(line.endswith("64 \u00d7 40") for _, line in ui.tiles()), ui.tiles()
    # after a reload the gallery still shows the names: they come from the records now
    ui.open(site.url + "/")
    expect(ui.page.get_by_test_id("gallery-item")).to_have_count(4)
    assert [name for name, _ in ui.tiles()] == sorted(NAMES)


@pytest.mark.parametrize("order", [">", "<"], ids=["motorola", "intel"])
def test_a_jpeg_with_a_gps_position_is_stored_without_it_and_keeps_orientation_6(
    start_site: Callable[..., Site], demo: Callable[[str], DemoPage], jpeg: bytes, order: str
) -> None:
    # GIVEN a real JPEG with EXIF: orientation 6 (rotate 90° clockwise) and a GPS position
    photo = Photo("Beach.jpg", with_segment(jpeg, exif_app1(6, order=order)), 64)
    before = read_exif(photo.data)
    assert before["tags"][ORIENTATION] == 6 and GPS_IFD_POINTER in before["tags"]
    site = start_site()
    ui = demo(site.url).open(site.url + "/")

    # WHEN a person picks it
    ui.pick_payloads(photo)

    # THEN the stored object has orientation 6, no GPS pointer and none of the GPS values, and every byte
    # outside the EXIF segment is the photo's own (the image was not re-encoded)
    assert ui.wait_for_uploads(1) == [("Beach.jpg", "done")]
    (path,) = ui.paths().values()
    stored = ui.stored(path)
    after = read_exif(stored)
    assert after["tags"][ORIENTATION] == 6
    assert GPS_IFD_POINTER not in after["tags"]
    assert not any(value in stored for value in gps_bytes(order))
    assert len(stored) == len(photo.data)
    assert stored[: before["start"]] == photo.data[: before["start"]]
    assert stored[before["end"] :] == photo.data[before["end"] :]
    # the browser draws it turned by orientation 6 (40 wide), and the tile says the location was removed
    assert ui.thumbnails() == {"Beach.jpg": 40}
    expect(ui.page.get_by_test_id("location-removed")).to_have_text("Location removed")
