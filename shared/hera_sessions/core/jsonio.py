"""Reading JSON from clients: one parser, strict, that turns every malformed body into a 400.

A value it returns can always be written back as UTF-8 JSON: no NaN or infinity, no lone surrogate.
"""

from __future__ import annotations

import json
import math
from typing import Any

from hera_sessions.core.errors import InvalidInputError


class _Refused(ValueError):
    """Valid JSON syntax that cannot be carried back as JSON; the message says why."""


def _no_constants(name: str) -> Any:
    raise _Refused(f"{name} is not JSON.")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _Refused(f"The number {text[:20]}{'...' if len(text) > 20 else ''} is out of range.")
    return value


def _integer(text: str) -> int:
    try:
        return int(text)
    except ValueError:  # more digits than Python's int-from-string limit
        raise _Refused(f"An integer of {len(text.lstrip('-'))} digits is too long.") from None


def load_json(raw: str | bytes | None) -> Any:
    """The JSON value in ``raw`` (bytes must be UTF-8).

    Refused with a 400 ``invalid_json``: bad syntax, bad UTF-8 or a byte order mark, NaN and Infinity,
    numbers that overflow to infinity, integers past Python's digit limit, lone surrogates in strings or
    keys (``"\\ud800"``), and nesting too deep to parse.
    """
    if not raw:
        raise InvalidInputError("The request needs a JSON body.", "invalid_json")
    try:
        if isinstance(raw, bytes):
            text = raw.decode("utf-8")  # UTF-8 never decodes to a lone surrogate
        else:
            text = raw
            if not text.isascii():
                text.encode("utf-8")  # a str may hold one: refused here, at C speed
        value = json.loads(text, parse_constant=_no_constants, parse_float=_finite, parse_int=_integer)
        if "\\u" in text:
            # Lone surrogates also parse from \u escapes: check the value by encoding it once, at C speed.
            json.dumps(value, ensure_ascii=False, allow_nan=False).encode("utf-8")
    except _Refused as exc:
        raise InvalidInputError(f"The body is not valid JSON: {exc}", "invalid_json") from None
    except UnicodeError:
        raise InvalidInputError(
            "The body is not valid JSON: it must be UTF-8, and strings may not hold lone surrogates.",
            "invalid_json",
        ) from None
    except (ValueError, RecursionError):
        raise InvalidInputError("The body is not valid JSON.", "invalid_json") from None
    return value
