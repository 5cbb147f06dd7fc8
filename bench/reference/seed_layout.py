"""The seed's Redis layout: one string key per item, each with its own expiry.

::

    session:abc123:meta:user_profile          → {"age": 30, ...}
    session:abc123:meta:conversation          → [...]
    session:abc123:meta:file:photos/user.png  → {"url": "https://..."}
"""

from __future__ import annotations

import json
from typing import Any

SEED_FILES = ("photos/user.png", "photos/partner.png", "photos/child_1.png")


def object_url(bucket: str, region: str, session_id: str, path: str) -> str:
    return f"https://{bucket}.s3.{region}.amazonaws.com/sessions/{session_id}/{path}"


def store_session(
    pipe: Any,
    session_id: str,
    documents: dict[str, bytes],
    files: tuple[str, ...],
    ttl: int,
    bucket: str,
    region: str,
) -> None:
    """Queue one session's keys on a redis-py pipeline (``SET key value EX ttl`` each)."""
    for name, document in documents.items():
        pipe.set(f"session:{session_id}:meta:{name}", document, ex=ttl)
    for path in files:
        value = json.dumps({"url": object_url(bucket, region, session_id, path)})
        pipe.set(f"session:{session_id}:meta:file:{path}", value, ex=ttl)
