"""Key Vault references, read over the REST API: a local HTTP server answers as Key Vault does."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from hera_sessions.backends import secrets
from hera_sessions.backends.secrets.azure import API_VERSION, SCOPE, parse_reference, read_secret
from hera_sessions.core.errors import ConfigError

VERSION = "4387e9f3d6e14c459867679a90fd0f79"


class Credential:
    def __init__(self) -> None:
        self.scopes: list[str] = []

    def get_token(self, *scopes: str, **kwargs: Any) -> Any:
        from azure.core.credentials import AccessToken

        self.scopes.extend(scopes)
        return AccessToken("vault-token", 0)


class Vault(BaseHTTPRequestHandler):
    """GET /secrets/{name}/{version}?api-version=7.4 with a bearer token, as Key Vault answers it."""

    secrets = {("redis-url", ""): "rediss://:pw@cache:10000", ("token-secret", VERSION): "s3cr3t\n"}
    seen: list[str] = []

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        self.seen.append(self.path)
        if self.headers.get("Authorization") != "Bearer vault-token":
            return self.answer(401, {"error": {"code": "Unauthorized", "message": "AKV10000"}})
        if parse_qs(parts.query).get("api-version") != [API_VERSION]:
            return self.answer(400, {"error": {"code": "BadParameter", "message": "api-version"}})
        _, _, name, version = [*parts.path.split("/"), ""][:4]
        if name == "forbidden":
            return self.answer(403, {"error": {"code": "Forbidden", "message": "no access policy"}})
        value = self.secrets.get((name, version))
        if value is None:
            return self.answer(404, {"error": {"code": "SecretNotFound", "message": name}})
        return self.answer(200, {"value": value, "id": f"https://v.vault.azure.net/secrets/{name}/{version}"})

    def answer(self, status: int, body: dict[str, Any]) -> None:
        raw = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)


@pytest.fixture
def vault() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Vault)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize(
    ("reference", "parsed"),
    [
        ("https://hera-kv.vault.azure.net/secrets/redis-url", ("https://hera-kv.vault.azure.net", "redis-url", None)),
        (
            f"https://hera-kv.vault.azure.net/secrets/token-secret/{VERSION}",
            ("https://hera-kv.vault.azure.net", "token-secret", VERSION),
        ),
        ("https://hera-kv.vault.azure.net/secrets/redis-url/", ("https://hera-kv.vault.azure.net", "redis-url", None)),
    ],
)
def test_references_name_the_vault_the_secret_and_maybe_a_version(reference: str, parsed: tuple[Any, ...]) -> None:
    assert parse_reference(reference) == parsed
    assert secrets.is_reference(reference)


@pytest.mark.parametrize(
    "reference",
    [
        "https://hera-kv.vault.azure.net/keys/redis-url",
        "https://hera-kv.vault.azure.net/secrets/bad_name",
        "https://hera-kv.vault.azure.net/secrets/a/b/c",
        "https://evil.example.com/secrets/x",
    ],
)
def test_other_urls_are_not_references(reference: str) -> None:
    with pytest.raises(ConfigError):
        parse_reference(reference)


def test_the_latest_version_is_read_with_a_vault_token(vault: str) -> None:
    credential = Credential()

    assert read_secret(vault, "redis-url", None, credential) == "rediss://:pw@cache:10000"
    assert credential.scopes == [SCOPE]
    assert Vault.seen[-1] == f"/secrets/redis-url/?api-version={API_VERSION}"


def test_a_pinned_version_is_read(vault: str) -> None:
    assert read_secret(vault, "token-secret", VERSION, Credential()) == "s3cr3t\n"


@pytest.mark.parametrize(("name", "says"), [("forbidden", "403 Forbidden"), ("missing", "404 SecretNotFound")])
def test_refusals_become_config_errors_that_say_why(vault: str, name: str, says: str) -> None:
    with pytest.raises(ConfigError, match=says):
        read_secret(vault, name, None, Credential())


def test_an_unreachable_vault_is_a_config_error() -> None:
    from tests.conftest import free_port

    with pytest.raises(ConfigError, match="Could not reach Key Vault"):
        read_secret(f"http://127.0.0.1:{free_port()}", "redis-url", None, Credential(), timeout=1)


def test_the_secrets_registry_sends_vault_references_here() -> None:
    module, _, function = next(target for prefix, target in secrets.RESOLVERS.items() if "vault" in prefix).partition(
        ":"
    )

    assert (module, function) == ("hera_sessions.backends.secrets.azure", "resolve")
