"""One contract, every storage backend: what the Storage ABC promises, checked through real uploads.

Each test uploads with ``requests`` exactly as an upload ticket says (a PUT with the ticket's headers, or a
form POST with the ticket's fields and then the file), then reads, lists, downloads and deletes through the
backend. The backends: local disk (behind the local server) and S3 (moto) here; GCS and Azure add theirs in
their own modules.

Adding a backend: subclass :class:`StorageContract` in your test module (its name starts with ``Test``) and give
it a ``storage`` fixture (a ready :class:`Storage`, its bucket or folder empty or private to the test)::

    from tests.contract.test_storage_contract import StorageContract

    class TestGcsStorage(StorageContract):
        enforces_declared_size = False          # the emulator checks no signature

        @pytest.fixture
        def storage(self, gcs_bucket) -> Storage:
            return gcs.GcsStorage(...)

Optional hooks:

- ``enforces_declared_size`` (class attribute): True when the server behind the backend refuses a body of
  another size or type than the ticket allows (real S3, GCS, Azure and the local server do; moto and most
  emulators check no signatures, so their subclasses set False and those tests are skipped);
- ``upload(self, ticket, body)``: sends a file as the ticket says; override it for protocols
  :func:`send_upload` does not know;
- ``conditional_delete`` (class attribute) and ``version_of(info)``: whether ``delete_version`` spares a newer
  upload, and what an event would name as the object's version (its ETag; GCS: its generation).
"""

from __future__ import annotations

import base64
import hashlib
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
import requests

from hera_sessions.backends.storage.base import DownloadSpec, Storage, UploadSpec
from hera_sessions.core import keys
from hera_sessions.core.errors import NotFoundError
from hera_sessions.core.models import ObjectInfo, UploadTicket
from tests.conftest import free_port
from tests.images import png

PNG = png(size=2056)
TTL = 300


@dataclass
class Sent:
    """What sending a file as a ticket says did: every response, and the parts (multipart) to complete with."""

    responses: list[requests.Response]
    parts: list[dict[str, Any]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.responses)

    @property
    def status(self) -> int:
        """The first failure's status, or the last response's."""
        return next((r.status_code for r in self.responses if not r.ok), self.responses[-1].status_code)


def send_upload(ticket: UploadTicket | Mapping[str, Any], body: bytes, timeout: float = 30) -> Sent:
    """Send ``body`` exactly as the ticket says, as a browser would: PUT, form POST or S3 multipart parts."""
    t: Mapping[str, Any] = ticket.to_json() if isinstance(ticket, UploadTicket) else ticket
    protocol = t["protocol"]
    if protocol == "put":
        return Sent([requests.request(t["method"], t["url"], headers=t["headers"], data=body, timeout=timeout)])
    if protocol == "post":
        # The fields first, in order, then the file last (S3 ignores every field after the file).
        response = requests.request(
            t["method"],
            t["url"],
            headers=t["headers"],
            data=t["fields"],
            files={"file": ("upload", body)},
            timeout=timeout,
        )
        return Sent([response])
    if protocol == "s3-multipart":
        size = t["part_size"]
        responses, parts = [], []
        for part in sorted(t["parts"], key=lambda p: p["part_number"]):
            number = part["part_number"]
            chunk = body[(number - 1) * size : number * size]
            response = requests.put(part["url"], headers=t["headers"], data=chunk, timeout=timeout)
            responses.append(response)
            parts.append({"part_number": number, "etag": response.headers.get("ETag", "")})
        return Sent(responses, parts)
    raise AssertionError(f"send_upload does not know the protocol {protocol!r}")


def upload_spec(
    key: str,
    size: int,
    method: str = "PUT",
    content_type: str = "image/png",
    *,
    content_md5: str | None = None,
    overwrite: bool = True,
) -> UploadSpec:
    now = time.time()
    return UploadSpec(key, content_type, size, method, TTL, now + TTL, content_md5, overwrite)


def download_spec(key: str, content_type: str = "image/png", name: str | None = None) -> DownloadSpec:
    now = time.time()
    return DownloadSpec(key, content_type, name or key.rsplit("/", 1)[-1], TTL, now + TTL)


def md5_of(body: bytes) -> str:
    return base64.b64encode(hashlib.md5(body, usedforsecurity=False).digest()).decode()


