"""The Python floor of forwarding one RTP packet, and what our own rewriting adds to it.

    python benchmarks/packet_floor.py --packets 20000

Per packet, in one process, CPU time (``time.process_time``) of:

- ``floor``: what any Python SFU on aiortc's stack must do: one ``recvfrom`` of an SRTP packet, SRTP
  unprotect (libsrtp through pylibsrtp), SRTP protect for the watcher, one ``sendto``;
- ``rewrite``: this project's per-packet logic on top (RTP header parsed, inbound stream bookkeeping,
  outbound rewrite of SSRC / sequence / timestamp / VP8 picture id / header extensions, history kept
  for NACKs) — :class:`sfu.media.rtp.stream.OutboundStream` fed the way the packet path feeds it.

Then converts both into CPU ms per pair-second at the load ``sfu loadtest`` sends (VP8 at ``--kbps``
in ~1,100-byte packets + Opus at 50 packets/s, each direction received once and sent once), so they
can be set beside the server's measured figure (``benchmarks/capacity.py``). Then what a process
that sleeps between bursts of packets pays more than one that never sleeps: the rewrite step in
bursts of four packets with pauses of 0, 1 and 5 ms, and one ``sendto`` to a socket whose reader (in
another process) waits between packets. The running server's own split is
``benchmarks/packet_profile.py`` and ``benchmarks/replay.py --perf``.
"""

from __future__ import annotations

import argparse
import os
import socket
import struct
import sys
import time
from pathlib import Path

from pylibsrtp import Policy, Session

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sfu.media.rtp.header import parse  # noqa: E402
from sfu.media.rtp.inbound import InboundStream  # noqa: E402
from sfu.media.rtp.legs import Codec, InboundLeg, OutboundLeg  # noqa: E402
from sfu.media.rtp.stream import OutboundStream  # noqa: E402

VP8 = Codec(96, "video/vp8", 90000)
PAYLOAD = 1100
AUDIO_PPS = 50


def vp8_packet(sequence: int, timestamp: int, picture_id: int, first: bool) -> bytes:
    header = struct.pack("!BBHII", 0x80, 96 | (0x80 if first else 0), sequence & 0xFFFF, timestamp, 0x1234)
    # VP8 payload descriptor: X=1, S=1 on a frame's first packet, PID present (15 bits).
    descriptor = bytes([0x90 | (0x10 if first else 0), 0x80, 0x80 | (picture_id >> 8) & 0x7F, picture_id & 0xFF])
    vp8_header = bytes([0x10, 0x02, 0x9D, 0x01]) if first else b""  # keyframe bit clear: P=0 means key
    body = descriptor + vp8_header
    return header + body + bytes(PAYLOAD - len(body))


def policies() -> tuple[Session, Session, Session, Session]:
    key = os.urandom(30)
    inbound_tx = Session(policy=Policy(key=key, ssrc_type=Policy.SSRC_ANY_OUTBOUND))
    inbound_rx = Session(policy=Policy(key=key, ssrc_type=Policy.SSRC_ANY_INBOUND))
    key2 = os.urandom(30)
    outbound_tx = Session(policy=Policy(key=key2, ssrc_type=Policy.SSRC_ANY_OUTBOUND))
    outbound_rx = Session(policy=Policy(key=key2, ssrc_type=Policy.SSRC_ANY_INBOUND))
    return inbound_tx, inbound_rx, outbound_tx, outbound_rx


