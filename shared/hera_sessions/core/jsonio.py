"""Reading JSON from clients: one parser, strict, that turns every malformed body into a 400."""

from __future__ import annotations

import json
from typing import Any

from hera_sessions.core.errors import InvalidInputError


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def load_json(raw: str | bytes | None) -> Any:
    """The JSON value in ``raw``: NaN and Infinity (not JSON), bad UTF-8 and absurd nesting are refused."""
    if not raw:
        raise InvalidInputError("The request needs a JSON body.", "invalid_json")
    try:
        return json.loads(raw, parse_constant=_no_constants)
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        raise InvalidInputError("The body is not valid JSON.", "invalid_json") from None
