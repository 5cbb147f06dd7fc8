"""Local storage events are at-least-once, as S3's: kept on disk before the answer, delivered after it."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from hera_sessions.backends.storage.local import LocalStorage, S3Error
from hera_sessions.core.events import UnreadableEventError
from hera_sessions.core.models import EventKind, StorageEvent
from hera_sessions.runtime import Runtime
from hera_sessions.runtimes.local.server import LocalServer
from tests.conftest import SERVICE_KEY, RedisServer, free_port
from tests.envs import service_env
from tests.local.helpers import PNG, eventually, listed, new_ticket, outbox_of, settle
from tests.servers import HeraServe


def redis_env(sessions_dir: Path, redis: RedisServer, port: int) -> dict[str, str]:
    return service_env("local", "redis", redis_url=redis.url, sessions_dir=sessions_dir, PORT=str(port))


@pytest.fixture
def redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A redis-server of this test's own, to pause and resume."""
    server = RedisServer(tmp_path / "redis")
    yield server
    assert server.proc is not None
    os.kill(server.proc.pid, signal.SIGCONT)
    server.stop()


def test_an_upload_during_a_redis_outage_is_recorded_once_redis_returns(tmp_path: Path, redis: RedisServer) -> None:
    port = free_port()
    server = LocalServer(Runtime(redis_env(tmp_path / "data", redis, port)), port=port).start()
    try:
        sid, auth, ticket = new_ticket(server.url)
        assert redis.proc is not None
        os.kill(redis.proc.pid, signal.SIGSTOP)  # GIVEN Redis stops answering
        # WHEN a client uploads through the ticket it got before
        answer = requests.put(ticket["url"], data=PNG, headers=ticket["headers"], timeout=30)
        storage = server.runtime.service().storage
        assert isinstance(storage, LocalStorage)
        if answer.status_code != 200:  # either refused, leaving nothing...
            with pytest.raises(FileNotFoundError):
                storage.read(ticket["key"])
            return
        assert storage.read(ticket["key"]) == PNG  # ...or accepted, and its event waits on disk
        os.kill(redis.proc.pid, signal.SIGCONT)  # THEN once Redis is back, the file is recorded
        assert eventually(lambda: listed(server.url, sid, auth) == ["photos/user.png"], within=30)
        settle(server.runtime)
    finally:
        server.stop()
        server.runtime.service().metadata.close()


def test_a_server_killed_with_a_pending_event_delivers_it_when_restarted(tmp_path: Path, redis: RedisServer) -> None:
    port = free_port()
    env = redis_env(tmp_path / "data", redis, port)
    base = f"http://127.0.0.1:{port}"
    first = HeraServe(env, tmp_path, name="first")
    assert redis.proc is not None
    try:
        sid, auth, ticket = new_ticket(base)
        os.kill(redis.proc.pid, signal.SIGSTOP)  # the deliverer cannot record: the event stays pending
        answer = requests.put(ticket["url"], data=PNG, headers=ticket["headers"], timeout=30)
        assert answer.status_code == 200
        pending = list((tmp_path / "data" / "outbox").glob("*.json"))
        assert len(pending) == 1
        first.kill()  # kill -9, with the event still in the outbox
    finally:
        first.kill()
        os.kill(redis.proc.pid, signal.SIGCONT)
    second = HeraServe(env, tmp_path, name="second")
    try:
        assert eventually(lambda: listed(base, sid, auth) == ["photos/user.png"], within=30)
        assert eventually(lambda: not list((tmp_path / "data" / "outbox").glob("*.json")))
    finally:
        second.signal(signal.SIGTERM)
        second.wait(15)
    assert second.proc is not None
    assert second.proc.returncode == 0


def test_an_event_that_cannot_be_processed_is_moved_aside_and_the_queue_goes_on(local_env: dict[str, str]) -> None:
    port = free_port()
    runtime = Runtime({**local_env, "PORT": str(port)})
    server = LocalServer(runtime, port=port).start()
    try:
        outbox = outbox_of(runtime)
        outbox.stop()  # hold delivery while the queue is set up
        bad = outbox.folder / "00000000000000000000-bad.json"
        bad.write_text(json.dumps({"Records": [{"eventName": "ObjectCreated:Put"}]}))
        sid, auth, ticket = new_ticket(server.url)
        assert requests.put(ticket["url"], data=PNG, headers=ticket["headers"], timeout=5).status_code == 200
        assert len(outbox.pending()) == 2
        outbox.start()
        assert eventually(lambda: listed(server.url, sid, auth) == ["photos/user.png"])
        settle(runtime)
        assert [p.name for p in outbox.failed.iterdir()] == [bad.name]
    finally:
        server.stop()
        runtime.service().metadata.close()


