"""``hera-sessions cost``: what a month of the serverless stacks costs, read from what they deploy.

The resources come from the deployment's own files: ``template.yaml`` (with its parameters' defaults, or a
``samconfig.toml`` environment's overrides) for AWS and ``gcp/deploy.sh``'s settings for Google Cloud. The prices
come from one dated table, ``data/prices.json``; the per-request durations are the measured ones it cites. Every
usage assumption is a field of :class:`Usage`, printed with the estimate. The method: docs/cost.md.
"""

from __future__ import annotations

import json
import math
import re
import tomllib
from dataclasses import asdict, dataclass
from importlib import resources
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
# The smallest samconfig.toml environment that creates its own Redis, as the container version ran its own.
DEFAULT_CONFIG_ENV = "staging"


class CostInputError(ValueError):
    """A deployment file the estimate needs is missing or unreadable."""


@dataclass(frozen=True)
class Usage:
    """A month of use. The defaults are the container version's estimate: 1,000 users, 1.5 MB a session."""

    users: int = 1000
    mb_per_session: float = 1.5
    sessions_per_user: float = 1
    files_per_session: int = 3
    downloads_per_file: float = 6.7  # that estimate's 10 GB of transfer for 1.5 GB of photos
    api_calls_per_session: int = 60  # session, tickets, lists, download URLs, profile and conversation writes
    events_per_file: int = 2  # created, then removed (deleted, erased or expired)

    @property
    def sessions(self) -> float:
        return self.users * self.sessions_per_user

    @property
    def files(self) -> float:
        return self.sessions * self.files_per_session

    @property
    def uploaded_gb(self) -> float:
        return self.sessions * self.mb_per_session / 1000

    @property
    def api_requests(self) -> float:
        return self.sessions * self.api_calls_per_session

    @property
    def events(self) -> float:
        return self.files * self.events_per_file


@dataclass(frozen=True)
class Line:
    """One line of the bill: ``quantity`` of ``unit`` at ``unit_price`` dollars."""

    item: str
    quantity: float
    unit: str
    unit_price: float
    always_on: bool

    @property
    def monthly(self) -> float:
        return self.quantity * self.unit_price


@dataclass(frozen=True)
class Estimate:
    cloud: str
    region: str
    prices_as_of: str
    usage: Usage
    lines: list[Line]
    container_total: float
    container_lines: dict[str, float]

    @property
    def total(self) -> float:
        return sum(line.monthly for line in self.lines)

    @property
    def always_on(self) -> float:
        return sum(line.monthly for line in self.lines if line.always_on)

    def to_json(self) -> dict[str, Any]:
        return {
            "cloud": self.cloud,
            "region": self.region,
            "prices_as_of": self.prices_as_of,
            "usage": asdict(self.usage),
            "lines": [{**asdict(line), "monthly": round(line.monthly, 4)} for line in self.lines],
            "total": round(self.total, 2),
            "always_on": round(self.always_on, 2),
            "container_total": self.container_total,
            "container_lines": self.container_lines,
        }

    def render(self) -> str:
        rows = [
            f"{'item':44} {'quantity':>14} {'unit':18} {'unit $':>11} {'monthly $':>10}",
        ]
        for line in self.lines:
            mark = "*" if line.always_on else " "
            rows.append(
                f"{mark}{line.item:43} {line.quantity:>14,.2f} {line.unit:18} {line.unit_price:>11.6g}"
                f" {line.monthly:>10.2f}"
            )
        u = self.usage
        rows += [
            "",
            f"serverless ({self.cloud}, {self.region}): ${self.total:,.2f} a month,"
            f" of which ${self.always_on:,.2f} always on (* lines: billed by the hour, used or not)",
            f"the container version, as its deployment guide estimated it: ${self.container_total:,.2f} a month"
            f" ({', '.join(f'{k} ${v:g}' for k, v in self.container_lines.items())})",
            f"usage: {u.users:,} users x {u.sessions_per_user:g} session, {u.mb_per_session:g} MB and"
            f" {u.files_per_session} files a session, {u.downloads_per_file:g} downloads a file,"
            f" {u.api_calls_per_session} API calls a session",
            f"prices: list prices as of {self.prices_as_of} (data/prices.json); method: docs/cost.md",
        ]
        return "\n".join(rows)


def load_prices() -> dict[str, Any]:
    return json.loads(resources.files("hera_sessions").joinpath("data/prices.json").read_text())  # type: ignore[no-any-return]


