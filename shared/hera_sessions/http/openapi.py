"""The OpenAPI 3.1 document of the v1 API (served at ``GET /openapi.json``).

Kept by hand beside the routing table: a test checks that both name the same routes and methods.
"""

from __future__ import annotations

from typing import Any

from hera_sessions.config import Settings

_SESSION_ID = {
    "name": "session_id",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "pattern": "^[A-Za-z0-9_-]{32}$"},
}
_PATH = {
    "name": "path",
    "in": "path",
    "required": True,
    "description": "A file path inside the session, such as photos/user.png (percent-decoded once).",
    "schema": {"type": "string", "maxLength": 256, "pattern": "^[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+)*$"},
}
_NAME = {
    "name": "name",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "pattern": "^[A-Za-z0-9_-]{1,64}$"},
}
_UPLOAD_ID = {"name": "upload_id", "in": "path", "required": True, "schema": {"type": "string"}}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _errors(*statuses: int) -> dict[str, Any]:
    words = {
        400: "Bad input (invalid_path, invalid_json, missing_field, invalid_size, ...)",
        401: "No token (missing_token)",
        403: "A token or key that is not valid here (invalid_token, invalid_service_key)",
        404: "Not found (session_not_found, file_not_found, meta_not_found, upload_not_found)",
        405: "Method not allowed",
        409: "Quota exceeded (quota_exceeded)",
        410: "The session was erased (session_erased)",
        413: "Too large (file_too_large, meta_too_large)",
        415: "Content type not allowed (content_type_not_allowed)",
        503: "A backend is unreachable (metadata_unavailable, storage_unavailable)",
    }
    return {str(s): _json(_ref("Error"), words[s]) for s in statuses}


_SESSION_ERRORS = (400, 401, 403, 404, 410, 503)


def document(settings: Settings) -> dict[str, Any]:
    bearer: list[dict[str, list[str]]] = [{"bearer": []}]
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
                "UploadRequest": {
                    "type": "object",
                    "required": ["path", "content_type", "size"],
                    "additionalProperties": False,
                    "properties": {
                        "path": {"type": "string", "examples": ["photos/user.png"]},
                        "content_type": {"type": "string", "enum": list(settings.allowed_content_types)},
                        "size": {"type": "integer", "minimum": 1, "maximum": settings.upload_max_bytes},
                        "method": {"type": "string", "enum": ["PUT", "POST"], "default": "PUT"},
                    },
                },
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
                    "properties": {
                        "parts": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "required": ["part_number", "etag"],
                                "properties": {
                                    "part_number": {"type": "integer"},
                                    "etag": {"type": "string"},
                                },
                            },
                        }
                    },
                },
                "File": {
                    "type": "object",
                    "required": ["path", "size", "content_type", "etag", "uploaded_at"],
                    "properties": {
                        "path": {"type": "string"},
                        "size": {"type": "integer"},
                        "content_type": {"type": "string"},
                        "etag": {"type": ["string", "null"]},
                        "uploaded_at": {"type": "string", "format": "date-time"},
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
        "paths": {
            "/health": {
                "get": {
                    "summary": "Storage and metadata checks",
                    "responses": {
                        "200": _json({"type": "object"}, "Healthy"),
                        "503": _json({"type": "object"}, "A backend is unreachable"),
                    },
                }
            },
            "/openapi.json": {
                "get": {
                    "summary": "This document",
                    "responses": {"200": _json({"type": "object"}, "OpenAPI")},
                }
            },
            "/v1/sessions": {
                "post": {
                    "summary": "Create a session (with a service key)",
                    "security": bearer,
                    "responses": {"201": _json(_ref("Session"), "Created"), **_errors(401, 403, 503)},
                }
            },
            "/v1/sessions/{session_id}": {
                "parameters": [_SESSION_ID],
                "delete": {
                    "summary": "Erase the session: every object, record and document",
                    "security": bearer,
                    "responses": {"204": {"description": "Erased"}, **_errors(*_SESSION_ERRORS)},
                },
            },
            "/v1/sessions/{session_id}/uploads": {
                "parameters": [_SESSION_ID],
                "post": {
                    "summary": "Get a presigned upload (PUT, form POST, or a large-file protocol)",
                    "security": bearer,
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": _ref("UploadRequest")}},
                    },
                    "responses": {
                        "201": _json(_ref("UploadTicket"), "Upload ticket"),
                        **_errors(*_SESSION_ERRORS, 409, 413, 415),
                    },
                },
            },
            "/v1/sessions/{session_id}/uploads/{upload_id}/complete": {
                "parameters": [_SESSION_ID, _UPLOAD_ID],
                "post": {
                    "summary": "Complete a large-file upload with its parts' ETags",
                    "security": bearer,
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": _ref("CompleteRequest")}},
                    },
                    "responses": {"200": _json({"type": "object"}, "Completed"), **_errors(*_SESSION_ERRORS)},
                },
            },
            "/v1/sessions/{session_id}/uploads/{upload_id}": {
                "parameters": [_SESSION_ID, _UPLOAD_ID],
                "delete": {
                    "summary": "Abort a large-file upload",
                    "security": bearer,
                    "responses": {"204": {"description": "Aborted"}, **_errors(*_SESSION_ERRORS)},
                },
            },
            "/v1/sessions/{session_id}/files": {
                "parameters": [_SESSION_ID],
                "get": {
                    "summary": "List the session's files (from metadata, never by listing the bucket)",
                    "security": bearer,
                    "responses": {
                        "200": _json(
                            {
                                "type": "object",
                                "properties": {"files": {"type": "array", "items": _ref("File")}},
                            },
                            "Files",
                        ),
                        **_errors(*_SESSION_ERRORS),
                    },
                },
            },
            "/v1/sessions/{session_id}/files/{path}": {
                "parameters": [_SESSION_ID, _PATH],
                "get": {
                    "summary": "A signed download URL for one file",
                    "security": bearer,
                    "parameters": [
                        {
                            "name": "redirect",
                            "in": "query",
                            "schema": {"type": "boolean"},
                            "description": "302 to the URL",
                        }
                    ],
                    "responses": {
                        "200": _json(_ref("Download"), "Download"),
                        "302": {"description": "Redirect to the signed URL"},
                        **_errors(*_SESSION_ERRORS),
                    },
                },
                "delete": {
                    "summary": "Delete one file (object and record)",
                    "security": bearer,
                    "responses": {"204": {"description": "Deleted"}, **_errors(*_SESSION_ERRORS)},
                },
            },
            "/v1/sessions/{session_id}/meta/{name}": {
                "parameters": [_SESSION_ID, _NAME],
                "put": {
                    "summary": "Store a JSON document (user_profile, conversation, ...)",
                    "security": bearer,
                    "requestBody": {"required": True, "content": {"application/json": {"schema": {}}}},
                    "responses": {"204": {"description": "Stored"}, **_errors(*_SESSION_ERRORS, 413)},
                },
                "get": {
                    "summary": "Read a JSON document",
                    "security": bearer,
                    "responses": {"200": _json({}, "The document"), **_errors(*_SESSION_ERRORS)},
                },
                "delete": {
                    "summary": "Delete a JSON document",
                    "security": bearer,
                    "responses": {"204": {"description": "Deleted"}, **_errors(*_SESSION_ERRORS)},
                },
            },
        },
    }
