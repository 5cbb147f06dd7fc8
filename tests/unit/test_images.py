"""core/images.py against Pillow (a pinned test dependency): the same format and size on generated images; the
GPS removal keeps every other byte; hostile and truncated bytes never raise."""

from __future__ import annotations

import io
import struct

import pytest
from PIL import Image

from hera_sessions.core import images
from tests.images import GPS_LATITUDE, avif, exif_block, exif_of, gif, gps_of, heic, jpeg, png, webp

PILLOW_TYPES = {
    "PNG": "image/png",
    "JPEG": "image/jpeg",
    "WEBP": "image/webp",
    "GIF": "image/gif",
    "AVIF": "image/avif",
}


def pillow(body: bytes, fmt: str, size: tuple[int, int], **options: object) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (10, 120, 200)).save(out, fmt, **options)
    return out.getvalue()


GENERATED: list[tuple[str, bytes]] = [
    ("png", png(7, 3)),
    ("png-big", png(4000, 3)),
    ("png-exif", png(2, 9, exif=exif_block())),
    ("png-pillow", pillow(b"", "PNG", (33, 17))),
    ("jpeg", jpeg(9, 5)),
    ("jpeg-exif", jpeg(640, 480, exif=exif_block())),
    ("jpeg-exif-big-endian", jpeg(5, 7, exif=exif_block(order=">"))),
    ("jpeg-progressive", pillow(b"", "JPEG", (31, 13), progressive=True)),
    ("jpeg-icc", pillow(b"", "JPEG", (12, 4), icc_profile=b"\x00" * 70_000)),  # SOF beyond the first 64 KiB
    ("webp-lossy", webp(11, 3)),
    ("webp-lossless", webp(11, 3, lossless=True)),
    ("webp-exif", webp(300, 200, exif=exif_block())),
    ("webp-alpha", pillow(b"", "WEBP", (16, 9))),
    ("gif", gif(6, 5)),
    ("avif", avif(8, 6)),
]


@pytest.mark.parametrize(("name", "body"), GENERATED, ids=[n for n, _ in GENERATED])
def test_format_and_size_are_pillows(name: str, body: bytes) -> None:
    with Image.open(io.BytesIO(body)) as image:
        expected = (PILLOW_TYPES[str(image.format)], *image.size)
    info = images.sniff(body)
    assert info is not None
    assert (info.content_type, info.width, info.height) == expected


def test_the_first_64_kib_are_enough_unless_segments_come_first() -> None:
    for name, body in GENERATED:
        info = images.sniff(body[: images.HEAD_BYTES])
        assert info is not None, name
        if name != "jpeg-icc":
            assert info.width is not None, name
    assert images.sniff(dict(GENERATED)["jpeg-icc"][: images.HEAD_BYTES]).width is None  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("major", "brands", "expected"),
    [
        (b"heic", (b"mif1",), "image/heic"),
        (b"heix", (b"mif1",), "image/heic"),
        (b"mif1", (b"heic",), "image/heic"),
        (b"msf1", (b"hevc",), "image/heic"),
        (b"mif1", (b"miaf",), "image/heif"),
        (b"heif", (), "image/heif"),
        (b"avif", (b"mif1", b"miaf"), "image/avif"),
        (b"mif1", (b"avif",), "image/avif"),
    ],
)
def test_heif_brands(major: bytes, brands: tuple[bytes, ...], expected: str) -> None:
    info = images.sniff(heic(4032, 3024, major, brands))
    assert info is not None
    # the primary item's ispe, not the first one (a 512x512 tile)
    assert (info.content_type, info.width, info.height) == (expected, 4032, 3024)
    assert info.fits("image/heic") is (expected != "image/avif")
    assert info.fits("image/heif") is (expected != "image/avif")


def test_an_mp4_is_no_image() -> None:
    assert images.sniff(heic(major=b"isom", brands=(b"mp41",))) is None


