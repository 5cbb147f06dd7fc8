"""Figure 5: storage-event function cold start — a fresh process imports the function and records its first
SQS batch of 10 S3 events (S3 mode on moto, real redis-server), beside the idiomatic Powertools
``BatchProcessor`` function (:mod:`bench.reference.events_app`) doing the same: both read each new object's
first bytes from S3 and write its record.
"""

from __future__ import annotations

import random
import tempfile
from pathlib import Path
from typing import Any

from bench.common import (
    BUCKET,
    EVENTS_DIR,
    REFERENCE_DIR,
    REGION,
    ColdSample,
    Result,
    Row,
    cold_start,
    create_sessions,
    import_breakdown,
    lambda_env,
    log,
    median,
    redis_server,
)
from bench.workload import Sequencers, session_ids, upload_batch, with_etag
from tests.servers import MotoServer

SIDES = {"ours": ("app", EVENTS_DIR), "reference": ("events_app", REFERENCE_DIR)}
BATCH = 10


def _stock_bucket(endpoint: str, sessions: list[str]) -> str:
    """A bucket on moto holding the objects the batches describe (the event path reads each object's head): a
    small real JPEG at every key; the events keep their sizes, their ETags become its MD5."""
    import boto3

    from tests.images import jpeg

    s3: Any = boto3.client(
        "s3", endpoint_url=endpoint, region_name=REGION, aws_access_key_id="bench", aws_secret_access_key="bench"
    )
    s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
    body = jpeg(64, 48)
    for session in sessions:
        for index in range(4):
            key = f"sessions/{session}/photos/photo_{index}.jpg"
            answer = s3.put_object(Bucket=BUCKET, Key=key, Body=body, ContentType="image/jpeg")
    return str(answer["ETag"]).strip('"')


def run(quick: bool) -> Result:
    runs = 3 if quick else 21
    log(f"[event cold start] {runs} fresh processes each, first batch of {BATCH} events")
    samples: dict[str, list[ColdSample]] = {side: [] for side in SIDES}
    traces: dict[str, list[str]] = {side: [] for side in SIDES}
    with redis_server() as server, tempfile.TemporaryDirectory(prefix="hera-bench-") as logs:
        moto = MotoServer(Path(logs))
        sessions = session_ids(5, random.Random(17))
        create_sessions(server.url, sessions)
        etag = _stock_bucket(moto.url, sessions)
        env = lambda_env(server.url, POWERTOOLS_METRICS_NAMESPACE="HeraSessionsBench", AWS_ENDPOINT_URL_S3=moto.url)
        sequencer = Sequencers(0x0062A3F1B2C4D5E600)
        rng = random.Random(19)
        for n in range(runs + 1):
            order = list(SIDES) if n % 2 == 0 else list(reversed(SIDES))
            for side in order:
                module, path = SIDES[side]
                batch = with_etag(upload_batch(sessions, BATCH, 4, sequencer, rng, BUCKET), etag)
                sample, trace = cold_start(module, path, batch, env, importtime=n == runs)
                if sample.answer.get("batchItemFailures"):
                    raise RuntimeError(f"{side}: failed messages in {sample.answer}")
                if n == runs:  # the last round traces imports (slower): not counted
                    traces[side].append(trace)
                else:
                    samples[side].append(sample)
            if n < runs:
                log(
                    f"[event cold start] run {n + 1}/{runs}: "
                    + ", ".join(f"{s} {samples[s][-1].wall_ms:.0f} ms" for s in SIDES)
                )
        moto.stop()

    def med(side: str, attr: str) -> float:
        return median([getattr(s, attr) for s in samples[side]])

    rows = [
        Row("first batch (process start → response)", "ms", med("ours", "wall_ms"), med("reference", "wall_ms"), 1.0),
        Row("CPU time to the first answer", "ms", med("ours", "cpu_ms"), med("reference", "cpu_ms")),
        Row("of which: import the handler", "ms", med("ours", "import_ms"), med("reference", "import_ms")),
        Row("of which: first batch", "ms", med("ours", "first_call_ms"), med("reference", "first_call_ms")),
    ]
    details = {
        "runs": runs,
        "batch": BATCH,
        "samples_ms": {side: [round(s.wall_ms, 1) for s in samples[side]] for side in SIDES},
        "fastest_ms": {side: round(min(s.wall_ms for s in samples[side]), 1) for side in SIDES},
        "imports": import_breakdown(traces),
    }
    return Result("event_cold_start", "5. Event function cold start", rows, details)
