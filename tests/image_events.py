"""One scenario of issue 11's event side, run on every backend (local, S3, GCS, Azure): only real images are
recorded, with their width and height, and a GPS position is stripped, refused or kept (``LOCATION_METADATA``).

Each backend's test module gives a :class:`Backend`: the service on that storage, and ``store``, which uploads
an object under a ticket and delivers every storage event that follows (the rewrite's too) through that
cloud's own event reader and :meth:`SessionService.record_events`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from hera_sessions.core import keys
from hera_sessions.core.models import FileRecord, UploadRequest
from hera_sessions.core.service import SessionService
from tests.images import exif_block, exif_of, gps_of, jpeg, png, webp


@dataclass
class Backend:
    service: SessionService
    #: (key, body, content type): upload the object and deliver every event it causes, until none is left
    store: Callable[[str, bytes, str], None]
    #: the object now stored at a key, or None
    fetch: Callable[[str], bytes | None]

    def session(self) -> str:
        sid = keys.new_session_id()
        self.service.metadata.create_session(sid, time.time(), self.service.settings.session_ttl)
        return sid

    def upload(self, sid: str, path: str, body: bytes, content_type: str) -> FileRecord | None:
        """Ticket, upload, events: the record the file ended with (None: not recorded)."""
        self.service.create_upload(sid, UploadRequest(path, content_type, len(body)))
        self.store(keys.object_key(sid, path), body, content_type)
        return self.service.metadata.get_file(sid, path)


TEXT = b"Dear diary, this is not a picture at all.\n" * 4
GPS_JPEG = jpeg(8, 6, exif=exif_block(orientation=6))
#: A JPEG whose ICC profile (APP2) comes before its SOF: the size lies beyond the first read.
BIG_HEADER_JPEG = jpeg(12, 4, icc_profile=bytes(70_000))


def only_real_images_are_recorded(backend: Backend) -> None:
    sid = backend.session()
    # GIVEN a text file named .png, and a JPEG declared (and named) as a PNG
    for path, body in (("notes.png", TEXT), ("photo.png", jpeg(4, 3))):
        # WHEN each is uploaded under its ticket THEN it is not recorded and the object is gone
        assert backend.upload(sid, path, body, "image/png") is None, path
        assert backend.fetch(keys.object_key(sid, path)) is None, path
    # GIVEN real PNG, JPEG and WebP images WHEN uploaded THEN each is recorded with the size its header gives
    for path, body, ctype, size in (
        ("a.png", png(7, 3), "image/png", (7, 3)),
        ("b.jpg", jpeg(9, 5), "image/jpeg", (9, 5)),
        ("c.webp", webp(11, 4), "image/webp", (11, 4)),
        ("d.webp", webp(6, 2, lossless=True), "image/webp", (6, 2)),
        ("e.jpg", BIG_HEADER_JPEG, "image/jpeg", (12, 4)),  # its size lies beyond the first 64 KiB
    ):
        record = backend.upload(sid, path, body, ctype)
        assert record is not None, path
        assert (record.width, record.height, record.content_type, record.location) == (*size, ctype, "none")
        assert record.to_json()["width"] == size[0]
        assert backend.fetch(keys.object_key(sid, path)) == body
    assert sorted(r.path for r in backend.service.list_files(sid)) == ["a.png", "b.jpg", "c.webp", "d.webp", "e.jpg"]


def a_gps_position_is_handled_by_the_setting(backend: Backend) -> None:
    """What ``LOCATION_METADATA`` (the backend's setting) does with a JPEG that has a GPS IFD and orientation 6."""
    mode = backend.service.settings.location_metadata
    sid = backend.session()
    key = keys.object_key(sid, "gps.jpg")
    assert 0x8825 in exif_of(GPS_JPEG)  # GIVEN a photo that says where it was taken
    record = backend.upload(sid, "gps.jpg", GPS_JPEG, "image/jpeg")
    stored = backend.fetch(key)
    if mode == "refuse":  # THEN refused: not recorded, the object gone
        assert record is None
        assert stored is None
        return
    assert record is not None
    assert (record.width, record.height) == (8, 6)
    assert stored is not None
    if mode == "keep":  # THEN kept as it came
        assert record.location == "kept"
        assert stored == GPS_JPEG
        return
    # THEN stripped: recorded once, as "stripped"; stored without GPS, orientation kept, no byte moved
    assert record.location == "stripped"
    assert record.size == len(GPS_JPEG) == len(stored)
    assert stored != GPS_JPEG
    tags = exif_of(stored)
    assert tags[0x0112] == 6
    assert 0x8825 not in tags
    assert gps_of(stored) == {}
    assert stored[: GPS_JPEG.index(b"Exif")] == GPS_JPEG[: GPS_JPEG.index(b"Exif")]
    assert stored[-200:] == GPS_JPEG[-200:]  # the image data as it was
    assert [r.path for r in backend.service.list_files(sid)] == ["gps.jpg"]
