"""Fixtures for the Azure tests: Azurite (the Azure Storage emulator), containers, runtimes in Azure mode.

Azurite is the npm package that ``scripts/install-azurite.sh`` puts in ``.azurite/`` (``make test`` runs it);
one Azurite blob service runs for the whole test session on a free loopback port, in memory. Azurite checks
SAS signatures, permissions, expiry, protocol and the account's CORS rules, like Azure does.

The fixtures, from the bottom up:

- ``azurite``: the running emulator (an :class:`Azurite`: ``.account_url``, ``.connection_string``, ``.client``);
- ``allowed_origins``: the CORS origins of the Blob service and of the API;
- ``azure_container``: a fresh container (a unique name), with the Blob service's CORS rules set from
  ``allowed_origins`` exactly as ``azure/deploy.sh`` sets them (:func:`hera_sessions.http.cors.azure_rule`);
- ``azure_env``: the settings of a Runtime in ``STORAGE_MODE=cloud CLOUD_STORAGE_TYPE=azure SESSION_TYPE=redis``
  mode on that container and the test Redis (add or change keys before building a runtime with them);
- ``azure_runtime``: a Runtime built from ``azure_env``;
- ``function_app``: ``azure/function_app.py``, imported, its ``runtime`` bound to ``azure_runtime``;
- ``api``: an :class:`Api` that calls the ``api`` function with ``azure.functions.HttpRequest`` objects.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from hera_sessions.runtime import Runtime
from tests.conftest import ROOT, SERVICE_KEY, RedisServer
from tests.envs import service_env
from tests.servers import ServerProcess, free_port

AZURITE_MAIN = ROOT / ".azurite" / "node_modules" / "azurite" / "dist" / "src" / "blob" / "main.js"
FUNCTION_APP = ROOT / "azure" / "function_app.py"
#: Azurite's well-known development account (public, documented: not a secret).
ACCOUNT = "devstoreaccount1"
ACCOUNT_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


class Azurite(ServerProcess):
    """One Azurite blob service (in memory) on a free loopback port, run from its own folder."""

    def __init__(self, workdir: Path, *extra: str, https: bool = False) -> None:
        if not AZURITE_MAIN.is_file():
            pytest.fail(
                f"Azurite is not installed ({AZURITE_MAIN.relative_to(ROOT)} is missing): "
                "run scripts/install-azurite.sh (`make test` does)"
            )
        node = subprocess.run(["node", "--version"], capture_output=True, text=True, check=False)
        if node.returncode != 0:
            pytest.fail("node is not on PATH: Azurite needs Node.js (scripts/install-debian-packages.sh nodejs)")
        port = free_port()
        self.scheme = "https" if https else "http"
        workdir.mkdir(parents=True, exist_ok=True)
        args = [
            "node", str(AZURITE_MAIN),
            "--blobHost", "127.0.0.1",
            "--blobPort", str(port),
            "--inMemoryPersistence",
            "--skipApiVersionCheck",
            "--disableTelemetry",
            "--silent",
            *extra,
        ]  # fmt: skip
        super().__init__(args, port=port, name="azurite", cwd=workdir, logs=workdir)
        self.start()

    @property
    def account_url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}/{ACCOUNT}"

    @property
    def connection_string(self) -> str:
        return (
            f"DefaultEndpointsProtocol={self.scheme};AccountName={ACCOUNT};AccountKey={ACCOUNT_KEY};"
            f"BlobEndpoint={self.account_url};"
        )

    def client(self, **options: Any) -> Any:
        from azure.storage.blob import BlobServiceClient

        return BlobServiceClient.from_connection_string(self.connection_string, **options)


@pytest.fixture(scope="session")
def azurite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Azurite]:
    with Azurite(tmp_path_factory.mktemp("azurite")) as server:
        yield server


@pytest.fixture
def allowed_origins() -> tuple[str, ...]:
    return ("http://localhost:5173",)


@dataclass
class Container:
    name: str
    client: Any  # azure.storage.blob.ContainerClient

    def names(self, prefix: str = "") -> list[str]:
        return sorted(b.name for b in self.client.list_blobs(name_starts_with=prefix or None))


@pytest.fixture
def azure_container(azurite: Azurite, allowed_origins: tuple[str, ...]) -> Iterator[Container]:
    from azure.storage.blob import CorsRule

    from hera_sessions.http import cors

    service = azurite.client()
    service.set_service_properties(cors=[CorsRule(**cors.azure_rule(allowed_origins))])
    name = f"hera-{uuid.uuid4().hex[:12]}"
    container = service.create_container(name)
    yield Container(name, container)
    container.delete_container()


@pytest.fixture
def azure_env(
    azurite: Azurite, azure_container: Container, redis_server: RedisServer, allowed_origins: tuple[str, ...]
) -> dict[str, str]:
    return service_env(
        "azure",
        "redis",
        bucket=azure_container.name,
        redis_url=redis_server.url,
        origins=allowed_origins,
        AZURE_STORAGE_CONNECTION_STRING=azurite.connection_string,
    )


@pytest.fixture
def azure_runtime(azure_env: dict[str, str], make_runtime: Callable[[dict[str, str]], Runtime]) -> Runtime:
    return make_runtime(azure_env)


def load_function_app() -> ModuleType:
    """``azure/function_app.py`` as the Functions host loads it: a top-level module named ``function_app``."""
    spec = importlib.util.spec_from_file_location("function_app", FUNCTION_APP)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def function_app_module() -> ModuleType:
    return load_function_app()


@pytest.fixture
def function_app(
    function_app_module: ModuleType, azure_runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> ModuleType:
    monkeypatch.setattr(function_app_module, "runtime", azure_runtime)
    return function_app_module


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


class Api:
    """Calls the ``api`` function in-process with the HttpRequest objects the Functions host would build."""

    def __init__(self, module: ModuleType, host: str = "hera-sessions.azurewebsites.net") -> None:
        self.module = module
        self.host = host

    def __call__(
        self,
        method: str,
        target: str,
        body: Any = None,
        token: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> Answer:
        import azure.functions as func

        sent = {"host": self.host, **(headers or {})}
        if token:
            sent["authorization"] = f"Bearer {token}"
        raw = b"" if body is None else body if isinstance(body, bytes) else json.dumps(body).encode()
        if body is not None:
            sent.setdefault("content-type", "application/json")
        request = func.HttpRequest(method, f"https://{self.host}{target}", headers=sent, body=raw)
        response = self.module.api(request)
        return Answer(response.status_code, dict(response.headers), response.get_body())

    def create_session(self) -> tuple[str, str]:
        answer = self("POST", "/v1/sessions", {}, token=SERVICE_KEY)
        assert answer.status == 201, answer.body
        created = answer.json()
        return created["session_id"], created["token"]


@pytest.fixture
def api(function_app: ModuleType) -> Api:
    return Api(function_app)


def blob_created_event(
    container: str,
    key: str,
    *,
    size: int,
    content_type: str,
    etag: str,
    sequencer: str,
    event_id: str | None = None,
) -> dict[str, Any]:
    """An Event Grid ``BlobCreated`` event shaped exactly like events/eventgrid-blob-created.json, for a real blob."""
    from tests.conftest import load_event

    event: dict[str, Any] = load_event("eventgrid-blob-created.json")[0]  # type: ignore[index]
    event["id"] = event_id or str(uuid.uuid4())
    event["subject"] = f"/blobServices/default/containers/{container}/blobs/{key}"
    event["data"] |= {
        "url": f"http://127.0.0.1/{ACCOUNT}/{container}/{key}",
        "contentLength": size,
        "contentType": content_type,
        "eTag": etag.strip('"'),
        "sequencer": sequencer,
    }
    return event


def blob_deleted_event(container: str, key: str, *, sequencer: str, event_id: str | None = None) -> dict[str, Any]:
    from tests.conftest import load_event

    event: dict[str, Any] = load_event("eventgrid-blob-deleted.json")[0]  # type: ignore[index]
    event["id"] = event_id or str(uuid.uuid4())
    event["subject"] = f"/blobServices/default/containers/{container}/blobs/{key}"
    event["data"] |= {"url": f"http://127.0.0.1/{ACCOUNT}/{container}/{key}", "sequencer": sequencer}
    return event


def sequencer(n: int) -> str:
    """A realistic 48-hex-digit sequencer (Azure's newer width), increasing with ``n``."""
    return f"{0:032X}{0x1D2AA4A5 + n:016x}"


def trigger_event(event: dict[str, Any]) -> Any:
    """The ``azure.functions.EventGridEvent`` the Functions host hands the Event Grid trigger for ``event``."""
    from datetime import datetime

    import azure.functions as func

    when = event.get("eventTime")
    return func.EventGridEvent(
        id=event["id"],
        data=event["data"],
        topic=event.get("topic", ""),
        subject=event["subject"],
        event_type=event["eventType"],
        event_time=datetime.fromisoformat(when[:26].rstrip("Z") + "+00:00") if when else None,
        data_version=event.get("dataVersion", ""),
    )


class StaticTokenCredential:
    """A token credential (what azure-identity's credentials are) handing out one unsigned JWT.

    Azurite in ``--oauth basic`` mode checks a bearer token's audience, issuer and lifetime, not its signature:
    this stands in for the function's managed identity against it.
    """

    tenant = "72f988bf-86f1-41af-91ab-2d7cd011db47"
    object_id = "5e3ce6c0-2b1f-4285-8d4b-75ee78787346"

    def __init__(self, audience: str = "https://storage.azure.com") -> None:
        self.audience = audience
        self.calls = 0

    def token(self) -> str:
        import base64

        def part(value: dict[str, Any]) -> str:
            return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

        now = int(__import__("time").time())
        claims = {
            "aud": self.audience,
            "iss": f"https://sts.windows.net/{self.tenant}/",
            "iat": now - 60,
            "nbf": now - 60,
            "exp": now + 3600,
            "oid": self.object_id,
            "tid": self.tenant,
        }
        return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims)}.unsigned"

    def get_token(self, *scopes: str, **kwargs: Any) -> Any:
        from azure.core.credentials import AccessToken

        self.calls += 1
        return AccessToken(self.token(), int(__import__("time").time()) + 3600)

    def get_token_info(self, *scopes: str, options: Any = None) -> Any:
        from azure.core.credentials import AccessTokenInfo

        token = self.get_token(*scopes)
        return AccessTokenInfo(token.token, token.expires_on)
