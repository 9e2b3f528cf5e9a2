"""A client whose RTP packets are timed at the socket: it sends a pre-encoded loop, receives without
decoding, and logs every packet both ways for :mod:`sfu.loadtest.oneway`.

The same peer connects either through a server (its signaling over a WebSocket, as any client) or
directly to another such peer (one peer connection between them, no server), so that both paths
are measured with the very same clients.
"""

from __future__ import annotations

import functools
from typing import Any

from aiortc import (
    MediaStreamTrack,
    RTCConfiguration,
    RTCPeerConnection,
    RTCRtpSender,
    RTCSessionDescription,
)

from ..headless.client import ClientError, HeadlessClient
from ..media.aiortc_hooks import testing
from ..media.aiortc_hooks.ice import set_host_addresses
from ..media.aiortc_hooks.server import tap_receiver
from .media import ReplayAudioTrack, ReplayVideoTrack, VideoLoop
from .oneway import Arrival, Sent, packet_key


class _Discard:
    """Stands in for a receiver's jitter buffer: counts depayloaded packets, assembles no frame."""

    def __init__(self) -> None:
        self.packets = 0

    def add(self, packet: Any) -> tuple[bool, None]:
        self.packets += 1
        return False, None


class TimedPeer:
    """One peer connection sending ``loop`` (video slots ``offset`` seconds after the wall-clock
    grid) and ``audio`` (Opus packets), logging packets in :attr:`sent` and :attr:`arrivals` with
    when their datagrams left and reached the sockets (``time.time()`` seconds)."""

    def __init__(self, name: str, loop: VideoLoop, audio: list[bytes], offset: float = 0.0) -> None:
        self.name = name
        self.video = ReplayVideoTrack(loop, offset=offset)
        self.audio = ReplayAudioTrack(audio)
        self.sent: list[Sent] = []
        self.arrivals: list[Arrival] = []
        self.signaling: HeadlessClient | None = None
        self._taps: list[_Discard] = []
        self._kinds: dict[int, str] = {}  # our SSRC -> kind (RTX has another SSRC: not logged)
        self.pc = pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))

        @pc.on("track")
        def on_track(track: MediaStreamTrack) -> None:
            receiver = next(t.receiver for t in pc.getTransceivers() if t.receiver.track is track)
            tap = _Discard()
            self._taps.append(tap)
            tap_receiver(receiver, tap)

        pc.addTransceiver(self.audio, direction="sendrecv")
        video = pc.addTransceiver(self.video, direction="sendrecv")
        # The loop is VP8: never let H.264 be negotiated.
        codecs = RTCRtpSender.getCapabilities("video").codecs
        video.setCodecPreferences([c for c in codecs if c.mimeType in ("video/VP8", "video/rtx")])
        self.video.keyframe_requested = functools.partial(testing.take_keyframe_request, video.sender)
        set_host_addresses(pc, ["127.0.0.1"])

    @property
    def packets_received(self) -> int:
        """Media packets the receivers took in (after SRTP, RTX unwrapped)."""
        return sum(tap.packets for tap in self._taps)

    # -- negotiation -------------------------------------------------------------------------------

    async def offer(self) -> str:
        await self.pc.setLocalDescription(await self.pc.createOffer())
        return str(self.pc.localDescription.sdp)

    async def answer(self, offer: str) -> str:
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=offer, type="offer"))
        await self.pc.setLocalDescription(await self.pc.createAnswer())
        self._time()
        return str(self.pc.localDescription.sdp)

    async def accept(self, answer: str) -> None:
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))
        self._time()

    async def connect_directly(self, other: TimedPeer) -> None:
        """One peer connection between this peer and ``other``, no server."""
        await self.accept(await other.answer(await self.offer()))

    async def join(self, url: str, interest: str, timeout: float = 20.0) -> None:
        """Connect to the server at ``url`` and look for a partner sharing ``interest`` only (so that
        nobody else on the server is paired with this peer)."""
        client = self.signaling = HeadlessClient(url, 0, send_video=False, send_audio=False, read_stamps=False)
        await client.open_socket()
        await client.send({"type": "offer", "sdp": await self.offer()})
        reply = await client.expect("answer", "error", timeout=timeout)
        if reply["type"] == "error":
            raise ClientError(f"{self.name}: offer refused: {reply['code']}: {reply.get('message', '')}")
        await self.accept(reply["sdp"])
        await client.start(interests=[interest], strict=True)

    async def paired(self, timeout: float = 20.0) -> None:
        assert self.signaling is not None
        await self.signaling.expect("paired", timeout=timeout)

    def _time(self) -> None:
        for transceiver in self.pc.getTransceivers():
            self._kinds[testing.sender_ssrc(transceiver.sender)] = transceiver.kind
        testing.time_rtp(self.pc, self._on_sent, self._on_received)

    # -- logging -----------------------------------------------------------------------------------

    def _on_sent(self, packet: bytes, at: float) -> None:
        kind = self._kinds.get(int.from_bytes(packet[8:12], "big"))
        key = packet_key(packet)
        if kind is not None and key is not None:
            self.sent.append(Sent(at, key, kind))

    def _on_received(self, packet: bytes, at: float) -> None:
        key = packet_key(packet)
        if key is not None:
            self.arrivals.append(Arrival(at, key))

    async def close(self) -> None:
        self.video.stop()
        self.audio.stop()
        await self.pc.close()
        if self.signaling is not None:
            await self.signaling.close()
