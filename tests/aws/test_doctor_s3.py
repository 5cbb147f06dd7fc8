"""``hera-sessions doctor`` on S3 (moto server): the bucket as the SAM template sets it up, and without."""

from __future__ import annotations

import json
from typing import Any

from tests.aws.conftest import Bucket
from tests.conftest import RedisServer
from tests.envs import service_env
from tests.servers import hera_cli

TLS_ONLY = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Sid": "DenyInsecureTransport",
            "Effect": "Deny",
            "Principal": "*",
            "Action": "s3:*",
            "Resource": ["arn:aws:s3:::{bucket}", "arn:aws:s3:::{bucket}/*"],
            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
        }
    ],
}


def doctor(bucket: Bucket, redis_server: RedisServer, aws_env: dict[str, str]) -> tuple[int, dict[str, Any]]:
    settings = service_env(
        "s3", "redis", bucket=bucket.name, redis_url=redis_server.url, origins=bucket.origins, **aws_env
    )
    done = hera_cli("doctor", "--json", settings=settings)
    return done.returncode, {line["check"]: line for line in json.loads(done.stdout)}


def test_a_bucket_as_the_template_makes_it_is_ok(
    s3_bucket: Bucket, redis_server: RedisServer, aws_env: dict[str, str]
) -> None:
    # GIVEN CORS (the fixture), the lifecycle rule and the TLS-only policy of template.yaml
    s3_bucket.client.put_bucket_lifecycle_configuration(
        Bucket=s3_bucket.name,
        LifecycleConfiguration={
            "Rules": [
                {"ID": "expire-sessions", "Status": "Enabled", "Filter": {"Prefix": "sessions/"},
                 "Expiration": {"Days": 7}, "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 1}}
            ]
        },
    )  # fmt: skip
    policy = json.dumps(TLS_ONLY).replace("{bucket}", s3_bucket.name)
    s3_bucket.client.put_bucket_policy(Bucket=s3_bucket.name, Policy=policy)

    code, found = doctor(s3_bucket, redis_server, aws_env)

    assert code == 0
    for name in ("storage:reachable", "storage:cors", "storage:lifecycle", "storage:tls", "storage:identity",
                 "storage:clock", "redis:eviction"):  # fmt: skip
        assert found[name]["status"] == "ok", found[name]
    assert "arn:aws:" in found["storage:identity"]["detail"]
    assert found["secrets"]["status"] == "warn"  # plain TOKEN_SECRET and service keys in cloud mode


def test_a_bare_bucket_warns_with_each_fix(s3_client: Any, redis_server: RedisServer, aws_env: dict[str, str]) -> None:
    bare = Bucket("hera-doctor-bare", s3_client, ("https://app.example.com",))
    s3_client.create_bucket(Bucket=bare.name, CreateBucketConfiguration={"LocationConstraint": "ap-northeast-1"})

    code, found = doctor(bare, redis_server, aws_env)

    assert code == 0  # warnings only
    assert {found[n]["status"] for n in ("storage:cors", "storage:lifecycle", "storage:tls")} == {"warn"}
    assert "put-bucket-cors" in found["storage:cors"]["fix"]
    assert "SecureTransport" in found["storage:tls"]["detail"]


def test_a_missing_bucket_fails(s3_bucket: Bucket, redis_server: RedisServer, aws_env: dict[str, str]) -> None:
    code, found = doctor(Bucket("hera-doctor-nowhere", s3_bucket.client), redis_server, aws_env)
    assert code == 1
    assert found["storage:reachable"]["status"] == "fail"
