"""The Azure Blob backend against Azurite, which checks SAS signatures, permissions, expiry, protocol and CORS.

Each refusal test first shows the request would be accepted with the right SAS (or origin), then changes the one
thing under test, so a 403 proves that thing is checked.
"""

from __future__ import annotations

import base64
import time
from dataclasses import replace
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import pytest
import requests

from hera_sessions import config
from hera_sessions.backends.storage import azure
from hera_sessions.backends.storage.base import DownloadSpec, UploadSpec
from hera_sessions.core import keys
from hera_sessions.core.errors import ConfigError, InvalidInputError, NotFoundError, StorageUnavailableError
from tests.azure.conftest import Azurite, Container, StaticTokenCredential
from tests.conftest import free_port
from tests.images import png

PNG = png(size=1032)


def spec(key: str, size: int = len(PNG), ttl: int = 300, content_type: str = "image/png") -> UploadSpec:
    now = time.time()
    return UploadSpec(key, content_type, size, "PUT", ttl, now + ttl)


def query(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


@pytest.fixture
def storage(azurite: Azurite, azure_container: Container) -> azure.AzureBlobStorage:
    settings = config.Settings(
        azure_connection_string=azurite.connection_string, azure_container_name=azure_container.name
    )
    return azure.from_settings(settings)


@pytest.fixture
def key() -> str:
    return keys.object_key(keys.new_session_id(), "photos/user.png")


def put(url: str, headers: dict[str, str], body: bytes = PNG, **extra: Any) -> requests.Response:
    return requests.put(url, data=body, headers={**headers, **extra}, timeout=30)


# -- what the tickets say --------------------------------------------------------------------------------
def test_an_upload_ticket_is_a_create_write_sas_for_that_one_blob(storage: azure.AzureBlobStorage, key: str) -> None:
    ticket = storage.presign_upload(spec(key))

    signed = query(ticket.url)
    assert urlsplit(ticket.url).path.endswith(f"/{storage.container_name}/{key}")
    assert signed["sp"] == "cw"  # create and write, nothing else
    assert signed["sr"] == "b"  # one blob, not the container
    assert signed["spr"] == "https,http"  # Azurite on 127.0.0.1 is plain HTTP; anywhere else: https only
    assert ticket.protocol == "put"
    assert ticket.headers == {
        "x-ms-blob-type": "BlockBlob",
        "x-ms-blob-content-type": "image/png",
        "Content-Type": "image/png",
    }
    assert ticket.to_json()["expires_at"] == time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(int(ticket.expires_at)))


def test_a_ticket_puts_the_file_with_its_type(
    storage: azure.AzureBlobStorage, azure_container: Container, key: str
) -> None:
    ticket = storage.presign_upload(spec(key))

    response = put(ticket.url, ticket.headers)

    assert response.status_code == 201, response.text
    props = azure_container.client.get_blob_client(key).get_blob_properties()
    assert (props.size, props.content_settings.content_type) == (len(PNG), "image/png")
    assert storage.read(key) == PNG


def test_the_download_url_is_a_read_sas_naming_the_file_and_its_type(storage: azure.AzureBlobStorage, key: str) -> None:
    assert put(storage.presign_upload(spec(key)).url, storage.upload_headers("image/png")).status_code == 201
    now = time.time()

    url = storage.presign_download(DownloadSpec(key, "image/png", "user.png", 900, now + 900))

    signed = query(url)
    assert signed["sp"] == "r"
    assert signed["rscd"] == 'inline; filename="user.png"'
    assert signed["rsct"] == "image/png"
    got = requests.get(url, timeout=30)
    assert got.status_code == 200
    assert got.content == PNG
    assert got.headers["Content-Disposition"] == 'inline; filename="user.png"'


