"""The data the figures feed in: session documents with natural-looking text, S3 notifications, SQS batches.

Everything is drawn from a seeded RNG, so every run stores and sends the same bytes.
"""

from __future__ import annotations

import itertools
import json
import random
import secrets
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote_plus


def _words(text: str) -> list[str]:
    return text.split()


# About 650 everyday English words, roughly from most to least common: sentences draw from them with
# Zipf-like weights, which gives text the redundancy of real prose (zlib shrinks it about as much as it shrinks
# real conversation transcripts; the figure reports the ratio it saw).
WORDS = _words("""
the be to of and a in that have I it for not on with he as you do at this but his by from they we say her she or
an will my one all would there their what so up out if about who get which go me when make can like time no just
him know take people into year your good some could them see other than then now look only come its over think
also back after use two how our work first well way even new want because any these give day most us is was are
were been has had did said made went got very much more many such own same tell ask seem feel try leave call last
long great little right old big high different small large next early young important few public bad able child
children family mother father son daughter wife husband partner brother sister grandmother grandfather baby home
house room school morning evening night week month today tomorrow yesterday weekend holiday trip park beach garden
kitchen dinner lunch breakfast photo photos picture pictures smile happy sad tired busy quiet loud warm cold rain
sun snow spring summer autumn winter birthday party gift friend friends neighbour dog cat walk run play read write
draw sing dance cook clean help remember forget love enjoy hope wish plan start finish open close bring carry hold
keep let put show turn move live believe happen sit stand lose pay meet include continue set learn change lead
understand watch follow stop create speak allow add spend grow offer appear buy wait serve die send expect build
stay fall cut reach kill remain suggest raise pass sell require report decide pull explain develop hear thank
question answer idea story problem point world life hand part place case fact group number eye face head voice word
name moment minute hour while kind thing lot reason side water food car city town country street book music song
film game team player teacher student doctor nurse office job money business company price market paper letter
news television computer phone message email picture colour light dark red blue green yellow white black brown
favourite special beautiful lovely nice fine sure certain clear easy hard simple quick slow real true full free
together again always often sometimes never usually already still almost really quite rather pretty maybe perhaps
probably actually especially finally suddenly slowly quickly carefully gently softly before during until since
through across along around behind between under above near inside outside without within toward against among
every each both either neither another something anything nothing everything someone anyone everyone nobody
here where why whether though although however therefore instead otherwise besides meanwhile afterwards
first second third last once twice half whole double single few several enough plenty less least most more
remember wonderful exciting interesting funny strange surprising difficult comfortable careful gentle brave shy
proud worried nervous excited curious calm bright soft sweet fresh clean tall short round heavy light empty busy
grandparents cousins uncle aunt niece nephew twins toddler teenager kindergarten classroom homework exam result
festival fireworks temple shrine mountain river lake forest island station train bus bicycle airport hotel
museum zoo aquarium library hospital restaurant cafe shop supermarket bakery market playground pool stadium
tea coffee rice noodles soup bread cake fruit apple orange strawberry chocolate ice cream sandwich curry sushi
shirt dress shoes hat jacket umbrella bag glasses watch toy ball doll blocks puzzle drawing crayons piano guitar
camera album memory memories moment moments smile laughter tears hug kiss handshake greeting wave goodbye hello
morning afternoon tonight midnight sunrise sunset weather cloud wind storm sky star moon flower tree leaf grass
ocean wave sand shell stone rock hill valley field farm village neighbourhood corner bridge road path gate door
window wall floor roof stairs table chair sofa bed desk shelf lamp clock mirror picture frame box basket blanket
""")

FIRST_NAMES = _words("""Aiko Haruto Yui Sota Hina Ren Mio Yuto Sakura Riku Emma Liam Olivia Noah Ava Lucas Mia Leo
Sofia Kai Hana Daiki Mei Kenta Nao Takumi Rin Shota Yuna Kaito""")
RELATIONS = ("partner", "child", "mother", "father", "sister", "brother", "grandmother", "grandfather")
INTERESTS = _words("""hiking cooking photography gardening reading travel music painting cycling swimming baking camping
fishing yoga running tennis piano drawing knitting football""")

_CUMULATIVE = list(itertools.accumulate(1 / (rank + 2.7) for rank in range(len(WORDS))))


