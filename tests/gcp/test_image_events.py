"""GCS (emulator): only real images are recorded, and the GPS rule (tests/image_events.py), through
gcp/main.py's storage_events function. The emulator sends no notifications: each "finalized" CloudEvent is built
from the object resource GCS reports, for the upload and then for the rewrite (a new generation)."""

from __future__ import annotations

from typing import Any

import pytest
import requests

from tests.gcp.conftest import Bucket, Functions, cloud_event
from tests.image_events import Backend, a_gps_position_is_handled_by_the_setting, only_real_images_are_recorded


@pytest.fixture
def location_mode() -> str:
    return "strip"


@pytest.fixture
def gcp_env(gcp_env: dict[str, str], location_mode: str) -> dict[str, str]:
    return {**gcp_env, "LOCATION_METADATA": location_mode}


def current(bucket: Bucket, key: str) -> dict[str, Any] | None:
    try:
        return bucket.resource(key)
    except requests.HTTPError:
        return None


def gcs_backend(functions: Functions, bucket: Bucket) -> Backend:
    def store(key: str, body: bytes, content_type: str) -> None:
        resource: dict[str, Any] | None = bucket.put(key, body, content_type)
        sent: set[str] = set()
        while resource is not None and resource["generation"] not in sent:  # the upload, then the rewrite
            sent.add(resource["generation"])
            response = functions.send(cloud_event("finalized", resource))
            assert response.status_code == 200, response.get_data(as_text=True)
            resource = current(bucket, key)

    def fetch(key: str) -> bytes | None:
        return bucket.get(key) if current(bucket, key) is not None else None

    return Backend(functions.runtime.service(), store, fetch)


def test_only_real_images_are_recorded(functions: Functions, gcs_bucket: Bucket) -> None:
    only_real_images_are_recorded(gcs_backend(functions, gcs_bucket))


@pytest.mark.parametrize("location_mode", ["strip", "refuse", "keep"])
def test_a_gps_position_is_stripped_refused_or_kept(functions: Functions, gcs_bucket: Bucket) -> None:
    a_gps_position_is_handled_by_the_setting(gcs_backend(functions, gcs_bucket))


def test_read_head_reads_the_first_bytes(functions: Functions, gcs_bucket: Bucket) -> None:
    storage = functions.runtime.service().storage
    key = "sessions/" + "A" * 32 + "/a.png"
    resource = gcs_bucket.put(key, b"0123456789")
    assert storage.read_head(key, resource["generation"], 4) == b"0123"
    assert storage.read_head(key, None, 64) == b"0123456789"
    assert storage.read_head("sessions/" + "A" * 32 + "/none.png", None, 4) is None