# -- what Azurite refuses --------------------------------------------------------------------------------
def test_an_expired_sas_is_refused(storage: azure.AzureBlobStorage, azure_container: Container, key: str) -> None:
    # GIVEN a ticket that lives one second (UPLOAD_URL_TTL=1)
    ticket = storage.presign_upload(spec(key, ttl=1))

    # WHEN it is used after it expired
    time.sleep(2)
    response = put(ticket.url, ticket.headers)

    # THEN Azurite refuses it and nothing is stored
    assert response.status_code == 403
    assert azure_container.names() == []
    # (the same kind of ticket, still valid, is accepted)
    assert put(storage.presign_upload(spec(key)).url, ticket.headers).status_code == 201


def test_a_sas_for_another_blob_is_refused(
    storage: azure.AzureBlobStorage, azure_container: Container, key: str
) -> None:
    ticket = storage.presign_upload(spec(key))
    other = key.replace("user.png", "other.png")

    response = put(ticket.url.replace(quote(key), quote(other)), ticket.headers)

    assert response.status_code == 403
    assert "AuthorizationFailure" in response.text
    assert azure_container.names() == []


def test_a_read_sas_cannot_write(storage: azure.AzureBlobStorage, azure_container: Container, key: str) -> None:
    assert put(storage.presign_upload(spec(key)).url, storage.upload_headers("image/png")).status_code == 201
    now = time.time()
    read_url = storage.presign_download(DownloadSpec(key, "image/png", "user.png", 900, now + 900))

    response = put(read_url, storage.upload_headers("image/png"), b"overwritten")

    assert response.status_code == 403
    assert "AuthorizationPermissionMismatch" in response.text
    assert storage.read(key) == PNG


def test_an_upload_sas_cannot_read(storage: azure.AzureBlobStorage, key: str) -> None:
    ticket = storage.presign_upload(spec(key))
    assert put(ticket.url, ticket.headers).status_code == 201

    assert requests.get(ticket.url, timeout=30).status_code == 403


def test_an_https_only_sas_is_refused_over_http(azurite: Azurite, azure_container: Container, key: str) -> None:
    # GIVEN a backend that believes it talks to a real account (no local exception): SAS URLs are https-only
    client = azurite.client()
    storage = azure.AzureBlobStorage(client, azure_container.name, account_key=client.credential.account_key)
    storage.local = False
    ticket = storage.presign_upload(spec(key))
    assert query(ticket.url)["spr"] == "https"

    # WHEN it is used over plain HTTP
    response = put(ticket.url, ticket.headers)

    # THEN it is refused
    assert response.status_code == 403
    assert "AuthorizationProtocolMismatch" in response.text


def test_cors_preflight_allows_the_configured_origin_only(
    storage: azure.AzureBlobStorage, key: str, allowed_origins: tuple[str, ...]
) -> None:
    ticket = storage.presign_upload(spec(key))
    asked = {
        "Access-Control-Request-Method": "PUT",
        "Access-Control-Request-Headers": ",".join(h.lower() for h in ticket.headers),
    }

    allowed = requests.options(ticket.url, headers={"Origin": allowed_origins[0], **asked}, timeout=30)
    refused = requests.options(ticket.url, headers={"Origin": "https://evil.example.com", **asked}, timeout=30)

    assert allowed.status_code == 200
    assert allowed.headers["Access-Control-Allow-Origin"] == allowed_origins[0]
    assert refused.status_code == 403
    assert "Access-Control-Allow-Origin" not in refused.headers
    # the actual upload from the allowed origin exposes the ETag to the page
    sent = put(ticket.url, ticket.headers, Origin=allowed_origins[0])
    assert sent.status_code == 201
    assert "etag" in sent.headers["Access-Control-Expose-Headers"].lower()


