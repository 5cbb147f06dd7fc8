"""The local server (``make dev``): :class:`~hera_sessions.runtimes.local.app.LocalApp` on waitress.

waitress reads each request whole (headers, then exactly ``Content-Length`` bytes or a decoded chunked body)
before the app sees it, refuses conflicting or malformed lengths, and runs the app on a small thread pool while
one event loop holds the connections: a stalled client holds no thread and is closed after ``timeout`` seconds
of silence, a request head not complete ``head_timeout`` seconds after its first byte, and a body that arrives
slower than ``min_body_rate`` bytes a second (on average, after ``timeout`` seconds). Errors waitress answers
itself are rendered as the API's JSON (S3's XML on ``/local-storage``).
"""

from __future__ import annotations

import errno
import logging
import resource
import signal
import socket
import sys
import threading
import time
from typing import Any

from waitress.channel import HTTPChannel
from waitress.parser import HTTPRequestParser, ParsingError
from waitress.server import TcpWSGIServer, create_server
from waitress.task import ErrorTask, WSGITask
from waitress.utilities import BadRequest

from hera_sessions import config
from hera_sessions.backends.storage.local import LocalStorage
from hera_sessions.runtime import Runtime
from hera_sessions.runtimes.local.app import CHUNKED, FORM_OVERHEAD, LocalApp, error_answer, status_line
from hera_sessions.runtimes.local.outbox import Outbox

logger = logging.getLogger("hera_sessions.runtimes.local.server")

#: Seconds of silence after which a connection is closed (a stalled upload, an idle keep-alive).
IDLE_TIMEOUT = 30
BACKLOG = 1024
THREADS = 8
#: Seconds from a request's first byte until its head (request line and headers) must be complete.
HEAD_TIMEOUT = 10
#: The slowest body accepted, in bytes a second on average, once it has been arriving for ``timeout`` seconds.
MIN_BODY_RATE = 1024
#: Connections held at once (waitress's default is 100); kept below the open-file limit.
CONNECTION_LIMIT = 1000


def connection_limit(wanted: int = CONNECTION_LIMIT) -> int:
    """``wanted``, or fewer when the process may not open that many files (room left for everything else)."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    return wanted if soft == resource.RLIM_INFINITY else max(16, min(wanted, soft - 64))


class _Parser(HTTPRequestParser):  # type: ignore[misc]
    """waitress's parser, refusing a request that declares both a transfer coding and a length (smuggling)."""

    def parse_header(self, header_plus: bytes) -> None:
        super().parse_header(header_plus)
        headers = self.headers
        if "CONTENT_LENGTH" in headers and (self.chunked or "TRANSFER_ENCODING" in headers):
            raise ParsingError("A request may not have both Transfer-Encoding and Content-Length.")


class _ErrorTask(ErrorTask):  # type: ignore[misc]
    """waitress's own refusals (bad framing, too large headers) in the API's JSON or S3's XML."""

    def execute(self) -> None:
        error = self.request.error
        path = str(getattr(self.request, "path", "") or "")
        status, headers, body = error_answer(
            self.channel.server.hera_app,
            path,
            int(error.code),
            str(error.body or error.reason),
            s3_code=getattr(error, "s3_code", None),
            json_code=getattr(error, "json_code", None),
        )
        self.status = status_line(status)
        self.response_headers.extend(headers.items())
        self.set_close_on_finish()
        self.content_length = len(body)
        self.write(body)


class _WSGITask(WSGITask):  # type: ignore[misc]
    """Tells the app that the body came chunked (waitress decodes it and sets CONTENT_LENGTH itself)."""

    def get_environment(self) -> dict[str, object]:
        environ: dict[str, object] = super().get_environment()
        environ[CHUNKED] = bool(self.request.chunked)
        return environ


class IncompleteBody(BadRequest):  # type: ignore[misc]
    """The client ended its side before sending the ``Content-Length`` it declared (S3's ``IncompleteBody``)."""

    s3_code = "IncompleteBody"
    json_code = "incomplete_body"

    def __init__(self) -> None:
        super().__init__("You did not provide the number of bytes specified by the Content-Length HTTP header.")


