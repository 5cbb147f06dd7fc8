"""The local server's WSGI app: the v1 API, the local object endpoints and the demo page, on one port.

API requests are turned into HTTP API v2 events, as ``sam local start-api`` does, and answered by the same
routing table as the Lambda function. ``/local-storage/...`` behaves toward clients as S3 does: presigned
PUT, form POST and GET, S3's status codes and XML error documents, CORS from ``CORS_ALLOWED_ORIGINS``.
The server (waitress) has read the whole body before the app runs: a request whose body is shorter than its
``Content-Length`` never reaches it.
"""

from __future__ import annotations

import hashlib
import http
import json
import logging
import mimetypes
import re
import time
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO
from urllib.parse import parse_qs, unquote, urlsplit
from xml.sax.saxutils import escape

from hera_sessions.backends.storage.local import ROUTE, LocalStorage, S3Error, entity_too_large
from hera_sessions.http import routes
from hera_sessions.http.cors import STORAGE_METHODS, origin_allowed, storage_headers
from hera_sessions.http.event import answer_parts, http_api_event
from hera_sessions.runtime import Runtime
from hera_sessions.runtimes.local.form import FormUpload

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

logger = logging.getLogger("hera_sessions.runtimes.local.server")

WEB_DIR = Path(__file__).resolve().parents[4] / "web"
FORM_OVERHEAD = 64 * 1024  # room for the form fields around the file in a POST upload
#: The environ key that says the body came with ``Transfer-Encoding: chunked`` (set by the server).
CHUNKED = "hera.chunked"
#: The route whose body is a metadata document (its size limit is META_MAX_BYTES).
META_ROUTE = next(route for route in routes.ROUTES if route.handler == "put_meta")

BUCKET_METHODS = ("GET", "HEAD", "OPTIONS", "POST")  # /local-storage/: form POST uploads
OBJECT_METHODS = ("GET", "HEAD", "OPTIONS", "PUT")  # /local-storage/{key}: presigned PUT and GET
PAGE_METHODS = ("GET", "HEAD")

Answer = tuple[int, dict[str, str], bytes]


def status_line(status: int) -> str:
    try:
        return f"{status} {http.HTTPStatus(status).phrase}"
    except ValueError:
        return f"{status} Unknown"


def json_error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> Answer:
    body = json.dumps({"error": {"code": code, "message": message}}).encode()
    return status, {"Content-Type": "application/json", "Cache-Control": "no-store", **(headers or {})}, body


def s3_error_xml(error: S3Error, resource: str) -> bytes:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{escape(error.code)}</Code><Message>{escape(error.message)}</Message>"
        f"<Resource>{escape(resource)}</Resource><RequestId>{uuid.uuid4().hex[:16].upper()}</RequestId></Error>"
    ).encode()


def s3_error(error: S3Error, resource: str, headers: dict[str, str] | None = None) -> Answer:
    return (
        error.status,
        {"Content-Type": "application/xml", "x-amz-error-code": error.code, **(headers or {})},
        s3_error_xml(error, resource),
    )


def is_object_path(path: str) -> bool:
    return path == ROUTE or path.startswith(ROUTE + "/")


def is_page_path(path: str) -> bool:
    return path == "/" or path.startswith("/web/")


def allowed_methods(path: str) -> list[str]:
    """The methods served at ``path`` (the ``Allow`` header of every 405); none: no route there (404)."""
    if is_object_path(path):
        return list(BUCKET_METHODS if path in (ROUTE, ROUTE + "/") else OBJECT_METHODS)
    if is_page_path(path):
        return list(PAGE_METHODS)
    methods = set(routes.allowed_methods(path))  # the API's routes (http/routes.py)
    if not methods:
        return []
    if "GET" in methods:
        methods.add("HEAD")  # answered as GET without the body
    return sorted({*methods, "OPTIONS"})


