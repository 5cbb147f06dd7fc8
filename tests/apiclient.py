"""The v1 API of one runtime, called with HTTP API v2 events (as API Gateway calls the API function)."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from hera_sessions.http.event import http_api_event
from hera_sessions.runtime import Runtime
from tests.conftest import SERVICE_KEY


@dataclass
class Answer:
    status: int
    body: Any
    headers: dict[str, str]

    @property
    def code(self) -> str:
        return str(self.body["error"]["code"])


class Api:
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    def __call__(
        self,
        method: str,
        path: str,
        body: Any = None,
        token: str | None = None,
        headers: dict[str, str] | None = None,
        raw: str | None = None,
    ) -> Answer:
        all_headers = {"host": "api.example.com", **(headers or {})}
        if token:
            all_headers["authorization"] = f"Bearer {token}"
        data = raw.encode() if raw is not None else (json.dumps(body).encode() if body is not None else b"")
        answer = self.runtime.handle_http(http_api_event(method, path, all_headers, data))
        text = answer.get("body") or ""
        parsed = json.loads(text) if text and answer["headers"].get("Content-Type") == "application/json" else text
        return Answer(answer["statusCode"], parsed, answer["headers"])

    def session(self) -> tuple[str, str]:
        created = self("POST", "/v1/sessions", token=SERVICE_KEY)
        assert created.status == 201, created.body
        return created.body["session_id"], created.body["token"]

    def record(self, sid: str, path: str, body: bytes) -> None:
        """Store an object as a client would (the local storage then records it through its event)."""
        service = self.runtime.service()
        service.storage.write(f"sessions/{sid}/{path}", body)  # type: ignore[attr-defined]
        outbox = getattr(service.storage, "events", None)
        deadline = time.monotonic() + 15
        while outbox is not None and outbox.pending() and time.monotonic() < deadline:
            time.sleep(0.01)  # local storage's events are delivered by its outbox, after the write

    def ticket(self, sid: str, token: str, path: str, content_type: str, size: int, method: str = "PUT") -> Any:
        """An upload ticket (asserting it was issued)."""
        answer = self(
            "POST",
            f"/v1/sessions/{sid}/uploads",
            {"path": path, "content_type": content_type, "size": size, "method": method},
            token,
        )
        assert answer.status == 201, answer.body
        return answer.body
