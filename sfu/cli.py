"""Command line: ``sfu serve`` (and more subcommands as the product grows)."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Optional, Sequence

from . import __version__
from .config import Config, IceServer


def _add_serve(sub: argparse._SubParsersAction) -> None:
    defaults = Config()
    p = sub.add_parser(
        "serve",
        help="run the server",
        description="Run the random video chat server (browser client at /, signaling at /ws).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--host", default=defaults.host, help="address to listen on for HTTP and WebSocket")
    p.add_argument("--port", type=int, default=defaults.port, help="HTTP port")
    p.add_argument(
        "--media-address",
        action="append",
        default=[],
        metavar="IP",
        help="local address offered for media (repeatable); default: 127.0.0.1 when --host is "
        "loopback and --public-ip is not given, else every non-loopback interface",
    )
    p.add_argument(
        "--ice-server",
        action="append",
        default=[],
        metavar="URL",
        help="STUN/TURN URL for the server and its clients (repeatable); default: none, so nothing "
        "is contacted outside this machine",
    )
    p.add_argument(
        "--public-ip",
        default=None,
        metavar="IP",
        help="announce this address in place of the local one (server behind 1:1 NAT, e.g. a cloud VM)",
    )
    p.add_argument(
        "--port-range",
        type=parse_port_range,
        default=None,
        metavar="MIN-MAX",
        help="UDP ports for media (one per participant and media address); default: any",
    )
    p.add_argument(
        "--turn-url",
        action="append",
        default=[],
        metavar="URL",
        help="TURN URL handed to clients with per-client credentials from --turn-secret (repeatable), "
        "e.g. turn:turn.example.org:3478?transport=tcp or turns:turn.example.org:443?transport=tcp",
    )
    p.add_argument("--turn-secret", default=None, metavar="SECRET", help="coturn static-auth-secret")
    p.add_argument(
        "--turn-secret-file",
        type=Path,
        default=None,
        metavar="PATH",
        help="read the coturn static-auth-secret from this file (keeps it out of the process list)",
    )
    p.add_argument(
        "--turn-ttl",
        type=int,
        default=defaults.turn_ttl,
        metavar="SECONDS",
        help="lifetime of the TURN credentials given to each client (longer than a visit)",
    )
    p.add_argument(
        "--forwarding",
        choices=["auto", "passthrough", "transcode"],
        default=defaults.forwarding,
        help="how media is forwarded between partners: passthrough sends encoded media unchanged "
        "when both legs share a codec; transcode decodes and re-encodes; auto is passthrough where "
        "the installed aiortc allows it",
    )
    p.add_argument(
        "--rematch-cooldown",
        type=float,
        default=defaults.rematch_cooldown,
        metavar="SECONDS",
        help="after Next, do not pair the same two people again for this long",
    )
    p.add_argument("--client-dir", type=Path, default=None, help="serve the browser client from here")
    p.add_argument("--log-level", default=defaults.log_level, choices=["debug", "info", "warning", "error"])
    p.set_defaults(func=_serve)


def parse_port_range(text: str) -> tuple[int, int]:
    """``"MIN-MAX"`` -> ``(MIN, MAX)``, both inclusive, within 1024-65535."""
    try:
        low, high = (int(part) for part in text.split("-", 1))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected MIN-MAX, got {text!r}") from None
    if not 1024 <= low <= high <= 65535:
        raise argparse.ArgumentTypeError(f"expected 1024 <= MIN <= MAX <= 65535, got {text!r}")
    return low, high


def _serve(args: argparse.Namespace) -> int:
    from aiohttp import web

    from .app import create_app

    config = Config(
        host=args.host,
        port=args.port,
        media_addresses=args.media_address,
        ice_servers=[IceServer(urls=url) for url in args.ice_server],
        public_ip=args.public_ip,
        media_port_min=args.port_range[0] if args.port_range else 0,
        media_port_max=args.port_range[1] if args.port_range else 0,
        turn_urls=args.turn_url,
        turn_secret=args.turn_secret_file.read_text().strip() if args.turn_secret_file else args.turn_secret,
        turn_ttl=args.turn_ttl,
        forwarding=args.forwarding,
        rematch_cooldown=args.rematch_cooldown,
        client_dir=args.client_dir,
        log_level=args.log_level,
    )
    logging.basicConfig(
        level=config.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    if config.log_level != "debug":
        for noisy in ("aioice", "aiortc"):
            logging.getLogger(noisy).setLevel(logging.WARNING)
    try:
        app = create_app(config)
    except ValueError as exc:  # inconsistent settings
        print(f"sfu serve: error: {exc}", file=sys.stderr)
        return 2
    print(f"sfu {__version__} on http://{config.host}:{config.port}", flush=True)
    web.run_app(app, host=config.host, port=config.port, print=None, shutdown_timeout=5.0)
    return 0


def _add_loadtest(sub: argparse._SubParsersAction) -> None:
    from .loadtest import cli as loadtest

    p = sub.add_parser(
        "loadtest",
        help="drive pairs of headless clients against a running server and measure it",
        description="Load-test a running server: N pairs of headless clients sending pre-encoded "
        "stamped video, with pairing, Next, fps, freezes, latency, loss and server CPU measured.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    loadtest.add_arguments(p)
    p.set_defaults(func=loadtest.run)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sfu", description="Random 1:1 video chat server.")
    parser.add_argument("--version", action="version", version=f"sfu {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    _add_serve(sub)
    _add_loadtest(sub)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
