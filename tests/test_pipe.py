"""Media piped between two "processes" (two routers, each with its own pipe and UDP socket, in one
event loop) with real aiortc peers over loopback: a publisher served by one side, watched from the
other, switching between piped and local partners without a break in the watcher's stream."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import av
import numpy
import pytest
from aiortc import MediaStreamTrack, RTCRtpSender, RTCSessionDescription

from sfu.media.aiortc_hooks import testing
from sfu.media.aiortc_hooks.ice import set_host_addresses
from sfu.media.forwarding import make_forwarding
from sfu.media.packet_feed import PacketFeed
from sfu.media.peer import PeerMedia, PeerSettings
from sfu.media.pipe import MediaPipe, messages
from sfu.media.pipe.wire import Kind, Sealer, new_key
from sfu.media.router import MediaRouter
from sfu.media.rtp import vp8
from sfu.media.rtp.header import parse, seq_diff

from .test_media_model import Client


class PipeClient(Client):
    """A participant that also listens to its partner's sound."""

    def __init__(self, sender_id: int) -> None:
        super().__init__(sender_id)
        self.loud = 0

        @self.pc.on("track")
        def on_audio(track: MediaStreamTrack) -> None:
            if track.kind == "audio":
                self._readers.append(asyncio.ensure_future(self._hear(track)))

    async def _hear(self, track: MediaStreamTrack) -> None:
        while True:
            frame = await track.recv()
            assert isinstance(frame, av.AudioFrame)
            if numpy.abs(frame.to_ndarray()).max() > 1000:
                self.loud += 1

    def senders_since(self, since: float) -> list[int | None]:
        return [s.sender if s is not None else None for at, s in self.stamps if at >= since]

    async def wait_placeholder(self, since: float, timeout: float = 10.0) -> float:
        deadline = time.monotonic() + timeout
        while True:
            found = [at for at, s in self.stamps if at >= since and s is None]
            if found:
                return found[0]
            assert time.monotonic() < deadline, "no placeholder"
            await asyncio.sleep(0.05)


@dataclass
class Side:
    router: MediaRouter
    pipe: MediaPipe
    media: dict[str, PeerMedia] = field(default_factory=dict)


@pytest.fixture
async def sides() -> AsyncIterator[Callable]:
    forwarding = make_forwarding("auto")
    made: list[Side] = []
    clients: list[PipeClient] = []

    async def make_side() -> Side:
        pipe = MediaPipe(("127.0.0.1", 0))
        router = MediaRouter(elsewhere=pipe)
        await pipe.start(router)
        side = Side(router, pipe)
        made.append(side)
        return side

    async def join(side: Side, participant: str, sender_id: int, client_class: type[PipeClient] = PipeClient) -> PipeClient:
        media = PeerMedia(PeerSettings(host_addresses=["127.0.0.1"]), forwarding, participant)
        side.router.add(participant, media)
        side.media[participant] = media
        client = client_class(sender_id)
        clients.append(client)
        await client.join(media)
        return client

    yield make_side, join
    for client in clients:
        await client.close()
    for side in made:
        for media in side.media.values():
            await media.close()
        await side.pipe.close()


class Recorder:
    """What the server's outbound stream for one watcher sends (plain RTP, before SRTP)."""

    def __init__(self, media: PeerMedia) -> None:
        stream = media.outbound["video"].stream  # type: ignore[attr-defined]
        assert stream is not None
        self.ssrc = stream.leg.ssrc
        self.packets: list[tuple[int, int | None]] = []  #: (sequence, VP8 picture id)
        send = stream._send

        def recording(packet: bytes) -> object:
            view = parse(packet)
            if view is not None and view.ssrc == self.ssrc:
                d = vp8.descriptor(view.payload)
                pid = d.picture_id if d is not None and d.picture_id_at >= 0 else None
                self.packets.append((view.sequence, pid))
            return send(packet)

        stream._send = recording

    def check_continuous(self) -> None:
        assert len(self.packets) > 50
        for (seq_a, pid_a), (seq_b, pid_b) in zip(self.packets, self.packets[1:]):
            assert seq_diff(seq_b, seq_a) == 1, f"sequence jump {seq_a} -> {seq_b}"
            if pid_a is not None and pid_b is not None:
                assert (pid_b - pid_a) % (1 << 15) in (0, 1), f"picture id jump {pid_a} -> {pid_b}"


