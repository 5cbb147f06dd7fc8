"""Figure 3: event ingestion — S3 events per second through the storage-event function, SQS batches of 1,000.

Ours is ``functions/storage_events/app.lambda_handler`` (the real function: Powertools logger and metrics, the
partial batch response, ``SessionService.record_events`` with the ordering guard, quotas and session checks);
the reference is :mod:`bench.reference.events_app` (one ``SET ... EX`` round trip per event). Both run warm in one
worker process against one redis-server, on batches of S3 ``ObjectCreated`` notifications with distinct,
increasing sequencers, spread over 100 pre-created sessions (10 files each, overwritten batch after batch).
"""

from __future__ import annotations

import json
import random
import sys
import tempfile
import time
from typing import Any

from bench.common import (
    BUCKET,
    EVENTS_DIR,
    REFERENCE_DIR,
    TOKEN_SECRET,
    Result,
    Row,
    base_env,
    create_sessions,
    log,
    median,
    redis_server,
    run_worker,
    worker_main,
)
from bench.workload import Sequencers, session_ids, upload_batch, with_etag
from tests.envs import service_env

SESSIONS = 100
FILES_PER_SESSION = 10


class Context:
    function_name = "hera-sessions-bench-events"
    memory_limit_in_mb = 512
    invoked_function_arn = "arn:aws:lambda:ap-northeast-1:123456789012:function:hera-sessions-bench-events"
    aws_request_id = "00000000-0000-0000-0000-000000000000"


def work(config: dict[str, Any]) -> dict[str, Any]:
    """In the worker: both handlers warm, batches alternating, seconds per batch for each."""
    import app  # functions/storage_events/app.py (PYTHONPATH)
    import events_app  # bench/reference/events_app.py (PYTHONPATH)
    import redis

    handlers = {"ours": app.lambda_handler, "reference": events_app.lambda_handler}
    sessions: list[str] = config["sessions"]
    etag = _stock_objects(app.runtime.service().storage, sessions)
    size, runs = config["batch"], config["runs"]
    rng = random.Random(9)
    sequencer = Sequencers(0x0062A3F1B2C4D5E600)
    context = Context()
    probe: Any = redis.Redis.from_url(config["redis_url"])
    seconds: dict[str, list[float]] = {side: [] for side in handlers}
    server: dict[str, list[float]] = {side: [] for side in handlers}  # Redis busy time per batch (commandstats)
    parse: list[float] = []  # json.loads of every message body: work no implementation can skip
    for n in range(runs + 1):  # the first round warms both up (connections, scripts) and is not counted
        order = list(handlers) if n % 2 == 0 else list(reversed(handlers))
        for side in order:
            batch = with_etag(upload_batch(sessions, size, FILES_PER_SESSION, sequencer, rng, BUCKET), etag)
            busy = _server_busy(probe)
            started = time.perf_counter()
            answer = handlers[side](batch, context)
            elapsed = time.perf_counter() - started
            busy = _server_busy(probe) - busy
            if answer.get("batchItemFailures"):
                raise RuntimeError(f"{side}: failed messages {answer['batchItemFailures'][:3]}")
            if n:
                seconds[side].append(elapsed)
                server[side].append(busy)
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
    """Every file of every session recorded by our function, with a sequencer (the guard had one to compare)."""
    import redis

    client: Any = redis.Redis.from_url(redis_url)
    recorded = 0
    for session_id in sessions:
        fields = client.hgetall(f"session:{{{session_id}}}")
        records = [json.loads(v) for k, v in fields.items() if k.startswith(b"f:")]
        recorded += sum(1 for r in records if r.get("q"))
    client.close()
    return recorded


def run(quick: bool) -> Result:
    size, runs = (1_000, 3) if quick else (1_000, 25)
    log(f"[ingestion] SQS batches of {size:,} S3 events over {SESSIONS} sessions, {runs} batches each")
    with redis_server() as server, tempfile.TemporaryDirectory(prefix="hera-bench-") as folder:
        sessions = session_ids(SESSIONS, random.Random(13))
        create_sessions(server.url, sessions)
        settings = service_env(
            "local", "redis", redis_url=server.url, sessions_dir=folder, token_secret=TOKEN_SECRET, service_keys=None
        )
        env = base_env(
            **settings,
            POWERTOOLS_METRICS_NAMESPACE="HeraSessionsBench",
            PYTHONPATH=f"{EVENTS_DIR}:{REFERENCE_DIR}",
        )
        answer = run_worker(
            "bench.ingest", {"sessions": sessions, "batch": size, "runs": runs, "redis_url": server.url}, env
        )
        recorded = verify(server.url, sessions)
    if recorded != SESSIONS * FILES_PER_SESSION:
        raise RuntimeError(f"ours recorded {recorded} files, expected {SESSIONS * FILES_PER_SESSION}")
    rate = {side: size / median(values) for side, values in answer["seconds"].items()}
    log(f"[ingestion] ours {rate['ours']:,.0f} events/s, reference {rate['reference']:,.0f} events/s")
    return Result(
        "event_ingestion",
        "3. Event ingestion",
        [Row("", "events/s", rate["ours"], rate["reference"], target=10, higher_is_better=True)],
        {
            "batch_size": size,
            "batches": runs,
            "sessions": SESSIONS,
            "batch_ms": {side: [round(s * 1e3, 1) for s in values] for side, values in answer["seconds"].items()},
            "per_event_us": {
                side: {
                    "total": round(median(answer["seconds"][side]) / size * 1e6, 2),
                    "redis_server": round(median(answer["server_seconds"][side]) / size * 1e6, 2),
                    "json_loads_of_the_message": round(median(answer["parse_seconds"]) / size * 1e6, 2),
                }
                for side in answer["seconds"]
            },
        },
    )


if __name__ == "__main__" and "--worker" in sys.argv:
    worker_main(work)
