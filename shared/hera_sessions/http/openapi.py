"""The OpenAPI 3.1 document of the v1 API (served at ``GET /openapi.json``), rendered from the route set
(:data:`hera_sessions.http.routes.ROUTES`) and the components below, which follow the settings.
"""

from __future__ import annotations

import re
from typing import Any

from hera_sessions.config import Settings
from hera_sessions.core import keys
from hera_sessions.core.service import MAX_NAME_BYTES
from hera_sessions.http.routes import ERRORS, PARAMETERS, QUERY, ROUTES, SEGMENT, Route, Schema


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: Schema, description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _parameter(name: str, where: str) -> dict[str, Any]:
    spec = (PARAMETERS if where == "path" else QUERY)[name]
    return {"name": name, "in": where, **({"required": True} if where == "path" else {}), **spec}


def _operation(route: Route) -> dict[str, Any]:
    responses: dict[str, Any] = {}
    for answer in route.answers:
        responses[str(answer.status)] = (
            _json(answer.schema, answer.description)
            if answer.schema is not None
            else {"description": answer.description}
        )
    if route.links:
        first = str(route.answers[0].status)
        responses[first]["links"] = {
            link.handler: {"operationId": link.handler, "parameters": dict(link.parameters)} for link in route.links
        }
    for status in route.errors:
        responses[str(status)] = _json(_ref("Error"), ERRORS[status])
    operation: dict[str, Any] = {"operationId": route.handler, "summary": route.summary}
    parameters = [_parameter(n, "path") for n in route.parameters] + [_parameter(n, "query") for n in route.query]
    if parameters:
        operation["parameters"] = parameters
    if route.auth:
        operation["security"] = [{"bearer": []}]
    if route.request is not None:
        operation["requestBody"] = {"required": True, "content": {"application/json": {"schema": route.request}}}
    operation["responses"] = responses
    return operation


def paths() -> dict[str, Any]:
    """The ``paths`` object: one entry a route template, one operation a route."""
    out: dict[str, dict[str, Any]] = {}
    for route in ROUTES:
        out.setdefault(route.path, {})[route.method.lower()] = _operation(route)
    return out


def _upload_request(settings: Settings) -> dict[str, Any]:
    """One variant a content type, whose path must end in one of its extensions (``keys.check_type_fits``)."""
    variants: list[dict[str, Any]] = []
    for ctype in settings.allowed_content_types:
        names = "|".join(re.escape(ext[1:]) for ext in keys.EXTENSIONS_BY_TYPE.get(ctype, ()))
        if names:
            path = {"pattern": f"^({SEGMENT}/)*{SEGMENT}\\.({names})$"}
            variants.append({"properties": {"content_type": {"const": ctype}, "path": path}})
    return {
        "type": "object",
        "required": ["path", "content_type", "size"],
        "additionalProperties": False,
        "properties": {
            "path": {"type": "string", "maxLength": keys.MAX_PATH_BYTES, "examples": ["photos/user.png"]},
            "content_type": {"type": "string", "enum": list(settings.allowed_content_types)},
            "size": {"type": "integer", "minimum": 1, "maximum": settings.upload_max_bytes},
            "method": {"type": "string", "enum": ["PUT", "POST"], "default": "PUT"},
            "name": {
                "type": "string",
                "description": "The file's name as the person gave it: any Unicode (stored NFC-normalised), at most "
                f"{MAX_NAME_BYTES} bytes of UTF-8, no control characters (C0, DEL, C1). Default: the path's last "
                "segment. Downloads save under it (Content-Disposition filename*).",
                "minLength": 1,
                # characters, not bytes: JSON Schema cannot count UTF-8 bytes (the server does: invalid_name)
                "maxLength": MAX_NAME_BYTES,
                "pattern": "^[^\\u0000-\\u001f\\u007f-\\u009f]+$",
                "examples": ["東京タワー 2026.jpg"],
            },
            "content_md5": {
                "type": "string",
                "description": "Base64 of the file's 16-byte MD5, as the Content-MD5 header: storage refuses other "
                "bytes where it can verify them, and the record keeps it.",
                "pattern": "^[A-Za-z0-9+/]{22}==$",
                "examples": ["1B2M2Y8AsgTpgAmY7PhCfg=="],
            },
            "overwrite": {
                "type": "boolean",
                "default": False,
                "description": "false: a path holding a file (or another file's pending upload) is 409 "
                "file_exists, and storage refuses to replace an object. true: replace it.",
            },
        },
        **({"oneOf": variants} if variants else {}),
    }


