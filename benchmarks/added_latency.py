"""The latency packet forwarding adds to each RTP packet: one-way latency through the server minus
one-way latency of the same clients connected directly, both measured in one run.

    python benchmarks/added_latency.py --seconds 15
    python benchmarks/added_latency.py --seconds 15 --load-pairs 3

Starts ``sfu serve --forwarding packet`` (automatic moderation and overload shedding off) in its
own process on a free loopback port, with its own data directory under a temporary directory.
In this process, four clients replay the pre-encoded 640x480 30 fps VP8 loop and Opus of
``sfu loadtest`` (nothing is encoded live; the loops come from its cache) and receive without
decoding (aiortc's receive path up to depayloading, then nothing): two are paired through the
server (a shared interest, ``strict``, so that nobody else is paired with them), two are connected
to each other directly (one peer connection, no server). Both pairs run at the same time, so both
paths see the same machine; their video frames leave a quarter of a frame apart from each other.

Each packet is timed when its datagram leaves the sender's socket (the clock read just before
``sendto``) and when it reaches the receiver's socket (the kernel's arrival stamp, before
decryption: a client that reads late does not count), and recognised on arrival by the end of its
payload, which the server does not rewrite (:mod:`sfu.loadtest.oneway`). After ``--warmup``
seconds of media, the packets arriving during ``--seconds`` are counted, both directions of each
pair, audio and video. Prints the packet counts and p50 / p95 / p99 of each path and their
difference ("added by the server") overall, then per kind, the server's CPU over the measurement,
and the verdict against the 5 ms p50 target.

``--load-pairs N`` also runs ``sfu loadtest --pairs N`` (a subprocess, its clients decoding)
against the same server during the measurement: the added latency under load. Its clients share
this machine's cores with the server and with both measured paths. Traffic stays on loopback;
the run ends on its own (about ``--seconds`` + 15 s, more with a load whose loops are not cached).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.capacity import free_port, stop
from sfu.loadtest.oneway import QUANTILES, Matching, Summary, added, match, table, verdict

TARGET = 0.005  # seconds: the product's target for the added p50
INTEREST = "added-latency-probe"
CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "sfu-loadtest"


def start_server(port: int, workdir: Path) -> subprocess.Popen:
    """``sfu serve --forwarding packet`` on 127.0.0.1:``port``, its data under ``workdir``."""
    cmd = [sys.executable, "-m", "sfu", "serve", "--host", "127.0.0.1", "--port", str(port),
           "--forwarding", "packet", "--moderation-classifier", "none", "--max-loop-lag", "0",
           "--max-cpu", "0", "--log-level", "warning"]
    env = {**os.environ, "XDG_DATA_HOME": str(workdir / "data")}
    with open(workdir / "serve.log", "w") as log:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 30
    while health(port) is None:
        if proc.poll() is not None or time.monotonic() > deadline:
            stop(proc)
            raise SystemExit(f"sfu serve did not start; see {workdir / 'serve.log'}")
        time.sleep(0.2)
    return proc


def health(port: int) -> dict[str, Any] | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as response:
            status: dict[str, Any] = json.load(response)
            return status
    except OSError:
        return None


def start_load(port: int, pairs: int, seconds: float, workdir: Path) -> subprocess.Popen:
    """``sfu loadtest --pairs N`` against the server, for longer than the measurement (it is
    stopped once the measurement is over)."""
    cmd = [sys.executable, "-m", "sfu", "loadtest", "--url", f"http://127.0.0.1:{port}", "--pairs", str(pairs),
           "--duration", str(seconds), "--quiet", "--cache-dir", str(CACHE)]
    with open(workdir / "loadtest.log", "w") as log:
        return subprocess.Popen(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)


async def wait_for(condition: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise SystemExit(f"no {what} within {timeout:.0f} s")
        await asyncio.sleep(0.2)


def wait_for_load(port: int, pairs: int, load: subprocess.Popen, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        status = health(port) or {}
        if status.get("participants", {}).get("paired", 0) >= 2 * pairs:
            return
        if load.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"the load's {pairs} pairs were not paired within {timeout:.0f} s (status {status})")
        time.sleep(0.5)


async def measure(port: int, server_pid: int, args: argparse.Namespace) -> dict[str, Any]:
    from sfu.loadtest.media import VideoSpec, encode_audio_loop, load_video_loop
    from sfu.loadtest.probe import read_proc
    from sfu.loadtest.timed_peer import TimedPeer

    spec = VideoSpec()
    loops = [load_video_loop(sender, spec, CACHE) for sender in (1, 2)]
    audio = encode_audio_loop()
    frame = 1 / spec.fps
    # Video leaves a quarter of a frame apart: through-1, direct-1, through-2, direct-2.
    through = [TimedPeer(f"through-{i + 1}", loops[i], audio, offset=(2 * i) * frame / 4) for i in range(2)]
    direct = [TimedPeer(f"direct-{i + 1}", loops[i], audio, offset=(2 * i + 1) * frame / 4) for i in range(2)]
    peers = through + direct
    try:
        url = f"http://127.0.0.1:{port}"
        for peer in through:
            await peer.join(url, INTEREST)
        await asyncio.gather(*(peer.paired() for peer in through))
        await direct[0].connect_directly(direct[1])
        await wait_for(lambda: all(p.arrivals for p in peers), 30, "media on both paths")
        await asyncio.sleep(args.warmup)
        since, cpu_before = time.time(), read_proc(server_pid, 0.0)
        await asyncio.sleep(args.seconds)
        until, cpu_after = time.time(), read_proc(server_pid, 0.0)
        await asyncio.sleep(0.6)  # packets in flight at the end
    finally:
        await asyncio.gather(*(peer.close() for peer in peers), return_exceptions=True)

    def path(a: TimedPeer, b: TimedPeer) -> tuple[list[Matching], dict[str, list[float]]]:
        """Both directions of one pair: their matchings, and every latency by kind."""
        both = [match(x.sent, y.arrivals, since=since, until=until) for x, y in ((a, b), (b, a))]
        return both, {kind: [v for m in both for v in m.latencies.get(kind, [])] for kind in ("audio", "video")}

    through_matchings, through_by_kind = path(*through)
    direct_matchings, direct_by_kind = path(*direct)
    cpu = cpu_after.cpu_seconds - cpu_before.cpu_seconds if cpu_before and cpu_after else None
    return {
        "seconds": until - since,
        "server_cores": None if cpu is None else cpu / (until - since),
        "through": through_by_kind,
        "direct": direct_by_kind,
        "unmatched": {"through": sum(m.unmatched for m in through_matchings),
                      "direct": sum(m.unmatched for m in direct_matchings)},
        "lost": {"through": sum(m.lost for m in through_matchings), "direct": sum(m.lost for m in direct_matchings)},
    }


def report(result: dict[str, Any], args: argparse.Namespace) -> bool | None:
    through_all = Summary.of(result["through"]["audio"] + result["through"]["video"])
    direct_all = Summary.of(result["direct"]["audio"] + result["direct"]["video"])
    load = f", under sfu loadtest --pairs {args.load_pairs}" if args.load_pairs else ""
    print(f"sfu serve --forwarding packet, 640x480 30 fps 800 kbps VP8 + Opus both ways, "
          f"{result['seconds']:.1f} s measured{load}, {os.cpu_count()} cores")
    print()
    print(table(direct_all, through_all))
    print()
    print("| kind | packets direct / through | added " + " | added ".join(f"p{round(q * 100)} ms" for q in QUANTILES) + " |")
    print("|---|---|" + "---|" * len(QUANTILES))
    for kind in ("video", "audio"):
        d, t = Summary.of(result["direct"][kind]), Summary.of(result["through"][kind])
        cells = [("-" if v is None else f"{v * 1000:.2f}") for v in added(t, d).values()]
        print(f"| {kind} | {d.count} / {t.count} | " + " | ".join(cells) + " |")
    print()
    print(f"not matched on arrival: direct {result['unmatched']['direct']}, through {result['unmatched']['through']}; "
          f"sent and never received: direct {result['lost']['direct']}, through {result['lost']['through']}")
    cores = result["server_cores"]
    print(f"server CPU over the measurement: {'-' if cores is None else f'{cores * 100:.0f}% of a core'}")
    met, sentence = verdict(through_all, direct_all, TARGET)
    print(f"target: latency added by the server p50 <= {TARGET * 1000:g} ms -> {sentence}")
    return met


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=15.0, help="measured time (after the warm-up)")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds of media before measuring")
    parser.add_argument("--load-pairs", type=int, default=0, help="also run sfu loadtest --pairs N against the server")
    parser.add_argument("--json", type=Path, default=None, help="write every latency (seconds) here")
    args = parser.parse_args()
    if args.seconds <= 0 or args.warmup < 0 or args.load_pairs < 0:
        parser.error("--seconds must be positive, --warmup and --load-pairs not negative")
    with tempfile.TemporaryDirectory(prefix="sfu-added-latency-") as tmp:
        workdir = Path(tmp)
        port = free_port()
        server = start_server(port, workdir)
        load = None
        try:
            if args.load_pairs:
                load = start_load(port, args.load_pairs, args.warmup + args.seconds + 180, workdir)
                wait_for_load(port, args.load_pairs, load, timeout=120)
            result = asyncio.run(measure(port, server.pid, args))
        finally:
            if load is not None and load.poll() is None:
                load.send_signal(signal.SIGINT)
                try:
                    load.wait(30)
                except subprocess.TimeoutExpired:
                    load.kill()
                    load.wait()
            stop(server)
    met = report(result, args)
    if args.json:
        args.json.write_text(json.dumps(result))
    return 0 if met is not None else 1


if __name__ == "__main__":
    sys.exit(main())
