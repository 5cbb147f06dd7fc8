"""``hera-sessions doctor`` and ``inspect`` as a subprocess: local mode, a Redis that evicts, an absent Redis."""

from __future__ import annotations

import json
from pathlib import Path

import requests

from tests.envs import UNREACHABLE_REDIS, service_env
from tests.images import png
from tests.local.helpers import local_server, new_session, settle
from tests.servers import RedisServer, hera_cli


def statuses(settings: dict[str, str]) -> tuple[int, dict[str, str]]:
    done = hera_cli("doctor", "--json", settings=settings)
    lines = json.loads(done.stdout)
    assert all(set(line) == {"check", "status", "detail", "fix"} for line in lines)
    return done.returncode, {line["check"]: line["status"] for line in lines}


def test_local_mode_is_all_ok(sessions_dir: Path) -> None:
    # GIVEN the local default  WHEN doctor runs  THEN every line is ok, exit 0
    code, found = statuses(service_env(sessions_dir=sessions_dir))
    assert code == 0
    assert set(found.values()) == {"ok"}, found
    assert {"redis:eviction", "redis:scripts", "storage:lifecycle", "storage:reachable"} <= set(found)


def test_readable_output_names_each_check(sessions_dir: Path) -> None:
    done = hera_cli("doctor", settings=service_env(sessions_dir=sessions_dir))
    assert done.returncode == 0
    assert "ok    redis:eviction" in done.stdout and done.stdout.rstrip().endswith("0 warn, 0 fail")


def test_evicting_redis_warns_with_the_fix(tmp_path: Path, sessions_dir: Path) -> None:
    with RedisServer(tmp_path / "lru", "--maxmemory-policy", "allkeys-lru", "--maxmemory", "64mb") as redis:
        settings = service_env("local", "redis", redis_url=redis.url, sessions_dir=sessions_dir)
        done = hera_cli("doctor", "--json", settings=settings)
    assert done.returncode == 0  # a warning is not a failure
    line = next(c for c in json.loads(done.stdout) if c["check"] == "redis:eviction")
    assert line["status"] == "warn" and "allkeys-lru" in line["detail"]
    assert "noeviction" in line["fix"] and "CONFIG SET" in line["fix"] and "parameter group" in line["fix"]


def test_unreachable_redis_fails(sessions_dir: Path) -> None:
    code, found = statuses(service_env("local", "redis", redis_url=UNREACHABLE_REDIS, sessions_dir=sessions_dir))
    assert code == 1
    assert found["redis:reachable"] == "fail"


def test_bad_settings_fail(sessions_dir: Path) -> None:
    code, found = statuses(service_env(sessions_dir=sessions_dir, SESSION_TTL="soon"))
    assert code == 1 and found == {"settings": "fail"}


def test_inspect_shows_files_documents_and_the_erase_marker(sessions_dir: Path) -> None:
    settings = service_env(sessions_dir=sessions_dir)
    with local_server(sessions_dir) as server:
        session_id, auth = new_session(server)
        base = f"{server.url}/v1/sessions/{session_id}"
        body = png()
        upload = {"path": "a.png", "content_type": "image/png", "size": len(body)}
        ticket = requests.post(f"{base}/uploads", json=upload, headers=auth, timeout=5).json()
        requests.put(ticket["url"], data=body, headers=ticket["headers"], timeout=5).raise_for_status()
        settle(server.runtime)
        requests.put(f"{base}/meta/user_profile", json={"name": "Hana"}, headers=auth, timeout=5).raise_for_status()

        # WHEN inspect runs beside the server (same SESSIONS_DIR: the same embedded Redis)
        live = hera_cli("inspect", session_id, "--json", settings=settings)
        table = hera_cli("inspect", session_id, settings=settings)
        requests.delete(base, headers=auth, timeout=5).raise_for_status()
        erased = hera_cli("inspect", session_id, "--json", settings=settings)

    assert live.returncode == 0, live.stderr
    shown = json.loads(live.stdout)
    assert shown["state"] == "live" and [f["path"] for f in shown["files"]] == ["a.png"]
    assert shown["documents"] == [{"name": "user_profile", "bytes": len(b'{"name":"Hana"}')}]
    assert 0 < shown["ttl_seconds"] <= 86400 and shown["erase_marker"] is None
    assert "a.png" in table.stdout and "user_profile" in table.stdout
    gone = json.loads(erased.stdout)
    assert gone["state"] == "erased" and gone["files"] == [] and gone["erase_marker"]["ttl_seconds"] > 0


def test_inspect_of_an_unknown_session_says_so(sessions_dir: Path) -> None:
    done = hera_cli("inspect", "A" * 32, settings=service_env(sessions_dir=sessions_dir))
    assert done.returncode == 1 and "no session" in done.stderr
    bad = hera_cli("inspect", "../x", settings=service_env(sessions_dir=sessions_dir))
    assert bad.returncode == 2 and "invalid_session_id" in bad.stderr
