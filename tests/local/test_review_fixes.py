"""The local server and local storage against the review's findings, over raw sockets where HTTP is involved."""

from __future__ import annotations

import base64
import io
import os
import secrets
import time
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hera_sessions import cli
from hera_sessions.backends.storage.base import UploadSpec
from hera_sessions.backends.storage.local import LocalStorage, S3Error
from hera_sessions.core.errors import InvalidInputError, MetadataUnavailableError
from hera_sessions.runtimes.local.app import LocalApp
from hera_sessions.runtimes.local.outbox import Outbox
from hera_sessions.runtimes.local.server import LocalServer
from tests.local.helpers import eventually, exchange, local_server, statuses

BOUNDARY = "XyZb0undary"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalServer]:
    sessions = tmp_path_factory.mktemp("sessions")
    with local_server(sessions, timeout=2, UPLOAD_MAX_BYTES=str(12 * 1024 * 1024)) as srv:
        yield srv
    srv.runtime.service().metadata.close()


def storage_of(server: LocalServer) -> LocalStorage:
    storage = server.runtime.service().storage
    assert isinstance(storage, LocalStorage)
    return storage


def new_key(path: str = "photos/a.png") -> str:
    return f"sessions/{secrets.token_urlsafe(24)}/{path}"


def post_ticket(storage: LocalStorage, key: str, size: int) -> dict[str, str]:
    ticket = storage.presign_upload(UploadSpec(key, "image/png", size, "POST", 60, time.time() + 60))
    return dict(ticket.fields)


def form_body(fields: dict[str, str], data: bytes, part_headers: bytes = b"", close: bool = True) -> bytes:
    b = BOUNDARY.encode()
    parts = [
        b"--" + b + b'\r\nContent-Disposition: form-data; name="' + k.encode() + b'"\r\n\r\n' + v.encode() + b"\r\n"
        for k, v in fields.items()
    ]
    parts.append(
        b"--" + b + b'\r\nContent-Disposition: form-data; name="file"; filename="x.png"\r\n'
        b"Content-Type: image/png\r\n" + part_headers + b"\r\n" + data + b"\r\n"
    )
    return b"".join(parts) + (b"--" + b + b"--\r\n" if close else b"")


def raw_post(body: bytes, extra: bytes = b"") -> bytes:
    return (
        b"POST /local-storage/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
        b"Content-Type: multipart/form-data; boundary=" + BOUNDARY.encode() + b"\r\n"
        b"Content-Length: " + str(len(body)).encode() + b"\r\n" + extra + b"\r\n" + body
    )


def status_of(answer: bytes) -> int:
    found = statuses(answer)
    assert found, answer[:200]
    return found[0]


class CountingInput(io.BytesIO):
    """A request body that remembers how much of it the app read."""

    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.taken = 0

    def read(self, size: int | None = -1) -> bytes:
        chunk = super().read(size)
        self.taken += len(chunk)
        return chunk


def wsgi_post(app: LocalApp, body: bytes) -> tuple[str, bytes, CountingInput]:
    stream = CountingInput(body)
    environ: dict[str, Any] = {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": "/local-storage/",
        "REQUEST_URI": "/local-storage/",
        "CONTENT_TYPE": f"multipart/form-data; boundary={BOUNDARY}",
        "CONTENT_LENGTH": str(len(body)),
        "wsgi.input": stream,
    }
    got: list[str] = []
    answer = b"".join(app(environ, lambda status, headers, exc_info=None: got.append(status)))  # type: ignore[arg-type,misc,return-value]
    return got[0], answer, stream


# -- 1: form POSTs are streamed ------------------------------------------------------------------------------
def test_a_form_post_with_a_bad_signature_is_refused_before_its_file_is_read(server: LocalServer) -> None:
    storage = storage_of(server)
    key = new_key()
    fields = post_ticket(storage, key, 10 * 1024 * 1024)
    fields["x-hera-signature"] = "forged"
    status, _, stream = wsgi_post(LocalApp(server.runtime), form_body(fields, b"\n" * (10 * 1024 * 1024)))
    assert status.startswith("403")
    assert stream.taken < 1024 * 1024  # the policy was checked on the fields alone
    assert list(storage.list_prefix(key)) == []


