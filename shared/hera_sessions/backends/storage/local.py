"""Local disk storage with HMAC-signed, expiring URLs served by the local server.

Objects live at ``{SESSIONS_DIR}/objects/sessions/{session_id}/{sha256 of the path}``, each beside a
``.key`` file that holds its key: a flat layout in which every key the path rules accept fits (no name over
NAME_MAX) and no two keys collide (``a.png`` and ``a.png/b.png`` are both objects, as in a bucket).
Upload and download URLs point at the local server's object endpoints (``/local-storage/...``), which check
signature, expiry, size and type exactly as S3 would and answer with S3's status codes and XML error
documents. Every stored or deleted object produces the S3 notification S3 would send, handed to an
:class:`EventSink` before the write returns (the runtime connects a durable outbox whose deliverer runs the
same recording code as the cloud functions). Temporary files live in ``objects/.staging/`` under uuid names;
no key reaches the disk unless it passes the path rules.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import hmac
import json
import os
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import quote, quote_plus, urlencode

from hera_sessions.backends.storage.base import DownloadSpec, Storage, UploadSpec
from hera_sessions.config import Settings
from hera_sessions.core import keys
from hera_sessions.core.errors import InvalidInputError, NotFoundError, StorageUnavailableError
from hera_sessions.core.models import Check, ObjectInfo, UploadTicket

ROUTE = "/local-storage"
BUCKET = "local"
STAGING = ".staging"  # beside the sessions/ prefix, on the same file system, never a key
KEY_SUFFIX = ".key"  # the file beside each object that holds its key
_LAYOUT_NAME = re.compile(r"[0-9a-f]{64}(?:\.key)?")  # an object's file or its key file
#: The sequencer high-water mark is kept this far ahead (ns), so it is written about once a minute.
SEQUENCER_RESERVE = 60 * 10**9


class S3Error(Exception):
    """An S3-style refusal: status, S3 error code and message (rendered as S3's XML error document)."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def entity_too_large() -> S3Error:
    """S3's refusal of an upload larger than its policy or signature allows."""
    return S3Error(400, "EntityTooLarge", "Your proposed upload exceeds the maximum allowed size")


def fsync_dir(folder: Path) -> None:
    """Make a folder's entries (a rename, an unlink) durable."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def remove_older_than(folder: Path, older_than: float) -> int:
    """Remove the files of ``folder`` untouched for ``older_than`` seconds (what an interrupted write left)."""
    cutoff, removed = time.time() - older_than, 0
    for leftover in folder.iterdir():
        try:
            if leftover.stat().st_mtime < cutoff:
                leftover.unlink()
                removed += 1
        except FileNotFoundError:
            continue
    return removed


def _sidecar(target: Path) -> Path:
    return target.with_name(target.name + KEY_SUFFIX)


@dataclass(frozen=True, slots=True)
class StoredObject:
    """An object as local storage wrote it: its key, size and ETag (its MD5)."""

    key: str
    size: int
    etag: str


class EventSink(Protocol):
    """Where local storage hands its S3 notifications: ``put`` returns once the notification is kept durably."""

    def put(self, payload: dict[str, Any]) -> None: ...


def _sign(secret: bytes, *parts: str) -> str:
    mac = hmac.new(secret, "\n".join(parts).encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).rstrip(b"=").decode()


class LocalStorage(Storage):
    name = "local"
    supports_post = True
    #: A read of a local file takes microseconds, under the storage's lock: threads would only add their cost.
    read_concurrency = 1

    def __init__(self, root: Path, secret: str, base_url: str, events: EventSink | None = None) -> None:
        self.root = (Path(root) / "objects").resolve()
        self.root.mkdir(parents=True, exist_ok=True)
        self.staging = self.root / STAGING
        self.staging.mkdir(exist_ok=True)
        self.secret = hashlib.sha256(b"hera-local-storage:" + secret.encode()).digest()
        self.base_url = base_url.rstrip("/")
        self.events = events
        # One lock orders writes, removals and their sequencers: the newest sequencer is the object that stays.
        self._lock = threading.RLock()
        # Sequencers never go back, also across a restart with the clock stepped back: a high-water mark,
        # kept ahead of the sequencers handed out, is where a new process starts.
        self._sequencer_file = self.root / ".sequencer"
        try:
            self._last_sequencer = int(self._sequencer_file.read_text().strip(), 16)
        except (FileNotFoundError, ValueError):
            self._last_sequencer = 0
        self._reserved = self._last_sequencer
        self._migrate()

    def connect(self, events: EventSink) -> None:
        """Set the event sink once (the runtime does, after building the service that records events)."""
        if self.events is not None and self.events is not events:
            raise RuntimeError("local storage already has an event sink")
        self.events = events

    # -- paths -------------------------------------------------------------------------------------------
    def _file(self, key: str) -> Path:
        """The file of ``key``: only keys that pass the path rules, and only inside ``objects/``."""
        split = keys.split_object_key(key)
        try:
            if split is None:
                raise InvalidInputError("not sessions/{session_id}/{path}")
            keys.check_path(split[1])
        except InvalidInputError:
            raise S3Error(
                400, "InvalidArgument", "Keys must be sessions/{session_id}/{path} with a valid path."
            ) from None
        session_id, path = split
        # String paths, not pathlib's, on this path of every read and write (a third of the time).
        inside = os.path.join(self.root, keys.PREFIX, "")
        target = os.path.join(inside, session_id, hashlib.sha256(path.encode()).hexdigest())
        if not os.path.realpath(target).startswith(inside):  # no symlink leads out of the bucket
            raise S3Error(400, "InvalidArgument", "Keys must stay inside the bucket.")
        return Path(target)

    def _url(self, key: str) -> str:
        return f"{self.base_url}{ROUTE}/{quote(key)}"

    # -- signing -----------------------------------------------------------------------------------------
    def presign_upload(self, spec: UploadSpec) -> UploadTicket:
        expires = str(int(spec.expires_at))
        if spec.method == "POST":
            policy = {
                "expiration": expires,
                "conditions": [
                    {"bucket": BUCKET},
                    {"key": spec.key},
                    {"Content-Type": spec.content_type},
                    ["content-length-range", 1, spec.size],
                ],
            }
            encoded = base64.b64encode(json.dumps(policy, separators=(",", ":")).encode()).decode()
            fields = {
                "key": spec.key,
                "Content-Type": spec.content_type,
                "policy": encoded,
                "x-hera-signature": _sign(self.secret, "POST", encoded),
            }
            return UploadTicket("post", "POST", f"{self.base_url}{ROUTE}/", spec.key, spec.expires_at, {}, fields)
        # As S3 signs headers: the values are bound by the signature, the request must carry them.
        headers = {"Content-Type": spec.content_type}
        query = {
            "X-Hera-Expires": expires,
            "X-Hera-Size": str(spec.size),
            "X-Hera-Type": spec.content_type,
        }
        if spec.content_md5:
            headers["Content-MD5"] = query["X-Hera-MD5"] = spec.content_md5
        if not spec.overwrite:
            headers["If-None-Match"] = query["X-Hera-If-None-Match"] = "*"
        query["X-Hera-Signature"] = _sign(self.secret, "PUT", spec.key, expires, *self._put_signed(query))
        return UploadTicket(
            "put", "PUT", f"{self._url(spec.key)}?{urlencode(query)}", spec.key, spec.expires_at, headers
        )

    @staticmethod
    def _put_signed(query: Mapping[str, str]) -> tuple[str, ...]:
        """What a PUT URL's signature covers besides method, key and expiry (absent ones as "")."""
        names = ("X-Hera-Size", "X-Hera-Type", "X-Hera-MD5", "X-Hera-If-None-Match")
        return tuple(query.get(name, "") for name in names)

    def presign_download(self, spec: DownloadSpec) -> str:
        expires = str(int(spec.expires_at))
        disposition = spec.disposition
        signature = _sign(self.secret, "GET", spec.key, expires, spec.content_type, disposition)
        query = {
            "X-Hera-Expires": expires,
            "response-content-type": spec.content_type,
            "response-content-disposition": disposition,
            "X-Hera-Signature": signature,
        }
        return f"{self._url(spec.key)}?{urlencode(query, quote_via=quote_plus)}"

    # -- what the local server checks --------------------------------------------------------------------
    def _check_signature(self, signature: str | None, *signed: str) -> None:
        if not signature:
            raise S3Error(403, "AccessDenied", "Query-string authentication requires a signature and expiry.")
        if not hmac.compare_digest(signature.encode(), _sign(self.secret, *signed).encode()):
            raise S3Error(
                403,
                "SignatureDoesNotMatch",
                "The request signature we calculated does not match the signature you provided.",
            )

    @staticmethod
    def _check_expiry(expires: str | None, message: str = "Request has expired") -> None:
        if not expires or not expires.isdigit() or int(expires) < time.time():
            raise S3Error(403, "AccessDenied", message)

    def _check(self, expires: str | None, signature: str | None, *signed: str) -> None:
        self._check_signature(signature, *signed)
        self._check_expiry(expires)

    def verify_put(
        self,
        key: str,
        query: Mapping[str, str],
        content_type: str | None,
        length: int | None,
        headers: Mapping[str, str | None] | None = None,
    ) -> None:
        """Check a presigned PUT as S3 does. ``headers``: the request's ``Content-MD5`` and ``If-None-Match``,
        which must be the signed values when the URL signs them (S3: a signed header that differs or is missing
        breaks the signature)."""
        size = query.get("X-Hera-Size", "")
        ctype = query.get("X-Hera-Type", "")
        self._check(
            query.get("X-Hera-Expires"),
            query.get("X-Hera-Signature"),
            "PUT",
            key,
            query.get("X-Hera-Expires", ""),
            *self._put_signed(query),
        )
        given = headers or {}
        for name, header in (("X-Hera-MD5", "Content-MD5"), ("X-Hera-If-None-Match", "If-None-Match")):
            signed = query.get(name)
            if signed is not None and (given.get(header) or "").strip() != signed:
                raise S3Error(403, "SignatureDoesNotMatch", f"{header} must be {signed}, as signed.")
        if length is None:
            raise S3Error(411, "MissingContentLength", "You must provide the Content-Length HTTP header.")
        if (content_type or "").lower() != ctype:
            raise S3Error(403, "SignatureDoesNotMatch", f"Content-Type must be {ctype}, as signed.")
        if length > int(size):
            raise entity_too_large()
        if length < int(size):
            raise S3Error(403, "SignatureDoesNotMatch", f"Content-Length must be {size}, as signed.")

    def verify_post(self, fields: Mapping[str, str], length: int | None) -> str:
        """Check a form upload's policy like S3 does; return the key it may write. ``length`` None: the file's
        size is not known yet (the size range is checked once it is)."""
        policy_b64 = fields.get("policy", "")
        self._check_signature(fields.get("x-hera-signature"), "POST", policy_b64)
        try:
            policy = json.loads(base64.b64decode(policy_b64))
            conditions = list(policy["conditions"])
        except (ValueError, KeyError, TypeError):
            raise S3Error(400, "InvalidPolicyDocument", "Invalid Policy: Invalid JSON.") from None
        self._check_expiry(str(policy.get("expiration", "")), "Invalid according to Policy: Policy expired.")
        for condition in conditions:
            if isinstance(condition, list):  # ["content-length-range", low, high]
                _, low, high = condition
                if length is None:
                    continue
                if length > high:
                    raise entity_too_large()
                if length < low:
                    raise S3Error(
                        400, "EntityTooSmall", "Your proposed upload is smaller than the minimum allowed size"
                    )
                continue
            ((name, value),) = condition.items()
            if name == "bucket":
                continue
            given = fields.get(name) if name == "key" else _field(fields, name)
            if given != value:
                raise S3Error(
                    403,
                    "AccessDenied",
                    f'Invalid according to Policy: Policy Condition failed: ["eq", "${name}", "{value}"]',
                )
        return str(fields["key"])

    def verify_get(self, key: str, query: Mapping[str, str]) -> tuple[str, str]:
        ctype = query.get("response-content-type", "")
        disposition = query.get("response-content-disposition", "")
        self._check(
            query.get("X-Hera-Expires"),
            query.get("X-Hera-Signature"),
            "GET",
            key,
            query.get("X-Hera-Expires", ""),
            ctype,
            disposition,
        )
        return ctype, disposition

    # -- objects -----------------------------------------------------------------------------------------
    def write(
        self,
        key: str,
        body: bytes | Iterable[bytes],
        check: Callable[[int], None] | None = None,
        *,
        content_md5: str | None = None,
        if_none_match: str | None = None,
    ) -> StoredObject:
        """Store ``body`` (bytes, or chunks read as they come) at ``key``; returns once the object and its event
        are on disk.

        As S3: ``content_md5`` (the ``Content-MD5`` header) must be the body's MD5 (400 ``BadDigest``, or
        ``InvalidDigest`` when it is not one); ``if_none_match="*"`` writes only where no object exists (412
        ``PreconditionFailed``), checked and written under the write lock, so of two such writes one wins.
        ``check(size)`` runs once the body is staged, before it takes the key. A refusal stores nothing.
        """
        stored = self._store(key, body, check, content_md5=content_md5, if_none_match=if_none_match)
        assert stored is not None  # no if_version: unconditional but for if_none_match, which raises
        return stored

    def _store(
        self,
        key: str,
        body: bytes | Iterable[bytes],
        check: Callable[[int], None] | None = None,
        *,
        content_md5: str | None = None,
        if_none_match: str | None = None,
        if_version: str | None = None,
    ) -> StoredObject | None:
        """Write ``body`` (only while the object is still ``if_version``, when given) and notify; None if not."""
        target = self._file(key)
        declared = _declared_md5(content_md5) if content_md5 is not None else None
        if if_none_match is not None and if_none_match.strip() != "*":
            raise S3Error(501, "NotImplemented", "If-None-Match takes only '*' on a write.")
        tmp = self.staging / uuid.uuid4().hex  # a short name: every valid key fits NAME_MAX
        digest, size = hashlib.md5(usedforsecurity=False), 0
        try:
            with tmp.open("wb") as f:
                for chunk in [body] if isinstance(body, bytes) else body:
                    digest.update(chunk)
                    size += len(chunk)
                    f.write(chunk)
                f.flush()
                os.fsync(f.fileno())
            if check is not None:
                check(size)
            if declared is not None and not hmac.compare_digest(declared, digest.digest()):
                raise S3Error(400, "BadDigest", "The Content-MD5 you specified did not match what we received.")
            stored = StoredObject(key, size, f'"{digest.hexdigest()}"')
            with self._lock:
                if if_none_match is not None and target.is_file():
                    raise S3Error(
                        412, "PreconditionFailed", "At least one of the pre-conditions you specified did not hold"
                    )
                if if_version is not None and not self._is_version(target, if_version):
                    return None
                self._make_dir(target.parent)
                self._keep_key(target, key)
                os.replace(tmp, target)
                fsync_dir(target.parent)
                written = target.stat()
                sequencer = self._sequencer()
        finally:
            tmp.unlink(missing_ok=True)
        try:
            self._notify("ObjectCreated:Put", key, stored, sequencer)
        except BaseException:
            # No event, no object: the upload is refused whole (unless a newer write took the key meanwhile).
            with self._lock:
                try:
                    now = target.stat()
                    if (now.st_dev, now.st_ino) == (written.st_dev, written.st_ino):
                        target.unlink()
                        fsync_dir(target.parent)
                except FileNotFoundError:
                    pass
            raise
        return stored

    @staticmethod
    def _is_version(target: Path, version: str) -> bool:
        """Whether the file is there and its ETag (MD5, as local events report it) is ``version``."""
        return bool(version) and LocalStorage._version_bytes(target, version) is not None

    @staticmethod
    def _version_bytes(target: Path, version: str) -> bytes | None:
        """The file's bytes, if it is there and its ETag (its MD5) is ``version``."""
        try:
            body = target.read_bytes()
        except (FileNotFoundError, IsADirectoryError):
            return None
        return body if hashlib.md5(body, usedforsecurity=False).hexdigest() == version.strip('"') else None

    def read_head(self, key: str, version: str | None, limit: int) -> bytes | None:
        try:
            target = self._file(key)
        except S3Error:
            return None
        with self._lock:  # the version and the bytes read at once (a write replaces the file under the lock)
            if version:
                body = self._version_bytes(target, version)
                return None if body is None else body[:limit]
            try:
                with target.open("rb") as f:
                    return f.read(limit)
            except (FileNotFoundError, IsADirectoryError):
                return None

    def rewrite(self, key: str, body: bytes, content_type: str, if_version: str) -> bool:
        return self._store(key, body, if_version=if_version) is not None

    def open(self, key: str) -> Path:
        target = self._file(key)
        if not target.is_file():
            raise S3Error(404, "NoSuchKey", "The specified key does not exist.")
        return target

    def read(self, key: str) -> bytes:
        try:
            return self.open(key).read_bytes()
        except S3Error:
            raise NotFoundError(f"No object {key}.", "file_not_found") from None

    def delete(self, key: str) -> None:
        try:
            target = self._file(key)
        except S3Error:
            return  # no object can exist at a key the rules refuse
        with self._lock:
            try:
                target.unlink()
            except FileNotFoundError:
                return
            _sidecar(target).unlink(missing_ok=True)
            fsync_dir(target.parent)
            sequencer = self._sequencer()
            with contextlib.suppress(OSError):
                target.parent.rmdir()  # tidy an empty session folder, as a bucket has none
        self._notify("ObjectRemoved:Delete", key, None, sequencer)

    def delete_version(self, key: str, version: str | None) -> None:
        try:
            target = self._file(key)
        except S3Error:
            return
        with self._lock:
            if version and target.is_file() and not self._is_version(target, version):
                return  # a newer upload took the path: it stays
            self.delete(key)

    def _stored(self, prefix: str) -> Iterator[tuple[str, Path]]:
        """(key, file) of every stored object whose key starts with ``prefix``, in key order."""
        if not prefix.startswith(keys.PREFIX):
            if not keys.PREFIX.startswith(prefix):
                return
            prefix = keys.PREFIX
        rest = prefix[len(keys.PREFIX) :]
        base = self.root / keys.PREFIX
        sid, slash, _ = rest.partition("/")
        if slash:
            folders = [base / sid] if keys.is_session_id(sid) else []
        else:
            folders = [f for f in base.iterdir() if f.name.startswith(sid)] if base.is_dir() else []
        found = []
        for folder in folders:
            try:
                sidecars = list(folder.glob("*" + KEY_SUFFIX))
            except OSError:
                continue
            for sidecar in sidecars:
                try:
                    key = sidecar.read_text()
                except (OSError, UnicodeDecodeError):
                    continue
                data = sidecar.with_suffix("")
                if key.startswith(prefix) and data.is_file():
                    found.append((key, data))
        yield from sorted(found)

    def list_prefix(self, prefix: str) -> Iterator[ObjectInfo]:
        for key, path in self._stored(prefix):
            try:
                stat = path.stat()
                etag = hashlib.md5(path.read_bytes(), usedforsecurity=False).hexdigest()  # unquoted, as S3 lists
            except FileNotFoundError:
                continue  # deleted meanwhile
            yield ObjectInfo(key, stat.st_size, etag, keys.type_from_extension(key), stat.st_mtime)

    def expire(self, max_age: float) -> int:
        """The local twin of the bucket lifecycle rule: delete objects older than ``max_age`` seconds."""
        cutoff = time.time() - max_age
        old = []
        for key, path in self._stored(keys.PREFIX):
            try:
                if path.stat().st_mtime < cutoff:
                    old.append(key)
            except FileNotFoundError:
                continue
        for key in old:
            self.delete(key)
        return len(old)

    def sweep_staging(self, older_than: float = 600) -> int:
        """Remove staging files an interrupted write left (untouched for ``older_than`` seconds)."""
        return remove_older_than(self.staging, older_than)

    def check(self) -> None:
        if not os.access(self.root, os.W_OK):
            raise StorageUnavailableError(f"The objects folder {self.root} is not writable.")

    def diagnose(self, settings: Settings) -> list[Check]:
        """The folder takes a write; the local server's sweep stands for the lifecycle rule; one clock."""
        from hera_sessions.backends.storage.diagnosis import lifecycle_check

        probe = self.staging / f"doctor-{uuid.uuid4().hex}"
        try:
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as exc:
            return [
                Check(
                    "storage:reachable",
                    "fail",
                    f"{self.root} does not take a write: {exc.strerror}",
                    "make SESSIONS_DIR writable by this user, or point SESSIONS_DIR elsewhere",
                )
            ]
        origins = ", ".join(settings.cors_allowed_origins) or "none: the demo page is same-origin"
        return [
            Check("storage:reachable", "ok", f"{self.root} is writable"),
            lifecycle_check(
                settings.object_expiry_days,
                settings,
                "OBJECT_EXPIRY_DAYS: the local server sweeps hourly",
                "set OBJECT_EXPIRY_DAYS",
            ),
            Check("storage:cors", "ok", f"the local object endpoints answer CORS for {origins}"),
            Check("storage:clock", "ok", "local URLs are signed and checked on this machine's clock"),
        ]

    # -- the layout --------------------------------------------------------------------------------------
    def _make_dir(self, folder: Path) -> None:
        """Create ``folder`` and its missing parents, each made durable in its parent."""
        if folder.is_dir():
            return
        self._make_dir(folder.parent)
        try:
            folder.mkdir()
        except FileExistsError:
            return
        fsync_dir(folder.parent)

    def _migrate(self) -> None:
        """Move objects of the earlier layout (``objects/{key}`` as nested folders) into the flat one."""
        base = self.root / keys.PREFIX
        if not base.is_dir():
            return
        for folder in base.iterdir():
            if not folder.is_dir() or not keys.is_session_id(folder.name):
                continue
            for old in sorted(folder.rglob("*")):
                if not old.is_file() or (old.parent == folder and _LAYOUT_NAME.fullmatch(old.name)):
                    continue
                key = old.relative_to(self.root).as_posix()
                try:
                    target = self._file(key)
                except S3Error:
                    continue  # not a key the rules accept: left where it is
                self._keep_key(target, key)
                os.replace(old, target)
            for empty in sorted((p for p in folder.rglob("*") if p.is_dir()), reverse=True):
                with contextlib.suppress(OSError):
                    empty.rmdir()

    def _keep_key(self, target: Path, key: str) -> None:
        """Write the key beside its file once (the file's name is a hash of it), durably, before the file."""
        sidecar = _sidecar(target)
        if sidecar.exists():
            return
        tmp = self.staging / uuid.uuid4().hex
        try:
            with tmp.open("w") as f:
                f.write(key)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, sidecar)
        finally:
            tmp.unlink(missing_ok=True)

    # -- notifications -----------------------------------------------------------------------------------
    def _sequencer(self) -> str:
        """A strictly increasing order token (hexadecimal, as S3's); taken under the write lock."""
        self._last_sequencer = max(time.time_ns(), self._last_sequencer + 1)
        if self._last_sequencer > self._reserved:
            self._reserved = self._last_sequencer + SEQUENCER_RESERVE
            tmp = self.staging / uuid.uuid4().hex
            try:
                with tmp.open("w") as f:
                    f.write(f"{self._reserved:020X}")
                    f.flush()
                    os.fsync(f.fileno())
                os.replace(tmp, self._sequencer_file)
                fsync_dir(self.root)
            finally:
                tmp.unlink(missing_ok=True)
        return f"{self._last_sequencer:020X}"

    def _notify(self, event_name: str, key: str, stored: StoredObject | None, sequencer: str) -> None:
        if self.events is None:
            return
        obj: dict[str, Any] = {"key": quote_plus(key, safe="/"), "sequencer": sequencer}
        if stored is not None:
            obj |= {"size": stored.size, "eTag": stored.etag.strip('"')}
        self.events.put(s3_notification(event_name, BUCKET, obj))


