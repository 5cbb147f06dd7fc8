"""``hera-sessions doctor`` on Azure Blob (Azurite): CORS as azure/deploy.sh sets it; what the data plane cannot see."""

from __future__ import annotations

import json

from tests.servers import hera_cli


def test_azurite_with_cors_is_ok_and_says_what_it_cannot_check(azure_env: dict[str, str]) -> None:
    done = hera_cli("doctor", "--json", settings=azure_env)
    found = {line["check"]: line for line in json.loads(done.stdout)}

    assert done.returncode == 0, found
    for name in ("storage:reachable", "storage:cors", "storage:tls", "storage:identity", "storage:clock"):
        assert found[name]["status"] == "ok", found[name]
    assert found["storage:lifecycle"]["status"] == "warn"
    assert "management-policy show" in found["storage:lifecycle"]["fix"]


def test_cors_for_another_origin_warns(azure_env: dict[str, str]) -> None:
    done = hera_cli("doctor", "--json", settings={**azure_env, "CORS_ALLOWED_ORIGINS": "https://other.example.com"})
    found = {line["check"]: line for line in json.loads(done.stdout)}
    assert found["storage:cors"]["status"] == "warn" and "other.example.com" in found["storage:cors"]["detail"]
