"""Figure 2: the warm upload-URL call — per invocation of ``POST /v1/sessions/{id}/uploads``, same work as figure 1,
and the signing step alone (our presigned PUT against boto3's ``generate_presigned_url``).

Both functions are imported once in one worker process (S3 mode, real redis-server) and called thousands of
times, in alternating blocks; every call is timed on its own (median and p99).
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
    Result,
    Row,
    create_sessions,
    lambda_env,
    log,
    median,
    percentile,
    redis_server,
    run_worker,
    worker_main,
)
from bench.workload import session_ids, upload_request

BLOCK = 100


class Context:
    function_name = "hera-sessions-bench"
    memory_limit_in_mb = 512
    invoked_function_arn = "arn:aws:lambda:ap-northeast-1:123456789012:function:hera-sessions-bench"
    aws_request_id = "00000000-0000-0000-0000-000000000000"


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


def work(config: dict[str, Any]) -> dict[str, Any]:
    import api_app  # bench/reference/api_app.py (PYTHONPATH)
    import app  # functions/api/app.py (PYTHONPATH)

    from hera_sessions.backends.storage.base import UploadSpec

    event, calls, context = config["event"], config["calls"], Context()
    for handler in (app.lambda_handler, api_app.lambda_handler):
        answer = handler(event, context)
        if answer["statusCode"] != 201:
            raise RuntimeError(f"unexpected answer {answer}")
    print(f"[warm call] {calls:,} calls each", file=sys.stderr, flush=True)
    route = _alternate(
        {
            "ours": lambda: app.lambda_handler(event, context),
            "reference": lambda: api_app.lambda_handler(event, context),
        },
        calls,
    )

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
    # Where the time of a call goes: each layer on its own, outermost first (each includes the ones below it).
    from hera_sessions.core.models import Reservation, UploadRequest

    service, runtime = app.runtime.service(), app.runtime
    session_id = event["rawPath"].split("/")[3]
    request = UploadRequest("photos/user.png", "image/png", 1_234_567, overwrite=True)  # the same path, again and again
    hold = Reservation("photos/user.png", 1_234_567, "image/png", time.time() + 300, overwrite=True)
    session_key = f"session:{{{session_id}}}"
    print(f"[warm call] layer by layer, {calls // 2:,} calls each", file=sys.stderr, flush=True)
    layers = _alternate(
        {
            "ours: handler (Logger + Metrics decorators + resolver)": lambda: app.lambda_handler(event, context),
            "ours: resolver (Runtime.handle_http)": lambda: runtime.handle_http(event, context),
            "ours: SessionService.create_upload": lambda: service.create_upload(session_id, request),
            "ours: RedisMetadataStore.reserve_upload (one EVALSHA)": lambda: service.metadata.reserve_upload(
                session_id, hold, service.limits, time.time(), 86_400
            ),
            "reference: handler (Logger decorator + resolver)": lambda: api_app.lambda_handler(event, context),
            "reference: resolver (app.resolve)": lambda: api_app.app.resolve(event, context),
            "reference: HGETALL": lambda: api_app.cache.hgetall(session_key),
        },
        calls // 2,
    )
    return {
        "route": route,
        "signing": signing,
        "layers": {name: median(values) for name, values in layers.items()},
        "signer": type(storage.signer).__name__ if getattr(storage, "signer", None) else "botocore",
        "urls": {"ours": ours_url.split("?")[0], "reference": reference_url.split("?")[0]},
        "boto3_modules_loaded": "botocore" in sys.modules,
    }


def run(quick: bool) -> Result:
    calls = 500 if quick else 10_000
    log(f"[warm call] {calls:,} invocations of each function, then {calls:,} signatures of each")
    with redis_server() as server:
        session_id = session_ids(1, random.Random(23))[0]
        token = create_sessions(server.url, [session_id])[0]
        env = lambda_env(server.url, PYTHONPATH=f"{API_DIR}:{REFERENCE_DIR}")
        answer = run_worker("bench.api_warm", {"event": upload_request(session_id, token), "calls": calls}, env)
    route, signing = answer["route"], answer["signing"]
    rows = [
        Row("median per call", "µs", median(route["ours"]), median(route["reference"]), 0.5),
        Row("p99 per call", "µs", percentile(route["ours"], 99), percentile(route["reference"], 99)),
        Row("signing alone (median)", "µs", median(signing["ours"]), median(signing["reference"]), 0.2),
    ]
    details = {
        "calls": calls,
        "signer": answer["signer"],
        "url_bases": answer["urls"],
        "p99_signing_us": {side: round(percentile(v, 99), 1) for side, v in signing.items()},
        "median_us_by_layer": {name: round(us, 1) for name, us in answer["layers"].items()},
    }
    return Result("api_warm_call", "2. Warm upload-URL call", rows, details)


if __name__ == "__main__" and "--worker" in sys.argv:
    worker_main(work)
