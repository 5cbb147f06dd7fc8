"""``python -m bench [--quick] [--only NAME ...] [--out PATH]``: run the figures, print the table, write the JSON."""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import UTC, datetime
from importlib import import_module
from pathlib import Path

from bench.common import ROOT, Result, log, machine, table

#: Figure name → module (each has ``run(quick: bool) -> Result``), in the order of the table.
FIGURES = {
    "api-cold-start": "bench.api_coldstart",
    "api-warm": "bench.api_warm",
    "ingestion": "bench.ingest",
    "memory": "bench.memory",
    "events-cold-start": "bench.events_coldstart",
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small counts (CI): the figures are only indicative")
    parser.add_argument("--only", nargs="+", choices=sorted(FIGURES), metavar="NAME", help="run only these figures")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results.json", help="where to write the JSON")
    args = parser.parse_args(argv)

    started = time.monotonic()
    when = datetime.now(UTC)
    names = [name for name in FIGURES if not args.only or name in args.only]
    results: list[Result] = []
    for name in names:
        figure_started = time.monotonic()
        results.append(import_module(FIGURES[name]).run(args.quick))
        log(f"[{name}] {time.monotonic() - figure_started:.1f} s")

    host = machine()
    command = "python -m bench" + (" --quick" if args.quick else "")
    print(
        f"hera-sessions benchmarks, {when:%Y-%m-%d %H:%M} UTC — {host['nproc']} CPU ({host['cpu']}), "
        f"Python {host['python']}, redis-server {host['redis_server']}{' — QUICK MODE' if args.quick else ''}"
    )
    print(table(results))
    document = {
        "date": when.isoformat(timespec="seconds"),
        "command": command,
        "quick": args.quick,
        "machine": host,
        "seconds": round(time.monotonic() - started, 1),
        "figures": {result.key: result.to_json() for result in results},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n")
    log(f"wrote {args.out} ({document['seconds']} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
