"""Hidden video: outbound tracks send the placeholder instead of a connected source and resume from
what they held; the router hides publishers by id; video arrival for the camera rule; the camera gate."""

from __future__ import annotations

import asyncio

import av
import numpy as np
from aiortc import RTCRtpCodecParameters

from sfu.media.encoded import EncodedFrame
from sfu.media.feed import Feed
from sfu.media.outbound import PLACEHOLDER_SIZE, OutboundAudioTrack, OutboundVideoTrack
from sfu.media.passthrough import HOLD_FRAMES, PassthroughVideoTrack
from sfu.media.router import MediaRouter
from sfu.media.source import SourceId
from sfu.moderation.camera import CameraGate

VP8 = RTCRtpCodecParameters(mimeType="video/VP8", clockRate=90000, payloadType=96)


def picture(value: int) -> av.VideoFrame:
    return av.VideoFrame.from_ndarray(np.full((48, 64, 3), value, np.uint8), format="rgb24")


def luma(frame: av.VideoFrame) -> int:
    return int(frame.to_ndarray(format="gray")[0, 0])


PLACEHOLDER = OutboundVideoTrack().placeholder_frame().to_ndarray()


def is_placeholder(frame: av.VideoFrame) -> bool:
    return (frame.width, frame.height) == PLACEHOLDER_SIZE and np.array_equal(frame.to_ndarray(), PLACEHOLDER)


def encoded(n: int, keyframe: bool) -> EncodedFrame:
    return EncodedFrame(data=bytes([n]) * 8, timestamp=3000 * n, keyframe=keyframe, codec=VP8, ssrc=1, arrival=0.0)


class CountingFeed(Feed):
    """A feed that counts the keyframes asked of it."""

    def __init__(self, source_id: SourceId) -> None:
        super().__init__(source_id)
        self.keyframes_asked = 0

    def request_keyframe(self) -> None:
        self.keyframes_asked += 1


async def recv(track, timeout: float = 2.0):
    return await asyncio.wait_for(track.recv(), timeout)


# -- outbound tracks -------------------------------------------------------------------------------


async def test_hiding_replaces_the_picture_at_once_and_showing_resumes_with_the_latest() -> None:
    feed = Feed(SourceId("p", "video"))
    track = OutboundVideoTrack()
    switches: list[int] = []
    track.on_switch = lambda: switches.append(1)
    track.connect(feed)
    feed.publish(picture(10))
    assert luma(await recv(track)) == 10
    feed.publish(picture(20))  # queued, never sent: hidden before it goes out
    track.set_hidden(True)
    assert track.hidden and feed.sink is track  # still connected, only hidden
    assert is_placeholder(await recv(track))
    feed.publish(picture(30))
    feed.publish(picture(40))
    # While hidden, nothing of the source goes out: the next item is the placeholder again.
    assert is_placeholder(await recv(track))
    track.set_hidden(False)
    assert luma(await recv(track)) == 40  # the latest picture, without waiting for a new one
    feed.publish(picture(50))
    assert luma(await recv(track)) == 50
    assert len(switches) == 3  # connect, hide, show: each forces a keyframe on the encoder
    track.stop()


async def test_a_source_connected_hidden_is_shown_only_when_told() -> None:
    feed = Feed(SourceId("p", "video"))
    track = OutboundVideoTrack()
    track.connect(feed, hidden=True)
    feed.publish(picture(10))
    feed.publish(picture(20))
    pending = asyncio.ensure_future(track.recv())
    await asyncio.sleep(0.05)
    assert not pending.done()  # no placeholder at once when connected hidden (shown soon, usually)
    track.set_hidden(False)
    assert luma(await asyncio.wait_for(pending, 2)) == 20
    # A new source starts shown unless told otherwise; the held picture of the old one is gone.
    q = Feed(SourceId("q", "video"))
    track.connect(None)
    assert is_placeholder(await recv(track))
    feed.publish(picture(30))
    track.connect(q, hidden=True)
    track.set_hidden(False)
    pending = asyncio.ensure_future(track.recv())
    await asyncio.sleep(0.05)
    assert not pending.done()  # nothing of p is resumed for q
    q.publish(picture(60))
    assert luma(await asyncio.wait_for(pending, 2)) == 60
    track.stop()


async def test_audio_is_never_hidden() -> None:
    feed = Feed(SourceId("p", "audio"))
    track = OutboundAudioTrack()
    track.connect(feed, hidden=True)
    assert not track.hidden
    track.set_hidden(True)
    assert not track.hidden
    frame = av.AudioFrame.from_ndarray(np.zeros((1, 960), np.int16), format="s16", layout="mono")
    frame.sample_rate = 48000
    feed.publish(frame)
    assert (await recv(track)).samples == 960
    track.stop()


async def test_encoded_frames_are_held_from_the_latest_keyframe() -> None:
    feed = CountingFeed(SourceId("p", "video"))
    track = PassthroughVideoTrack()
    track.connect(feed, hidden=True)
    track.deliver(feed.id, encoded(1, False))  # nothing to decode it from: not held
    for n, key in ((2, True), (3, False), (4, False), (5, True), (6, False)):
        track.deliver(feed.id, encoded(n, key))
    asked = feed.keyframes_asked
    track.set_hidden(False)
    sent = [await recv(track), await recv(track)]
    assert [bytes(p)[0] for p in sent] == [5, 6]  # from the latest keyframe on, no new keyframe needed
    assert feed.keyframes_asked == asked
    track.deliver(feed.id, encoded(7, False))
    assert bytes(await recv(track))[0] == 7
    track.stop()


