"""The settings table is the one declaration: the dataclass, docs/settings.md, the README and template.yaml agree
with it."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import fields
from typing import Any

from cfnlint.decode import cfn_yaml

from hera_sessions import config
from hera_sessions.settings_table import SETTINGS, Setting, markdown_table
from tests.conftest import ROOT
from tests.markdown import DOCS, README, section, table, table_lines

# The parts a Lambda function of template.yaml runs: the core, Redis metadata, S3 storage, CloudFront.
LAMBDA_PARTS = {"core", "redis", "s3", "cdn"}
# Variables the Lambda runtime sets itself and a template may not declare (AWS docs: "Reserved environment variables").
LAMBDA_RESERVED = {"AWS_REGION", "AWS_DEFAULT_REGION", "AWS_LAMBDA_INITIALIZATION_TYPE"}
# Read by Powertools, not by our settings.
POWERTOOLS = {"POWERTOOLS_SERVICE_NAME", "POWERTOOLS_METRICS_NAMESPACE", "POWERTOOLS_LOG_LEVEL"}
# What a cloud deployment chooses differently from the local defaults; every other literal is the table's default.
DEPLOYMENT_CHOICES = {"STORAGE_MODE", "CLOUD_STORAGE_TYPE", "SESSION_TYPE"}


def parsed_default(setting: Setting) -> Any:
    return None if setting.default is None else setting.parse(setting.env, setting.default)


def test_the_table_and_the_settings_dataclass_agree_one_to_one() -> None:
    declared = [f for f in fields(config.Settings) if f.name != "extra"]
    assert [f.name for f in declared] == [s.field for s in SETTINGS]
    assert len({s.env for s in SETTINGS}) == len(SETTINGS)
    for setting, f in zip(SETTINGS, declared, strict=True):
        if setting.default is None:
            assert f.default in (None, (), False), setting.env
        else:
            assert parsed_default(setting) == f.default, setting.env


def test_secrets_are_the_tables_secret_column_and_never_show_in_the_repr() -> None:
    assert {s.field for s in SETTINGS if s.secret} == config.SECRET_SETTINGS
    defaults = {f.name: f.default for f in fields(config.Settings)}
    values: dict[str, Any] = {
        s.field: ("hidden-value",) if isinstance(defaults[s.field], tuple) else "hidden-value"
        for s in SETTINGS
        if s.secret
    }
    shown = repr(config.Settings(**values))
    assert "hidden-value" not in shown
    assert shown.count("***") == len(values)


def test_a_blank_value_means_unset_for_every_setting() -> None:
    for blank in ("", "  "):
        assert config.load(environ={s.env: blank for s in SETTINGS}) == config.load(environ={})


HEADER = "| variable | default | meaning |"


def test_docs_settings_lists_exactly_the_tables_settings() -> None:
    assert table_lines((DOCS / "settings.md").read_text(), HEADER) == markdown_table()


def test_the_readme_shows_main_settings_as_the_table_renders_them() -> None:
    configuration = section(README.read_text(), "Configuration")
    shown = [row[0].split("`")[1] for row in table(configuration, HEADER)]
    assert shown, "the README shows no settings"
    assert table_lines(configuration, HEADER) == markdown_table(shown)  # also: each is a setting, in table order


def _lambda_environment(template: Any) -> dict[str, Any]:
    """Every variable declared for a Lambda function: Globals, then each function's own."""
    variables = dict(template["Globals"]["Function"]["Environment"]["Variables"])
    for resource in template["Resources"].values():
        if resource["Type"] == "AWS::Serverless::Function":
            variables.update(resource["Properties"].get("Environment", {}).get("Variables", {}))
    return variables


def test_template_declares_every_cloud_setting_the_functions_read_and_nothing_else() -> None:
    template = cfn_yaml.load(str(ROOT / "template.yaml"))
    declared = _lambda_environment(template)
    expected = {s.env for s in SETTINGS if s.owner in LAMBDA_PARTS} - LAMBDA_RESERVED
    assert set(declared) - POWERTOOLS == expected
    assert not {s.env for s in SETTINGS if s.owner not in LAMBDA_PARTS} & set(declared)  # local, gcs, azure


def test_template_values_are_valid_and_keep_the_tables_defaults() -> None:
    template = cfn_yaml.load(str(ROOT / "template.yaml"))
    parameters = template["Parameters"]
    by_env = {s.env: s for s in SETTINGS}
    for name, declared in _lambda_environment(template).items():
        setting = by_env.get(name)
        if setting is None:
            continue
        value = declared
        if isinstance(declared, dict) and set(declared) == {"Ref"} and declared["Ref"] in parameters:
            value = parameters[declared["Ref"]].get("Default")  # a parameter: its default
        if not isinstance(value, (str, int, float)):
            continue  # a resource, a condition or a join: known at deploy time only
        text = str(value).strip()
        parsed = setting.parse(name, text) if text else None
        if name not in DEPLOYMENT_CHOICES:
            assert parsed == parsed_default(setting), name


def test_the_empty_endpoint_sam_local_may_override_means_aws() -> None:
    template = cfn_yaml.load(str(ROOT / "template.yaml"))
    assert _lambda_environment(template)["AWS_ENDPOINT_URL_S3"] == ""
    assert config.load(environ={"AWS_ENDPOINT_URL_S3": ""}).s3_endpoint_url is None
    assert config.load(environ={"AWS_ENDPOINT_URL_S3": "", "AWS_ENDPOINT_URL": "http://127.0.0.1:1"}).s3_endpoint_url


def test_loading_the_settings_imports_no_sdk() -> None:
    code = (
        "import sys; before = set(sys.modules); import hera_sessions.config as c; c.load(environ={}); "
        "print(sorted({m.split('.')[0] for m in set(sys.modules) - before} & {'boto3', 'botocore', 'redis', "
        "'google', 'azure', 'aws_lambda_powertools', 'yaml'}))"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    assert out.strip() == "[]"
