"""Capacity benchmark: the server in every forwarding mode, and the aiortc-style reference relay,
each under the same `sfu loadtest` load, one after the other in one run.

    python benchmarks/capacity.py --pairs 4 --duration 30 --next-every 10

Prints, per target: server CPU per pair-second (and per delivered frame), projected pairs per core,
received fps, latency, Next -> first frame, and the ratio of the reference relay's CPU cost to this
target's (higher is better: "x times cheaper than the reference"). The forwarding modes are the
choices of ``sfu serve --forwarding`` unless ``--modes`` names them; ``MODE+uvloop`` runs a mode on
uvloop's event loop. Automatic moderation is off (this measures forwarding) unless a target says
``MODE+moderation``: then the server screens every pairing and samples everyone as ``sfu serve``
does by default (NudeNet when installed).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any, Optional

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

REFERENCE = "reference"


def serve_modes() -> list[str]:
    """The ``--forwarding`` choices of ``sfu serve``."""
    from sfu.media.modes import FORWARDING_MODES

    return list(FORWARDING_MODES)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_target(target: str, port: int, log: Path, extra: tuple[str, ...] = ()) -> subprocess.Popen:
    """Start ``target`` (a forwarding mode, or the reference relay) on ``port``; ``extra``: more
    ``sfu serve`` options."""
    if target == REFERENCE:
        cmd = [sys.executable, str(ROOT / "benchmarks" / "reference_relay.py"), "--port", str(port)]
    else:
        mode, *extras = target.split("+")  # "packet+uvloop": the same mode on uvloop's event loop
        unknown = set(extras) - {"uvloop", "moderation"}
        if unknown:
            raise SystemExit(f"unknown target option(s) {', '.join(sorted(unknown))} in {target!r}")
        serve = ["serve", "--host", "127.0.0.1", "--port", str(port), "--forwarding", mode, "--log-level", "warning",
                 "--max-loop-lag", "0", "--max-cpu", "0", *extra]  # measure past saturation: never shed newcomers
        if "moderation" not in extras:
            serve += ["--moderation-classifier", "none"]
        if "uvloop" in extras:
            code = f"import sys, uvloop; uvloop.install(); from sfu.cli import main; sys.exit(main({serve!r}))"
            cmd = [sys.executable, "-c", code]
        else:
            cmd = [sys.executable, "-m", "sfu", *serve]
    out = open(log, "w")
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
    out.close()
    deadline = time.monotonic() + 30
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1):
                return proc
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                stop(proc)
                raise RuntimeError(f"{target} did not start; see {log}") from None
            time.sleep(0.2)


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


#: Targets whose clients receive frames byte for byte as sent (``sfu loadtest --no-decode`` works).
FORWARDING_AS_SENT = ("packet", "passthrough")


def run_target(target: str, args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    port = free_port()
    proc = start_target(target, port, workdir / f"{target}.log")
    out = workdir / f"{target}.json"
    cmd = [
        sys.executable, "-m", "sfu", "loadtest", "--url", f"http://127.0.0.1:{port}",
        "--pairs", str(args.pairs), "--duration", str(args.duration), "--next-every", str(args.next_every),
        "--resolution", args.resolution, "--fps", str(args.fps), "--bitrate", args.bitrate,
        "--server-pid", str(proc.pid), "--json", str(out), "--quiet",
    ]
    if args.workers:
        cmd += ["--workers", str(args.workers)]
    if args.ramp is not None:
        cmd += ["--ramp", str(args.ramp)]
    if args.no_decode and target in FORWARDING_AS_SENT:
        cmd += ["--no-decode"]
    doc = load_test(cmd, proc, out, f"== {target}", args.duration + 300, verbose=args.verbose)
    if doc is None:
        return {"target": target, "failed": True}
    return {"target": target, "summary": doc["summary"]}


def load_test(cmd: list[str], proc: subprocess.Popen[bytes], out: Path, label: str, timeout: float,
              verbose: bool = False) -> Optional[dict[str, Any]]:
    """Run one ``sfu loadtest`` command against the server ``proc`` (stopped afterwards); its JSON
    report, or ``None`` (its output printed) if it failed."""
    print(f"{label}: {' '.join(cmd[1:])}", flush=True)
    try:
        run = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    finally:
        stop(proc)
    if run.returncode != 0 or not out.exists():
        print(run.stdout[-3000:], run.stderr[-3000:], file=sys.stderr)
        return None
    if verbose:
        print(run.stdout)
    doc: dict[str, Any] = json.loads(out.read_text())
    return doc


def row(result: dict[str, Any], reference: Optional[dict[str, Any]]) -> list[str]:
    if result.get("failed"):
        return [result["target"], "failed"] + [""] * 9
    s = result["summary"]
    server = s.get("server") or {}
    cpu = server.get("cpu_seconds_per_pair_second")
    per_frame = server.get("cpu_seconds", 0) / s["frames_received"] * 1000 if s["frames_received"] else None
    ratio = "-"
    if reference and not reference.get("failed") and cpu and per_frame:
        r = reference["summary"]
        ref = (r.get("server") or {}).get("cpu_seconds_per_pair_second")
        ref_frame = (r.get("server") or {}).get("cpu_seconds", 0) / r["frames_received"] * 1000 if r["frames_received"] else None
        if ref and ref_frame:
            ratio = f"{ref / cpu:.2f}x / {ref_frame / per_frame:.2f}x"

    def f(v: Optional[float], fmt: str) -> str:
        return "-" if v is None else format(v, fmt)

    return [
        result["target"],
        f(cpu * 1000 if cpu else None, ".0f"),
        f(per_frame, ".2f"),
        f(server.get("projected_pairs_per_core_at_full_fps"), ".1f"),
        f(s["fps"]["p50"], ".1f"),
        f"{f(s['latency_ms']['p50'], '.0f')} / {f(s['latency_ms']['p95'], '.0f')}",
        f"{f(s['next_to_first_frame_ms']['p50'], '.0f')} / {f(s['next_to_first_frame_ms']['p95'], '.0f')}",
        f"{f(s['paired_to_first_frame_ms']['p50'], '.0f')} / {f(s['paired_to_first_frame_ms']['p95'], '.0f')}",
        f(server.get("rss_mb_peak"), ".0f"),
        str(sum(s["errors"].values())),
        ratio,
    ]


def table(rows: list[list[str]], fps: int) -> str:
    header = ["target", "CPU ms/pair-s", "CPU ms/frame", f"pairs/core at {fps} fps", "fps p50", "latency ms p50/p95",
              "Next->frame ms p50/p95", "paired->frame ms p50/p95", "RSS MB peak", "errors",
              "reference CPU / this (per pair-s / per frame)"]
    widths = [max(len(r[i]) for r in [header] + rows) for i in range(len(header))]
    fmt = lambda r: "| " + " | ".join(c.ljust(w) for c, w in zip(r, widths)) + " |"  # noqa: E731
    return "\n".join([fmt(header), "|" + "|".join("-" * (w + 2) for w in widths) + "|"] + [fmt(r) for r in rows])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=int, default=4)
    parser.add_argument("--duration", type=float, default=30.0)
    parser.add_argument("--ramp", type=float, default=None)
    parser.add_argument("--next-every", type=float, default=10.0)
    parser.add_argument("--resolution", default="640x480")
    parser.add_argument("--fps", type=int, default=30)
    parser.add_argument("--bitrate", default="800k")
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--modes", default=None, help="comma-separated forwarding modes (default: all of sfu serve's)")
    parser.add_argument("--no-reference", action="store_true", help="skip the reference relay")
    parser.add_argument("--no-decode", action="store_true",
                        help="clients recognise frames by their bytes instead of decoding them, against the targets "
                        "that forward what they receive (packet, passthrough): a much lighter load generator")
    parser.add_argument("--json", type=Path, default=None, help="write all results here")
    parser.add_argument("--verbose", action="store_true", help="print each load test's own report")
    args = parser.parse_args()
    targets = args.modes.split(",") if args.modes else serve_modes()
    if not args.no_reference:
        targets.append(REFERENCE)
    results: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="sfu-capacity-") as tmp:
        for target in targets:
            results[target] = run_target(target, args, Path(tmp))
    reference = results.get(REFERENCE)
    print()
    print(
        f"{args.pairs} pairs, {args.resolution} @ {args.fps} fps {args.bitrate}, {args.duration:.0f} s, "
        f"Next every {args.next_every:.0f} s, {os.cpu_count()} cores"
    )
    print(table([row(results[t], reference) for t in targets], args.fps))
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    return 0 if all(not r.get("failed") for r in results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
