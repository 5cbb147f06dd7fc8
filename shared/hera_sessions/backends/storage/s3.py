"""Amazon S3 (or any S3-compatible endpoint): presigned uploads and downloads, multipart, batch erasure.

- Upload URLs: a presigned ``PUT`` with ``Content-Type`` and ``Content-Length`` as signed headers (S3 refuses a
  body of any other type or length), or a presigned ``POST`` whose policy pins the bucket, the exact key, the
  content type and ``content-length-range`` [1, size]. Always SigV4, in ``AWS_REGION``.
- Addressing: path-style when a custom endpoint is set (``AWS_ENDPOINT_URL_S3`` / ``AWS_ENDPOINT_URL``: moto,
  MinIO, LocalStack...), regional virtual-hosted (``https://BUCKET.s3.REGION.amazonaws.com/KEY``) on AWS.
- Large files (``start_large_upload``): a multipart upload with one presigned ``upload_part`` URL per part,
  each part's ``Content-Length`` signed, so the parts add up to at most the declared size.
- Downloads: a presigned ``GET`` with ``response-content-type`` and ``response-content-disposition``, or,
  with ``CDN_MODE=cloudfront-signed``, a CloudFront signed URL (:mod:`hera_sessions.backends.storage.cloudfront`).
- Erasure: ``list_objects_v2`` + ``delete_objects`` in batches of up to 1,000 keys; unfinished multipart
  uploads are aborted; CloudFront, when in use, is asked to invalidate the prefix.

Cold start: nothing from boto3/botocore is imported until S3 is first called; one client per process (per
region and endpoint), built on first use. Presigning needs no network; PUT and GET URLs are written by
:mod:`hera_sessions.backends.storage.s3_signing` (byte-identical to botocore's, several times faster) when the bucket's
URL layout is one it knows, by botocore otherwise.

Every botocore failure to reach S3 (connection refused, DNS, timeouts, throttling, 5xx) becomes
:class:`StorageUnavailableError` (503 ``storage_unavailable``), never a 500.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from typing import TYPE_CHECKING, Any

from hera_sessions.backends.storage.base import DownloadSpec, Storage, UploadSpec
from hera_sessions.config import DAY, MiB, Settings
from hera_sessions.core.errors import (
    ConfigError,
    FileExistsConflictError,
    HeraError,
    InvalidInputError,
    NotFoundError,
    StorageUnavailableError,
)
from hera_sessions.core.models import Check, ObjectInfo, UploadPart, UploadTicket

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import ObjectIdentifierTypeDef

    from hera_sessions.backends.storage.cloudfront import CloudFront
    from hera_sessions.backends.storage.s3_signing import CredentialsSource, QuerySigner

logger = logging.getLogger("hera_sessions.backends.storage.s3")

#: SigV4 presigned URLs live at most 7 days (S3 refuses a longer ``X-Amz-Expires``).
MAX_PRESIGN_SECONDS = 7 * DAY
#: Multipart: parts of at least 8 MiB (S3's minimum is 5 MiB), never more than 10,000 parts.
MIN_PART_SIZE = 8 * MiB
MAX_PARTS = 10_000
#: ``delete_objects`` takes at most 1,000 keys a call.
DELETE_BATCH = 1_000
#: Short timeouts and one retry: an API call must answer (503) well within API Gateway's 30 s.
CONNECT_TIMEOUT = 2.0
READ_TIMEOUT = 5.0
MAX_ATTEMPTS = 2  # in all: the first try and one retry
#: S3 error codes that mean "try again later" rather than "you asked for something wrong".
_TRANSIENT = {"SlowDown", "ServiceUnavailable", "InternalError", "RequestTimeout", "RequestTimeTooSkewed", "503"}

_lock = threading.Lock()
_session: Any = None
_clients: dict[tuple[str, str | None], S3Client] = {}


def _boto_session() -> Any:
    """The process's botocore session: one credential chain for the clients and for our own signing.

    botocore's, not boto3's: a boto3 client *is* a botocore client, and ``import boto3`` adds ~15 ms to a cold
    start (it imports s3transfer for the transfer methods it grafts onto S3 clients, which nothing here calls).
    """
    global _session  # noqa: PLW0603 - one per process, by design
    if _session is None:
        with _lock:
            if _session is None:
                import botocore.session

                _session = botocore.session.get_session()
    return _session


def client_for(region: str, endpoint: str | None) -> S3Client:
    """The process's S3 client for this region and endpoint, built on first use."""
    key = (region, endpoint)
    client = _clients.get(key)
    if client is None:
        session = _boto_session()
        with _lock:
            client = _clients.get(key)
            if client is None:
                from botocore.config import Config

                config = Config(
                    region_name=region,
                    signature_version="s3v4",
                    s3={"addressing_style": "path" if endpoint else "virtual"},
                    retries={"mode": "standard", "total_max_attempts": MAX_ATTEMPTS},
                    connect_timeout=CONNECT_TIMEOUT,
                    read_timeout=READ_TIMEOUT,
                    # The settings already chose the endpoint (AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL): botocore
                    # must not pick another one up from the environment or a config file.
                    ignore_configured_endpoint_urls=True,  # type: ignore[call-arg]  # (older stubs lack it)
                    # Checksums only where S3 requires them (delete_objects): S3-compatible endpoints differ.
                    request_checksum_calculation="when_required",
                    response_checksum_validation="when_required",
                )
                client = session.create_client("s3", endpoint_url=endpoint, config=config)
                _clients[key] = client
    return client


