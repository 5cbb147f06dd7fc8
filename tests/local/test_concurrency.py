"""Local metadata: two processes writing the same session lose no update (per-session file lock)."""

from __future__ import annotations

import multiprocessing
import time
from pathlib import Path

from hera_sessions.backends.metadata.base import Limits
from hera_sessions.backends.metadata.local import LocalMetadataStore
from hera_sessions.core.keys import new_session_id
from hera_sessions.core.models import Reservation

LIMITS = Limits(max_files=10_000, max_bytes=10**9, upload_max=10**6)


def reserve_many(root: str, sid: str, prefix: str, count: int) -> None:
    store = LocalMetadataStore(Path(root))
    for i in range(count):
        store.reserve_upload(
            sid, Reservation(f"{prefix}/{i}.png", 1, "image/png", time.time() + 600), LIMITS, time.time(), 600
        )
        store.put_meta(sid, f"{prefix}_{i % 5}", b"{}", time.time(), 600)


def test_two_processes_lose_no_update(tmp_path: Path) -> None:
    store = LocalMetadataStore(tmp_path)
    sid = new_session_id()
    store.create_session(sid, time.time(), 600)
    ctx = multiprocessing.get_context("spawn")
    workers = [ctx.Process(target=reserve_many, args=(str(tmp_path), sid, name, 150)) for name in ("a", "b")]
    for w in workers:
        w.start()
    for w in workers:
        w.join(60)
        assert w.exitcode == 0
    assert len(store.reservations(sid)) == 300
    assert all(store.get_meta(sid, f"{p}_{i}") == b"{}" for p in "ab" for i in range(5))