def read_chunks(stream: BinaryIO, length: int, size: int = 64 * 1024) -> Iterator[bytes]:
    """``length`` bytes of ``stream``, a piece at a time."""
    while length > 0:
        chunk = stream.read(min(size, length))
        if not chunk:
            return
        length -= len(chunk)
        yield chunk


class Request:
    """What the app reads of one WSGI request."""

    def __init__(self, environ: WSGIEnvironment) -> None:
        self.environ = environ
        self.method: str = environ["REQUEST_METHOD"].upper()
        self.target: str = environ.get("REQUEST_URI") or environ.get("PATH_INFO") or "/"
        self.path: str
        self.query: str
        if self.target.startswith("/"):  # origin form: "//health" is a path, not an authority
            path, _, self.query = self.target.partition("?")
            self.path = path.partition("#")[0]
        else:  # absolute form (http://host/path?query)
            parts = urlsplit(self.target)
            self.path, self.query = parts.path or "/", parts.query
        self.headers: dict[str, str] = {}
        for name, value in environ.items():
            if name.startswith("HTTP_"):
                self.headers[name[5:].replace("_", "-").title()] = value
        for name in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            if environ.get(name):
                self.headers[name.replace("_", "-").title()] = environ[name]
        self.client = str(environ.get("REMOTE_ADDR", "127.0.0.1"))

    def header(self, name: str) -> str | None:
        return self.headers.get(name.title())

    def length(self) -> int | None:
        """The declared body length (the server has checked it is ASCII digits); None for a chunked body."""
        value = self.environ.get("CONTENT_LENGTH")
        if self.environ.get(CHUNKED):
            return None
        return int(value) if value else None


SESSION_IN_PATH = re.compile(r"/v1/sessions/([^/]+)")
REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")


def _request_id(given: str | None) -> str:
    """The client's X-Request-Id when it is a sane one, else a new one: answered back and on the log line."""
    return given if given and REQUEST_ID.fullmatch(given) else uuid.uuid4().hex[:16]


def _error_code(body: bytes) -> str:
    """The stable code of an error answer (the API's JSON or the object endpoints' S3 XML)."""
    try:
        return str(json.loads(body)["error"]["code"])
    except (ValueError, KeyError, TypeError):
        found = re.search(rb"<Code>([^<]+)</Code>", body)
        return found.group(1).decode() if found else "-"


