"""The functions in a real Lambda runtime through `sam local`: run by ``make sam-local`` (scripts/sam-local.sh).

That script provides Docker, the base image and a ``sam build`` output, and names them in ``HERA_SAM_LOCAL_*``;
without them (a plain ``pytest``) nothing here is collected. moto and redis-server listen on the Docker bridge's
gateway address, where the containers reach this machine; ``env.json`` is rewritten to point there, and to allow
(with the bucket's CORS rules) the origin the demo page is served from (``Local.page_origin``).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.aws.conftest import NotificationQueue
from tests.browser.conftest import (  # noqa: F401 - Chromium fixtures (found by name), the hook for screenshots
    browser,
    context,
    demo,
    page,
    playwright,
    pytest_runtest_makereport,
)
from tests.conftest import ROOT
from tests.servers import MotoServer, RedisServer, ServerProcess, free_port

if not os.environ.get("HERA_SAM_LOCAL_BUILD"):
    collect_ignore_glob = ["test_*.py"]

REGION = "ap-northeast-1"
BUCKET = "hera-sessions-dev-example"  # the bucket events/ names
SERVICE_KEY = "dev-service-key"  # the key events/ use (env.json)
ORIGIN = "http://localhost:5173"
INIT_DURATION = re.compile(r"Init Duration: ([0-9.]+) ms")
DURATION = re.compile(r"(?<!Init )Duration: ([0-9.]+) ms")
#: Every figure measured in this run, printed at the end (docs/performance.md).
MEASURED: dict[str, list[float]] = {}


@dataclass
class Local:
    """What one `make sam-local` run made: the servers on the gateway and the settings of the functions."""

    gateway: str
    build: Path
    image: str
    arch: str
    redis_url: str
    moto_url: str
    env_file: Path
    workdir: Path
    page_port: int  # where test_browser_flow serves the demo page (its origin is allowed by CORS)
    servers: list[ServerProcess] = field(default_factory=list)

    @property
    def page_origin(self) -> str:
        return f"http://127.0.0.1:{self.page_port}"

    @property
    def template(self) -> Path:
        return self.build / "template.yaml"

    def sam_args(self) -> list[str]:
        """What every `sam local` command takes: the built template, our image, the host's architecture."""
        return [
            "--template",
            str(self.template),
            "--invoke-image",
            self.image,
            "--skip-pull-image",
            "--parameter-overrides",
            f"Architecture={self.arch}",
            "--env-vars",
            str(self.env_file),
            "--region",
            REGION,
        ]

    def settings(self) -> dict[str, str]:
        """The functions' settings (env.json as rewritten), for a Runtime in this process."""
        params: dict[str, str] = json.loads(self.env_file.read_text())["Parameters"]
        return {**params, "AWS_REGION": REGION}


