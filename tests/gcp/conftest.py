"""Fixtures for the GCP tests: the GCS emulator, a throwaway signing key, Google's other endpoints, the functions.

Real parts, on loopback ports, started here:

- ``gcs_emulator``: gcp-storage-emulator (``STORAGE_EMULATOR_HOST``); every test gets its own bucket
  (``gcs_bucket``). The emulator checks no signatures, so what we sign is verified against the key
  (:func:`verify_v4_url`, :func:`verify_post_policy`: Google's V4 algorithm, written out here once more).
- ``google``: stand-ins for the Google endpoints the code calls besides Cloud Storage, reached by their real
  URLs: an HTTPS server with a certificate from a throwaway CA for ``oauth2``, ``iamcredentials``,
  ``secretmanager`` and ``compute.googleapis.com``, behind a CONNECT proxy (``HTTPS_PROXY`` +
  ``REQUESTS_CA_BUNDLE``, which requests honours), plus a metadata server as Cloud Functions has one. So the
  production code runs unchanged: token exchange, IAM signBlob, Secret Manager access, CDN invalidation.
- ``service_account``: a service account key file made of a throwaway RSA key (``GOOGLE_APPLICATION_CREDENTIALS``).
- ``functions``: ``gcp/main.py`` loaded by functions-framework (``create_app(...).test_client()``), both targets.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import itertools
import json
import selectors
import socket
import socketserver
import ssl
import sys
import threading
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, parse_qsl, quote, urlsplit

import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from hera_sessions.runtime import Runtime
from tests.conftest import ROOT, SERVICE_KEY, RedisServer
from tests.envs import service_env
from tests.servers import GcsEmulator

MAIN = ROOT / "gcp" / "main.py"
PROJECT = "hera-test"
EMAIL = f"hera-fn@{PROJECT}.iam.gserviceaccount.com"
GOOGLE_HOSTS = (
    "oauth2.googleapis.com",
    "iamcredentials.googleapis.com",
    "secretmanager.googleapis.com",
    "compute.googleapis.com",
)


# -- the throwaway signing key -------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@dataclass(frozen=True)
class ServiceAccount:
    path: Path
    email: str
    key: rsa.RSAPrivateKey

    @property
    def public_key(self) -> rsa.RSAPublicKey:
        return self.key.public_key()


@pytest.fixture(scope="session")
def service_account(rsa_key: rsa.RSAPrivateKey, tmp_path_factory: pytest.TempPathFactory) -> ServiceAccount:
    """A service account key file as the console hands it out, with the throwaway key inside."""
    pem = rsa_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    info = {
        "type": "service_account",
        "project_id": PROJECT,
        "private_key_id": "throwaway-key",
        "private_key": pem,
        "client_email": EMAIL,
        "client_id": "100000000000000000001",
        "auth_uri": "https://accounts.google.com/o/oauth2/auth",
        "token_uri": "https://oauth2.googleapis.com/token",
    }
    path = tmp_path_factory.mktemp("gcp-key") / "service-account.json"
    path.write_text(json.dumps(info))
    return ServiceAccount(path, EMAIL, rsa_key)


# -- checking what we sign, with Google's V4 algorithm -------------------------------------------------------
def _b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def verify_v4_url(url: str, method: str, headers: Mapping[str, str], public_key: rsa.RSAPublicKey) -> dict[str, str]:
    """Recompute a V4 signed URL's signature (canonical request → string to sign → RSA-SHA256) and verify it.

    ``headers`` are the headers the client will send: they must be exactly the signed ones (plus ``host``).
    Returns the query parameters. Raises ``cryptography.exceptions.InvalidSignature`` on a mismatch.
    """
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    signature = bytes.fromhex(query.pop("X-Goog-Signature"))
    assert query["X-Goog-Algorithm"] == "GOOG4-RSA-SHA256"
    canonical_query = "&".join(sorted(f"{quote(k, safe='~')}={quote(v, safe='~')}" for k, v in query.items()))
    sent = {name.lower(): " ".join(value.split()) for name, value in headers.items()} | {"host": parts.netloc}
    signed = query["X-Goog-SignedHeaders"].split(";")
    assert signed == sorted(sent), f"signed headers {signed} are not the headers the client sends {sorted(sent)}"
    canonical_headers = "".join(f"{name}:{sent[name]}\n" for name in signed)
    canonical_request = "\n".join(
        [method, parts.path, canonical_query, canonical_headers, query["X-Goog-SignedHeaders"], "UNSIGNED-PAYLOAD"]
    )
    _, scope = query["X-Goog-Credential"].split("/", 1)
    string_to_sign = "\n".join(
        ["GOOG4-RSA-SHA256", query["X-Goog-Date"], scope, hashlib.sha256(canonical_request.encode()).hexdigest()]
    )
    public_key.verify(signature, string_to_sign.encode(), padding.PKCS1v15(), hashes.SHA256())
    return query


def v4_expiry(query: Mapping[str, str]) -> float:
    """When a V4 signed URL stops working: X-Goog-Date + X-Goog-Expires."""
    signed_at = datetime.datetime.strptime(query["X-Goog-Date"], "%Y%m%dT%H%M%SZ").replace(tzinfo=datetime.UTC)
    return signed_at.timestamp() + int(query["X-Goog-Expires"])


def verify_post_policy(fields: Mapping[str, str], public_key: rsa.RSAPublicKey) -> dict[str, Any]:
    """Verify a V4 POST policy's signature (RSA-SHA256 over the base64 policy); the decoded policy."""
    signature = bytes.fromhex(fields["x-goog-signature"])
    public_key.verify(signature, fields["policy"].encode(), padding.PKCS1v15(), hashes.SHA256())
    policy: dict[str, Any] = json.loads(base64.b64decode(fields["policy"]))
    return policy


