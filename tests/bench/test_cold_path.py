"""What the API cold-start figure rests on: in S3 mode, a fresh function signs its first upload URL without ever
importing boto3, with exactly the credentials botocore would have used. No timing is looked at."""

from __future__ import annotations

import random
import subprocess
import sys

import pytest
from botocore.credentials import EnvProvider

from bench.common import API_DIR, BUCKET, cold_start, create_sessions, lambda_env
from bench.workload import session_ids, upload_request
from hera_sessions.backends.storage.s3_signing import environment_credentials
from tests.conftest import RedisServer

ENVIRONMENTS = [
    {"AWS_ACCESS_KEY_ID": "ASIAKEY", "AWS_SECRET_ACCESS_KEY": "secret", "AWS_SESSION_TOKEN": "token"},
    {"AWS_ACCESS_KEY_ID": "AKIAKEY", "AWS_SECRET_ACCESS_KEY": "secret"},
    {"AWS_ACCESS_KEY_ID": "AKIAKEY", "AWS_SECRET_ACCESS_KEY": "secret", "AWS_SESSION_TOKEN": ""},
    {"AWS_ACCESS_KEY_ID": "ASIAKEY", "AWS_SECRET_ACCESS_KEY": "secret", "AWS_SECURITY_TOKEN": "legacy"},
]


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_environment_credentials_are_the_ones_botocore_reads(env: dict[str, str]) -> None:
    # GIVEN credentials in the environment, as Lambda provides them
    # WHEN our signer and botocore's environment provider read them
    ours = environment_credentials(env)
    theirs = EnvProvider(environ=env).load()

    # THEN both find the same key, secret and token (an empty token is no token for either)
    assert ours is not None
    assert theirs is not None
    frozen = theirs.get_frozen_credentials()
    assert tuple(ours.get_frozen_credentials()) == (frozen.access_key, frozen.secret_key, frozen.token or None)


@pytest.mark.parametrize(
    "env",
    [
        {},
        {"AWS_ACCESS_KEY_ID": "AKIAKEY"},
        {"AWS_ACCESS_KEY_ID": "AKIAKEY", "AWS_SECRET_ACCESS_KEY": "s", "AWS_CREDENTIAL_EXPIRATION": "2099-01-01"},
    ],
)
def test_incomplete_or_expiring_environment_credentials_are_left_to_botocore(env: dict[str, str]) -> None:
    assert environment_credentials(env) is None


#: What the API function's first upload request must not import: redis-py's asyncio client, Powertools' other
#: resolvers and the data classes of event sources it never sees, importlib.metadata (hera_sessions.lazy), the
#: event path's image checks, boto3.
NOT_ON_THE_API_PATH = (
    "redis.asyncio.client",
    "redis.asyncio.cluster",
    "aws_lambda_powertools.event_handler.appsync",
    "aws_lambda_powertools.event_handler.bedrock_agent",
    "aws_lambda_powertools.utilities.data_classes.kafka_event",
    "aws_lambda_powertools.utilities.data_classes.cognito_user_pool_event",
    "zipfile",  # importlib.metadata's, for redis-py's own version (it is given it)
    "email",
    "hera_sessions.core.images",
    "boto3",
)


def test_a_fresh_api_function_signs_its_first_upload_importing_only_what_it_uses(redis_server: RedisServer) -> None:
    # GIVEN a session, and the API function's environment on Lambda in S3 mode (credentials in the environment)
    redis_server.flush()
    session_id = session_ids(1, random.Random(1))[0]
    token = create_sessions(redis_server.url, [session_id])[0]

    # WHEN a fresh process imports the function and answers its first upload-URL request (listing its imports)
    sample, _ = cold_start("app", API_DIR, upload_request(session_id, token), lambda_env(redis_server.url))

    # THEN it answers with an AWS-style presigned PUT URL, and boto3 was never imported
    assert sample.answer["statusCode"] == 201
    assert f"https://{BUCKET}.s3.ap-northeast-1.amazonaws.com/sessions/{session_id}/" in sample.answer["body"]
    assert "boto3" not in sample.packages
    # and it used redis-py's synchronous client, with no asyncio client and no event-path module
    assert "redis.client" in sample.modules
    assert not [name for name in NOT_ON_THE_API_PATH if name in sample.modules]


def test_the_deferred_asyncio_client_is_still_there_when_asked_for() -> None:
    # GIVEN a fresh interpreter that imports redis-py as the metadata backend does
    code = (
        "import sys\n"
        "from hera_sessions import lazy\n"
        "lazy.defer('redis.asyncio')\n"
        "import redis\n"
        "assert 'redis.asyncio.client' not in sys.modules, 'imported at once'\n"
        "from redis.asyncio import Redis, RedisCluster\n"
        "assert Redis.__module__ == 'redis.asyncio.client' and RedisCluster.__module__ == 'redis.asyncio.cluster'\n"
    )

    # WHEN it runs, THEN the asyncio client was left out of the import, and is complete when asked for
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