@pytest.mark.parametrize(
    "body",
    [b"", b"Dear diary", b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff\xe0\xff\xff" + b"\x00" * 30, b"RIFF\x00\x00\x00\x00WEBP",
     b"<svg xmlns='http://www.w3.org/2000/svg'/>", b"%PDF-1.7\n"],
)  # fmt: skip
def test_what_is_not_an_image_is_none(body: bytes) -> None:
    assert images.sniff(body) is None or images.sniff(body).width is None  # type: ignore[union-attr]


def test_every_prefix_and_corruption_is_safe() -> None:
    # GIVEN every image above, cut at every length and with every 7th byte flipped
    for _, body in GENERATED:
        for end in range(0, min(len(body), 600)):
            images.sniff(body[:end])  # WHEN read THEN nothing raises
            images.strip_gps(body[:end])
        flipped = bytes(b ^ 0xFF if i % 7 == 3 else b for i, b in enumerate(body[:4000]))
        images.sniff(flipped)
        images.strip_gps(flipped)


def test_the_exif_facts() -> None:
    assert images.sniff(jpeg(exif=exif_block())).gps is True  # type: ignore[union-attr]
    assert images.sniff(jpeg(exif=exif_block(gps=False))).gps is False  # type: ignore[union-attr]
    assert images.sniff(jpeg()).gps is False  # type: ignore[union-attr]
    assert images.sniff(png(exif=exif_block())).gps is True  # type: ignore[union-attr]
    assert images.sniff(webp(exif=exif_block())).gps is True  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "body",
    [jpeg(16, 8, exif=exif_block()), jpeg(16, 8, exif=exif_block(order=">")), png(5, 4, exif=exif_block()),
     webp(12, 10, exif=exif_block())],
    ids=["jpeg", "jpeg-big-endian", "png", "webp"],
)  # fmt: skip
def test_strip_removes_the_gps_ifd_and_keeps_everything_else(body: bytes) -> None:
    # GIVEN an image whose EXIF has orientation 6 and a GPS IFD (Pillow reads the latitude)
    assert gps_of(body)[2] == GPS_LATITUDE
    # WHEN its GPS position is stripped
    stripped = images.strip_gps(body)
    # THEN Pillow finds no GPS IFD, the orientation and the other tags, the same pixels and the same size
    assert stripped is not None and len(stripped) == len(body)
    assert gps_of(stripped) == {}
    assert exif_of(stripped) == {k: v for k, v in exif_of(body).items() if k != 0x8825}
    assert exif_of(stripped)[0x0112] == 6
    with Image.open(io.BytesIO(body)) as before, Image.open(io.BytesIO(stripped)) as after:
        assert before.tobytes() == after.tobytes()
    # AND the latitude's bytes are gone from the file, only bytes inside the EXIF block changed
    latitude = b"".join(struct.pack("<II", v, 1) for v in GPS_LATITUDE)
    assert latitude not in stripped
    changed = [i for i, (a, b) in enumerate(zip(body, stripped, strict=True)) if a != b]
    start = max(body.find(b"II*\x00"), body.find(b"MM\x00*"))
    assert 0 < start <= changed[0] and changed[-1] < start + len(exif_block()) + 4  # (+4: a PNG chunk's CRC)
    info = images.sniff(stripped)
    assert info is not None and (info.gps, info.stripped) == (False, True)
    # AND stripping again changes nothing
    assert images.strip_gps(stripped) is None


def test_strip_reaches_the_second_picture_of_an_mpf_file() -> None:
    # GIVEN two JPEGs in one file (a phone's MPF photo: the second picture after the first one's EOI)
    body = jpeg(8, 8, exif=exif_block()) + jpeg(4, 4, exif=exif_block())
    stripped = images.strip_gps(body)
    assert stripped is not None
    latitude = b"".join(struct.pack("<II", v, 1) for v in GPS_LATITUDE)
    assert body.count(latitude) == 2 and stripped.count(latitude) == 0


def test_no_gps_no_rewrite() -> None:
    assert images.strip_gps(jpeg(exif=exif_block(gps=False))) is None
    assert images.strip_gps(png()) is None
    assert images.strip_gps(heic()) is None