# -- Google's endpoints besides Cloud Storage ----------------------------------------------------------------
@dataclass
class Call:
    host: str
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def bearer(self) -> str:
        return self.headers.get("authorization", "").removeprefix("Bearer ")

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Google:
    """What the stand-ins hold and saw; reset before every test."""

    key: rsa.RSAPrivateKey
    proxy_url: str = ""
    ca_bundle: str = ""
    metadata_host: str = ""
    secrets: dict[str, str] = field(default_factory=dict)
    corrupt_secrets: bool = False  # answer with a wrong CRC32C
    calls: list[Call] = field(default_factory=list)
    tokens: set[str] = field(default_factory=set)
    _counter: Any = field(default_factory=itertools.count)

    def new_token(self, kind: str) -> str:
        token = f"{kind}-token-{next(self._counter)}"
        self.tokens.add(token)
        return token

    def to(self, host: str, path_part: str = "") -> list[Call]:
        return [c for c in self.calls if c.host == host and path_part in c.path]

    def reset(self) -> None:
        self.secrets.clear()
        self.corrupt_secrets = False
        self.calls.clear()
        self.tokens.clear()


class GoogleHandler(BaseHTTPRequestHandler):
    google: Google

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _answer(self, status: int, body: Any, headers: Mapping[str, str] | None = None) -> None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def _error(self, status: int, message: str) -> None:
        self._answer(status, {"error": {"code": status, "message": message, "status": "ERROR"}})

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        host = (self.headers.get("Host") or "").split(":")[0]
        call = Call(host, self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, body)
        self.google.calls.append(call)
        path = urlsplit(self.path).path
        if path.startswith("/computeMetadata/v1/"):
            return self._metadata(path)
        if host == "oauth2.googleapis.com" and path == "/token":
            return self._token(body)
        if call.bearer not in self.google.tokens:
            return self._error(401, "Request had invalid authentication credentials.")
        if host == "iamcredentials.googleapis.com" and path.endswith(":signBlob"):
            return self._sign_blob(path, call)
        if host == "secretmanager.googleapis.com" and path.endswith(":access"):
            return self._access_secret(path)
        if host == "compute.googleapis.com" and path.endswith("/invalidateCache"):
            if not path.startswith(f"/compute/v1/projects/{PROJECT}/"):
                return self._error(403, "Required 'compute.urlMaps.invalidateCache' permission")
            return self._answer(200, {"kind": "compute#operation", "name": f"operation-{uuid.uuid4()}"})
        return self._error(404, f"no stand-in for {host}{path}")

    do_GET = do_POST = _handle

    def _metadata(self, path: str) -> None:
        if self.headers.get("Metadata-Flavor") != "Google":
            return self._error(403, "Missing Metadata-Flavor:Google header.")
        flavor = {"Metadata-Flavor": "Google"}
        accounts = "/computeMetadata/v1/instance/service-accounts/"
        account, _, rest = path.removeprefix(accounts).partition("/")
        if path.startswith(accounts) and account in ("default", EMAIL) and rest == "":
            info = {
                "email": EMAIL,
                "aliases": ["default"],
                "scopes": ["https://www.googleapis.com/auth/cloud-platform"],
            }
            return self._answer(200, info, flavor)
        if path.startswith(accounts) and account in ("default", EMAIL) and rest == "token":
            token = {"access_token": self.google.new_token("metadata"), "expires_in": 3599, "token_type": "Bearer"}
            return self._answer(200, token, flavor)
        texts = {"/computeMetadata/v1/project/project-id": PROJECT, "/computeMetadata/v1/universe/universe-domain": ""}
        if path in texts:
            return self._answer(200, texts[path].encode(), {**flavor, "Content-Type": "application/text"})
        return self._answer(404, b"not found", flavor)

    def _token(self, body: bytes) -> None:
        """The JWT-bearer grant: the assertion must be signed by the service account's key."""
        form = {k: v[0] for k, v in parse_qs(body.decode()).items()}
        header, payload, signature = form["assertion"].split(".")
        self.google.key.public_key().verify(
            _b64url_decode(signature), f"{header}.{payload}".encode(), padding.PKCS1v15(), hashes.SHA256()
        )
        assert json.loads(_b64url_decode(payload))["iss"] == EMAIL
        token = {"access_token": self.google.new_token("oauth"), "expires_in": 3599, "token_type": "Bearer"}
        self._answer(200, token)

    def _sign_blob(self, path: str, call: Call) -> None:
        """IAM signBlob: signs with the service account's key, as Google does with its system-managed key."""
        email = path.split("/serviceAccounts/", 1)[1].removesuffix(":signBlob")
        if email != EMAIL:
            return self._error(403, f"Permission 'iam.serviceAccounts.signBlob' denied on {email}")
        blob = base64.b64decode(call.json()["payload"])
        signed = self.google.key.sign(blob, padding.PKCS1v15(), hashes.SHA256())
        return self._answer(200, {"keyId": "throwaway-key", "signedBlob": base64.b64encode(signed).decode()})

    def _access_secret(self, path: str) -> None:
        import google_crc32c

        name = path.removeprefix("/v1/").removesuffix(":access")
        secret, _, version = name.partition("/versions/")
        value = self.google.secrets.get(secret)
        if value is None or version not in ("latest", "1"):
            return self._error(404, f"Secret [{name}] not found or has no versions.")
        data = value.encode()
        crc = google_crc32c.value(data) + (1 if self.google.corrupt_secrets else 0)
        payload = {"data": base64.b64encode(data).decode(), "dataCrc32c": str(crc)}
        return self._answer(200, {"name": f"{secret}/versions/1", "payload": payload})


