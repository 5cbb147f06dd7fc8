"""Azure Blob (Azurite): only real images are recorded, and the GPS rule (tests/image_events.py), through
azure/function_app.py's Event Grid trigger. Azurite sends no events: each BlobCreated event is built from the
blob's properties, for the upload and then for the rewrite (a new ETag)."""

from __future__ import annotations

from collections.abc import Callable
from itertools import count
from types import ModuleType

import pytest
from azure.core.exceptions import ResourceNotFoundError
from azure.storage.blob import ContentSettings

from hera_sessions.runtime import Runtime
from tests.azure.conftest import Container, blob_created_event, sequencer, trigger_event
from tests.image_events import Backend, a_gps_position_is_handled_by_the_setting, only_real_images_are_recorded


def azure_backend(function_app: ModuleType, runtime: Runtime, container: Container) -> Backend:
    order = count(1)

    def etag_of(key: str) -> str | None:
        try:
            etag: str = container.client.get_blob_client(key).get_blob_properties().etag
        except ResourceNotFoundError:
            return None
        return etag

    def store(key: str, body: bytes, content_type: str) -> None:
        settings = ContentSettings(content_type=content_type)
        container.client.upload_blob(key, body, overwrite=True, content_settings=settings)
        sent: set[str] = set()
        while (etag := etag_of(key)) is not None and etag not in sent:  # the upload, then the rewrite
            sent.add(etag)
            props = container.client.get_blob_client(key).get_blob_properties()
            event = blob_created_event(
                container.name,
                key,
                size=props.size,
                content_type=props.content_settings.content_type,
                etag=etag,
                sequencer=sequencer(next(order)),
            )
            function_app.storage_events(trigger_event(event))

    def fetch(key: str) -> bytes | None:
        return container.client.download_blob(key).readall() if etag_of(key) is not None else None

    return Backend(runtime.service(), store, fetch)


def test_only_real_images_are_recorded(
    function_app: ModuleType, azure_runtime: Runtime, azure_container: Container
) -> None:
    only_real_images_are_recorded(azure_backend(function_app, azure_runtime, azure_container))


@pytest.mark.parametrize("mode", ["strip", "refuse", "keep"])
def test_a_gps_position_is_stripped_refused_or_kept(
    function_app: ModuleType,
    azure_env: dict[str, str],
    make_runtime: Callable[..., Runtime],
    azure_container: Container,
    monkeypatch: pytest.MonkeyPatch,
    mode: str,
) -> None:
    runtime = make_runtime({**azure_env, "LOCATION_METADATA": mode})
    monkeypatch.setattr(function_app, "runtime", runtime)
    a_gps_position_is_handled_by_the_setting(azure_backend(function_app, runtime, azure_container))


def test_read_head_is_one_ranged_read_of_that_version_only(azure_runtime: Runtime, azure_container: Container) -> None:
    storage = azure_runtime.service().storage
    key = "sessions/" + "A" * 32 + "/a.png"
    etag = azure_container.client.upload_blob(key, b"0123456789").get_blob_properties().etag
    assert storage.read_head(key, etag, 4) == b"0123"
    assert storage.read_head(key, etag.strip('"'), 64) == b"0123456789"
    azure_container.client.upload_blob(key, b"a newer upload", overwrite=True)
    assert storage.read_head(key, etag, 4) is None  # that version is gone: the event is stale
    assert not storage.rewrite(key, b"x", "image/png", etag)  # and a rewrite of it is refused
    assert azure_container.client.download_blob(key).readall() == b"a newer upload"
