"""The v1 route set, in one form: routing (:mod:`.api`), 405 answers and the OpenAPI document (:mod:`.openapi`)
are all derived from :data:`ROUTES`.

Paths are OpenAPI templates (``/v1/sessions/{session_id}``); ``{path}`` is the greedy file path (``{path+}`` in
API Gateway terms), everything else is one segment. Schemas are JSON Schema; ``ref(name)`` points at a component
that :mod:`.openapi` builds from the settings.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

Schema = Mapping[str, Any]

GREEDY = "path"  # the one parameter that spans several segments
#: A folder or file name as documented (keys.check_path also takes names that start with a dot, but not . or ..).
SEGMENT = "[A-Za-z0-9_-][A-Za-z0-9._-]*"


def ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


#: Path and query parameters by name: each route's parameters come from its template.
PARAMETERS: Mapping[str, Mapping[str, Any]] = {
    "session_id": {"schema": {"type": "string", "pattern": "^[A-Za-z0-9_-]{32}$"}},
    "upload_id": {"schema": {"type": "string", "minLength": 1}},
    "name": {"schema": {"type": "string", "pattern": "^[A-Za-z0-9_-]{1,64}$"}},
    GREEDY: {
        "description": "A file path inside the session, such as photos/user.png (percent-decoded once).",
        "schema": {"type": "string", "maxLength": 256, "pattern": f"^({SEGMENT}/)*{SEGMENT}$"},
    },
}

#: Query parameters by name.
QUERY: Mapping[str, Mapping[str, Any]] = {
    "redirect": {"schema": {"type": "boolean"}, "description": "302 to the URL"},
}

#: What each error status means, with the codes a client may meet under it.
ERRORS: Mapping[int, str] = {
    400: "Bad input (invalid_json, invalid_body, missing_field, unknown_field, invalid_session_id, invalid_path, "
    "invalid_meta_name, invalid_size, invalid_content_type, invalid_method, invalid_name, invalid_content_md5, "
    "invalid_overwrite, invalid_parts, extension_mismatch, method_not_supported)",
    401: "No token (missing_token)",
    403: "A token or key that is not valid here (invalid_token, invalid_service_key)",
    404: "Not found (session_not_found, file_not_found, meta_not_found, upload_not_found)",
    405: "Method not allowed (method_not_allowed)",
    409: "Conflict: the quota is exceeded (quota_exceeded), or the path holds a file, or another file's pending "
    'upload, and the request did not send "overwrite": true (file_exists)',
    410: "The session was erased (session_erased)",
    413: "Too large (file_too_large, meta_too_large)",
    415: "Content type not allowed (content_type_not_allowed)",
    500: "Unexpected (internal_error)",
    503: "A backend is unreachable (metadata_unavailable, storage_unavailable)",
}

SESSION_ERRORS = (400, 401, 403, 404, 410, 503)


@dataclass(frozen=True, slots=True)
class Answer:
    """A documented success answer."""

    status: int
    description: str
    schema: Schema | None = None


@dataclass(frozen=True, slots=True)
class Link:
    """An OpenAPI link from a route's success answer to the route named ``handler``, for stateful clients."""

    handler: str
    parameters: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class Route:
    """One operation: ``handler`` names the function in :mod:`.api`; ``errors`` are the error statuses it may
    answer (meanings in :data:`ERRORS`); ``request`` is the JSON body's schema, if it takes one."""

    method: str
    path: str
    handler: str
    summary: str
    answers: tuple[Answer, ...]
    errors: tuple[int, ...] = ()
    request: Schema | None = None
    query: tuple[str, ...] = ()
    auth: bool = True
    links: tuple[Link, ...] = ()

    @property
    def parameters(self) -> tuple[str, ...]:
        return tuple(re.findall(r"\{(\w+)\}", self.path))

    @property
    def rule(self) -> str:
        """The path as a Powertools rule: ``<name>`` segments; the file path is read from the raw path."""
        return re.sub(r"\{(\w+)\}", lambda m: ".+" if m[1] == GREEDY else f"<{m[1]}>", self.path)

    def matches(self, path: str) -> bool:
        return _shape(self.path).match(path) is not None


@cache
def _shape(template: str) -> re.Pattern[str]:
    """A template matched against raw paths, for 405s (one segment per parameter, the file path spans any);
    compiled on the first 405 or OPTIONS, not on every cold start."""
    shape = re.sub(r"\\\{(\w+)\\\}", lambda m: ".+" if m[1] == GREEDY else "[^/]+", re.escape(template))
    return re.compile(f"^{shape}$")


