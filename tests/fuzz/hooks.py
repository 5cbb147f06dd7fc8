"""Schemathesis hooks (loaded by ``st run`` through ``SCHEMATHESIS_HOOKS``): aim generated requests at a real
session so the fuzzer reaches the handlers, not only the session-id check.

A well-formed session id that the run did not create itself becomes ``FUZZ_SESSION_ID`` (a session the test
made), so documents, uploads and files are exercised; malformed ids stay as generated. Erasing is left alone
(a random well-formed id is a 404) so the shared session lives through the run; the stateful phase erases the
sessions it creates through the links of ``POST /v1/sessions``.
"""

from __future__ import annotations

import os
import re
from typing import Any

import schemathesis
from hypothesis import strategies as st
from schemathesis import Case, HookContext, Response

SESSION_ID = os.environ.get("FUZZ_SESSION_ID", "")
_WELL_FORMED = re.compile(r"[A-Za-z0-9_-]{32}")
_CREATED: set[str] = set()


@schemathesis.hook
def before_call(context: HookContext, case: Case[Any], kwargs: dict[str, Any]) -> None:
    params = case.path_parameters
    if not params or case.operation.label == "DELETE /v1/sessions/{session_id}":
        return
    sid = params.get("session_id")
    if isinstance(sid, str) and _WELL_FORMED.fullmatch(sid) and sid not in _CREATED:
        params["session_id"] = SESSION_ID


#: JSON a schema-driven generator never makes (Hypothesis text has no lone surrogates; they are sent as
#: ``\ud800`` escapes), mixed into generated bodies so every body route meets it. Overflowing numbers and NaN
#: cannot be sent this way (the client refuses to serialise them): tests/api covers those.
HOSTILE_BODIES: tuple[Any, ...] = ({"x": "\ud800"}, {"\udfff": 1}, [{"a": "b\udc00"}], "\ud83d")


@schemathesis.hook
def flatmap_body(context: HookContext, body: Any) -> st.SearchStrategy[Any]:
    return st.one_of(st.just(body), st.sampled_from(HOSTILE_BODIES))


@schemathesis.hook
def after_call(context: HookContext, case: Case[Any], response: Response) -> None:
    if case.operation.label == "POST /v1/sessions" and response.status_code == 201:
        _CREATED.add(response.json()["session_id"])
