"""Every deployed function installs what the core imports: the Lambda layer (shared/requirements.txt), the Cloud
Functions (gcp/requirements.txt) and the Azure function app (azure/requirements.txt) each pin the core's own
dependencies (pyproject.toml) and redis-py with hiredis, at the versions CI tests (requirements/dev.lock)."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DEPLOYED = ["shared/requirements.txt", "gcp/requirements.txt", "azure/requirements.txt"]


def _name(requirement: str) -> str:
    return re.split(r"[\[<>=!~ ;]", requirement.strip(), maxsplit=1)[0].lower().replace("_", "-")


def _pins(path: Path) -> dict[str, str]:
    pins = {}
    for text in path.read_text().splitlines():
        line = text.split("#", 1)[0].strip()
        if line:
            requirement, version = line.split("==")
            pins[_name(requirement)] = version
    return pins


@pytest.mark.parametrize("path", DEPLOYED)
def test_a_deployed_function_pins_the_cores_dependencies_as_tested(path: str) -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    core = {_name(d) for d in project["dependencies"]} | {"redis", "hiredis"}
    pins = _pins(ROOT / path)
    assert core <= set(pins), f"{path} lacks {sorted(core - set(pins))}"
    lock = _pins(ROOT / "requirements" / "dev.lock")
    assert {name: lock.get(name) for name in pins} == pins
    assert "redis[hiredis]==" in (ROOT / path).read_text()
