"""A headless client that speaks the signaling protocol and sends stamped synthetic media.

Used by the tests and the load tester: it sends video whose stamp carries its identity, frame number
and clock, and reads the stamp back from every frame it receives, so a caller can tell exactly whose
picture arrived and when.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import aiohttp
import av
import numpy
from aiortc import (
    MediaStreamError,
    MediaStreamTrack,
    RTCConfiguration,
    RTCIceServer,
    RTCPeerConnection,
    RTCRtpReceiver,
    RTCRtpSender,
    RTCRtpTransceiver,
    RTCSessionDescription,
)
from yarl import URL

from ..media.aiortc_hooks import testing
from ..media.aiortc_hooks.ice import set_host_addresses
from ..moderation.identity import DEVICE_COOKIE
from . import nacks
from . import stamp as stamps
from .synthetic import StampedVideoTrack, ToneAudioTrack


@dataclass
class ReceivedFrame:
    at: float  #: time.monotonic() when decoded
    wall_ms: int  #: time.time() in ms when decoded (for glass-to-glass latency)
    stamp: stamps.Stamp | None
    width: int
    height: int


@dataclass
class Received:
    messages: list[tuple[float, dict]] = field(default_factory=list)
    frames: list[ReceivedFrame] = field(default_factory=list)
    audio_frames: int = 0
    audio_loud_frames: int = 0


class ClientError(Exception):
    pass


class HeadlessClient:
    def __init__(
        self,
        url: str,
        sender_id: int,
        *,
        width: int = 320,
        height: int = 240,
        fps: int = 15,
        send_video: bool = True,
        send_audio: bool = True,
        host_addresses: Sequence[str] = ("127.0.0.1",),
        video_codecs: Sequence[str] | None = None,
        read_stamps: bool = True,
        video_track: MediaStreamTrack | None = None,
        audio_track: MediaStreamTrack | None = None,
        accept_rules: bool = True,
        device_token: str | None = None,
    ) -> None:
        """``accept_rules``: accept the rules ``welcome`` carries at once (a client that agreed to them);
        ``device_token``: the ``sfu_device`` cookie to present (e.g. an earlier client's
        :attr:`device_token`: the same device coming back)."""
        base = url.rstrip("/")
        if base.startswith("http"):
            base = "ws" + base[4:]
        self.ws_url = base if base.endswith("/ws") else base + "/ws"
        self.sender_id = sender_id
        self.host_addresses = list(host_addresses)
        self.video_codecs = list(video_codecs) if video_codecs else None
        self.read_stamps = read_stamps
        self.accept_rules = accept_rules
        self._device_token = device_token
        self.video_track = video_track or (StampedVideoTrack(sender_id, width, height, fps) if send_video else None)
        self.audio_track = audio_track or (ToneAudioTrack() if send_audio else None)
        self.received = Received()
        self.welcome: dict = {}
        self.pc: RTCPeerConnection | None = None
        self._http: aiohttp.ClientSession | None = None
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        #: ``time.monotonic()`` when the marker was last switched on (``None``: not shown).
        self.marker_since: float | None = None
        self._changed = asyncio.Condition()
        self._tasks: list[asyncio.Task] = []
        self._cursor = 0

    # -- identity --------------------------------------------------------------------------------
    @property
    def id(self) -> str:
        """The opaque id partners see in ``paired`` messages."""
        return self.welcome.get("id", "")

    @property
    def device_token(self) -> str | None:
        """The ``sfu_device`` cookie the server gave this client (or the one it presented)."""
        if self._http is not None:
            for cookie in self._http.cookie_jar:
                if cookie.key == DEVICE_COOKIE:
                    return cookie.value
        return self._device_token

    # -- connection ------------------------------------------------------------------------------
    async def open_socket(self) -> None:
        """Open the WebSocket, wait for ``welcome`` (no media yet), and accept the rules it carries
        (unless ``accept_rules`` is off). Raises :class:`ClientError` when refused instead (e.g. banned)."""
        # unsafe: the jar keeps cookies of servers known by IP address (127.0.0.1) too
        self._http = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
        if self._device_token:
            self._http.cookie_jar.update_cookies({DEVICE_COOKIE: self._device_token}, URL(self.ws_url))
        self._ws = await self._http.ws_connect(self.ws_url, max_msg_size=0)
        self._tasks.append(asyncio.ensure_future(self._read()))
        first = await self.expect("welcome", "error")
        if first["type"] == "error":
            raise ClientError(f"client {self.sender_id}: refused: {first['code']}: {first.get('message', '')}")
        self.welcome = first
        rules = self.welcome.get("rules")
        if self.accept_rules and isinstance(rules, dict):
            await self.accept(rules.get("version"))

    async def connect(self, timeout: float = 15.0) -> None:
        """Open the socket, negotiate the one peer connection, and wait for the answer."""
        await self.open_socket()
        ice = [
            RTCIceServer(urls=s["urls"], username=s.get("username"), credential=s.get("credential"))
            for s in self.welcome.get("iceServers", [])
        ]
        self.pc = pc = RTCPeerConnection(RTCConfiguration(iceServers=ice))

        @pc.on("track")
        def on_track(track: MediaStreamTrack) -> None:
            self._track_arrived(track, next(t.receiver for t in pc.getTransceivers() if t.receiver.track is track))

        for kind, track in (("audio", self.audio_track), ("video", self.video_track)):
            transceiver = pc.addTransceiver(track if track is not None else kind, direction="sendrecv")
            if kind == "video" and self.video_codecs:
                caps = RTCRtpSender.getCapabilities("video").codecs
                wanted = [c for c in caps if c.mimeType in self.video_codecs or c.mimeType == "video/rtx"]
                transceiver.setCodecPreferences(wanted)
            self._transceiver_added(transceiver)
        set_host_addresses(pc, self.host_addresses)
        await pc.setLocalDescription(await pc.createOffer())
        await self.send({"type": "offer", "sdp": pc.localDescription.sdp})
        answer = await self.expect("answer", "error", timeout=timeout)
        if answer["type"] == "error":
            raise ClientError(f"client {self.sender_id}: offer refused: {answer['code']}: {answer['message']}")
        await pc.setRemoteDescription(RTCSessionDescription(sdp=answer["sdp"], type="answer"))

    async def wait_connected(self, timeout: float = 15.0) -> None:
        assert self.pc is not None
        deadline = time.monotonic() + timeout
        while self.pc.connectionState != "connected":
            if self.pc.connectionState in ("failed", "closed") or time.monotonic() > deadline:
                raise ClientError(f"media connection {self.pc.connectionState}")
            await asyncio.sleep(0.05)

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        for track in (self.video_track, self.audio_track):
            if track is not None:
                track.stop()
        if self.pc is not None:
            await self.pc.close()
        if self._ws is not None:
            await self._ws.close()
        if self._http is not None:
            await self._http.close()

    # -- signaling -------------------------------------------------------------------------------
    async def send(self, message: Any) -> None:
        assert self._ws is not None
        await self._ws.send_str(message if isinstance(message, str) else json.dumps(message))

    async def send_bytes(self, data: bytes) -> None:
        assert self._ws is not None
        await self._ws.send_bytes(data)

    async def start(self, **preferences: Any) -> None:
        """``start``; keyword arguments are sent as its fields (``interests``, ``languages``, ``strict``)."""
        await self.send({"type": "start", **preferences})

    async def next(self, **preferences: Any) -> None:
        """``next``, with optional ``interests``, ``languages`` and ``strict`` fields."""
        await self.send({"type": "next", **preferences})

    async def stop(self) -> None:
        await self.send({"type": "stop"})

    async def chat(self, text: str) -> None:
        await self.send({"type": "chat", "text": text})

    async def accept(self, version: Any) -> None:
        """Accept the rules of this version (``welcome``'s ``rules.version``)."""
        await self.send({"type": "accept_rules", "version": version})

    async def report(self, reason: str, note: str | None = None) -> None:
        """Report the partner (or the last one, shortly after they left)."""
        message: dict[str, Any] = {"type": "report", "reason": reason}
        if note is not None:
            message["note"] = note
        await self.send(message)

    @property
    def socket_closed(self) -> bool:
        return self._ws is None or self._ws.closed

    async def _read(self) -> None:
        assert self._ws is not None
        async for msg in self._ws:
            if msg.type == aiohttp.WSMsgType.TEXT:
                await self._record_message(json.loads(msg.data))
        await self._record_message({"type": "_closed", "code": self._ws.close_code})

    async def _record_message(self, message: dict) -> None:
        async with self._changed:
            self.received.messages.append((time.monotonic(), message))
            self._changed.notify_all()

    def messages(self, *types: str) -> list[dict]:
        return [m for _, m in self.received.messages if not types or m.get("type") in types]

    async def expect(self, *types: str, timeout: float = 15.0) -> dict:
        """The next message (after the last one expected) of one of ``types``; skips others."""

        def find() -> int | None:
            for i in range(self._cursor, len(self.received.messages)):
                if self.received.messages[i][1].get("type") in types:
                    return i
            return None

        index = await self._wait(find, timeout, f"message {types}")
        self._cursor = index + 1
        return self.received.messages[index][1]

    async def _wait(self, probe: Callable[[], Any], timeout: float, what: str) -> Any:
        async def until() -> Any:
            async with self._changed:
                while True:
                    found = probe()
                    if found is not None:
                        return found
                    await self._changed.wait()

        try:
            return await asyncio.wait_for(until(), timeout)
        except asyncio.TimeoutError:
            raise ClientError(f"client {self.sender_id}: no {what} within {timeout} s") from None

    # -- media -----------------------------------------------------------------------------------
    def show_marker(self, on: bool = True) -> None:
        """Draw the test classifier's marker into the video sent (``--moderation-classifier marker``
        flags it), from the next frame on; ``False`` stops."""
        self._stamped().show(marker=on)
        self.marker_since = time.monotonic() if on else None

    def show_face(self, on: bool = True) -> None:
        """Draw the test classifier's stand-in for a face into the video sent (or stop)."""
        self._stamped().show(face=on)

    def _stamped(self) -> StampedVideoTrack:
        if not isinstance(self.video_track, StampedVideoTrack):
            raise ClientError(f"client {self.sender_id} sends no synthetic video to draw on")
        return self.video_track

    def _transceiver_added(self, transceiver: RTCRtpTransceiver) -> None:
        """The audio or video transceiver, before the offer is made (a subclass may hook its sender
        or receiver here)."""

    def _track_arrived(self, track: MediaStreamTrack, receiver: RTCRtpReceiver) -> None:
        """The partner's ``track`` of one kind, from ``receiver`` (called before media flows): its
        frames are read and decoded, lost video packets asked for again."""
        reader = self._read_video if track.kind == "video" else self._read_audio
        self._tasks.append(asyncio.ensure_future(reader(track)))
        if track.kind == "video":
            testing.restartable_video(receiver)
            self._tasks.append(asyncio.ensure_future(nacks.ask_again(receiver)))

    async def _read_video(self, track: MediaStreamTrack) -> None:
        try:
            while True:
                frame = cast(av.VideoFrame, await track.recv())
                stamp = stamps.read_frame(frame) if self.read_stamps else None
                received = ReceivedFrame(
                    at=time.monotonic(),
                    wall_ms=int(time.time() * 1000),
                    stamp=stamp,
                    width=frame.width,
                    height=frame.height,
                )
                async with self._changed:
                    self.received.frames.append(received)
                    self._changed.notify_all()
        except MediaStreamError:
            pass

    async def _read_audio(self, track: MediaStreamTrack) -> None:
        try:
            while True:
                frame = cast(av.AudioFrame, await track.recv())
                self.received.audio_frames += 1
                samples = frame.to_ndarray()
                if samples.size and numpy.abs(samples).max() > 1000:
                    self.received.audio_loud_frames += 1
        except MediaStreamError:
            pass

    def frames_since(self, at: float) -> list[ReceivedFrame]:
        return [f for f in self.received.frames if f.at >= at]

    async def wait_frame_from(self, sender_id: int, *, since: float = 0.0, timeout: float = 15.0) -> ReceivedFrame:
        """The first frame stamped by ``sender_id`` decoded at or after ``since`` (monotonic)."""

        def find() -> ReceivedFrame | None:
            for f in self.received.frames:
                if f.at >= since and f.stamp is not None and f.stamp.sender == sender_id:
                    return f
            return None

        return await self._wait(find, timeout, f"frame from {sender_id}")

    async def wait_frames(self, count: int, timeout: float = 15.0) -> None:
        await self._wait(lambda: True if len(self.received.frames) >= count else None, timeout, f"{count} frames")
