"""Schemathesis over GET /openapi.json against the real local server (a subprocess): every phase, and no
answer may be a server error.

Bounded for a 2-core machine: a fixed seed and a cap on examples per operation. Requests carry a service key,
which may act on any session: stateful sequences erase the sessions they create, and the hooks
(:mod:`tests.fuzz.hooks`) aim well-formed session ids at one real session.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.envs import service_env
from tests.servers import HeraServe

ROOT = Path(__file__).resolve().parents[2]
KEY = "fuzz-service-key"
SEED = 20261202
MAX_EXAMPLES = 30

pytestmark = pytest.mark.fuzz


@pytest.fixture
def server(tmp_path: Path) -> Iterator[str]:
    env = service_env(
        sessions_dir=tmp_path / "sessions",
        token_secret="fuzz-token-secret",
        service_keys=KEY,
        PYTHONPATH=str(ROOT / "shared"),
        HOST="127.0.0.1",
        SESSION_MAX_FILES="1000",
        SESSION_MAX_BYTES=str(10**12),
    )
    with HeraServe(env, tmp_path, name="server") as server:
        yield server.url


def _session(base: str) -> str:
    request = urllib.request.Request(f"{base}/v1/sessions", method="POST", headers={"Authorization": f"Bearer {KEY}"})
    with urllib.request.urlopen(request, timeout=5) as answer:
        return str(json.load(answer)["session_id"])


def test_no_request_makes_a_server_error(server: str, tmp_path: Path) -> None:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "shared")]),
        "SCHEMATHESIS_HOOKS": "tests.fuzz.hooks",
        "FUZZ_SESSION_ID": _session(server),
    }
    command = [
        str(Path(sys.executable).with_name("st")),
        "run",
        f"{server}/openapi.json",
        "--checks",
        "not_a_server_error",
        "--phases",
        "examples,coverage,fuzzing,stateful",
        "--max-examples",
        str(MAX_EXAMPLES),
        "--seed",
        str(SEED),
        "--workers",
        "2",
        "--header",
        f"Authorization: Bearer {KEY}",
        "--request-timeout",
        "10",
        "--no-color",
        "--report",
        "junit",
        "--report-dir",
        str(tmp_path / "report"),
    ]
    run = subprocess.run(command, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=240)
    assert run.returncode == 0, run.stdout[-20_000:] + run.stderr[-5_000:]
