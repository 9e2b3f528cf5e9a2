"""Pairs per core with the server busy: a light load generator that replays ready-made RTP.

    python benchmarks/replay.py --pairs 8,16,24,32 --seconds 15

``sfu loadtest`` clients are full aiortc peers: each packet they send is packetized, encrypted and
sent by aiortc, each packet they get is decrypted, buffered and assembled, so on a 2-core machine
the generator needs about as much CPU as the server and ~8 pairs fill the machine with the server
a third busy. On this kind of machine a process that sleeps between short bursts of work pays much
more per packet than a busy one (its caches are cold at each wake-up; see docs/forwarding.md), so a
server measured at a third of a core shows a higher cost per pair than it has when it is full.

Here each client connects as ``sfu loadtest``'s do (WebSocket signaling, ICE, DTLS, one peer
connection) but sends media itself: a VP8-shaped stream (three ~1,100-byte packets per frame at
30 fps, a keyframe every second) and an Opus-shaped one (50 packets/s), each packet built from a
template, encrypted with the connection's own SRTP session and sent straight on its socket. What
the server forwards back is decrypted and counted (loss, and the time from send to arrival, written
in each audio payload), not assembled or decoded. The server is ``sfu serve --forwarding packet`` in its
own process, unchanged: it cannot tell these clients from browsers.

For each number of pairs: a fresh server, every pair formed (no Next), then over a steady window the
server's CPU per pair-second and per forwarded packet, the projected pairs per core, the loss seen by
the clients and the send-to-arrival time through the server (p50 / p95); with ``--perf``, how the
server's CPU per forwarded packet splits between the interpreter, the kernel, libsrtp and libc.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import random
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from aiortc import RTCDtlsTransport, RTCRtpReceiver, RTCRtpSender, RTCRtpTransceiver  # noqa: E402

from benchmarks.capacity import free_port, start_target, stop  # noqa: E402
from benchmarks.packet_profile import GROUPS, OTHER, cpu_seconds, forwarded_packets, perf_split, perf_usable  # noqa: E402
from sfu.headless.client import HeadlessClient  # noqa: E402
from sfu.media.aiortc_hooks import packets as hooks  # noqa: E402
from sfu.media.aiortc_hooks.packet_senders import outbound_leg  # noqa: E402
from sfu.media.rtp.legs import InboundLeg, OutboundLeg  # noqa: E402

FPS = 30
VIDEO_PACKETS = 3  #: per frame: ~800 kbps in ~1,100-byte packets
VIDEO_PAYLOAD = 1100
AUDIO_INTERVAL = 0.02
AUDIO_PAYLOAD = 80
_STAMP = struct.Struct("!d")
_HEAD = struct.Struct("!BBHII")
#: Where the send time sits in a video payload: after the VP8 descriptor (4 bytes) and frame header.
VIDEO_STAMP_AT = 16


@dataclass
class Counts:
    """What one client got back from the server."""

    packets: int = 0
    expected: int = 0
    delays: list[float] = field(default_factory=list)


class _Counter:
    """Takes the forwarded packets of one inbound stream off the transport (see ``InboundTap``)."""

    active = True

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.first: int | None = None
        self.highest = 0
        self.cycles = 0
        self.packets = 0
        self.delays: list[float] = []

    def on_rtp(self, packet: bytes, now: float) -> None:
        sequence = struct.unpack_from("!H", packet, 2)[0]
        if self.first is None:
            self.first = self.highest = sequence
        elif 0 < (sequence - self.highest) & 0xFFFF < 0x8000:
            if sequence < self.highest:
                self.cycles += 1
            self.highest = sequence
        self.packets += 1
        # Audio payloads arrive as sent in every forwarding mode (video is packetized anew by the
        # frame-level ones), so the time through the server is read from them.
        if self.kind == "audio" and self.packets % 4 == 0:
            start = 12 + (packet[0] & 0x0F) * 4
            if packet[0] & 0x10:
                start += 4 + struct.unpack_from("!H", packet, start + 2)[0] * 4
            if len(packet) >= start + 8:
                self.delays.append(now - _STAMP.unpack_from(packet, start)[0])

    def on_sender_report(self, ssrc: int, ntp: int, now: float) -> None:
        pass

    def expected(self) -> int:
        if self.first is None:
            return 0
        return (self.cycles << 16) + self.highest - self.first + 1


class ReplayMedia:
    """One person's replayed media: what it sends on its senders, what it counts on its receivers
    (any peer connection's transceivers: ours, or Janus's publisher and subscriber ones)."""

    def __init__(self) -> None:
        self.outputs: dict[str, tuple[OutboundLeg, hooks.RtpOutput]] = {}
        self.counters: list[_Counter] = []
        self._sequence = {kind: random.randrange(1 << 16) for kind in ("audio", "video")}
        self._timestamp = {kind: random.randrange(1 << 32) for kind in ("audio", "video")}
        self._frames = 0
        self.sent = 0

    def hook_sender(self, sender: RTCRtpSender) -> None:
        """Send on ``sender`` (its negotiated SSRC and payload type) once negotiation starts it."""
        original = sender.send

        async def send(parameters: Any) -> None:
            leg = outbound_leg(sender, parameters)
            self.outputs[leg.kind] = (leg, hooks.RtpOutput(sender.transport))
            await original(parameters)

        sender.send = send  # type: ignore[method-assign]

    def hook_receiver(self, receiver: RTCRtpReceiver, kind: str) -> None:
        """Count what ``receiver`` gets, taken off its transport before aiortc."""

        def claim(leg: InboundLeg, transport: RTCDtlsTransport) -> None:
            counter = _Counter(kind)
            self.counters.append(counter)
            hooks.InboundTap.of(transport).claim(leg, counter)

        hooks.on_receiver_parameters(receiver, claim)

    def send_frame(self, now: float) -> None:
        out = self.outputs.get("video")
        if out is None:
            return
        leg, output = out
        key = self._frames % FPS == 0
        picture_id = self._frames & 0x7FFF
        self._frames += 1
        timestamp = self._timestamp["video"] = (self._timestamp["video"] + 90000 // FPS) & 0xFFFFFFFF
        stamp = _STAMP.pack(now)
        for i in range(VIDEO_PACKETS):
            first, last = i == 0, i == VIDEO_PACKETS - 1
            descriptor = bytes([0x90 if first else 0x80, 0x80, 0x80 | picture_id >> 8, picture_id & 0xFF])
            frame_header = bytes([0x10 if key else 0x11, 0x02, 0x9D, 0x01]) if first else bytes(4)
            head = descriptor + frame_header
            payload = head + bytes(VIDEO_STAMP_AT - len(head)) + stamp
            payload += bytes(VIDEO_PAYLOAD - len(payload))
            self._send(leg, output, "video", timestamp, last, payload)

    def send_audio(self, now: float) -> None:
        out = self.outputs.get("audio")
        if out is None:
            return
        leg, output = out
        timestamp = self._timestamp["audio"] = (self._timestamp["audio"] + 960) & 0xFFFFFFFF
        payload = _STAMP.pack(now) + bytes(AUDIO_PAYLOAD - 8)
        self._send(leg, output, "audio", timestamp, False, payload)

    def _send(self, leg: OutboundLeg, output: hooks.RtpOutput, kind: str, timestamp: int, marker: bool,
              payload: bytes) -> None:
        sequence = self._sequence[kind] = (self._sequence[kind] + 1) & 0xFFFF
        header = _HEAD.pack(0x80, (0x80 if marker else 0) | leg.codec.payload_type, sequence, timestamp, leg.ssrc)
        if output.send_rtp(header + payload):
            self.sent += 1

    def counts(self) -> Counts:
        return Counts(
            packets=sum(c.packets for c in self.counters),
            expected=sum(c.expected() for c in self.counters),
            delays=[d for c in self.counters for d in c.delays],
        )


class ReplayClient(HeadlessClient):
    """A client of ours whose media is replayed from templates, and whose partner's media is only
    counted (:attr:`media`)."""

    def __init__(self, url: str, sender_id: int) -> None:
        super().__init__(url, sender_id, send_video=False, send_audio=False, read_stamps=False)
        self.media = ReplayMedia()

    def _transceiver_added(self, transceiver: RTCRtpTransceiver) -> None:
        self.media.hook_sender(transceiver.sender)
        self.media.hook_receiver(transceiver.receiver, transceiver.kind)

    def _track_arrived(self, track: Any, receiver: Any) -> None:
        pass  # nothing to read: the counters have the packets before aiortc


async def stream(people: list[ReplayMedia], late: list[float], stop: asyncio.Event) -> None:
    """Send everyone's video and audio on time until ``stop``."""
    next_video = next_audio = time.monotonic()
    while not stop.is_set():
        now = time.monotonic()
        if now >= next_video:
            late.append(now - next_video)
            for media in people:
                media.send_frame(now)
            next_video += 1 / FPS
        if now >= next_audio:
            for media in people:
                media.send_audio(now)
            next_audio += AUDIO_INTERVAL
        await asyncio.sleep(max(0.0, min(next_video, next_audio) - time.monotonic()))


