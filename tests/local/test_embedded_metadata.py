"""Local mode's embedded metadata server: found or started, shared, stopped by its last user, durable."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hera_sessions.backends.metadata.embedded import EmbeddedServer, open_embedded
from hera_sessions.backends.metadata.redis import RedisMetadataStore
from hera_sessions.core.keys import new_session_id
from tests.conftest import SERVICE_KEY

#: A process that opens the store and writes documents, one acknowledged write per line on stdout.
WRITER = """
import sys, time
from hera_sessions.backends.metadata.embedded import open_embedded
store = open_embedded(sys.argv[1])
sid = sys.argv[2]
store.create_session(sid, time.time(), 3600)
i = 0
while True:
    store.put_meta(sid, f"doc{i}", b'{"n":%d}' % i, time.time(), 3600)
    print(i, flush=True)
    i += 1
"""


def server_pid(store: RedisMetadataStore) -> int:
    return int(store.client.info("server")["process_id"])  # type: ignore[index]


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def wait_gone(pid: int, timeout: float = 30) -> bool:
    deadline = time.monotonic() + timeout
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    return not alive(pid)


def child_env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}


def test_the_address_file_is_private_and_the_last_user_stops_the_server(tmp_path: Path) -> None:
    first = open_embedded(tmp_path)
    second = open_embedded(tmp_path)
    pid = server_pid(first)
    address = EmbeddedServer(tmp_path).address_file
    assert stat.S_IMODE(address.stat().st_mode) == 0o600
    assert json.loads(address.read_text())["pid"] == pid
    assert server_pid(second) == pid  # found, not started again

    first.close()  # the starter, but another process-local user remains
    assert alive(pid)
    second.ping()
    second.close()
    assert wait_gone(pid)
    assert not address.exists()


def test_a_kill_9_of_the_parent_loses_no_acknowledged_write(tmp_path: Path) -> None:
    # GIVEN a process that started the server and writes as fast as it can
    sid = new_session_id()
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(tmp_path), sid], stdout=subprocess.PIPE, text=True, env=child_env()
    )
    assert writer.stdout is not None
    acknowledged = [int(writer.stdout.readline()) for _ in range(50)]
    # WHEN it is killed with SIGKILL mid-write (no close, no atexit)
    writer.send_signal(signal.SIGKILL)
    writer.wait(10)
    acknowledged += [int(line) for line in writer.stdout.read().split()]
    orphan = json.loads(EmbeddedServer(tmp_path).address_file.read_text())["pid"]
    assert alive(orphan)
    # THEN the next start adopts the orphan and finds every acknowledged write
    store = open_embedded(tmp_path)
    assert server_pid(store) == orphan
    assert all(store.get_meta(sid, f"doc{i}") == b'{"n":%d}' % i for i in acknowledged)
    # AND a kill -9 of the server itself loses nothing either (AOF, fsync on every write)
    os.kill(orphan, signal.SIGKILL)
    assert wait_gone(orphan)
    store.close()  # the server is gone: nothing to stop
    store = open_embedded(tmp_path)
    try:
        assert server_pid(store) != orphan
        assert all(store.get_meta(sid, f"doc{i}") == b'{"n":%d}' % i for i in acknowledged)
    finally:
        pid = server_pid(store)
        store.close()  # the adopter is the last user: it stops the server
    assert wait_gone(pid)


def test_a_reader_in_another_process_and_folder_sees_what_the_service_wrote(
    tmp_path: Path, local_env: dict[str, str], monkeypatch: pytest.MonkeyPatch, make_runtime
) -> None:  # type: ignore[no-untyped-def]
    # GIVEN the service, run from tmp_path with a relative SESSIONS_DIR, holding a session with a document
    monkeypatch.chdir(tmp_path)
    service = make_runtime({**local_env, "SESSIONS_DIR": "data/sessions"}).service()
    session = service.create_session(f"Bearer {SERVICE_KEY}")
    service.put_meta(session.session_id, "user_profile", b'{"age": 30}')
    # WHEN a reader runs in another process, from another folder, with the same folder as an absolute path
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    program = (
        "import json, sys\n"
        "from hera_sessions.reader import SessionReader\n"
        "with SessionReader.from_env() as reader:\n"
        "    print(json.dumps(reader.document(sys.argv[1], 'user_profile')))\n"
    )
    env = {**child_env(), **local_env, "SESSIONS_DIR": str(tmp_path / "data" / "sessions")}
    out = subprocess.run(
        [sys.executable, "-c", program, session.session_id],
        cwd=elsewhere,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    # THEN it found the service's server and reads the document
    assert json.loads(out.stdout) == {"age": 30}
    assert service.metadata.get_session(session.session_id) is not None  # its leaving did not stop the server
