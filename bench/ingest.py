"""Figure 3: event ingestion — S3 events per second through the storage-event function, SQS batches of 1,000.

Ours is ``functions/storage_events/app.lambda_handler`` (the real function: Powertools logger and metrics, the
partial batch response, ``SessionService.record_events`` with the ordering guard, quotas and session checks);
the reference is :mod:`bench.reference.events_app` (Powertools' ``BatchProcessor``, one ``SET ... EX`` round trip
per event). Both run warm in one worker process against one redis-server, on batches of S3 ``ObjectCreated``
notifications with distinct, increasing sequencers, spread over 100 pre-created sessions (10 files each,
overwritten batch after batch). Ours runs into sessions that already hold 0, 50 and 200 file records (each fill
level its own 100 sessions), batches of every level alternating with the reference's.

The limit beside it: ``redis-benchmark -c 1 -P 16 -t set`` against the same server, the SETs per second one
client reaches when it pipelines (no script, no parsing): what recording cannot beat.
"""

from __future__ import annotations

import json
import random
import shutil
import subprocess
import sys
import tempfile
import time
from typing import Any

from bench.common import (
    BUCKET,
    EVENTS_DIR,
    REFERENCE_DIR,
    TOKEN_SECRET,
    LambdaContext,
    Result,
    Row,
    base_env,
    create_sessions,
    log,
    median,
    record_files,
    redis_server,
    run_worker,
    worker_main,
)
from bench.workload import Sequencers, session_ids, upload_batch, with_etag
from tests.envs import service_env

SESSIONS = 100
FILES_PER_SESSION = 10
#: File records each session holds before the batches start (the first FILES_PER_SESSION are the batches' own).
FILL_LEVELS = (0, 50, 200)
#: Sessions may hold the fullest level (the default quota is 50 files).
MAX_FILES = 1_000
FIRST_SEQUENCER = 0x0062A3F1B2C4D5E600


def work(config: dict[str, Any]) -> dict[str, Any]:
    """In the worker: both handlers warm, batches alternating, seconds per batch for each."""
    import app  # functions/storage_events/app.py (PYTHONPATH)
    import events_app  # bench/reference/events_app.py (PYTHONPATH)
    import redis

    # Each side: (handler, the sessions its batches go to); ours once for every fill level.
    levels: dict[str, list[str]] = config["sessions"]
    sides = {f"ours, {level} records": (app.lambda_handler, sessions) for level, sessions in levels.items()}
    sides["reference"] = (events_app.lambda_handler, levels[str(FILL_LEVELS[0])])
    etag = _stock_objects(app.runtime.service().storage, [s for sessions in levels.values() for s in sessions])
    size, runs = config["batch"], config["runs"]
    rng = random.Random(9)
    sequencer = Sequencers(FIRST_SEQUENCER)
    context = LambdaContext()
    probe: Any = redis.Redis.from_url(config["redis_url"])
    seconds: dict[str, list[float]] = {side: [] for side in sides}
    server: dict[str, list[float]] = {side: [] for side in sides}  # Redis busy time per batch (commandstats)
    parse: list[float] = []  # json.loads of every message body: work no implementation can skip
    for n in range(runs + 1):  # the first round warms both up (connections, scripts) and is not counted
        names = list(sides)
        for side in names[n % len(names) :] + names[: n % len(names)]:
            handler, sessions = sides[side]
            batch = with_etag(upload_batch(sessions, size, FILES_PER_SESSION, sequencer, rng, BUCKET), etag)
            busy = _server_busy(probe)
            started = time.perf_counter()
            answer = handler(batch, context)
            elapsed = time.perf_counter() - started
            busy = _server_busy(probe) - busy
            if answer.get("batchItemFailures"):
                raise RuntimeError(f"{side}: failed messages {answer['batchItemFailures'][:3]}")
            if n:
                seconds[side].append(elapsed)
                server[side].append(busy)
                if side == "reference":
                    started = time.perf_counter()
                    for message in batch["Records"]:
                        json.loads(message["body"])
                    parse.append(time.perf_counter() - started)
        print(f"[ingestion] round {n}/{runs} done", file=sys.stderr, flush=True)
    return {"seconds": seconds, "server_seconds": server, "parse_seconds": parse}


def _stock_objects(storage: Any, sessions: list[str]) -> str:
    """The objects the batches describe, in local storage: the event path reads each object's head (is it really
    an image?), so each key holds a small real JPEG. The events keep their sizes; their ETags become its MD5."""
    from tests.images import jpeg

    storage.events = None  # only the batches record: local storage's own notifications are off
    body = jpeg(64, 48)
    for session in sessions:
        for index in range(FILES_PER_SESSION):
            stored = storage.write(f"sessions/{session}/photos/photo_{index}.jpg", body)
    return str(stored.etag).strip('"')


def _server_busy(client: Any) -> float:
    """Seconds Redis has spent running commands so far (``INFO commandstats``), this probe's own INFO aside."""
    stats = client.info("commandstats")
    return float(sum(v["usec"] for k, v in stats.items() if k != "cmdstat_info")) / 1e6


