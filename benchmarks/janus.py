"""Side by side with Janus: the same media load through Janus's VideoRoom (C) and through
``sfu serve --forwarding packet``, one after the other in one run, on this machine.

    apt-get install -y janus        # Debian's janus 1.1.2; a benchmark-only dependency
    python benchmarks/janus.py --pairs 5 --duration 20

Every person publishes the pre-encoded 640x480 30 fps VP8 loop + Opus that ``sfu loadtest`` sends
(no live encoding) and receives its partner's, both directions per pair, from 2 client worker
processes. Janus: one VideoRoom room per pair (created through the HTTP API), each person a
publisher handle + peer connection and a subscriber handle + peer connection on one session
(HTTP long poll), receivers counting frames by RTP marker bit without decoding (``--janus-decode``:
decoding and reading the stamps, as ``sfu loadtest``'s clients do). Janus's HTTP API listens on
127.0.0.1, no STUN; Janus never gathers ICE candidates on loopback, so Janus and its clients run
in a network namespace of their own (needs root; removed at the end) on a veth address, or on
``--ice-address``. sfu: ``sfu serve --forwarding packet --moderation-classifier none
--max-loop-lag 0 --max-cpu 0`` on 127.0.0.1, driven by ``sfu loadtest --pairs N --next-every 0
--no-decode`` (its clients recognise frames by their bytes; with ``--janus-decode`` they decode, as
Janus's clients then do).

Prints, per target: server CPU per pair-second over the whole run (set-up included, as ``sfu
loadtest`` counts it) and in the steady state (once every direction receives), the pairs per core
that projects to, CPU per delivered frame, received video fps per direction (p50 / min), how many
directions received video and audio, video loss, keyframe requests, errors; then the ratio sfu /
Janus of CPU per pair-second and the verdict. Everything started is stopped at the end, also on
Ctrl-C or an error. Logs and JSON are kept with ``--keep DIR``.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import queue
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks import janus_server  # noqa: E402
from benchmarks.capacity import free_port, load_test, start_target  # noqa: E402
from benchmarks.janus_api import create_rooms  # noqa: E402
from benchmarks.janus_clients import Plan, split, worker_main  # noqa: E402
from benchmarks.janus_report import janus_summary, ratio_lines, sfu_summary, table  # noqa: E402
from sfu.loadtest.media import VideoSpec, default_cache_dir  # noqa: E402
from sfu.loadtest.probe import read_proc  # noqa: E402
from sfu.loadtest.runner import stop_workers  # noqa: E402
from sfu.loadtest.worker import Channels  # noqa: E402

WORKERS = 2
PREPARE_TIMEOUT = 180.0
FINISH_GRACE = 45.0
ROOM_BASE = 1000


def run_janus(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    """The Janus phase in a private network namespace (or on ``--ice-address`` in this one)."""
    if args.ice_address:
        return run_janus_here(args, workdir)
    out = workdir / "janus-raw.json"
    with janus_server.private_network() as namespace:
        cmd = ["ip", "netns", "exec", namespace, sys.executable, str(Path(__file__).resolve()), "--janus-phase", str(out),
               "--ice-address", janus_server.NETNS_ADDRESS, "--pairs", str(args.pairs), "--duration", str(args.duration),
               "--ramp", str(args.ramp), "--fps", str(args.fps), "--bitrate", str(args.bitrate),
               "--rtp-ports", "-".join(map(str, args.rtp_ports)), "--keep", str(workdir)]
        cmd += ["--janus-decode"] if args.janus_decode else []
        child = subprocess.Popen(cmd, cwd=ROOT)
        try:
            code = child.wait(timeout=args.duration + PREPARE_TIMEOUT + 120)
        finally:  # Ctrl-C or a timeout: let the run stop Janus and its clients itself, then insist
            if child.poll() is None:
                child.terminate()  # SIGTERM: it stops as on Ctrl-C (SIGINT may be ignored in the background)
                try:
                    child.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    child.kill()
                    child.wait()
    if code != 0 or not out.exists():
        raise RuntimeError(f"the Janus run failed (exit code {code}); see {workdir}")
    result: dict[str, Any] = json.loads(out.read_text())
    return result


def run_janus_here(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    settings = janus_server.JanusSettings(http_port=free_port(), rtp_ports=args.rtp_ports, ice_address=args.ice_address)
    proc = janus_server.start(settings, workdir / "janus-config", workdir / "janus.log")
    print(f"== janus (pid {proc.pid}) on {settings.url}, media on {settings.ice_address}: {args.pairs} pairs", flush=True)
    try:
        create_rooms(settings.url, [ROOM_BASE + k for k in range(args.pairs)])
        spec = VideoSpec(fps=args.fps, bitrate=args.bitrate)
        plan = Plan(settings.url, spec, args.pairs, args.ramp, args.duration, ROOM_BASE,
                    host_addresses=(args.ice_address,), cache_dir=str(default_cache_dir()), decode=args.janus_decode)
        result = drive(plan, proc.pid)
    finally:
        janus_server.stop(proc)
    result["janus_log_warnings"] = _warnings(workdir / "janus.log")
    return result


def drive(plan: Plan, pid: int) -> dict[str, Any]:
    """Run the clients in worker processes, reading the server's CPU once a second."""
    ctx = multiprocessing.get_context("spawn")
    channels = Channels(out=ctx.Queue(), go=ctx.Event(), go_time=ctx.Value("d", 0.0), stop=ctx.Event())
    groups = split(plan.clients, WORKERS)
    procs = [ctx.Process(target=worker_main, args=(i, senders, plan, channels), daemon=True) for i, senders in enumerate(groups)]
    people: list[dict[str, Any]] = []
    errors: list[str] = []
    generator: list[dict[str, Any]] = []
    samples: list[dict[str, float]] = []
    try:
        for p in procs:
            p.start()
        ready, deadline = 0, time.monotonic() + PREPARE_TIMEOUT
        while ready < len(procs):
            try:
                kind, index, payload = channels.out.get(timeout=1.0)
            except queue.Empty:
                if time.monotonic() > deadline or any(p.exitcode not in (None, 0) for p in procs):
                    raise RuntimeError("client workers did not get ready (preparing media)") from None
                continue
            if kind == "failed":
                raise RuntimeError(f"client worker {index} failed: {payload['error']}\n{payload['trace']}")
            ready += kind == "ready"
        go = time.time() + 0.5
        channels.go_time.value = go
        channels.go.set()
        end = go + plan.duration
        _sample(pid, samples)
        done = 0
        next_sample = go + 1.0
        while done < len(procs):
            now = time.time()
            if now >= next_sample and now <= end + 0.5:
                _sample(pid, samples)
                next_sample += 1.0
            if now > end + FINISH_GRACE:
                errors.append("client workers did not finish in time")
                break
            try:
                kind, index, payload = channels.out.get(timeout=0.1)
            except queue.Empty:
                continue
            if kind == "done":
                done += 1
                people += payload["people"]
                generator.append({"cpu_seconds": payload.get("cpu_seconds"), "wall_seconds": payload.get("wall_seconds")})
            elif kind == "failed":
                done += 1
                errors.append(f"client worker {index}: {payload['error']}")
    finally:
        stop_workers(procs, channels, grace=15)
        channels.out.cancel_join_thread()
    samples = [s for s in samples if s["at"] <= end + 0.5]
    people.sort(key=lambda p: p["sender"])
    return {"go": go, "end": end, "samples": samples, "people": people, "errors": errors, "generator": generator,
            "pairs": plan.pairs, "fps": plan.spec.fps}