def sentence(rng: random.Random) -> str:
    words = rng.choices(WORDS, cum_weights=_CUMULATIVE, k=rng.randint(5, 19))
    if rng.random() < 0.25:
        words[rng.randrange(len(words))] = rng.choice(FIRST_NAMES)
    if rng.random() < 0.15:
        words.insert(rng.randrange(len(words)), str(rng.randint(2, 2030)))
    if len(words) > 8 and rng.random() < 0.4:
        words[rng.randrange(2, len(words) - 2)] += ","
    text = " ".join(words)
    return text[0].upper() + text[1:] + rng.choice(".......?!")


_POOL: list[str] = []


def _sentences(rng: random.Random, count: int) -> str:
    """``count`` sentences drawn from a pool of 20,000 (built once, seeded): cheap, and a document of a few
    dozen sentences almost never repeats one (repeats would flatter compression)."""
    if not _POOL:
        pool_rng = random.Random(20_000)
        _POOL.extend(sentence(pool_rng) for _ in range(20_000))
    return " ".join(rng.choices(_POOL, k=count))


def conversation(rng: random.Random, size: int = 8 * 1024) -> bytes:
    """A conversation document of about ``size`` bytes (compact JSON): turns of natural-looking sentences."""
    started = datetime(2026, 11, 29, 9, 0, tzinfo=UTC).timestamp() + rng.randint(0, 86_400)
    head = b'{"version":1,"language":"en","turns":['
    turns: list[bytes] = []
    length = len(head) + 2  # the closing "]}"
    while True:
        role = "user" if len(turns) % 2 == 0 else "assistant"
        text = _sentences(rng, rng.randint(1, 4 if role == "user" else 6))
        started += rng.randint(5, 90)
        turn = _compact({"role": role, "text": text, "at": datetime.fromtimestamp(started, UTC).isoformat()})
        if length + len(turn) + (1 if turns else 0) > size:
            break
        length += len(turn) + (1 if turns else 0)
        turns.append(turn)
    return head + b",".join(turns) + b"]}"


def profile(rng: random.Random, size: int = 300) -> bytes:
    """A user profile document of about ``size`` bytes (compact JSON)."""
    family = [
        {"relation": rng.choice(RELATIONS), "name": rng.choice(FIRST_NAMES), "age": rng.randint(1, 80)}
        for _ in range(rng.randint(1, 3))
    ]
    doc: dict[str, Any] = {
        "name": rng.choice(FIRST_NAMES),
        "age": rng.randint(20, 70),
        "locale": "ja-JP",
        "timezone": "Asia/Tokyo",
        "family": family,
        "interests": [],
        "notes": "",
    }
    pool = list(INTERESTS)
    rng.shuffle(pool)
    while pool and len(doc["interests"]) < 5 and len(_compact(doc)) + len(pool[-1]) + 3 <= size:
        doc["interests"].append(pool.pop())
    room = size - len(_compact(doc))
    notes = ""
    while len(notes) < room:
        notes = f"{notes} {sentence(rng)}".strip()
    doc["notes"] = notes[:room].rstrip()
    return _compact(doc)


def _compact(document: Any) -> bytes:
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode()


def etag(rng: random.Random) -> str:
    return f"{rng.getrandbits(128):032x}"


def session_ids(count: int, rng: random.Random) -> list[str]:
    """Session ids in the service's format (32 URL-safe characters)."""
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    return ["".join(rng.choices(alphabet, k=32)) for _ in range(count)]


# -- S3 notifications through SQS ----------------------------------------------------------------------------------
def s3_notification(bucket: str, key: str, size: int, tag: str, sequencer: str, when: str) -> dict[str, Any]:
    """One S3 ``ObjectCreated:Put`` notification, as S3 sends it to SQS (one record, the key URL-encoded)."""
    return {
        "Records": [
            {
                "eventVersion": "2.1",
                "eventSource": "aws:s3",
                "awsRegion": "ap-northeast-1",
                "eventTime": when,
                "eventName": "ObjectCreated:Put",
                "userIdentity": {"principalId": "AWS:AROAEXAMPLEROLEID:browser-upload"},
                "requestParameters": {"sourceIPAddress": "203.0.113.10"},
                "responseElements": {"x-amz-request-id": secrets.token_hex(8).upper(), "x-amz-id-2": "EXAMPLE"},
                "s3": {
                    "s3SchemaVersion": "1.0",
                    "configurationId": "hera-sessions-storage-events",
                    "bucket": {
                        "name": bucket,
                        "ownerIdentity": {"principalId": "A3NL1KOZZKExample"},
                        "arn": f"arn:aws:s3:::{bucket}",
                    },
                    "object": {"key": quote_plus(key, safe="/"), "size": size, "eTag": tag, "sequencer": sequencer},
                },
            }
        ]
    }