def _declared_md5(content_md5: str) -> bytes:
    """The 16 bytes a ``Content-MD5`` header declares (400 ``InvalidDigest`` when it is not an MD5)."""
    try:
        declared = base64.b64decode(content_md5.strip(), validate=True)
    except binascii.Error:
        declared = b""
    if len(declared) != 16:
        raise S3Error(400, "InvalidDigest", "The Content-MD5 you specified is not valid.")
    return declared


def _field(fields: Mapping[str, str], name: str) -> str | None:
    """Form field names are case-insensitive in S3 POST policies (except ``key``)."""
    lowered = name.lower()
    for k, v in fields.items():
        if k.lower() == lowered:
            return v
    return None


def s3_notification(event_name: str, bucket: str, obj: Mapping[str, Any]) -> dict[str, Any]:
    """An S3 event notification, shaped exactly as S3 sends it (``Records`` of version 2.1)."""
    return {
        "Records": [
            {
                "eventVersion": "2.1",
                "eventSource": "aws:s3",
                "awsRegion": "local",
                "eventTime": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime()),
                "eventName": event_name,
                "userIdentity": {"principalId": "local"},
                "requestParameters": {"sourceIPAddress": "127.0.0.1"},
                "responseElements": {"x-amz-request-id": "local", "x-amz-id-2": "local"},
                "s3": {
                    "s3SchemaVersion": "1.0",
                    "configurationId": "hera-sessions-local",
                    "bucket": {
                        "name": bucket,
                        "ownerIdentity": {"principalId": "local"},
                        "arn": f"arn:aws:s3:::{bucket}",
                    },
                    "object": dict(obj),
                },
            }
        ]
    }


def from_settings(settings: Settings) -> LocalStorage:
    if not settings.token_secret:
        raise ValueError("local storage needs a signing secret (the runtime provides one)")
    return LocalStorage(settings.sessions_dir, settings.token_secret, settings.base_url)
