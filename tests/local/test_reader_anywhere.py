"""The AI backend's reader (``hera_sessions.reader``), run as the backend runs it: another process, another folder,
against ``make dev``'s server on a port of its own."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import requests

from tests.local.helpers import PNG, eventually, listed, new_ticket
from tests.servers import HeraServe, python_env

READ = """
import json, sys
from hera_sessions.reader import SessionReader
with SessionReader.from_env() as reader:
    (record,) = reader.files(sys.argv[1])
    url = reader.download_url(sys.argv[1], record.path)
    print(json.dumps({"path": record.path, "url": url, "uploaded_at": record.uploaded_at, "json": record.to_json()}))
"""


def reader(cwd: Path, sessions_dir: str, session_id: str = "none") -> subprocess.CompletedProcess[str]:
    env = python_env(SESSIONS_DIR=sessions_dir)
    env.pop("PUBLIC_BASE_URL", None)
    env.pop("SERVICE_API_KEYS", None)  # make dev's open creation: the server warns of it, the reader must not
    return subprocess.run(
        [sys.executable, "-c", READ, session_id], cwd=cwd, env=env, capture_output=True, text=True, timeout=60
    )


def test_the_reader_from_another_folder_signs_urls_for_the_running_server(tmp_path: Path) -> None:
    # GIVEN make dev's server on a port of its own, holding one photo
    data = tmp_path / "data"
    server = HeraServe({"SESSIONS_DIR": str(data)}, tmp_path, start=False)
    with server.start():
        sid, auth, ticket = new_ticket(server.url)
        assert requests.put(ticket["url"], data=PNG, headers=ticket["headers"], timeout=10).status_code == 200
        assert eventually(lambda: listed(server.url, sid, auth) == ["photos/user.png"])
        # WHEN the backend's reader runs in another folder with the absolute SESSIONS_DIR
        elsewhere = tmp_path / "backend"
        elsewhere.mkdir()
        done = reader(elsewhere, str(data), sid)
        # THEN it reads the record, its download URL points at this server's port and serves the bytes
        assert done.returncode == 0, done.stderr
        answer = json.loads(done.stdout)
        assert answer["path"] == "photos/user.png"
        assert answer["url"].startswith(f"{server.url}/"), answer["url"]
        assert requests.get(answer["url"], timeout=10).content == PNG
        # and its record is the API's, field for field, with one time format (ISO 8601 text) in both
        (api_record,) = requests.get(f"{server.url}/v1/sessions/{sid}/files", headers=auth, timeout=10).json()["files"]
        assert answer["json"] == {k: v for k, v in api_record.items() if k in answer["json"]}
        assert answer["uploaded_at"] == api_record["uploaded_at"]
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", answer["uploaded_at"])
        # and it says nothing about the server's own settings (no SERVICE_API_KEYS warning, nothing at all)
        assert done.stderr == ""
        assert list(elsewhere.iterdir()) == []


def test_a_sessions_dir_without_a_server_is_an_error_and_is_not_created(tmp_path: Path) -> None:
    elsewhere = tmp_path / "backend"
    elsewhere.mkdir()
    for given, resolved in (("tmp/user_sessions", elsewhere / "tmp" / "user_sessions"), (str(tmp_path / "no"),) * 2):
        done = reader(elsewhere, str(given))
        assert done.returncode != 0
        assert f"SESSIONS_DIR={Path(resolved).resolve()} holds no hera-sessions data" in done.stderr
        assert not Path(resolved).exists()  # nothing created: no folder, no new token secret
