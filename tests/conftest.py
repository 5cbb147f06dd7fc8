"""Real servers, started once per test session on free loopback ports; never one that happens to run.

The servers are built in tests/servers.py (one ``ServerProcess``: start, wait, log, stop), the settings in
tests/envs.py (``service_env``); their names are re-exported here, where tests have always imported them."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.envs import SERVICE_KEY, TOKEN_SECRET, service_env
from tests.servers import MotoServer, RedisServer, ServerProcess, free_port, wait_for_port

__all__ = ["SERVICE_KEY", "TOKEN_SECRET", "MotoServer", "RedisServer", "ServerProcess", "free_port", "wait_for_port"]

ROOT = Path(__file__).resolve().parents[1]
EVENTS = ROOT / "events"


def load_event(name: str) -> dict[str, Any]:
    """A sample event from events/ (the same files `sam local invoke -e` takes)."""
    return json.loads((EVENTS / name).read_text())


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    with RedisServer(tmp_path_factory.mktemp("redis")) as server:
        yield server


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
    return service_env("local", "local", sessions_dir=sessions_dir)


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


@pytest.fixture(scope="session")
def moto_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoServer]:
    with MotoServer(tmp_path_factory.mktemp("moto")) as server:
        yield server


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
