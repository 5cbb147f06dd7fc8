"""The web client's own unit tests (web/hera-sessions.test.mjs) run with Node's test runner, under pytest."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from tests.conftest import ROOT


def test_the_web_client_passes_its_node_tests() -> None:
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is not on PATH: `make test` installs it (scripts/install-debian-packages.sh nodejs)")

    done = subprocess.run([node, "--test", "web/"], cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)

    assert done.returncode == 0, done.stdout[-8000:] + done.stderr[-2000:]
    assert "# fail 0" in done.stdout
