"""Command line: the only place that parses argv and chooses the exit code."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence

from bridge import __version__, logs
from bridge.service import runtime, settings


def _serve(args: argparse.Namespace) -> int:
    try:
        config = settings.load(flags=args)
    except settings.SettingsError as err:
        error = logs.journal_prefix("error", sys.stderr)  # `<3>` when stderr is the journal
        for problem in err.problems:
            print(f"{error}callbridge: {problem}", file=sys.stderr)
        print(f"{error}callbridge: fix the settings above, then start again", file=sys.stderr)
        return 2
    try:
        new_loop = runtime.factory(config.event_loop)
    except runtime.LoopUnavailable as err:
        print(f"{logs.journal_prefix('error', sys.stderr)}callbridge: {err}", file=sys.stderr)
        return 2
    logs.configure(fmt=config.log_format, level=config.log_level, secrets=config.secrets())
    from bridge.service.app import serve  # imported late: `check`/`simulate` need not load it

    runtime.tune_gc()  # process-wide, so here and not in serve() (tests run several)
    with asyncio.Runner(loop_factory=new_loop) as runner:
        return runner.run(serve(config, ready=lambda _port: runtime.freeze_startup()))


def build_parser() -> argparse.ArgumentParser:
    from bridge.cli import digest as digest_cmd
    from bridge.cli import migrate as migrate_cmd
    from bridge.cli import rules as rules_cli
    from bridge.cli import simulate as simulate_cmd

    parser = argparse.ArgumentParser(
        prog="callbridge",
        description="Voys / VoIPGRID call notifications to Slack and Microsoft Teams.",
    )
    parser.add_argument("--version", action="version", version=f"callbridge {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = commands.add_parser(
        "serve",
        help="run the service",
        description="Run the service until SIGTERM; SIGHUP reloads the rules. Every flag "
        "overrides the environment variable named in its help.",
    )
    settings.add_arguments(serve)
    serve.set_defaults(func=_serve)

    check = commands.add_parser("check", help="validate a rules file (and run its tests)")
    rules_cli.configure_check(check)
    check.set_defaults(func=rules_cli.run_check)

    route = commands.add_parser("route", help="dry run: which routes match recorded events")
    rules_cli.configure_route(route)
    route.set_defaults(func=rules_cli.run_route)

    migrate = commands.add_parser("migrate", help="apply pending store schema migrations")
    migrate_cmd.configure(migrate)
    migrate.set_defaults(func=migrate_cmd.run)

    digest = commands.add_parser("digest", help="print the callback case digest (posts nothing)")
    digest_cmd.configure(digest)
    digest.set_defaults(func=digest_cmd.run)

    sim = commands.add_parser("simulate", help="send realistic provider events to a bridge")
    simulate_cmd.configure(sim)
    sim.set_defaults(func=simulate_cmd.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        code: int = args.func(args)
    except KeyboardInterrupt:
        return 130
    return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
