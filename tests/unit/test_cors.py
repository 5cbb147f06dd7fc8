"""CORS from one source: the origins setting becomes the S3 rules, the GCS cors.json and the Azure rule."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest
import yaml

from hera_sessions.core.errors import ConfigError
from hera_sessions.http import cors
from tests.conftest import ROOT

APP = "https://app.example.com"
ADMIN = "https://admin.example.com"


def test_s3_rules_are_what_put_bucket_cors_takes() -> None:
    assert cors.s3_rules([APP, ADMIN]) == {
        "CORSRules": [
            {
                "ID": "browser-uploads",
                "AllowedOrigins": [APP, ADMIN],
                "AllowedMethods": ["PUT", "POST", "GET"],
                "AllowedHeaders": ["*"],
                "ExposeHeaders": ["ETag"],
                "MaxAgeSeconds": 3000,
            }
        ]
    }


def test_the_gcs_cors_json_lets_browsers_send_signed_headers_and_read_etags_and_the_session_address() -> None:
    (rule,) = cors.gcs_cors([APP])

    assert rule["origin"] == [APP]
    assert rule["method"] == ["GET", "HEAD", "PUT", "POST"]
    assert {"Content-Type", "x-goog-resumable", "x-goog-content-length-range"} <= set(rule["responseHeader"])
    assert {"ETag", "Location", "Range"} <= set(rule["responseHeader"])
    assert rule["maxAgeSeconds"] == 3000


def test_gcp_deploys_the_same_gcs_rule() -> None:
    """gcp/deploy.sh fills gcp/cors.json's origins from CORS_ALLOWED_ORIGINS: the rest must be this rule."""
    (deployed,) = json.loads((ROOT / "gcp" / "cors.json").read_text())
    (ours,) = cors.gcs_cors([APP])

    assert {**deployed, "origin": [APP]} == ours


def test_the_azure_rule_builds_the_sdks_cors_rule() -> None:
    from azure.storage.blob import CorsRule

    rule = CorsRule(**cors.azure_rule([APP, ADMIN]))

    assert rule.allowed_origins == f"{APP},{ADMIN}"
    assert rule.allowed_methods == "GET,HEAD,PUT"
    assert rule.exposed_headers == "ETag"
    assert rule.max_age_in_seconds == 3000


def test_origins_are_listed_once_without_trailing_slashes() -> None:
    assert cors.s3_rules([APP + "/", APP, " ", ADMIN])["CORSRules"][0]["AllowedOrigins"] == [APP, ADMIN]


@pytest.mark.parametrize("target", cors.TARGETS)
def test_no_origins_is_a_clear_error(target: str) -> None:
    with pytest.raises(ConfigError, match="CORS_ALLOWED_ORIGINS is empty"):
        cors.render(target, [])


@pytest.mark.parametrize(
    ("origin", "origins", "allowed"),
    [(APP, (APP,), APP), (ADMIN, (APP,), None), (None, (APP,), None), (ADMIN, ("*",), "*"), (APP, (), None)],
)
def test_storage_headers_are_the_buckets(origin: str | None, origins: tuple[str, ...], allowed: str | None) -> None:
    headers = cors.storage_headers(origin, origins)

    assert headers.get("Access-Control-Allow-Origin") == allowed
    if allowed:
        assert headers["Access-Control-Expose-Headers"] == "ETag"
        assert headers["Access-Control-Allow-Methods"] == "PUT, POST, GET"
        assert ("Access-Control-Allow-Credentials" in headers) == (allowed != "*")
    else:
        assert headers == {}


def test_the_cli_prints_the_rules_for_the_given_origins(capsys: pytest.CaptureFixture[str]) -> None:
    assert cors.main(["s3", "--origins", f"{APP},{ADMIN}"]) == 0

    assert json.loads(capsys.readouterr().out) == cors.s3_rules([APP, ADMIN])


def test_the_cli_reads_the_origins_setting(capsys: pytest.CaptureFixture[str]) -> None:
    assert cors.main(["gcs"], environ={"CORS_ALLOWED_ORIGINS": f"{APP}/"}) == 0

    assert json.loads(capsys.readouterr().out) == cors.gcs_cors([APP])


@pytest.mark.parametrize("origins", ["app.example.com", ""])
def test_the_cli_refuses_a_bad_origins_setting(capsys: pytest.CaptureFixture[str], origins: str) -> None:
    assert cors.main(["azure", "--origins", origins]) == 2

    assert "CORS_ALLOWED_ORIGINS" in capsys.readouterr().err


def test_deploy_scripts_run_it_as_a_module() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "hera_sessions.http.cors", "s3"],
        env={"CORS_ALLOWED_ORIGINS": APP, "PATH": ""},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == cors.s3_rules([APP])


class _CfnLoader(yaml.SafeLoader):  # type: ignore[misc]  # (no stubs for yaml)
    """YAML with CloudFormation's short tags (``!Ref``, ``!Sub``...), read as plain values."""


def _any_tag(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> Any:
    if isinstance(node, yaml.ScalarNode):
        return {suffix: loader.construct_scalar(node)}
    if isinstance(node, yaml.SequenceNode):
        return {suffix: loader.construct_sequence(node)}
    return {suffix: loader.construct_mapping(node)}


_CfnLoader.add_multi_constructor("!", _any_tag)


def test_the_sam_templates_bucket_rule_is_the_same_rule_for_the_allowed_origins_parameter() -> None:
    template = yaml.load((ROOT / "template.yaml").read_text(), Loader=_CfnLoader)  # a SafeLoader
    (rule,) = template["Resources"]["SessionBucket"]["Properties"]["CorsConfiguration"]["CorsRules"]
    ours = cors.s3_rules([APP])["CORSRules"][0]

    assert rule["AllowedOrigins"] == {"Ref": "AllowedOrigins"}
    assert rule["AllowedMethods"] == ours["AllowedMethods"]
    assert rule["AllowedHeaders"] == ours["AllowedHeaders"]
    assert rule["ExposedHeaders"] == ours["ExposeHeaders"]
    assert rule["MaxAge"] == ours["MaxAgeSeconds"]
    assert template["Parameters"]["AllowedOrigins"]["Type"] == "CommaDelimitedList"