def test_an_upload_is_acknowledged_only_once_its_event_is_on_disk(local_env: dict[str, str]) -> None:
    port = free_port()
    runtime = Runtime({**local_env, "PORT": str(port)})
    server = LocalServer(runtime, port=port).start()
    try:
        outbox = outbox_of(runtime)
        outbox.stop()
        _, _, ticket = new_ticket(server.url)
        assert requests.put(ticket["url"], data=PNG, headers=ticket["headers"], timeout=5).status_code == 200
        (entry,) = outbox.pending()
        record = json.loads(entry.read_text())["Records"][0]
        assert record["eventName"] == "ObjectCreated:Put"
        assert record["s3"]["object"]["key"] == ticket["key"]
        outbox.start()
        settle(runtime)
    finally:
        server.stop()
        runtime.service().metadata.close()


# -- keys outside the rules never touch the disk ---------------------------------------------------------


def test_an_event_with_dot_dot_in_its_key_deletes_nothing_outside(local_env: dict[str, str], tmp_path: Path) -> None:
    runtime = Runtime(local_env)
    service = runtime.service()
    data = Path(local_env["SESSIONS_DIR"])
    victims = [data / "objects" / "x", data / "x", data.parent / "x"]
    for victim in victims:
        victim.write_text("keep me")
    sid = service.create_session(f"Bearer {SERVICE_KEY}").session_id
    storage = service.storage
    assert isinstance(storage, LocalStorage)
    storage.write(f"sessions/{sid}/a/b.png", PNG)  # the session's folders exist, so '..' could climb out
    escapes = ("../../x", "../../../x", "../../../../x", "a/../../../../x", "a/../../../../../x")
    for key in (f"sessions/{sid}/{escape}" for escape in escapes):
        for event in (
            StorageEvent(EventKind.CREATED, key, "01", 7, None, "image/png"),
            StorageEvent(EventKind.REMOVED, key, "02"),
        ):
            with pytest.raises(UnreadableEventError):  # refused before any storage call
                service.record_events([event])
    assert [v.read_text() for v in victims] == ["keep me"] * 3
    settle(runtime)
    service.metadata.close()


def test_racing_writes_leave_the_record_matching_the_object_that_stays(local_env: dict[str, str]) -> None:
    # GIVEN eight writers of one key, started together, forty times over
    runtime = Runtime(local_env)
    service = runtime.service()
    storage = service.storage
    assert isinstance(storage, LocalStorage)
    sid = service.create_session(f"Bearer {SERVICE_KEY}").session_id
    key = f"sessions/{sid}/photos/a.png"
    mismatched = 0
    for _ in range(40):
        barrier = threading.Barrier(8)

        def write(i: int, barrier: threading.Barrier = barrier) -> None:
            barrier.wait()
            storage.write(key, PNG[:-1] + bytes([i]))

        writers = [threading.Thread(target=write, args=(i,)) for i in range(8)]
        for w in writers:
            w.start()
        for w in writers:
            w.join()
        settle(runtime)
        (record,) = service.list_files(sid)
        # THEN the record always names the bytes that stayed
        mismatched += (record.etag or "").strip('"') != hashlib.md5(storage.read(key)).hexdigest()
    assert mismatched == 0
    service.metadata.close()


@pytest.mark.parametrize("key", ["sessions/{sid}/../../x", "sessions/{sid}/a/./b.png", "sessions/{sid}//b.png"])
def test_local_storage_refuses_keys_outside_the_rules(local_env: dict[str, str], key: str) -> None:
    storage = Runtime(local_env).service().storage
    assert isinstance(storage, LocalStorage)
    key = key.format(sid="a" * 32)
    with pytest.raises(S3Error):
        storage.write(key, b"x")
    with pytest.raises(S3Error):
        storage.open(key)
    storage.delete(key)  # nothing to delete: no error, nothing touched
    assert not any(p.is_file() for p in storage.root.rglob("*"))


def test_a_runtime_started_later_delivers_what_an_earlier_one_left(local_env: dict[str, str]) -> None:
    first = Runtime(local_env)
    outbox = outbox_of(first)
    outbox.stop()
    service = first.service()
    sid = service.create_session(f"Bearer {SERVICE_KEY}").session_id
    storage = service.storage
    assert isinstance(storage, LocalStorage)
    storage.write(f"sessions/{sid}/photos/a.png", PNG)
    assert len(outbox.pending()) == 1
    service.metadata.close()

    second = Runtime(local_env)
    settle(second)
    assert [f.path for f in second.service().list_files(sid)] == ["photos/a.png"]
    second.service().metadata.close()
