"""``make dev`` installs only what serving needs: ``requirements/serve.lock``, a part of ``requirements/dev.lock``
with the same pins. A venv holding nothing else serves the README's walk-through and runs the operator commands."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

from tests.local.test_readme_walkthrough import run_walkthrough
from tests.servers import HeraServe, python_env

ROOT = Path(__file__).resolve().parents[2]
# what the tests, the linters, the emulators and the SAM CLI bring: none of it belongs in the serving install
TOOLCHAIN = {"pytest", "playwright", "moto", "aws-sam-cli", "mypy", "ruff", "schemathesis", "boto3", "pillow"}


def pins(lock: str) -> dict[str, str]:
    lines = (ROOT / "requirements" / lock).read_text().splitlines()
    found = (re.fullmatch(r"([A-Za-z0-9_.-]+)==(\S+)", line) for line in lines if line and not line.startswith("#"))
    return {re.sub(r"[-_.]+", "-", m.group(1)).lower(): m.group(2) for m in found if m}


def test_the_serving_lock_is_part_of_the_test_lock_with_the_same_pins() -> None:
    serve, dev = pins("serve.lock"), pins("dev.lock")
    assert serve, "requirements/serve.lock pins nothing"
    assert {name: dev.get(name) for name in serve} == serve
    assert not TOOLCHAIN & serve.keys()


def test_a_venv_of_the_serving_lock_alone_serves_the_walkthrough(tmp_path: Path) -> None:
    # GIVEN a fresh venv with requirements/serve.lock and the package only (what make dev installs)
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    python = str(venv / "bin" / "python")
    lock = ROOT / "requirements" / "serve.lock"
    subprocess.run([python, "-m", "pip", "install", "--quiet", "-r", str(lock)], check=True, timeout=600)
    subprocess.run([python, "-m", "pip", "install", "--quiet", "--no-deps", "-e", str(ROOT)], check=True, timeout=600)
    installed = subprocess.run([python, "-m", "pip", "list", "--format=json"], capture_output=True, check=True)
    names = {re.sub(r"[-_.]+", "-", p["name"]).lower() for p in json.loads(installed.stdout)}
    assert not TOOLCHAIN & names
    # WHEN make dev's server runs from it THEN the README's walk-through answers as written
    server = HeraServe({"SESSIONS_DIR": str(tmp_path / "data")}, tmp_path, start=False, python=python)
    server.env.pop("SERVICE_API_KEYS", None)  # type: ignore[union-attr]
    with server.start():
        lines = run_walkthrough(server.url, tmp_path)
    assert len(lines) == 10
    # and the commands a newcomer runs beside it work from the same install
    env = python_env(SESSIONS_DIR=str(tmp_path / "data"))
    for command in (["cost"], ["cost", "--cloud", "gcp"], ["doctor"]):
        done = subprocess.run(
            [python, "-m", "hera_sessions.cli", *command], env=env, capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0, (command, done.stdout, done.stderr)
