"""The test support itself: tests/servers.py starts, reports and stops children; tests/envs.py builds settings."""

from __future__ import annotations

import signal
import sys
from pathlib import Path

import pytest

from hera_sessions import config
from tests.envs import SERVICE_KEY, TOKEN_SECRET, service_env
from tests.servers import RedisServer, ServerProcess, free_port

STUBBORN = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('up', flush=True); time.sleep(60)"


def test_a_server_that_dies_before_it_is_ready_raises_with_its_log(tmp_path: Path) -> None:
    server = ServerProcess(
        [sys.executable, "-c", "import sys; print('port is taken'); sys.exit(3)"],
        port=free_port(),
        name="doomed",
        logs=tmp_path,
    )
    with pytest.raises(RuntimeError, match=r"doomed exited with 3(.|\n)*port is taken"):
        server.start()
    assert (tmp_path / "doomed.log").read_text() == "port is taken\n"


def test_readiness_can_be_a_check_of_its_own_and_stop_kills_what_ignores_sigterm(tmp_path: Path) -> None:
    log = tmp_path / "stubborn.log"
    server = ServerProcess(
        [sys.executable, "-c", STUBBORN],
        port=free_port(),
        name="stubborn",
        logs=tmp_path,
        ready=lambda: log.exists() and b"up" in log.read_bytes(),
    )
    with server:
        assert server.running
        server.stop(timeout=0.5)
    assert server.proc is not None
    assert server.proc.returncode == -signal.SIGKILL
    assert server.output() == b"up\n"


def test_a_redis_server_restarts_on_its_port_and_keeps_its_log_in_its_folder(tmp_path: Path) -> None:
    with RedisServer(tmp_path / "redis") as redis:
        port = redis.port
        redis.stop()
        redis.start()
        assert (redis.port, redis.command("PING")) == (port, True)
    assert not redis.running
    assert (tmp_path / "redis" / "redis.log").exists()


@pytest.mark.parametrize(
    ("storage", "metadata"),
    [("local", "local"), ("local", "redis"), ("s3", "redis"), ("gcs", "redis"), ("azure", "redis")],
)
def test_every_deployable_pair_gives_settings_the_service_accepts(storage: str, metadata: str, tmp_path: Path) -> None:
    extra = {"azure": {"AZURE_STORAGE_CONNECTION_STRING": "UseDevelopmentStorage=true"}}.get(storage, {})
    env = service_env(storage, metadata, bucket="b", sessions_dir=tmp_path, **extra)  # type: ignore[arg-type]
    settings = config.load(env, environ={})
    assert (settings.session_type, env["TOKEN_SECRET"], env["SERVICE_API_KEYS"]) == (
        metadata,
        TOKEN_SECRET,
        SERVICE_KEY,
    )
    assert env["STORAGE_MODE"] == ("local" if storage == "local" else "cloud")


def test_local_env_is_the_local_default(local_env: dict[str, str], sessions_dir: Path) -> None:
    assert local_env == {
        "STORAGE_MODE": "local",
        "SESSION_TYPE": "local",
        "SESSIONS_DIR": str(sessions_dir),
        "TOKEN_SECRET": TOKEN_SECRET,
        "SERVICE_API_KEYS": SERVICE_KEY,
    }


def test_overrides_win_and_none_leaves_a_setting_out() -> None:
    env = service_env("s3", "redis", bucket="b", service_keys=None, S3_BUCKET_NAME="other", PORT="3000")
    assert (env["S3_BUCKET_NAME"], env["PORT"], "SERVICE_API_KEYS" in env) == ("other", "3000", False)
    with pytest.raises(ValueError, match="sessions_dir"):
        service_env("local", "local")
