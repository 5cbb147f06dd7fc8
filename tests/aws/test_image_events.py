"""S3 (moto): only real images are recorded, and the GPS rule (tests/image_events.py). The bucket notifies an
SQS queue; the storage-event function's handler gets each batch, as Lambda's SQS event source hands it over."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from hera_sessions.runtime import Runtime
from tests.aws.conftest import Bucket, LambdaContext, NotificationQueue, load_storage_events_app
from tests.image_events import Backend, a_gps_position_is_handled_by_the_setting, only_real_images_are_recorded


def s3_backend(runtime: Runtime, bucket: Bucket, queue: NotificationQueue, monkeypatch: pytest.MonkeyPatch) -> Backend:
    app = load_storage_events_app()
    monkeypatch.setattr(app, "runtime", runtime)

    def store(key: str, body: bytes, content_type: str) -> None:
        bucket.put(key, body, content_type)
        while (batch := queue.receive())["Records"]:  # the upload's event, then the rewrite's (and deletes')
            assert app.lambda_handler(batch, LambdaContext()) == {"batchItemFailures": []}

    def fetch(key: str) -> bytes | None:
        return bucket.get(key) if key in bucket.keys(key) else None

    return Backend(runtime.service(), store, fetch)


def test_only_real_images_are_recorded(
    s3_env: dict[str, str],
    make_runtime: Callable[..., Runtime],
    s3_bucket: Bucket,
    s3_queue: NotificationQueue,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    only_real_images_are_recorded(s3_backend(make_runtime(s3_env), s3_bucket, s3_queue, monkeypatch))


@pytest.mark.parametrize("mode", ["strip", "refuse", "keep"])
def test_a_gps_position_is_stripped_refused_or_kept(
    s3_env: dict[str, str],
    make_runtime: Callable[..., Runtime],
    s3_bucket: Bucket,
    s3_queue: NotificationQueue,
    monkeypatch: pytest.MonkeyPatch,
    mode: str,
) -> None:
    runtime = make_runtime({**s3_env, "LOCATION_METADATA": mode})
    a_gps_position_is_handled_by_the_setting(s3_backend(runtime, s3_bucket, s3_queue, monkeypatch))


def test_read_head_is_one_ranged_read_of_that_version_only(s3_runtime: Runtime, s3_bucket: Bucket) -> None:
    storage = s3_runtime.service().storage
    key = "sessions/" + "A" * 32 + "/a.png"
    etag = s3_bucket.put(key, b"0123456789")
    assert storage.read_head(key, etag.strip('"'), 4) == b"0123"
    assert storage.read_head(key, None, 64) == b"0123456789"
    s3_bucket.put(key, b"a newer upload")
    assert storage.read_head(key, etag, 4) is None  # that version is gone: the event is stale
    assert not storage.rewrite(key, b"x", "image/png", etag)  # and a rewrite of it is refused
    assert s3_bucket.get(key) == b"a newer upload"
