"""The deployment files: gcp/deploy.sh (checked, and run with DRY_RUN=1), cors.json, lifecycle.json, requirements,
and the package `make gcp-package` builds (main.py finds the hera_sessions copy beside it)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

GCP = ROOT / "gcp"
DEPLOY = GCP / "deploy.sh"


def test_the_deploy_script_parses_and_passes_shellcheck() -> None:
    subprocess.run(["bash", "-n", str(DEPLOY)], check=True)
    shellcheck = shutil.which("shellcheck")
    if shellcheck is None:
        pytest.skip("shellcheck is not installed (apt-get install shellcheck)")
    subprocess.run([shellcheck, str(DEPLOY), str(ROOT / "scripts" / "gcp-package.sh")], check=True)


@pytest.fixture(scope="module")
def dry_run() -> str:
    """What deploy.sh would run, for a project with two origins and Cloud CDN."""
    env = {
        "PYTHON": sys.executable,
        "PATH": os.environ["PATH"],
        "HOME": os.environ.get("HOME", "/tmp"),
        "DRY_RUN": "1",
        "PROJECT_ID": "demo-project",
        "CORS_ALLOWED_ORIGINS": "https://app.example.com, https://admin.example.com/",
        "CDN_MODE": "cloudcdn-signed",
        "CDN_DOMAIN": "files.example.com",
    }
    done = subprocess.run(
        ["bash", str(DEPLOY)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        check=True,
        timeout=60,
    )
    return done.stdout


def commands(output: str, start: str) -> list[str]:
    return [line for line in output.splitlines() if line.startswith(f"+ {start}")]


def test_both_functions_are_gen2_python313_from_the_package_in_tokyo_by_default(dry_run: str) -> None:
    api, events = commands(dry_run, "gcloud functions deploy")
    for command in (api, events):
        assert "--gen2" in command
        assert "--runtime=python313" in command
        assert "--region=asia-northeast1" in command
        assert re.search(r"--source=\S+/gcp/dist\b", command)
        assert "--vpc-connector=hera-sessions-dev" in command
        assert "--service-account=hera-sessions-dev-fn@demo-project.iam.gserviceaccount.com" in command
    assert "--entry-point=api --trigger-http --allow-unauthenticated" in api
    assert "--entry-point=storage_events --trigger-bucket=demo-project-hera-sessions-dev --retry" in events
    (deleted,) = commands(dry_run, "gcloud eventarc triggers create")
    assert "--event-filters=type=google.cloud.storage.object.v1.deleted" in deleted
    assert "--destination-run-service=hera-sessions-dev-storage-events" in deleted


def test_the_bucket_is_private_uniform_and_has_cors_and_lifecycle(dry_run: str) -> None:
    (create,) = commands(dry_run, "gcloud storage buckets create")
    assert "--uniform-bucket-level-access" in create
    assert "--public-access-prevention" in create
    assert "--soft-delete-duration=0" in create
    (update,) = commands(dry_run, "gcloud storage buckets update")
    assert "--cors-file=" in update
    assert "--lifecycle-file=" in update
    cors, _ = json.JSONDecoder().raw_decode(dry_run.split("+ (file cors.json)\n", 1)[1])
    assert cors[0]["origin"] == ["https://app.example.com", "https://admin.example.com"]


def test_redis_network_secrets_and_least_privilege(dry_run: str) -> None:
    (redis,) = commands(dry_run, "gcloud redis instances create")
    assert "--redis-version=redis_7_0" in redis
    assert "--enable-auth" in redis
    assert "maxmemory-policy=noeviction" in redis
    assert commands(dry_run, "gcloud compute networks vpc-access connectors create")
    created = {line.split()[4] for line in commands(dry_run, "gcloud secrets create")}
    assert created >= {
        "hera-sessions-dev-token-secret",
        "hera-sessions-dev-service-api-keys",
        "hera-sessions-dev-redis-url",
    }
    roles = re.findall(r"--role=(\S+)", dry_run)
    assert "roles/storage.objectAdmin" in roles
    assert "roles/iam.serviceAccountTokenCreator" in roles
    assert "roles/secretmanager.secretAccessor" in roles
    assert not {"roles/owner", "roles/editor", "roles/storage.admin"} & set(roles)
    env = dry_run.split("+ (file env.yaml)\n", 1)[1]
    assert 'REDIS_URL: "projects/demo-project/secrets/hera-sessions-dev-redis-url/versions/latest"' in env
    assert 'CLOUD_STORAGE_TYPE: "gcs"' in env
    assert 'CDN_URL_MAP: "projects/demo-project/global/urlMaps/hera-sessions-dev-cdn"' in env


def test_the_cdn_caches_no_longer_than_a_download_url_lives(dry_run: str) -> None:
    (backend,) = commands(dry_run, "gcloud compute backend-buckets create")
    assert "--max-ttl=900" in backend
    assert "--signed-url-cache-max-age=900s" in backend


def test_the_committed_cors_and_lifecycle_files() -> None:
    cors = json.loads((GCP / "cors.json").read_text())
    assert cors[0]["origin"] == ["http://localhost:5173"]  # the default allowed origin, as in template.yaml
    assert set(cors[0]["method"]) >= {"GET", "PUT", "POST"}
    rules = json.loads((GCP / "lifecycle.json").read_text())["rule"]
    assert {"action": {"type": "Delete"}, "condition": {"age": 7, "matchesPrefix": ["sessions/"]}} in rules
    assert {"action": {"type": "AbortIncompleteMultipartUpload"}, "condition": {"age": 1}} in rules


def test_the_function_requirements_are_pinned_to_the_tested_versions() -> None:
    lock = {}
    for line in (ROOT / "requirements" / "dev.lock").read_text().splitlines():
        if "==" in line and not line.startswith("#"):
            name, version = line.split("==", 1)
            lock[name.lower().replace("_", "-")] = version.strip()
    pins = [line for line in (GCP / "requirements.txt").read_text().splitlines() if line and not line.startswith("#")]
    assert {p.split("==")[0] for p in pins} == {
        "functions-framework",
        "google-cloud-storage",
        "aws-lambda-powertools",
        "redis[hiredis]",
        "hiredis",
        "orjson",
    }
    for pin in pins:
        name, version = pin.split("==")
        assert lock[name.split("[")[0]] == version, name


def test_the_package_holds_main_requirements_and_the_core_beside_them(tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    subprocess.run([str(ROOT / "scripts" / "gcp-package.sh"), str(dist)], check=True, capture_output=True)

    assert (dist / "main.py").read_bytes() == (GCP / "main.py").read_bytes()
    assert (dist / "requirements.txt").is_file()
    assert (dist / "hera_sessions" / "backends" / "metadata" / "redis.py").is_file()
    assert not list(dist.rglob("__pycache__"))
    found = subprocess.run(
        [sys.executable, "-c", "import main, hera_sessions; print(hera_sessions.__file__)"],
        cwd=dist,
        capture_output=True,
        text=True,
        check=True,
    )
    assert Path(found.stdout.strip()).is_relative_to(dist)  # the copy beside main.py, not the project's install


def test_failed_storage_events_are_dead_lettered_and_alerted_on(dry_run: str) -> None:
    topic = "hera-sessions-dev-storage-events-dead-letters"
    agent = "serviceAccount:service-123456789012@gcp-sa-pubsub.iam.gserviceaccount.com"
    # a dead-letter topic, and a subscription that keeps what reaches it (a topic alone keeps nothing)
    assert commands(dry_run, f"gcloud pubsub topics create {topic} ")
    (keep,) = commands(dry_run, f"gcloud pubsub subscriptions create {topic} ")
    assert f"--topic={topic}" in keep
    assert "--message-retention-duration=7d" in keep
    # both Eventarc triggers' subscriptions (finalized and deleted) dead-letter after 20 deliveries
    updates = commands(dry_run, "gcloud pubsub subscriptions update")
    assert len(updates) == 2
    assert any("-storage-events-finalized-sub" in u for u in updates)
    assert any("-object-deleted-sub" in u for u in updates)
    for update in updates:
        assert f"--dead-letter-topic=projects/demo-project/topics/{topic}" in update
        assert "--max-delivery-attempts=20" in update
    # Pub/Sub's service agent may publish to the topic and acknowledge on both subscriptions
    (publisher,) = commands(dry_run, f"gcloud pubsub topics add-iam-policy-binding {topic} ")
    assert f"--member={agent}" in publisher
    assert "--role=roles/pubsub.publisher" in publisher
    subscribers = commands(dry_run, "gcloud pubsub subscriptions add-iam-policy-binding")
    assert len(subscribers) == 2
    assert all(f"--member={agent}" in s and "--role=roles/pubsub.subscriber" in s for s in subscribers)
    # an alert policy on the messages waiting there, created once
    (alert,) = commands(dry_run, "gcloud monitoring policies create")
    assert "--policy-from-file=" in alert
    policy, _ = json.JSONDecoder().raw_decode(dry_run.split("+ (file dead-letter-alert.json)\n", 1)[1])
    (condition,) = policy["conditions"]
    threshold = condition["conditionThreshold"]
    assert "pubsub.googleapis.com/subscription/num_undelivered_messages" in threshold["filter"]
    assert f'resource.labels.subscription_id = "{topic}"' in threshold["filter"]
    assert (threshold["comparison"], threshold["thresholdValue"]) == ("COMPARISON_GT", 0)
    assert "monitoring.googleapis.com" in commands(dry_run, "gcloud services enable")[0]
