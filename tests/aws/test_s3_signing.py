"""Our SigV4 query signer against botocore's: byte-identical URLs, with the clock frozen, for hundreds of inputs.

botocore signs in pure Python (``S3SigV4QueryAuth``) unless the ``awscrt`` package is installed; Lambda's boto3
and our layer have no ``awscrt``, so the pure-Python signer is the reference, forced here. Against the CRT
signer (when installed) the parameters and the signature are the same, in another order.
"""

from __future__ import annotations

import base64
import datetime as dt
import random
import string
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qsl

import pytest

from hera_sessions.backends.storage.base import content_disposition
from hera_sessions.backends.storage.s3_signing import QuerySigner, base_url
from hera_sessions.core.keys import EXTENSIONS_BY_TYPE

REGION = "ap-northeast-1"
FROZEN = dt.datetime(2026, 11, 29, 5, 42, 14, 123456)
TYPES = [*EXTENSIONS_BY_TYPE, "image/png; charset=binary", "text/plain;  charset=utf-8"]
KEY_CHARS = string.ascii_letters + string.digits + "._-~!'()*+ =@,;:&$ éあ"
#: Names as people give them: any Unicode but control characters (quotes, percent signs, emoji, CJK...).
NAME_CHARS = string.ascii_letters + string.digits + "._- \"\\%'()&;=éÅßあ日本語Фото😀"


class Clock:
    """A frozen clock both signers read: botocore through ``get_current_datetime``, ours through ``clock``."""

    def __init__(self) -> None:
        self.now = FROZEN

    def datetime(self, remove_tzinfo: bool = True) -> dt.datetime:
        return self.now if remove_tzinfo else self.now.replace(tzinfo=dt.UTC)

    def epoch(self) -> float:
        return self.now.replace(tzinfo=dt.UTC).timestamp()


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    import botocore.auth

    frozen = Clock()
    monkeypatch.setattr(botocore.auth, "get_current_datetime", frozen.datetime)
    try:
        import botocore.crt.auth

        monkeypatch.setattr(botocore.crt.auth, "get_current_datetime", frozen.datetime)
    except ImportError:  # no awscrt: nothing to freeze there
        pass
    return frozen


