"""Figure 1: API cold start — a fresh process imports the API function and answers its first upload-URL call.

Both sides run as Lambda runs them: a new interpreter with the function's folder on the path, the handler module
imported, then one ``POST /v1/sessions/{id}/uploads`` in S3 mode against a real redis-server (session check,
quota, presigned PUT URL; presigning needs no network). Ours is ``functions/api/app.py``; the reference is
:mod:`bench.reference.api_app`. Runs alternate between the two so that noise hits both alike.
"""

from __future__ import annotations

import random
from typing import Any

from bench.common import (
    API_DIR,
    BUCKET,
    REFERENCE_DIR,
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
from bench.workload import session_ids, upload_request

#: An eager init: everything the first request would import and build, done ahead of it (with SnapStart, Lambda
#: snapshots the environment after init, so this is the work a restored environment no longer does).
EAGER_INIT = "module.runtime.app; module.runtime.service()"

#: Every variant, run in turn (the order rotates each round): name → (module, folder, code run after the import).
VARIANTS = {
    "ours": ("app", API_DIR, ""),
    "reference": ("api_app", REFERENCE_DIR, ""),
    "floor": ("floor_app", REFERENCE_DIR, ""),
    "ours, eager init": ("app", API_DIR, EAGER_INIT),
    "ours through botocore": ("app", API_DIR, ""),
}
#: The variant whose credentials come from botocore's chain, as if they were not in the environment (botocore
#: refreshes environment credentials that carry an expiry, so the signer leaves them to it): botocore gets imported.
THROUGH_BOTOCORE = {"AWS_CREDENTIAL_EXPIRATION": "2099-01-01T00:00:00Z"}
SIDES = ("ours", "reference")


def check(sample: ColdSample, variant: str) -> None:
    answer: dict[str, Any] = sample.answer
    if answer.get("statusCode") != 201:
        raise RuntimeError(f"{variant}: unexpected first answer {answer}")
    if variant != "floor" and f"https://{BUCKET}.s3." not in answer.get("body", ""):
        raise RuntimeError(f"{variant}: no AWS-style upload URL in {answer}")
    if ("boto3" in sample.packages) != (variant == "reference"):
        raise RuntimeError(f"{variant}: boto3 {'' if 'boto3' in sample.packages else 'not '}imported")
    session = "botocore.session" in sample.modules  # (Powertools imports the botocore package itself, not this)
    if session != (variant in ("reference", "ours through botocore")):
        raise RuntimeError(f"{variant}: botocore's session {'' if session else 'not '}imported")


def run(quick: bool) -> Result:
    runs = 3 if quick else 21
    log(f"[api cold start] {runs} fresh processes for each of {', '.join(VARIANTS)}, in turn")
    samples: dict[str, list[ColdSample]] = {variant: [] for variant in VARIANTS}
    traces: dict[str, list[str]] = {side: [] for side in SIDES}
    with redis_server() as server:
        session_id = session_ids(1, random.Random(11))[0]
        token = create_sessions(server.url, [session_id])[0]
        event = upload_request(session_id, token)
        env = lambda_env(server.url)
        names = list(VARIANTS)
        for n in range(runs):
            for variant in names[n % len(names) :] + names[: n % len(names)]:
                module, path, prepare = VARIANTS[variant]
                variant_env = {**env, **THROUGH_BOTOCORE} if variant == "ours through botocore" else env
                sample, _ = cold_start(module, path, event, variant_env, prepare=prepare)
                check(sample, variant)
                samples[variant].append(sample)
            log(
                f"[api cold start] run {n + 1}/{runs}: "
                + ", ".join(f"{v} {samples[v][-1].wall_ms:.0f} ms" for v in VARIANTS)
            )
        for _ in range(1 if quick else 3):  # traced runs (slower, not counted): the fastest time of each module
            for side in SIDES:
                module, path, _ = VARIANTS[side]
                traces[side].append(cold_start(module, path, event, env, importtime=True)[1])

    def med(variant: str, attr: str = "wall_ms") -> float:
        return median([getattr(s, attr) for s in samples[variant]])

    rows = [
        Row("first answer (process start → response)", "ms", med("ours"), med("reference"), 0.5),
        Row("CPU time to the first answer", "ms", med("ours", "cpu_ms"), med("reference", "cpu_ms"), 0.5),
        Row("of which: import the handler", "ms", med("ours", "import_ms"), med("reference", "import_ms")),
        Row("of which: first call", "ms", med("ours", "first_call_ms"), med("reference", "first_call_ms")),
        Row("floor: Powertools + redis-py alone (best reachable)", "ms", med("floor"), med("reference")),
        Row(
            "what skipping boto3 buys: ours, signing via botocore", "ms", med("ours through botocore"), med("reference")
        ),
        Row(
            "first call after an eager init (what SnapStart keeps)",
            "ms",
            med("ours, eager init", "first_call_ms"),
            med("reference", "first_call_ms"),
        ),
    ]
    details = {
        "runs": runs,
        "samples_ms": {variant: [round(s.wall_ms, 1) for s in samples[variant]] for variant in VARIANTS},
        "fastest_ms": {variant: round(min(s.wall_ms for s in samples[variant]), 1) for variant in VARIANTS},
        "imports": import_breakdown(traces),
    }
    return Result("api_cold_start", "1. API cold start", rows, details)