def signed_query_headers(url: str, parameter: str) -> set[str]:
    """The header names a presigned URL signs (``X-Amz-SignedHeaders`` / ``X-Goog-SignedHeaders``)."""
    query = dict(parse_qsl(urlsplit(url).query))
    return set(query[parameter].lower().split(";"))


NAME = 'Фото 1 \u2013 café "квартира" 😀.png'


class StorageContract:
    """The behaviour every backend shares. Subclasses give a ``storage`` fixture (see the module docstring)."""

    enforces_declared_size: bool = True
    conditional_delete: bool = True
    conditional_delete_note: str = ""

    #: Whether the server behind the backend checks the write preconditions and Content-MD5 it is sent (real
    #: clouds do; emulators may not: their subclasses say so, and what was signed is read back instead).
    enforces_preconditions: bool = True
    enforces_md5: bool = True
    #: Whether the server answers a download with the signed ``Content-Disposition``.
    serves_disposition: bool = True

    def version_of(self, info: ObjectInfo) -> str | None:
        return info.etag

    def bound_headers(self, ticket: UploadTicket) -> set[str]:
        """The (lower-case) headers the ticket binds: signed into the URL, or checked by the storage itself."""
        return {k.lower() for k in ticket.headers}

    @pytest.fixture
    def storage(self) -> Storage:
        raise NotImplementedError("a backend's test class gives the storage fixture")

    def upload(self, ticket: UploadTicket, body: bytes) -> Sent:
        return send_upload(ticket, body)

    def put(self, storage: Storage, key: str, body: bytes = PNG, method: str = "PUT") -> None:
        sent = self.upload(storage.presign_upload(upload_spec(key, len(body), method)), body)
        assert sent.ok, (sent.status, sent.responses[-1].text)

    @pytest.fixture
    def sid(self) -> str:
        return keys.new_session_id()

    # -- uploads -----------------------------------------------------------------------------------------
    def test_a_put_ticket_uploads_the_file(self, storage: Storage, sid: str) -> None:
        key = keys.object_key(sid, "photos/user.png")
        ticket = storage.presign_upload(upload_spec(key, len(PNG)))
        assert ticket.key == key
        assert ticket.method == "PUT"
        assert {k.lower() for k in ticket.headers} >= {"content-type"}

        sent = self.upload(ticket, PNG)

        assert sent.ok, sent.responses[-1].text
        assert storage.read(key) == PNG

    def test_a_post_ticket_uploads_the_file(self, storage: Storage, sid: str) -> None:
        if not storage.supports_post:
            pytest.skip(f"{storage.name} takes no form uploads")
        key = keys.object_key(sid, "photos/form.png")
        ticket = storage.presign_upload(upload_spec(key, len(PNG), "POST"))
        assert ticket.method == "POST"
        assert ticket.fields

        sent = self.upload(ticket, PNG)

        assert sent.ok, sent.responses[-1].text
        assert storage.read(key) == PNG

    @pytest.mark.parametrize("method", ["PUT", "POST"])
    def test_a_body_bigger_than_declared_is_refused(self, storage: Storage, sid: str, method: str) -> None:
        if not self.enforces_declared_size:
            pytest.skip(f"the server behind {storage.name} here checks no signatures or policies")
        if method == "POST" and not storage.supports_post:
            pytest.skip(f"{storage.name} takes no form uploads")
        key = keys.object_key(sid, "photos/big.png")
        ticket = storage.presign_upload(upload_spec(key, len(PNG), method))

        sent = self.upload(ticket, PNG + b"one byte too many"[:1])

        assert 400 <= sent.status < 500
        assert [i.key for i in storage.list_prefix(keys.session_prefix(sid))] == []

    # -- no silent overwrite, checksums (issue 11) --------------------------------------------------------
    def test_a_no_overwrite_ticket_binds_the_absence_and_the_md5(self, storage: Storage, sid: str) -> None:
        key = keys.object_key(sid, "photos/image.png")
        ticket = storage.presign_upload(upload_spec(key, len(PNG), content_md5=md5_of(PNG), overwrite=False))

        headers = {k.lower(): v for k, v in ticket.headers.items()}
        assert headers["content-md5"] == md5_of(PNG)
        precondition = {"if-none-match": "*"} if "if-none-match" in headers else {"x-goog-if-generation-match": "0"}
        assert precondition.items() <= headers.items()
        assert {"content-md5", *precondition} <= self.bound_headers(ticket)

        sent = self.upload(ticket, PNG)
        assert sent.ok, (sent.status, sent.responses[-1].text)
        assert storage.read(key) == PNG

    def test_an_overwrite_ticket_adds_no_precondition(self, storage: Storage, sid: str) -> None:
        key = keys.object_key(sid, "photos/image.png")
        self.put(storage, key, PNG)
        ticket = storage.presign_upload(upload_spec(key, 100, overwrite=True))
        assert not {"if-none-match", "x-goog-if-generation-match"} & {k.lower() for k in ticket.headers}

        sent = self.upload(ticket, PNG[:100])

        assert sent.ok, (sent.status, sent.responses[-1].text)
        assert storage.read(key) == PNG[:100]

    def test_a_no_overwrite_upload_never_replaces_an_object(self, storage: Storage, sid: str) -> None:
        if not self.enforces_preconditions:
            pytest.skip(f"the server behind {storage.name} here checks no write preconditions")
        # GIVEN two photos both picked as image.png got tickets before either was stored
        key = keys.object_key(sid, "photos/image.png")
        first = storage.presign_upload(upload_spec(key, len(PNG), overwrite=False))
        second = storage.presign_upload(upload_spec(key, 100, overwrite=False))

        # WHEN both are sent THEN the first is stored and the second refused: the first photo is kept
        assert self.upload(first, PNG).ok
        refused = self.upload(second, PNG[:100])

        assert refused.status in (409, 412), refused.responses[-1].text
        assert storage.read(key) == PNG

    def test_a_body_that_is_not_its_md5_is_refused(self, storage: Storage, sid: str) -> None:
        if not self.enforces_md5:
            pytest.skip(f"the server behind {storage.name} here checks no Content-MD5")
        key = keys.object_key(sid, "photos/image.png")
        ticket = storage.presign_upload(upload_spec(key, len(PNG), content_md5=md5_of(PNG)))
        corrupted = PNG[:-1] + b"\x00"

        sent = self.upload(ticket, corrupted)

        assert sent.status == 400, sent.responses[-1].text
        assert [i.key for i in storage.list_prefix(keys.session_prefix(sid))] == []

    def test_the_download_saves_under_the_name_given(self, storage: Storage, sid: str) -> None:
        key = keys.object_key(sid, "photos/user.png")
        self.put(storage, key)
        spec = download_spec(key, name=NAME)
        assert spec.disposition == (
            "inline; filename=\"user.png\"; filename*=UTF-8''"
            "%D0%A4%D0%BE%D1%82%D0%BE%201%20%E2%80%93%20caf%C3%A9%20%22%D0%BA%D0%B2%D0%B0%D1%80%D1%82%D0%B8%D1%80%D0%B0"
            "%22%20%F0%9F%98%80.png"
        )

        response = requests.get(storage.presign_download(spec), timeout=30)

        assert response.status_code == 200, response.text
        assert response.content == PNG
        if not self.serves_disposition:
            pytest.skip(f"the server behind {storage.name} here ignores response-content-disposition")
        assert response.headers["Content-Disposition"] == spec.disposition

    # -- reading back ------------------------------------------------------------------------------------
    def test_listing_shows_key_size_and_etag(self, storage: Storage, sid: str) -> None:
        self.put(storage, keys.object_key(sid, "a.png"), PNG)
        self.put(storage, keys.object_key(sid, "photos/b.png"), PNG[:100])

        listed = sorted(storage.list_prefix(keys.session_prefix(sid)), key=lambda i: i.key)

        assert [(i.key, i.size) for i in listed] == [
            (keys.object_key(sid, "a.png"), len(PNG)),
            (keys.object_key(sid, "photos/b.png"), 100),
        ]
        assert all(i.etag and i.etag.strip('"') for i in listed)
        assert all(i.last_modified == pytest.approx(time.time(), abs=120) for i in listed)

    def test_the_download_url_returns_the_bytes_with_their_type(self, storage: Storage, sid: str) -> None:
        key = keys.object_key(sid, "photos/user.png")
        self.put(storage, key)

        response = requests.get(storage.presign_download(download_spec(key)), timeout=30)

        assert response.status_code == 200, response.text
        assert response.content == PNG
        assert response.headers["Content-Type"] == "image/png"

    def test_reading_a_missing_object_is_not_found(self, storage: Storage, sid: str) -> None:
        with pytest.raises(NotFoundError):
            storage.read(keys.object_key(sid, "nothing.png"))

    def test_the_storage_answers_its_health_check(self, storage: Storage) -> None:
        storage.check()

    # -- deleting ----------------------------------------------------------------------------------------
    def test_delete_removes_one_object_and_a_missing_one_is_no_error(self, storage: Storage, sid: str) -> None:
        key = keys.object_key(sid, "photos/user.png")
        self.put(storage, key)

        storage.delete(key)
        storage.delete(key)

        with pytest.raises(NotFoundError):
            storage.read(key)
        assert list(storage.list_prefix(keys.session_prefix(sid))) == []

    def test_a_refused_version_is_deleted_but_a_newer_upload_stays(self, storage: Storage, sid: str) -> None:
        if not self.conditional_delete:
            pytest.skip(f"{storage.name} here cannot show a conditional delete ({self.conditional_delete_note})")
        key, prefix = keys.object_key(sid, "photos/a.png"), keys.session_prefix(sid)
        self.put(storage, key, PNG)
        [refused] = storage.list_prefix(prefix)
        self.put(storage, key, PNG[:100])  # the user uploads again before the refusal is processed

        storage.delete_version(key, self.version_of(refused))
        [newer] = storage.list_prefix(prefix)
        assert newer.size == 100

        storage.delete_version(key, self.version_of(newer))
        assert list(storage.list_prefix(prefix)) == []

    def test_delete_prefix_leaves_other_sessions_alone(self, storage: Storage, sid: str) -> None:
        other = keys.new_session_id()
        for path in ("a.png", "photos/b.png", "photos/deep/c.png"):
            self.put(storage, keys.object_key(sid, path), PNG[:64])
        self.put(storage, keys.object_key(other, "a.png"), PNG[:64])

        deleted = storage.delete_prefix(keys.session_prefix(sid))

        assert deleted == 3
        assert list(storage.list_prefix(keys.session_prefix(sid))) == []
        assert [i.key for i in storage.list_prefix(keys.session_prefix(other))] == [keys.object_key(other, "a.png")]
        assert storage.read(keys.object_key(other, "a.png")) == PNG[:64]

    def test_delete_prefix_of_an_empty_session_deletes_nothing(self, storage: Storage, sid: str) -> None:
        assert storage.delete_prefix(keys.session_prefix(sid)) == 0


