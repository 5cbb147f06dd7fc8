"""Local metadata: processes racing on one SESSIONS_DIR share one embedded server and lose no update."""

from __future__ import annotations

import multiprocessing
import time
from pathlib import Path

from hera_sessions.backends.metadata.embedded import open_embedded
from hera_sessions.core.keys import new_session_id
from hera_sessions.core.models import Reservation
from hera_sessions.core.rules import Limits

LIMITS = Limits(max_files=10_000, max_bytes=10**9, upload_max=10**6)


def reserve_many(root: str, sid: str, prefix: str, count: int, pids: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    store = open_embedded(root)
    pids.put(int(store.client.info("server")["process_id"]))  # type: ignore[index]
    store.create_session(sid, time.time(), 600)  # both may create it: the second only refreshes @c and the TTL
    for i in range(count):
        store.reserve_upload(
            sid, Reservation(f"{prefix}/{i}.png", 1, "image/png", time.time() + 600), LIMITS, time.time(), 600
        )
        store.put_meta(sid, f"{prefix}_{i % 5}", b"{}", time.time(), 600)
    store.close()


def test_two_processes_share_one_server_and_lose_no_update(tmp_path: Path) -> None:
    # GIVEN two processes that open the same SESSIONS_DIR at once, with no server running
    sid = new_session_id()
    ctx = multiprocessing.get_context("spawn")
    pids = ctx.Queue()
    workers = [ctx.Process(target=reserve_many, args=(str(tmp_path), sid, name, 150, pids)) for name in ("a", "b")]
    # WHEN both write the same session
    for w in workers:
        w.start()
    for w in workers:
        w.join(60)
        assert w.exitcode == 0
    # THEN they used one server, and every write is there (after the last of them stopped it, from its AOF)
    assert pids.get(timeout=5) == pids.get(timeout=5)
    store = open_embedded(tmp_path)
    try:
        assert len(store.reservations(sid)) == 300
        assert all(store.get_meta(sid, f"{p}_{i}") == b"{}" for p in "ab" for i in range(5))
    finally:
        store.close()
