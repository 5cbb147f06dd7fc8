"""The v1 HTTP API: the route set of :mod:`hera_sessions.http.routes` on Powertools' ``APIGatewayHttpResolver``
(HTTP API payload v2), which every runtime serves: the Lambda API function, Cloud Functions, Azure Functions
and the local server.

Errors are mapped to HTTP here, once: a :class:`HeraError` becomes ``{"error": {"code", "message"}}`` with its
status; anything unexpected becomes a 500 ``internal_error`` with no details (logged, never echoed).
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote

from aws_lambda_powertools.event_handler.api_gateway import APIGatewayHttpResolver, CORSConfig, Response
from aws_lambda_powertools.event_handler.exceptions import NotFoundError as RouteNotFound

from hera_sessions.config import Settings
from hera_sessions.core import keys
from hera_sessions.core.errors import HeraError, InvalidInputError, MethodNotAllowedError, NotFoundError
from hera_sessions.core.jsonio import load_json
from hera_sessions.core.models import UploadRequest, iso
from hera_sessions.core.service import SessionService, check_name
from hera_sessions.http.routes import ROUTES, allowed_methods

logger = logging.getLogger("hera_sessions.http.api")

JSON = "application/json"


#: API answers carry tokens and signed URLs: never cached.
NO_STORE = {"Cache-Control": "no-store"}


def _json(status: int, body: Any, headers: dict[str, str] | None = None) -> Response[Any]:
    return Response(
        status_code=status, content_type=JSON, body=json.dumps(body), headers={**NO_STORE, **(headers or {})}
    )


def _empty(status: int = 204, headers: dict[str, str] | None = None) -> Response[Any]:
    return Response(status_code=status, body="", headers={**NO_STORE, **(headers or {})})


def _error(exc: HeraError, headers: dict[str, str] | None = None) -> Response[Any]:
    return _json(exc.status, exc.to_body(), headers)


def _object(raw: bytes | None, required: set[str], optional: set[str] = frozenset()) -> dict[str, Any]:  # type: ignore[assignment]
    body = load_json(raw)
    if not isinstance(body, dict):
        raise InvalidInputError("The body must be a JSON object.", "invalid_body")
    missing = sorted(required - body.keys())
    if missing:
        raise InvalidInputError(f"Missing field(s): {', '.join(missing)}.", "missing_field")
    unknown = sorted(body.keys() - required - optional)
    if unknown:
        raise InvalidInputError(f"Unknown field(s): {', '.join(unknown)}.", "unknown_field")
    return body


def _int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInputError(f"'{name}' must be a whole number (a JSON integer).", f"invalid_{name}")
    return value


def parse_upload_request(raw: bytes | None) -> UploadRequest:
    body = _object(raw, {"path", "content_type", "size"}, {"method", "name", "content_md5", "overwrite"})
    size = _int(body["size"], "size")
    if size <= 0:
        raise InvalidInputError("'size' must be at least 1 byte.", "invalid_size")
    if not isinstance(body["content_type"], str):
        raise InvalidInputError("'content_type' must be a string such as image/png.", "invalid_content_type")
    method = body.get("method", "PUT")
    if not isinstance(method, str) or method.upper() not in ("PUT", "POST"):
        raise InvalidInputError("'method' must be PUT or POST.", "invalid_method")
    overwrite = body.get("overwrite", False)
    if not isinstance(overwrite, bool):
        raise InvalidInputError("'overwrite' must be true or false.", "invalid_overwrite")
    if "name" in body and body["name"] is None:
        check_name(None)  # a JSON null is not "no name": refused as the service refuses any non-string
    # The path, the name and the MD5 are checked once, by SessionService.create_upload (the one rule for them).
    return UploadRequest(
        body["path"],
        body["content_type"],
        size,
        method.upper(),  # type: ignore[arg-type]
        name=body.get("name"),
        content_md5=body.get("content_md5"),
        overwrite=overwrite,
    )


def parse_parts(raw: bytes | None) -> list[tuple[int, str]]:
    body = _object(raw, {"parts"})
    parts = body["parts"]
    if not isinstance(parts, list) or not parts:
        raise InvalidInputError("'parts' must be a non-empty list.", "invalid_parts")
    out = []
    for part in parts:
        if not isinstance(part, dict) or set(part) != {"part_number", "etag"} or not isinstance(part["etag"], str):
            raise InvalidInputError('Each part is {"part_number": 1, "etag": "..."}.', "invalid_parts")
        number = _int(part["part_number"], "part_number")
        if not 1 <= number <= 10_000:
            raise InvalidInputError("Part numbers run from 1 to 10000.", "invalid_parts")
        out.append((number, part["etag"]))
    return sorted(out)


def _tail(path: str, session_id: str) -> str:
    """The ``{path+}`` part of ``/v1/sessions/{id}/files/{path+}``, percent-decoded exactly once."""
    raw = path.split(f"/v1/sessions/{session_id}/files/", 1)[1]
    try:
        decoded = unquote(raw, errors="strict")
    except UnicodeDecodeError:
        raise InvalidInputError("The path is not valid UTF-8 once decoded.", "invalid_path") from None
    return keys.check_path(decoded)


def create_app(settings: Settings, service: Callable[[], SessionService]) -> APIGatewayHttpResolver:
    """The API for these settings; ``service`` builds (once) the service the routes call."""
    cors = None
    if settings.browser_origins:
        first, *rest = settings.browser_origins
        cors = CORSConfig(allow_origin=first, extra_origins=rest, max_age=600, expose_headers=["Location"])
    app = APIGatewayHttpResolver(cors=cors)

    def authorization() -> str | None:
        return app.current_event.headers.get("authorization")

    def authorized(session_id: str) -> SessionService:
        svc = service()
        svc.authorize(session_id, authorization())
        return svc

    def body() -> bytes:
        """The raw body bytes (base64 undone); load_json checks they are UTF-8 JSON."""
        event = app.current_event
        raw = event.get("body") or ""
        try:
            return base64.b64decode(raw, validate=True) if event.is_base64_encoded else raw.encode("utf-8")
        except (binascii.Error, UnicodeEncodeError):  # bad base64, or a str holding lone surrogates
            raise InvalidInputError("The body is not valid UTF-8 JSON.", "invalid_json") from None

    handlers: dict[str, Callable[..., Response[Any]]] = {}

    def handler(fn: Callable[..., Response[Any]]) -> Callable[..., Response[Any]]:
        handlers[fn.__name__] = fn
        return fn

    @handler
    def health() -> Response[Any]:
        checks = service().health()
        ok = all(v == "ok" for v in checks.values())
        return _json(200 if ok else 503, {"status": "ok" if ok else "unavailable", "checks": checks})

    @handler
    def openapi() -> Response[Any]:
        from hera_sessions.http.openapi import document

        return _json(200, document(settings))

    @handler
    def create_session() -> Response[Any]:
        created = service().create_session(authorization())
        return _json(201, created.to_json())

    @handler
    def erase_session(session_id: str) -> Response[Any]:
        authorized(session_id).erase_session(session_id)
        return _empty()

    @handler
    def create_upload(session_id: str) -> Response[Any]:
        svc = authorized(session_id)
        ticket = svc.create_upload(session_id, parse_upload_request(body()))
        return _json(201, ticket.to_json())

    @handler
    def complete_upload(session_id: str, upload_id: str) -> Response[Any]:
        svc = authorized(session_id)
        return _json(200, svc.complete_upload(session_id, upload_id, parse_parts(body())))

    @handler
    def abort_upload(session_id: str, upload_id: str) -> Response[Any]:
        authorized(session_id).abort_upload(session_id, upload_id)
        return _empty()

    @handler
    def list_files(session_id: str) -> Response[Any]:
        files = authorized(session_id).list_files(session_id)
        return _json(200, {"files": [f.to_json() for f in files]})

    @handler
    def get_file(session_id: str) -> Response[Any]:
        svc = authorized(session_id)
        download = svc.download(session_id, _tail(app.current_event.path, session_id))
        if app.current_event.query_string_parameters.get("redirect", "").lower() in ("true", "1"):
            return _empty(302, {"Location": download.url})
        return _json(200, {"url": download.url, "expires_at": iso(download.expires_at), **download.record.to_json()})

    @handler
    def delete_file(session_id: str) -> Response[Any]:
        authorized(session_id).delete_file(session_id, _tail(app.current_event.path, session_id))
        return _empty()

    @handler
    def put_meta(session_id: str, name: str) -> Response[Any]:
        authorized(session_id).put_meta(session_id, name, body())
        return _empty()

    @handler
    def get_meta(session_id: str, name: str) -> Response[Any]:
        return _json(200, authorized(session_id).get_meta(session_id, name))

    @handler
    def delete_meta(session_id: str, name: str) -> Response[Any]:
        authorized(session_id).delete_meta(session_id, name)
        return _empty()

    for route in ROUTES:
        app.route(route.rule, route.method)(handlers[route.handler])

    @app.exception_handler(HeraError)
    def hera_error(exc: HeraError) -> Response[Any]:
        if exc.status >= 500:
            logger.warning("request failed", extra={"code": exc.code, "path": app.current_event.path})
        return _error(exc)

    @app.not_found
    def not_found(_: RouteNotFound) -> Response[Any]:
        path, method = app.current_event.path, app.current_event.http_method.upper()
        allowed = allowed_methods(path)
        if method == "OPTIONS":
            return _empty(204, {"Allow": ", ".join([*allowed, "OPTIONS"])})
        if allowed:
            exc: HeraError = MethodNotAllowedError(f"{method} is not served here; use {', '.join(allowed)}.")
            return _error(exc, {"Allow": ", ".join(allowed)})
        return _error(NotFoundError(f"No route {path}.", "route_not_found"))

    @app.exception_handler(Exception)
    def unexpected(exc: Exception) -> Response[Any]:
        logger.exception("unexpected error", extra={"path": app.current_event.path})
        return _json(500, {"error": {"code": "internal_error", "message": "Something went wrong on our side."}})

    return app
