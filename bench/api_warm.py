"""Figure 2: warm API calls through the Lambda handlers — ``POST /v1/sessions/{id}/uploads`` (the same work as
figure 1) and ``GET /v1/sessions/{id}/files/{path}`` (a signed download URL), and the signing step alone (our
presigned PUT against boto3's ``generate_presigned_url``).

Both functions are imported once in one worker process (S3 mode, real redis-server) and called as Lambda calls
them, ``lambda_handler(event, context)``, thousands of times, in alternating blocks; every call is timed on its
own (median and p99).
"""

from __future__ import annotations

import random
import sys
import time
from collections.abc import Callable
from typing import Any

from bench.common import (
    API_DIR,
    BUCKET,
    REFERENCE_DIR,
    LambdaContext,
    Result,
    Row,
    create_sessions,
    lambda_env,
    log,
    median,
    percentile,
    record_files,
    redis_server,
    run_worker,
    worker_main,
)
from bench.workload import download_request, session_ids, upload_request

BLOCK = 100
#: The session's recorded file that the download calls sign (the upload calls ask for another path).
DOWNLOADED = "photos/partner.png"


def _alternate(sides: dict[str, Callable[[], Any]], calls: int) -> dict[str, list[float]]:
    """Microseconds per call of each side, in alternating blocks (the first block of each is a warm-up)."""
    samples: dict[str, list[float]] = {side: [] for side in sides}
    clock = time.perf_counter_ns
    for block in range(calls // BLOCK + 1):
        order = list(sides) if block % 2 == 0 else list(reversed(sides))
        for side in order:
            fn, out = sides[side], samples[side]
            for _ in range(BLOCK):
                started = clock()
                fn()
                elapsed = clock() - started
                if block:
                    out.append(elapsed / 1e3)
    return samples


def _handlers(event: dict[str, Any], status: int) -> dict[str, Callable[[], Any]]:
    """Both functions' handlers on ``event``, each checked once to answer ``status``."""
    import api_app  # bench/reference/api_app.py (PYTHONPATH)
    import app  # functions/api/app.py (PYTHONPATH)

    context = LambdaContext()
    sides: dict[str, Callable[[], Any]] = {
        "ours": lambda: app.lambda_handler(event, context),
        "reference": lambda: api_app.lambda_handler(event, context),
    }
    for side, call in sides.items():
        answer = call()
        if answer["statusCode"] != status:
            raise RuntimeError(f"{side}: unexpected answer {answer}")
    return sides


def work(config: dict[str, Any]) -> dict[str, Any]:
    import api_app
    import app

    from hera_sessions.backends.storage.base import UploadSpec

    calls = config["calls"]
    print(f"[warm call] {calls:,} upload calls each", file=sys.stderr, flush=True)
    upload = _alternate(_handlers(config["upload"], 201), calls)
    print(f"[warm call] {calls:,} download calls each", file=sys.stderr, flush=True)
    download = _alternate(_handlers(config["download"], 200), calls)

    storage = app.runtime.service().storage
    key = "sessions/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA/photos/user.png"
    spec = UploadSpec(key, "image/png", 1_234_567, "PUT", 300, time.time() + 300)
    params = {"Bucket": BUCKET, "Key": key, "ContentType": "image/png", "ContentLength": 1_234_567}
    ours_url = storage.presign_upload(spec).url
    reference_url = api_app.s3.generate_presigned_url("put_object", Params=params, ExpiresIn=300)
    print(f"[warm call] signing alone, {calls:,} URLs each", file=sys.stderr, flush=True)
    signing = _alternate(
        {
            "ours": lambda: storage.presign_upload(spec),
            "reference": lambda: api_app.s3.generate_presigned_url("put_object", Params=params, ExpiresIn=300),
        },
        calls,
    )
    return {
        "upload": upload,
        "download": download,
        "signing": signing,
        "layers": _layers(config["upload"], calls // 2),
        "signer": type(storage.signer).__name__ if getattr(storage, "signer", None) else "botocore",
        "urls": {"ours": ours_url.split("?")[0], "reference": reference_url.split("?")[0]},
    }


def _layers(event: dict[str, Any], calls: int) -> dict[str, float]:
    """Where the time of an upload call goes: each layer on its own, outermost first (each includes the ones
    below it); medians in µs."""
    import api_app
    import app

    from hera_sessions.core.models import Reservation, UploadRequest

    context = LambdaContext()
    service, runtime = app.runtime.service(), app.runtime
    session_id = event["rawPath"].split("/")[3]
    request = UploadRequest("photos/user.png", "image/png", 1_234_567, overwrite=True)  # the same path, again and again
    hold = Reservation("photos/user.png", 1_234_567, "image/png", time.time() + 300, overwrite=True)
    session_key = f"session:{{{session_id}}}"
    print(f"[warm call] layer by layer, {calls:,} calls each", file=sys.stderr, flush=True)
    layers = _alternate(
        {
            "ours: handler (Logger + Metrics decorators + resolver)": lambda: app.lambda_handler(event, context),
            "ours: resolver (Runtime.handle_http)": lambda: runtime.handle_http(event, context),
            "ours: SessionService.create_upload": lambda: service.create_upload(session_id, request),
            "ours: RedisMetadataStore.reserve_upload (one EVALSHA)": lambda: service.metadata.reserve_upload(
                session_id, hold, service.limits, time.time(), 86_400
            ),
            "ours: Redis PING (one round trip, nothing to do)": service.metadata.ping,
            "reference: handler (Logger + Metrics decorators + resolver)": lambda: api_app.lambda_handler(
                event, context
            ),
            "reference: resolver (app.resolve)": lambda: api_app.app.resolve(event, context),
            "reference: HGETALL": lambda: api_app.cache.hgetall(session_key),
        },
        calls,
    )
    return {name: median(values) for name, values in layers.items()}


def run(quick: bool) -> Result:
    calls = 500 if quick else 10_000
    log(f"[warm call] {calls:,} upload and {calls:,} download calls of each function, {calls:,} signatures of each")
    with redis_server() as server:
        session_id = session_ids(1, random.Random(23))[0]
        token = create_sessions(server.url, [session_id])[0]
        record_files(server.url, {session_id: [DOWNLOADED, "photos/child_1.png"]})
        env = lambda_env(server.url, PYTHONPATH=f"{API_DIR}:{REFERENCE_DIR}")
        config = {
            "upload": upload_request(session_id, token),
            "download": download_request(session_id, token, DOWNLOADED),
            "calls": calls,
        }
        answer = run_worker("bench.api_warm", config, env)
    upload, download, signing = answer["upload"], answer["download"], answer["signing"]
    rows = [
        Row("upload URL, median per call", "µs", median(upload["ours"]), median(upload["reference"]), 0.6),
        Row("upload URL, p99 per call", "µs", percentile(upload["ours"], 99), percentile(upload["reference"], 99)),
        Row("download URL, median per call", "µs", median(download["ours"]), median(download["reference"])),
        Row(
            "download URL, p99 per call", "µs", percentile(download["ours"], 99), percentile(download["reference"], 99)
        ),
        Row("signing one upload URL alone (median)", "µs", median(signing["ours"]), median(signing["reference"]), 0.1),
    ]
    details = {
        "calls": calls,
        "signer": answer["signer"],
        "url_bases": answer["urls"],
        "p99_signing_us": {side: round(percentile(v, 99), 1) for side, v in signing.items()},
        "median_us_by_layer": {name: round(us, 1) for name, us in answer["layers"].items()},
    }
    return Result("api_warm_call", "2. Warm API calls through the handler", rows, details)


if __name__ == "__main__" and "--worker" in sys.argv:
    worker_main(work)
