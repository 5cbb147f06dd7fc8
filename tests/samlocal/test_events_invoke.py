"""Every AWS file in events/ through `sam local invoke` of its function, in the order a session lives through them.

The same scenario and the same expected answers as the in-process test (tests/aws/test_events_files.py), but
each event runs in a fresh Lambda container (awslambdaric + SAM's runtime interface emulator) with the built
layer in /opt, S3 on moto and Redis on this machine, reached over the Docker bridge.
"""

from __future__ import annotations

import json
import time
from typing import Any

from hera_sessions.runtime import Runtime
from tests.aws.test_events_files import SCENARIO, SESSION, objects_described
from tests.conftest import EVENTS, load_event
from tests.samlocal.conftest import BUCKET, Local, sam_invoke


def function_for(name: str) -> str:
    """The function an events/ file is for: api-* the API, S3/SQS/EventBridge the storage-event function."""
    return "ApiFunction" if name.startswith("api-") else "StorageEventsFunction"


def test_every_event_file_through_sam_local_invoke(local: Local, s3: Any) -> None:
    # GIVEN the session the files name, created in the Redis the containers use
    runtime = Runtime(local.settings())
    try:
        service = runtime.service()
        service.metadata.create_session(SESSION, time.time(), service.settings.session_ttl)
        failures: list[str] = []
        listed: list[str] = []
        for name, expected in SCENARIO:
            # WHEN the file is the event of `sam local invoke` (after the upload it describes)
            for key, body in objects_described(load_event(name)) if not name.startswith("api-") else []:
                s3.put_object(Bucket=BUCKET, Key=key, Body=body)
            invoked = sam_invoke(local, function_for(name), EVENTS / name)
            answer = invoked.answer
            got = answer.get("statusCode") if name.startswith("api-") else answer
            init = f"Init Duration {invoked.init_ms:g} ms, Duration {invoked.duration_ms:g} ms"
            print(f"sam local invoke {function_for(name)} -e events/{name} -> {json.dumps(got)} ({init})")
            # THEN its handler answers as in-process
            if got != expected:
                failures.append(f"{name}: expected {expected!r}, got {answer!r}\n{invoked.log[-3000:]}")
            if name == "api-list-files.json" and got == 200:
                listed = [f["path"] for f in json.loads(answer["body"])["files"]]
        assert not failures, "\n".join(failures)
        # AND the session held what the events said, then was erased
        assert listed == ["photos/user.png"]
        assert service.metadata.is_erased(SESSION)
    finally:
        if runtime._service is not None:
            runtime._service.metadata.close()
