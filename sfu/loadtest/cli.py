"""``sfu loadtest``: arguments, safety checks, and the run from start to report."""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import signal
import socket
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from .media import VideoSpec, default_cache_dir


class UsageError(Exception):
    pass


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--url", required=True, action="append", dest="urls", metavar="URL",
                   help="the server, e.g. http://127.0.0.1:8080; repeat for several servers (nodes or ports): "
                   "clients are dealt round-robin across them")
    p.add_argument("--pairs", type=int, default=5, help="pairs of clients (2 x PAIRS clients)")
    p.add_argument("--duration", type=float, default=30.0, metavar="S", help="run time, ramp included")
    p.add_argument("--ramp", type=float, default=None, metavar="S",
                   help="spread client starts over S seconds (default: 1 s per 5 clients, at most duration/3)")
    p.add_argument("--next-every", type=float, default=0.0, metavar="S",
                   help="each client presses Next every S seconds (0: never)")
    p.add_argument("--resolution", default="640x480", metavar="WxH", help="video size sent by every client")
    p.add_argument("--fps", type=int, default=30, help="video frame rate sent by every client")
    p.add_argument("--bitrate", default="800k", help="video bitrate of the pre-encoded loop (e.g. 800k, 1.5M)")
    p.add_argument("--loop-seconds", type=float, default=4.0, metavar="S",
                   help="length of the pre-encoded video loop; latencies wrap at this period")
    p.add_argument("--no-audio", action="store_true", help="send video only")
    p.add_argument("--no-decode", action="store_true",
                   help="recognise received frames by their bytes instead of decoding them (much less CPU per "
                   "client; for servers that forward what they receive, not for --forwarding transcode)")
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="client processes (default: one per core)")
    p.add_argument("--server-pid", type=int, action="append", dest="server_pids", default=None, metavar="PID",
                   help="measure this local process's CPU and memory (/proc); repeat for several processes "
                   "(summed, and shown per process)")
    p.add_argument("--metrics-url", default=None, help="Prometheus text endpoint of the server, read at start and end (optional)")
    p.add_argument("--json", type=Path, default=None, metavar="FILE", help="write every measurement here")
    p.add_argument("--plot", type=Path, default=None, metavar="FILE.png",
                   help="write a PNG of fps, latency and server CPU over time (needs matplotlib)")
    cache = default_cache_dir()
    p.add_argument("--cache-dir", type=Path, default=cache,
                   help="where pre-encoded loops are kept between runs")
    p.add_argument("--no-cache", action="store_true", help="encode the loops afresh and keep nothing")
    p.add_argument("--allow-remote", action="store_true", help="allow a target that is not on this machine's loopback")
    p.add_argument("--quiet", action="store_true", help="no live progress lines")
    p.add_argument("--seed", type=int, default=0, help="seed for the Next timing")


def parse_bitrate(text: str) -> int:
    t = text.strip().lower().rstrip("bps").rstrip("/")
    scale = 1
    if t.endswith("k"):
        scale, t = 1000, t[:-1]
    elif t.endswith("m"):
        scale, t = 1_000_000, t[:-1]
    try:
        value = int(float(t) * scale)
    except ValueError:
        raise UsageError(f"bad --bitrate {text!r}: use e.g. 800k or 1.5M") from None
    if not 50_000 <= value <= 20_000_000:
        raise UsageError(f"--bitrate {text} out of range (50k..20M)")
    return value


def parse_resolution(text: str) -> tuple[int, int]:
    try:
        w, h = (int(x) for x in text.lower().split("x"))
    except ValueError:
        raise UsageError(f"bad --resolution {text!r}: use WIDTHxHEIGHT, e.g. 640x480") from None
    if w < 64 or h < 64 or w % 2 or h % 2 or w > 3840 or h > 2160:
        raise UsageError(f"--resolution {text}: width and height must be even, 64..3840 x 64..2160")
    return w, h


def is_loopback_target(url: str) -> bool:
    """True if every address ``url``'s host resolves to is a loopback address."""
    host = urlsplit(url).hostname
    if not host:
        raise UsageError(f"bad --url {url!r}")
    try:
        infos = socket.getaddrinfo(host, None)
    except socket.gaierror as exc:
        raise UsageError(f"cannot resolve {host}: {exc}") from None
    addresses = {info[4][0] for info in infos}
    return bool(addresses) and all(ipaddress.ip_address(str(a).split("%")[0]).is_loopback for a in addresses)


def _check_reachable(url: str) -> None:
    try:
        urllib.request.urlopen(url.rstrip("/") + "/", timeout=5).close()
    except urllib.error.HTTPError:
        return  # it answers HTTP: good enough, the WebSocket decides
    except OSError as exc:
        raise UsageError(f"server not reachable at {url}: {exc}") from None