def measure(count: int) -> dict[str, float]:
    inbound_tx, inbound_rx, outbound_tx, outbound_rx = policies()
    plain = [vp8_packet(i, (i // 8) * 3000, i // 8, i % 8 == 0) for i in range(count)]
    protected = [inbound_tx.protect(p) for p in plain]

    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rx.bind(("127.0.0.1", 0))
    rx.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    tx.bind(("127.0.0.1", 0))
    sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sink.bind(("127.0.0.1", 0))
    sink.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    results: dict[str, float] = {}

    # floor: recvfrom + unprotect + protect + sendto, in batches so the socket buffers never overflow.
    batch = 200
    spent = 0.0
    for start in range(0, count, batch):
        chunk = protected[start:start + batch]
        for packet in chunk:  # the publisher's side (not counted)
            tx.sendto(packet, rx.getsockname())
        began = time.process_time()
        for _ in chunk:
            data, _addr = rx.recvfrom(2048)
            clear = inbound_rx.unprotect(data)
            rx.sendto(outbound_tx.protect(clear), sink.getsockname())
        spent += time.process_time() - began
        for _ in chunk:  # the watcher's side (not counted)
            sink.recvfrom(2048)
    results["floor"] = spent / count

    # rewrite: parse + inbound bookkeeping + outbound rewrite, as PacketFeed.on_rtp -> OutboundStream.forward.
    leg_in = InboundLeg("video", {96: VP8})
    inbound = InboundStream(leg_in, nack=True)
    sent: list[bytes] = []
    leg_out = OutboundLeg("video", VP8, ssrc=0x5678, nack=True)
    stream = OutboundStream(leg_out, sent.append, wall_offset=time.time() - time.monotonic())
    stream.follow("partner")
    began = time.process_time()
    now = time.monotonic()
    for i, packet in enumerate(plain):
        view = parse(packet)
        if view is None:
            continue
        arrival = inbound.accept(view, now + i / 1000)
        if arrival is not None:
            stream.forward("partner", arrival.view, 96, now + i / 1000, None, arrival.vp8)
    results["rewrite"] = (time.process_time() - began) / count
    results["forwarded"] = len(sent) / count
    for s in (rx, tx, sink):
        s.close()
    return results


def rewrite_with_pauses(count: int, burst: int, pause: float) -> float:
    """CPU seconds per packet of the rewrite step when the process sleeps ``pause`` s after every
    ``burst`` packets, as a server does between the bursts its clients send."""
    plain = [vp8_packet(i, (i // 8) * 3000, i // 8, i % 8 == 0) for i in range(count)]
    inbound = InboundStream(InboundLeg("video", {96: VP8}), nack=True)
    stream = OutboundStream(OutboundLeg("video", VP8, ssrc=0x5678, nack=True), lambda _: None, wall_offset=0.0)
    stream.follow("partner")
    spent = 0.0
    now = time.monotonic()
    for start in range(0, count, burst):
        began = time.process_time()
        for i in range(start, min(count, start + burst)):
            view = parse(plain[i])
            arrival = inbound.accept(view, now + i / 1000) if view is not None else None
            if arrival is not None:
                stream.forward("partner", arrival.view, 96, now + i / 1000, None, arrival.vp8)
        spent += time.process_time() - began
        if pause:
            time.sleep(pause)
    return spent / count


def sendto_to_sleeper(count: int, pause: float) -> float:
    """CPU seconds of one ``sendto`` to a socket read by another process that waits for it (as a
    client between two packets), with ``pause`` s between packets (0: it never gets to sleep)."""
    receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    receiver.bind(("127.0.0.1", 0))
    address = receiver.getsockname()
    child = os.fork()
    if child == 0:  # pragma: no cover - the reading process
        while receiver.recv(2048) != b"end":
            pass
        os._exit(0)
    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    packet = bytes(PAYLOAD)
    spent = 0.0
    for _ in range(count):
        if pause:
            time.sleep(pause)
        began = time.thread_time()
        sender.sendto(packet, address)
        spent += time.thread_time() - began
    sender.sendto(b"end", address)
    os.waitpid(child, 0)
    sender.close()
    receiver.close()
    return spent / count


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--packets", type=int, default=20000)
    parser.add_argument("--kbps", type=int, default=800, help="video bitrate of the load (sfu loadtest's default)")
    parser.add_argument("--no-pauses", action="store_true", help="skip the table of what sleeping between bursts costs")
    args = parser.parse_args()
    got = measure(args.packets)
    assert got["forwarded"] > 0.99, f"the rewriter dropped packets: {got}"
    video_pps = args.kbps * 1000 / 8 / (PAYLOAD + 12)
    per_direction = video_pps + AUDIO_PPS  # packets received, and as many sent, per direction
    per_pair = 2 * per_direction
    floor_ms = got["floor"] * per_pair * 1000
    rewrite_ms = got["rewrite"] * per_pair * 1000
    print(f"{args.packets} VP8 packets of {PAYLOAD} bytes, {os.cpu_count()} cores")
    print("| per packet | µs | ms per pair-second | pairs per core on this alone |")
    print("|---|---|---|---|")
    for name, ms in (("floor: recvfrom + SRTP unprotect + protect + sendto", floor_ms),
                     ("rewrite: parse + inbound + outbound rewrite + history", rewrite_ms),
                     ("both", floor_ms + rewrite_ms)):
        micros = ms / per_pair / 1000 * 1e6
        print(f"| {name} | {micros:.1f} | {ms:.1f} | {1000 / ms:.0f} |")
    print(f"(a pair = {per_pair:.0f} packets received and as many sent per second: VP8 at {args.kbps} kbps + Opus)")
    print(f"rewrite / floor: {got['rewrite'] / got['floor']:.2f}")
    if args.no_pauses:
        return 0
    print("\nWhat sleeping between bursts costs (a server's CPU idles between its clients' packets):")
    print("| pause | rewrite, bursts of 4 packets: µs per packet | sendto to a process waiting on recv: µs |")
    print("|---|---|---|")
    base_rewrite = base_send = 0.0
    for pause in (0.0, 0.001, 0.005):
        rewrite = rewrite_with_pauses(min(args.packets, 2000), 4, pause) * 1e6
        send = sendto_to_sleeper(min(args.packets, 1000), pause / 4) * 1e6
        base_rewrite, base_send = base_rewrite or rewrite, base_send or send
        print(f"| {pause * 1000:.0f} ms (sendto: {pause * 250:.2f} ms) | {rewrite:.1f} ({rewrite / base_rewrite:.1f}x) "
              f"| {send:.1f} ({send / base_send:.1f}x) |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
