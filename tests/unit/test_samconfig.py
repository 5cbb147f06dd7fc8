"""``samconfig.toml``'s placeholders cannot be deployed by accident: each environment that still holds one holds a
value the template's ``AllowedPattern`` refuses, so CloudFormation stops the deploy before it creates anything."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from hera_sessions.cost import CfnLoader, samconfig_overrides

ROOT = Path(__file__).resolve().parents[2]
SAMCONFIG = ROOT / "samconfig.toml"
PLACEHOLDER = re.compile(r"REPLACE-ME|ACCOUNT_ID")
ENVIRONMENTS = [env for env, table in tomllib.loads(SAMCONFIG.read_text()).items() if isinstance(table, dict)]


def refused(overrides: dict[str, str]) -> dict[str, str]:
    """The overrides the template's AllowedPatterns refuse (CloudFormation matches the whole value)."""
    parameters = CfnLoader.load((ROOT / "template.yaml").read_text())["Parameters"]
    return {
        name: value
        for name, value in overrides.items()
        if "AllowedPattern" in parameters[name] and not re.fullmatch(parameters[name]["AllowedPattern"], value)
    }


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_an_environment_with_a_placeholder_left_cannot_be_deployed(env: str) -> None:
    overrides = samconfig_overrides(SAMCONFIG, env)
    placeholders = {name for name, value in overrides.items() if PLACEHOLDER.search(value)}
    assert placeholders, f"{env}: every environment ships with placeholders to replace"
    assert refused(overrides), f"{env}: its placeholders {sorted(placeholders)} would deploy"


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_real_values_in_place_of_the_placeholders_pass(env: str) -> None:
    real = {
        "vpc-REPLACE-ME": "vpc-0a1b2c3d4e5f60718",
        "ACCOUNT_ID": "210987654321",
        "oncall@REPLACE-ME": "oncall@hera.example.org",
    }
    overrides = samconfig_overrides(SAMCONFIG, env)
    for placeholder, value_of_yours in real.items():
        overrides = {name: value.replace(placeholder, value_of_yours) for name, value in overrides.items()}
    assert refused(overrides) == {}
