"""Signing without an account key, as a deployed function does: a user delegation key from its identity.

Azurite hands out user delegation keys over HTTPS to an OAuth caller (``--oauth basic``: it checks the token's
audience, issuer and lifetime). The test's token credential stands in for the managed identity. Azurite 3.35
verifies user delegation SAS only up to service version 2025-11-05, while azure-storage-blob 12.31 signs version
2026-10-06 (two more lines in the string to sign), so the signature is checked here by recomputing it as the
REST documentation describes, with the key Azurite handed out.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import hmac
import ipaddress
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import pytest

from hera_sessions import config
from hera_sessions.backends.storage import azure
from hera_sessions.backends.storage.base import DownloadSpec, UploadSpec
from hera_sessions.core import keys
from tests.azure.conftest import ACCOUNT, Azurite, StaticTokenCredential


def self_signed(folder: Path) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


@pytest.fixture(scope="module")
def azurite_oauth(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Azurite, Path]]:
    folder = tmp_path_factory.mktemp("azurite-oauth")
    cert, key = self_signed(folder)
    server = Azurite(folder, "--cert", str(cert), "--key", str(key), "--oauth", "basic", https=True)
    yield server, cert
    server.stop()


@pytest.fixture
def clock() -> list[datetime.datetime]:
    return [datetime.datetime.now(datetime.UTC)]


@pytest.fixture
def storage(azurite_oauth: tuple[Azurite, Path], clock: list[datetime.datetime]) -> azure.AzureBlobStorage:
    server, cert = azurite_oauth
    settings = config.Settings(azure_account_url=server.account_url, azure_container_name="hera")
    built = azure.from_settings(settings, credential=StaticTokenCredential(), connection_verify=str(cert))
    built._clock = lambda: clock[0]
    return built


def count_key_requests(storage: azure.AzureBlobStorage, monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    calls: list[Any] = []
    real = storage.client.get_user_delegation_key

    def counted(start: Any, expiry: Any, **kwargs: Any) -> Any:
        calls.append((start, expiry))
        return real(start, expiry, **kwargs)

    monkeypatch.setattr(storage.client, "get_user_delegation_key", counted)
    return calls


def string_to_sign(q: dict[str, str], container: str, blob: str) -> str:
    """The user delegation SAS string to sign for service version 2026-10-06 (REST docs, "Create a user
    delegation SAS"), from the URL's own query values."""
    fields = [
        q.get("sp", ""),
        q.get("st", ""),
        q.get("se", ""),
        f"/blob/{ACCOUNT}/{container}/{blob}",
        *(q.get(name, "") for name in ("skoid", "sktid", "skt", "ske", "sks", "skv", "saoid", "suoid", "scid")),
        q.get("skdutid", ""),
        q.get("sduoid", ""),
        *(q.get(name, "") for name in ("sip", "spr", "sv", "sr")),
        "",  # snapshot time
        q.get("ses", ""),
        q.get("srh", ""),
        q.get("srq", ""),
        *(q.get(name, "") for name in ("rscc", "rscd", "rsce", "rscl", "rsct")),
    ]
    return "\n".join(fields)


def test_upload_and_download_urls_are_signed_with_a_user_delegation_key(
    storage: azure.AzureBlobStorage, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = count_key_requests(storage, monkeypatch)
    key = keys.object_key(keys.new_session_id(), "photos/user.png")
    now = time.time()

    upload = storage.presign_upload(UploadSpec(key, "image/png", 10, "PUT", 300, now + 300)).url
    download = storage.presign_download(DownloadSpec(key, "image/png", "user.png", 900, now + 900))

    assert len(calls) == 1  # one key, asked for once, used for both
    for url, permission in ((upload, "cw"), (download, "r")):
        q = {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
        assert q["sp"] == permission
        assert q["spr"] == "https"  # an https account URL: HTTPS only
        assert q["skoid"] == StaticTokenCredential.object_id
        assert q["sktid"] == StaticTokenCredential.tenant
        assert q["sks"] == "b"
        assert "sig" in q
        # the signature is HMAC-SHA256 of the documented string, under the delegation key Azurite gave
        delegation = storage._delegation_key
        assert delegation is not None
        expected = hmac.new(
            base64.b64decode(delegation.value),
            string_to_sign(q, "hera", unquote(urlsplit(url).path.split("/hera/", 1)[1])).encode(),
            hashlib.sha256,
        ).digest()
        assert q["sig"] == base64.b64encode(expected).decode()


def test_the_delegation_key_is_reused_until_it_nears_its_expiry(
    storage: azure.AzureBlobStorage, clock: list[datetime.datetime], monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = count_key_requests(storage, monkeypatch)
    key = keys.object_key(keys.new_session_id(), "a.png")

    def sign() -> None:
        now = clock[0].timestamp()
        storage.presign_upload(UploadSpec(key, "image/png", 10, "PUT", 300, now + 300))

    sign()
    clock[0] += datetime.timedelta(hours=5)
    sign()
    assert len(calls) == 1  # 6-hour key: still good for a SAS that ends 5 h 5 min in
    clock[0] += datetime.timedelta(minutes=50)
    sign()
    assert len(calls) == 2  # the SAS would outlive the key (less the margin): a new key
    assert calls[1][1] - calls[1][0] >= azure.DELEGATION_KEY_LIFETIME