class LocalApp:
    """The WSGI app of ``make dev``."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self._refused_origins: set[str] = set()

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        started = time.perf_counter()
        request = Request(environ)
        request_id = _request_id(request.header("X-Request-Id"))
        self._note_origin(request.header("Origin"))
        try:
            status, headers, body = self.answer(request)
        except Exception:  # never a stack trace to the client; the log has it
            logger.exception("unexpected error serving %s %s (request %s)", request.method, request.path, request_id)
            status, headers, body = json_error(500, "internal_error", "Something went wrong on our side.")
        headers["X-Request-Id"] = request_id
        # Logged before the answer goes out, so the line exists by the time the client has its answer: what one
        # needs to find the request again (its id, the session) and, for an error, its stable code.
        elapsed = (time.perf_counter() - started) * 1000
        session = SESSION_IN_PATH.match(request.path)
        logger.log(
            logging.WARNING if status >= 500 else logging.INFO,
            "%s %s %s %.1fms request=%s session=%s%s",
            request.method,
            request.path,
            status,
            elapsed,
            request_id,
            session.group(1) if session else "-",
            f" code={_error_code(body)}" if status >= 400 else "",
        )
        if request.method != "HEAD" or "Content-Length" not in headers:
            headers["Content-Length"] = str(len(body))
        start_response(status_line(status), list(headers.items()))
        return [b""] if request.method == "HEAD" else [body]

    def _note_origin(self, origin: str | None) -> None:
        """A browser origin the API will not answer is logged once, with how to allow it (the browser itself only
        reports a network error)."""
        if not origin or origin in self._refused_origins:
            return
        if not origin_allowed(origin, self.runtime.settings.browser_origins):
            self._refused_origins.add(origin)
            logger.warning(
                "refused the browser origin %s (CORS): to allow it, add it to CORS_ALLOWED_ORIGINS "
                "(comma-separated, e.g. CORS_ALLOWED_ORIGINS=%s make dev)",
                origin,
                origin,
            )

    def answer(self, request: Request) -> Answer:
        allowed = allowed_methods(request.path)
        if not allowed:
            return json_error(404, "route_not_found", f"No route {request.path}.")
        if request.method not in allowed:
            message = f"{request.method} is not served here; use {', '.join(allowed)}."
            if is_object_path(request.path):  # S3's answer
                key = "/" + unquote(request.path[len(ROUTE) + 1 :])
                return s3_error(S3Error(405, "MethodNotAllowed", message), key, {"Allow": ", ".join(allowed)})
            return json_error(405, "method_not_allowed", message, {"Allow": ", ".join(allowed)})
        if is_object_path(request.path):
            return self._object(request)
        if is_page_path(request.path):
            return self._static(request.path)
        return self._api(request, allowed)

    def too_large(self, path: str) -> Answer:
        """The answer to an API request body over its route's limit (before or after the server read it)."""
        settings = self.runtime.settings
        if META_ROUTE.matches(path):
            return json_error(
                413, "meta_too_large", f"A metadata document may be at most {settings.meta_max_bytes} bytes."
            )
        return json_error(413, "too_large", f"A request body may be at most {self.api_body_limit} bytes.")

    @property
    def api_body_limit(self) -> int:
        """The largest body an API route other than the metadata one takes (its JSON requests are small)."""
        return self.runtime.settings.meta_max_bytes + FORM_OVERHEAD

    # -- the API -----------------------------------------------------------------------------------------
    def _api(self, request: Request, allowed: list[str]) -> Answer:
        length = int(request.environ.get("CONTENT_LENGTH") or 0)
        # The metadata route's own limit is the service's rule (put_meta); the server caps what it reads.
        if length > self.api_body_limit and not META_ROUTE.matches(request.path):
            return self.too_large(request.path)
        body = bytes(request.environ["wsgi.input"].read(length)) if length else b""
        method = "GET" if request.method == "HEAD" else request.method  # HEAD: GET's answer, without the body
        event = http_api_event(method, request.target, request.headers, body, request.client)
        status, headers, answer = answer_parts(self.runtime.handle_http(event))
        if "Allow" in headers:
            headers["Allow"] = ", ".join(allowed)  # one list of methods per route, whoever answers
        return status, headers, answer

    # -- the demo page -----------------------------------------------------------------------------------
    def _static(self, path: str) -> Answer:
        name = "index.html" if path == "/" else unquote(path.removeprefix("/web/"))
        target = (WEB_DIR / name.replace("\x00", "")).resolve()
        if "\x00" in name or WEB_DIR.resolve() not in target.parents or not target.is_file():
            return 404, {"Content-Type": "text/plain"}, b"Not found"
        ctype = mimetypes.guess_type(target.name)[0] or "application/octet-stream"
        if target.suffix in (".js", ".mjs"):
            ctype = "text/javascript"
        return 200, {"Content-Type": ctype, "Cache-Control": "no-cache"}, target.read_bytes()

    # -- the local object endpoints (S3's behaviour) -----------------------------------------------------
    @property
    def storage(self) -> LocalStorage:
        storage = self.runtime.service().storage
        assert isinstance(storage, LocalStorage)
        return storage

    def _object(self, request: Request) -> Answer:
        key = unquote(request.path[len(ROUTE) + 1 :])
        # The CORS headers the bucket sends: the same rules, from the same setting (hera_sessions.http.cors).
        cors = storage_headers(request.header("Origin"), self.runtime.settings.browser_origins)
        try:
            if request.method == "OPTIONS":
                return self._preflight(request, cors)
            query = {k: v[0] for k, v in parse_qs(request.query).items()}
            if request.method == "PUT":
                return self._put(request, key, query, cors)
            if request.method == "POST" and not key:
                return self._post(request, cors)
            return self._get(key, query, cors)  # GET or HEAD: answer() let no other method through
        except S3Error as error:
            if request.method == "OPTIONS":  # a refused preflight allows nothing
                cors = {}
            return s3_error(error, "/" + key, cors)

    def _preflight(self, request: Request, allowed: dict[str, str]) -> Answer:
        if not request.header("Origin"):
            raise S3Error(400, "BadRequest", "Insufficient information. Origin request header needed.")
        method = request.header("Access-Control-Request-Method") or ""
        if not allowed or method not in STORAGE_METHODS:
            raise S3Error(
                403,
                "AccessForbidden",
                "CORSResponse: This CORS request is not allowed. This is usually because the evalution of Origin, "
                "request method / Access-Control-Request-Method or Access-Control-Request-Headers are not "
                "whitelisted by the resource's CORS spec.",
            )
        requested = request.header("Access-Control-Request-Headers")
        headers = dict(allowed)
        if requested:
            headers["Access-Control-Allow-Headers"] = requested
        return 200, headers, b""

    def _put(self, request: Request, key: str, query: dict[str, str], cors: dict[str, str]) -> Answer:
        length = request.length()
        md5, condition = request.header("Content-MD5"), request.header("If-None-Match")
        self.storage.verify_put(
            key, query, request.header("Content-Type"), length, {"Content-MD5": md5, "If-None-Match": condition}
        )
        chunks = read_chunks(request.environ["wsgi.input"], length or 0)
        stored = self.storage.write(key, chunks, content_md5=md5, if_none_match=condition)
        return 200, {"ETag": stored.etag, **cors}, b""

    def _post(self, request: Request, cors: dict[str, str]) -> Answer:
        ctype = request.header("Content-Type") or ""
        if not ctype.startswith("multipart/form-data"):
            raise S3Error(412, "PreconditionFailed", "Bucket POST must be of the enclosure-type multipart/form-data")
        # Streamed: the fields, then the policy and signature, then the file into a staging file.
        form = FormUpload(ctype, request.environ["wsgi.input"], int(request.environ.get("CONTENT_LENGTH") or 0))
        if not form.read_fields():
            form.finish()
            raise S3Error(400, "InvalidArgument", "POST requires exactly one file upload per request.")
        key = self.storage.verify_post(form.fields, None)

        def check_size(size: int) -> None:
            self.storage.verify_post(form.fields, size)

        stored = self.storage.write(key, form.file_chunks(self.runtime.settings.upload_max_bytes), check_size)
        return 204, {"ETag": stored.etag, "Location": f"/{key}", **cors}, b""

    def _get(self, key: str, query: dict[str, str], cors: dict[str, str]) -> Answer:
        ctype, disposition = self.storage.verify_get(key, query)
        body = self.storage.open(key).read_bytes()
        headers = {
            "Content-Type": ctype or "application/octet-stream",
            "Content-Disposition": disposition,
            "ETag": f'"{hashlib.md5(body, usedforsecurity=False).hexdigest()}"',
            "Cache-Control": "private, max-age=60",
            **cors,
        }
        return 200, headers, body


def error_answer(
    app: LocalApp, path: str, status: int, reason: str, *, s3_code: str | None = None, json_code: str | None = None
) -> Answer:
    """The answer to a request the server refused before the app (bad framing): JSON, or S3's XML."""
    if is_object_path(path):
        if status == 413:  # S3 refuses an oversize upload with 400 EntityTooLarge
            return s3_error(entity_too_large(), path)
        code = s3_code or {400: "InvalidArgument", 431: "RequestHeaderSectionTooLarge"}.get(
            status, "NotImplemented" if status == 501 else "InternalError"
        )
        return s3_error(S3Error(status, code, reason), path)
    if status == 413:
        return app.too_large(path)
    code = json_code or {400: "invalid_request", 431: "headers_too_large", 501: "not_implemented"}.get(
        status, "internal_error"
    )
    return json_error(status, code, reason)