@pytest.fixture
def pure_python(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make botocore sign presigned URLs in Python even where awscrt is installed (as on Lambda)."""
    import botocore.auth

    monkeypatch.setitem(botocore.auth.AUTH_TYPE_MAPS, "s3v4-query", botocore.auth.S3SigV4QueryAuth)


def make_client(bucket: str, endpoint: str | None, credentials: Any) -> Any:
    import boto3
    from botocore.config import Config

    session = boto3.session.Session(
        aws_access_key_id=credentials.access_key,
        aws_secret_access_key=credentials.secret_key,
        aws_session_token=credentials.token,
    )
    return session.client(
        "s3",
        region_name=REGION,
        endpoint_url=endpoint,
        config=Config(signature_version="s3v4", s3={"addressing_style": "path" if endpoint else "virtual"}),
    )


def random_credentials(rng: random.Random, token: bool) -> Any:
    from botocore.credentials import Credentials

    secret = "".join(rng.choices(string.ascii_letters + string.digits + "/+", k=40))
    session_token = "".join(rng.choices(string.ascii_letters + string.digits + "/+=", k=rng.randint(100, 400)))
    access = "ASIA" if token else "AKIA"
    return Credentials(
        access + "".join(rng.choices(string.ascii_uppercase + string.digits, k=16)),
        secret,
        session_token if token else None,
    )


def random_key(rng: random.Random) -> str:
    segments = ["".join(rng.choices(KEY_CHARS, k=rng.randint(1, 24))).strip() or "x" for _ in range(rng.randint(1, 4))]
    return "sessions/" + "/".join(segments)


LAYOUTS = [
    pytest.param(None, id="aws-virtual-hosted"),
    pytest.param("http://127.0.0.1:4566", id="custom-endpoint-path-style"),
    pytest.param("https://s3.example.com", id="custom-https-endpoint-default-port"),
]


def cases(seed: int, count: int) -> Iterator[tuple[str, str, int, int, str]]:
    rng = random.Random(seed)
    for _ in range(count):
        name = "".join(rng.choices(NAME_CHARS, k=rng.randint(1, 40)))
        yield (
            random_key(rng),
            rng.choice(TYPES),
            rng.randint(1, 5 * 1024**4),
            rng.randint(1, 7 * 86_400),
            name,
        )


@pytest.mark.usefixtures("pure_python")
@pytest.mark.parametrize("endpoint", LAYOUTS)
@pytest.mark.parametrize("token", [False, True], ids=["keys", "session-token"])
def test_urls_are_byte_identical_to_botocores(clock: Clock, endpoint: str | None, token: bool) -> None:
    rng = random.Random(f"{endpoint}{token}")
    credentials = random_credentials(rng, token)
    bucket = "hera-sessions-" + "".join(rng.choices(string.ascii_lowercase + string.digits, k=12))
    client = make_client(bucket, endpoint, credentials)
    base = base_url(bucket, REGION, endpoint)
    assert base is not None
    ours = QuerySigner(base, REGION, credentials, clock=clock.epoch)

    for i, (key, ctype, size, expires, name) in enumerate(cases(rng.randint(0, 2**32), 100)):
        clock.now = FROZEN + dt.timedelta(seconds=rng.randint(0, 3 * 86_400))  # across days: the key cache
        put = client.generate_presigned_url(
            "put_object",
            Params={"Bucket": bucket, "Key": key, "ContentType": ctype, "ContentLength": size},
            ExpiresIn=expires,
        )
        assert ours.put_url(key, ctype, size, expires) == put, (i, key, ctype)

        md5 = base64.b64encode(rng.randbytes(16)).decode()
        for extra in ({"ContentMD5": md5}, {"IfNoneMatch": "*"}, {"ContentMD5": md5, "IfNoneMatch": "*"}):
            bound = client.generate_presigned_url(
                "put_object",
                Params={"Bucket": bucket, "Key": key, "ContentType": ctype, "ContentLength": size, **extra},
                ExpiresIn=expires,
            )
            ours_bound = ours.put_url(
                key, ctype, size, expires, content_md5=extra.get("ContentMD5"), if_none_match=extra.get("IfNoneMatch")
            )
            assert ours_bound == bound, (i, key, extra)

        disposition = content_disposition(name, "fallback.png")
        get = client.generate_presigned_url(
            "get_object",
            Params={
                "Bucket": bucket,
                "Key": key,
                "ResponseContentType": ctype,
                "ResponseContentDisposition": disposition,
            },
            ExpiresIn=expires,
        )
        assert ours.get_url(key, expires, ctype, disposition) == get, (i, key, ctype)

        plain = client.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=expires)
        assert ours.get_url(key, expires) == plain, (i, key)


def test_the_crt_signer_gives_the_same_parameters_and_signature(clock: Clock) -> None:
    pytest.importorskip("awscrt")
    import botocore.auth
    from botocore.credentials import Credentials

    if botocore.auth.AUTH_TYPE_MAPS["s3v4-query"] is botocore.auth.S3SigV4QueryAuth:
        pytest.skip("botocore is not signing with the CRT here")
    credentials = Credentials("AKIAEXAMPLE", "secret/key+example", "token/with+specials=")
    client = make_client("hera-crt-check", None, credentials)
    ours = QuerySigner(base_url("hera-crt-check", REGION, None) or "", REGION, credentials, clock=clock.epoch)

    for key, ctype, size, expires, name in cases(7, 50):
        put = client.generate_presigned_url(
            "put_object",
            Params={"Bucket": "hera-crt-check", "Key": key, "ContentType": ctype, "ContentLength": size},
            ExpiresIn=expires,
        )
        get = client.generate_presigned_url(
            "get_object",
            Params={
                "Bucket": "hera-crt-check",
                "Key": key,
                "ResponseContentType": ctype,
                "ResponseContentDisposition": content_disposition(name),
            },
            ExpiresIn=expires,
        )
        for theirs, mine in (
            (put, ours.put_url(key, ctype, size, expires)),
            (get, ours.get_url(key, expires, ctype, content_disposition(name))),
        ):
            assert theirs.split("?")[0] == mine.split("?")[0]
            assert sorted(parse_qsl(theirs.split("?")[1])) == sorted(parse_qsl(mine.split("?")[1]))


@pytest.mark.usefixtures("pure_python")
def test_refreshed_credentials_are_used_as_botocore_uses_them(clock: Clock) -> None:
    from botocore.credentials import RefreshableCredentials

    issued = iter(range(1, 100))

    def refresh() -> dict[str, str]:
        n = next(issued)
        expiry = clock.datetime(remove_tzinfo=False) + dt.timedelta(hours=1)
        return {
            "access_key": f"ASIA{n:016d}",
            "secret_key": f"secret-{n}",
            "token": f"token-{n}",
            "expiry_time": expiry.isoformat(),
        }

    first_issue = refresh()
    credentials = RefreshableCredentials(
        first_issue["access_key"],
        first_issue["secret_key"],
        first_issue["token"],
        dt.datetime.fromisoformat(first_issue["expiry_time"]),
        refresh,
        "test",
        time_fetcher=lambda: clock.datetime(remove_tzinfo=False),
    )
    ours = QuerySigner(base_url("hera-refresh", REGION, None) or "", REGION, credentials, clock=clock.epoch)
    first = ours.put_url("sessions/a.png", "image/png", 1, 60)

    clock.now = FROZEN + dt.timedelta(hours=2)  # past the expiry: botocore's credentials refresh themselves
    second = ours.put_url("sessions/a.png", "image/png", 1, 60)
    frozen = credentials.get_frozen_credentials()
    client = make_client("hera-refresh", None, frozen)

    assert "ASIA0000000000000001" in first
    assert frozen.access_key == "ASIA0000000000000002"
    assert second == client.generate_presigned_url(
        "put_object",
        Params={"Bucket": "hera-refresh", "Key": "sessions/a.png", "ContentType": "image/png", "ContentLength": 1},
        ExpiresIn=60,
    )


@pytest.mark.parametrize(
    ("bucket", "region", "endpoint", "expected"),
    [
        ("hera-files", "ap-northeast-1", None, "https://hera-files.s3.ap-northeast-1.amazonaws.com"),
        ("hera-files", "eu-west-3", None, "https://hera-files.s3.eu-west-3.amazonaws.com"),
        ("hera-files", "ap-northeast-1", "http://127.0.0.1:9000/", "http://127.0.0.1:9000/hera-files"),
        ("hera.files", "ap-northeast-1", None, None),  # dots: botocore's choice (path-style over TLS)
        ("hera-files", "us-east-1", None, None),  # the legacy global endpoint
        ("hera-files", "cn-north-1", None, None),  # another partition
        ("hera-files", "ap-northeast-1", "http://127.0.0.1:9000/prefix", None),
    ],
)
def test_only_known_layouts_are_signed_here(
    bucket: str, region: str, endpoint: str | None, expected: str | None
) -> None:
    assert base_url(bucket, region, endpoint) == expected
