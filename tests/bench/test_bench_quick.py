"""The benchmarks run in CI in quick mode, so they cannot rot. Nothing here looks at a timing: the machine is
shared and noisy, and a figure is a measurement, not a test result."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

FIGURES = {"api_cold_start", "api_warm_call", "event_ingestion", "redis_memory", "event_cold_start"}


@pytest.mark.slow
def test_quick_benchmarks_run_and_write_every_figure(tmp_path: Path) -> None:
    # GIVEN the benchmarks, in quick mode, writing their JSON to a temporary file
    out = tmp_path / "results.json"

    # WHEN they run as `make bench-quick` runs them
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )

    # THEN they finish, print the table and write a number for each side of every row of every figure
    assert done.returncode == 0, done.stderr[-5000:]
    assert "hera-sessions" in done.stdout
    assert "reference" in done.stdout
    results = json.loads(out.read_text())
    assert results["quick"] is True
    assert results["machine"]["python"]
    assert set(results["figures"]) == FIGURES
    for figure in results["figures"].values():
        assert figure["rows"]
        for row in figure["rows"]:
            for side in ("ours", "reference", "ratio"):
                assert isinstance(row[side], float)
                assert math.isfinite(row[side])
                assert row[side] > 0