@contextmanager
def s3_errors(action: str, ignore: tuple[str, ...] = (), **codes: HeraError) -> Iterator[None]:
    """Turn botocore failures into the service's errors.

    ``codes`` maps an S3 error code (``NoSuchKey``...) to the error to raise instead, ``ignore`` lists codes that
    are not failures here; anything else S3 answers, and every failure to reach it, becomes
    StorageUnavailableError (logged with its details).
    """
    try:
        yield
    except Exception as exc:
        # botocore is imported on failure only: a URL our own signer writes never loads it (cold start)
        from botocore.exceptions import BotoCoreError, ClientError

        if isinstance(exc, ClientError):
            error = exc.response.get("Error", {})
            code = str(error.get("Code", ""))
            if code in ignore:
                return
            if code in codes:
                raise codes[code] from None
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            level = logging.WARNING if code in _TRANSIENT else logging.ERROR
            logger.log(level, "S3 refused to %s: %s (HTTP %s)", action, code, status)
            raise StorageUnavailableError(f"File storage refused to {action} ({code}); try again shortly.") from exc
        if isinstance(exc, BotoCoreError):
            logger.warning("S3 could not %s: %s", action, exc.__class__.__name__)
            raise StorageUnavailableError(
                f"File storage is unreachable (could not {action}); try again shortly."
            ) from exc
        raise


def part_size_for(size: int) -> int:
    """Parts of at least 8 MiB, and few enough that a file fits in 10,000 of them."""
    return max(MIN_PART_SIZE, math.ceil(size / MAX_PARTS))


def _etag(value: str) -> str:
    """ETags as S3 lists them in CompleteMultipartUpload: quoted (clients may send the header with or without)."""
    value = value.strip()
    return value if value.startswith('"') else f'"{value}"'


