"""Command line: ``sfu serve``, ``sfu config`` and ``sfu loadtest``.

Every setting of :class:`sfu.config.Config` is a flag, an ``SFU_*`` environment variable and a TOML
key (see :mod:`sfu.config.loading`); the command line wins over the environment, which wins over the file.
Only ``sfu serve`` and ``sfu loadtest`` load the media stack; ``sfu config`` and ``sfu --version`` do not.
"""

from __future__ import annotations

import argparse
import sys
from typing import Optional, Sequence

from . import __version__
from .config import Config, ConfigError, add_arguments, all_settings, load, render_json, render_toml, unknown_env

#: Exit status for an unusable configuration (as argparse uses for bad usage).
EXIT_CONFIG = 2
#: Exit status when the shared pool (``--redis-url``) cannot be reached at start-up.
EXIT_UNAVAILABLE = 3


def _add_serve(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "serve",
        help="run the server",
        description="Run the random video chat server (browser client at /, signaling at /ws, "
        "health at /healthz and /readyz, Prometheus metrics at /metrics). Each setting can also be "
        "given as an SFU_* environment variable or a key in the --config TOML file; precedence: "
        "command line > environment > file > default.",
    )
    add_arguments(p)
    p.set_defaults(func=_serve)


def _add_config(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "config",
        help="print the effective configuration",
        description="Print the configuration `sfu serve` would use with the same flags, environment "
        "and file, with the source of each value.",
    )
    p.add_argument("--format", choices=["toml", "json"], default="toml", dest="output_format")
    p.add_argument("--show-secrets", action="store_true", help="print credentials instead of ********")
    add_arguments(p)
    p.set_defaults(func=_config)


def _load(args: argparse.Namespace) -> tuple[Config, dict[str, str]]:
    given = vars(args)
    cli = {s.name: given[s.name] for s in all_settings() if s.name in given}
    for warning in unknown_env():
        print(f"sfu: warning: {warning}", file=sys.stderr)
    return load(cli, config_file=given.get("config"))


def _report(exc: ConfigError) -> int:
    if len(exc.problems) == 1:
        print(f"sfu: {exc.problems[0]}", file=sys.stderr)
        return EXIT_CONFIG
    print(f"sfu: the configuration has {len(exc.problems)} problem(s):", file=sys.stderr)
    for problem in exc.problems:
        print(f"  - {problem}", file=sys.stderr)
    return EXIT_CONFIG


def _config(args: argparse.Namespace) -> int:
    try:
        config, sources = _load(args)
    except ConfigError as exc:
        return _report(exc)
    render = render_json if args.output_format == "json" else render_toml
    print(render(config, sources, reveal_secrets=args.show_secrets), end="")
    return 0


def _serve(args: argparse.Namespace) -> int:
    """One server process, or (``--workers`` above 1) a parent running that many with the same
    arguments (``args.argv``); the parent never loads the media stack."""
    try:
        config, _ = _load(args)
    except ConfigError as exc:
        return _report(exc)
    if config.worker_count() > 1:
        from . import supervisor

        return supervisor.run(config, args.argv)

    from .media.aiortc_hooks import PrivateApiError
    from .pairing.shared import PairingUnavailable
    from .runner import TlsError, run

    try:
        return run(config)
    except ConfigError as exc:
        return _report(exc)
    except (TlsError, PrivateApiError) as exc:
        return _report(ConfigError([str(exc)]))
    except PairingUnavailable as exc:
        print(f"sfu: {exc}", file=sys.stderr)
        return EXIT_UNAVAILABLE


def _add_loadtest(sub: argparse._SubParsersAction, with_arguments: bool) -> None:
    p = sub.add_parser(
        "loadtest",
        help="drive pairs of headless clients against a running server and measure it",
        description="Load-test a running server: N pairs of headless clients sending pre-encoded "
        "stamped video, with pairing, Next, fps, freezes, latency, loss and server CPU measured.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    if with_arguments:  # the load tester's module imports the media stack
        from .loadtest import cli as loadtest

        loadtest.add_arguments(p)
        p.set_defaults(func=loadtest.run)


def build_parser(with_loadtest: bool = True) -> argparse.ArgumentParser:
    """The ``sfu`` command line; ``with_loadtest=False`` leaves out the load tester's own arguments
    (and so never imports the media stack)."""
    parser = argparse.ArgumentParser(prog="sfu", description="Random 1:1 video chat server.")
    parser.add_argument("--version", action="version", version=f"sfu {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    _add_serve(sub)
    _add_config(sub)
    _add_loadtest(sub, with_loadtest)
    return parser


def _command(argv: Sequence[str]) -> Optional[str]:
    """The subcommand named in ``argv`` (its first argument that is not an option)."""
    return next((arg for arg in argv if not arg.startswith("-")), None)


def main(argv: Optional[Sequence[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser(with_loadtest=_command(argv) == "loadtest").parse_args(argv)
    args.argv = argv  # what the workers of `sfu serve --workers N` are started with
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
