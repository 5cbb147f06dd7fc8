"""Tiny real images for tests: PNG by zlib, JPEG/WebP/AVIF/GIF by Pillow (a pinned test dependency), HEIC boxes
by hand, and an EXIF block built here (orientation, optionally a GPS IFD) for JPEG APP1, PNG eXIf and WebP EXIF."""

from __future__ import annotations

import io
import struct
import zlib

from PIL import Image

GPS_LATITUDE = (35, 39, 29)  # degrees, minutes, seconds (Tokyo): what must not leave


def png(width: int = 3, height: int = 2, *, exif: bytes | None = None, size: int | None = None) -> bytes:
    """An RGB PNG, by hand: IHDR, an optional eXIf chunk, one IDAT; exactly ``size`` bytes when given (a tEXt
    chunk pads it)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(b"\x00" + bytes(i % 256 for i in range(width * 3)) for _ in range(height))
    body = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
    if exif is not None:
        body += chunk(b"eXIf", exif)
    body += chunk(b"IDAT", zlib.compress(rows))
    if size is not None:
        pad = size - len(body) - 12 - 20
        if pad < 0:
            raise ValueError(f"a PNG of {width}x{height} takes more than {size} bytes")
        body += chunk(b"tEXt", b"Comment\x00" + b"p" * pad)
    return body + chunk(b"IEND", b"")


def exif_block(orientation: int | None = 6, gps: bool = True, order: str = "<") -> bytes:
    """A TIFF block (what follows ``Exif\\0\\0``): IFD0 with Make, Orientation and a GPS pointer; a GPS IFD with
    latitude reference and latitude (three rationals, stored outside the entry)."""
    mark = b"II" if order == "<" else b"MM"
    make = b"HeraCam\x00"
    entries: list[tuple[int, int, int, bytes]] = [(0x010F, 2, len(make), make)]
    if orientation is not None:
        entries.append((0x0112, 3, 1, struct.pack(order + "H", orientation) + b"\x00\x00"))
    if gps:
        entries.append((0x8825, 4, 1, b""))  # value filled in below
    ifd0_size = 2 + 12 * len(entries) + 4
    data_at = 8 + ifd0_size
    out_of_line = make  # Make is 8 bytes: stored outside its entry
    gps_at = data_at + len(out_of_line)
    ifd0 = struct.pack(order + "H", len(entries))
    for tag, kind, count, value in entries:
        if tag == 0x010F:
            field = struct.pack(order + "I", data_at)
        elif tag == 0x8825:
            field = struct.pack(order + "I", gps_at)
        else:
            field = value
        ifd0 += struct.pack(order + "HHI", tag, kind, count) + field
    ifd0 += struct.pack(order + "I", 0)
    tiff = mark + struct.pack(order + "HI", 42, 8) + ifd0 + out_of_line
    if gps:
        latitude_at = gps_at + 2 + 12 * 2 + 4
        gps_ifd = struct.pack(order + "H", 2)
        gps_ifd += struct.pack(order + "HHI", 0x0001, 2, 2) + b"N\x00\x00\x00"
        gps_ifd += struct.pack(order + "HHII", 0x0002, 5, 3, latitude_at)
        gps_ifd += struct.pack(order + "I", 0)
        gps_ifd += b"".join(struct.pack(order + "II", v, 1) for v in GPS_LATITUDE)
        tiff += gps_ifd
    return tiff


def _pillow(fmt: str, width: int, height: int, **options: object) -> bytes:
    image = Image.new("RGB", (width, height), (200, 30, 90))
    out = io.BytesIO()
    image.save(out, fmt, **options)
    return out.getvalue()


def jpeg(width: int = 4, height: int = 3, *, exif: bytes | None = None, icc_profile: bytes | None = None) -> bytes:
    """A baseline JPEG (Pillow) with, when given, an ``Exif`` APP1 segment inserted right after SOI by hand."""
    body = _pillow("JPEG", width, height, quality=80, **({"icc_profile": icc_profile} if icc_profile else {}))
    if exif is None:
        return body
    payload = b"Exif\x00\x00" + exif
    return body[:2] + b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload + body[2:]


def webp(width: int = 5, height: int = 4, *, lossless: bool = False, exif: bytes | None = None) -> bytes:
    """A WebP (Pillow): VP8 (lossy), VP8L (lossless), or VP8X when it carries an EXIF chunk."""
    options: dict[str, object] = {"lossless": lossless}
    if exif is not None:
        options["exif"] = b"Exif\x00\x00" + exif
    return _pillow("WEBP", width, height, **options)


def gif(width: int = 6, height: int = 5) -> bytes:
    return _pillow("GIF", width, height)


def avif(width: int = 8, height: int = 6) -> bytes:
    return _pillow("AVIF", width, height)


def heic(
    width: int = 4032, height: int = 3024, major: bytes = b"heic", brands: tuple[bytes, ...] = (b"mif1",)
) -> bytes:
    """The boxes of a HEIC file up to the primary item's ``ispe`` (no coded image: the header is what is read)."""

    def box(kind: bytes, payload: bytes) -> bytes:
        return struct.pack(">I", 8 + len(payload)) + kind + payload

    ftyp = box(b"ftyp", major + b"\x00\x00\x00\x00" + major + b"".join(brands))
    tile = box(b"ispe", b"\x00" * 4 + struct.pack(">II", 512, 512))
    whole = box(b"ispe", b"\x00" * 4 + struct.pack(">II", width, height))
    ipco = box(b"ipco", tile + whole)
    # item 1 (a tile) has property 1, item 2 (the primary grid) property 2
    ipma = box(
        b"ipma", b"\x00" * 4 + struct.pack(">I", 2) + struct.pack(">HBB", 1, 1, 1) + struct.pack(">HBB", 2, 1, 2)
    )
    pitm = box(b"pitm", b"\x00" * 4 + struct.pack(">H", 2))
    meta = box(
        b"meta", b"\x00" * 4 + box(b"hdlr", b"\x00" * 8 + b"pict" + b"\x00" * 13) + pitm + box(b"iprp", ipco + ipma)
    )
    return ftyp + meta + box(b"mdat", b"\x00" * 64)


def exif_of(body: bytes) -> dict[int, object]:
    """IFD0 tags of an image's EXIF, as Pillow reads them (0x8825 is the GPS pointer)."""
    with Image.open(io.BytesIO(body)) as image:
        return dict(image.getexif())


def gps_of(body: bytes) -> dict[int, object]:
    with Image.open(io.BytesIO(body)) as image:
        return dict(image.getexif().get_ifd(0x8825))


#: What most tests upload: a real, tiny PNG.
PNG = png()
JPEG = jpeg()