class S3Storage(Storage):
    name = "s3"
    supports_post = True
    large_protocol = "s3-multipart"

    def __init__(
        self,
        bucket: str,
        region: str,
        endpoint: str | None = None,
        *,
        large_upload_ttl: int = DAY,
        cdn: CloudFront | None = None,
        fast_signing: bool = True,
        credentials: CredentialsSource | None = None,
    ) -> None:
        self.bucket = bucket
        self.region = region
        self.endpoint = endpoint.rstrip("/") if endpoint else None
        self.large_upload_ttl = large_upload_ttl
        self.cdn = cdn
        self.fast_signing = fast_signing
        self.credentials = credentials  # for our signer; None: botocore's chain
        self._signer: QuerySigner | None = None
        self._signer_checked = False

    # -- clients -----------------------------------------------------------------------------------------
    @property
    def client(self) -> S3Client:
        return client_for(self.region, self.endpoint)

    @property
    def signer(self) -> QuerySigner | None:
        """Our own SigV4 query signer, when this bucket's URL layout is one it writes (else botocore signs)."""
        if not self._signer_checked:
            if self.fast_signing:
                from hera_sessions.backends.storage.s3_signing import QuerySigner, base_url

                base = base_url(self.bucket, self.region, self.endpoint)
                if base is not None:
                    credentials = self.credentials or _boto_session().get_credentials()
                    if credentials is not None:
                        self._signer = QuerySigner(base, self.region, credentials)
            self._signer_checked = True
        return self._signer

    # -- uploads -----------------------------------------------------------------------------------------
    def presign_upload(self, spec: UploadSpec) -> UploadTicket:
        if spec.method == "POST":
            with s3_errors("sign an upload form"):
                post = self.client.generate_presigned_post(
                    Bucket=self.bucket,
                    Key=spec.key,
                    Fields={"Content-Type": spec.content_type},
                    Conditions=[{"Content-Type": spec.content_type}, ["content-length-range", 1, spec.size]],
                    ExpiresIn=spec.expires_in,
                )
            fields = {name: str(value) for name, value in post["fields"].items()}
            return UploadTicket("post", "POST", post["url"], spec.key, spec.expires_at, {}, fields)
        signer = self.signer
        if_none_match = None if spec.overwrite else "*"
        headers = {"Content-Type": spec.content_type}
        params: dict[str, Any] = {
            "Bucket": self.bucket,
            "Key": spec.key,
            "ContentType": spec.content_type,
            "ContentLength": spec.size,
        }
        if spec.content_md5 is not None:
            headers["Content-MD5"] = params["ContentMD5"] = spec.content_md5
        if if_none_match is not None:
            headers["If-None-Match"] = params["IfNoneMatch"] = if_none_match
        with s3_errors("sign an upload URL"):
            if signer is not None:
                url = signer.put_url(
                    spec.key,
                    spec.content_type,
                    spec.size,
                    spec.expires_in,
                    content_md5=spec.content_md5,
                    if_none_match=if_none_match,
                )
            else:
                url = self.client.generate_presigned_url("put_object", Params=params, ExpiresIn=spec.expires_in)
        return UploadTicket("put", "PUT", url, spec.key, spec.expires_at, headers)

    def start_large_upload(self, spec: UploadSpec) -> UploadTicket:
        part_size = part_size_for(spec.size)
        count = math.ceil(spec.size / part_size)
        # Part URLs outlive ordinary upload URLs (a big file over a slow link takes a while): they live
        # LARGE_UPLOAD_TTL (as long as the quota reservation), at least UPLOAD_URL_TTL, at most SigV4's 7 days.
        # The bucket's lifecycle aborts multipart uploads left unfinished after 1 day.
        ttl = min(max(spec.expires_in, self.large_upload_ttl), MAX_PRESIGN_SECONDS)
        client = self.client
        with s3_errors("start a multipart upload"):
            upload_id = client.create_multipart_upload(Bucket=self.bucket, Key=spec.key, ContentType=spec.content_type)[
                "UploadId"
            ]
        with s3_errors("sign the part URLs"):
            parts = tuple(
                UploadPart(
                    number,
                    client.generate_presigned_url(
                        "upload_part",
                        Params={
                            "Bucket": self.bucket,
                            "Key": spec.key,
                            "UploadId": upload_id,
                            "PartNumber": number,
                            # Each part's exact length is signed: together they make at most the declared size.
                            "ContentLength": min(part_size, spec.size - (number - 1) * part_size),
                        },
                        ExpiresIn=ttl,
                    ),
                )
                for number in range(1, count + 1)
            )
        object_url = parts[0].url.split("?", 1)[0]
        expires_at = spec.expires_at - spec.expires_in + ttl
        return UploadTicket(
            "s3-multipart",
            "PUT",
            object_url,
            spec.key,
            expires_at,
            upload_id=upload_id,
            part_size=part_size,
            parts=parts,
        )

    def complete_large_upload(
        self, key: str, upload_id: str, parts: list[tuple[int, str]], overwrite: bool = True
    ) -> None:
        """Complete the multipart upload; ``overwrite=False`` sends ``If-None-Match: *`` (S3 answers 412 when
        the key exists meanwhile: FileExistsConflictError, and the upload stays open to abort)."""
        exists = FileExistsConflictError(f"{key} already exists; it was not replaced.")
        invalid = InvalidInputError(
            "S3 did not accept those parts: send every part's number and the ETag its upload returned.",
            "invalid_parts",
        )
        with s3_errors(
            "complete a multipart upload",
            NoSuchUpload=NotFoundError("That upload was completed, aborted or has expired.", "upload_not_found"),
            InvalidPart=invalid,
            InvalidPartOrder=invalid,
            EntityTooSmall=invalid,
            MalformedXML=invalid,
            PreconditionFailed=exists,
            ConditionalRequestConflict=exists,
        ):
            options: dict[str, Any] = {} if overwrite else {"IfNoneMatch": "*"}
            self.client.complete_multipart_upload(
                Bucket=self.bucket,
                Key=key,
                UploadId=upload_id,
                MultipartUpload={"Parts": [{"PartNumber": n, "ETag": _etag(etag)} for n, etag in parts]},
                **options,
            )

    def abort_large_upload(self, key: str, upload_id: str) -> None:
        # NoSuchUpload: already completed, aborted or expired; nothing left to abort.
        with s3_errors("abort a multipart upload", ignore=("NoSuchUpload",)):
            self.client.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)

    def abort_prefix_uploads(self, prefix: str) -> None:
        client = self.client
        with s3_errors("list unfinished multipart uploads"):
            pages = client.get_paginator("list_multipart_uploads").paginate(Bucket=self.bucket, Prefix=prefix)
            uploads = [(u["Key"], u["UploadId"]) for page in pages for u in page.get("Uploads", [])]
        for key, upload_id in uploads:
            self.abort_large_upload(key, upload_id)

    # -- downloads ---------------------------------------------------------------------------------------
    def presign_download(self, spec: DownloadSpec) -> str:
        if self.cdn is not None:
            return self.cdn.signed_url(spec.key, spec.expires_at)
        disposition = spec.disposition
        signer = self.signer
        with s3_errors("sign a download URL"):
            if signer is not None:
                return signer.get_url(spec.key, spec.expires_in, spec.content_type, disposition)
            return self.client.generate_presigned_url(
                "get_object",
                Params={
                    "Bucket": self.bucket,
                    "Key": spec.key,
                    "ResponseContentType": spec.content_type,
                    "ResponseContentDisposition": disposition,
                },
                ExpiresIn=spec.expires_in,
            )

    # -- objects -----------------------------------------------------------------------------------------
    def delete(self, key: str) -> None:
        with s3_errors("delete a file"):
            self.client.delete_object(Bucket=self.bucket, Key=key)

    def list_prefix(self, prefix: str) -> Iterator[ObjectInfo]:
        with s3_errors("list files"):
            for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix):
                for obj in page.get("Contents", []):
                    yield ObjectInfo(
                        key=obj["Key"],
                        size=int(obj["Size"]),
                        etag=obj["ETag"].strip('"') if obj.get("ETag") else None,
                        content_type=None,
                        last_modified=obj["LastModified"].timestamp(),
                    )

    def delete_prefix(self, prefix: str) -> int:
        """Delete every object under ``prefix``: one listing page (≤ 1,000 keys) per ``delete_objects`` call."""
        client = self.client
        deleted = 0
        failed: list[str] = []
        with s3_errors("delete the session's files"):
            pages = client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=prefix, PaginationConfig={"PageSize": DELETE_BATCH}
            )
            for page in pages:
                batch: list[ObjectIdentifierTypeDef] = [{"Key": obj["Key"]} for obj in page.get("Contents", [])]
                for start in range(0, len(batch), DELETE_BATCH):
                    chunk = batch[start : start + DELETE_BATCH]
                    answer = client.delete_objects(Bucket=self.bucket, Delete={"Objects": chunk, "Quiet": True})
                    errors = answer.get("Errors", [])
                    failed.extend(f"{e.get('Key')}: {e.get('Code')}" for e in errors)
                    deleted += len(chunk) - len(errors)
        if failed:
            logger.error("S3 kept %d object(s) under %s: %s", len(failed), prefix, "; ".join(failed[:10]))
            raise StorageUnavailableError(f"File storage could not delete {len(failed)} file(s); try again shortly.")
        return deleted

    def invalidate_prefix(self, prefix: str) -> None:
        if self.cdn is not None:
            self.cdn.invalidate(prefix)

    def read(self, key: str) -> bytes:
        with s3_errors("read a file", NoSuchKey=NotFoundError(f"No object {key}.", "file_not_found")):
            body: bytes = self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        return body

    def read_head(self, key: str, version: str | None, limit: int) -> bytes | None:
        options: dict[str, Any] = {"Bucket": self.bucket, "Key": key, "Range": f"bytes=0-{limit - 1}"}
        if version:
            options["IfMatch"] = _etag(version)
        with s3_errors("read a file", ignore=("NoSuchKey", "PreconditionFailed", "InvalidRange")):
            head: bytes = self.client.get_object(**options)["Body"].read()
            return head
        return None  # that version is gone

    def rewrite(self, key: str, body: bytes, content_type: str, if_version: str) -> bool:
        with s3_errors("rewrite a file", ignore=("NoSuchKey", "PreconditionFailed", "ConditionalRequestConflict")):
            self.client.put_object(
                Bucket=self.bucket, Key=key, Body=body, ContentType=content_type, IfMatch=_etag(if_version)
            )
            return True
        return False  # that version is gone

    def check(self) -> None:
        """List one key under ``sessions/`` (the IAM policy allows ListBucket only with that prefix: no HeadBucket)."""
        with s3_errors("list the bucket"):
            self.client.list_objects_v2(Bucket=self.bucket, Prefix="sessions/", MaxKeys=1)

    # -- hera-sessions doctor ------------------------------------------------------------------------------
    def diagnose(self, settings: Settings) -> list[Check]:
        """What the SAM template sets up on the bucket: CORS, the lifecycle rule, the TLS-only policy; the
        caller's identity (the seed's ``aws sts get-caller-identity``) and the clock against S3's."""
        from hera_sessions.backends.storage.diagnosis import clock_check

        reachable = self.reachable(f"s3://{self.bucket} ({self.region})")
        if reachable.status == "fail":  # who is asking often says why (no credentials, another account)
            return [reachable, self._identity()]
        checks = [reachable]
        for check, what, operation, missing, judge in (
            ("storage:cors", "CORS rules", "get_bucket_cors", "NoSuchCORSConfiguration", self._cors),
            ("storage:lifecycle", "lifecycle", "get_bucket_lifecycle_configuration", "NoSuchLifecycleConfiguration",
             self._lifecycle),
            ("storage:tls", "bucket policy", "get_bucket_policy", "NoSuchBucketPolicy", self._tls_only),
        ):  # fmt: skip
            checks.append(self._judge_config(check, what, operation, missing, partial(judge, settings=settings)))
        checks.append(self._identity())
        checks.append(clock_check(self.endpoint or f"https://s3.{self.region}.amazonaws.com"))
        return checks

    def _judge_config(self, check: str, what: str, operation: str, missing: str, judge: Any) -> Check:
        """Read one bucket configuration (None when the bucket has none) and judge it."""
        from botocore.exceptions import BotoCoreError, ClientError

        from hera_sessions.backends.storage.diagnosis import unreadable

        try:
            answer = getattr(self.client, operation)(Bucket=self.bucket)
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", ""))
            if code != missing:
                return unreadable(
                    check,
                    f"bucket's {what}",
                    code,
                    f"the functions' role may not ({operation}); run doctor with a role that may, or "
                    f"`aws s3api {operation.replace('_', '-')} --bucket {self.bucket}`",
                )
            answer = None
        except BotoCoreError as exc:
            return unreadable(check, f"bucket's {what}", exc.__class__.__name__, "")
        result: Check = judge(answer)
        return result

    def _cors(self, answer: dict[str, Any] | None, settings: Settings) -> Check:
        from hera_sessions.backends.storage.diagnosis import CorsRule, cors_check
        from hera_sessions.http.cors import STORAGE_METHODS

        rules = [
            CorsRule(
                frozenset(r.get("AllowedOrigins", [])),
                frozenset(m.upper() for m in r.get("AllowedMethods", [])),
                frozenset(h.lower() for h in r.get("ExposeHeaders", [])),
            )
            for r in (answer or {}).get("CORSRules", [])
        ]
        fix = (
            "deploy the template's CORS rules (AllowedOrigins), or `python -m hera_sessions.http.cors s3 > cors.json "
            f"&& aws s3api put-bucket-cors --bucket {self.bucket} --cors-configuration file://cors.json`"
        )
        return cors_check(rules, settings, STORAGE_METHODS, fix)

    def _lifecycle(self, answer: dict[str, Any] | None, settings: Settings) -> Check:
        from hera_sessions.backends.storage.diagnosis import lifecycle_check

        days = None
        for rule in (answer or {}).get("Rules", []):
            filters = rule.get("Filter", {})
            prefix = rule.get("Prefix", filters.get("Prefix", filters.get("And", {}).get("Prefix", "")))
            expiry = rule.get("Expiration", {}).get("Days")
            if rule.get("Status") == "Enabled" and expiry and "sessions/".startswith(prefix):
                days = int(expiry) if days is None else min(days, int(expiry))
        fix = (
            "deploy the template's lifecycle rule (ObjectExpiryDays), or `aws s3api "
            f"put-bucket-lifecycle-configuration --bucket {self.bucket}` with an expiry on prefix sessions/"
        )
        return lifecycle_check(days, settings, f"s3://{self.bucket}", fix)

    def _tls_only(self, answer: dict[str, Any] | None, settings: Settings) -> Check:
        import json

        statements = json.loads(answer["Policy"]).get("Statement", []) if answer else []
        for statement in statements if isinstance(statements, list) else [statements]:
            secure = statement.get("Condition", {}).get("Bool", {}).get("aws:SecureTransport")
            if statement.get("Effect") == "Deny" and str(secure).lower() == "false":
                return Check("storage:tls", "ok", "the bucket policy denies requests without TLS (aws:SecureTransport)")
        return Check(
            "storage:tls",
            "warn",
            "no bucket policy statement denies requests without TLS (aws:SecureTransport false)",
            "deploy the template's SessionBucketPolicy (DenyInsecureTransport), or add that Deny statement with "
            f"`aws s3api put-bucket-policy --bucket {self.bucket}`",
        )

    def _identity(self) -> Check:
        from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

        try:
            sts = _boto_session().create_client("sts", region_name=self.region, endpoint_url=self.endpoint)
            who = sts.get_caller_identity()
        except NoCredentialsError:
            return Check(
                "storage:identity",
                "fail",
                "no AWS credentials found",
                "inside Lambda the function's role is used; elsewhere set AWS_PROFILE or AWS_ACCESS_KEY_ID/"
                "AWS_SECRET_ACCESS_KEY",
            )
        except (BotoCoreError, ClientError) as exc:
            return Check("storage:identity", "warn", f"sts get-caller-identity failed: {exc}", "")
        return Check("storage:identity", "ok", f"{who['Arn']} (account {who['Account']})")


def from_settings(settings: Settings) -> S3Storage:
    if not settings.s3_bucket_name:
        raise ConfigError("CLOUD_STORAGE_TYPE=s3 needs S3_BUCKET_NAME")
    cdn = None
    if settings.cdn_mode == "cloudfront-signed":
        from hera_sessions.backends.storage.cloudfront import CloudFront

        cdn = CloudFront.from_settings(settings)
    ttls = [("UPLOAD_URL_TTL", settings.upload_url_ttl)]
    if cdn is None:
        ttls.append(("DOWNLOAD_URL_TTL", settings.download_url_ttl))
    for name, ttl in ttls:
        if ttl > MAX_PRESIGN_SECONDS:
            raise ConfigError(f"{name}={ttl}: S3 presigned URLs live at most {MAX_PRESIGN_SECONDS} seconds (7 days)")
    from hera_sessions.backends.storage.s3_signing import environment_credentials

    return S3Storage(
        settings.s3_bucket_name,
        settings.aws_region,
        settings.s3_endpoint_url,
        large_upload_ttl=settings.large_upload_ttl,
        cdn=cdn,
        credentials=environment_credentials(settings.extra),
    )