async def _worker(url: str, ids: list[int], ready: Any, done: Any, results: Any) -> None:
    clients = [ReplayClient(url, i) for i in ids]
    late: list[float] = []
    stop = asyncio.Event()
    streaming = asyncio.ensure_future(stream([c.media for c in clients], late, stop))
    try:
        for client in clients:
            await client.connect()
        for client in clients:
            await client.wait_connected()
            await client.start()  # the server pairs people whose video reaches it: it is being sent
        for client in clients:
            await client.expect("paired", timeout=60)
        ready.put(len(clients))
        late.clear()
        await asyncio.get_running_loop().run_in_executor(None, done.wait)
        stop.set()
        await streaming
        await asyncio.sleep(0.5)  # the last packets come back
        results.put(report([c.media for c in clients], late))
    finally:
        stop.set()
        await asyncio.gather(streaming, return_exceptions=True)
        for client in clients:
            await client.close()


def report(people: list[ReplayMedia], late: list[float]) -> dict[str, Any]:
    """What a worker tells the parent about its people."""
    counts = [media.counts() for media in people]
    return {
        "packets": sum(c.packets for c in counts),
        "expected": sum(c.expected for c in counts),
        "delays": [d for c in counts for d in c.delays],
        "late": late,
        "sent": sum(media.sent for media in people),
    }


