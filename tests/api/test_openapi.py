"""GET /openapi.json is a valid OpenAPI document naming exactly the routes the routing table serves."""

from __future__ import annotations

import re

from openapi_spec_validator import validate

from hera_sessions import config
from hera_sessions.http.api import ROUTES
from hera_sessions.http.openapi import document


def test_the_document_is_valid_openapi() -> None:
    validate(document(config.load(environ={})))


def test_the_document_and_the_routing_table_agree() -> None:
    spec = document(config.load(environ={}))
    documented = {
        (method.upper(), path)
        for path, item in spec["paths"].items()
        for method in item
        if method in {"get", "put", "post", "delete", "patch"}
    }
    served = {(method, re.sub(r"<(\w+)>", r"{\1}", rule).replace(".+", "{path}")) for method, rule, _ in ROUTES}
    assert documented == served