# -- large files: azure-blocks, exactly as web/hera-sessions.js sends them ----------------------------------
def send_blocks(ticket: dict[str, Any], body: bytes, content_type: str) -> list[requests.Response]:
    """The browser client's "azure-blocks": Put Block for each block, then Put Block List (see hera-sessions.js)."""
    headers = {k: v for k, v in ticket["headers"].items() if k.lower() not in ("content-type", "content-length")}
    size = ticket.get("block_size") or 4 * 1024 * 1024
    ids, responses = [], []
    for number, start in enumerate(range(0, len(body), size), 1):
        block_id = base64.b64encode(f"block-{number:06d}".encode()).decode()
        ids.append(block_id)
        url = f"{ticket['url']}&comp=block&blockid={quote(block_id, safe='')}"
        responses.append(requests.put(url, data=body[start : start + size], headers=headers, timeout=60))
    xml = '<?xml version="1.0" encoding="utf-8"?><BlockList>' + "".join(f"<Latest>{i}</Latest>" for i in ids)
    xml += "</BlockList>"
    list_headers = {"x-ms-blob-content-type": content_type, **headers, "Content-Type": "application/xml; charset=utf-8"}
    responses.append(requests.put(f"{ticket['url']}&comp=blocklist", data=xml, headers=list_headers, timeout=60))
    return responses


