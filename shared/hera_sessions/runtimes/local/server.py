"""The local server (``make dev``): the v1 API, the local object endpoints and the demo page, on one port.

API requests are turned into HTTP API v2 events, as ``sam local start-api`` does, and answered by the same
routing table as the Lambda function. ``/local-storage/...`` behaves toward clients as S3 does: presigned
PUT, form POST and GET, S3's status codes and XML error documents, CORS from ``CORS_ALLOWED_ORIGINS``.
"""

from __future__ import annotations

import email.parser
import email.policy
import hashlib
import json
import logging
import mimetypes
import signal
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit
from xml.sax.saxutils import escape

from hera_sessions.backends.storage.local import ROUTE, LocalStorage, S3Error
from hera_sessions.http.cors import STORAGE_METHODS, storage_headers
from hera_sessions.http.event import answer_parts, http_api_event
from hera_sessions.runtime import Runtime

logger = logging.getLogger("hera_sessions.runtimes.local.server")

WEB_DIR = Path(__file__).resolve().parents[4] / "web"
_FORM_OVERHEAD = 64 * 1024  # room for the form fields around the file in a POST upload


def s3_error_xml(error: S3Error, resource: str) -> bytes:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{escape(error.code)}</Code><Message>{escape(error.message)}</Message>"
        f"<Resource>{escape(resource)}</Resource><RequestId>{uuid.uuid4().hex[:16].upper()}</RequestId></Error>"
    ).encode()


def parse_form(content_type: str, body: bytes) -> tuple[dict[str, str], bytes | None]:
    """A multipart/form-data body → (fields before the file, the file's bytes)."""
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + body
    )
    if not message.is_multipart():
        raise S3Error(
            400,
            "MalformedPOSTRequest",
            "The body of your POST request is not well-formed multipart/form-data.",
        )
    fields: dict[str, str] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True)
        if not isinstance(payload, bytes):
            payload = b""
        if name == "file":
            return fields, payload  # S3 ignores every field after the file
        if isinstance(name, str):
            try:
                fields[name] = payload.decode()
            except UnicodeDecodeError:
                raise S3Error(400, "InvalidArgument", f"The form field {name!r} is not UTF-8.") from None
    return fields, None


