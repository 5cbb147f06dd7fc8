"""Secret Manager references (``projects/P/secrets/S[/versions/V]``), resolved once per process through the REST API."""

from __future__ import annotations

from typing import Any

import pytest

from hera_sessions.backends import secrets
from hera_sessions.backends.secrets import gcp as secrets_gcp
from hera_sessions.core.errors import ConfigError
from tests.conftest import SERVICE_KEY, RedisServer
from tests.gcp.conftest import PROJECT, Google, ServiceAccount


@pytest.mark.parametrize(
    ("reference", "name"),
    [
        ("projects/p/secrets/redis-url", "projects/p/secrets/redis-url/versions/latest"),
        ("projects/p/secrets/redis-url/", "projects/p/secrets/redis-url/versions/latest"),
        ("projects/p/secrets/redis-url/versions/3", "projects/p/secrets/redis-url/versions/3"),
        ("projects/p/secrets/redis-url/versions/latest", "projects/p/secrets/redis-url/versions/latest"),
    ],
)
def test_a_reference_without_a_version_means_the_latest(reference: str, name: str) -> None:
    assert secrets_gcp.version_name(reference) == name


@pytest.mark.parametrize(
    "reference", ["projects/p/secrets/", "projects/p/secrets/a/b", "projects/p/secrets/s/versions/"]
)
def test_malformed_references_are_refused(reference: str) -> None:
    with pytest.raises(ConfigError, match="Secret Manager name"):
        secrets_gcp.version_name(reference)


def test_a_reference_is_read_with_the_default_credentials(google: Google, gcp_credentials: ServiceAccount) -> None:
    google.secrets[f"projects/{PROJECT}/secrets/token-secret"] = "s3cr3t-value\n"

    value = secrets.resolve(f"projects/{PROJECT}/secrets/token-secret")

    assert value == "s3cr3t-value"
    (call,) = google.to("secretmanager.googleapis.com")
    assert (call.method, call.path) == ("GET", f"/v1/projects/{PROJECT}/secrets/token-secret/versions/latest:access")
    assert call.bearer.startswith("oauth-token-")


def test_a_missing_secret_fails_start_up_with_its_name(google: Google, gcp_credentials: ServiceAccount) -> None:
    with pytest.raises(ConfigError, match=r"404 for projects/hera-test/secrets/nope/versions/latest: Secret \["):
        secrets.resolve(f"projects/{PROJECT}/secrets/nope")


def test_a_payload_that_fails_its_checksum_is_refused(google: Google, gcp_credentials: ServiceAccount) -> None:
    google.secrets[f"projects/{PROJECT}/secrets/token-secret"] = "value"
    google.corrupt_secrets = True

    with pytest.raises(ConfigError, match="CRC32C"):
        secrets.resolve(f"projects/{PROJECT}/secrets/token-secret")


def test_a_runtime_resolves_each_reference_once_per_cold_start(
    google: Google, gcp_env: dict[str, str], redis_server: RedisServer, make_runtime: Any
) -> None:
    # GIVEN the three secrets in Secret Manager and only references in the settings
    for name, value in (
        ("redis-url", redis_server.url),
        ("token-secret", "tok"),
        ("service-api-keys", f"{SERVICE_KEY},k2"),
    ):
        google.secrets[f"projects/{PROJECT}/secrets/{name}"] = value
    env = {
        **gcp_env,
        "REDIS_URL": f"projects/{PROJECT}/secrets/redis-url/versions/latest",
        "TOKEN_SECRET": f"projects/{PROJECT}/secrets/token-secret",
        "SERVICE_API_KEYS": f"projects/{PROJECT}/secrets/service-api-keys",
    }
    runtime = make_runtime(env)

    # WHEN the service is built and used several times
    service = runtime.service()
    for _ in range(3):
        service.create_session(f"Bearer {SERVICE_KEY}")
        service.create_session("Bearer k2")

    # THEN it reached Redis with the resolved URL, and read each secret exactly once
    assert service.settings.redis_url == redis_server.url
    assert service.settings.service_api_keys == (SERVICE_KEY, "k2")
    assert sorted(c.path for c in google.to("secretmanager.googleapis.com")) == [
        f"/v1/projects/{PROJECT}/secrets/{name}/versions/latest:access"
        for name in ("redis-url", "service-api-keys", "token-secret")
    ]