def _sample(pid: int, into: list[dict[str, float]]) -> None:
    sample = read_proc(pid, time.time())  # utime + stime of the whole process: every Janus thread
    if sample is not None:
        into.append({"at": sample.at, "cpu_seconds": sample.cpu_seconds, "rss_bytes": sample.rss_bytes})


#: Janus log lines this set-up always produces: modules left out on purpose, no mDNS, no address
#: outside the namespace for the SDP's c= line, aiortc's extra sha-384/512 fingerprints (Janus
#: uses the sha-256 one), and "no such feed" while a partner has not published yet.
EXPECTED_LOG = ("has been disabled", "mDNS resolution disabled", "Couldn't find any address",
                "Hashing algorithm not the one we expected", "No such feed")


def _warnings(log: Path, limit: int = 10) -> list[str]:
    """Janus's unexpected warnings and errors, handle ids left out, each once with its count."""
    try:
        lines = log.read_text(errors="replace").splitlines()
    except OSError:
        return []
    found: Counter[str] = Counter()
    for line in lines:
        if ("[ERR]" in line or "[WARN]" in line) and not any(e in line for e in EXPECTED_LOG):
            found[re.sub(r"\[\d+\]\s*", "", line).strip()] += 1
    return [f"{text} (x{count})" for text, count in found.most_common(limit)]