def sam_env() -> dict[str, str]:
    """The environment of every `sam` process: dummy credentials (moto takes any), no profile, no telemetry."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(
        {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": REGION,
            "AWS_REGION": REGION,
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
            "SAM_CLI_TELEMETRY": "0",
        }
    )
    return env


@pytest.fixture(scope="session")
def local(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Local]:
    gateway = os.environ["HERA_SAM_LOCAL_GATEWAY"]
    workdir = tmp_path_factory.mktemp("samlocal")
    page_port = free_port()
    with contextlib.ExitStack() as stack:
        redis = stack.enter_context(RedisServer(workdir / "redis", "--protected-mode", "no", host=gateway))
        moto = stack.enter_context(MotoServer(workdir, host=gateway, env=sam_env()))
        env = json.loads((ROOT / "env.json").read_text())
        env["Parameters"]["REDIS_URL"] = redis.url
        env["Parameters"]["AWS_ENDPOINT_URL_S3"] = moto.url
        env["Parameters"]["CORS_ALLOWED_ORIGINS"] = f"{ORIGIN},http://127.0.0.1:{page_port}"
        env_file = workdir / "env.json"
        env_file.write_text(json.dumps(env, indent=2))
        yield Local(
            gateway=gateway,
            build=Path(os.environ["HERA_SAM_LOCAL_BUILD"]),
            image=os.environ["HERA_SAM_LOCAL_IMAGE"],
            arch=os.environ["HERA_SAM_LOCAL_ARCH"],
            redis_url=env["Parameters"]["REDIS_URL"],
            moto_url=env["Parameters"]["AWS_ENDPOINT_URL_S3"],
            env_file=env_file,
            workdir=workdir,
            page_port=page_port,
            servers=[redis, moto],
        )


@pytest.fixture(scope="session")
def s3(local: Local) -> Any:
    """A boto3 S3 client on moto, and the bucket events/ name (CORS for the demo page's origins)."""
    import boto3

    client = boto3.client(
        "s3",
        region_name=REGION,
        endpoint_url=local.moto_url,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    client.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
    from tests.aws.conftest import cors_rules

    client.put_bucket_cors(Bucket=BUCKET, CORSConfiguration={"CORSRules": cors_rules((ORIGIN, local.page_origin))})
    return client


def _serve(local: Local, command: str, name: str) -> Iterator[str]:
    """``sam local COMMAND`` on a free loopback port, warm containers (one per function, reused); its URL."""
    port = free_port()
    argv = ["sam", "local", command, "--host", "127.0.0.1", "--port", str(port), "--warm-containers", "LAZY",
            *local.sam_args()]  # fmt: skip
    server = ServerProcess(argv, port=port, name=name, env=sam_env(), logs=local.workdir, timeout=120)
    try:
        yield server.start().url
    finally:
        server.stop()
        if os.environ.get("HERA_SAM_LOCAL_SHOW_LOGS"):
            print(server.log.read_text())


@pytest.fixture(scope="module")
def api_url(local: Local) -> Iterator[str]:
    """``sam local start-api``: the API function behind SAM's emulated HTTP API ($default route)."""
    yield from _serve(local, "start-api", "start-api")


@pytest.fixture(scope="module")
def lambda_client(local: Local) -> Iterator[Any]:
    """A boto3 Lambda client on ``sam local start-lambda``."""
    import boto3
    from botocore.config import Config

    for url in _serve(local, "start-lambda", "start-lambda"):
        yield boto3.client(
            "lambda",
            region_name=REGION,
            endpoint_url=url,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            config=Config(read_timeout=120, retries={"max_attempts": 0}),
        )


@pytest.fixture(scope="module")
def queue(local: Local, s3: Any) -> NotificationQueue:
    """An SQS queue on moto that the bucket notifies of every object created or removed under sessions/."""
    import boto3

    sqs = boto3.client(
        "sqs", region_name=REGION, endpoint_url=local.moto_url, aws_access_key_id="t", aws_secret_access_key="t"
    )
    name = f"hera-events-{uuid.uuid4().hex[:8]}"
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    arn = f"arn:aws:sqs:{REGION}:123456789012:{name}"
    s3.put_bucket_notification_configuration(
        Bucket=BUCKET,
        NotificationConfiguration={
            "QueueConfigurations": [
                {
                    "QueueArn": arn,
                    "Events": ["s3:ObjectCreated:*", "s3:ObjectRemoved:*"],
                    "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": "sessions/"}]}},
                }
            ]
        },
    )
    return NotificationQueue(url, arn, sqs)


@dataclass
class Invoked:
    """One `sam local invoke`: the function's answer and what SAM reported."""

    answer: Any
    init_ms: float | None
    duration_ms: float | None
    log: str


def sam_invoke(local: Local, function: str, event: Path) -> Invoked:
    """``sam local invoke FUNCTION -e EVENT`` in a fresh container (a cold start); its answer is stdout's JSON."""
    started = time.monotonic()
    done = subprocess.run(
        ["sam", "local", "invoke", function, "-e", str(event), *local.sam_args()],
        env=sam_env(),
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    elapsed = time.monotonic() - started
    assert done.returncode == 0, f"sam local invoke {function} -e {event.name}: exit {done.returncode}\n{done.stderr}"
    lines = [line for line in done.stdout.splitlines() if line.strip()]
    assert lines, f"sam local invoke {function} -e {event.name} answered nothing\n{done.stderr}"
    answer = json.loads(lines[-1])
    init = INIT_DURATION.search(done.stderr)
    duration = DURATION.search(done.stderr)
    invoked = Invoked(
        answer, float(init.group(1)) if init else None, float(duration.group(1)) if duration else None, done.stderr
    )
    if invoked.init_ms is not None:
        MEASURED.setdefault(f"{function} Init Duration, as SAM reports it (ms)", []).append(invoked.init_ms)
    if invoked.duration_ms is not None:
        MEASURED.setdefault(f"{function} Duration of the first event in a fresh container (ms)", []).append(
            invoked.duration_ms
        )
    MEASURED.setdefault(f"{function} sam local invoke, whole command (s)", []).append(round(elapsed, 2))
    return invoked


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not MEASURED:
        return
    terminalreporter.section("sam local: measured")
    for name, values in sorted(MEASURED.items()):
        ordered = sorted(values)
        median = ordered[len(ordered) // 2]
        terminalreporter.write_line(f"{name}: n={len(values)} median={median:g} min={ordered[0]:g} max={ordered[-1]:g}")
