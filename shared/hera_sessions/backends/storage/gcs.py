"""Google Cloud Storage: V4 signed PUT and POST policies, signed resumable starts, signed GETs (or Cloud CDN).

Signing needs a private key, or the IAM ``signBlob`` API:

- with a service account key file (``GOOGLE_APPLICATION_CREDENTIALS``, read by google-auth itself) the key signs
  locally, with no network call;
- inside Cloud Functions there is no key on disk: the runtime's credentials carry no key, so the URL is signed
  by ``iamcredentials.googleapis.com`` as the function's own service account (``service_account_email`` + an
  access token from the default credentials). That needs ``roles/iam.serviceAccountTokenCreator`` on itself.

``STORAGE_EMULATOR_HOST`` is honoured as google-cloud-storage does: requests (and the signed URLs) go to the
emulator, anonymously; signing still uses the default credentials (a service account key file).

Cold start: the credentials are checked when the backend is built (a bad set-up fails fast), but
google-cloud-storage is imported and its client made on first use, so calls that need no storage (creating a
session, recording most events) do not pay for it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from hera_sessions.backends.storage.base import DownloadSpec, Storage, UploadSpec
from hera_sessions.backends.storage.cloudcdn import CloudCdn
from hera_sessions.config import Settings
from hera_sessions.core.errors import ConfigError, HeraError, NotFoundError, StorageUnavailableError
from hera_sessions.core.models import Check, ObjectInfo, UploadTicket
from hera_sessions.runtimes.gcp.events import md5_hex

if TYPE_CHECKING:
    from google.auth.credentials import Credentials
    from google.cloud import storage

logger = logging.getLogger("hera_sessions")

SCOPE = "https://www.googleapis.com/auth/cloud-platform"
#: The JSON API takes at most 100 calls in one batch request.
BATCH_SIZE = 100
#: Seconds for one call; with retries, a call gives up after RETRY_TIMEOUT, not google-cloud-storage's 120 s.
TIMEOUT = 10.0
RETRY_TIMEOUT = 15.0


def _retry() -> Any:
    from google.cloud.storage.retry import DEFAULT_RETRY

    return DEFAULT_RETRY.with_timeout(RETRY_TIMEOUT)


@contextmanager
def _unavailable(action: str) -> Iterator[None]:
    """Any failure to reach GCS (or to get a token for it) becomes StorageUnavailableError (a 503)."""
    import requests
    from google.api_core import exceptions as api_exceptions
    from google.auth import exceptions as auth_exceptions

    try:
        yield
    except api_exceptions.NotFound as exc:
        raise NotFoundError(f"Cloud Storage has no such object ({action}).", "file_not_found") from exc
    except (
        api_exceptions.GoogleAPIError,
        auth_exceptions.GoogleAuthError,
        requests.RequestException,
    ) as exc:
        logger.warning("GCS %s failed: %s: %.300s", action, exc.__class__.__name__, exc)  # e.g. a missing role
        raise StorageUnavailableError(f"Cloud Storage is unavailable right now ({action}); try again shortly.") from exc


class Signer:
    """Chooses how to sign: locally with a key, or through IAM signBlob as the runtime's service account."""

    def __init__(self, credentials: Credentials) -> None:
        from google.auth.credentials import Signing

        self.credentials = credentials
        self.local = isinstance(credentials, Signing)
        if not self.local and not hasattr(credentials, "service_account_email"):
            raise ConfigError(
                f"GCS signed URLs need a service account, and the default credentials are "
                f"{type(credentials).__name__}: set GOOGLE_APPLICATION_CREDENTIALS to a key file, or run "
                "`gcloud auth application-default login --impersonate-service-account=SA_EMAIL`."
            )
        self._lock = threading.Lock()

    def kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``generate_signed_url`` / ``generate_signed_post_policy_v4``."""
        if self.local:
            return {"credentials": self.credentials}
        with self._lock, _unavailable("token refresh"):
            if not self.credentials.valid:
                from google.auth.transport.requests import Request

                self.credentials.refresh(Request())  # type: ignore[no-untyped-call]
            email = self.credentials.service_account_email  # type: ignore[attr-defined]
            return {"service_account_email": email, "access_token": self.credentials.token}


class GcsStorage(Storage):
    name = "gcs"
    supports_post = True
    large_protocol = "gcs-resumable"

    def __init__(
        self,
        make_client: Callable[[], storage.Client],
        bucket_name: str,
        signer: Signer,
        cdn: CloudCdn | None = None,
        project: str | None = None,
    ) -> None:
        self.bucket_name = bucket_name
        self.signer = signer
        self.cdn = cdn
        self.project = project
        self._make_client = make_client
        self._client: storage.Client | None = None
        self._lock = threading.Lock()
        self._auth_session: Any = None

    @property
    def client(self) -> storage.Client:
        """The google-cloud-storage client, made (and the library imported) on first use."""
        if self._client is None:
            with self._lock:
                if self._client is None:
                    self._client = self._make_client()
        return self._client

    @property
    def bucket(self) -> storage.Bucket:
        return self.client.bucket(self.bucket_name)

    # -- signing -----------------------------------------------------------------------------------------
    @staticmethod
    def _expiry(expires_at: float) -> datetime:
        return datetime.fromtimestamp(int(expires_at), UTC)

    def _signed_url(self, key: str, expires_at: float, method: str, **options: Any) -> str:
        with _unavailable("signing"):
            url: str = self.bucket.blob(key).generate_signed_url(
                version="v4", expiration=self._expiry(expires_at), method=method, **options, **self.signer.kwargs()
            )
        return url

    def presign_upload(self, spec: UploadSpec) -> UploadTicket:
        if spec.method == "POST":
            return self._presign_post(spec)
        url, headers = self._bounded_url(spec, "PUT")
        return UploadTicket("put", "PUT", url, spec.key, spec.expires_at, headers)

    def _bounded_url(self, spec: UploadSpec, method: str, md5: bool = True) -> tuple[str, dict[str, str]]:
        """A signed URL binding the content type, capping the size and, when asked, binding the body's MD5
        (``Content-MD5``: GCS refuses a body that does not match) and the object's absence
        (``x-goog-if-generation-match: 0``: GCS refuses to replace an object); and the headers to send."""
        signed = {"x-goog-content-length-range": f"0,{spec.size}"}
        if not spec.overwrite:
            signed["x-goog-if-generation-match"] = "0"
        options: dict[str, Any] = {}
        headers = {"Content-Type": spec.content_type, **signed}
        if md5 and spec.content_md5 is not None:
            options["content_md5"] = headers["Content-MD5"] = spec.content_md5
        url = self._signed_url(
            spec.key, spec.expires_at, method, content_type=spec.content_type, headers=signed, **options
        )
        return url, headers

    def _presign_post(self, spec: UploadSpec) -> UploadTicket:
        with _unavailable("signing"):
            policy = self.client.generate_signed_post_policy_v4(
                self.bucket_name,
                spec.key,  # the policy's {"key": ...} condition: this exact key
                expiration=self._expiry(spec.expires_at),
                conditions=[["content-length-range", 1, spec.size]],
                fields={"Content-Type": spec.content_type},
                **self.signer.kwargs(),
            )
        return UploadTicket("post", "POST", policy["url"], spec.key, spec.expires_at, {}, dict(policy["fields"]))

    def start_large_upload(self, spec: UploadSpec) -> UploadTicket:
        """A signed URL that starts a resumable upload session (POST with ``x-goog-resumable: start``).

        The client POSTs to it with the headers below, gets the session URI in ``Location``, then PUTs the bytes
        there (in chunks if it likes). The session URI stays usable for up to a week after the start, well past
        UPLOAD_URL_TTL: the quota stays reserved for LARGE_UPLOAD_TTL and the erase marker (ERASE_MARKER_TTL)
        outlives the session, so a late finish of an erased session's upload is deleted by the event function.
        """
        # The precondition applies to the object the session finishes; the whole body's MD5 is not known to GCS
        # when a resumable session starts (docs/gcp.md), so only the reader checks it.
        url, headers = self._bounded_url(spec, "RESUMABLE", md5=False)
        headers["x-goog-resumable"] = "start"
        return UploadTicket(self.large_protocol, "POST", url, spec.key, spec.expires_at, headers)

    def presign_download(self, spec: DownloadSpec) -> str:
        if self.cdn is not None:
            return self.cdn.signed_url(spec.key, spec.expires_at)
        return self._signed_url(
            spec.key,
            spec.expires_at,
            "GET",
            response_type=spec.content_type,
            response_disposition=spec.disposition,
        )

    # -- objects -----------------------------------------------------------------------------------------
    def delete(self, key: str) -> None:
        try:
            with _unavailable("delete"):
                self.bucket.blob(key).delete(timeout=TIMEOUT, retry=_retry())
        except NotFoundError:
            return

    def delete_version(self, key: str, version: str | None) -> None:
        if not version or not version.isdigit():
            self.delete(key)
            return
        from google.api_core.exceptions import PreconditionFailed

        try:
            with _unavailable("delete"):
                try:
                    self.bucket.blob(key).delete(if_generation_match=int(version), timeout=TIMEOUT, retry=_retry())
                except PreconditionFailed:
                    return  # a newer generation took the path: it stays
        except NotFoundError:
            return

    def _blobs(self, prefix: str, **options: Any) -> Iterator[Any]:
        blobs: Iterator[Any] = self.client.list_blobs(self.bucket, prefix=prefix, timeout=TIMEOUT, **options)
        return blobs

    def list_prefix(self, prefix: str) -> Iterator[ObjectInfo]:
        with _unavailable("list"):
            blobs = list(self._blobs(prefix, retry=_retry()))
        for blob in blobs:
            yield ObjectInfo(
                key=blob.name,
                size=int(blob.size or 0),
                etag=md5_hex(blob.md5_hash) or blob.etag,
                content_type=blob.content_type,
                last_modified=blob.updated.timestamp() if blob.updated else 0.0,
                version=str(blob.generation) if blob.generation is not None else None,
            )

    def read(self, key: str) -> bytes:
        try:
            with _unavailable("read"):
                data: bytes = self.bucket.blob(key).download_as_bytes(timeout=TIMEOUT, retry=_retry())
        except NotFoundError:
            raise NotFoundError(f"No object {key}.", "file_not_found") from None
        return data

    def read_head(self, key: str, version: str | None, limit: int) -> bytes | None:
        generation = int(version) if version and version.isdigit() else None
        try:
            with _unavailable("read"):
                blob = self.bucket.blob(key, generation=generation)
                head: bytes = blob.download_as_bytes(start=0, end=limit - 1, timeout=TIMEOUT, retry=_retry())
        except NotFoundError:
            return None  # that generation is gone
        return head

    def rewrite(self, key: str, body: bytes, content_type: str, if_version: str) -> bool:
        from google.api_core.exceptions import PreconditionFailed

        try:
            with _unavailable("write"):
                try:
                    self.bucket.blob(key).upload_from_string(
                        body,
                        content_type=content_type,
                        if_generation_match=int(if_version),
                        timeout=TIMEOUT,
                        retry=_retry(),
                    )
                except PreconditionFailed:
                    return False  # a newer generation took the path
        except NotFoundError:
            return False
        return True

    def check(self) -> None:
        """One listing call: ``storage.objects.list`` is a permission the functions hold (``buckets.get`` is not)."""
        with _unavailable("health check"):
            next(iter(self._blobs("sessions/", max_results=1, retry=None)), None)

    def diagnose(self, settings: Settings) -> list[Check]:
        """What gcp/deploy.sh sets up on the bucket (CORS, lifecycle), who signs, and the clock against GCS's."""
        from hera_sessions.backends.storage.diagnosis import (
            CorsRule,
            clock_check,
            cors_check,
            lifecycle_check,
            unreadable,
        )
        from hera_sessions.http.cors import GCS_METHODS

        where = f"gs://{self.bucket_name}"
        reachable = self.reachable(where)
        if reachable.status == "fail":
            return [reachable]
        checks = [reachable]
        try:
            with _unavailable("read the bucket"):
                bucket = self.client.get_bucket(self.bucket_name, timeout=TIMEOUT, retry=None)
        except HeraError as exc:
            reason = f"{exc.message}: storage.buckets.get"
            fix = f"run doctor as an account with storage.buckets.get, or `gcloud storage buckets describe {where}`"
            checks += [unreadable(name, "bucket", reason, fix) for name in ("storage:cors", "storage:lifecycle")]
        else:
            rules = [
                CorsRule(
                    frozenset(r.get("origin", [])),
                    frozenset(m.upper() for m in r.get("method", [])),
                    frozenset(h.lower() for h in r.get("responseHeader", [])),
                )
                for r in bucket.cors
            ]
            fix = (
                "gcp/deploy.sh sets it, or `python -m hera_sessions.http.cors gcs > cors.json && gcloud storage "
                f"buckets update {where} --cors-file=cors.json`"
            )
            checks.append(cors_check(rules, settings, [m for m in GCS_METHODS if m != "HEAD"], fix))
            ages = [
                int(rule["condition"]["age"])
                for rule in bucket.lifecycle_rules
                if rule.get("action", {}).get("type") == "Delete"
                and "age" in rule.get("condition", {})
                and any("sessions/".startswith(p) for p in rule["condition"].get("matchesPrefix", [""]))
            ]
            fix = f"gcp/deploy.sh sets it: `gcloud storage buckets update {where} --lifecycle-file=gcp/lifecycle.json`"
            checks.append(lifecycle_check(min(ages) if ages else None, settings, where, fix))
        checks.append(Check("storage:tls", "ok", "Cloud Storage answers HTTPS only (no bucket setting needed)"))
        checks.append(self._identity())
        checks.append(clock_check(self.client.api_endpoint))
        return checks

    def _identity(self) -> Check:
        """Who signs the URLs: a key file signs locally; otherwise a token for IAM signBlob must be obtainable."""
        email = getattr(self.signer.credentials, "service_account_email", None) or "?"
        if self.signer.local:
            return Check("storage:identity", "ok", f"service account {email}, signing with its key")
        try:
            self.signer.kwargs()
        except HeraError as exc:
            return Check(
                "storage:identity",
                "fail",
                f"service account {email}: no access token for IAM signBlob ({exc.message})",
                "the service account needs roles/iam.serviceAccountTokenCreator on itself",
            )
        return Check("storage:identity", "ok", f"service account {email}, signing through IAM signBlob")

    def delete_prefix(self, prefix: str) -> int:
        """Batches of 100 deletes (one HTTP request each), then a second listing to catch what a batch missed."""
        with _unavailable("list"):
            names = [blob.name for blob in self._blobs(prefix, retry=_retry())]
        for start in range(0, len(names), BATCH_SIZE):
            with _unavailable("batch delete"), self.client.batch(raise_exception=False):
                for name in names[start : start + BATCH_SIZE]:
                    self.bucket.blob(name).delete()
        with _unavailable("list"):
            left = [blob.name for blob in self._blobs(prefix, retry=_retry())]
        for name in left:  # answered with an error inside a batch, or written meanwhile: one by one, errors raised
            self.delete(name)
        return len(names)

    def invalidate_prefix(self, prefix: str) -> None:
        if self.cdn is None:
            return
        if self._auth_session is None:
            from google.auth.transport.requests import AuthorizedSession

            self._auth_session = AuthorizedSession(self.signer.credentials)  # type: ignore[no-untyped-call]
        self.cdn.invalidate(self._auth_session, self.project, prefix)

    def abort_prefix_uploads(self, prefix: str) -> None:
        """Nothing to do: unfinished resumable sessions cannot be listed, and leave no object until they finish
        (a finish after the erasure meets the erase marker in the event function, which deletes the object)."""