SESSION = "/v1/sessions/{session_id}"
_IN_SESSION = {"session_id": "$request.path.session_id"}
_EMPTY: Schema = {}


def _to_session(*handlers: str) -> tuple[Link, ...]:
    return tuple(Link(h, {"session_id": "$response.body#/session_id"}) for h in handlers)


ROUTES: tuple[Route, ...] = (
    Route(
        "GET",
        "/health",
        "health",
        "Storage and metadata checks",
        (Answer(200, "Healthy", {"type": "object"}), Answer(503, "A backend is unreachable", {"type": "object"})),
        auth=False,
    ),
    Route(
        "GET", "/openapi.json", "openapi", "This document", (Answer(200, "OpenAPI", {"type": "object"}),), auth=False
    ),
    Route(
        "POST",
        "/v1/sessions",
        "create_session",
        "Create a session (with a service key)",
        (Answer(201, "Created", ref("Session")),),
        (401, 403, 503),
        links=_to_session(
            "erase_session", "create_upload", "list_files", "put_meta", "get_meta", "delete_meta", "get_file"
        ),
    ),
    Route(
        "DELETE",
        SESSION,
        "erase_session",
        "Erase the session: every object, record and document",
        (Answer(204, "Erased"),),
        SESSION_ERRORS,
    ),
    Route(
        "POST",
        f"{SESSION}/uploads",
        "create_upload",
        "Get a presigned upload (PUT, form POST, or a large-file protocol)",
        (Answer(201, "Upload ticket", ref("UploadTicket")),),
        (*SESSION_ERRORS, 409, 413, 415),
        request=ref("UploadRequest"),
        links=(
            Link("complete_upload", {**_IN_SESSION, "upload_id": "$response.body#/upload_id"}),
            Link("abort_upload", {**_IN_SESSION, "upload_id": "$response.body#/upload_id"}),
            Link("get_file", {**_IN_SESSION, GREEDY: "$request.body#/path"}),
            Link("delete_file", {**_IN_SESSION, GREEDY: "$request.body#/path"}),
        ),
    ),
    Route(
        "POST",
        f"{SESSION}/uploads/{{upload_id}}/complete",
        "complete_upload",
        "Complete a large-file upload with its parts' ETags",
        (Answer(200, "Completed", {"type": "object"}),),
        (*SESSION_ERRORS, 409),
        request=ref("CompleteRequest"),
    ),
    Route(
        "DELETE",
        f"{SESSION}/uploads/{{upload_id}}",
        "abort_upload",
        "Abort a large-file upload",
        (Answer(204, "Aborted"),),
        SESSION_ERRORS,
    ),
    Route(
        "GET",
        f"{SESSION}/files",
        "list_files",
        "List the session's files (from metadata, never by listing the bucket)",
        (Answer(200, "Files", {"type": "object", "properties": {"files": {"type": "array", "items": ref("File")}}}),),
        SESSION_ERRORS,
    ),
    Route(
        "GET",
        f"{SESSION}/files/{{{GREEDY}}}",
        "get_file",
        "A signed download URL for one file",
        (Answer(200, "Download", ref("Download")), Answer(302, "Redirect to the signed URL")),
        SESSION_ERRORS,
        query=("redirect",),
    ),
    Route(
        "DELETE",
        f"{SESSION}/files/{{{GREEDY}}}",
        "delete_file",
        "Delete one file (object and record)",
        (Answer(204, "Deleted"),),
        SESSION_ERRORS,
    ),
    Route(
        "PUT",
        f"{SESSION}/meta/{{name}}",
        "put_meta",
        "Store a JSON document (user_profile, conversation, ...)",
        (Answer(204, "Stored"),),
        (*SESSION_ERRORS, 413),
        request=_EMPTY,
        links=tuple(Link(h, {**_IN_SESSION, "name": "$request.path.name"}) for h in ("get_meta", "delete_meta")),
    ),
    Route(
        "GET",
        f"{SESSION}/meta/{{name}}",
        "get_meta",
        "Read a JSON document",
        (Answer(200, "The document", _EMPTY),),
        SESSION_ERRORS,
    ),
    Route(
        "DELETE",
        f"{SESSION}/meta/{{name}}",
        "delete_meta",
        "Delete a JSON document",
        (Answer(204, "Deleted"),),
        SESSION_ERRORS,
    ),
)


def allowed_methods(path: str) -> list[str]:
    """The methods served at a raw path (for 405 and OPTIONS answers)."""
    return sorted({route.method for route in ROUTES if route.matches(path)})