def test_a_large_ticket_is_azure_blocks_that_the_browser_client_can_send(
    storage: azure.AzureBlobStorage, azure_container: Container, key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(azure, "BLOCK_SIZE", 1024)  # many small blocks, same protocol
    body = bytes(range(256)) * 20  # 5120 bytes → 5 blocks

    ticket = storage.start_large_upload(spec(key, size=len(body))).to_json()

    assert ticket["protocol"] == "azure-blocks"
    assert ticket["block_size"] == 1024
    assert ticket["upload_id"]
    assert ticket["headers"] == {"x-ms-blob-content-type": "image/png"}  # no x-ms-blob-type on block requests
    responses = send_blocks(ticket, body, "image/png")
    assert [r.status_code for r in responses] == [201] * 6
    props = azure_container.client.get_blob_client(key).get_blob_properties()
    assert (props.size, props.content_settings.content_type) == (len(body), "image/png")
    assert storage.read(key) == body


def test_a_no_overwrite_block_list_never_replaces_a_blob(
    storage: azure.AzureBlobStorage, azure_container: Container, key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(azure, "BLOCK_SIZE", 1024)
    body = bytes(range(256)) * 8
    upload = replace(spec(key, size=len(body)), overwrite=False)

    # GIVEN a no-overwrite block ticket: If-None-Match travels with the blocks and the block list
    ticket = storage.start_large_upload(upload).to_json()
    assert ticket["headers"] == {"x-ms-blob-content-type": "image/png", "If-None-Match": "*"}
    assert [r.status_code for r in send_blocks(ticket, body, "image/png")] == [201] * 3

    # WHEN a second one is sent for the same blob THEN Put Block List is refused and the first stays
    again = storage.start_large_upload(upload).to_json()
    responses = send_blocks(again, body[::-1], "image/png")
    assert [r.status_code for r in responses] == [201, 201, 409], [r.text for r in responses]
    assert storage.read(key) == body


def test_blocks_need_no_server_side_completion(storage: azure.AzureBlobStorage, key: str) -> None:
    with pytest.raises(InvalidInputError) as raised:
        storage.complete_large_upload(key, "azblk-x", [(1, "etag")])
    assert raised.value.code == "method_not_supported"
    storage.abort_large_upload(key, "azblk-x")  # nothing to abort: uncommitted blocks expire on their own


# -- objects ---------------------------------------------------------------------------------------------
def test_delete_prefix_deletes_every_blob_of_the_session_only(
    storage: azure.AzureBlobStorage, azure_container: Container
) -> None:
    sid, other = keys.new_session_id(), keys.new_session_id()
    names = [keys.object_key(sid, f"p/{i}.png") for i in range(5)] + [keys.object_key(other, "a.png")]
    for name in names:
        assert put(storage.presign_upload(spec(name, 4)).url, storage.upload_headers("image/png"), b"abcd").ok

    assert storage.delete_prefix(keys.session_prefix(sid)) == 5

    assert azure_container.names("sessions/") == [keys.object_key(other, "a.png")]


def test_delete_prefix_works_one_by_one_where_batches_are_refused(
    storage: azure.AzureBlobStorage, azure_container: Container, monkeypatch: pytest.MonkeyPatch
) -> None:
    from azure.core.exceptions import HttpResponseError

    sid = keys.new_session_id()
    for i in range(3):
        put(
            storage.presign_upload(spec(keys.object_key(sid, f"{i}.png"), 4)).url,
            storage.upload_headers("image/png"),
            b"abcd",
        )

    def no_batches(*names: str, **kwargs: Any) -> Any:
        raise HttpResponseError("The batch API is not supported here.")

    monkeypatch.setattr(storage.container, "delete_blobs", no_batches)

    assert storage.delete_prefix(keys.session_prefix(sid)) == 3
    assert azure_container.names("sessions/") == []


def test_reading_a_missing_blob_is_not_found_and_deleting_it_is_no_error(
    storage: azure.AzureBlobStorage, key: str
) -> None:
    with pytest.raises(NotFoundError):
        storage.read(key)
    storage.delete(key)


def test_check_lists_the_sessions_prefix_and_fails_without_the_container(azurite: Azurite) -> None:
    settings = config.Settings(azure_connection_string=azurite.connection_string, azure_container_name="no-such")
    with pytest.raises(StorageUnavailableError):
        azure.from_settings(settings).check()


def test_an_unreachable_account_is_storage_unavailable(azurite: Azurite, key: str) -> None:
    connection = azurite.connection_string.replace(str(azurite.port), str(free_port()))
    storage = azure.from_settings(
        config.Settings(azure_connection_string=connection, azure_container_name="c"), retry_total=0
    )

    with pytest.raises(StorageUnavailableError):
        storage.check()
    with pytest.raises(StorageUnavailableError):
        storage.delete(key)
    with pytest.raises(StorageUnavailableError):
        list(storage.list_prefix("sessions/"))


# -- configuration ---------------------------------------------------------------------------------------
def test_plain_http_is_refused_outside_a_local_emulator() -> None:
    settings = config.Settings(azure_account_url="http://herasessions.blob.core.windows.net", azure_container_name="c")

    with pytest.raises(ConfigError, match="not HTTPS"):
        azure.from_settings(settings, credential=StaticTokenCredential())


@pytest.mark.parametrize(
    ("url", "local"),
    [
        ("http://127.0.0.1:10000/devstoreaccount1", True),
        ("http://localhost:10000/devstoreaccount1", True),
        ("https://127.0.0.1:10000/devstoreaccount1", False),
        ("http://azurite:10000/devstoreaccount1", False),
        ("https://herasessions.blob.core.windows.net", False),
    ],
)
def test_only_http_on_loopback_counts_as_local_emulation(url: str, local: bool) -> None:
    assert azure.is_local_emulator(url) is local


def test_a_connection_string_without_an_account_key_is_refused() -> None:
    sas_only = "BlobEndpoint=https://herasessions.blob.core.windows.net/;SharedAccessSignature=sv=2024-01-01&sig=x"
    with pytest.raises(ConfigError, match="AccountKey"):
        azure.from_settings(config.Settings(azure_connection_string=sas_only, azure_container_name="c"))


def test_the_backend_is_chosen_by_cloud_storage_type(azure_env: dict[str, str], make_runtime: Any) -> None:
    storage = make_runtime(azure_env).service().storage

    assert isinstance(storage, azure.AzureBlobStorage)
    assert (storage.name, storage.supports_post, storage.large_protocol) == ("azure", False, "azure-blocks")


def test_a_blob_leased_through_its_upload_sas_can_still_be_deleted(
    storage: azure.AzureBlobStorage, azure_container: Container, key: str
) -> None:
    # GIVEN an uploader that takes an infinite lease with its upload SAS (write permission covers leases)
    ticket = storage.presign_upload(spec(key))
    assert put(ticket.url, ticket.headers).status_code == 201
    lease = requests.put(
        ticket.url + "&comp=lease",
        headers={"x-ms-lease-action": "acquire", "x-ms-lease-duration": "-1", "x-ms-version": "2021-12-02"},
        timeout=10,
    )
    assert lease.status_code == 201
    # WHEN the service deletes it (an erasure, a refused upload, DELETE /files)
    storage.delete(key)
    # THEN the lease is broken and the blob is gone
    assert key not in azure_container.names()