def _emulator_endpoint(host: str) -> str:
    return host if host.startswith(("http://", "https://")) else f"http://{host}"


def from_settings(settings: Settings, default_credentials: Callable[..., Any] | None = None) -> GcsStorage:
    import google.auth
    from google.auth.exceptions import DefaultCredentialsError

    if not settings.gcs_bucket_name:
        raise ConfigError("CLOUD_STORAGE_TYPE=gcs needs GCS_BUCKET_NAME")
    try:
        credentials, project = (default_credentials or google.auth.default)(scopes=[SCOPE])
    except DefaultCredentialsError:
        raise ConfigError(
            "No Google credentials found: inside Cloud Functions the runtime's service account is used; "
            "elsewhere set GOOGLE_APPLICATION_CREDENTIALS to a service account key file."
        ) from None
    signer = Signer(credentials)
    emulator = settings.extra.get("STORAGE_EMULATOR_HOST", "").strip()

    def make_client() -> storage.Client:
        from google.auth.credentials import AnonymousCredentials
        from google.cloud import storage

        if emulator:
            return storage.Client(
                project=project or "hera-local",
                credentials=AnonymousCredentials(),  # type: ignore[no-untyped-call]
                client_options={"api_endpoint": _emulator_endpoint(emulator)},
            )
        return storage.Client(project=project, credentials=credentials)

    cdn = None
    if settings.cdn_mode == "cloudcdn-signed":
        domain, key_name, key = settings.cdn_domain or "", settings.cdn_key_id or "", settings.cdn_private_key or ""
        cdn = CloudCdn(domain, key_name, key, settings.cdn_url_map)  # all three are checked by config.load
    return GcsStorage(make_client, settings.gcs_bucket_name, signer, cdn, project)
