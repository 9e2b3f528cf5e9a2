"""Benchmark: server CPU and latency, encoded forwarding (passthrough) vs transcoding.

For each mode, starts ``python -m sfu serve --forwarding MODE`` in its own process and a load process
of headless clients (640x480, 30 fps, VP8 + Opus) in another, then:

1. steady state: N pairs chat for ``--seconds``; the server process's CPU time (utime + stime from
   /proc/<pid>/stat, all threads) over that window gives CPU seconds per pair-second, and every
   received frame's stamp gives glass-to-glass latency. One extra publisher/watcher pair connected
   directly (no server) in the same load process gives the baseline, so "added by the server" is
   the difference of medians.
2. Next: one more client joins and waits; ``--nexts`` times, a paired client presses Next, its
   partner is paired with the waiting one; the time from Next to the partner's first frame from
   the new partner is recorded.

Prints a table. Not a test: figures depend on the machine and on whatever else runs on it.

    python benchmarks/passthrough.py --pairs 2 --seconds 20 --nexts 10 --kbps 800

Publishers' encoders are pinned to ``--kbps`` (REMB ignored), so every mode carries the same load.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from typing import Any, Optional

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

WIDTH, HEIGHT, FPS = 640, 480, 30


# -- load process ------------------------------------------------------------------------------------


def emit(event: str, **data: Any) -> None:
    print(json.dumps({"event": event, **data}), flush=True)


def latencies(frames: list, since: float, until: float, sender: Optional[int] = None) -> list[float]:
    out = []
    for f in frames:
        if since <= f.at <= until and f.stamp is not None and (sender is None or f.stamp.sender == sender):
            out.append(((f.wall_ms % 2**32) - f.stamp.clock_ms) % 2**32)
    return out


class DirectPair:
    """A publisher and a watcher connected peer to peer: the latency baseline without a server."""

    def __init__(self) -> None:
        from aiortc import RTCPeerConnection

        from sfu.headless.synthetic import StampedVideoTrack

        self.publisher = RTCPeerConnection()
        self.watcher = RTCPeerConnection()
        self.track = StampedVideoTrack(999, WIDTH, HEIGHT, FPS)
        self.frames: list = []
        self._task: Optional[asyncio.Task] = None

    async def start(self) -> None:
        from aiortc import RTCSessionDescription

        from sfu.headless import stamp as stamps
        from sfu.headless.client import ReceivedFrame
        from sfu.media.aiortc_hooks.ice import set_host_addresses

        @self.watcher.on("track")
        def on_track(track) -> None:
            async def read() -> None:
                while True:
                    frame = await track.recv()
                    self.frames.append(
                        ReceivedFrame(
                            time.monotonic(), int(time.time() * 1000), stamps.read_frame(frame), frame.width, frame.height
                        )
                    )

            self._task = asyncio.ensure_future(read())

        self.publisher.addTrack(self.track)
        for pc in (self.publisher, self.watcher):
            set_host_addresses(pc, ["127.0.0.1"])
        await self.publisher.setLocalDescription(await self.publisher.createOffer())
        await self.watcher.setRemoteDescription(self.publisher.localDescription)
        await self.watcher.setLocalDescription(await self.watcher.createAnswer())
        answer = self.watcher.localDescription
        await self.publisher.setRemoteDescription(RTCSessionDescription(sdp=answer.sdp, type=answer.type))

    async def close(self) -> None:
        if self._task:
            self._task.cancel()
        self.track.stop()
        await self.publisher.close()
        await self.watcher.close()


async def video_bytes_sent(client) -> int:
    sender = next(t.sender for t in client.pc.getTransceivers() if t.kind == "video")
    stats = await sender.getStats()
    return sum(s.bytesSent for s in stats.values() if getattr(s, "type", "") == "outbound-rtp")


def pin_bitrate(client, kbps: int) -> None:
    from sfu.media.aiortc_hooks.testing import pin_encoder_bitrate

    sender = next(t.sender for t in client.pc.getTransceivers() if t.kind == "video")
    pin_encoder_bitrate(sender, kbps * 1000)


async def run_load(url: str, pairs: int, seconds: float, nexts: int, kbps: int) -> None:
    from sfu.headless.client import ClientError, HeadlessClient

    clients = [HeadlessClient(url, i + 1, width=WIDTH, height=HEIGHT, fps=FPS) for i in range(2 * pairs)]
    direct = DirectPair()
    extra: Optional[HeadlessClient] = None
    try:
        for c in clients:
            await c.connect()
        await direct.start()
        for c in clients:
            await c.start()
        for c in clients:
            await c.expect("paired", timeout=60)
        partner_of = {c.id: c.messages("paired")[-1]["partner"] for c in clients}
        by_id = {c.id: c for c in clients}
        start = time.monotonic()
        for c in clients:
            await c.wait_frame_from(by_id[partner_of[c.id]].sender_id, since=start, timeout=60)
        for c in clients:
            pin_bitrate(c, kbps)  # the same load in every mode, whatever the estimates say
        await asyncio.sleep(3.0)  # let bitrate estimates settle

        sent0 = [await video_bytes_sent(c) for c in clients]
        t0 = time.monotonic()
        emit("steady_start")
        await asyncio.sleep(seconds)
        t1 = time.monotonic()
        emit("steady_end")
        sent1 = [await video_bytes_sent(c) for c in clients]
        via_server: list[float] = []
        fps: list[float] = []
        for c in clients:
            partner = by_id[partner_of[c.id]].sender_id
            via_server += latencies(c.received.frames, t0, t1, partner)
            seen = [f for f in c.received.frames if t0 <= f.at <= t1 and f.stamp and f.stamp.sender == partner]
            fps.append(len(seen) / (t1 - t0))
        baseline = latencies(direct.frames, t0, t1)
        sent_kbps = [(b - a) * 8 / 1000 / (t1 - t0) for a, b in zip(sent0, sent1)]

        # Next: a fresh client waits; each round a paired client presses Next, its partner gets the
        # waiting one.
        extra = HeadlessClient(url, 2 * pairs + 1, width=WIDTH, height=HEIGHT, fps=FPS)
        await extra.connect()
        await extra.start()
        await extra.expect("waiting", timeout=30)
        await asyncio.sleep(1.0)
        pin_bitrate(extra, kbps)
        everyone = clients + [extra]
        by_id[extra.id] = extra
        partner: dict[str, Optional[str]] = dict(partner_of)
        partner[extra.id] = None
        next_ms: list[float] = []
        next_failures = 0
        for _round in range(nexts):
            presser = next(by_id[i] for i, p in partner.items() if p is not None)
            old = by_id[partner[presser.id]]  # type: ignore[index]
            waiting = next(c for c in everyone if partner[c.id] is None)
            since = time.monotonic()
            await presser.next()
            # The waiting one meets the presser or the one left behind (the matchmaker picks).
            mate = by_id[(await waiting.expect("paired", timeout=10))["partner"]]
            alone = old if mate is presser else presser
            try:
                first = await mate.wait_frame_from(waiting.sender_id, since=since, timeout=10)
                await waiting.wait_frame_from(mate.sender_id, since=since, timeout=10)
                next_ms.append((first.at - since) * 1000)
            except ClientError:
                next_failures += 1
            await alone.expect("waiting", timeout=30)
            partner[alone.id] = None
            partner[mate.id] = waiting.id
            partner[waiting.id] = mate.id
            await asyncio.sleep(1.0)
        emit(
            "done",
            via_server_ms=via_server,
            direct_ms=baseline,
            fps=fps,
            video_kbps=sent_kbps,
            next_ms=next_ms,
            next_failures=next_failures,
        )
    finally:
        await asyncio.gather(*(c.close() for c in clients + ([extra] if extra else [])), return_exceptions=True)
        await direct.close()


# -- parent ------------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    utime, stime = int(fields[11]), int(fields[12])  # fields 14 and 15 of stat(5)
    return (utime + stime) / os.sysconf("SC_CLK_TCK")


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]


def run_mode(mode: str, args: argparse.Namespace) -> dict:
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "sfu", "serve", "--host", "127.0.0.1", "--port", str(port),
         "--forwarding", mode, "--rematch-cooldown", "0", "--log-level", "warning",
         "--max-loop-lag", "0", "--max-cpu", "0",  # never shed the clients being measured
         "--moderation-classifier", "none"],  # this measures forwarding
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                with urllib.request.urlopen(url + "/healthz", timeout=1):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        load = subprocess.Popen(
            [sys.executable, os.path.abspath(__file__), "--load", url, "--pairs", str(args.pairs),
             "--seconds", str(args.seconds), "--nexts", str(args.nexts), "--kbps", str(args.kbps)],
            cwd=ROOT, stdout=subprocess.PIPE, text=True,
        )
        result: dict = {"mode": mode}
        cpu0 = wall0 = 0.0
        assert load.stdout is not None
        for line in load.stdout:
            if not line.startswith("{"):
                continue
            event = json.loads(line)
            if event["event"] == "steady_start":
                cpu0, wall0 = cpu_seconds(server.pid), time.monotonic()
                with urllib.request.urlopen(url + "/healthz", timeout=5) as r:
                    result["healthz"] = json.load(r).get("directions")
            elif event["event"] == "steady_end":
                result["cpu"] = cpu_seconds(server.pid) - cpu0
                result["wall"] = time.monotonic() - wall0
            elif event["event"] == "done":
                result.update(event)
        if load.wait() != 0:
            raise RuntimeError(f"load process failed in mode {mode}")
        return result
    finally:
        server.terminate()
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            server.kill()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--nexts", type=int, default=10)
    parser.add_argument("--modes", default="passthrough,transcode")
    parser.add_argument("--kbps", type=int, default=800, help="video bitrate every publisher's encoder aims at")
    parser.add_argument("--load", metavar="URL", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.load:
        asyncio.run(run_load(args.load, args.pairs, args.seconds, args.nexts, args.kbps))
        return 0

    from sfu.media.modes import FORWARDING_MODES

    modes = args.modes.split(",")
    unknown = [m for m in modes if m not in FORWARDING_MODES]
    if unknown:
        parser.error(f"unknown mode(s) {', '.join(unknown)}; choose from {', '.join(FORWARDING_MODES)}")
    results = [run_mode(mode, args) for mode in modes]
    print(f"\n{args.pairs} pairs, {WIDTH}x{HEIGHT} {FPS} fps VP8 + Opus, {args.seconds:.0f} s steady state, "
          f"{args.nexts} Nexts; {os.cpu_count()} cores")
    header = ("mode", "video kbps/pub", "recv fps", "CPU s/pair-s", "pairs/core", "Next p50 ms", "Next p95 ms",
              "g2g p50 ms", "direct p50 ms", "added p50 ms", "added p95 ms")
    print(" | ".join(header))
    print(" | ".join("---" for _ in header))
    per_pair = {}
    for r in results:
        cost = r["cpu"] / (args.pairs * r["wall"])
        per_pair[r["mode"]] = cost
        via, direct = r["via_server_ms"], r["direct_ms"]
        print(" | ".join([
            r["mode"],
            f"{statistics.mean(r['video_kbps']):.0f}",
            f"{statistics.mean(r['fps']):.1f}",
            f"{cost:.4f}",
            f"{1 / cost:.0f}" if cost > 0 else "inf",
            f"{pct(r['next_ms'], 0.5):.0f}",
            f"{pct(r['next_ms'], 0.95):.0f}",
            f"{pct(via, 0.5):.0f}",
            f"{pct(direct, 0.5):.0f}",
            f"{pct(via, 0.5) - pct(direct, 0.5):.0f}",
            f"{pct(via, 0.95) - pct(direct, 0.95):.0f}",
        ]))
    if "passthrough" in per_pair and "transcode" in per_pair and per_pair["passthrough"] > 0:
        print(f"\ntranscode / passthrough server CPU per pair: {per_pair['transcode'] / per_pair['passthrough']:.1f}x")
    for r in results:
        if r.get("next_failures"):
            print(f"{r['mode']}: {r['next_failures']} Nexts without the new partner's video within 10 s")
    for r in results:
        print(f"{r['mode']}: /healthz directions during steady state: {r.get('healthz')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