def _worker_process(url: str, ids: list[int], ready: Any, done: Any, results: Any) -> None:
    try:
        asyncio.run(_worker(url, ids, ready, done, results))
    except Exception as exc:  # reported to the parent, which stops the run
        ready.put(f"worker failed: {exc!r}")
        results.put({"error": repr(exc)})


class Workers:
    """Client processes (``multiprocessing`` spawn), each running ``target(*arguments, ready, done,
    results)``: it puts one item on ``ready`` once its people are connected (a string: it failed),
    waits for ``done``, then puts its :func:`report` (or ``{"error": ...}``) on ``results``."""

    def __init__(self, target: Any, argument_lists: list[tuple[Any, ...]]) -> None:
        ctx = multiprocessing.get_context("spawn")
        self.ready, self.results, self.done = ctx.Queue(), ctx.Queue(), ctx.Event()
        self.procs = [ctx.Process(target=target, args=(*arguments, self.ready, self.done, self.results))
                      for arguments in argument_lists]

    def start(self) -> None:
        """Start every process and wait until each has its people connected."""
        for proc in self.procs:
            proc.start()
        for _ in self.procs:
            got = self.ready.get(timeout=180)
            if isinstance(got, str):
                raise RuntimeError(got)

    def finish(self) -> list[dict[str, Any]]:
        """Tell every process to stop; their reports."""
        self.done.set()
        reports = [self.results.get(timeout=120) for _ in self.procs]
        errors = [r["error"] for r in reports if "error" in r]
        if errors:
            raise RuntimeError("; ".join(errors))
        return reports

    def stop(self) -> None:
        self.done.set()
        for proc in self.procs:
            proc.join(30)
            if proc.is_alive():
                proc.kill()


