"""What every storage backend's ``diagnose()`` shares: CORS, lifecycle and clock lines of ``hera-sessions doctor``.

Each backend reads its own bucket's configuration (S3, GCS, Azure differ) and hands it here in one shape, so
each rule is judged once: the CORS rules must let ``CORS_ALLOWED_ORIGINS`` send what the browser client sends
(:mod:`hera_sessions.http.cors`); a lifecycle rule must expire ``sessions/`` before the erase marker goes; the
clock must agree with the storage's, since every signed URL carries its own time.
"""

from __future__ import annotations

import email.utils
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from hera_sessions.config import DAY, Settings
from hera_sessions.core.models import Check

#: SigV4 refuses a request more than 15 minutes off S3's clock (RequestTimeTooSkewed); GCS and Azure likewise.
SKEW_FAIL = 15 * 60
#: Beyond a minute, a slow clock eats into every URL's lifetime (UPLOAD_URL_TTL is 300 s by default).
SKEW_WARN = 60


@dataclass(frozen=True, slots=True)
class CorsRule:
    """One CORS rule of a bucket, normalised for comparison with the rules it needs."""

    origins: frozenset[str]
    methods: frozenset[str]  # upper case
    exposed: frozenset[str]  # lower case


def cors_check(rules: Iterable[CorsRule], settings: Settings, methods: Sequence[str], fix: str) -> Check:
    """ok when every origin of CORS_ALLOWED_ORIGINS has a rule allowing ``methods`` and exposing ETag."""
    rules = list(rules)
    origins = settings.cors_allowed_origins
    if not origins:
        return Check(
            "storage:cors",
            "warn",
            f"CORS_ALLOWED_ORIGINS is empty: no browser app may upload ({len(rules)} rule(s) on the bucket)",
            "set CORS_ALLOWED_ORIGINS to the web app's origins, then " + fix,
        )

    def allowed(origin: str) -> bool:
        return any(
            (origin in r.origins or "*" in r.origins)
            and set(methods) <= r.methods
            and ("etag" in r.exposed or "*" in r.exposed)
            for r in rules
        )

    missing = [o for o in origins if not allowed(o)]
    if missing:
        return Check(
            "storage:cors",
            "warn",
            f"no CORS rule lets {', '.join(missing)} send {'/'.join(methods)} and read ETag "
            f"({len(rules)} rule(s) on the bucket): browsers' uploads fail",
            fix,
        )
    return Check("storage:cors", "ok", f"{', '.join(origins)} may send {'/'.join(methods)} and read ETag")


def lifecycle_check(days: int | None, settings: Settings, where: str, fix: str) -> Check:
    """ok when objects under sessions/ expire after ``days`` (None: no rule), and the erase marker outlives them."""
    if days is None:
        return Check(
            "storage:lifecycle",
            "warn",
            f"no lifecycle rule deletes objects under sessions/ ({where}): files of sessions that expire "
            "without being erased stay forever",
            fix,
        )
    detail = f"objects under sessions/ are deleted after {days} days ({where})"
    if days * DAY >= settings.erase_marker_ttl:
        return Check(
            "storage:lifecycle",
            "warn",
            f"{detail}, not before ERASE_MARKER_TTL ({settings.erase_marker_ttl // DAY} days) ends: an erased "
            "session's late upload could outlive its marker",
            f"set ERASE_MARKER_TTL above {days * DAY} seconds, or a shorter expiry",
        )
    return Check("storage:lifecycle", "ok", detail)


def unreadable(check: str, what: str, reason: str, fix: str) -> Check:
    """A configuration these credentials may not read (the functions' roles may read objects, not buckets)."""
    return Check(check, "warn", f"could not read the {what} ({reason})", fix)


def clock_check(url: str, timeout: float = 5.0) -> Check:
    """Compare this machine's clock with the ``Date`` header of an unauthenticated HEAD to the storage endpoint."""
    request = urllib.request.Request(url, method="HEAD")  # noqa: S310 - the storage endpoint from the settings
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            date = response.headers.get("Date")
    except urllib.error.HTTPError as exc:  # 400/403 still carry the storage's Date
        date = exc.headers.get("Date")
    except (OSError, ValueError) as exc:
        return Check("storage:clock", "warn", f"could not reach {url} to read its clock ({exc})", "")
    local = time.time()
    if not date:
        return Check("storage:clock", "warn", f"{url} answered without a Date header: clock not compared", "")
    skew = local - email.utils.parsedate_to_datetime(date).timestamp()
    detail = f"this clock is {abs(skew):.0f} s {'ahead of' if skew > 0 else 'behind'} {url}"
    fix = "synchronise the clock (NTP: `timedatectl set-ntp true`, chrony)"
    if abs(skew) >= SKEW_FAIL:
        return Check(
            "storage:clock", "fail", f"{detail}: signed requests are refused beyond 15 min (RequestTimeTooSkewed)", fix
        )
    if abs(skew) > SKEW_WARN:
        return Check(
            "storage:clock",
            "warn",
            f"{detail}: signed URLs lose that much of their lifetime (S3 refuses SigV4 beyond 15 min)",
            fix,
        )
    return Check("storage:clock", "ok", f"{detail} (signatures allow 15 min)")
