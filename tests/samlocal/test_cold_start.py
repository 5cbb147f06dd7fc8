"""The Lambda init phase of each function in its container: a fresh interpreter from /var/lang importing the
runtime interface client and the handler module, with the built function in /var/task and the layer in /opt.

SAM's own "Init Duration" is not this figure: its emulator starts the runtime before the invocation and reports
only a sliver of it (docs/performance.md). Nothing here asserts a time; the figures are printed.
"""

from __future__ import annotations

import json
import subprocess

import pytest

from tests.samlocal.conftest import MEASURED, Local

RUNS = 7
#: One shell loop in one container: RUNS fresh interpreters, each timed from exec to "the handler is imported".
LOOP = (
    f"for i in $(seq 1 {RUNS}); do s=$(date +%s%N); "
    'python3 -c "import awslambdaric.bootstrap, app; assert callable(app.lambda_handler)" || exit 1; '
    "e=$(date +%s%N); echo $(( (e - s) / 1000 )); done"
)


@pytest.mark.parametrize("function", ["ApiFunction", "StorageEventsFunction"])
def test_init_in_the_container(local: Local, function: str) -> None:
    settings = json.loads(local.env_file.read_text())["Parameters"]
    env_args = [arg for name, value in settings.items() for arg in ("-e", f"{name}={value}")]
    done = subprocess.run(
        ["docker", "run", "--rm", "--network", "none", "--entrypoint", "/bin/sh",
         "-v", f"{local.build / function}:/var/task:ro", "-v", f"{local.build / 'SharedLayer'}:/opt:ro",
         "-e", "PYTHONPATH=/var/runtime:/opt/python", "-e", "AWS_REGION=ap-northeast-1", *env_args,
         local.image, "-c", LOOP],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    ms = [int(line) / 1000 for line in done.stdout.split()]
    assert len(ms) == RUNS
    print(f"{function}: init (interpreter start + import awslambdaric and app) in the container: {ms} ms")
    MEASURED[f"{function} init in the container, first run (ms)"] = [ms[0]]
    MEASURED[f"{function} init in the container, next runs (ms)"] = ms[1:]
