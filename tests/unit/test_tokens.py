"""Session tokens: HMAC over the session id with a key id, so secrets rotate."""

from __future__ import annotations

import pytest

from hera_sessions.core.errors import ForbiddenError, UnauthorizedError
from hera_sessions.core.keys import new_session_id
from hera_sessions.core.tokens import TokenAuthority


def test_a_token_authorises_its_own_session_only() -> None:
    tokens = TokenAuthority("secret")
    a, b = new_session_id(), new_session_id()
    token = tokens.issue(a)
    tokens.authorize(f"Bearer {token}", a)
    with pytest.raises(ForbiddenError) as caught:
        tokens.authorize(f"Bearer {token}", b)
    assert caught.value.code == "invalid_token"


def test_missing_or_malformed_authorization_is_401() -> None:
    tokens = TokenAuthority("secret")
    for header in (None, "", "Bearer", "Bearer   ", "Basic abc"):
        with pytest.raises(UnauthorizedError):
            tokens.authorize(header, new_session_id())


@pytest.mark.parametrize("forged", ["v1.abc.def", "v2.x.y", "garbage", "v1..", "v1." + "A" * 8 + "." + "B" * 43])
def test_forged_tokens_are_403(forged: str) -> None:
    with pytest.raises(ForbiddenError):
        TokenAuthority("secret").authorize(f"Bearer {forged}", new_session_id())


def test_a_token_from_the_previous_secret_is_accepted_during_rotation() -> None:
    sid = new_session_id()
    old = TokenAuthority("old-secret").issue(sid)
    rotated = TokenAuthority("new-secret", previous="old-secret")
    assert rotated.verify(sid, old)
    assert rotated.issue(sid) != old
    assert not TokenAuthority("new-secret").verify(sid, old)


def test_service_keys_read_any_session_and_create_sessions() -> None:
    tokens = TokenAuthority("secret", service_keys=("k1", "k2"))
    tokens.authorize("Bearer k2", new_session_id())
    tokens.require_service("Bearer k1")
    with pytest.raises(ForbiddenError) as caught:
        tokens.require_service("Bearer nope")
    assert caught.value.code == "invalid_service_key"
    session_token = tokens.issue(new_session_id())
    with pytest.raises(ForbiddenError):
        tokens.require_service(f"Bearer {session_token}")