def sqs_batch(bodies: list[dict[str, Any]]) -> dict[str, Any]:
    """An SQS event for the function: one message per notification."""
    queue = "arn:aws:sqs:ap-northeast-1:123456789012:hera-sessions-bench-StorageEventsQueue"
    return {
        "Records": [
            {
                "messageId": f"{n:08x}-0000-4000-8000-{secrets.token_hex(6)}",
                "receiptHandle": "AQEB" + secrets.token_hex(32),
                "body": json.dumps(body),
                "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "1764406800000"},
                "messageAttributes": {},
                "md5OfBody": secrets.token_hex(16),
                "eventSource": "aws:sqs",
                "eventSourceARN": queue,
                "awsRegion": "ap-northeast-1",
            }
            for n, body in enumerate(bodies)
        ]
    }


class Sequencers:
    """Distinct, increasing S3 sequencers (18 hex digits, as S3 writes them) across every batch of a run."""

    def __init__(self, start: int) -> None:
        self._next = start

    def __call__(self) -> str:
        self._next += 0x10 + (self._next % 7)
        return f"{self._next:018X}"


def upload_batch(
    sessions: list[str], count: int, files_per_session: int, sequencer: Sequencers, rng: random.Random, bucket: str
) -> dict[str, Any]:
    """``count`` uploads spread evenly over ``sessions``, each session's files overwritten in turn."""
    bodies = []
    when = "2026-11-29T09:00:00.000Z"
    for n in range(count):
        session = sessions[n % len(sessions)]
        path = f"photos/photo_{(n // len(sessions)) % files_per_session}.jpg"
        size = rng.randint(200_000, 4_000_000)
        bodies.append(s3_notification(bucket, f"sessions/{session}/{path}", size, etag(rng), sequencer(), when))
    return sqs_batch(bodies)


def with_etag(batch: dict[str, Any], etag: str) -> dict[str, Any]:
    """The batch with every S3 record's ETag set to ``etag`` (the stored objects' MD5: the event path reads them)."""
    for message in batch["Records"]:
        body = json.loads(message["body"])
        for record in body["Records"]:
            record["s3"]["object"]["eTag"] = etag
        message["body"] = json.dumps(body)
    return batch


# -- API Gateway HTTP API (payload v2) -------------------------------------------------------------------------
def upload_request(session_id: str, token: str, path: str = "photos/user.png", size: int = 1_234_567) -> dict[str, Any]:
    """``POST /v1/sessions/{id}/uploads`` as API Gateway hands it to the function."""
    body = json.dumps({"path": path, "content_type": "image/png", "size": size})
    return api_request("POST", f"/v1/sessions/{session_id}/uploads", token, body)


def download_request(session_id: str, token: str, path: str = "photos/user.png") -> dict[str, Any]:
    """``GET /v1/sessions/{id}/files/{path}`` (a signed download URL) as API Gateway hands it to the function."""
    return api_request("GET", f"/v1/sessions/{session_id}/files/{path}", token, None)


def api_request(method: str, raw_path: str, token: str, body: str | None) -> dict[str, Any]:
    """An API Gateway HTTP API (payload v2) event with the session's token."""
    host = "abcdef1234.execute-api.ap-northeast-1.amazonaws.com"
    headers = {
        "accept": "application/json",
        "authorization": f"Bearer {token}",
        "host": host,
        "origin": "http://localhost:5173",
        "user-agent": "Mozilla/5.0",
        "x-forwarded-proto": "https",
    }
    if body is not None:
        headers |= {"content-length": str(len(body)), "content-type": "application/json"}
    return {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": raw_path,
        "rawQueryString": "",
        "headers": headers,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "abcdef1234",
            "domainName": host,
            "domainPrefix": "abcdef1234",
            "http": {
                "method": method,
                "path": raw_path,
                "protocol": "HTTP/1.1",
                "sourceIp": "203.0.113.10",
                "userAgent": "Mozilla/5.0",
            },
            "requestId": "JKJbBgPLvHcESJQ=",
            "routeKey": "$default",
            "stage": "$default",
            "time": "29/Nov/2026:09:00:00 +0000",
            "timeEpoch": 1795942800000,
        },
        **({"body": body} if body is not None else {}),
        "isBase64Encoded": False,
    }