def _certificates(folder: Path) -> tuple[Path, Path, Path]:
    """A throwaway CA and a server certificate for Google's hosts: (CA bundle, certificate, key)."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "hera-sessions test CA")])
    ca_ski = x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key())
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False),  # cert + CRL signing
            critical=True,
        )
        .add_extension(ca_ski, critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, GOOGLE_HOSTS[0])]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(True, False, False, False, False, False, False, False, False),  # digital signature
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(h) for h in GOOGLE_HOSTS]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    paths = folder / "ca.pem", folder / "server.pem", folder / "server.key"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return paths


class ConnectProxy(socketserver.ThreadingTCPServer):
    """An HTTPS proxy (CONNECT) that tunnels Google's hosts to the stand-in server and refuses anything else."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        super().__init__(("127.0.0.1", 0), ProxyHandler)


class ProxyHandler(socketserver.BaseRequestHandler):
    server: ConnectProxy

    def handle(self) -> None:
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self.request.recv(4096)
            if not chunk:
                return
            head += chunk
        method, target, _ = head.split(b"\r\n", 1)[0].decode().split(" ", 2)
        if method != "CONNECT" or target.rpartition(":")[0] not in GOOGLE_HOSTS:
            self.request.sendall(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
            return
        with socket.create_connection(("127.0.0.1", self.server.upstream_port)) as upstream:
            self.request.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
            with selectors.DefaultSelector() as selector:
                selector.register(self.request, selectors.EVENT_READ, upstream)
                selector.register(upstream, selectors.EVENT_READ, self.request)
                while True:
                    for key, _ in selector.select(timeout=30):
                        data = key.fileobj.recv(65536)  # type: ignore[union-attr]
                        if not data:
                            return
                        key.data.sendall(data)


@pytest.fixture(scope="session")
def google_endpoints(rsa_key: rsa.RSAPrivateKey, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Google]:
    google = Google(rsa_key)
    handler = type("Handler", (GoogleHandler,), {"google": google})
    ca_bundle, cert, key = _certificates(tmp_path_factory.mktemp("gcp-tls"))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    https = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    https.socket = context.wrap_socket(https.socket, server_side=True)
    metadata = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    proxy = ConnectProxy(https.server_address[1])
    servers: list[socketserver.BaseServer] = [https, metadata, proxy]
    for server in servers:
        server.daemon_threads = True  # type: ignore[attr-defined]
        threading.Thread(target=server.serve_forever, daemon=True).start()
    google.proxy_url = f"http://127.0.0.1:{proxy.server_address[1]}"
    google.ca_bundle = str(ca_bundle)
    google.metadata_host = f"127.0.0.1:{metadata.server_address[1]}"
    yield google
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.fixture
def google(google_endpoints: Google, monkeypatch: pytest.MonkeyPatch) -> Google:
    """Google's endpoints reached by their real URLs (through the proxy), and the metadata server."""
    from google.auth.compute_engine import _metadata

    google_endpoints.reset()
    monkeypatch.setenv("HTTPS_PROXY", google_endpoints.proxy_url)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", google_endpoints.ca_bundle)
    monkeypatch.setenv("GCE_METADATA_HOST", google_endpoints.metadata_host)
    monkeypatch.setattr(_metadata, "_GCE_METADATA_HOST", google_endpoints.metadata_host)
    return google_endpoints


# -- the GCS emulator ----------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def gcs_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GcsEmulator]:
    with GcsEmulator(tmp_path_factory.mktemp("gcs-emulator")) as emulator:
        yield emulator


@pytest.fixture
def gcp_credentials(
    gcs_emulator: GcsEmulator, service_account: ServiceAccount, google: Google, monkeypatch: pytest.MonkeyPatch
) -> ServiceAccount:
    """What google-auth and google-cloud-storage read themselves: the key file and the emulator's address."""
    from hera_sessions.backends import secrets
    from hera_sessions.backends.secrets import gcp as secrets_gcp

    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(service_account.path))
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", gcs_emulator.url)
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", PROJECT)
    secrets.resolve.cache_clear()  # every test is a cold start
    secrets_gcp._session.cache_clear()
    return service_account


