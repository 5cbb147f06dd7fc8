"""Wiring, once per process: settings → secrets → storage + metadata → service → API.

Everything here is built on first use and reused (a Lambda cold start pays for it once; a warm call never).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import secrets
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hera_sessions import config, lazy

# Before anything imports Powertools' resolver or batch utilities, or redis-py: their package __init__s import
# every resolver, event source and client they offer; a function needs one of each (hera_sessions.lazy).
lazy.defer_all()

if TYPE_CHECKING:
    from aws_lambda_powertools.event_handler.api_gateway import APIGatewayHttpResolver

    from hera_sessions.config import Settings
    from hera_sessions.core.service import SessionService

logger = logging.getLogger("hera_sessions")

#: Powertools keeps the request being answered on its router *class* (``BaseRouter.current_event``, shared by every
#: resolver of the process), and the route's arguments on the resolver: two threads resolving at once answer each
#: other's requests. One request at a time goes through routing: the local server, Cloud Functions and Azure answer
#: on several threads (Lambda on one, where this lock is never contended).
_RESOLVING = threading.Lock()


def local_secret(sessions_dir: Path) -> str:
    """Local mode without TOKEN_SECRET: a random secret kept in SESSIONS_DIR, so tokens survive restarts."""
    path = Path(sessions_dir) / ".token_secret"
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    with os.fdopen(fd, "w") as f:
        f.write(secrets.token_urlsafe(32))
    return path.read_text().strip()


def resolve_settings(settings: Settings) -> Settings:
    """Settings with every secret reference replaced by its value (resolved once per process)."""
    from hera_sessions.backends.secrets import resolve, resolve_list

    token_secret = resolve(settings.token_secret) if settings.token_secret else None
    if token_secret is None:
        token_secret = local_secret(settings.sessions_dir)
    return dataclasses.replace(
        settings,
        redis_url=resolve(settings.redis_url) if settings.redis_url else None,
        token_secret=token_secret,
        token_secret_previous=resolve(settings.token_secret_previous) if settings.token_secret_previous else None,
        service_api_keys=resolve_list(settings.service_api_keys),
        cdn_private_key=resolve(settings.cdn_private_key) if settings.cdn_private_key else None,
    )


def build_service(settings: Settings) -> SessionService:
    from hera_sessions.backends.metadata import open_metadata
    from hera_sessions.backends.storage import open_storage
    from hera_sessions.core.service import SessionService
    from hera_sessions.core.tokens import TokenAuthority

    settings = resolve_settings(settings)
    assert settings.token_secret
    tokens = TokenAuthority(settings.token_secret, settings.token_secret_previous, settings.service_api_keys)
    service = SessionService(settings, open_storage(settings), open_metadata(settings), tokens)
    if service.storage.name == "local":  # local storage: its S3 notifications go through a durable outbox
        from hera_sessions.runtimes.local.outbox import connect_local_storage

        connect_local_storage(service)
    return service


class Runtime:
    """The process's settings, service and API app, each built once, on first use, thread-safely."""

    def __init__(self, overrides: dict[str, str] | None = None) -> None:
        self._overrides = overrides
        self._lock = threading.Lock()
        self._settings: Settings | None = None
        self._service: SessionService | None = None
        self._app: APIGatewayHttpResolver | None = None

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            self._settings = config.load(self._overrides)
        return self._settings

    def service(self) -> SessionService:
        if self._service is None:
            with self._lock:
                if self._service is None:
                    self._service = build_service(self.settings)
        return self._service

    @property
    def app(self) -> APIGatewayHttpResolver:
        if self._app is None:
            from hera_sessions.http.api import create_app

            self._app = create_app(self.settings, self.service)
        return self._app

    def prepare_snapshot(self) -> None:
        """With Lambda SnapStart, build the app and the service during init (no connection is opened), so the
        snapshot holds them and the first request after a restore does not pay for imports and set-up."""
        if self.settings.snap_start:
            _ = self.app
            self.service()

    def handle_http(self, event: dict[str, Any], context: Any = None) -> dict[str, Any]:
        """Answer one HTTP API v2 event (Lambda, or an event made from any HTTP request); one at a time."""
        with _RESOLVING:
            return self.app.resolve(event, context or _NoContext())  # type: ignore[arg-type]


class _NoContext:
    function_name = "hera-sessions-local"
    memory_limit_in_mb = 0
    invoked_function_arn = "arn:aws:lambda:local:000000000000:function:hera-sessions-local"
    aws_request_id = "local"


#: The process-wide runtime that entry points share (the environment is read on first use).
default = Runtime()
