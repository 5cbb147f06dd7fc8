"""Paths, keys and sequencers: the rules that keep every session inside its own prefix."""

from __future__ import annotations

import pytest

from hera_sessions.core import keys
from hera_sessions.core.errors import InvalidInputError, UnsupportedTypeError

GOOD = ["photos/user.png", "a.png", "x/y/z/child_1.jpeg", "A-b_c.9.webp", "p/" + "a" * 250 + ".png"[:4]]
BAD = [
    "",
    "/photos/user.png",  # leading slash
    "photos//user.png",  # empty segment
    "photos/../user.png",
    "../user.png",
    "./user.png",
    "photos/./user.png",
    "photos\\user.png",  # backslash
    "photos/us er.png",  # space
    "photos/user.png\x00",  # NUL
    "photos/\nuser.png",  # control character
    "photos/%2e%2e/user.png",  # percent-encoded tricks stay refused
    "photos/ユーザー.png",  # non-ASCII
    "photos/user.png/",  # trailing slash
    "p/" + "a" * 260 + ".png",  # over 256 bytes
]


@pytest.mark.parametrize("path", GOOD)
def test_good_paths_pass(path: str) -> None:
    assert keys.check_path(path) == path


@pytest.mark.parametrize("path", BAD)
def test_bad_paths_are_refused(path: str) -> None:
    with pytest.raises(InvalidInputError) as caught:
        keys.check_path(path)
    assert caught.value.code == "invalid_path"


@pytest.mark.parametrize("value", [None, 3, ["a.png"]])
def test_non_strings_are_refused(value: object) -> None:
    with pytest.raises(InvalidInputError):
        keys.check_path(value)


def test_object_keys_stay_under_the_session_prefix() -> None:
    sid = keys.new_session_id()
    assert keys.object_key(sid, "photos/user.png") == f"sessions/{sid}/photos/user.png"
    assert keys.split_object_key(f"sessions/{sid}/photos/user.png") == (sid, "photos/user.png")
    assert keys.split_object_key("other/readme.txt") is None
    assert keys.split_object_key("sessions/short/readme.txt") is None
    with pytest.raises(InvalidInputError):
        keys.object_key(sid, "../other/x.png")
    with pytest.raises(InvalidInputError):
        keys.object_key("../" + sid[3:], "x.png")


def test_session_ids_are_random_url_safe_and_long() -> None:
    ids = {keys.new_session_id() for _ in range(1000)}
    assert len(ids) == 1000
    assert all(keys.is_session_id(i) and len(i) == 32 for i in ids)  # 24 random bytes = 192 bits


@pytest.mark.parametrize(
    ("path", "ctype", "ok"),
    [
        ("a.png", "image/png", True),
        ("a.PNG", "image/png", True),
        ("a.jpg", "image/jpeg", True),
        ("a.jpeg", "IMAGE/JPEG", True),
        ("a.png", "image/jpeg", False),
        ("a", "image/png", False),
        ("a.heic", "image/heic", True),
    ],
)
def test_the_extension_must_fit_the_type(path: str, ctype: str, ok: bool) -> None:
    allowed = ("image/png", "image/jpeg", "image/webp", "image/heic")
    if ok:
        assert keys.check_type_fits(path, ctype, allowed) == ctype.lower()
    else:
        with pytest.raises(InvalidInputError) as caught:
            keys.check_type_fits(path, ctype, allowed)
        assert caught.value.code == "extension_mismatch"


def test_types_outside_the_allowlist_are_refused() -> None:
    with pytest.raises(UnsupportedTypeError) as caught:
        keys.check_type_fits("a.gif", "image/gif", ("image/png",))
    assert caught.value.code == "content_type_not_allowed"


@pytest.mark.parametrize("name", ["user_profile", "conversation", "a", "A-1_b", "x" * 64])
def test_meta_names(name: str) -> None:
    assert keys.check_meta_name(name) == name


@pytest.mark.parametrize("name", ["", "x" * 65, "a.b", "a/b", "é", "a b"])
def test_bad_meta_names(name: str) -> None:
    with pytest.raises(InvalidInputError):
        keys.check_meta_name(name)


def test_redis_keys_share_the_session_hash_tag() -> None:
    sid = keys.new_session_id()
    names = [keys.redis_session_key(sid), keys.redis_meta_key(sid), keys.redis_erased_key(sid)]
    assert all(name.startswith(f"session:{{{sid}}}") for name in names)


def test_the_fast_path_check_agrees_with_the_segment_rules() -> None:
    """check_path's one-regex fast path accepts exactly what the segment-by-segment rules accept."""
    import random

    rng = random.Random(1)
    alphabet = "ab./.-_ %\\\x00é"
    for _ in range(50_000):
        path = "".join(rng.choice(alphabet) for _ in range(rng.randrange(1, 9)))
        by_rules = all(seg not in ("", ".", "..") and keys._SEGMENT.fullmatch(seg) for seg in path.split("/"))
        assert bool(keys._PATH.fullmatch(path)) == by_rules, repr(path)
