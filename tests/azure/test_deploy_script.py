"""azure/deploy.sh runs end to end against a recording stand-in for the az CLI (no Azure account here).

The stand-in logs every command and keeps the files the script hands to az (CORS, lifecycle policy, the code
zip), so the test checks what would be created: a private, key-less storage account with CORS from the allowed
origins and a 7-day lifecycle on sessions/, the least roles, Key Vault references, the Event Grid filter.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
import zipfile
from typing import Any

import pytest

from tests.conftest import ROOT

FAKE_AZ = r"""#!PYTHON -S
import json, os, shutil, sys
args = sys.argv[1:]
with open(os.environ["AZ_LOG"], "a") as log:
    log.write(json.dumps(args) + "\n")
capture = os.environ["AZ_CAPTURE"]
for i, arg in enumerate(args):
    path = arg[1:] if arg.startswith("@") else args[i + 1] if arg in ("--file", "--src") and i + 1 < len(args) else None
    if path and os.path.isfile(path):
        shutil.copy(path, os.path.join(capture, os.path.basename(path)))
line = " ".join(args)
query = args[args.index("--query") + 1] if "--query" in args else None
if args[:2] == ["account", "show"]:
    print("11111111-2222-3333-4444-555555555555")
elif args[:3] == ["ad", "signed-in-user", "show"]:
    print("deployer-object-id")
elif args[:3] == ["keyvault", "secret", "show"]:
    sys.exit(3)  # not there yet: the script creates it
elif args[1:2] == ["show"] and args[0] in ("redisenterprise", "functionapp") and query is None:
    sys.exit(3)  # not there yet
elif query == "id":
    print(f"/subscriptions/1111/resourceGroups/hera-sessions/providers/{args[0]}/{args[args.index('--name') + 1]}")
elif query == "hostName":
    print("hera-redis.japaneast.redis.azure.net")
elif query == "primaryKey":
    print("redis-primary-key")
elif query == "principalId":
    print("function-principal-id")
elif query == "identity.principalId":
    print("topic-principal-id")
elif query == "defaultHostName":
    print("hera-sessions-abc123.azurewebsites.net")
