"""``hera-sessions doctor`` on GCS (gcp-storage-emulator): the bucket as gcp/deploy.sh sets it up, and without."""

from __future__ import annotations

import json
import os
from typing import Any

import requests

from hera_sessions.http.cors import gcs_cors
from tests.conftest import ROOT
from tests.gcp.conftest import Bucket
from tests.servers import hera_cli


def doctor(gcp_env: dict[str, str]) -> tuple[int, dict[str, Any]]:
    passed = {n: os.environ[n] for n in ("GOOGLE_APPLICATION_CREDENTIALS", "STORAGE_EMULATOR_HOST")}
    done = hera_cli("doctor", "--json", settings={**gcp_env, **passed})
    return done.returncode, {line["check"]: line for line in json.loads(done.stdout)}


def test_a_bucket_as_deployed_is_ok(gcs_bucket: Bucket, gcp_env: dict[str, str]) -> None:
    lifecycle = json.loads((ROOT / "gcp" / "lifecycle.json").read_text())
    body = {"cors": gcs_cors(["http://localhost:5173"]), "lifecycle": lifecycle}
    requests.patch(f"{gcs_bucket.api}", json=body, timeout=10).raise_for_status()

    code, found = doctor(gcp_env)

    assert code == 0, found
    for name in ("storage:reachable", "storage:cors", "storage:lifecycle", "storage:tls", "storage:identity"):
        assert found[name]["status"] == "ok", found[name]
    assert "hera-fn@" in found["storage:identity"]["detail"]


def test_a_bare_bucket_warns(gcs_bucket: Bucket, gcp_env: dict[str, str]) -> None:
    code, found = doctor(gcp_env)
    assert code == 0
    assert found["storage:cors"]["status"] == found["storage:lifecycle"]["status"] == "warn"
    assert "--cors-file" in found["storage:cors"]["fix"]
