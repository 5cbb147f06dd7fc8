"""make dev's log lines carry what one needs to act: the request id (answered back), the session, an error's code,
the extra fields of the service's own lines, and a refused browser origin with how to allow it."""

from __future__ import annotations

from pathlib import Path

import requests

from tests.servers import HeraServe


def test_request_lines_carry_id_session_and_code_and_refused_origins_say_how_to_allow(tmp_path: Path) -> None:
    server = HeraServe({"SESSIONS_DIR": str(tmp_path / "data")}, tmp_path, start=False)
    server.env.pop("SERVICE_API_KEYS", None)  # type: ignore[union-attr]
    server.env.pop("CORS_ALLOWED_ORIGINS", None)  # type: ignore[union-attr]
    with server.start():
        created = requests.post(f"{server.url}/v1/sessions", timeout=10).json()
        sid = created["session_id"]
        # an error, with the client's own request id
        missing = requests.get(
            f"{server.url}/v1/sessions/{sid}/meta/user_profile",
            headers={"Authorization": f"Bearer {created['token']}", "X-Request-Id": "trace-42"},
            timeout=10,
        )
        assert missing.status_code == 404
        assert missing.headers["X-Request-Id"] == "trace-42"
        fresh = requests.get(f"{server.url}/health", timeout=10).headers["X-Request-Id"]
        # the page's own origin needs no setting; another origin is refused, and the log says how to allow it
        own = requests.options(
            f"{server.url}/v1/sessions",
            headers={"Origin": server.url, "Access-Control-Request-Method": "POST"},
            timeout=10,
        )
        assert own.headers.get("Access-Control-Allow-Origin") == server.url
        other = requests.options(
            f"{server.url}/v1/sessions",
            headers={"Origin": "https://elsewhere.example", "Access-Control-Request-Method": "POST"},
            timeout=10,
        )
        assert "Access-Control-Allow-Origin" not in other.headers
        erased = requests.delete(
            f"{server.url}/v1/sessions/{sid}", headers={"Authorization": f"Bearer {created['token']}"}, timeout=10
        )
        assert erased.status_code == 204
    log = server.output().decode()
    assert f"GET /v1/sessions/{sid}/meta/user_profile 404" in log
    (line,) = [x for x in log.splitlines() if f"/v1/sessions/{sid}/meta/user_profile 404" in x]
    assert "request=trace-42" in line and f"session={sid}" in line and "code=meta_not_found" in line
    assert f"request={fresh}" in log
    assert "refused the browser origin https://elsewhere.example (CORS)" in log
    assert "CORS_ALLOWED_ORIGINS=https://elsewhere.example make dev" in log
    assert f"refused the browser origin {server.url}" not in log
    (erase,) = [x for x in log.splitlines() if "session erased" in x]
    assert f"session_id={sid}" in erase
