"""GET /openapi.json is a valid OpenAPI document rendered from the same route set the resolver serves."""

from __future__ import annotations

import re
from typing import Any

from openapi_spec_validator import validate

from hera_sessions import config
from hera_sessions.http.openapi import document
from hera_sessions.http.routes import GREEDY, PARAMETERS, ROUTES, allowed_methods

METHODS = {"get", "put", "post", "delete", "patch"}


def test_the_document_is_valid_openapi() -> None:
    validate(document(config.load(environ={})))


def test_the_document_names_every_route_once() -> None:
    spec = document(config.load(environ={}))
    documented = {(m.upper(), path) for path, item in spec["paths"].items() for m in item if m in METHODS}
    assert documented == {(route.method, route.path) for route in ROUTES}
    assert len(documented) == len(ROUTES)


def test_the_resolver_serves_exactly_the_route_set(local_env: dict[str, str], make_runtime: Any) -> None:
    app = make_runtime(local_env).app
    served = sorted((route.method, route.rule.pattern) for route in app._static_routes + app._dynamic_routes)
    assert len(served) == len(ROUTES)
    assert {method for method, _ in served} == {route.method for route in ROUTES}


def test_every_operation_documents_its_parameters_and_links_resolve() -> None:
    spec = document(config.load(environ={}))
    operations = {op["operationId"]: op for item in spec["paths"].values() for m, op in item.items() if m in METHODS}
    assert set(operations) == {route.handler for route in ROUTES}
    for route in ROUTES:
        names = {p["name"] for p in operations[route.handler].get("parameters", []) if p["in"] == "path"}
        assert names == set(route.parameters), route.handler
        for link in route.links:
            target = {p["name"] for p in operations[link.handler].get("parameters", [])}
            assert set(link.parameters) <= target, (route.handler, link.handler)


def test_allowed_methods_follow_the_route_set() -> None:
    sid = "A" * 32
    assert allowed_methods(f"/v1/sessions/{sid}/meta/doc") == ["DELETE", "GET", "PUT"]
    assert allowed_methods(f"/v1/sessions/{sid}/files/a/b/c.png") == ["DELETE", "GET"]
    assert allowed_methods(f"/v1/sessions/{sid}") == ["DELETE"]
    assert allowed_methods("/v1/sessions") == ["POST"]
    assert allowed_methods("/v1/sessions/x/y") == []


def test_documented_patterns_are_the_ones_the_service_checks() -> None:
    from hera_sessions.core import keys

    assert PARAMETERS["session_id"]["schema"]["pattern"] == f"^{keys._SESSION_ID.pattern}$"
    assert PARAMETERS["name"]["schema"]["pattern"] == f"^{keys._META_NAME.pattern}$"
    documented = re.compile(PARAMETERS[GREEDY]["schema"]["pattern"])
    for path in ("photos/user.png", "a", "a/b/c.d", "x-y_z/1.2.jpeg"):
        assert documented.match(path) and keys.check_path(path) == path
    for path in ("../x.png", "a//b", "/a", "a/./b", "a b", "ü.png"):
        assert not documented.match(path)