async def wait_for(condition: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


def only_after_first(senders: list[int | None], new: int) -> None:
    """Once ``new``'s first frame is shown, only ``new``'s frames."""
    assert new in senders
    after = senders[senders.index(new):]
    assert set(after) == {new}, f"after {new}'s first frame: {sorted(set(after), key=str)}"


async def pair_across(sides: tuple[Callable, Callable]) -> tuple[Side, Side, PipeClient, PipeClient, PipeClient]:
    make_side, join = sides
    one, two = await make_side(), await make_side()
    a = await join(one, "a", 1)  # the publisher, served by side one
    b = await join(two, "b", 2)  # the watcher, served by side two
    c = await join(two, "c", 3)  # a local partner for b
    one.pipe.export("a", to=two.pipe.peer)
    two.pipe.expect("a", origin=one.pipe.peer)
    start = time.monotonic()
    two.router.connect("b", "a")
    await b.wait_stamp_from(1, since=start)
    assert set(two.router.sources("a")) == {"audio", "video"}
    return one, two, a, b, c


async def test_a_piped_partner_and_a_local_one_share_one_continuous_stream(sides) -> None:
    one, two, a, b, c = await pair_across(sides)
    video_sender = next(t.sender for t in a.pc.getTransceivers() if t.kind == "video")
    plis = testing.count_keyframe_requests(video_sender)
    recorder = Recorder(two.media["b"])

    switched = time.monotonic()
    two.router.connect("b", "c")  # piped -> local
    await b.wait_stamp_from(3, since=switched)
    await asyncio.sleep(1.0)
    only_after_first(b.senders_since(switched), 3)

    switched = time.monotonic()
    two.router.connect("b", "a")  # local -> piped: a keyframe is asked of A through the pipe
    await b.wait_stamp_from(1, since=switched)
    await asyncio.sleep(1.0)
    only_after_first(b.senders_since(switched), 1)
    assert plis() >= 1
    recorder.check_continuous()

    # A keyframe request on the imported source reaches the publisher's own connection.
    await asyncio.sleep(0.6)  # past the publisher's keyframe request rate limit
    before = plis()
    two.router.sources("a")["video"].request_keyframe()
    await wait_for(lambda: plis() > before, "a PLI at the publisher")

    # Sound crosses too, and the watcher's bandwidth estimate caps the publisher upstream.
    heard = b.loud
    await wait_for(lambda: b.loud > heard + 20, "the publisher's sound")
    feed = one.media["a"].sources["video"]
    assert isinstance(feed, PacketFeed)
    await wait_for(lambda: feed.cap.relayed > 0, "the watcher's REMB relayed to the publisher")
    sent, received = one.pipe.counters, two.pipe.counters
    assert sent.packets_sent["video"] > 100 and sent.packets_sent["audio"] > 50
    assert received.packets_received["video"] > 100 and received.packets_received["audio"] > 50
    assert received.bytes_received["video"] <= sent.bytes_sent["video"]
    assert not received.dropped.get("unauthenticated") and not sent.dropped.get("unauthenticated")

    # The publisher leaves: the export ends; forgetting them shows the watcher the placeholder.
    one.router.discard("a")
    assert one.pipe.exporting("a") == []
    two.pipe.forget("a")
    assert two.router.watching("b") is None and two.router.sources("a") == {}


async def test_hidden_at_the_origin_shows_the_placeholder_across_and_sound_continues(sides) -> None:
    one, two, a, b, c = await pair_across(sides)
    sent_video = one.pipe.counters.packets_sent["video"]
    hidden_at = time.monotonic()
    one.router.hide("a", True)  # moderation, in the publisher's own process
    grey = await b.wait_placeholder(since=hidden_at)
    assert two.router.is_hidden("a")
    await asyncio.sleep(0.5)
    sent_video = one.pipe.counters.packets_sent["video"]
    heard = b.loud
    await asyncio.sleep(1.0)
    assert one.pipe.counters.packets_sent["video"] == sent_video  # no video leaves while hidden
    assert b.loud > heard + 20  # sound continues
    assert 1 not in b.senders_since(grey + 0.3)

    shown = time.monotonic()
    one.router.hide("a", False)
    await b.wait_stamp_from(1, since=shown)
    assert not two.router.is_hidden("a")


async def test_bad_datagrams_are_dropped_and_counted_and_disturb_nobody(sides) -> None:
    one, two, a, b, c = await pair_across(sides)
    counters = two.pipe.counters
    sealer = Sealer()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        target = two.pipe.address
        sock.sendto(b"\x00" * 5, target)  # truncated
        sock.sendto(bytes(range(200)), target)  # garbage
        sock.sendto(sealer.seal(new_key(), Kind.MEDIA, messages.media(1, bytes(40))), target)  # wrong key
        sock.sendto(sealer.seal(two.pipe.key, Kind.MEDIA, messages.media(12345, bytes(40))), target)  # unknown
        sock.sendto(sealer.seal(two.pipe.key, Kind.DESCRIBE, b'{"p": 1}'), target)  # invalid message
        sock.sendto(sealer.seal(two.pipe.key, Kind.MEDIA, b"\x00\x01"), target)  # no RTP header
        replay = sealer.seal(two.pipe.key, Kind.FEEDBACK, b'{"p":"x","k":"video","o":"keyframe"}')
        sock.sendto(replay, target)
        sock.sendto(replay, target)  # replayed
    await wait_for(lambda: counters.dropped.get("replayed", 0) == 1, "the datagrams to be handled")
    assert counters.dropped.get("truncated") == 1
    assert counters.dropped.get("malformed", 0) + counters.dropped.get("unauthenticated", 0) == 2
    assert counters.dropped.get("unknown_stream") == 1
    assert counters.dropped.get("invalid") == 2
    assert counters.dropped.get("unexpected") == 1  # feedback about a publisher not exported here
    after = time.monotonic()
    await b.wait_stamp_from(1, since=after)  # the pipe kept working


class H264Client(PipeClient):
    """A participant whose video takes (and sends) only H.264."""

    async def join(self, media: PeerMedia) -> None:
        self.pc.addTransceiver(self.audio, direction="sendrecv")
        video = self.pc.addTransceiver(self.video, direction="sendrecv")
        codecs = RTCRtpSender.getCapabilities("video").codecs
        video.setCodecPreferences([c for c in codecs if c.mimeType in ("video/H264", "video/rtx")])
        set_host_addresses(self.pc, ["127.0.0.1"])
        await self.pc.setLocalDescription(await self.pc.createOffer())
        answer = await media.accept(self.pc.localDescription.sdp)
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))


async def test_a_watcher_without_the_publishers_codec_gets_pictures_transcoded_across(sides) -> None:
    """The publisher sends VP8 from one process; the watcher in the other takes only H.264: the
    importing process assembles and decodes the piped packets, and the watcher's encoder sends them."""
    make_side, join = sides
    one, two = await make_side(), await make_side()
    await join(one, "a", 1)  # VP8
    watcher = await join(two, "h", 4, H264Client)
    one.pipe.export("a", to=two.pipe.peer)
    two.pipe.expect("a", origin=one.pipe.peer)
    start = time.monotonic()
    two.router.connect("h", "a")
    await watcher.wait_stamp_from(1, since=start, timeout=30)
    imported = two.router.sources("a")["video"]
    assert imported.pictures is not None and imported.pictures.decoded > 0
    assert two.media["h"].outbound["video"].mode == "transcode"
    # Partner gone: no more decoding for them.
    two.router.connect("h", None)
    await wait_for(lambda: imported.pictures is None, "decoding stopped")