class _Channel(HTTPChannel):  # type: ignore[misc]
    task_class = _WSGITask
    error_task_class = _ErrorTask
    parser_class = _Parser
    _ended = False  # the client shut down its side (half-close); it may still read our answer
    _head_started: float | None = None  # when the request being read sent its first byte
    _body_started: float | None = None  # when its head was complete
    _body_bytes = 0

    def received(self, data: bytes) -> bool:
        """As waitress's, timing the request being read (for :meth:`overdue`)."""
        now = time.monotonic()
        if self.request is None:
            self._head_started, self._body_started, self._body_bytes = now, None, 0
        elif self._body_started is not None:
            self._body_bytes += len(data)
        result = bool(super().received(data))
        request = self.request
        if request is None:
            self._head_started = None
        elif request.headers_finished and self._body_started is None:
            self._body_started = now
        return result

    def overdue(self, now: float, head_timeout: float, body_grace: float, min_rate: float) -> bool:
        """The request being read is too slow: its head after ``head_timeout`` s, or its body below
        ``min_rate`` bytes a second after ``body_grace`` s."""
        if self.request is None or self.requests or self._head_started is None:
            return False  # between requests (the idle timeout applies), or the app is answering
        if self._body_started is None:
            return now - self._head_started > head_timeout
        elapsed = now - self._body_started
        return elapsed > body_grace and self._body_bytes < min_rate * elapsed

    def readable(self) -> bool:
        return not self._ended and bool(super().readable())

    def handle_read(self) -> None:
        """As waitress's, but a body cut short by a half-close is answered ``400 IncompleteBody``, never served."""
        try:
            data = self.socket.recv(self.adj.recv_bytes)
        except (BlockingIOError, InterruptedError):
            return  # nothing to read after all; the loop calls again
        except OSError:
            self.handle_close()
            return
        if data:
            self.last_activity = time.time()
            self.received(data)
            return
        request: Any = getattr(self, "request")  # noqa: B009 (waitress's attribute is untyped)
        if request is None or not request.headers_finished or request.completed:
            self.handle_close()  # a clean end between requests: nothing to answer
            return
        self._ended = True
        request.error = IncompleteBody()
        request.completed = True
        self.request = None
        with self.requests_lock:
            self.requests.append(request)
            if len(self.requests) == 1:
                self.server.add_task(self)


