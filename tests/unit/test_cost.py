"""``hera-sessions cost`` run as a user runs it: a subprocess, the repository's own template and scripts."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def cost(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "shared")}
    return subprocess.run(
        [sys.executable, "-m", "hera_sessions.cli", "cost", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )


def estimate(*args: str) -> dict:
    done = cost("--json", *args)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def line(result: dict, prefix: str) -> dict:
    (found,) = [item for item in result["lines"] if item["item"].startswith(prefix)]
    return found


def test_the_default_estimate_prints_a_total_beside_the_container_versions() -> None:
    # GIVEN the repository as it is, WHEN the estimate runs with its defaults
    aws, gcp = cost(), cost("--cloud", "gcp")
    # THEN each prints its lines, a total and the container version's $28 / $40
    assert aws.returncode == gcp.returncode == 0, aws.stderr + gcp.stderr
    assert "ElastiCache cache.t4g.micro x 1" in aws.stdout
    assert "serverless (aws, ap-northeast-1): $" in aws.stdout
    assert "$28.00 a month" in aws.stdout
    assert "Memorystore for Redis basic 1 GB" in gcp.stdout
    assert "Serverless VPC Access connector e2-micro x 2" in gcp.stdout
    assert "$40.00 a month" in gcp.stdout
    assert aws.stderr == gcp.stderr == ""


def test_json_has_the_lines_and_their_sum() -> None:
    result = estimate()
    assert result["usage"]["users"] == 1000
    assert result["usage"]["mb_per_session"] == 1.5
    assert result["container_total"] == 28
    assert abs(sum(item["monthly"] for item in result["lines"]) - result["total"]) < 0.01
    assert result["always_on"] == round(sum(i["monthly"] for i in result["lines"] if i["always_on"]), 2)
    assert result["prices_as_of"]


def test_more_users_scale_what_they_use_and_not_what_is_always_on() -> None:
    small, large = estimate("--users", "1000"), estimate("--users", "10000")
    for prefix in ("ElastiCache", "VPC interface endpoint", "Secrets Manager"):
        assert line(small, prefix)["monthly"] == line(large, prefix)["monthly"]
    for prefix in ("API Gateway HTTP API", "Lambda compute", "S3 Standard storage", "Internet transfer"):
        assert line(large, prefix)["monthly"] > 9 * line(small, prefix)["monthly"] > 0
    bigger = estimate("--mb-per-session", "15")
    assert line(bigger, "S3 Standard storage")["quantity"] > 9 * line(small, "S3 Standard storage")["quantity"]


def test_the_estimate_follows_the_template_and_the_environment(tmp_path: Path) -> None:
    # GIVEN a copy of the template whose Redis defaults differ, beside the repository's samconfig.toml
    template = tmp_path / "template.yaml"
    text = (ROOT / "template.yaml").read_text()
    text = text.replace("Default: cache.t4g.micro", "Default: cache.t4g.medium")
    template.write_text(text.replace("    MaxValue: 6\n    Default: 1\n", "    MaxValue: 6\n    Default: 3\n"))
    # WHEN it is priced with the template's own defaults (RedisMode=create: the VPC it needs is priced too)
    result = estimate("--template", str(template), "--config-env", "none")
    # THEN ElastiCache is priced for the template's node type and count
    assert line(result, "ElastiCache cache.t4g.medium x 3")["monthly"] > 0
    assert line(result, "VPC interface endpoint secretsmanager (2 AZs)")["monthly"] > 0
    (tmp_path / "samconfig.toml").write_text(
        '[big.deploy.parameters]\nparameter_overrides = ["RedisMode=create", "RedisNodeCount=3"]\n'
    )
    big = estimate("--template", str(template), "--config-env", "big")
    assert line(big, "ElastiCache cache.t4g.medium x 3")["quantity"] == 3 * 730
    # and the prod environment of the repository prices two nodes
    assert line(estimate("--config-env", "prod"), "ElastiCache")["quantity"] == 2 * 730


def test_bad_arguments_are_one_line_and_exit_2(tmp_path: Path) -> None:
    for args in (["--users", "-3"], ["--users", "many"], ["--cloud", "azure"], ["--mb-per-session", "0"]):
        done = cost(*args)
        assert done.returncode == 2, args
        assert "Traceback" not in done.stderr
        assert done.stderr.strip().splitlines()[-1].startswith("hera-sessions cost: error:"), done.stderr
    missing = cost("--template", str(tmp_path / "nope.yaml"))
    assert missing.returncode == 2
    assert (
        missing.stderr.strip()
        == f"hera-sessions: cost: cannot read the template {tmp_path / 'nope.yaml'}: No such file or directory"
    )
    unknown = cost("--config-env", "nowhere")
    assert unknown.returncode == 2
    assert "has no [nowhere.deploy.parameters]" in unknown.stderr


def test_docs_cost_shows_what_the_command_prints() -> None:
    docs = (ROOT / "docs" / "cost.md").read_text()
    assert cost().stdout.strip() in docs
    assert cost("--cloud", "gcp").stdout.strip() in docs