def test_a_large_form_post_of_newlines_is_stored_without_holding_it_in_memory(server: LocalServer) -> None:
    storage = storage_of(server)
    key = new_key()
    data = b"\n" * (10 * 1024 * 1024)
    body = form_body(post_ticket(storage, key, len(data)), data)
    tracemalloc.start()
    try:
        status, answer, _ = wsgi_post(LocalApp(server.runtime), body)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert status.startswith("204"), answer
    assert storage.read(key) == data
    assert peak < 4 * 1024 * 1024  # the body itself is 10 MB


@pytest.mark.parametrize(
    "data",
    [b"\x89PNG\n\nabc\ndef\n", b"\x89PNG\r\rabc\rdef\r", b"\x89PNG\r\n\r\n", b"\x89PNG\r\n--XyZb0undarx\r\n"],
)
def test_a_form_posts_file_is_stored_byte_for_byte(server: LocalServer, data: bytes) -> None:
    storage = storage_of(server)
    key = new_key()
    answer = exchange(server.address, raw_post(form_body(post_ticket(storage, key, len(data)), data)))
    assert status_of(answer) == 204, answer
    assert storage.read(key) == data


def test_a_form_parts_transfer_encoding_is_ignored_as_s3_does(server: LocalServer) -> None:
    storage = storage_of(server)
    key = new_key()
    data = base64.b64encode(b"\x89PNG1234")
    body = form_body(post_ticket(storage, key, len(data)), data, b"Content-Transfer-Encoding: base64\r\n")
    assert status_of(exchange(server.address, raw_post(body))) == 204
    assert storage.read(key) == data  # the raw bytes of the part


def test_a_form_post_without_its_closing_boundary_stores_nothing(server: LocalServer) -> None:
    storage = storage_of(server)
    key = new_key()
    data = b"\x89PNG" * 1000
    answer = exchange(server.address, raw_post(form_body(post_ticket(storage, key, len(data)), data, close=False)))
    assert status_of(answer) == 400 and b"MalformedPOSTRequest" in answer
    assert list(storage.list_prefix(key)) == []
    assert list(storage.staging.iterdir()) == []


def test_form_fields_before_the_file_are_capped_as_s3_caps_them(server: LocalServer) -> None:
    storage = storage_of(server)
    key = new_key()
    fields = post_ticket(storage, key, 4)
    fields["x-filler"] = "a" * 30_000
    answer = exchange(server.address, raw_post(form_body(fields, b"\x89PNG")))
    assert status_of(answer) == 400 and b"MaxPostPreDataLengthExceeded" in answer
    assert list(storage.list_prefix(key)) == []


def test_a_form_post_over_its_policys_size_stores_nothing(server: LocalServer) -> None:
    storage = storage_of(server)
    key = new_key()
    answer = exchange(server.address, raw_post(form_body(post_ticket(storage, key, 4), b"\x89PNG-too-long")))
    assert status_of(answer) == 400 and b"EntityTooLarge" in answer
    assert list(storage.list_prefix(key)) == []