class LocalServer:
    """The local server on a thread (tests) or in the foreground (``make dev``).

    ``timeout``: seconds of silence before a connection is closed (checked every ``timeout / 4`` seconds);
    ``head_timeout``: seconds from a request's first byte to the end of its head; ``min_body_rate``: the slowest
    body kept (bytes a second, on average, once it has arrived for ``timeout`` seconds). Offenders are closed.
    """

    def __init__(
        self,
        runtime: Runtime,
        host: str | None = None,
        port: int | None = None,
        timeout: int = IDLE_TIMEOUT,
        threads: int = THREADS,
        *,
        head_timeout: float = HEAD_TIMEOUT,
        min_body_rate: float = MIN_BODY_RATE,
        connections: int = CONNECTION_LIMIT,
    ) -> None:
        self.runtime = runtime
        self.head_timeout, self.min_body_rate, self.timeout = head_timeout, min_body_rate, timeout
        app = LocalApp(runtime)
        self.server: TcpWSGIServer = create_server(
            app,
            host=host or runtime.settings.host,
            port=runtime.settings.port if port is None else port,
            threads=threads,
            backlog=BACKLOG,
            connection_limit=connection_limit(connections),
            channel_timeout=timeout,
            # the largest body any route takes (a form POST of the largest upload); larger ones are never buffered
            max_request_body_size=max(runtime.settings.upload_max_bytes, runtime.settings.meta_max_bytes)
            + FORM_OVERHEAD,
            cleanup_interval=int(max(1, min(timeout, head_timeout) // 4)),
            ident="hera-sessions",
            expose_tracebacks=False,
        )
        self.server.channel_class = _Channel
        self.server.hera_app = app  # for the answers to what waitress refuses itself (_ErrorTask)
        idle_rule = self.server.maintenance

        def maintenance(now: float) -> None:  # waitress's idle rule, then the head and body deadlines
            idle_rule(now)
            clock = time.monotonic()
            for channel in list(self.server.active_channels.values()):
                if isinstance(channel, _Channel) and channel.overdue(
                    clock, self.head_timeout, self.timeout, self.min_body_rate
                ):
                    logger.info("closing a connection whose request is too slow")
                    channel.will_close = True

        self.server.maintenance = maintenance
        self._thread: threading.Thread | None = None
        self._sweepers: list[threading.Event] = []

    @property
    def address(self) -> tuple[str, int]:
        return str(self.server.effective_host), int(self.server.effective_port)

    @property
    def url(self) -> str:
        host, port = self.address
        return f"http://{host}:{port}"

    def sweep_forever(self, every: float = 3600) -> threading.Event:
        """Expire old objects as the bucket lifecycle would (``OBJECT_EXPIRY_DAYS``), now and then hourly; setting
        the returned event (or :meth:`stop`) ends it."""
        stopping = threading.Event()
        self._sweepers.append(stopping)

        def run() -> None:
            while not stopping.is_set():
                try:
                    storage = self.runtime.service().storage
                    if isinstance(storage, LocalStorage):
                        expired = storage.expire(self.runtime.settings.object_expiry_days * 86_400)
                        if expired:
                            logger.info(
                                "lifecycle: %d objects older than %d days deleted",
                                expired,
                                self.runtime.settings.object_expiry_days,
                            )
                except Exception:  # the next round tries again; the sweeper never dies
                    logger.exception("lifecycle sweep failed")
                stopping.wait(every)

        threading.Thread(target=run, name="hera-lifecycle", daemon=True).start()
        return stopping

    def start(self) -> LocalServer:
        storage = self.runtime.service().storage
        if isinstance(storage, LocalStorage):  # what an interrupted upload left behind
            swept = storage.sweep_staging()
            if swept:
                logger.info("removed %d staging files left by interrupted uploads", swept)
        self._thread = threading.Thread(target=self.server.run, name="hera-local", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Close the listening socket and every connection, then let the worker threads finish."""
        for sweeper in self._sweepers:
            sweeper.set()
        done = threading.Event()

        def close_all() -> None:  # runs on the event loop's thread, which owns the sockets
            for dispatcher in list(self.server._map.values()):
                dispatcher.close()
            done.set()

        if self._thread is not None and self._thread.is_alive():
            try:
                self.server.trigger.pull_trigger(close_all)
            except OSError:  # the loop closed its trigger already: it is on its way out, its sockets with it
                close_all()
            else:
                done.wait(5)
            self._thread.join(5)
        else:
            close_all()
        self.server.task_dispatcher.shutdown(timeout=5)


def serve(overrides: dict[str, str] | None = None) -> None:
    """Run until Ctrl-C or SIGTERM; the runtime is built before the first request, so bad settings fail fast."""
    handler = logging.StreamHandler()
    handler.setFormatter(ExtraFieldsFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=logging.INFO, handlers=[handler])
    from hera_sessions.core.errors import ConfigError

    runtime = Runtime(overrides)
    try:
        runtime.service()
    except ConfigError as exc:
        print(f"hera-sessions: {exc.message}", file=sys.stderr)
        raise SystemExit(2) from None
    settings = runtime.settings
    try:
        server = LocalServer(runtime)
    except (OSError, ValueError) as exc:  # the port is taken, or HOST is no address here (waitress: ValueError)
        runtime.service().metadata.close()
        print(
            f"hera-sessions: cannot listen on {settings.host}:{settings.port}: {_listen_problem(exc)}", file=sys.stderr
        )
        raise SystemExit(2) from None
    server.sweep_forever()
    if settings.open_session_creation:
        logging.getLogger("hera_sessions").warning(
            "SERVICE_API_KEYS is empty: anyone who reaches this server can create sessions (local mode)"
        )
    # The reader (hera_sessions.reader) in another process signs its download URLs for this address.
    published = settings.sessions_dir / config.SERVER_URL_FILE
    published.write_text(settings.base_url + "\n")
    print(
        f"hera-sessions serving {server.url} (storage: {settings.storage_backend}, "
        f"metadata: {settings.session_type}, data: {settings.sessions_dir.resolve()}); Ctrl-C stops it",
        flush=True,
    )
    # A plain list, not a threading.Event: a handler runs inside whatever the main thread was doing, and an
    # Event.set() that interrupts another Event.set() (two signals in a row) deadlocks on the Event's own lock.
    stopping: list[int] = []

    def stop(signum: int, frame: object) -> None:
        stopping.append(signum)

    for signum in (signal.SIGINT, signal.SIGTERM):  # also when started with SIGINT ignored (a background job)
        signal.signal(signum, stop)
    server.start()
    try:
        while not stopping:
            time.sleep(0.2)
    finally:
        server.stop()
        outbox = getattr(runtime.service().storage, "events", None)
        if isinstance(outbox, Outbox):
            outbox.stop()
        runtime.service().metadata.close()
        published.unlink(missing_ok=True)
        print("hera-sessions stopped", flush=True)


if __name__ == "__main__":
    serve()


class ExtraFieldsFormatter(logging.Formatter):
    """The text log line of make dev, followed by the fields a call passed in ``extra`` (``code=... path=...
    session_id=...``): the same fields the clouds' JSON logs carry, which a plain format would drop."""

    STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        fields = [f"{k}={v}" for k, v in vars(record).items() if k not in self.STANDARD and not k.startswith("_")]
        return f"{line} {' '.join(fields)}" if fields else line


def _listen_problem(exc: OSError | ValueError) -> str:
    if isinstance(exc, OSError) and exc.errno == errno.EADDRINUSE:
        return "the port is already in use (another make dev?); stop that one or set PORT to a free port"
    if isinstance(exc, ValueError | socket.gaierror) or exc.errno == errno.EADDRNOTAVAIL:
        return "HOST is not an address of this machine (127.0.0.1 serves this machine only)"
    return exc.strerror or str(exc)
