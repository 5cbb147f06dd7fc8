"""The local server answers on several threads at once (as the page's parallel uploads make it): each request is
answered as itself, never with another's route, session or arguments."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from tests.local.helpers import local_server, new_session


@pytest.fixture
def busy_switching() -> Iterator[None]:
    """Threads switch as often as the interpreter can, so that requests interleave inside the resolver."""
    before = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    yield
    sys.setswitchinterval(before)


@pytest.mark.usefixtures("busy_switching")
def test_parallel_requests_of_different_sessions_and_routes_are_each_answered_as_themselves(tmp_path: Path) -> None:
    # GIVEN make dev's server and eight sessions
    with local_server(tmp_path / "data") as server:
        sessions = [new_session(server) for _ in range(8)]

        def client(n: int) -> list[str]:
            """Ask for tickets, listings and documents of one session, alternating routes; what went wrong."""
            sid, auth = sessions[n]
            wrong = []
            with requests.Session() as http:
                for i in range(40):
                    path = f"photos/p{n}-{i}.png"
                    ticket = http.post(
                        f"{server.url}/v1/sessions/{sid}/uploads",
                        json={"path": path, "content_type": "image/png", "size": 100 + i},
                        headers=auth,
                        timeout=10,
                    )
                    if ticket.status_code != 201 or f"/sessions/{sid}/{path}" not in ticket.json().get("url", ""):
                        wrong.append(f"ticket {ticket.status_code} {ticket.text[:200]}")
                    listing = http.get(f"{server.url}/v1/sessions/{sid}/files", headers=auth, timeout=10)
                    if listing.status_code != 200 or listing.json() != {"files": []}:
                        wrong.append(f"listing {listing.status_code} {listing.text[:200]}")
                    put = http.put(
                        f"{server.url}/v1/sessions/{sid}/meta/doc", json={"n": n, "i": i}, headers=auth, timeout=10
                    )
                    got = http.get(f"{server.url}/v1/sessions/{sid}/meta/doc", headers=auth, timeout=10)
                    if put.status_code != 204 or got.json() != {"n": n, "i": i}:
                        wrong.append(f"document {n}/{i}: {put.status_code} {got.status_code} {got.text[:200]}")
            return wrong

        # WHEN eight clients call at once
        with ThreadPoolExecutor(8) as pool:
            problems = [p for wrong in pool.map(client, range(8)) for p in wrong]

        # THEN every answer is its own request's
        assert problems == []