class Handler(BaseHTTPRequestHandler):
    server_version = "hera-sessions"
    protocol_version = "HTTP/1.1"
    runtime: Runtime  # set on the subclass made by make_server

    # -- plumbing ----------------------------------------------------------------------------------------
    def log_message(self, format: str, *args: Any) -> None:  # the request line holds signatures: not logged
        pass

    def _send(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
        self._status = status
        # Logged before the answer goes out, so the line exists by the time the client has its answer.
        elapsed = (time.perf_counter() - self._started) * 1000
        logger.info("%s %s %s %.1fms", self.command, urlsplit(self.path).path, status, elapsed)
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        if self.command != "HEAD" or "Content-Length" not in (headers or {}):
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if body and self.command != "HEAD":
            self.wfile.write(body)

    def _length(self) -> int | None:
        """The declared body length: None when absent; a malformed one is refused as S3 refuses it."""
        value = self.headers.get("Content-Length")
        if value is None:
            return None
        if not value.strip().isdigit():
            raise S3Error(400, "InvalidArgument", "Content-Length must be a non-negative whole number.")
        return int(value)

    def _body(self, limit: int) -> bytes:
        length = self._length() or 0
        if length > limit:
            raise S3Error(400, "EntityTooLarge", "Your proposed upload exceeds the maximum allowed size")
        return self.rfile.read(length) if length else b""

    def _handle(self) -> None:
        self._started = time.perf_counter()
        self._status = 0
        path = urlsplit(self.path).path
        try:
            if path == ROUTE or path.startswith(ROUTE + "/"):
                self._object(path)
            elif self.command in ("GET", "HEAD") and (path == "/" or path.startswith("/web/")):
                self._static(path)
            else:
                self._api()
        except Exception:  # never a stack trace to the client; the log has it
            logger.exception("unexpected error serving %s %s", self.command, path)
            if not self._status:
                self.close_connection = True
                self._send(500, b'{"error":{"code":"internal_error","message":"Something went wrong on our side."}}')

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_HEAD = _handle

    # -- the API -----------------------------------------------------------------------------------------
    def _api(self) -> None:
        try:
            body = self._body(self.runtime.settings.meta_max_bytes + _FORM_OVERHEAD)
        except S3Error as error:  # the API speaks JSON errors, not S3's XML
            self.close_connection = True  # the body is left unread
            code = "too_large" if error.code == "EntityTooLarge" else "invalid_input"
            status = 413 if error.code == "EntityTooLarge" else 400
            body_json = json.dumps({"error": {"code": code, "message": error.message}}).encode()
            self._send(status, body_json, {"Content-Type": "application/json"})
            return
        event = http_api_event(self.command, self.path, dict(self.headers.items()), body, self.client_address[0])
        status, headers, payload = answer_parts(self.runtime.handle_http(event))
        self._send(status, payload, headers)

    # -- the demo page -----------------------------------------------------------------------------------
    def _static(self, path: str) -> None:
        name = "index.html" if path == "/" else unquote(path.removeprefix("/web/"))
        target = (WEB_DIR / name.replace("\x00", "")).resolve()
        if "\x00" in name or WEB_DIR.resolve() not in target.parents or not target.is_file():
            self._send(404, b"Not found", {"Content-Type": "text/plain"})
            return
        ctype = mimetypes.guess_type(target.name)[0] or "application/octet-stream"
        if target.suffix in (".js", ".mjs"):
            ctype = "text/javascript"
        self._send(200, target.read_bytes(), {"Content-Type": ctype, "Cache-Control": "no-cache"})

    # -- the local object endpoints (S3's behaviour) -----------------------------------------------------
    @property
    def storage(self) -> LocalStorage:
        storage = self.runtime.service().storage
        assert isinstance(storage, LocalStorage)
        return storage

    def _cors(self) -> dict[str, str]:
        """The CORS headers the bucket sends: the same rules, from the same setting (:mod:`hera_sessions.http.cors`)."""
        return storage_headers(self.headers.get("Origin"), self.runtime.settings.cors_allowed_origins)

    def _object(self, path: str) -> None:
        key = unquote(path[len(ROUTE) + 1 :])
        cors = self._cors()
        try:
            if self.command == "OPTIONS":
                self._preflight(cors)
                return
            query = {k: v[0] for k, v in parse_qs(urlsplit(self.path).query).items()}
            if self.command == "PUT":
                self._put(key, query, cors)
            elif self.command == "POST" and not key:
                self._post(cors)
            elif self.command in ("GET", "HEAD"):
                self._get(key, query, cors)
            else:
                raise S3Error(405, "MethodNotAllowed", "The specified method is not allowed against this resource.")
        except S3Error as error:
            self.close_connection = True  # the body may be unread
            if self.command == "OPTIONS":  # a refused preflight allows nothing
                cors = {}
            headers = {"Content-Type": "application/xml", "x-amz-error-code": error.code, **cors}
            self._send(error.status, s3_error_xml(error, "/" + key), headers)

    def _preflight(self, allowed: dict[str, str]) -> None:
        if not self.headers.get("Origin"):
            raise S3Error(400, "BadRequest", "Insufficient information. Origin request header needed.")
        method = self.headers.get("Access-Control-Request-Method", "")
        if not allowed or method not in STORAGE_METHODS:
            raise S3Error(
                403,
                "AccessForbidden",
                "CORSResponse: This CORS request is not allowed. This is usually because the evalution of Origin, "
                "request method / Access-Control-Request-Method or Access-Control-Request-Headers are not "
                "whitelisted by the resource's CORS spec.",
            )
        requested = self.headers.get("Access-Control-Request-Headers")
        headers = dict(allowed)
        if requested:
            headers["Access-Control-Allow-Headers"] = requested
        self._send(200, b"", headers)

    def _put(self, key: str, query: dict[str, str], cors: dict[str, str]) -> None:
        self.storage.verify_put(key, query, self.headers.get("Content-Type"), self._length())
        stored = self.storage.write(key, self._body(int(query["X-Hera-Size"])))
        self._send(200, b"", {"ETag": stored.etag, **cors})

    def _post(self, cors: dict[str, str]) -> None:
        ctype = self.headers.get("Content-Type", "")
        if not ctype.startswith("multipart/form-data"):
            raise S3Error(412, "PreconditionFailed", "Bucket POST must be of the enclosure-type multipart/form-data")
        body = self._body(self.runtime.settings.upload_max_bytes + _FORM_OVERHEAD)
        fields, file = parse_form(ctype, body)
        if file is None:
            raise S3Error(400, "InvalidArgument", "POST requires exactly one file upload per request.")
        key = self.storage.verify_post(fields, len(file))
        stored = self.storage.write(key, file)
        self._send(204, b"", {"ETag": stored.etag, "Location": f"/{key}", **cors})

    def _get(self, key: str, query: dict[str, str], cors: dict[str, str]) -> None:
        ctype, disposition = self.storage.verify_get(key, query)
        target = self.storage.open(key)
        body = target.read_bytes()
        headers = {
            "Content-Type": ctype or "application/octet-stream",
            "Content-Disposition": disposition,
            "ETag": f'"{hashlib.md5(body, usedforsecurity=False).hexdigest()}"',
            "Cache-Control": "private, max-age=60",
            **cors,
        }
        self._send(200, body, headers)


class LocalServer:
    """The local server on a thread (tests) or in the foreground (``make dev``)."""

    def __init__(self, runtime: Runtime, host: str | None = None, port: int | None = None) -> None:
        self.runtime = runtime
        handler = type("BoundHandler", (Handler,), {"runtime": runtime})
        self.httpd = ThreadingHTTPServer(
            (host or runtime.settings.host, runtime.settings.port if port is None else port), handler
        )
        self.httpd.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def sweep_forever(self, every: float = 3600) -> None:
        """Expire old objects as the bucket lifecycle would (``OBJECT_EXPIRY_DAYS``), now and then hourly."""

        def run() -> None:
            storage = self.runtime.service().storage
            while True:
                if isinstance(storage, LocalStorage):
                    expired = storage.expire(self.runtime.settings.object_expiry_days * 86_400)
                    if expired:
                        logger.info(
                            "lifecycle: %d objects older than %d days deleted",
                            expired,
                            self.runtime.settings.object_expiry_days,
                        )
                time.sleep(every)

        threading.Thread(target=run, name="hera-lifecycle", daemon=True).start()

    def start(self) -> LocalServer:
        self._thread = threading.Thread(target=self.httpd.serve_forever, name="hera-local", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        if self._thread:
            self._thread.join(5)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def serve(overrides: dict[str, str] | None = None) -> None:
    """Run until Ctrl-C or SIGTERM; the runtime is built before the first request, so bad settings fail fast."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from hera_sessions.core.errors import ConfigError

    runtime = Runtime(overrides)
    try:
        runtime.service()
    except ConfigError as exc:
        print(f"hera-sessions: {exc.message}", file=sys.stderr)
        raise SystemExit(2) from None
    server = LocalServer(runtime)
    server.sweep_forever()
    settings = runtime.settings
    print(
        f"hera-sessions serving {server.url} (storage: {settings.storage_backend}, "
        f"metadata: {settings.session_type}, data: {settings.sessions_dir}); Ctrl-C stops it",
        flush=True,
    )
    for signum in (signal.SIGINT, signal.SIGTERM):  # also when started with SIGINT ignored (a background job)
        signal.signal(signum, _interrupt)
    try:
        server.httpd.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.httpd.server_close()
        runtime.service().metadata.close()
        print("hera-sessions stopped", flush=True)


if __name__ == "__main__":
    serve()
