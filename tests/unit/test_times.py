"""The one time format of the API and the reader: ``iso`` (epoch seconds → ISO 8601 UTC text) and its inverse."""

from __future__ import annotations

import random
from datetime import UTC, datetime

from hera_sessions.core.models import epoch, iso


def test_iso_writes_what_datetime_writes_and_epoch_reads_it_back() -> None:
    rng = random.Random(7)
    for ts in [0, 1.9, 1_796_231_477.999, -1.5, 253_402_300_799] + [rng.uniform(-4e9, 4e9) for _ in range(10_000)]:
        text = iso(ts)
        assert text == datetime.fromtimestamp(int(ts), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        assert epoch(text) == int(ts)
    assert iso(1_796_231_477) == "2026-12-02T17:11:17Z"