async def test_showing_with_nothing_held_asks_for_a_keyframe_and_skips_to_it() -> None:
    feed = CountingFeed(SourceId("p", "video"))
    track = PassthroughVideoTrack()
    track.connect(feed)
    track.deliver(feed.id, encoded(1, True))
    assert bytes(await recv(track))[0] == 1
    track.set_hidden(True)
    assert is_placeholder(await recv(track))
    # Hidden for long: the held frames overflow and are dropped; resume at the next keyframe.
    track.deliver(feed.id, encoded(2, True))
    for n in range(HOLD_FRAMES + 1):
        track.deliver(feed.id, encoded(3 + n % 200, False))
    asked = feed.keyframes_asked
    track.set_hidden(False)
    assert feed.keyframes_asked == asked + 1
    track.deliver(feed.id, encoded(9, False))  # not decodable on its own: skipped
    track.deliver(feed.id, encoded(10, True))
    assert bytes(await recv(track))[0] == 10
    track.stop()


# -- router ----------------------------------------------------------------------------------------


class FakeMedia:
    """What the router needs of a participant's media: sources and outbound tracks by kind."""

    def __init__(self) -> None:
        self.participant = ""
        self.on_source = None
        self.sources: dict[str, Feed] = {}
        self.outbound = {"video": OutboundVideoTrack(), "audio": OutboundAudioTrack()}

    def publish(self, kind: str) -> Feed:
        feed = self.sources[kind] = Feed(SourceId(self.participant, kind))
        if self.on_source is not None:
            self.on_source(feed)
        return feed


async def test_router_hides_a_publisher_from_whoever_watches_them_by_id() -> None:
    router = MediaRouter()
    w, w2, p = FakeMedia(), FakeMedia(), FakeMedia()
    for name, media in (("w", w), ("w2", w2), ("p", p)):
        router.add(name, media)  # type: ignore[arg-type]
    p.publish("video")
    p.publish("audio")
    seen: list[tuple[str, str | None, bool]] = []

    def on_watch(watcher: str, publisher: str | None) -> None:
        # Told before the switch: hiding here applies to the new watcher from the first frame.
        seen.append((watcher, publisher, router.watching(watcher) == publisher))
        if publisher is not None:
            router.hide(publisher, True)

    router.on_watch = on_watch
    router.connect("w", "p")
    assert seen == [("w", "p", False)]
    assert w.outbound["video"].hidden and not w.outbound["audio"].hidden  # sound continues
    router.hide("p", False)
    assert not w.outbound["video"].hidden and router.watching("w") == "p"
    router.on_watch = None
    router.hide("p", True)
    router.connect("w", None)
    router.connect("w2", "p")  # a later watcher of a hidden publisher gets them hidden too
    assert w2.outbound["video"].hidden and not w.outbound["video"].hidden
    router.discard("p")  # gone: forgotten, hidden state included
    assert not router.is_hidden("p") and w2.outbound["video"].source is None
    for media in (w, w2, p):
        for track in media.outbound.values():
            track.stop()


async def test_router_says_when_video_arrives_even_before_the_track_exists() -> None:
    router = MediaRouter()
    p = FakeMedia()
    router.add("p", p)  # type: ignore[arg-type]
    arrived: list[str] = []
    router.when_video("p", lambda: arrived.append("first"))
    cancel = router.when_video("p", lambda: arrived.append("cancelled"))
    assert not router.video_live("p", now=100.0)
    feed = p.publish("video")
    cancel()  # cancelling still works once the listener moved to the feed
    feed._media_arrived(100.0)
    assert arrived == ["first"]
    assert router.video_live("p", now=101.5) and not router.video_live("p", now=103.0)
    feed._media_arrived(101.0)
    assert arrived == ["first"]  # once only
    router.when_video("p", lambda: arrived.append("again"))
    feed._media_arrived(102.0)
    assert arrived == ["first", "again"]
    for track in p.outbound.values():
        track.stop()


# -- camera gate -----------------------------------------------------------------------------------


def test_camera_gate_holds_until_video_arrives_and_forgets_on_cancel() -> None:
    live: set[str] = set()
    listeners: dict[str, list] = {}
    deferred: list = []

    def when_video(who: str, listener):
        listeners.setdefault(who, []).append(listener)
        return lambda: listeners[who].remove(listener) if listener in listeners[who] else None

    timers: list = []

    def later(delay: float, callback):
        timers.append((delay, callback))
        return lambda: timers.remove((delay, callback)) if (delay, callback) in timers else None

    gate = CameraGate(lambda who: who in live, when_video, defer=deferred.append, later=later, grace=2.0)
    assert not gate.admits("a")
    ready: list[str] = []
    gate.hold("a", lambda: ready.append("a"), lambda: ready.append("a: no camera yet"))
    gate.hold("b", lambda: ready.append("b"), lambda: ready.append("b: no camera yet"))
    assert gate.holding("a") and len(gate) == 2 and [d for d, _ in timers] == [2.0, 2.0]
    timers[1][1]()  # b is told after the grace period; a's video comes first
    assert ready == ["b: no camera yet"]
    ready.clear()
    for listener in list(listeners["a"]):
        listener()  # a's video arrives: released on the next turn of the loop, not inside the callback
    assert ready == [] and gate.holding("a")
    deferred.pop()()
    assert ready == ["a"] and not gate.holding("a") and len(timers) == 1  # a's reminder is cancelled
    assert gate.cancel("b") and not listeners["b"] and not timers  # b pressed Stop: nothing left
    assert not gate.cancel("b")
    # Held again before a stale release runs: only the newest hold counts.
    gate.hold("c", lambda: ready.append("c-old"))
    listeners["c"][0]()
    gate.hold("c", lambda: ready.append("c-new"))
    deferred.pop()()
    assert ready == ["a"] and gate.holding("c")
    live.add("c")
    assert gate.admits("c")