@dataclass
class Bucket:
    """A bucket on the emulator, with the test's own (anonymous) JSON API client."""

    name: str
    emulator: GcsEmulator

    @property
    def api(self) -> str:
        return f"{self.emulator.url}/storage/v1/b/{self.name}"

    def resource(self, key: str) -> dict[str, Any]:
        """The object resource (what GCS puts in a CloudEvent's data)."""
        response = requests.get(f"{self.api}/o/{quote(key, safe='')}", timeout=10)
        response.raise_for_status()
        resource: dict[str, Any] = response.json()
        return resource

    def keys(self, prefix: str = "") -> list[str]:
        response = requests.get(f"{self.api}/o", params={"prefix": prefix}, timeout=10)
        response.raise_for_status()
        return [item["name"] for item in response.json().get("items", [])]

    def put(self, key: str, body: bytes, content_type: str = "image/png") -> dict[str, Any]:
        """Store an object directly (no ticket, no checks); its resource."""
        response = requests.post(
            f"{self.emulator.url}/upload/storage/v1/b/{self.name}/o",
            params={"uploadType": "media", "name": key},
            data=body,
            headers={"Content-Type": content_type},
            timeout=10,
        )
        response.raise_for_status()
        return self.resource(key)

    def get(self, key: str) -> bytes:
        response = requests.get(f"{self.emulator.url}/download/storage/v1/b/{self.name}/o/{quote(key, safe='')}",
                                params={"alt": "media"}, timeout=10)  # fmt: skip
        response.raise_for_status()
        return response.content