def verify(redis_url: str, sessions: list[str]) -> int:
    """Files of the batches recorded by our function with a sequencer of this run (the guard compared them)."""
    import redis

    client: Any = redis.Redis.from_url(redis_url)
    recorded = 0
    for session_id in sessions:
        paths = [f"f:photos/photo_{n}.jpg" for n in range(FILES_PER_SESSION)]
        for raw in client.hmget(f"session:{{{session_id}}}", paths):
            recorded += raw is not None and int(json.loads(raw).get("q", "0"), 16) >= FIRST_SEQUENCER
    client.close()
    return recorded


def set_ceiling(server: Any, requests: int) -> float | None:
    """SETs per second of ``redis-benchmark -c 1 -P 16 -t set`` (median of 3) against ``server``; None without
    redis-benchmark."""
    binary = shutil.which("redis-benchmark") or shutil.which("valkey-benchmark")
    if binary is None:
        log("[ingestion] no redis-benchmark on PATH: the SET ceiling is not measured")
        return None
    args = [binary, "-h", "127.0.0.1", "-p", str(server.port), "-c", "1", "-P", "16", "-t", "set", "--csv"]
    rates = []
    for _ in range(3):
        done = subprocess.run([*args, "-n", str(requests)], capture_output=True, text=True, timeout=120, check=True)
        line = next(line for line in done.stdout.splitlines() if line.startswith('"SET"'))
        rates.append(float(line.split(",")[1].strip('"')))
    return median(rates)


def _paths(count: int) -> list[str]:
    """A session's records before the run: the batches' own paths first, then others."""
    own = [f"photos/photo_{n}.jpg" for n in range(min(count, FILES_PER_SESSION))]
    return own + [f"photos/earlier_{n}.jpg" for n in range(count - len(own))]


def run(quick: bool) -> Result:
    size, runs = (1_000, 3) if quick else (1_000, 21)
    log(f"[ingestion] SQS batches of {size:,} S3 events over {SESSIONS} sessions, {runs} batches each side")
    rng = random.Random(13)
    levels = {level: session_ids(SESSIONS, rng) for level in FILL_LEVELS}
    every = [s for sessions in levels.values() for s in sessions]
    with redis_server() as server, tempfile.TemporaryDirectory(prefix="hera-bench-") as folder:
        create_sessions(server.url, every)
        record_files(server.url, {s: _paths(level) for level, sessions in levels.items() for s in sessions if level})
        settings = service_env(
            "local", "redis", redis_url=server.url, sessions_dir=folder, token_secret=TOKEN_SECRET, service_keys=None
        )
        env = base_env(
            **settings,
            SESSION_MAX_FILES=str(MAX_FILES),
            SESSION_MAX_BYTES=str(MAX_FILES * 10 * 1024 * 1024),
            POWERTOOLS_METRICS_NAMESPACE="HeraSessionsBench",
            PYTHONPATH=f"{EVENTS_DIR}:{REFERENCE_DIR}",
        )
        config = {
            "sessions": {str(level): sessions for level, sessions in levels.items()},
            "batch": size,
            "runs": runs,
            "redis_url": server.url,
        }
        answer = run_worker("bench.ingest", config, env)
        recorded = verify(server.url, every)
        ceiling = set_ceiling(server, 100_000 if quick else 1_000_000)
    if recorded != len(every) * FILES_PER_SESSION:
        raise RuntimeError(f"ours recorded {recorded} files, expected {len(every) * FILES_PER_SESSION}")
    seconds = {side: median(values) for side, values in answer["seconds"].items()}
    rate = {side: size / s for side, s in seconds.items()}
    empty, full = f"ours, {FILL_LEVELS[0]} records", f"ours, {FILL_LEVELS[-1]} records"
    log(", ".join(f"[ingestion] {side} {r:,.0f} events/s" for side, r in rate.items()))
    rows = [Row("vs one round trip per event", "events/s", rate[empty], rate["reference"], 10, higher_is_better=True)]
    if ceiling is not None:
        rows.append(Row("vs pipelined SET ceiling (-c 1 -P 16)", "events/s", rate[empty], ceiling, 0.3, True))
    rows += [
        Row(f"into sessions of {level} records vs empty ones", "ms", seconds[f"ours, {level} records"] * 1e3,
            seconds[empty] * 1e3, 1.2 if f"ours, {level} records" == full else None)
        for level in FILL_LEVELS[1:]
    ]  # fmt: skip
    return Result(
        "event_ingestion",
        "3. Event ingestion (SQS batches of 1,000)",
        rows,
        {
            "batch_size": size,
            "batches": runs,
            "sessions": SESSIONS,
            "fill_levels": FILL_LEVELS,
            "set_ceiling_per_s": ceiling,
            "events_per_s": {side: round(r) for side, r in rate.items()},
            "batch_ms": {side: [round(s * 1e3, 1) for s in values] for side, values in answer["seconds"].items()},
            "per_event_us": {
                side: {
                    "total": round(median(answer["seconds"][side]) / size * 1e6, 2),
                    "redis_server": round(median(answer["server_seconds"][side]) / size * 1e6, 2),
                }
                for side in answer["seconds"]
            },
            "json_loads_of_the_message_us": round(median(answer["parse_seconds"]) / size * 1e6, 2),
        },
    )


if __name__ == "__main__" and "--worker" in sys.argv:
    worker_main(work)
