"""The media object model: sources known by value, one verb to connect them, a router by id.

Unit tests drive outbound tracks with real feeds; integration tests use real aiortc peers over
loopback against :class:`PeerMedia` objects connected by :class:`MediaRouter`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable

import av
import numpy as np
import pytest
from aiortc import MediaStreamTrack, RTCPeerConnection, RTCSessionDescription

from sfu.headless.stamp import Stamp, read_frame
from sfu.headless.synthetic import StampedVideoTrack, ToneAudioTrack
from sfu.media.aiortc_hooks.ice import set_host_addresses
from sfu.media.feed import Feed
from sfu.media.forwarding import direction_modes, make_forwarding
from sfu.media.outbound import OutboundAudioTrack, OutboundVideoTrack
from sfu.media.peer import PeerMedia, PeerSettings
from sfu.media.router import MediaRouter
from sfu.media.source import SourceId


def picture(value: int) -> av.VideoFrame:
    return av.VideoFrame.from_ndarray(np.full((48, 64, 3), value, np.uint8), format="rgb24")


def luma(frame: av.VideoFrame) -> int:
    return int(frame.to_ndarray(format="gray")[0, 0])


# -- outbound tracks and feeds -----------------------------------------------------------------------


async def test_connect_switches_sources_and_drops_the_old_ones_items() -> None:
    a, b = Feed(SourceId("a", "video")), Feed(SourceId("b", "video"))
    track = OutboundVideoTrack()
    assert track.direction == "idle"
    track.connect(a)
    assert a.sink is track and track.direction == "transcode"
    a.publish(picture(10))
    track.connect(b)  # a's queued picture must never be sent after the switch
    assert a.sink is None and b.sink is track
    a.publish(picture(20))  # a is detached: goes nowhere
    track.deliver(a.id, picture(30))  # a late delivery tagged with the old source: refused
    b.publish(picture(40))
    assert luma(await track.recv()) == 40
    track.stop()


async def test_sources_are_compared_by_id_not_by_object() -> None:
    first, again = Feed(SourceId("p", "audio")), Feed(SourceId("p", "audio"))
    track = OutboundAudioTrack()
    switches: list[int] = []
    track.on_switch = lambda: switches.append(1)
    track.connect(first)
    track.connect(again)  # the same source by value: no switch, nothing re-attached
    assert track.source is first and again.sink is None and switches == [1]
    track.deliver(SourceId("p", "audio"), "accepted: the connected source's id")
    track.deliver(SourceId("q", "audio"), "refused")
    assert track.items_in == 1
    track.connect(None)
    assert first.sink is None and switches == [1, 1] and track.direction == "idle"
    track.stop()


async def test_decoded_feed_has_no_keyframes_or_caps_to_relay() -> None:
    feed = Feed(SourceId("p", "video"))
    feed.request_keyframe()
    feed.set_bitrate_cap(300_000)
    assert feed.codec is None
    assert await feed.picture(0.01) is None


# -- real peers ----------------------------------------------------------------------------------------


class Client:
    """An aiortc participant: publishes a stamped picture and a tone, records the stamps it receives."""

    def __init__(self, sender_id: int) -> None:
        self.sender_id = sender_id
        self.pc = RTCPeerConnection()
        self.video = StampedVideoTrack(sender_id, 320, 240, 15)
        self.audio = ToneAudioTrack()
        self.stamps: list[tuple[float, Stamp | None]] = []
        self._readers: list[asyncio.Task] = []

        @self.pc.on("track")
        def on_track(track: MediaStreamTrack) -> None:
            if track.kind == "video":
                self._readers.append(asyncio.ensure_future(self._read(track)))

    async def _read(self, track: MediaStreamTrack) -> None:
        while True:
            frame = await track.recv()
            assert isinstance(frame, av.VideoFrame)
            self.stamps.append((time.monotonic(), read_frame(frame)))

    async def join(self, media: PeerMedia) -> None:
        self.pc.addTransceiver(self.audio, direction="sendrecv")
        self.pc.addTransceiver(self.video, direction="sendrecv")
        set_host_addresses(self.pc, ["127.0.0.1"])
        await self.pc.setLocalDescription(await self.pc.createOffer())
        answer = await media.accept(self.pc.localDescription.sdp)
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))

    async def wait_stamp_from(self, sender: int, since: float, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while not any(at >= since and s is not None and s.sender == sender for at, s in self.stamps):
            assert time.monotonic() < deadline, f"client {self.sender_id}: nothing from {sender}"
            await asyncio.sleep(0.05)

    async def close(self) -> None:
        for task in self._readers:
            task.cancel()
        self.video.stop()
        self.audio.stop()
        await self.pc.close()


@pytest.fixture(params=["auto", "passthrough", "transcode"])
async def peers(request: pytest.FixtureRequest) -> AsyncIterator[Callable]:
    """``await make(participant, sender_id)``: a PeerMedia and the aiortc client it will serve."""
    forwarding = make_forwarding(request.param)
    made: list[tuple[PeerMedia, Client]] = []

    async def make(participant: str, sender_id: int) -> tuple[PeerMedia, Client]:
        media = PeerMedia(PeerSettings(host_addresses=["127.0.0.1"]), forwarding, participant)
        client = Client(sender_id)
        made.append((media, client))
        return media, client

    yield make
    for media, client in made:
        await client.close()
        await media.close()


async def test_router_connects_by_id_even_before_the_publisher_negotiated(peers) -> None:
    router = MediaRouter()
    watcher, watcher_client = await peers("w", 1)
    publisher, publisher_client = await peers("p", 2)
    router.add("w", watcher)
    router.add("p", publisher)
    await watcher_client.join(watcher)
    start = time.monotonic()
    router.connect("w", "p")  # p has no sources yet: connected as soon as they arrive
    assert router.watching("w") == "p"
    assert all(track.source is None for track in watcher.outbound.values())
    await publisher_client.join(publisher)
    assert {k: t.source.id for k, t in watcher.outbound.items() if t.source} == {
        "audio": SourceId("p", "audio"),
        "video": SourceId("p", "video"),
    }
    await watcher_client.wait_stamp_from(2, since=start)
    # auto forwards RTP packets; passthrough encoded frames
    mode = {"transcode": "transcode", "passthrough": "passthrough"}.get(watcher.forwarding, "packet")
    assert direction_modes(router) == {"audio": {mode: 1, "idle": 1}, "video": {mode: 1, "idle": 1}}

    # The publisher goes away: whoever watched them is disconnected (neutral picture from now on).
    router.discard("p")
    assert router.watching("w") is None
    assert all(track.source is None for track in watcher.outbound.values())
    assert direction_modes(router) == {"audio": {"idle": 1}, "video": {"idle": 1}}


async def test_a_source_held_elsewhere_fits_behind_the_same_call(peers) -> None:
    """A router asks another directory (here a second router) for participants it does not hold."""
    elsewhere = MediaRouter()
    here_router = MediaRouter(elsewhere=elsewhere)
    watcher, watcher_client = await peers("w", 1)
    publisher, publisher_client = await peers("p", 2)
    here_router.add("w", watcher)
    elsewhere.add("p", publisher)
    await publisher_client.join(publisher)
    await watcher_client.join(watcher)
    start = time.monotonic()
    here_router.connect("w", "p")
    await watcher_client.wait_stamp_from(2, since=start)
    assert here_router.get("p") is None and here_router.sources("p")["video"].id == SourceId("p", "video")
    here_router.connect("w", None)
    assert watcher.outbound["video"].source is None


async def test_picture_is_the_publishers_current_picture(peers) -> None:
    publisher, client = await peers("p", 7)
    await client.join(publisher)
    source = publisher.sources["video"]
    assert source.id == SourceId("p", "video")
    first = await source.picture(timeout=20.0)
    assert first is not None and (first.width, first.height) == (320, 240)
    stamp = read_frame(first)
    assert stamp is not None and stamp.sender == 7
    await asyncio.sleep(0.5)
    later = await source.picture(timeout=20.0)
    assert later is not None
    later_stamp = read_frame(later)
    assert later_stamp is not None and later_stamp.sender == 7
    assert later_stamp.frame > stamp.frame  # the current picture, not a remembered one
    assert source.codec is not None and source.codec.mimeType == "video/VP8"
    assert await publisher.sources["audio"].picture(timeout=1.0) is None
