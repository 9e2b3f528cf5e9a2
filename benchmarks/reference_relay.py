"""Reference relay: random 1:1 chat the way aiortc's own examples relay media (the benchmark baseline).

aiohttp + one RTCPeerConnection per client + ``MediaRelay``: every incoming track is decoded, and
every receiver re-encodes what it is sent. It speaks the minimal subset of the sfu protocol the load
tester needs (welcome, offer/answer, start, next, stop, waiting, paired, partner_left) with FIFO
pairing, so ``sfu loadtest`` can drive it exactly as it drives the real server.

    python benchmarks/reference_relay.py --port 8090
"""

from __future__ import annotations

import argparse
import asyncio
import fractions
import json
import os
import sys
import time
import uuid

from aiohttp import WSMsgType, web
from aiortc import (
    MediaStreamError,
    MediaStreamTrack,
    RTCConfiguration,
    RTCPeerConnection,
    RTCSessionDescription,
    VideoStreamTrack,
)
from aiortc.contrib.media import MediaRelay

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from sfu.media.aiortc_hooks.ice import set_host_addresses  # noqa: E402  (to offer 127.0.0.1 on loopback)


class Switch(MediaStreamTrack):
    """What a client is sent: its partner's (relayed) track, or a black picture / nothing."""

    def __init__(self, kind: str) -> None:
        super().__init__()
        self.kind, self.source, self.t0 = kind, None, time.monotonic()
        self.blank = VideoStreamTrack() if kind == "video" else None

    async def recv(self):
        while self.readyState == "live":
            source = self.source
            if source is None:
                if self.blank is None:
                    await asyncio.sleep(0.1)
                    continue
                await asyncio.sleep(0.5)  # 2 fps of black while alone
                frame = await self.blank.recv()
            else:
                try:  # time-limited: a replaced (stopped) MediaRelay proxy never yields again
                    frame = await asyncio.wait_for(source.recv(), 0.25)
                except asyncio.TimeoutError:
                    continue
                except MediaStreamError:
                    self.source = None if self.source is source else self.source
                    continue
                if source is not self.source:
                    continue
            rate = 90000 if self.kind == "video" else frame.sample_rate
            frame.pts, frame.time_base = int((time.monotonic() - self.t0) * rate), fractions.Fraction(1, rate)
            return frame
        raise MediaStreamError


class Peer:
    def __init__(self, ws: web.WebSocketResponse) -> None:
        self.id, self.ws, self.partner, self.last = uuid.uuid4().hex[:8], ws, None, None
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.inbound: dict[str, MediaStreamTrack] = {}
        self.out = {"audio": Switch("audio"), "video": Switch("video")}

    async def send(self, **msg) -> None:
        if not self.ws.closed:
            try:
                await self.ws.send_str(json.dumps(msg))
            except ConnectionError:
                pass


class Relay:
    def __init__(self, addresses: list[str]) -> None:
        self.media, self.queue, self.peers, self.addresses = MediaRelay(), [], set(), addresses

    def watch(self, peer: Peer, other: Peer | None) -> None:
        for kind, switch in peer.out.items():
            if switch.source is not None:
                switch.source.stop()  # the MediaRelay proxy
            source = other.inbound.get(kind) if other else None
            switch.source = self.media.subscribe(source, buffered=False) if source else None

    async def enqueue(self, peer: Peer) -> None:
        partner = next((p for p in self.queue if p is not peer.last), None)
        if partner is None:
            self.queue.append(peer) if peer not in self.queue else None
            return await peer.send(type="waiting")
        self.queue.remove(partner)
        peer.partner, partner.partner, peer.last, partner.last = partner, peer, partner, peer
        for a, b in ((peer, partner), (partner, peer)):
            self.watch(a, b)
            await a.send(type="paired", partner=b.id)

    async def leave(self, peer: Peer, requeue_partner: bool = True) -> None:
        if peer in self.queue:
            self.queue.remove(peer)
        partner, peer.partner = peer.partner, None
        self.watch(peer, None)
        if partner is not None:
            partner.partner = None
            self.watch(partner, None)
            await partner.send(type="partner_left")
            if requeue_partner:
                await self.enqueue(partner)

    async def handle(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        peer = Peer(ws)
        self.peers.add(peer)
        peer.pc.on("track", lambda track: peer.inbound.__setitem__(track.kind, track))
        await peer.send(type="welcome", id=peer.id, version="reference", iceServers=[])
        try:
            async for msg in ws:
                if msg.type != WSMsgType.TEXT:
                    continue
                data = json.loads(msg.data)
                if data.get("type") == "offer":
                    await peer.pc.setRemoteDescription(RTCSessionDescription(data["sdp"], "offer"))
                    for transceiver in peer.pc.getTransceivers():
                        peer.pc.addTrack(peer.out[transceiver.kind])
                    set_host_addresses(peer.pc, self.addresses)
                    await peer.pc.setLocalDescription(await peer.pc.createAnswer())
                    await peer.send(type="answer", sdp=peer.pc.localDescription.sdp)
                elif data.get("type") in ("start", "next"):
                    await self.leave(peer)
                    await self.enqueue(peer)
                elif data.get("type") == "stop":
                    await self.leave(peer)
                    await peer.send(type="idle")
        finally:
            await self.leave(peer)
            self.peers.discard(peer)
            for switch in peer.out.values():
                switch.stop()
            await peer.pc.close()
        return ws


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8090)
    parser.add_argument("--media-address", action="append", default=None)
    args = parser.parse_args()
    relay, app = Relay(args.media_address or ["127.0.0.1"]), web.Application()

    async def healthz(request: web.Request) -> web.Response:
        return web.json_response({"status": "ok", "clients": len(relay.peers)})

    app.router.add_get("/ws", relay.handle)
    app.router.add_get("/healthz", healthz)

    async def close_all(app: web.Application) -> None:
        await asyncio.gather(*(p.ws.close() for p in list(relay.peers)), return_exceptions=True)

    app.on_shutdown.append(close_all)
    print(f"reference relay on http://{args.host}:{args.port}", flush=True)
    web.run_app(app, host=args.host, port=args.port, print=None, shutdown_timeout=5.0)


if __name__ == "__main__":
    main()
