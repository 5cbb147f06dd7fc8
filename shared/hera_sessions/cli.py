"""``hera-sessions``: run the local server, repair sessions, check settings.

hera-sessions serve                 the local server (what ``make dev`` runs)
hera-sessions reconcile ID [ID...]  rebuild file records from what storage holds
hera-sessions check                 validate the settings and reach storage and metadata
hera-sessions doctor [--json]       every check of docs/doctor.md, each ok / warn / fail with what to do
hera-sessions inspect ID [--json]   one session's files, documents, TTLs and erase marker
hera-sessions outbox replay         put local storage events that failed back into the queue
hera-sessions cost [--json]         a month of the serverless stack, priced, beside the container version
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from hera_sessions.core.errors import HeraError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="hera-sessions", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("serve", help="run the local server (PORT, HOST and every setting from the environment)")
    reconcile = sub.add_parser("reconcile", help="rebuild sessions' file records from storage")
    reconcile.add_argument("session_ids", nargs="+", metavar="SESSION_ID")
    sub.add_parser("check", help="validate settings and reach storage and metadata")
    outbox = sub.add_parser("outbox", help="local storage events (SESSIONS_DIR/outbox)")
    outbox.add_argument("action", choices=["replay"], help="replay: move outbox/failed entries back to the queue")
    for name, help_text in (("doctor", "diagnose the deployment"), ("inspect", "show one session's metadata")):
        command = sub.add_parser(name, help=help_text)
        if name == "inspect":
            command.add_argument("session_id", metavar="SESSION_ID")
        command.add_argument("--json", action="store_true", help="machine-readable output")
    cost = sub.add_parser("cost", help="estimate a month of the serverless stack from template.yaml / gcp/deploy.sh")
    cost.add_argument("--users", type=_count, default=1000, help="active users a month (1000)")
    cost.add_argument("--mb-per-session", type=_amount, default=1.5, help="photos and documents a session holds (1.5)")
    cost.add_argument("--cloud", choices=["aws", "gcp"], default="aws")
    cost.add_argument(
        "--config-env",
        default="staging",
        help="AWS: the samconfig.toml environment whose parameters to price (staging; 'none': the template's defaults)",
    )
    cost.add_argument("--template", type=Path, help="AWS: the SAM template (the repository's template.yaml)")
    cost.add_argument("--json", action="store_true", help="print JSON")
    args = parser.parse_args(argv)

    if args.command == "cost":
        return _cost(args)

    if args.command == "serve":
        from hera_sessions.runtimes.local.server import serve

        serve()
        return 0

    if args.command in ("doctor", "inspect"):
        from hera_sessions import doctor

        try:
            return doctor.main(args)
        except HeraError as exc:
            print(f"hera-sessions: {exc.code}: {exc.message}", file=sys.stderr)
            return 2

    from hera_sessions.runtime import Runtime

    if args.command == "outbox":  # files only: the running server's deliverer picks them up
        from hera_sessions.runtimes.local.outbox import replay

        moved = replay(Runtime().settings.sessions_dir / "outbox")
        print(json.dumps({"replayed": moved}))
        return 0
    try:
        service = Runtime().service()
        if args.command == "check":
            checks = service.health()
            print(json.dumps({"settings": repr(service.settings), "checks": checks}, indent=2))
            return 0 if all(v == "ok" for v in checks.values()) else 1
        for session_id in args.session_ids:
            report = service.reconcile(session_id)
            print(
                json.dumps(
                    {
                        "session_id": session_id,
                        "adopted": report.adopted,
                        "dropped": report.dropped,
                        "kept": report.kept,
                    }
                )
            )
    except HeraError as exc:
        print(f"hera-sessions: {exc.code}: {exc.message}", file=sys.stderr)
        return 2
    return 0


def _count(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of 1 or more")
    return int(text)


def _amount(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive number")
    return value


def _cost(args: argparse.Namespace) -> int:
    from hera_sessions.cost import CostInputError, Usage, estimate

    try:
        result = estimate(
            args.cloud,
            Usage(users=args.users, mb_per_session=args.mb_per_session),
            template=args.template,
            config_env=None if args.config_env == "none" else args.config_env,
        )
    except CostInputError as exc:
        print(f"hera-sessions: cost: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(result.to_json(), indent=2) if args.json else result.render())
    return 0


if __name__ == "__main__":
    sys.exit(main())