# -- local storage on its own ----------------------------------------------------------------------------------
class Sink:
    """An event sink that keeps what it is given (or fails, as a full disk would)."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.fail = False

    def put(self, payload: dict[str, Any]) -> None:
        if self.fail:
            raise OSError(28, "No space left on device")
        self.events.append(payload["Records"][0]["s3"]["object"])


@pytest.fixture
def storage(tmp_path: Path) -> LocalStorage:
    return LocalStorage(tmp_path, "secret", "http://x", Sink())


SID = "A" * 32


# 5: the object's folder is made durable before its event
def test_a_write_and_a_delete_fsync_the_objects_folder_before_the_event(
    storage: LocalStorage, monkeypatch: pytest.MonkeyPatch
) -> None:
    synced: list[str] = []
    real_fsync = os.fsync

    def fsync(fd: int) -> None:  # the real fsync, remembering what it made durable
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    sink = storage.events
    assert isinstance(sink, Sink)
    real_put = sink.put
    at_event: list[list[str]] = []
    monkeypatch.setattr(sink, "put", lambda payload: (at_event.append(list(synced)), real_put(payload)))
    key = f"sessions/{SID}/new/dir/a.png"
    storage.write(key, b"\x89PNG")
    folder = str(storage.open(key).parent)
    assert folder in at_event[0]  # the object's folder, before the event
    assert str(storage.root / "sessions") in at_event[0]  # and the new session folder in its parent
    synced.clear()
    storage.delete(key)
    assert folder in at_event[1]


# 6, 7: every key the rules accept is storable, listable and deletable; file and folder names never collide
@pytest.mark.parametrize(
    "paths",
    [
        ["a" * 252 + ".png"],
        ["/".join(["b" * 10] * 22) + "/" + "c" * (256 - 22 * 11 - 4) + ".png"],
        ["d.png/x.png", "d.png"],
        ["e.png", "e.png/y.png"],
    ],
)
def test_every_key_the_rules_accept_is_stored_listed_and_deleted(storage: LocalStorage, paths: list[str]) -> None:
    keys_ = [f"sessions/{SID}/{p}" for p in paths]
    for i, key in enumerate(keys_):
        storage.write(key, b"\x89PNG" + bytes([i]))
    for i, key in enumerate(keys_):
        assert storage.read(key) == b"\x89PNG" + bytes([i])
    assert [o.key for o in storage.list_prefix(f"sessions/{SID}/")] == sorted(keys_)
    assert [o.key for o in storage.list_prefix("sessions/")] == sorted(keys_)
    for key in keys_:
        storage.delete(key)
    assert list(storage.list_prefix("sessions/")) == []
    assert [p for p in storage.root.rglob("*") if p.is_file() and p.name != ".sequencer"] == []


def test_a_listing_prefix_never_leaves_the_bucket(storage: LocalStorage, tmp_path: Path) -> None:
    storage.write(f"sessions/{SID}/a.png", b"\x89PNG")
    for prefix in ("sessions/../", "sessions/../../", "../", "/", "sessions/" + SID + "/../"):
        assert [o.key for o in storage.list_prefix(prefix)] in ([], [f"sessions/{SID}/a.png"])
    assert [o.key for o in storage.list_prefix(f"sessions/{SID}/a")] == [f"sessions/{SID}/a.png"]
    assert list(storage.list_prefix(f"sessions/{SID}/b")) == []


# 10: sequencers never go back, also after a restart with the clock stepped back
def test_sequencers_grow_across_a_restart_with_the_clock_stepped_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = LocalStorage(tmp_path, "secret", "http://x", Sink())
    first.write(f"sessions/{SID}/a.png", b"\x89PNGA")
    real = time.time_ns
    monkeypatch.setattr(time, "time_ns", lambda: real() - 3600 * 10**9)  # NTP stepped the clock back an hour
    second = LocalStorage(tmp_path, "secret", "http://x", Sink())  # a new process
    second.write(f"sessions/{SID}/a.png", b"\x89PNGB")
    before, after = (s.events[0]["sequencer"] for s in (first.events, second.events))  # type: ignore[union-attr]
    assert after > before


# 13: an object whose event cannot be kept is not kept either
def test_a_write_whose_event_cannot_be_kept_leaves_no_object(storage: LocalStorage) -> None:
    assert isinstance(storage.events, Sink)
    storage.events.fail = True
    with pytest.raises(OSError):
        storage.write(f"sessions/{SID}/a.png", b"\x89PNG")
    assert list(storage.list_prefix("sessions/")) == []
    with pytest.raises(S3Error):
        storage.open(f"sessions/{SID}/a.png")


def test_staging_leftovers_are_swept(storage: LocalStorage) -> None:
    leftover = storage.staging / ("0" * 32)
    leftover.write_bytes(b"half an upload")
    an_hour_ago = time.time() - 3600
    os.utime(leftover, (an_hour_ago, an_hour_ago))
    fresh = storage.staging / ("1" * 32)
    fresh.write_bytes(b"an upload under way")
    assert storage.sweep_staging() == 1
    assert list(storage.staging.iterdir()) == [fresh]


# 19: the lifecycle sweep reads no object
def test_expiry_stats_objects_without_reading_them(storage: LocalStorage, monkeypatch: pytest.MonkeyPatch) -> None:
    storage.write(f"sessions/{SID}/old.png", b"\x89PNG")
    storage.write(f"sessions/{SID}/new.png", b"\x89PNG")
    old = storage.open(f"sessions/{SID}/old.png")
    os.utime(old, (time.time() - 9 * 86_400,) * 2)
    reads: list[Path] = []
    real = Path.read_bytes
    monkeypatch.setattr(Path, "read_bytes", lambda self: (reads.append(self), real(self))[1])
    assert storage.expire(7 * 86_400) == 1
    assert reads == []
    assert [o.key for o in storage.list_prefix("sessions/")] == [f"sessions/{SID}/new.png"]


# -- the outbox -------------------------------------------------------------------------------------------------
def entry(sequencer: str) -> dict[str, Any]:
    return {"Records": [{"s3": {"object": {"sequencer": sequencer, "key": "k"}}}]}


# 3: the deliverer survives an entry that vanishes under it and a round that fails
def test_the_deliverer_survives_an_entry_handled_elsewhere(tmp_path: Path) -> None:
    delivered: list[str] = []
    box: Outbox

    def deliver(payload: dict[str, Any]) -> None:
        sequencer = payload["Records"][0]["s3"]["object"]["sequencer"]
        if sequencer == "1":
            for pending in box.pending():
                if pending.name.startswith("1-"):
                    pending.unlink()  # another deliverer took it
            raise InvalidInputError("refused")
        delivered.append(sequencer)

    box = Outbox(tmp_path, deliver, first_retry=0.05, max_retry=0.1)
    box.put(entry("1"))
    box.start()
    try:
        assert eventually(lambda: not box.pending(), within=20.0)
        box.put(entry("2"))
        assert eventually(lambda: delivered == ["2"], within=20.0)
    finally:
        box.stop()


def test_the_deliverer_survives_a_failing_round(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    delivered: list[str] = []
    box = Outbox(tmp_path, lambda p: delivered.append(p["Records"][0]["s3"]["object"]["sequencer"]), 0.05, 0.1)
    real, failures = box.pending, [OSError(5, "I/O error")]
    monkeypatch.setattr(box, "pending", lambda: real() if not failures else (_ for _ in ()).throw(failures.pop()))
    box.put(entry("1"))
    box.start()
    try:
        assert eventually(lambda: delivered == ["1"], within=20.0)
    finally:
        box.stop()


def test_only_one_deliverer_runs_per_folder(tmp_path: Path) -> None:
    first: list[str] = []
    second: list[str] = []

    def slowly(payload: dict[str, Any]) -> None:
        time.sleep(0.01)
        first.append(payload["Records"][0]["s3"]["object"]["sequencer"])

    one = Outbox(tmp_path, slowly)
    for i in range(50):
        one.put(entry(f"{i:02d}"))
    one.start()
    assert eventually(lambda: one.delivering, within=20.0)
    two = Outbox(tmp_path, lambda p: second.append(p["Records"][0]["s3"]["object"]["sequencer"])).start()
    try:
        assert eventually(lambda: len(first) == 50, within=20.0)
        assert second == [] and not two.delivering  # the second one stayed idle
        one.stop()  # the first goes: the second takes over
        two.put(entry("50"))
        assert eventually(lambda: second == ["50"], within=30)
    finally:
        one.stop()
        two.stop()


# 4: one bad entry does not block the queue, and ends in failed/
def test_an_entry_that_keeps_failing_does_not_block_the_queue(tmp_path: Path) -> None:
    delivered: list[str] = []

    def deliver(payload: dict[str, Any]) -> None:
        sequencer = payload["Records"][0]["s3"]["object"]["sequencer"]
        if sequencer == "1":
            raise KeyError("a bug, or a Redis ResponseError")
        delivered.append(sequencer)

    box = Outbox(tmp_path, deliver, first_retry=0.01, max_retry=0.02, max_attempts=3)
    for sequencer in ("1", "2", "3"):
        box.put(entry(sequencer))
    box.start()
    try:
        assert eventually(lambda: delivered == ["2", "3"], within=20.0)
        assert eventually(lambda: not box.pending(), within=20.0)
        assert [p.name[:2] for p in box.failed.iterdir()] == ["1-"]
    finally:
        box.stop()


# 13: failed entries can be replayed
def test_failed_entries_are_replayed_by_the_cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "outbox"
    box = Outbox(folder, lambda p: None)
    box.put(entry("1"))
    (name,) = [p.name for p in box.pending()]
    os.replace(folder / name, box.failed / name)
    monkeypatch.setenv("SESSIONS_DIR", str(tmp_path))
    assert cli.main(["outbox", "replay"]) == 0
    assert [p.name for p in box.pending()] == [name] and list(box.failed.iterdir()) == []


def test_outbox_tmp_leftovers_are_swept_when_delivery_starts(tmp_path: Path) -> None:
    box = Outbox(tmp_path, lambda p: None)
    leftover = box.tmp / "0-x.json"
    leftover.write_text("{}")
    os.utime(leftover, (time.time() - 3600,) * 2)
    box.start()
    try:
        assert eventually(lambda: not leftover.exists(), within=20.0)
    finally:
        box.stop()


# 14: during an outage a put does not shorten the backoff
def test_a_put_during_an_outage_does_not_trigger_a_retry(tmp_path: Path) -> None:
    calls: list[str] = []

    def deliver(payload: dict[str, Any]) -> None:
        calls.append(payload["Records"][0]["s3"]["object"]["sequencer"])
        raise MetadataUnavailableError("Redis is down.")

    box = Outbox(tmp_path, deliver, first_retry=120, max_retry=120)
    box.put(entry("1"))
    box.start()
    try:
        assert eventually(lambda: calls == ["1"], within=20.0)
        for i in range(2, 7):
            box.put(entry(str(i)))
        time.sleep(1)
        assert calls == ["1"]  # the next try is the backoff's, 120 s away
    finally:
        box.stop()


# 19: the lifecycle sweeper survives a failing round
def test_the_lifecycle_sweeper_survives_an_error(server: LocalServer, monkeypatch: pytest.MonkeyPatch) -> None:
    storage = storage_of(server)
    calls: list[float] = []

    def expire(max_age: float) -> int:
        calls.append(max_age)
        if len(calls) == 1:
            raise OSError(5, "I/O error")
        return 0

    monkeypatch.setattr(storage, "expire", expire)
    stopping = server.sweep_forever(every=0.05)
    try:
        assert eventually(lambda: len(calls) >= 3, within=20.0)
    finally:
        stopping.set()


def test_objects_of_the_earlier_layout_are_moved_into_the_flat_one(tmp_path: Path) -> None:
    old = tmp_path / "objects" / "sessions" / SID / "photos" / "a.png"
    old.parent.mkdir(parents=True)
    old.write_bytes(b"\x89PNG")
    storage = LocalStorage(tmp_path, "secret", "http://x", Sink())
    assert [o.key for o in storage.list_prefix("sessions/")] == [f"sessions/{SID}/photos/a.png"]
    assert storage.read(f"sessions/{SID}/photos/a.png") == b"\x89PNG"
    assert not (tmp_path / "objects" / "sessions" / SID / "photos").exists()