def run_sfu(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    port = free_port()
    proc = start_target("packet", port, workdir / "sfu.log")
    out = workdir / "sfu-loadtest.json"
    cmd = [sys.executable, "-m", "sfu", "loadtest", "--url", f"http://127.0.0.1:{port}", "--pairs", str(args.pairs),
           "--duration", str(args.duration), "--ramp", str(args.ramp), "--next-every", "0", "--workers", str(WORKERS),
           "--resolution", "640x480", "--fps", str(args.fps), "--bitrate", str(args.bitrate),
           "--server-pid", str(proc.pid), "--json", str(out), "--quiet"]
    cmd += [] if args.janus_decode else ["--no-decode"]  # the same client work on both sides
    doc = load_test(cmd, proc, out, f"== sfu (pid {proc.pid})", args.duration + 300)
    return {"failed": True} if doc is None else doc


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def parse_ports(text: str) -> tuple[int, int]:
    low, _, high = text.partition("-")
    ports = (int(low), int(high))
    if not 1024 <= ports[0] < ports[1] <= 65535:
        raise argparse.ArgumentTypeError(f"not a port range: {text!r}")
    return ports


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=int, default=5)
    parser.add_argument("--duration", type=float, default=20.0, help="seconds of load per target, ramp included")
    parser.add_argument("--ramp", type=float, default=None, help="seconds over which people join (default: as sfu loadtest)")
    parser.add_argument("--fps", type=int, default=30)
    parser.add_argument("--bitrate", type=int, default=800_000)
    parser.add_argument("--rtp-ports", type=parse_ports, default=(20000, 20999), help="Janus's media port range")
    parser.add_argument("--targets", default="janus,sfu", help="comma-separated: janus, sfu (in this order)")
    parser.add_argument("--keep", type=Path, default=None, help="keep logs and JSON results in this folder")
    parser.add_argument("--ice-address", default=None,
                        help="run Janus and its clients on this local non-loopback address instead of in a network "
                             "namespace of their own (which needs root)")
    parser.add_argument("--janus-decode", action="store_true",
                        help="Janus's clients decode what they receive and read the stamps, as sfu loadtest's do "
                             "(by default they only count packets and frames)")
    parser.add_argument("--janus-phase", type=Path, default=None, help=argparse.SUPPRESS)  # run by run_janus
    args = parser.parse_args()
    if args.pairs < 1 or args.duration <= 0:
        parser.error("--pairs must be >= 1 and --duration > 0")
    args.ramp = args.ramp if args.ramp is not None else min(2 * args.pairs / 5.0, args.duration / 3.0)
    targets = [t for t in args.targets.split(",") if t]
    if set(targets) - {"janus", "sfu"}:
        parser.error("--targets: janus and/or sfu")
    if "janus" in targets and not janus_server.installed():
        print(f"{janus_server.JANUS} is missing: install Debian's '{janus_server.PACKAGE}' package "
              f"(apt-get install -y {janus_server.PACKAGE})", file=sys.stderr)
        return 2
    if "janus" in targets and not args.ice_address and os.geteuid() != 0:
        print("Janus never uses loopback for media: run as root (for a private network namespace) or pass "
              "--ice-address with one of this machine's own addresses", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, _interrupt)  # SIGTERM stops everything as Ctrl-C does
    if args.janus_phase is not None:
        try:
            args.keep.mkdir(parents=True, exist_ok=True)
            args.janus_phase.write_text(json.dumps(run_janus_here(args, args.keep)))
        except KeyboardInterrupt:
            return 130
        return 0
    summaries: dict[str, dict[str, Any]] = {}
    raw: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="sfu-janus-") as tmp:
        workdir = args.keep or Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        try:
            for target in targets:
                if target == "janus":
                    raw["janus"] = run_janus(args, workdir)
                    summaries["janus"] = janus_summary(raw["janus"])
                else:
                    raw["sfu"] = run_sfu(args, workdir)
                    summaries["sfu"] = sfu_summary(raw["sfu"])
        except KeyboardInterrupt:
            print("interrupted: everything started was stopped", file=sys.stderr)
            return 130
        except RuntimeError as exc:
            print(f"failed: {exc}", file=sys.stderr)
            return 1
        (workdir / "results.json").write_text(json.dumps({"summaries": summaries, "raw": raw}, indent=1))
    print()
    print(f"{args.pairs} pairs, 640x480 @ {args.fps} fps {args.bitrate // 1000} kbps VP8 + Opus each way, "
          f"{args.duration:.0f} s (ramp {args.ramp:.1f} s), {WORKERS} client processes, {os.cpu_count()} cores")
    print(table(summaries))
    for line in ratio_lines(summaries):
        print(line)
    for warning in raw.get("janus", {}).get("janus_log_warnings", []):
        print(f"janus log: {warning}")
    return 0 if all(not s.get("failed") for s in summaries.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