"""


@pytest.fixture(scope="module")
def deployed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    folder = tmp_path_factory.mktemp("deploy")
    bin_dir, capture = folder / "bin", folder / "capture"
    bin_dir.mkdir()
    capture.mkdir()
    az = bin_dir / "az"
    az.write_text(FAKE_AZ.replace("PYTHON", sys.executable, 1))
    az.chmod(0o755)
    log = folder / "az.log"
    env = {
        **os.environ,
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        "AZ_LOG": str(log),
        "AZ_CAPTURE": str(capture),
        "PYTHON": sys.executable,
        "CORS_ALLOWED_ORIGINS": "https://app.example.com,https://admin.example.com",
    }
    result = subprocess.run(
        ["bash", str(ROOT / "azure" / "deploy.sh")], env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    commands = [json.loads(line) for line in log.read_text().splitlines()]
    return {"commands": commands, "capture": capture, "stdout": result.stdout}


def find(deployed: dict[str, Any], *words: str) -> list[list[str]]:
    return [c for c in deployed["commands"] if c[: len(words)] == list(words)]


def option(command: list[str], name: str) -> str:
    return command[command.index(name) + 1]


def test_the_script_passes_shellcheck() -> None:
    if shutil.which("shellcheck") is None:
        pytest.skip("shellcheck is not installed")
    subprocess.run(["shellcheck", str(ROOT / "azure" / "deploy.sh")], check=True)


def test_the_storage_account_is_private_https_only_and_keyless(deployed: dict[str, Any]) -> None:
    data, host = find(deployed, "storage", "account", "create")
    assert option(data, "--allow-blob-public-access") == "false"
    assert option(data, "--allow-shared-key-access") == "false"  # SAS only from user delegation keys
    assert option(data, "--https-only") == "true"
    containers = find(deployed, "storage", "container-rm", "create")
    assert [option(c, "--name") for c in containers] == ["hera-sessions", "hera-sessions-dead-letters"]
    assert all(option(c, "--public-access") == "off" for c in containers)
    assert option(host, "--allow-blob-public-access") == "false"


def test_cors_comes_from_the_allowed_origins(deployed: dict[str, Any]) -> None:
    body = json.loads((deployed["capture"] / "blob-service.json").read_text())

    (rule,) = body["properties"]["cors"]["corsRules"]
    assert rule["allowedOrigins"] == ["https://app.example.com", "https://admin.example.com"]
    assert set(rule["allowedMethods"]) >= {"GET", "PUT"}
    assert "POST" not in rule["allowedMethods"]
    assert [h.lower() for h in rule["exposedHeaders"]] == ["etag"]


def test_the_lifecycle_deletes_sessions_after_seven_days(deployed: dict[str, Any]) -> None:
    policy = json.loads((deployed["capture"] / "lifecycle.json").read_text())

    (rule,) = policy["rules"]
    assert rule["definition"]["filters"]["prefixMatch"] == ["hera-sessions/sessions/"]
    assert rule["definition"]["actions"]["baseBlob"]["delete"] == {"daysAfterModificationGreaterThan": 7}


def test_the_function_identity_gets_the_least_roles(deployed: dict[str, Any]) -> None:
    grants = {
        option(c, "--role"): option(c, "--scope")
        for c in find(deployed, "role", "assignment", "create")
        if option(c, "--assignee-object-id") == "function-principal-id"
    }

    assert set(grants) == {"Storage Blob Data Contributor", "Storage Blob Delegator", "Key Vault Secrets User"}
    # blob data in the one container only; delegation keys are an account-level action; secrets in the vault
    assert grants["Storage Blob Data Contributor"].endswith("/blobServices/default/containers/hera-sessions")
    assert grants["Storage Blob Delegator"].split("/")[-1].startswith("heradata")
    assert grants["Key Vault Secrets User"].split("/")[-1].startswith("hera-kv-")


def test_secrets_live_in_key_vault_and_settings_reference_them(deployed: dict[str, Any]) -> None:
    created = {option(c, "--name") for c in find(deployed, "keyvault", "secret", "set")}
    assert created == {"token-secret", "service-api-keys", "redis-url"}
    assert (deployed["capture"] / "redis-url").read_text() == (
        "rediss://:redis-primary-key@hera-redis.japaneast.redis.azure.net:10000/0"
    )
    (settings_command,) = find(deployed, "functionapp", "config", "appsettings", "set")
    settings = dict(s.split("=", 1) for s in settings_command[settings_command.index("--settings") + 1 :])
    assert settings["STORAGE_MODE"] == "cloud"
    assert settings["CLOUD_STORAGE_TYPE"] == "azure"
    assert settings["AZURE_STORAGE_ACCOUNT_URL"].startswith("https://")
    assert "AZURE_STORAGE_CONNECTION_STRING" not in settings
    for name in ("REDIS_URL", "TOKEN_SECRET", "SERVICE_API_KEYS"):
        assert settings[name].startswith("https://") and ".vault.azure.net/secrets/" in settings[name]


def test_the_function_app_runs_python_313_with_a_managed_identity(deployed: dict[str, Any]) -> None:
    (create,) = find(deployed, "functionapp", "create")
    assert (option(create, "--runtime"), option(create, "--runtime-version")) == ("python", "3.13")
    assert "--flexconsumption-location" in create
    assert find(deployed, "functionapp", "identity", "assign")


def test_the_code_zip_holds_the_app_and_the_package(deployed: dict[str, Any]) -> None:
    with zipfile.ZipFile(deployed["capture"] / "app.zip") as archive:
        names = set(archive.namelist())

    assert {"function_app.py", "host.json", "requirements.txt", "hera_sessions/__init__.py"} <= names
    assert "hera_sessions/backends/storage/azure.py" in names
    assert not any("__pycache__" in n for n in names)


def test_event_grid_sends_blob_events_under_sessions_to_the_trigger(deployed: dict[str, Any]) -> None:
    (subscription,) = find(deployed, "eventgrid", "system-topic", "event-subscription", "create")

    assert option(subscription, "--endpoint-type") == "azurefunction"
    assert option(subscription, "--endpoint").endswith("/functions/storage_events")
    prefix = "/blobServices/default/containers/hera-sessions/blobs/sessions/"
    assert option(subscription, "--subject-begins-with") == prefix
    events = subscription[subscription.index("--included-event-types") + 1 :][:2]
    assert events == ["Microsoft.Storage.BlobCreated", "Microsoft.Storage.BlobDeleted"]
    assert "hera-sessions-abc123.azurewebsites.net/health" in deployed["stdout"], shlex.join(subscription)


def test_failed_blob_events_are_retried_then_dead_lettered_and_alerted_on(deployed: dict[str, Any]) -> None:
    # a system topic for the data account, with a managed identity
    (topic,) = find(deployed, "eventgrid", "system-topic", "create")
    assert option(topic, "--topic-type") == "Microsoft.Storage.StorageAccounts"
    assert option(topic, "--source").split("/")[-1].startswith("heradata")
    assert option(topic, "--identity") == "systemassigned"
    # that identity may write blobs in the dead-letter container only
    (grant,) = [c for c in find(deployed, "role", "assignment", "create") if "topic-principal-id" in c]
    assert option(grant, "--role") == "Storage Blob Data Contributor"
    assert option(grant, "--scope").endswith("/blobServices/default/containers/hera-sessions-dead-letters")
    # the subscription: a retry policy, then the dead-letter container through that identity
    (subscription,) = find(deployed, "eventgrid", "system-topic", "event-subscription", "create")
    assert option(subscription, "--system-topic-name") == option(topic, "--name")
    assert (option(subscription, "--max-delivery-attempts"), option(subscription, "--event-ttl")) == ("30", "1440")
    assert option(subscription, "--deadletter-identity") == "systemassigned"
    assert option(subscription, "--deadletter-identity-endpoint") == option(grant, "--scope")
    # an alert as soon as one event is dead-lettered
    (alert,) = find(deployed, "monitor", "metrics", "alert", "create")
    assert option(alert, "--scopes").endswith("/" + option(topic, "--name"))
    assert option(alert, "--condition") == "total DeadLetteredCount > 0"
    assert "Microsoft.Insights" in [option(c, "--namespace") for c in find(deployed, "provider", "register")]


def test_dry_run_prints_what_it_would_create_and_runs_no_az(tmp_path: Any) -> None:
    # GIVEN no az CLI at all on PATH, WHEN the script runs with DRY_RUN=1
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
        "DRY_RUN": "1",
        "CORS_ALLOWED_ORIGINS": "https://app.example.com",
        "PYTHON": sys.executable,
    }
    done = subprocess.run(
        ["bash", str(ROOT / "azure" / "deploy.sh")], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
    )
    # THEN it ends well, having printed every change it would make (and run none: there is no az to run)
    assert done.returncode == 0, done.stderr
    printed = done.stdout.splitlines()
    for change in (
        "+ az group create",
        "+ az storage account create",
        "+ az storage account management-policy create",
        "+ az keyvault create",
        "+ az redisenterprise create",
        "+ az functionapp create",
        "+ az functionapp deployment source config-zip",
        "+ az eventgrid system-topic event-subscription create",
    ):
        assert any(line.startswith(change) for line in printed), change
    assert "+ (query) az account show" in done.stderr
    assert list(tmp_path.iterdir()) == []  # nothing written where it ran
