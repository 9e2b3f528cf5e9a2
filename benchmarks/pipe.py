"""What a media pipe costs: CPU per direction when both partners are in one process vs when they
are in two processes and each one's media crosses a pipe, measured side by side in one run.

    python benchmarks/pipe.py --pairs 2 --seconds 15

Three server processes (each a MediaRouter + MediaPipe behind a small control endpoint): ``local``
serves N pairs whose partners are both in it; ``cross-1`` and ``cross-2`` serve N pairs whose
partners are split between them, every direction piped. The same aiortc clients (replaying
pre-encoded VP8 + Opus, receiving without decoding) load both at the same time, so both see the same
machine. Server CPU comes from /proc. Prints a table and the ratio piped / local per direction.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime + stime


# -- one server process ------------------------------------------------------------------------------


async def node(batch_ms: float) -> None:
    from aiohttp import web

    from sfu.media.forwarding import make_forwarding
    from sfu.media.peer import PeerMedia, PeerSettings
    from sfu.media.pipe import MediaPipe, PipePeer
    from sfu.media.router import MediaRouter

    pipe = MediaPipe(("127.0.0.1", 0), batch_window=batch_ms / 1000)
    router = MediaRouter(elsewhere=pipe)
    await pipe.start(router)
    forwarding = make_forwarding("auto")

    async def offer(request: web.Request) -> web.Response:
        body = await request.json()
        media = PeerMedia(PeerSettings(host_addresses=["127.0.0.1"]), forwarding, body["participant"])
        router.add(body["participant"], media)
        return web.json_response({"sdp": await media.accept(body["sdp"])})

    async def command(request: web.Request) -> web.Response:
        body = await request.json()
        op = request.match_info["op"]
        if op == "connect":
            router.connect(body["watcher"], body["publisher"])
        elif op == "export":
            pipe.export(body["publisher"], to=PipePeer.decode(body["peer"]))
        elif op == "expect":
            pipe.expect(body["publisher"], origin=PipePeer.decode(body["peer"]))
        return web.json_response({"peer": pipe.peer.encode(), "pipe": pipe.snapshot()})

    app = web.Application()
    app.router.add_post("/offer", offer)
    app.router.add_post("/{op}", command)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    print(json.dumps({"port": port}), flush=True)
    await asyncio.Event().wait()


# -- the load ------------------------------------------------------------------------------------------


class Node:
    def __init__(self, name: str, batch_ms: float) -> None:
        self.name = name
        self.proc = subprocess.Popen(
            [sys.executable, __file__, "--node", "--batch-ms", str(batch_ms)], stdout=subprocess.PIPE, cwd=ROOT,
            text=True,
        )
        assert self.proc.stdout is not None
        self.url = f"http://127.0.0.1:{json.loads(self.proc.stdout.readline())['port']}"
        self.peer = ""

    async def post(self, session: Any, path: str, **body: Any) -> dict[str, Any]:
        async with session.post(self.url + path, json=body) as response:
            response.raise_for_status()
            result: dict[str, Any] = await response.json()
            self.peer = result.get("peer", self.peer)
            return result

    def stop(self) -> None:
        self.proc.kill()
        self.proc.wait()


class Client:
    """Publishes a pre-encoded loop; counts the frames it receives without decoding them."""

    def __init__(self, loop: Any, audio: list[bytes]) -> None:
        from aiortc import RTCPeerConnection

        from sfu.loadtest.media import ReplayAudioTrack, ReplayVideoTrack
        from sfu.media.aiortc_hooks import server as hooks
        from sfu.media.encoded import FrameAssembler

        self.pc = RTCPeerConnection()
        self.video = ReplayVideoTrack(loop)
        self.audio = ReplayAudioTrack(audio)
        self.frames = 0

        @self.pc.on("track")
        def on_track(track: Any) -> None:
            receiver = next(t.receiver for t in self.pc.getTransceivers() if t.receiver.track is track)
            hooks.tap_receiver(
                receiver,
                FrameAssembler(track.kind, lambda pt: hooks.receiver_codec(receiver, pt), self._frame, lambda: None),
            )

    def _frame(self, frame: Any) -> None:
        if frame.codec.mimeType.lower().startswith("video"):
            self.frames += 1

    async def join(self, session: Any, node: Node, participant: str) -> None:
        from aiortc import RTCSessionDescription

        from sfu.media.aiortc_hooks.ice import set_host_addresses
        from sfu.media.aiortc_hooks.testing import take_keyframe_request

        self.pc.addTransceiver(self.audio, direction="sendrecv")
        video = self.pc.addTransceiver(self.video, direction="sendrecv")
        set_host_addresses(self.pc, ["127.0.0.1"])
        await self.pc.setLocalDescription(await self.pc.createOffer())
        answer = await node.post(session, "/offer", participant=participant, sdp=self.pc.localDescription.sdp)
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=answer["sdp"], type="answer"))
        self.video.keyframe_requested = lambda: take_keyframe_request(video.sender)


async def run(args: argparse.Namespace) -> None:
    import aiohttp

    from sfu.loadtest.media import VideoSpec, encode_audio_loop, load_video_loop

    spec = VideoSpec(width=args.width, height=args.height, fps=30, bitrate=args.kbps * 1000)
    loop = load_video_loop(1, spec, Path(os.environ.get("TMPDIR", "/tmp")) / "sfu-pipe-bench")
    audio = encode_audio_loop()
    local, cross1, cross2 = (Node(name, args.batch_ms) for name in ("local", "cross-1", "cross-2"))
    nodes = [local, cross1, cross2]
    clients: list[Client] = []
    try:
        async with aiohttp.ClientSession() as session:
            for node in nodes:
                await node.post(session, "/connect", watcher="nobody", publisher=None)  # learn its pipe
            for i in range(args.pairs):
                pair = [Client(loop, audio) for _ in range(4)]
                clients += pair
                await pair[0].join(session, local, f"l{i}a")
                await pair[1].join(session, local, f"l{i}b")
                await pair[2].join(session, cross1, f"x{i}a")
                await pair[3].join(session, cross2, f"x{i}b")
                await local.post(session, "/connect", watcher=f"l{i}a", publisher=f"l{i}b")
                await local.post(session, "/connect", watcher=f"l{i}b", publisher=f"l{i}a")
                await cross1.post(session, "/export", publisher=f"x{i}a", peer=cross2.peer)
                await cross2.post(session, "/export", publisher=f"x{i}b", peer=cross1.peer)
                await cross1.post(session, "/expect", publisher=f"x{i}b", peer=cross2.peer)
                await cross2.post(session, "/expect", publisher=f"x{i}a", peer=cross1.peer)
                await cross1.post(session, "/connect", watcher=f"x{i}a", publisher=f"x{i}b")
                await cross2.post(session, "/connect", watcher=f"x{i}b", publisher=f"x{i}a")
            deadline = time.monotonic() + 20
            while any(c.frames < 10 for c in clients):
                if time.monotonic() > deadline:
                    raise SystemExit(f"not every client receives video: {[c.frames for c in clients]}")
                await asyncio.sleep(0.2)
            await asyncio.sleep(args.warmup)
            cpu0 = {n.name: cpu_seconds(n.proc.pid) for n in nodes}
            frames0 = [c.frames for c in clients]
            t0 = time.monotonic()
            await asyncio.sleep(args.seconds)
            elapsed = time.monotonic() - t0
            cpu1 = {n.name: cpu_seconds(n.proc.pid) for n in nodes}
            frames = [c.frames - f for c, f in zip(clients, frames0)]
            stats = [await n.post(session, "/connect", watcher="nobody", publisher=None) for n in nodes]
    finally:
        for client in clients:
            await client.pc.close()
        for node in nodes:
            node.stop()

    used = {name: cpu1[name] - cpu0[name] for name in cpu0}
    directions = 2 * args.pairs
    local_cpu = used["local"]
    cross_cpu = used["cross-1"] + used["cross-2"]
    local_fps = sum(f for i, f in enumerate(frames) if i % 4 < 2) / directions / elapsed
    cross_fps = sum(f for i, f in enumerate(frames) if i % 4 >= 2) / directions / elapsed
    per_local = local_cpu / directions / elapsed * 1000
    per_cross = cross_cpu / directions / elapsed * 1000
    print(f"{args.pairs} pairs per scenario, {args.width}x{args.height} 30 fps {args.kbps} kbps VP8 + Opus, "
          f"pipe batching window {args.batch_ms:g} ms, {elapsed:.1f} s measured")
    print()
    print("| scenario | server processes | server CPU s | CPU ms per direction-second | received fps per direction |")
    print("|---|---|---|---|---|")
    print(f"| local (both partners in one process) | 1 | {local_cpu:.2f} | {per_local:.1f} | {local_fps:.1f} |")
    print(f"| piped (partners in two processes) | 2 | {cross_cpu:.2f} | {per_cross:.1f} | {cross_fps:.1f} |")
    print()
    ratio = per_cross / per_local if per_local else float("nan")
    print(f"piped / local CPU per direction: {ratio:.2f} (a pipe adds {100 * (ratio - 1):.0f}%)")
    for node, snapshot in zip(nodes[1:], stats[1:]):
        pipe = snapshot["pipe"]
        print(f"{node.name}: sent {pipe['packets_sent']}, received {pipe['packets_received']}, "
              f"resent {pipe['resent']}, control sent {pipe['control_sent']} received {pipe['control_received']}, "
              f"dropped {pipe['dropped']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--height", type=int, default=480)
    parser.add_argument("--kbps", type=int, default=800)
    parser.add_argument("--batch-ms", type=float, default=5.0,
                        help="how long piped media may wait to share a datagram (the pipe_batch_ms setting)")
    parser.add_argument("--node", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    asyncio.run(node(args.batch_ms) if args.node else run(args))


if __name__ == "__main__":
    main()
