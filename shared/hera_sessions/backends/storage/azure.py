"""Azure Blob storage: SAS URLs for uploads and downloads, one container, keys ``sessions/{id}/{path}``.

Uploads are ``Put Blob`` (and, for large files, ``Put Block`` + ``Put Block List``) under a blob SAS with
create and write permission only, for exactly one blob name, until ``UPLOAD_URL_TTL``. A SAS binds neither the
size nor the content type of what is written: both are enforced when the ``BlobCreated`` event arrives (it carries
``contentLength`` and ``contentType``), and a blob that breaks the rules is deleted and never recorded.

Signing: with the account key from ``AZURE_STORAGE_CONNECTION_STRING`` (local, Azurite), or, deployed, with a
user delegation key that the function's managed identity asks for (``AZURE_STORAGE_ACCOUNT_URL`` +
azure-identity's ``DefaultAzureCredential``), cached until shortly before it expires. SAS URLs are HTTPS-only
except against a local emulator (an ``http://`` account URL on 127.0.0.1 or localhost).

azure-storage-blob is imported by this module only, and this module only when ``CLOUD_STORAGE_TYPE=azure``.
"""

from __future__ import annotations

import logging
import secrets
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit

from azure.core.exceptions import AzureError, HttpResponseError, ResourceNotFoundError
from azure.storage.blob import BlobSasPermissions, BlobServiceClient, ExponentialRetry, generate_blob_sas

from hera_sessions.backends.storage.base import DownloadSpec, Storage, UploadSpec
from hera_sessions.config import Settings
from hera_sessions.core.errors import ConfigError, InvalidInputError, NotFoundError, StorageUnavailableError
from hera_sessions.core.models import Check, ObjectInfo, UploadTicket

if TYPE_CHECKING:
    from azure.storage.blob import UserDelegationKey

logger = logging.getLogger("hera_sessions.backends.storage.azure")

T = TypeVar("T")

#: Block size the browser client uses for ``azure-blocks`` uploads (Put Block allows up to 4000 MiB a block,
#: 50,000 blocks a blob): 8 MiB blocks cover files up to 390 GiB.
BLOCK_SIZE = 8 * 1024 * 1024
MAX_BLOCKS = 50_000
#: Blobs deleted per batch request (the Blob Batch API takes at most 256 sub-requests).
DELETE_BATCH = 256
#: A user delegation key is asked for this long (the service allows up to 7 days) ...
DELEGATION_KEY_LIFETIME = timedelta(hours=6)
#: ... and replaced when less than this is left beyond the SAS being signed.
DELEGATION_KEY_MARGIN = timedelta(minutes=10)
#: The service's limit for a user delegation key (so for a SAS signed with one).
DELEGATION_KEY_MAX = timedelta(days=7)
#: Fail fast: a function has seconds, not the SDK's default minutes of retries.
CLIENT_OPTIONS: dict[str, Any] = {"connection_timeout": 5, "read_timeout": 20}


def _retry_policy(total: int) -> ExponentialRetry:
    return ExponentialRetry(initial_backoff=0, increment_base=2, retry_total=total, random_jitter_range=1)


def is_local_emulator(account_url: str) -> bool:
    """An ``http://`` account URL on the loopback interface (Azurite): the only place plain HTTP is allowed."""
    parts = urlsplit(account_url)
    return parts.scheme == "http" and (parts.hostname or "") in ("127.0.0.1", "localhost", "::1")


def _quoted(etag: str) -> str:
    """ETags as Azure compares them in conditions: quoted (events carry them either way)."""
    return etag if etag.startswith('"') else f'"{etag}"'