def measure(mode: str, pairs: int, seconds: float, workers: int, perf: bool = False,
            count_packets: bool = True) -> dict[str, Any]:
    """One fresh server in ``mode`` under ``pairs`` pairs of light clients. ``count_packets``: sample
    its packet counter every second (``--stats-interval 1``, a little more work than the default
    5 s) for the cost per forwarded packet."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory(prefix="sfu-replay-") as tmp:
        extra = ("--stats-interval", "1") if count_packets else ()
        server = start_target(mode, port, Path(tmp) / "server.log", extra)
        ids = list(range(1, 2 * pairs + 1))
        clients = Workers(_worker_process, [(url, ids[i::workers]) for i in range(workers) if ids[i::workers]])
        try:
            clients.start()
            time.sleep(3)  # every stream past its first keyframe
            packets0 = forwarded_packets(port) if count_packets else 0.0
            cpu0, t0 = cpu_seconds(server.pid), time.monotonic()
            if perf:
                subprocess.run(
                    ["perf", "record", "-F", "1999", "-p", str(server.pid), "-o", str(Path(tmp) / "perf.data"),
                     "--", "sleep", str(seconds)],
                    capture_output=True, check=True,
                )
            else:
                time.sleep(seconds)
            if count_packets:
                time.sleep(1.2)  # one more sample of the packet counter
            cpu1, t1 = cpu_seconds(server.pid), time.monotonic()
            packets1 = forwarded_packets(port) if count_packets else 0.0
            shares = perf_split(Path(tmp) / "perf.data") if perf else {}
            reports = clients.finish()
        finally:
            clients.stop()
            stop(server)
    row = summary(mode, pairs, cpu1 - cpu0, t1 - t0, reports)
    row["us_per_packet"] = (cpu1 - cpu0) / (packets1 - packets0) * 1e6 if packets1 > packets0 else float("nan")
    late = sorted(x for r in reports for x in r["late"])
    row["late_p95"] = late[int(len(late) * 0.95)] * 1000 if late else float("nan")
    row["shares"] = shares
    return row


def summary(target: str, pairs: int, cpu: float, window: float, reports: list[dict[str, Any]]) -> dict[str, Any]:
    """One table row: a server's CPU over a window of ``window`` s, and what the clients reported."""
    received = sum(r["packets"] for r in reports)
    expected = sum(r["expected"] for r in reports)
    delays = sorted(d for r in reports for d in r["delays"])
    return {
        "mode": target, "pairs": pairs, "core": cpu / window,
        "ms_per_pair_second": cpu / (pairs * window) * 1000,
        "loss": 1 - received / expected if expected else 1.0,
        "delay_p50": statistics.median(delays) * 1000 if delays else float("nan"),
        "delay_p95": delays[int(len(delays) * 0.95)] * 1000 if delays else float("nan"),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", default="8,16,24", help="numbers of pairs, comma-separated, one run each")
    parser.add_argument("--seconds", type=float, default=15.0, help="length of the measured window")
    parser.add_argument("--workers", type=int, default=2, help="client processes")
    parser.add_argument("--modes", default="packet", help="forwarding modes of `sfu serve`, comma-separated")
    parser.add_argument("--perf", action="store_true",
                        help="also split the server's CPU by shared object with perf (root, or perf_event_paranoid <= 1)")
    args = parser.parse_args()
    if args.perf and not perf_usable():
        raise SystemExit("--perf: perf is not installed or not allowed here")
    modes = args.modes.split(",")
    rows = []
    for pairs in [int(p) for p in args.pairs.split(",")]:
        for mode in modes:
            print(f"== {mode}, {pairs} pairs", flush=True)
            rows.append(measure(mode, pairs, args.seconds, args.workers, args.perf))
    print(f"`sfu serve` with light replay clients, {os.cpu_count()} cores")
    print("| mode | pairs | server CPU (cores) | ms per pair-second | pairs per core | µs per forwarded packet "
          "| loss | send → arrival p50 / p95 | generator late p95 |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['mode']} | {r['pairs']} | {r['core']:.2f} | {r['ms_per_pair_second']:.1f} "
              f"| {1000 / r['ms_per_pair_second']:.0f} "
              f"| {r['us_per_packet']:.0f} | {r['loss']:.2%} | {r['delay_p50']:.1f} / {r['delay_p95']:.1f} ms "
              f"| {r['late_p95']:.1f} ms |")
    if args.perf:
        names = [g for g, _ in GROUPS] + [OTHER]
        print("\nµs per forwarded packet, by where the server's CPU went (perf)")
        print("| mode | pairs | " + " | ".join(n.split(" (")[0] for n in names) + " |")
        print("|---|---|" + "---|" * len(names))
        for r in rows:
            print(f"| {r['mode']} | {r['pairs']} | "
                  + " | ".join(f"{r['us_per_packet'] * r['shares'].get(n, 0.0):.0f}" for n in names) + " |")
    for mode in modes:
        own = [r for r in rows if r["mode"] == mode]
        if len(own) > 1:
            print(f"{mode}: cost per pair at {own[-1]['pairs']} pairs / at {own[0]['pairs']} pairs: "
                  f"{own[-1]['ms_per_pair_second'] / own[0]['ms_per_pair_second']:.2f}")
    for r in rows:
        if r["mode"] != modes[0]:
            base = next(b for b in rows if b["mode"] == modes[0] and b["pairs"] == r["pairs"])
            print(f"{r['pairs']} pairs: {r['mode']} costs {r['ms_per_pair_second'] / base['ms_per_pair_second']:.2f}x "
                  f"{modes[0]}'s CPU per pair")
    return 0


if __name__ == "__main__":
    sys.exit(main())
