"""Janus and sfu with the server busy: the light clients of ``benchmarks/replay.py`` against both.

    apt-get install -y janus        # Debian's janus 1.1.2; a benchmark-only dependency
    python benchmarks/janus_light.py --pairs 8,16,24 --seconds 15

``benchmarks/janus.py`` compares the two with aiortc clients, which on a 2-core machine keep both
servers at a fraction of a core. Here every person is a :class:`benchmarks.replay.ReplayMedia`:
ready-made VP8- and Opus-shaped RTP (three ~1,100-byte packets per frame at 30 fps, a keyframe
every second; 50 audio packets/s) sent through the connection's own SRTP session, and what comes
back decrypted and counted. Janus: one VideoRoom room per pair, each person a publisher and a
subscriber peer connection on one session (HTTP long poll), Janus and its clients in a network
namespace of their own (root; Janus gathers no candidate on loopback). sfu: ``sfu serve
--forwarding packet`` with the same clients (``replay.measure``). For each number of pairs, one
fresh server of each, people connected, then a steady window: server CPU per pair-second (``/proc``,
every thread), loss and send → arrival time; then sfu's CPU over Janus's.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from aiortc import RTCConfiguration, RTCPeerConnection, RTCRtpSender, RTCSessionDescription  # noqa: E402

from benchmarks import janus_server  # noqa: E402
from benchmarks.capacity import free_port  # noqa: E402
from benchmarks.janus_api import JanusError, JanusSession, create_rooms  # noqa: E402
from benchmarks.janus_clients import join_partner_feed, partner_of  # noqa: E402
from benchmarks.packet_profile import cpu_seconds  # noqa: E402
from benchmarks.replay import ReplayMedia, Workers, measure, report, stream, summary  # noqa: E402
from sfu.media.aiortc_hooks.ice import set_host_addresses  # noqa: E402

ROOM_BASE = 1000
STEP_TIMEOUT = 30.0


def room_of(sender: int) -> int:
    return ROOM_BASE + (sender - 1) // 2


async def _join(sender: int, media: ReplayMedia, session: JanusSession, address: str) -> list[RTCPeerConnection]:
    """Publish ``sender``'s replayed media and subscribe to its partner's; the two connections."""
    publisher = await session.attach()
    await publisher.message({"request": "join", "ptype": "publisher", "room": room_of(sender), "id": sender})
    pub = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    pub.addTransceiver("audio", direction="sendonly")
    video = pub.addTransceiver("video", direction="sendonly")
    video.setCodecPreferences([c for c in RTCRtpSender.getCapabilities("video").codecs if c.mimeType == "video/VP8"])
    for transceiver in pub.getTransceivers():
        media.hook_sender(transceiver.sender)
    set_host_addresses(pub, (address,))
    await pub.setLocalDescription(await pub.createOffer())
    reply = await publisher.message({"request": "publish", "audio": True, "video": True},
                                    jsep={"type": "offer", "sdp": pub.localDescription.sdp})
    if reply.jsep is None:
        raise JanusError(0, f"publish: no answer in {reply.data}")
    await pub.setRemoteDescription(RTCSessionDescription(sdp=reply.jsep["sdp"], type="answer"))
    await publisher.trickle_done()

    subscriber = await session.attach()
    reply, _ = await join_partner_feed(subscriber, room_of(sender), partner_of(sender), STEP_TIMEOUT)
    if reply.jsep is None:
        raise JanusError(0, f"subscribe: no offer in {reply.data}")
    sub = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    await sub.setRemoteDescription(RTCSessionDescription(sdp=reply.jsep["sdp"], type="offer"))
    for transceiver in sub.getTransceivers():
        media.hook_receiver(transceiver.receiver, transceiver.kind)
    set_host_addresses(sub, (address,))
    await sub.setLocalDescription(await sub.createAnswer())
    await subscriber.message({"request": "start"}, jsep={"type": "answer", "sdp": sub.localDescription.sdp})
    await subscriber.trickle_done()
    return [pub, sub]


async def _worker(url: str, senders: list[int], address: str, ready: Any, done: Any, results: Any) -> None:
    people = {s: ReplayMedia() for s in senders}
    late: list[float] = []
    stop = asyncio.Event()
    streaming = asyncio.ensure_future(stream(list(people.values()), late, stop))
    connections: list[RTCPeerConnection] = []
    sessions: list[JanusSession] = []
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
        try:
            for _ in senders:
                session = JanusSession(http, url)
                await session.create()
                sessions.append(session)
            joined = await asyncio.gather(*(_join(s, people[s], session, address)
                                            for s, session in zip(senders, sessions)))
            connections = [pc for pair in joined for pc in pair]
            deadline = time.monotonic() + STEP_TIMEOUT  # every connection up before the window
            while any(pc.connectionState != "connected" for pc in connections):
                if time.monotonic() > deadline:
                    raise RuntimeError("media connections to Janus did not come up")
                await asyncio.sleep(0.1)
            ready.put(len(senders))
            late.clear()
            await asyncio.get_running_loop().run_in_executor(None, done.wait)
            stop.set()
            await streaming
            await asyncio.sleep(0.5)
            results.put(report(list(people.values()), late))
        finally:
            stop.set()
            await asyncio.gather(streaming, return_exceptions=True)
            await asyncio.gather(*(pc.close() for pc in connections), return_exceptions=True)
            await asyncio.gather(*(s.destroy() for s in sessions), return_exceptions=True)


def _worker_process(url: str, senders: list[int], address: str, ready: Any, done: Any, results: Any) -> None:
    try:
        asyncio.run(_worker(url, senders, address, ready, done, results))
    except Exception as exc:  # reported to the parent, which stops the run
        ready.put(f"worker failed: {exc!r}")
        results.put({"error": repr(exc)})


def measure_janus(pairs: int, seconds: float, workers: int, address: str, workdir: Path) -> dict[str, Any]:
    settings = janus_server.JanusSettings(http_port=free_port(), rtp_ports=(20000, 20999), ice_address=address)
    proc = janus_server.start(settings, workdir / f"janus-config-{pairs}", workdir / f"janus-{pairs}.log")
    try:
        create_rooms(settings.url, [room_of(s) for s in range(1, 2 * pairs + 1, 2)])
        senders = list(range(1, 2 * pairs + 1))
        chunks = [senders[i::workers] for i in range(workers)]  # the two of a pair in different workers
        clients = Workers(_worker_process, [(settings.url, chunk, address) for chunk in chunks if chunk])
        try:
            clients.start()
            time.sleep(3)  # every stream past its first keyframe
            cpu0, t0 = cpu_seconds(proc.pid), time.monotonic()
            time.sleep(seconds)
            cpu1, t1 = cpu_seconds(proc.pid), time.monotonic()
            reports = clients.finish()
        finally:
            clients.stop()
    finally:
        janus_server.stop(proc)
    return summary("janus", pairs, cpu1 - cpu0, t1 - t0, reports)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", default="8,16", help="numbers of pairs, comma-separated, one run each")
    parser.add_argument("--seconds", type=float, default=15.0, help="length of the measured window")
    parser.add_argument("--workers", type=int, default=2, help="client processes")
    parser.add_argument("--janus-phase", type=Path, default=None, help=argparse.SUPPRESS)  # inside the namespace
    args = parser.parse_args()
    counts = [int(p) for p in args.pairs.split(",")]
    if args.janus_phase is not None:
        with tempfile.TemporaryDirectory(prefix="sfu-janus-light-") as tmp:
            rows = [measure_janus(n, args.seconds, args.workers, janus_server.NETNS_ADDRESS, Path(tmp)) for n in counts]
        args.janus_phase.write_text(json.dumps(rows))
        return 0
    if not janus_server.installed():
        print(f"{janus_server.JANUS} is missing: apt-get install -y {janus_server.PACKAGE}", file=sys.stderr)
        return 2
    if os.geteuid() != 0:
        print("Janus never uses loopback for media: run as root (for a private network namespace)", file=sys.stderr)
        return 2
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="sfu-janus-light-") as tmp:
        out = Path(tmp) / "janus.json"
        print(f"== janus, {args.pairs} pairs", flush=True)
        with janus_server.private_network() as namespace:
            subprocess.run(["ip", "netns", "exec", namespace, sys.executable, str(Path(__file__).resolve()),
                            "--janus-phase", str(out), "--pairs", args.pairs, "--seconds", str(args.seconds),
                            "--workers", str(args.workers)], cwd=ROOT, check=True, timeout=600 * len(counts))
        rows += json.loads(out.read_text())
    for n in counts:
        print(f"== sfu, {n} pairs", flush=True)
        rows.append(measure("packet", n, args.seconds, args.workers, count_packets=False))  # default settings
    print(f"light replay clients, {os.cpu_count()} cores")
    print("| server | pairs | CPU (cores) | ms per pair-second | pairs per core | loss | send → arrival p50 / p95 |")
    print("|---|---|---|---|---|---|---|")
    for r in sorted(rows, key=lambda r: (r["pairs"], r["mode"])):
        name = "Janus 1.1.2 VideoRoom" if r["mode"] == "janus" else "sfu (packet)"
        print(f"| {name} | {r['pairs']} | {r['core']:.2f} | {r['ms_per_pair_second']:.1f} "
              f"| {1000 / r['ms_per_pair_second']:.0f} | {r['loss']:.2%} | {r['delay_p50']:.1f} / {r['delay_p95']:.1f} ms |")
    for n in counts:
        janus = next(r for r in rows if r["mode"] == "janus" and r["pairs"] == n)
        sfu = next(r for r in rows if r["mode"] == "packet" and r["pairs"] == n)
        ratio = sfu["ms_per_pair_second"] / janus["ms_per_pair_second"]
        print(f"{n} pairs: sfu uses {ratio:.2f}x Janus's CPU per pair ({'ahead' if ratio < 1 else 'behind'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
