"""Settings are read in one place and a bad value fails fast with a message that names it."""

from __future__ import annotations

from pathlib import Path

import pytest

from hera_sessions import config
from hera_sessions.core.errors import ConfigError

BASE = {"STORAGE_MODE": "local"}


def load(**env: str) -> config.Settings:
    return config.load(environ={**BASE, **env})


def test_defaults_are_the_embedded_local_mode() -> None:
    s = config.load(environ={})
    assert (s.storage_mode, s.session_type, s.sessions_dir) == ("local", "local", Path("./tmp/user_sessions"))
    assert s.session_ttl == 86_400
    assert s.upload_max_bytes == 10 * 1024 * 1024
    assert s.allowed_content_types == ("image/png", "image/jpeg", "image/webp", "image/heic")
    assert (s.upload_url_ttl, s.download_url_ttl, s.meta_max_bytes) == (300, 900, 1024 * 1024)
    assert s.cors_allowed_origins == ()
    assert s.open_session_creation


def test_cloud_mode_requires_redis_and_refuses_to_start_otherwise() -> None:
    with pytest.raises(ConfigError, match="SESSION_TYPE=redis"):
        load(STORAGE_MODE="cloud", CLOUD_STORAGE_TYPE="s3", S3_BUCKET_NAME="b")
    with pytest.raises(ConfigError, match="SESSION_TYPE=redis"):
        load(STORAGE_MODE="cloud", CLOUD_STORAGE_TYPE="s3", S3_BUCKET_NAME="b", SESSION_TYPE="local")


def test_cloud_mode_needs_its_bucket_secret_and_keys() -> None:
    cloud = {"STORAGE_MODE": "cloud", "SESSION_TYPE": "redis", "REDIS_URL": "redis://r:6379/0"}
    with pytest.raises(ConfigError, match="CLOUD_STORAGE_TYPE"):
        load(**cloud)
    with pytest.raises(ConfigError, match="S3_BUCKET_NAME"):
        load(**cloud, CLOUD_STORAGE_TYPE="s3")
    with pytest.raises(ConfigError, match="TOKEN_SECRET"):
        load(**cloud, CLOUD_STORAGE_TYPE="gcs", GCS_BUCKET_NAME="b")
    with pytest.raises(ConfigError, match="SERVICE_API_KEYS"):
        load(**cloud, CLOUD_STORAGE_TYPE="gcs", GCS_BUCKET_NAME="b", TOKEN_SECRET="t")
    s = load(**cloud, CLOUD_STORAGE_TYPE="gcs", GCS_BUCKET_NAME="b", TOKEN_SECRET="t", SERVICE_API_KEYS="k1, k2")
    assert s.service_api_keys == ("k1", "k2")
    assert not s.open_session_creation


@pytest.mark.parametrize(
    ("name", "value", "words"),
    [
        ("STORAGE_MODE", "disk", "STORAGE_MODE"),
        ("SESSION_TTL", "0", "at least 1"),
        ("SESSION_TTL", "1.5", "whole number"),
        ("UPLOAD_URL_TTL", "-3", "UPLOAD_URL_TTL"),
        ("UPLOAD_MAX_BYTES", "ten", "UPLOAD_MAX_BYTES"),
        ("ALLOWED_CONTENT_TYPES", "image/png,application/x-evil", "application/x-evil"),
        ("REDIS_URL", "http://x", "redis://"),
        ("CORS_ALLOWED_ORIGINS", "example.com", "origin"),
        ("REDIS_TIMEOUT", "100", "REDIS_TIMEOUT"),
        ("CDN_MODE", "cloudfront-signed", "CDN_DOMAIN"),
    ],
)
def test_bad_values_fail_fast_and_name_the_setting(name: str, value: str, words: str) -> None:
    env = {name: value}
    if name == "REDIS_URL":
        env["SESSION_TYPE"] = "redis"
    with pytest.raises(ConfigError, match=words):
        load(**env)


def test_any_ttl_of_one_second_or_more_is_valid() -> None:
    s = load(SESSION_TTL="1", UPLOAD_URL_TTL="1", DOWNLOAD_URL_TTL="1")
    assert (s.session_ttl, s.upload_url_ttl, s.download_url_ttl) == (1, 1, 1)


def test_redis_urls_of_every_kind_are_accepted() -> None:
    for url in ("redis://h:6379/0", "rediss://:pw@h:6380/0", "redis://h:6379/0?cluster=true"):
        assert load(SESSION_TYPE="redis", REDIS_URL=url).redis_url == url
    ref = "arn:aws:secretsmanager:ap-northeast-1:123456789012:secret:hera/redis-url-AbCdEf"
    assert load(SESSION_TYPE="redis", REDIS_URL=ref).redis_url == ref


def test_secrets_never_show_in_the_repr() -> None:
    s = load(TOKEN_SECRET="super-secret", SERVICE_API_KEYS="key-1", SESSION_TYPE="redis", REDIS_URL="redis://:pw@h/0")
    assert "super-secret" not in repr(s)
    assert "key-1" not in repr(s)
    assert "pw@" not in repr(s)


def test_explicit_overrides_win_over_the_environment() -> None:
    s = config.load({"SESSION_TTL": "5"}, environ={"SESSION_TTL": "7"})
    assert s.session_ttl == 5


def test_a_snapstart_init_is_recognised() -> None:
    assert load(AWS_LAMBDA_INITIALIZATION_TYPE="snap-start").snap_start
    assert not load(AWS_LAMBDA_INITIALIZATION_TYPE="on-demand").snap_start


def test_each_part_in_use_names_every_setting_it_misses_in_one_message() -> None:
    cloud = {"STORAGE_MODE": "cloud", "SESSION_TYPE": "redis", "REDIS_URL": "redis://r:6379/0"}
    with pytest.raises(ConfigError) as caught:
        load(**cloud, CLOUD_STORAGE_TYPE="azure")
    assert caught.value.message == (
        "CLOUD_STORAGE_TYPE=azure needs AZURE_STORAGE_ACCOUNT_URL or AZURE_STORAGE_CONNECTION_STRING, "
        "AZURE_CONTAINER_NAME; STORAGE_MODE=cloud needs TOKEN_SECRET, SERVICE_API_KEYS"
    )
    with pytest.raises(ConfigError) as caught:
        load(**cloud)
    assert caught.value.message.startswith("STORAGE_MODE=cloud needs CLOUD_STORAGE_TYPE (s3, gcs or azure), ")
    azure = {**cloud, "CLOUD_STORAGE_TYPE": "azure", "AZURE_CONTAINER_NAME": "c", "TOKEN_SECRET": "t"}
    assert load(**azure, SERVICE_API_KEYS="k", AZURE_STORAGE_CONNECTION_STRING="UseDevelopmentStorage=true")


def test_a_part_not_in_use_needs_nothing() -> None:
    s = load(CLOUD_STORAGE_TYPE="s3", SESSION_TYPE="local")  # local mode: the S3 backend is not in use
    assert (s.storage_backend, s.s3_bucket_name) == ("local", None)


def test_the_cdn_goes_with_its_storage() -> None:
    cdn = {"CDN_MODE": "cloudcdn-signed", "CDN_DOMAIN": "cdn.example.com", "CDN_KEY_ID": "k", "CDN_PRIVATE_KEY": "p"}
    with pytest.raises(ConfigError, match="CLOUD_STORAGE_TYPE=gcs"):
        load(**cdn)
