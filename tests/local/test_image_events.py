"""Local mode: only real images are recorded, and the GPS rule (tests/image_events.py), through local storage's
own notifications, its outbox and the embedded metadata server."""

from __future__ import annotations

import base64
import hashlib
import logging
from collections.abc import Callable
from typing import Any

import pytest

from hera_sessions.backends.storage.local import LocalStorage
from hera_sessions.core import keys
from hera_sessions.core.models import UploadRequest
from hera_sessions.reader import SessionReader
from hera_sessions.runtime import Runtime
from tests.conftest import SERVICE_KEY
from tests.image_events import (
    GPS_JPEG,
    TEXT,
    Backend,
    a_gps_position_is_handled_by_the_setting,
    only_real_images_are_recorded,
)
from tests.local.helpers import settle


def local_backend(runtime: Runtime) -> Backend:
    service = runtime.service()
    storage = service.storage
    assert isinstance(storage, LocalStorage)

    def store(key: str, body: bytes, content_type: str) -> None:
        storage.write(key, body)  # as the object endpoint does for a client's PUT
        settle(runtime)  # the outbox delivers its event (and the rewrite's) through record_events

    def fetch(key: str) -> bytes | None:
        try:
            return storage.read(key)
        except FileNotFoundError:
            return None

    return Backend(service, store, fetch)


def test_only_real_images_are_recorded(local_env: dict[str, str], make_runtime: Callable[..., Runtime]) -> None:
    only_real_images_are_recorded(local_backend(make_runtime(local_env)))


@pytest.mark.parametrize("mode", ["strip", "refuse", "keep"])
def test_a_gps_position_is_stripped_refused_or_kept(
    local_env: dict[str, str], make_runtime: Callable[..., Runtime], mode: str
) -> None:
    a_gps_position_is_handled_by_the_setting(local_backend(make_runtime({**local_env, "LOCATION_METADATA": mode})))


def test_strip_is_the_default(local_env: dict[str, str], make_runtime: Callable[..., Runtime]) -> None:
    assert make_runtime(local_env).service().settings.location_metadata == "strip"


def test_a_refused_object_is_logged_with_its_key_and_reason(
    local_env: dict[str, str], make_runtime: Callable[..., Runtime], caplog: pytest.LogCaptureFixture
) -> None:
    backend = local_backend(make_runtime(local_env))
    sid = backend.session()
    with caplog.at_level(logging.INFO, logger="hera_sessions"):
        assert backend.upload(sid, "notes.png", TEXT, "image/png") is None
    logged: list[Any] = [r for r in caplog.records if r.getMessage() == "storage event not recorded"]
    assert [(r.key, r.outcome, r.reason) for r in logged] == [
        (keys.object_key(sid, "notes.png"), "rejected", "its bytes are not a PNG image (no image format it knows)")
    ]


def local_storage(runtime: Runtime) -> LocalStorage:
    storage = runtime.service().storage
    assert isinstance(storage, LocalStorage)
    return storage


def gps_ticket(runtime: Runtime) -> tuple[Runtime, str, str]:
    """A session holding a ticket for gps.jpg (GPS_JPEG) that declares its MD5: the runtime, session id, MD5."""
    service = runtime.service()
    sid = service.create_session(f"Bearer {SERVICE_KEY}").session_id
    declared = base64.b64encode(hashlib.md5(GPS_JPEG).digest()).decode()
    service.create_upload(sid, UploadRequest("gps.jpg", "image/jpeg", len(GPS_JPEG), content_md5=declared))
    return runtime, sid, declared


def test_a_stripped_record_carries_the_md5_of_the_bytes_stored(
    local_env: dict[str, str], make_runtime: Callable[..., Runtime]
) -> None:
    # GIVEN a ticket for a photo with a GPS position, its MD5 declared, and the photo uploaded as declared
    runtime, sid, declared = gps_ticket(make_runtime(local_env))
    service, storage = runtime.service(), local_storage(runtime)
    storage.write(keys.object_key(sid, "gps.jpg"), GPS_JPEG, content_md5=declared)
    settle(runtime)
    # THEN the record is the stripped version's, with that version's MD5: the reader can verify what it reads
    record = service.get_file(sid, "gps.jpg")
    stored = storage.read(keys.object_key(sid, "gps.jpg"))
    assert record.location == "stripped"
    assert stored != GPS_JPEG
    assert record.content_md5 == base64.b64encode(hashlib.md5(stored).digest()).decode()
    assert SessionReader(service).read(sid, "gps.jpg", verify=True) == stored


def test_other_bytes_than_declared_are_refused_not_stripped(
    local_env: dict[str, str], make_runtime: Callable[..., Runtime]
) -> None:
    # GIVEN a ticket declaring a photo's MD5, and other bytes of the same size (still a JPEG with a GPS position)
    # stored where nothing checks the MD5 on the write (as a form POST: no Content-MD5 header)
    runtime, sid, _ = gps_ticket(make_runtime(local_env))
    service, storage = runtime.service(), local_storage(runtime)
    other = GPS_JPEG[:-3] + bytes([GPS_JPEG[-3] ^ 1]) + GPS_JPEG[-2:]
    storage.write(keys.object_key(sid, "gps.jpg"), other)
    settle(runtime)
    # THEN nothing is recorded and the object is gone: stripping does not launder bytes the client never sent
    assert service.list_files(sid) == []
    with pytest.raises(FileNotFoundError):
        storage.read(keys.object_key(sid, "gps.jpg"))