def document(settings: Settings) -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "hera-sessions",
            "version": "1",
            "description": "Session files for Hera: presigned uploads straight to object storage, "
            "file records from storage events, signed downloads, and session documents.",
        },
        "servers": [{"url": "/"}],
        "components": {
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "A session token (from POST /v1/sessions) or a service key.",
                }
            },
            "schemas": {
                "Error": {
                    "type": "object",
                    "required": ["error"],
                    "properties": {
                        "error": {
                            "type": "object",
                            "required": ["code", "message"],
                            "properties": {"code": {"type": "string"}, "message": {"type": "string"}},
                        }
                    },
                },
                "Session": {
                    "type": "object",
                    "required": ["session_id", "token", "expires_at"],
                    "properties": {
                        "session_id": {"type": "string"},
                        "token": {"type": "string"},
                        "expires_at": {"type": "string", "format": "date-time"},
                    },
                },
                "UploadRequest": _upload_request(settings),
                "UploadTicket": {
                    "type": "object",
                    "required": [
                        "protocol",
                        "method",
                        "url",
                        "headers",
                        "fields",
                        "key",
                        "upload_id",
                        "expires_at",
                    ],
                    "properties": {
                        "protocol": {
                            "type": "string",
                            "enum": ["put", "post", "s3-multipart", "gcs-resumable", "azure-blocks"],
                        },
                        "method": {"type": "string"},
                        "url": {"type": "string"},
                        "headers": {"type": "object", "additionalProperties": {"type": "string"}},
                        "fields": {"type": "object", "additionalProperties": {"type": "string"}},
                        "key": {"type": "string"},
                        "upload_id": {"type": ["string", "null"]},
                        "expires_at": {"type": "string", "format": "date-time"},
                        "part_size": {"type": "integer"},
                        "parts": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "properties": {"part_number": {"type": "integer"}, "url": {"type": "string"}},
                            },
                        },
                    },
                },
                "CompleteRequest": {
                    "type": "object",
                    "required": ["parts"],
                    "additionalProperties": False,
                    "properties": {
                        "parts": {
                            "type": "array",
                            "minItems": 1,
                            "items": {
                                "type": "object",
                                "required": ["part_number", "etag"],
                                "additionalProperties": False,
                                "properties": {
                                    "part_number": {"type": "integer", "minimum": 1, "maximum": 10_000},
                                    "etag": {"type": "string"},
                                },
                            },
                        }
                    },
                },
                "File": {
                    "type": "object",
                    "required": [
                        "path",
                        "size",
                        "content_type",
                        "etag",
                        "uploaded_at",
                        "name",
                        "content_md5",
                        "width",
                        "height",
                        "location",
                    ],
                    "properties": {
                        "path": {"type": "string"},
                        "size": {"type": "integer"},
                        "content_type": {"type": "string"},
                        "etag": {"type": ["string", "null"]},
                        "uploaded_at": {"type": "string", "format": "date-time"},
                        "name": {"type": ["string", "null"], "description": "The name given (NFC)"},
                        "content_md5": {"type": ["string", "null"], "description": "Base64 MD5 declared"},
                        "width": {"type": ["integer", "null"]},
                        "height": {"type": ["integer", "null"]},
                        "location": {"type": ["string", "null"], "enum": ["none", "stripped", "kept", None]},
                    },
                },
                "Download": {
                    "allOf": [
                        _ref("File"),
                        {
                            "type": "object",
                            "required": ["url", "expires_at"],
                            "properties": {
                                "url": {"type": "string"},
                                "expires_at": {"type": "string", "format": "date-time"},
                            },
                        },
                    ]
                },
            },
        },
        "paths": paths(),
    }
