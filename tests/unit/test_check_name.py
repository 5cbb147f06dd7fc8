"""A picked file's name may hold any Unicode but control characters: the check, code point by code point."""

from __future__ import annotations

import pytest

from hera_sessions.core.errors import InvalidInputError
from hera_sessions.core.service import check_name


def _is_control(c: str) -> bool:
    return ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F  # C0, DEL and C1


def test_every_control_character_and_only_those_are_refused_anywhere_in_a_name() -> None:
    for point in [*range(0x2000), 0xFEFF, 0x1F600]:
        c = chr(point)
        for name in (c, f"photo{c}.png", f"{c}photo.png"):
            if _is_control(c):
                with pytest.raises(InvalidInputError):
                    check_name(name)
            else:
                assert check_name(name)
