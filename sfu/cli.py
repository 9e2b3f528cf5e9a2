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
        "loopback, else every non-loopback interface",
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


def _serve(args: argparse.Namespace) -> int:
    from aiohttp import web

    from .app import create_app

    config = Config(
        host=args.host,
        port=args.port,
        media_addresses=args.media_address,
        ice_servers=[IceServer(urls=url) for url in args.ice_server],
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
    app = create_app(config)
    print(f"sfu {__version__} on http://{config.host}:{config.port}", flush=True)
    web.run_app(app, host=config.host, port=config.port, print=None, shutdown_timeout=5.0)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sfu", description="Random 1:1 video chat server.")
    parser.add_argument("--version", action="version", version=f"sfu {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    _add_serve(sub)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
