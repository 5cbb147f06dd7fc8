"""The README's walk-through, run word for word with ``bash -euo pipefail`` against a real ``hera-sessions serve``
with ``make dev``'s settings (no service keys: open session creation). Only ``BASE`` differs: the server listens
on a free port, not 3000."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

from tests.markdown import README, fenced_after
from tests.servers import HeraServe

MARKER = "<!-- walkthrough -->"


def run_walkthrough(base: str, workdir: Path) -> list[str]:
    """The block's output lines; its temporary files go under ``workdir``."""
    script = fenced_after(README.read_text(), MARKER)
    assert script.startswith("BASE=${BASE:-http://127.0.0.1:3000}\n"), "the walk-through must start by setting BASE"
    assert shutil.which("curl"), "the walk-through needs curl"
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        env={**os.environ, "BASE": base, "TMPDIR": str(workdir)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, f"the walk-through failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout.splitlines()


def test_the_readme_walkthrough_runs_as_written_and_answers_as_it_says(tmp_path: Path) -> None:
    # GIVEN make dev's server: local files, embedded metadata, no SERVICE_API_KEYS
    server = HeraServe({"SESSIONS_DIR": str(tmp_path / "data")}, tmp_path, start=False)
    server.env.pop("SERVICE_API_KEYS", None)  # type: ignore[union-attr]
    with server.start():
        # WHEN the README's block runs
        lines = run_walkthrough(server.url, tmp_path)

    # THEN every step printed what its comment says, in order
    session, ticket, uploaded, files, same, stored, profile, erased, after_erase, download_after = lines
    assert set(json.loads(session)) == {"session_id", "token", "expires_at"}
    session_id = json.loads(session)["session_id"]
    ticket_body = json.loads(ticket)
    assert ticket_body["protocol"] == "put" and ticket_body["method"] == "PUT"
    assert ticket_body["url"].startswith(f"{server.url}/local-storage/sessions/{session_id}/photos/me.png?")
    assert ticket_body["headers"] == {"Content-Type": "image/png", "If-None-Match": "*"}
    assert uploaded == "200"
    (record,) = json.loads(files)["files"]
    assert (record["path"], record["content_type"], record["width"], record["height"]) == (
        "photos/me.png",
        "image/png",
        2,
        2,
    )
    assert record["location"] == "none"
    assert same == "the same bytes"
    assert stored == "204"
    assert json.loads(profile) == {"name": "Aiko", "language": "ja"}
    assert erased == "204"
    assert json.loads(after_erase)["error"]["code"] == "session_erased"
    assert download_after == "404"