@pytest.fixture
def gcs_bucket(gcs_emulator: GcsEmulator, gcp_credentials: ServiceAccount) -> Bucket:
    name = f"hera-test-{uuid.uuid4().hex[:16]}"
    requests.post(f"{gcs_emulator.url}/storage/v1/b", json={"name": name}, timeout=10).raise_for_status()
    return Bucket(name, gcs_emulator)


# -- the service in GCS mode ---------------------------------------------------------------------------------
@pytest.fixture
def gcp_env(redis_server: RedisServer, gcs_bucket: Bucket, gcp_credentials: ServiceAccount) -> dict[str, str]:
    """Settings of a runtime in STORAGE_MODE=cloud CLOUD_STORAGE_TYPE=gcs SESSION_TYPE=redis mode."""
    return service_env(
        "gcs",
        "redis",
        bucket=gcs_bucket.name,
        redis_url=redis_server.url,
        origins=["http://localhost:5173"],
        REDIS_TIMEOUT="0.5",
    )


@pytest.fixture
def gcp_runtime(gcp_env: dict[str, str], make_runtime: Callable[[dict[str, str]], Runtime]) -> Runtime:
    return make_runtime(gcp_env)


def cloud_event(kind: str, resource: Mapping[str, Any], event_id: str | None = None) -> dict[str, Any]:
    """A GCS object CloudEvent (structured form) for an object resource, as Eventarc delivers it."""
    return {
        "specversion": "1.0",
        "id": event_id or str(uuid.uuid4().int)[:17],
        "source": f"//storage.googleapis.com/projects/_/buckets/{resource['bucket']}",
        "type": f"google.cloud.storage.object.v1.{kind}",
        "subject": f"objects/{resource['name']}",
        "time": resource.get("updated") or "2026-11-29T05:42:14.123Z",
        "bucket": resource["bucket"],
        "datacontenttype": "application/json",
        "data": dict(resource),
    }


@dataclass
class Functions:
    """The two entry points of gcp/main.py, loaded by functions-framework, with their test clients."""

    api: Any
    events: Any
    modules: list[Any]

    @property
    def runtime(self) -> Runtime:
        runtime: Runtime = self.modules[-1].runtime
        return runtime

    def call(self, method: str, path: str, body: Any = None, token: str | None = None) -> Any:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return self.api.open(path, method=method, json=body, headers=headers)

    def session(self) -> tuple[str, str]:
        created = self.call("POST", "/v1/sessions", token=SERVICE_KEY)
        assert created.status_code == 201, created.get_data(as_text=True)
        return created.json["session_id"], created.json["token"]

    def send(self, event: Mapping[str, Any], mode: str = "binary") -> Any:
        """Deliver a CloudEvent to storage_events over HTTP, in binary or structured content mode."""
        if mode == "structured":
            body = json.dumps(event)
            return self.events.post("/", data=body, headers={"Content-Type": "application/cloudevents+json"})
        headers = {f"ce-{name}": str(value) for name, value in event.items() if name not in ("data", "datacontenttype")}
        headers["Content-Type"] = event.get("datacontenttype", "application/json")
        return self.events.post("/", data=json.dumps(event["data"]), headers=headers)


@pytest.fixture
def functions(gcp_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Iterator[Functions]:
    """gcp/main.py as Cloud Functions runs it; its runtime reads these settings from the environment."""
    import functions_framework

    for name, value in gcp_env.items():
        monkeypatch.setenv(name, value)
    modules = []
    apps = []
    for target in ("api", "storage_events"):
        apps.append(functions_framework.create_app(target=target, source=str(MAIN)))
        modules.append(sys.modules["main"])
    yield Functions(apps[0].test_client(), apps[1].test_client(), modules)
    for module in modules:
        if module.runtime._service is not None:
            module.runtime._service.metadata.close()