def settings_from(args: argparse.Namespace) -> dict[str, Any]:
    remote = False
    for url in args.urls:
        if urlsplit(url).scheme not in ("http", "https", "ws", "wss"):
            raise UsageError(f"--url must be http(s):// or ws(s)://, got {url!r}")
        if not is_loopback_target(url):
            remote = True
            if not args.allow_remote:
                raise UsageError(
                    f"refusing to load-test {urlsplit(url).hostname}: it is not this machine's loopback. "
                    "Load-test only servers you operate, and pass --allow-remote to confirm."
                )
    if len(set(args.urls)) != len(args.urls):
        raise UsageError("--url: the same server is named twice")
    if args.pairs < 1:
        raise UsageError("--pairs must be at least 1")
    if args.pairs * 2 > 65535:
        raise UsageError("--pairs too large")
    if args.duration <= 0:
        raise UsageError("--duration must be positive")
    if not 1 <= args.fps <= 60:
        raise UsageError("--fps must be 1..60")
    if args.workers < 1:
        raise UsageError("--workers must be at least 1")
    if args.next_every < 0:
        raise UsageError("--next-every must be >= 0")
    clients = args.pairs * 2
    ramp = args.ramp if args.ramp is not None else min(clients / 5.0, args.duration / 3.0)
    if ramp < 0 or ramp >= args.duration:
        raise UsageError("--ramp must be >= 0 and shorter than --duration")
    width, height = parse_resolution(args.resolution)
    return {
        "url": args.urls[0],
        "urls": list(args.urls),
        "remote": remote,
        "pairs": args.pairs,
        "clients": clients,
        "duration": args.duration,
        "ramp": ramp,
        "next_every": args.next_every,
        "resolution": f"{width}x{height}",
        "width": width,
        "height": height,
        "fps": args.fps,
        "bitrate": parse_bitrate(args.bitrate),
        "loop_seconds": args.loop_seconds,
        "audio": not args.no_audio,
        "decode": not args.no_decode,
        "workers": min(args.workers, clients),
        "server_pid": args.server_pids[0] if args.server_pids else None,
        "server_pids": list(args.server_pids or []),
        "metrics_url": args.metrics_url,
    }


def run(args: argparse.Namespace) -> int:
    from .plot import PlotUnavailable, require_matplotlib
    from .report import document, render
    from .runner import RunOptions
    from .runner import run as run_load
    from .worker import Plan

    try:
        settings = settings_from(args)
        if args.plot is not None:
            require_matplotlib()
        for pid in settings["server_pids"]:
            if not Path(f"/proc/{pid}").exists():
                raise UsageError(f"--server-pid {pid}: no such process on this machine")
        for url in settings["urls"]:
            _check_reachable(url)
    except (UsageError, PlotUnavailable) as exc:
        print(f"sfu loadtest: {exc}", file=sys.stderr)
        return 2
    spec = VideoSpec(
        width=settings["width"],
        height=settings["height"],
        fps=settings["fps"],
        bitrate=settings["bitrate"],
        loop_seconds=settings["loop_seconds"],
    )
    plan = Plan(
        urls=tuple(settings["urls"]),
        spec=spec,
        clients=settings["clients"],
        ramp=settings["ramp"],
        duration=settings["duration"],
        next_every=settings["next_every"],
        audio=settings["audio"],
        decode=settings["decode"],
        host_addresses=() if settings["remote"] else ("127.0.0.1",),
        cache_dir=None if args.no_cache else str(args.cache_dir),
        seed=args.seed,
    )
    progress = (lambda line: None) if args.quiet else (lambda line: print(line, flush=True))
    options = RunOptions(plan, settings["workers"], tuple(settings["server_pids"]), args.metrics_url, progress)
    print(
        f"sfu loadtest: {settings['pairs']} pairs ({settings['clients']} clients) against {', '.join(settings['urls'])} for "
        f"{settings['duration']:.0f} s (ramp {settings['ramp']:.1f} s), {settings['resolution']} @ {spec.fps} fps "
        f"{spec.bitrate // 1000} kbps, {settings['workers']} workers"
        f"{'' if settings['decode'] else ', frames recognised by their bytes (not decoded)'}",
        flush=True,
    )
    def terminate(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, terminate)  # stop the workers on SIGTERM too
    try:
        result = run_load(options)
    except KeyboardInterrupt:
        print("sfu loadtest: interrupted", file=sys.stderr)
        return 130
    except (RuntimeError, TimeoutError) as exc:
        print(f"sfu loadtest: {exc}", file=sys.stderr)
        return 1
    finally:
        signal.signal(signal.SIGTERM, previous)
    doc = document(result, settings)
    print()
    print(render(doc))
    if args.json is not None:
        args.json.write_text(json.dumps(doc, indent=1))
        print(f"wrote {args.json}")
    if args.plot is not None:
        from .plot import write_plot

        write_plot(doc, args.plot)
        print(f"wrote {args.plot}")
    return 0 if doc["summary"]["connected"] else 1
