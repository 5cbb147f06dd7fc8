"""``hera-sessions doctor`` and ``hera-sessions inspect``: the operator's two looks at a deployment.

``doctor`` is the container version's deployment guide's troubleshooting (``redis-cli ping``, ``info memory``, ``aws sts
get-caller-identity``, ``aws s3 ls``) as one command: the settings, the secrets, then each backend's own lines
(:meth:`MetadataStore.diagnose`, :meth:`Storage.diagnose`), each ``ok`` / ``warn`` / ``fail`` with what to do.
It exits 1 when a line fails. ``check`` stays the quick probe ``/health`` makes; ``doctor`` says why.

``inspect`` shows what the metadata store holds about one session: files, tombstones, pending uploads,
documents (names and sizes: their contents are personal data), TTLs and the erase marker.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

from hera_sessions import config
from hera_sessions.core import keys
from hera_sessions.core.errors import ConfigError, HeraError
from hera_sessions.core.models import Check, SessionSnapshot

if TYPE_CHECKING:
    from hera_sessions.backends.metadata.base import MetadataStore
    from hera_sessions.config import Settings


def diagnose(overrides: dict[str, str] | None = None) -> list[Check]:
    """Every line of ``doctor``, in order; a failing settings or secrets line stops there (nothing else can run)."""
    from hera_sessions.backends import secrets

    try:
        settings = config.load(overrides)
    except ConfigError as exc:
        return [
            Check("settings", "fail", exc.message, "fix the variable the message names (docs: README, Configuration)")
        ]
    checks = [Check("settings", "ok", _summary(settings))]
    checks += secrets.diagnose(settings)
    if any(c.status == "fail" for c in checks):
        return checks
    from hera_sessions.runtime import resolve_settings

    settings = resolve_settings(settings)
    return checks + _metadata_checks(settings) + _storage_checks(settings)


def _summary(settings: Settings) -> str:
    where = "files on disk" if settings.storage_mode == "local" else f"{settings.cloud_storage_type} storage"
    meta = f"embedded Redis under {settings.sessions_dir}" if settings.session_type == "local" else "REDIS_URL"
    return f"valid: {where}, metadata on {meta}"


def _metadata_checks(settings: Settings) -> list[Check]:
    from hera_sessions.backends.metadata import open_metadata

    try:
        store = open_metadata(settings)
    except HeraError as exc:
        return [Check("redis:reachable", "fail", exc.message, "see the message; local mode: redis-server 7+ on PATH")]
    try:
        return store.diagnose()
    finally:
        store.close()


def _storage_checks(settings: Settings) -> list[Check]:
    from hera_sessions.backends.storage import open_storage

    try:
        storage = open_storage(settings)
    except HeraError as exc:
        return [Check("storage:reachable", "fail", exc.message, "fix the storage settings the message names")]
    return storage.diagnose(settings)


def inspect(session_id: str, overrides: dict[str, str] | None = None) -> SessionSnapshot:
    """What the metadata store holds about ``session_id`` (InvalidInputError for a malformed id)."""
    from hera_sessions.backends.metadata import open_metadata
    from hera_sessions.runtime import resolve_settings

    keys.check_session_id(session_id)
    store: MetadataStore = open_metadata(resolve_settings(config.load(overrides)))
    try:
        return store.snapshot(session_id)
    finally:
        store.close()


# -- the command line ----------------------------------------------------------------------------------------
def render_checks(checks: list[Check]) -> str:
    width = max(len(c.check) for c in checks)
    lines = []
    for c in checks:
        lines.append(f"{c.status:<5} {c.check:<{width}}  {c.detail}")
        if c.fix:
            lines.append(f"{'':<5} {'':<{width}}  fix: {c.fix}")
    counts = {s: sum(1 for c in checks if c.status == s) for s in ("ok", "warn", "fail")}
    lines.append(", ".join(f"{n} {s}" for s, n in counts.items()))
    return "\n".join(lines)


def render_snapshot(snapshot: SessionSnapshot) -> str:
    data = snapshot.to_json()
    lines = [f"session {snapshot.session_id}: {snapshot.state}"]
    if snapshot.state == "live":
        lines.append(f"  created {data['created_at']}, expires in {data['ttl_seconds']} s (SESSION_TTL)")
    for f in data["files"]:
        lines.append(f"  file      {f['path']}  {f['size']} B  {f['content_type']}  uploaded {f['uploaded_at']}")
    for t in data["tombstones"]:
        lines.append(f"  deleted   {t}  (tombstone)")
    for u in data["pending_uploads"]:
        lines.append(f"  uploading {u['path']}  {u['size']} B  {u['content_type']}  ticket until {u['expires_at']}")
    for d in data["documents"]:
        lines.append(f"  document  {d['name']}  {d['bytes']} B")
    if data["documents"]:
        lines.append(f"  documents expire in {data['documents_ttl_seconds']} s")
    if marker := data["erase_marker"]:
        lines.append(f"  erase marker: {marker['ttl_seconds']} s left (until {marker['expires_at']})")
    return "\n".join(lines)


def main(args: argparse.Namespace, out: Callable[[str], None] = print) -> int:
    """Run ``doctor`` or ``inspect`` as the CLI parsed them; the exit status."""
    if args.command == "doctor":
        checks = diagnose()
        out(json.dumps([c.to_json() for c in checks], indent=2) if args.json else render_checks(checks))
        return 1 if any(c.status == "fail" for c in checks) else 0
    snapshot = inspect(args.session_id)
    if snapshot.state == "missing":
        print(f"hera-sessions: no session {args.session_id} (never created, or expired; not erased)", file=sys.stderr)
        return 1
    out(json.dumps(snapshot.to_json(), indent=2) if args.json else render_snapshot(snapshot))
    return 0