class TestLocalStorage(StorageContract):
    """Local disk, behind the local server (which checks signatures, size and type as S3 does)."""

    @pytest.fixture
    def storage(self, local_env: dict[str, str], make_runtime: Any) -> Iterator[Storage]:
        from hera_sessions.runtimes.local.server import LocalServer

        port = free_port()
        runtime = make_runtime({**local_env, "PORT": str(port)})
        server = LocalServer(runtime, port=port).start()
        yield runtime.service().storage
        server.stop()


class TestS3Storage(StorageContract):
    """S3 on the moto server (path-style, as with any custom endpoint). moto checks no signatures."""

    enforces_declared_size = False
    enforces_md5 = False  # moto ignores Content-MD5 on a presigned PUT (it does honour If-None-Match)
    conditional_delete = False
    conditional_delete_note = "S3 deletes unconditionally: its signatures bind type and size, so refusals are rare"

    def bound_headers(self, ticket: UploadTicket) -> set[str]:
        return signed_query_headers(ticket.url, "X-Amz-SignedHeaders")

    @pytest.fixture
    def storage(self, aws_env: dict[str, str], moto_server: Any) -> Storage:
        import boto3

        from hera_sessions.backends.storage.s3 import S3Storage

        bucket = f"hera-contract-{uuid.uuid4().hex[:12]}"
        boto3.client("s3", region_name="ap-northeast-1", endpoint_url=moto_server.url).create_bucket(
            Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": "ap-northeast-1"}
        )
        return S3Storage(bucket, "ap-northeast-1", moto_server.url)