def _utc(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


class AzureBlobStorage(Storage):
    name = "azure"
    supports_post = False  # a blob has no form upload
    large_protocol = "azure-blocks"

    def __init__(
        self,
        client: BlobServiceClient,
        container: str,
        *,
        account_key: str | None = None,
        credential: Any = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.client = client
        self.container_name = container
        self.container = client.get_container_client(container)
        self.account_name: str = client.account_name or ""
        self.account_key = account_key
        self.credential = credential
        self.local = is_local_emulator(client.url)
        if urlsplit(client.url).scheme != "https" and not self.local:
            raise ConfigError(
                f"The storage account URL {client.url} is not HTTPS: plain HTTP is only for a local emulator "
                "(http://127.0.0.1 or http://localhost)."
            )
        if account_key is None and credential is None:
            raise ConfigError("Azure storage needs an account key (connection string) or a token credential.")
        self._clock = clock
        self._lock = threading.Lock()
        self._delegation_key: UserDelegationKey | None = None
        self._delegation_expiry = datetime.min.replace(tzinfo=UTC)

    # -- signing -----------------------------------------------------------------------------------------
    def _signing_key(self, until: datetime) -> dict[str, Any]:
        """``account_key=`` or ``user_delegation_key=`` for generate_blob_sas, valid at least until ``until``."""
        if self.account_key is not None:
            return {"account_key": self.account_key}
        with self._lock:
            if self._delegation_key is None or self._delegation_expiry < until + DELEGATION_KEY_MARGIN:
                now = self._clock()
                lifetime = min(max(DELEGATION_KEY_LIFETIME, until - now + DELEGATION_KEY_MARGIN), DELEGATION_KEY_MAX)
                start, expiry = now - timedelta(minutes=5), now + lifetime
                self._delegation_key = self._call(lambda: self.client.get_user_delegation_key(start, expiry))
                self._delegation_expiry = expiry
                logger.info("user delegation key obtained", extra={"expires": expiry.isoformat()})
            return {"user_delegation_key": self._delegation_key}

    def _sas_url(self, key: str, permission: BlobSasPermissions, expires_at: float, **extra: str) -> str:
        expiry = _utc(expires_at)
        options: dict[str, Any] = {**self._signing_key(expiry), **extra}
        sas = generate_blob_sas(
            account_name=self.account_name,
            container_name=self.container_name,
            blob_name=key,
            permission=permission,
            expiry=expiry,
            protocol="https,http" if self.local else "https",
            **options,
        )
        return f"{self.container.get_blob_client(key).url}?{sas}"

    @staticmethod
    def upload_headers(content_type: str) -> dict[str, str]:
        """What ``Put Blob`` needs besides the SAS: the blob type, and the type stored with the blob.

        ``x-ms-blob-content-type`` sets the blob's type on Put Blob and on Put Block List alike (the body's
        ``Content-Type`` only on Put Blob), so both carry the declared type.
        """
        return {"x-ms-blob-type": "BlockBlob", "x-ms-blob-content-type": content_type, "Content-Type": content_type}

    @staticmethod
    def block_headers(content_type: str) -> dict[str, str]:
        """Headers for Put Block and Put Block List: the blob's type only.

        No ``x-ms-blob-type`` (a Put Blob header: Azurite takes a block request that carries it for a Put Blob)
        and no ``Content-Type`` (the browser client sends each block untyped and the block list as XML).
        """
        return {"x-ms-blob-content-type": content_type}

    @staticmethod
    def checked_headers(spec: UploadSpec) -> dict[str, str]:
        """Headers Azure checks on a write (a SAS signs no header): ``Content-MD5`` (Put Blob refuses a body that
        does not match it) and ``If-None-Match: *`` (no blob may exist at the name)."""
        headers = {}
        if spec.content_md5 is not None:
            headers["Content-MD5"] = spec.content_md5
        if not spec.overwrite:
            headers["If-None-Match"] = "*"
        return headers

    def presign_upload(self, spec: UploadSpec) -> UploadTicket:
        url = self._sas_url(spec.key, BlobSasPermissions(create=True, write=True), spec.expires_at)
        headers = {**self.upload_headers(spec.content_type), **self.checked_headers(spec)}
        return UploadTicket("put", "PUT", url, spec.key, spec.expires_at, headers)

    def start_large_upload(self, spec: UploadSpec) -> UploadTicket:
        """Blocks under the same one-blob SAS; the client commits them with Put Block List (nothing to start here).

        The ``upload_id`` only names the reservation, so that a client can abandon it (DELETE /uploads/{id}).
        """
        url = self._sas_url(spec.key, BlobSasPermissions(create=True, write=True), spec.expires_at)
        block_size = max(BLOCK_SIZE, -(-spec.size // MAX_BLOCKS))
        return UploadTicket(
            "azure-blocks",
            "PUT",
            url,
            spec.key,
            spec.expires_at,
            # If-None-Match: for Put Block List (docs/azure.md); the whole blob's MD5 is checked by the reader only
            {**self.block_headers(spec.content_type), **({} if spec.overwrite else {"If-None-Match": "*"})},
            upload_id=f"azblk-{secrets.token_urlsafe(12)}",
            block_size=block_size,
        )

    def complete_large_upload(
        self, key: str, upload_id: str, parts: list[tuple[int, str]], overwrite: bool = True
    ) -> None:
        raise InvalidInputError(
            "Azure block uploads are completed by the client itself, with Put Block List under the upload URL.",
            "method_not_supported",
        )

    def abort_large_upload(self, key: str, upload_id: str) -> None:
        """Nothing to do: uncommitted blocks are invisible and Azure discards them after 7 days.

        (Deleting the blob here would delete an earlier, committed upload of the same path.)
        """

    def presign_download(self, spec: DownloadSpec) -> str:
        return self._sas_url(
            spec.key,
            BlobSasPermissions(read=True),
            spec.expires_at,
            content_disposition=spec.disposition,
            content_type=spec.content_type,
        )

    # -- objects -----------------------------------------------------------------------------------------
    def _call(self, operation: Callable[[], T]) -> T:
        """Run one SDK call; an unreachable or failing service becomes StorageUnavailableError (503)."""
        try:
            return operation()
        except ResourceNotFoundError:
            raise
        except HttpResponseError as exc:
            if exc.status_code is not None and exc.status_code < 500 and exc.status_code not in (403, 408, 429):
                raise
            raise StorageUnavailableError(f"Azure Blob storage answered {exc.status_code}: {exc.reason}.") from exc
        except AzureError as exc:  # connection refused, DNS, timeouts, no credential
            raise StorageUnavailableError(f"Azure Blob storage is unreachable: {exc.__class__.__name__}.") from exc

    def delete(self, key: str) -> None:
        self._delete(key)

    def delete_version(self, key: str, version: str | None) -> None:
        if not version:
            self._delete(key)
            return
        from azure.core import MatchConditions

        self._delete(key, etag=_quoted(version), match_condition=MatchConditions.IfNotModified)

    def _delete(self, key: str, **conditions: Any) -> None:
        """Delete one blob, breaking a lease first if the uploader took one (its SAS may: write covers lease).
        With ``conditions`` (an ETag), a blob that has changed since is left alone: a newer upload."""

        def delete() -> None:
            self.container.delete_blob(key, delete_snapshots="include", **conditions)

        try:
            self._call(delete)
        except ResourceNotFoundError:
            return
        except HttpResponseError as exc:
            code = getattr(exc, "error_code", None)
            if code == "ConditionNotMet":
                return
            if code not in ("LeaseIdMissing", "LeaseIdMismatchWithBlobOperation"):
                raise StorageUnavailableError(f"Azure Blob storage refused to delete: {code}.") from exc
            from azure.storage.blob import BlobLeaseClient

            self._call(lambda: BlobLeaseClient(self.container.get_blob_client(key)).break_lease(lease_break_period=0))
            try:
                self._call(delete)
            except ResourceNotFoundError:
                return
            except HttpResponseError as again:
                if getattr(again, "error_code", None) != "ConditionNotMet":
                    raise StorageUnavailableError("Azure Blob storage refused to delete.") from again

    def _delete_batch(self, names: list[str]) -> None:
        for _ in self.container.delete_blobs(*names, delete_snapshots="include", raise_on_any_failure=False):
            pass

    def delete_prefix(self, prefix: str) -> int:
        """Delete every blob under ``prefix``, 256 to a batch request (one by one where batches are refused)."""
        names = [info.key for info in self.list_prefix(prefix)]
        for start in range(0, len(names), DELETE_BATCH):
            chunk = names[start : start + DELETE_BATCH]
            try:
                self._call(partial(self._delete_batch, chunk))
            except (HttpResponseError, StorageUnavailableError):
                for name in chunk:  # the batch API is missing (an emulator) or failed as a whole
                    self.delete(name)
        left = [info.key for info in self.list_prefix(prefix)]
        for name in left:  # a sub-request that failed inside a batch
            self.delete(name)
        return len(names)

    def list_prefix(self, prefix: str) -> Iterator[ObjectInfo]:
        pages = self._call(lambda: self.container.list_blobs(name_starts_with=prefix))
        iterator = iter(pages)
        while True:
            blob = self._call(lambda: next(iterator, None))
            if blob is None:
                return
            settings = blob.content_settings
            yield ObjectInfo(
                key=blob.name,
                size=int(blob.size or 0),
                etag=blob.etag,
                content_type=settings.content_type if settings else None,
                last_modified=blob.last_modified.timestamp() if blob.last_modified else 0.0,
                version=blob.version_id,
            )

    def read(self, key: str) -> bytes:
        try:
            return self._call(lambda: self.container.download_blob(key).readall())
        except ResourceNotFoundError:
            raise NotFoundError(f"No object {key}.", "file_not_found") from None

    def read_head(self, key: str, version: str | None, limit: int) -> bytes | None:
        from azure.core import MatchConditions

        conditions: dict[str, Any] = {}
        if version:
            conditions = {"etag": _quoted(version), "match_condition": MatchConditions.IfNotModified}
        try:
            head: bytes = self._call(
                lambda: self.container.download_blob(key, offset=0, length=limit, **conditions).readall()
            )
        except ResourceNotFoundError:
            return None
        except HttpResponseError as exc:
            if getattr(exc, "error_code", None) in ("ConditionNotMet", "InvalidRange") or exc.status_code in (412, 416):
                return None  # that version is gone
            raise StorageUnavailableError(f"Azure Blob storage refused a read: {exc.status_code}.") from exc
        return head

    def rewrite(self, key: str, body: bytes, content_type: str, if_version: str) -> bool:
        from azure.core import MatchConditions
        from azure.storage.blob import ContentSettings

        try:
            self._call(
                lambda: self.container.upload_blob(
                    key,
                    body,
                    overwrite=True,
                    content_settings=ContentSettings(content_type=content_type),
                    etag=_quoted(if_version),
                    match_condition=MatchConditions.IfNotModified,
                )
            )
        except ResourceNotFoundError:
            return False
        except HttpResponseError as exc:
            if getattr(exc, "error_code", None) == "ConditionNotMet" or exc.status_code == 412:
                return False
            raise StorageUnavailableError(f"Azure Blob storage refused a write: {exc.status_code}.") from exc
        return True

    def check(self) -> None:
        try:
            self._call(
                lambda: next(iter(self.container.list_blobs(name_starts_with="sessions/", results_per_page=1)), None)
            )
        except ResourceNotFoundError:
            raise StorageUnavailableError(f"The container {self.container_name} does not exist.") from None

    def diagnose(self, settings: Settings) -> list[Check]:
        """The Blob service's CORS (data plane); the lifecycle and https-only settings are management-plane, which
        this SDK cannot read: said so, with the command that can. Who signs, and the clock against Azure's."""
        from hera_sessions.backends.storage.diagnosis import CorsRule, clock_check, cors_check, unreadable
        from hera_sessions.http.cors import AZURE_METHODS

        account = self.account_name
        reachable = self.reachable(f"{self.client.url} container {self.container_name}")
        if reachable.status == "fail":
            return [reachable]
        checks = [reachable]
        try:
            properties = self._call(self.client.get_service_properties)
        except (HttpResponseError, StorageUnavailableError) as exc:
            checks.append(
                unreadable("storage:cors", "Blob service properties", str(exc).splitlines()[0], "`az storage cors list "
                           f"--services b --account-name {account}`")
            )  # fmt: skip
        else:
            rules = [
                CorsRule(
                    frozenset(o.strip() for o in r.allowed_origins.split(",")),
                    frozenset(m.strip().upper() for m in r.allowed_methods.split(",")),
                    frozenset(h.strip().lower() for h in r.exposed_headers.split(",")),
                )
                for r in properties.get("cors") or []
            ]
            fix = "azure/deploy.sh sets it from CORS_ALLOWED_ORIGINS (python -m hera_sessions.http.cors azure)"
            checks.append(cors_check(rules, settings, AZURE_METHODS, fix))
        management = f"--account-name {account} --resource-group RG"
        checks.append(
            Check(
                "storage:lifecycle",
                "warn",
                "the lifecycle (management policy) cannot be read from the data plane",
                f"check it with `az storage account management-policy show {management}` (docs/azure.md)",
            )
        )
        tls = "SAS URLs are signed https-only (spr=https)"
        if self.local:
            tls = "local emulator over http: SAS URLs allow http here only"
        checks.append(
            Check(
                "storage:tls",
                "ok",
                f"{tls}; the account's https-only setting is management-plane: `az storage account show "
                f"{management} --query enableHttpsTrafficOnly`",
            )
        )
        checks.append(self._identity())
        checks.append(clock_check(self.client.url))
        return checks

    def _identity(self) -> Check:
        if self.account_key is not None:
            return Check("storage:identity", "ok", f"account key of {self.account_name} (connection string)")
        kind = type(self.credential).__name__
        try:
            self._signing_key(self._clock() + timedelta(minutes=5))
        except (HttpResponseError, StorageUnavailableError) as exc:
            return Check(
                "storage:identity",
                "fail",
                f"{kind} could not get a user delegation key: {str(exc).splitlines()[0]}",
                "give the function's managed identity 'Storage Blob Data Contributor' on the account",
            )
        return Check("storage:identity", "ok", f"{kind}: a user delegation key was issued (signs SAS URLs)")


def from_settings(settings: Settings, retry_total: int = 2, **client_options: Any) -> AzureBlobStorage:
    """The connection string (account key: local, Azurite) wins; else the account URL and the managed identity."""
    container = settings.azure_container_name
    credential = client_options.pop("credential", None)
    if not container:
        raise ConfigError("CLOUD_STORAGE_TYPE=azure needs AZURE_CONTAINER_NAME")
    options = {**CLIENT_OPTIONS, "retry_policy": _retry_policy(retry_total), **client_options}
    if settings.azure_connection_string:
        client = BlobServiceClient.from_connection_string(settings.azure_connection_string, **options)
        account_key = getattr(client.credential, "account_key", None)
        if not account_key:
            raise ConfigError(
                "AZURE_STORAGE_CONNECTION_STRING must hold the AccountKey (SAS URLs are signed with it); "
                "deployed, set AZURE_STORAGE_ACCOUNT_URL instead and sign with the managed identity."
            )
        return AzureBlobStorage(client, container, account_key=account_key)
    if not settings.azure_account_url:
        raise ConfigError("CLOUD_STORAGE_TYPE=azure needs AZURE_STORAGE_ACCOUNT_URL or AZURE_STORAGE_CONNECTION_STRING")
    if urlsplit(settings.azure_account_url).scheme != "https":
        raise ConfigError(
            f"AZURE_STORAGE_ACCOUNT_URL={settings.azure_account_url} is not HTTPS: a managed identity signs over "
            "HTTPS only (for a local emulator, use AZURE_STORAGE_CONNECTION_STRING)."
        )
    from azure.identity import DefaultAzureCredential

    credential = credential or DefaultAzureCredential()
    client = BlobServiceClient(settings.azure_account_url, credential=credential, **options)
    return AzureBlobStorage(client, container, credential=credential)