def estimate(
    cloud: str, usage: Usage, *, template: Path | None = None, config_env: str | None = DEFAULT_CONFIG_ENV
) -> Estimate:
    prices = load_prices()
    if cloud == "aws":
        params, resources_ = _aws_stack(template or REPO / "template.yaml", config_env, prices["aws"]["region"])
        lines = _aws_lines(params, resources_, usage, prices)
    else:
        lines = _gcp_lines(_gcp_settings(REPO / "gcp"), usage, prices)
    container = prices["container"]
    return Estimate(
        cloud=cloud,
        region=prices[cloud]["region"],
        prices_as_of=prices["as_of"],
        usage=usage,
        lines=lines,
        container_total=float(container[cloud]["total"]),
        container_lines=container[cloud]["lines"],
    )


# -- AWS: template.yaml ------------------------------------------------------------------------------------------


class CfnLoader:
    """PyYAML's safe loader that keeps CloudFormation's short tags (``!Ref X`` → ``{"Ref": "X"}``)."""

    @staticmethod
    def load(text: str) -> Any:
        import yaml

        class Loader(yaml.SafeLoader):  # type: ignore[misc]
            pass

        def tag(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
            value: Any
            if isinstance(node, yaml.ScalarNode):
                value = loader.construct_scalar(node)
            elif isinstance(node, yaml.SequenceNode):
                value = loader.construct_sequence(node, deep=True)
            else:
                value = loader.construct_mapping(node, deep=True)
            name = suffix if suffix in ("Ref", "Condition") else f"Fn::{suffix}"
            if name == "Fn::GetAtt" and isinstance(value, str):
                value = value.split(".", 1)
            return {name: value}

        Loader.add_multi_constructor("!", tag)
        return yaml.load(text, Loader=Loader)  # noqa: S506 - a SafeLoader subclass


def _aws_stack(template: Path, config_env: str | None, region: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The template's parameters (defaults, then the samconfig environment's overrides) and active resources."""
    try:
        doc = CfnLoader.load(template.read_text())
    except OSError as exc:
        raise CostInputError(f"cannot read the template {template}: {exc.strerror}") from None
    params: dict[str, Any] = {name: p.get("Default", "") for name, p in (doc.get("Parameters") or {}).items()}
    params["AWS::Region"] = region
    if config_env:
        params.update(samconfig_overrides(template.parent / "samconfig.toml", config_env))
    if params.get("RedisMode") == "create" and not params.get("VpcId"):
        # A deploy that creates Redis is given a VPC and two subnets (the template's Rules insist): price those.
        params.update(VpcId="vpc-to-be-given", PrivateSubnetIds="subnet-a,subnet-b")
    conditions = doc.get("Conditions") or {}
    cache: dict[str, bool] = {}

    def value(node: Any) -> Any:
        if isinstance(node, list):
            return [value(item) for item in node]
        if not isinstance(node, dict):
            return node
        if len(node) != 1 or not next(iter(node)).startswith(("Ref", "Condition", "Fn::")):
            return {k: value(v) for k, v in node.items()}
        ((op, arg),) = node.items()
        if op == "Ref":
            return params.get(arg, arg)
        if op == "Condition":
            return condition(arg)
        if op == "Fn::Equals":
            return str(value(arg[0])) == str(value(arg[1]))
        if op == "Fn::Not":
            return not value(arg[0])
        if op == "Fn::And":
            return all(value(a) for a in arg)
        if op == "Fn::Or":
            return any(value(a) for a in arg)
        if op == "Fn::If":
            return value(arg[1] if condition(arg[0]) else arg[2])
        if op == "Fn::Sub" and isinstance(arg, str):
            return re.sub(r"\$\{([\w:]+)\}", lambda m: str(params.get(m.group(1), m.group(0))), arg)
        if op == "Fn::Join":
            parts = value(arg[1])
            return arg[0].join(str(value(p)) for p in (parts if isinstance(parts, list) else [parts]))
        return node

    def condition(name: str) -> bool:
        if name not in cache:
            cache[name] = bool(value(conditions.get(name, True)))
        return cache[name]

    # SAM merges Globals.Function into every function; so does this, so a function's own setting wins
    function_globals = (doc.get("Globals") or {}).get("Function") or {}
    active = []
    for name, res in (doc.get("Resources") or {}).items():
        if "Condition" in res and not condition(res["Condition"]):
            continue
        own = res.get("Properties") or {}
        merged = {**function_globals, **own} if res["Type"] == "AWS::Serverless::Function" else own
        active.append({"Name": name, "Type": res["Type"], "Properties": {k: value(v) for k, v in merged.items()}})
    return params, active


def samconfig_overrides(samconfig: Path, env: str) -> dict[str, str]:
    try:
        config = tomllib.loads(samconfig.read_text())
    except OSError as exc:
        raise CostInputError(f"cannot read {samconfig}: {exc.strerror}") from None
    try:
        overrides = config[env]["deploy"]["parameters"].get("parameter_overrides", [])
    except KeyError:
        raise CostInputError(f"{samconfig.name} has no [{env}.deploy.parameters]") from None
    if isinstance(overrides, str):
        overrides = re.findall(r'(\w+)=("[^"]*"|\S+)', overrides)
        return {k: v.strip('"') for k, v in overrides}
    return dict(item.split("=", 1) for item in overrides)


def _aws_lines(params: dict[str, Any], stack: list[dict[str, Any]], usage: Usage, prices: dict[str, Any]) -> list[Line]:
    p, hours, measured = prices["aws"], prices["hours_per_month"], prices["measured"]
    lines: list[Line] = []

    def of(kind: str) -> list[dict[str, Any]]:
        return [r for r in stack if r["Type"] == kind]

    for group in of("AWS::ElastiCache::ReplicationGroup"):
        node, count = group["Properties"]["CacheNodeType"], int(group["Properties"].get("NumCacheClusters", 1))
        if node not in p["elasticache_node_hour"]:
            raise CostInputError(f"no price for ElastiCache node type {node} in data/prices.json")
        lines.append(
            Line(f"ElastiCache {node} x {count}", count * hours, "node-hours", p["elasticache_node_hour"][node], True)
        )
    subnets = [s for s in str(params.get("PrivateSubnetIds", "")).split(",") if s.strip()]
    azs = max(len(subnets), 2)
    for endpoint in of("AWS::EC2::VPCEndpoint"):
        service = str(endpoint["Properties"].get("ServiceName", "")).rsplit(".", 1)[-1]
        if endpoint["Properties"].get("VpcEndpointType") == "Interface":
            lines.append(
                Line(
                    f"VPC interface endpoint {service} ({azs} AZs)",
                    azs * hours,
                    "AZ-hours",
                    p["interface_endpoint_az_hour"],
                    True,
                )
            )
        else:
            lines.append(Line(f"VPC gateway endpoint {service}", hours, "hours", p["gateway_endpoint_hour"], True))
    secrets = len(of("AWS::SecretsManager::Secret"))
    lines.append(Line(f"Secrets Manager ({secrets} secrets)", secrets, "secret-months", p["secret_month"], True))

    functions = of("AWS::Serverless::Function")
    function = functions[0]["Properties"] if functions else {}  # both take Globals' memory and architecture
    arch = (function.get("Architectures") or ["arm64"])[0]
    memory_gb = int(function.get("MemorySize", 512)) / 1024
    batch = max((int(m["Properties"].get("BatchSize", 10)) for m in of("AWS::Lambda::EventSourceMapping")), default=10)
    api_ms = (
        measured["api_ms_warm"] * (1 - measured["cold_start_share"])
        + measured["api_ms_cold"] * measured["cold_start_share"]
    )
    # At this traffic an event rarely finds another in the batching window: one invocation an event, at most
    # what the batch size allows when they do arrive together.
    event_invocations = max(usage.events / batch, usage.events)
    invocations = usage.api_requests + event_invocations
    gb_seconds = (usage.api_requests * api_ms + event_invocations * measured["event_invocation_ms"]) / 1000 * memory_gb
    lines += [
        Line(
            f"Lambda requests ({len(functions)} functions)",
            invocations / 1e6,
            "million requests",
            p["lambda_request_million"],
            False,
        ),
        Line(
            f"Lambda compute ({arch}, {memory_gb * 1024:.0f} MB)",
            gb_seconds,
            "GB-seconds",
            p["lambda_gb_second"][arch],
            False,
        ),
        Line(
            "API Gateway HTTP API", usage.api_requests / 1e6, "million requests", p["http_api_request_million"], False
        ),
    ]
    lines += _object_storage_lines(
        "S3 Standard",
        params.get("ObjectExpiryDays", 7),
        usage,
        gb_month=p["s3_standard_gb_month"],
        put=p["s3_put_thousand"],
        get=p["s3_get_thousand"],
        egress=p["internet_egress_gb"],
    )
    if of("AWS::SQS::Queue"):
        lines.append(
            Line(
                "SQS (send, receive, delete an event)",
                3 * usage.events / 1e6,
                "million requests",
                p["sqs_request_million"],
                False,
            )
        )
    log_gb = invocations * measured["log_bytes_per_invocation"] / 1e9
    lines.append(Line("CloudWatch Logs ingestion", log_gb, "GB", p["logs_ingest_gb"], False))
    return lines


def _object_storage_lines(
    name: str, expiry_days: Any, usage: Usage, *, gb_month: float, put: float, get: float, egress: float
) -> list[Line]:
    """Storage held for the lifecycle's days (a month at most), one write a file, downloads, their transfer."""
    held_gb = usage.uploaded_gb * min(int(expiry_days), 30) / 30
    return [
        Line(f"{name} storage (kept {int(expiry_days)} days)", held_gb, "GB-months", gb_month, False),
        Line(f"{name} uploads", usage.files / 1000, "thousand writes", put, False),
        Line(f"{name} downloads", usage.files * usage.downloads_per_file / 1000, "thousand reads", get, False),
        Line("Internet transfer (downloads)", usage.uploaded_gb * usage.downloads_per_file, "GB", egress, False),
    ]


# -- Google Cloud: gcp/deploy.sh ---------------------------------------------------------------------------------


def _gcp_settings(folder: Path) -> dict[str, str]:
    """``deploy.sh``'s settings (its ``NAME="${NAME:-default}"`` lines, the connector's and functions' flags)
    and the lifecycle rule's age from ``lifecycle.json``."""
    try:
        text = (folder / "deploy.sh").read_text()
        lifecycle = json.loads((folder / "lifecycle.json").read_text())
    except OSError as exc:
        raise CostInputError(f"cannot read {exc.filename}: {exc.strerror}") from None
    settings = dict(re.findall(r'^([A-Z_]+)="\$\{\1:-([^}]*)\}"', text, re.M))
    for flag in ("machine-type", "min-instances", "memory"):
        found = re.search(rf"--{flag}=(\S+)", text)
        if found:
            settings[flag] = found.group(1)
    ages = [r["condition"]["age"] for r in lifecycle.get("rule", []) if r["action"]["type"] == "Delete"]
    settings["expiry-days"] = str(min(ages, default=30))
    return settings


def _gcp_lines(settings: dict[str, str], usage: Usage, prices: dict[str, Any]) -> list[Line]:
    p, hours, measured = prices["gcp"], prices["hours_per_month"], prices["measured"]
    tier, size = settings.get("REDIS_TIER", "basic"), float(settings.get("REDIS_SIZE_GB", "1"))
    machine, instances = settings.get("machine-type", "e2-micro"), int(settings.get("min-instances", "2"))
    memory_gib = int(settings.get("memory", "512Mi").rstrip("Mi")) / 1024
    vcpu = 0.333 if memory_gib <= 0.5 else 1.0  # what Cloud Functions gen2 gives that memory by default
    invocations = usage.api_requests + usage.events
    # Cloud Run bills instance time in 100 ms steps.
    seconds = (
        usage.api_requests * math.ceil(measured["api_ms_warm"] / 100)
        + usage.events * math.ceil(measured["event_invocation_ms"] / 100)
    ) * 0.1
    lines = [
        Line(
            f"Memorystore for Redis {tier} {size:g} GB", size * hours, "GB-hours", p["memorystore_gb_hour"][tier], True
        ),
        Line(
            f"Serverless VPC Access connector {machine} x {instances}",
            instances * hours,
            "instance-hours",
            p["compute_instance_hour"][machine],
            True,
        ),
        # the token secret, the service keys, the Redis URL (and the CDN key when Cloud CDN signs)
        Line("Secret Manager (3 secrets)", 3, "version-months", p["secret_version_month"], True),
        Line("Cloud Functions requests", invocations / 1e6, "million requests", p["functions_request_million"], False),
        Line(f"Cloud Functions CPU ({vcpu:g} vCPU)", seconds * vcpu, "vCPU-seconds", p["functions_vcpu_second"], False),
        Line(
            f"Cloud Functions memory ({memory_gib * 1024:.0f} MiB)",
            seconds * memory_gib,
            "GiB-seconds",
            p["functions_gib_second"],
            False,
        ),
    ]
    lines += _object_storage_lines(
        "Cloud Storage Standard",
        settings["expiry-days"],
        usage,
        gb_month=p["gcs_standard_gb_month"],
        put=p["gcs_class_a_thousand"],
        get=p["gcs_class_b_thousand"],
        egress=p["internet_egress_gb"],
    )
    return lines
