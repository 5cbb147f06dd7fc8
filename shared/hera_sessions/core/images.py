"""What an image's first bytes say: its format (by signature and brand), its size, and whether it carries a GPS
position in its EXIF block; and the removal of that position, in place, without re-encoding.

Hand-written on purpose: the event path reads at most :data:`HEAD_BYTES` of each new object, and these few
parsers (PNG IHDR, JPEG SOFn, WebP VP8/VP8L/VP8X, ISO-BMFF ``ftyp``/``ispe``, GIF) import nothing and cost
microseconds, where Pillow would weigh on every cold start of the events function. ``tests/unit/test_images.py``
holds them equal to Pillow's ``Image.open(...).size`` and format on generated images.

The GPS removal (:func:`strip_gps`) keeps every other byte where it was: the GPS IFD and the values it points to
are overwritten with zeros (and :data:`STRIPPED_MARK`, so the next event knows who did it), and its pointer is
taken out of IFD0. No offset moves, so orientation, thumbnails, maker notes and the image data stay as they were.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass

#: What the event path reads of a new object (one ranged read).
HEAD_BYTES = 64 * 1024
#: Left in the GPS IFD's place by :func:`strip_gps`: a rewritten object's next event records ``stripped``.
STRIPPED_MARK = b"hera:gps-stripped"

# ISO-BMFF brands (ftyp major and compatible brands).
_HEVC_BRANDS = frozenset({b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx"})
_HEIF_BRANDS = frozenset({b"mif1", b"msf1", b"heif", b"mif2", b"miaf"})
_AVIF_BRANDS = frozenset({b"avif", b"avis"})
#: Formats that may stand for one another: a .heif file may hold HEVC-coded images and a .heic one generic HEIF.
_SAME = {"image/heic": {"image/heic", "image/heif"}, "image/heif": {"image/heic", "image/heif"}}
#: The types :func:`sniff` knows; other allowed types (PDF, JSON, text) are not checked here.
IMAGE_TYPES = frozenset(
    {"image/png", "image/jpeg", "image/webp", "image/heic", "image/heif", "image/avif", "image/gif"}
)
_NAMES = {
    "image/png": "PNG",
    "image/jpeg": "JPEG",
    "image/webp": "WebP",
    "image/heic": "HEIC",
    "image/heif": "HEIF",
    "image/avif": "AVIF",
    "image/gif": "GIF",
}
_GPS_TAG = 0x8825
_TYPE_SIZES = {1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 6: 1, 7: 1, 8: 2, 9: 4, 10: 8, 11: 4, 12: 8, 13: 4}
_SOF = frozenset({0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF})


@dataclass(frozen=True, slots=True)
class ImageInfo:
    """What the first bytes of an image say."""

    content_type: str
    width: int | None = None  # None: the size lies beyond the bytes seen
    height: int | None = None
    gps: bool = False  # its EXIF block (in the bytes seen) has a GPS IFD
    stripped: bool = False  # its EXIF block holds STRIPPED_MARK (this service removed a GPS IFD)

    def fits(self, content_type: str) -> bool:
        return self.content_type in _SAME.get(content_type, {content_type})


def name(content_type: str) -> str:
    return _NAMES.get(content_type, content_type)


def sniff(head: bytes) -> ImageInfo | None:
    """The image format of ``head`` (an object's first bytes) with its size and EXIF facts; None if unknown."""
    try:
        if head.startswith(b"\x89PNG\r\n\x1a\n"):
            return _png(head)
        if head.startswith(b"\xff\xd8\xff"):
            return _jpeg(head)
        if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
            return _webp(head)
        if head[4:8] == b"ftyp":
            return _bmff(head)
        if head[:6] in (b"GIF87a", b"GIF89a") and len(head) >= 10:
            width, height = struct.unpack_from("<HH", head, 6)
            return ImageInfo("image/gif", width, height)
    except (struct.error, IndexError, ValueError):  # truncated or hostile bytes: not an image we can read
        return None
    return None


# -- EXIF (TIFF) ------------------------------------------------------------------------------------------
def _tiff(data: bytes | bytearray, start: int, end: int) -> tuple[str, int, int] | None:
    """``(byte order, IFD0 offset, GPS IFD offset or 0)`` of the TIFF block at ``data[start:end]``."""
    if end - start < 8:
        return None
    order = {b"II": "<", b"MM": ">"}.get(bytes(data[start : start + 2]))
    if order is None or struct.unpack_from(order + "H", data, start + 2)[0] != 42:
        return None
    ifd = struct.unpack_from(order + "I", data, start + 4)[0]
    if ifd < 8 or start + ifd + 2 > end:
        return None
    count = struct.unpack_from(order + "H", data, start + ifd)[0]
    for i in range(count):
        entry = start + ifd + 2 + 12 * i
        if entry + 12 > end:
            break
        tag = struct.unpack_from(order + "H", data, entry)[0]
        if tag == _GPS_TAG:
            return order, ifd, struct.unpack_from(order + "I", data, entry + 8)[0]
    return order, ifd, 0


def _exif_facts(data: bytes, start: int, end: int) -> tuple[bool, bool]:
    """``(has a GPS IFD, holds the stripped mark)`` for the TIFF block at ``data[start:end]``."""
    parsed = _tiff(data, start, end)
    if parsed is None:
        return False, False
    return parsed[2] != 0, STRIPPED_MARK in data[start:end]


def _strip_tiff(data: bytearray, start: int, end: int) -> bool:
    """Remove the GPS IFD of the TIFF block ``data[start:end]`` in place (same length); True if there was one."""
    parsed = _tiff(data, start, end)
    if parsed is None or not parsed[2]:
        return False
    order, ifd, gps = parsed
    base = start + ifd
    count = struct.unpack_from(order + "H", data, base)[0]
    entries_end = base + 2 + 12 * count
    if entries_end + 4 > end:
        return False
    tail = bytes(data[base + 2 : entries_end + 4])  # IFD0's entries and next-IFD offset, before any zeroing
    # The GPS IFD's values stored outside their entries, then the IFD itself.
    regions: list[tuple[int, int]] = []
    if start + gps + 2 <= end:
        entries = struct.unpack_from(order + "H", data, start + gps)[0]
        for i in range(entries):
            entry = start + gps + 2 + 12 * i
            if entry + 12 > end:
                break
            kind, n, value = struct.unpack_from(order + "HII", data, entry + 2)
            length = _TYPE_SIZES.get(kind, 1) * n
            if length > 4:
                regions.append((start + value, start + value + length))
        regions.append((start + gps, start + gps + 2 + 12 * entries + 4))
    for first, last in regions:
        lo, hi = max(first, start + 8), min(last, end)
        if lo < hi:
            data[lo:hi] = bytes(hi - lo)
    lo, hi = regions[-1] if regions else (0, 0)
    lo, hi = max(lo, start + 8), min(hi, end)
    if hi - lo >= len(STRIPPED_MARK):
        data[lo : lo + len(STRIPPED_MARK)] = STRIPPED_MARK
    # Take the pointer out of IFD0: later entries and the next-IFD offset move up one entry, the freed one is zero.
    kept = b"".join(
        tail[12 * i : 12 * i + 12] for i in range(count) if struct.unpack_from(order + "H", tail, 12 * i)[0] != _GPS_TAG
    )
    removed = count - len(kept) // 12
    struct.pack_into(order + "H", data, base, count - removed)
    data[base + 2 : entries_end + 4] = kept + tail[12 * count : 12 * count + 4] + bytes(12 * removed)
    return True


# -- formats ----------------------------------------------------------------------------------------------
def _png_chunks(data: bytes | bytearray) -> list[tuple[bytes, int, int]]:
    """``(type, data start, data length)`` of each PNG chunk wholly in ``data``, up to the first IDAT."""
    chunks = []
    pos = 8
    while pos + 8 <= len(data):
        length, kind = struct.unpack_from(">I4s", data, pos)
        if pos + 12 + length > len(data):
            break
        chunks.append((kind, pos + 8, length))
        if kind in (b"IDAT", b"IEND"):
            break
        pos += 12 + length
    return chunks


def _png(head: bytes) -> ImageInfo | None:
    if head[12:16] != b"IHDR":
        return None
    width, height = struct.unpack_from(">II", head, 16)
    gps = stripped = False
    for kind, start, length in _png_chunks(head):
        if kind == b"eXIf":
            gps, stripped = _exif_facts(head, start, start + length)
    return ImageInfo("image/png", width, height, gps, stripped)


def _jpeg_segments(data: bytes | bytearray) -> list[tuple[int, int, int]]:
    """``(marker, payload start, payload end)`` of each marker segment before the scan, as far as ``data`` goes."""
    segments = []
    pos = 2
    while pos + 4 <= len(data):
        if data[pos] != 0xFF:
            raise ValueError("not a JPEG marker")
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker in (0x01, *range(0xD0, 0xD8)):
            pos += 2
            continue
        length = struct.unpack_from(">H", data, pos + 2)[0]
        if length < 2:
            raise ValueError("bad JPEG segment length")
        segments.append((marker, pos + 4, min(pos + 2 + length, len(data))))
        if marker in (0xDA, 0xD9):  # start of scan: the rest is image data
            break
        pos += 2 + length
    return segments


def _jpeg(head: bytes) -> ImageInfo | None:
    width = height = None
    gps = stripped = False
    for marker, start, end in _jpeg_segments(head):
        if marker == 0xE1 and head[start : start + 6] == b"Exif\x00\x00" and not (gps or stripped):
            gps, stripped = _exif_facts(head, start + 6, end)
        elif marker in _SOF and end - start >= 5:
            height, width = struct.unpack_from(">HH", head, start + 1)
            break
    return ImageInfo("image/jpeg", width, height, gps, stripped)


def _webp_chunks(data: bytes | bytearray) -> list[tuple[bytes, int, int]]:
    chunks = []
    pos = 12
    while pos + 8 <= len(data):
        kind, length = struct.unpack_from("<4sI", data, pos)
        chunks.append((kind, pos + 8, min(length, len(data) - pos - 8)))
        pos += 8 + length + (length & 1)
    return chunks


def _webp_exif(data: bytes | bytearray, start: int, length: int) -> int:
    """Where the TIFF block of a WebP EXIF chunk starts (some writers put ``Exif\\0\\0`` first)."""
    return start + 6 if data[start : start + 6] == b"Exif\x00\x00" else start


def _webp(head: bytes) -> ImageInfo | None:
    width = height = None
    gps = stripped = False
    for kind, start, length in _webp_chunks(head):
        if kind == b"VP8X" and length >= 10 and width is None:
            width = 1 + int.from_bytes(head[start + 4 : start + 7], "little")
            height = 1 + int.from_bytes(head[start + 7 : start + 10], "little")
        elif kind == b"VP8 " and length >= 10 and width is None:
            if head[start + 3 : start + 6] != b"\x9d\x01\x2a":
                return None
            w, h = struct.unpack_from("<HH", head, start + 6)
            width, height = w & 0x3FFF, h & 0x3FFF
        elif kind == b"VP8L" and length >= 5 and width is None:
            if head[start] != 0x2F:
                return None
            bits = int.from_bytes(head[start + 1 : start + 5], "little")
            width, height = (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
        elif kind == b"EXIF":
            gps, stripped = _exif_facts(head, _webp_exif(head, start, length), start + length)
    if width is None:
        return None
    return ImageInfo("image/webp", width, height, gps, stripped)


def _boxes(data: bytes, start: int, end: int) -> list[tuple[bytes, int, int]]:
    """``(type, payload start, box end)`` of the ISO-BMFF boxes in ``data[start:end]``."""
    boxes = []
    pos = start
    while pos + 8 <= end:
        size, kind = struct.unpack_from(">I4s", data, pos)
        header = 8
        if size == 1:
            size, header = struct.unpack_from(">Q", data, pos + 8)[0], 16
        elif size == 0:
            size = end - pos
        if size < header:
            break
        boxes.append((kind, pos + header, min(pos + size, end)))
        pos += size
    return boxes


def _bmff(head: bytes) -> ImageInfo | None:
    top = _boxes(head, 0, len(head))
    if not top or top[0][0] != b"ftyp":
        return None
    _, start, end = top[0]
    major = head[start : start + 4]
    brands = {major} | {head[i : i + 4] for i in range(start + 8, end - 3, 4)}
    if major in _AVIF_BRANDS or (brands & _AVIF_BRANDS and not brands & _HEVC_BRANDS):
        ctype = "image/avif"
    elif brands & _HEVC_BRANDS:
        ctype = "image/heic"
    elif brands & _HEIF_BRANDS:
        ctype = "image/heif"
    else:
        return None
    size = next((_ispe(head, s, e) for kind, s, e in top if kind == b"meta"), None)
    width, height = size or (None, None)
    return ImageInfo(ctype, width, height)


def _ispe(data: bytes, start: int, end: int) -> tuple[int, int] | None:
    """The primary item's ``ispe`` (image spatial extents) inside a ``meta`` box (a full box: 4 bytes first)."""
    children = {kind: (s, e) for kind, s, e in _boxes(data, start + 4, end)}
    primary = None
    if b"pitm" in children:
        s, _ = children[b"pitm"]
        primary = struct.unpack_from(">H" if data[s] == 0 else ">I", data, s + 4)[0]
    if b"iprp" not in children:
        return None
    s, e = children[b"iprp"]
    inner = {kind: (s2, e2) for kind, s2, e2 in _boxes(data, s, e)}
    if b"ipco" not in inner:
        return None
    properties = _boxes(data, *inner[b"ipco"])
    sizes = {i + 1: struct.unpack_from(">II", data, s2 + 4) for i, (k, s2, _) in enumerate(properties) if k == b"ispe"}
    if not sizes:
        return None
    if primary is not None and b"ipma" in inner:
        s2, _ = inner[b"ipma"]
        version, flags = data[s2], int.from_bytes(data[s2 + 1 : s2 + 4], "big")
        pos = s2 + 4
        (count,) = struct.unpack_from(">I", data, pos)
        pos += 4
        for _ in range(count):
            item = struct.unpack_from(">H" if version < 1 else ">I", data, pos)[0]
            pos += 2 if version < 1 else 4
            n = data[pos]
            pos += 1
            for _ in range(n):
                if flags & 1:
                    index = struct.unpack_from(">H", data, pos)[0] & 0x7FFF
                    pos += 2
                else:
                    index = data[pos] & 0x7F
                    pos += 1
                if item == primary and index in sizes:
                    return sizes[index]
    return sizes[min(sizes)]


# -- removing the GPS position ----------------------------------------------------------------------------
def strip_gps(body: bytes) -> bytes | None:
    """``body`` with every GPS IFD of its EXIF blocks removed in place (same length); None if it had none.

    JPEG: every ``Exif`` APP1 segment in the file, so the embedded images of an MPF file (the second picture of
    a phone's photo) lose theirs too (``FF E1`` cannot occur inside entropy-coded data). PNG: the ``eXIf`` chunk
    before the image data (its CRC is recomputed). WebP: the ``EXIF`` chunk.
    """
    data = bytearray(body)
    changed = False
    if data.startswith(b"\xff\xd8\xff"):
        pos = data.find(b"\xff\xe1")
        while pos >= 0 and pos + 10 <= len(data):
            length = struct.unpack_from(">H", data, pos + 2)[0]
            if data[pos + 4 : pos + 10] == b"Exif\x00\x00":
                changed |= _strip_tiff(data, pos + 10, min(pos + 2 + length, len(data)))
            pos = data.find(b"\xff\xe1", pos + 2)
    elif data.startswith(b"\x89PNG\r\n\x1a\n"):
        for kind, start, length in _png_chunks(data):
            if kind == b"eXIf" and _strip_tiff(data, start, start + length):
                struct.pack_into(">I", data, start + length, zlib.crc32(data[start - 4 : start + length]))
                changed = True
    elif data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        for kind, start, length in _webp_chunks(data):
            if kind == b"EXIF":
                changed |= _strip_tiff(data, _webp_exif(data, start, length), start + length)
    return bytes(data) if changed else None
