"""The session rules: ordering by sequencer, tombstones, upload tickets, quotas, the erase gate.

They exist once, as the Lua scripts beside this module, which Redis runs atomically in one round trip
(:class:`hera_sessions.backends.metadata.redis.RedisMetadataStore` runs them; local mode runs them on an
embedded server). A session is one small hash, ``session:{id}``, with these fields:

- ``@c``            → creation time (epoch seconds)
- ``f:<path>``      → a file record ``{"s": size, "t": type, "e": etag, "u": uploaded_at, "q": sequencer,
  "n": name, "m": content_md5}`` (``n``/``m`` from the ticket; absent when None; and, for images, ``"W"``/``"H"``
  width/height and ``"L"`` location: none, stripped or kept, from the event),
  or a tombstone ``{"d": 1, "q": sequencer, "w": written_at}`` left by a removal so that a late "created" cannot
  resurrect it (the oldest are pruned beyond :attr:`Limits.max_tombstones`)
- ``t:<path>``      → an upload ticket (a quota reservation) ``{"s", "t", "x": expires_at, "u": upload_id,
  "n": name, "m": content_md5, "o": 1 when it may overwrite}``

Every script takes the session's three keys (they share the session id as hash tag, so a script never crosses
a Cluster slot): ``KEYS[1]`` the session hash, ``KEYS[2]`` the documents hash, ``KEYS[3]`` the erase marker.
A script that finds the session erased or gone answers ``{"erased"}`` or ``{"missing"}`` (the erase gate).

- ``prelude.lua``       the keys, ``gate()`` (erased / missing) and ``touch(ttl)``; part of every script
- ``state.lua``         ``later(a, b)`` (sequencer order: S3's rule, right-pad the shorter with zeros, then
  compare) and the quota bookkeeping (``load``, ``quota``); part of ``reserve`` and ``apply``
- ``reserve.lua``       hold quota for an upload ticket (replacing the path's own), refuse a path that holds a
  live record (``{"exists"}``) or a live ticket for another file (``{"pending"}``: another size, type, MD5 or
  name) unless the ticket may overwrite, drop expired tickets, prune the oldest tombstones
- ``apply.lua``         a batch of one session's storage events, in order: duplicate / stale (by sequencer),
  removed (a tombstone), rejected (type, declared size, an ETag that is a plain MD5 other than the ticket's
  ``m``, quota) or recorded (the ticket is consumed; its ``n``/``m`` go on the record)
- ``write.lua``         documents (put, delete) and the API's own deletion of a record (forget: a tombstone
  holding the record's sequencer) or of a ticket (release)
- ``replace_files.lua`` make the session's records exactly the given ones (reconcile)
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from hera_sessions.core.models import EventKind

#: Each script and the files it is made of, in order.
SCRIPTS: dict[str, tuple[str, ...]] = {
    "reserve": ("prelude", "state", "reserve"),
    "apply": ("prelude", "state", "apply"),
    "write": ("prelude", "state", "write"),
    "replace_files": ("prelude", "replace_files"),
}


@cache
def source(name: str) -> str:
    """One ``.lua`` file of this package, as text (beside this module: the package is always installed as files,
    and ``importlib.resources`` would cost the cold start its import)."""
    return (Path(__file__).parent / f"{name}.lua").read_text(encoding="utf-8")


@cache
def script(name: str) -> str:
    """The full text of a script of :data:`SCRIPTS` (its parts joined)."""
    return "\n".join(source(part) for part in SCRIPTS[name])


@dataclass(frozen=True, slots=True)
class Limits:
    """A session's quotas: files, bytes, and the largest upload."""

    max_files: int
    max_bytes: int
    upload_max: int

    @property
    def max_tombstones(self) -> int:
        """Tombstones kept per session: enough to order every late event of every recent deletion, and a bound
        so that a session deleting and uploading again and again cannot make its hash (and each script) grow."""
        return max(100, 4 * self.max_files)


@dataclass(slots=True)  # not frozen: built for every event of a batch, and a frozen __init__ costs 3x as much
class CheckedEvent:
    """A storage event addressed to one session, with the stateless checks already made."""

    session_id: str
    path: str
    kind: EventKind
    sequencer: str | None
    size: int = 0
    etag: str | None = None
    content_type: str | None = None  # as the event reports it (None for S3)
    type_guess: str | None = None  # from the extension, when that type is allowed
    problem: str | None = None  # why the object breaks the rules, found without state
    event_time: float = 0.0
    width: int | None = None  # from the image header (read by the event path)
    height: int | None = None
    location: str | None = None  # "none", "stripped" or "kept"

    def wire(self) -> dict[str, Any]:
        """The event as ``apply.lua`` reads it, once JSON (absent values are left out: Lua has no null)."""
        wire: dict[str, Any] = {"k": "c" if self.kind is EventKind.CREATED else "r", "p": self.path, "s": self.size}
        if self.sequencer is not None:
            wire["q"] = self.sequencer
        if self.etag is not None:
            wire["e"] = self.etag
        if self.content_type is not None:
            wire["t"] = self.content_type
        if self.type_guess is not None:
            wire["g"] = self.type_guess
        if self.problem is not None:
            wire["x"] = self.problem
        if self.event_time:
            wire["u"] = int(self.event_time)
        if self.width is not None:
            wire["W"] = self.width
        if self.height is not None:
            wire["H"] = self.height
        if self.location is not None:
            wire["L"] = self.location
        return wire
