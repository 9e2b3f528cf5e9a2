"""The aiortc internals packet forwarding relies on still exist and behave as assumed.

If an aiortc upgrade moves any of them, these tests fail (and ``sfu serve --forwarding packet``
refuses to start with one clear line).
"""

from __future__ import annotations

import asyncio
import time

import pytest
from aiortc import RTCRtpReceiver, RTCRtpSender

from sfu.config import Config
from sfu.headless import stamp as stamps
from sfu.media import aiortc_hooks
from sfu.media.aiortc_hooks import packet_senders, packets, testing
from sfu.media.aiortc_hooks import server as server_hooks
from sfu.media.forwarding import Passthrough, make_forwarding
from sfu.media.packet_feed import PacketFeed

from .routing import pair_up


@pytest.fixture
def config() -> Config:
    return Config(host="127.0.0.1", port=0, online_interval=0.2, forwarding="packet", rematch_cooldown=0.0)


def test_every_packet_hook_is_present() -> None:
    assert packets.problems() == []
    assert packet_senders.problems() == []
    assert aiortc_hooks.packet_problems() == []
    assert aiortc_hooks.packet_supported() == (True, "")
    assert make_forwarding("packet").name == "packet"
    assert make_forwarding("auto").name == "auto"


@pytest.mark.parametrize(
    "owner, name, listed_by",
    [
        (RTCRtpReceiver, "receive", packets.problems),
        (RTCRtpReceiver, "_handle_rtcp_packet", packets.problems),
        (RTCRtpSender, "_handle_rtcp_packet", packet_senders.problems),
        (RTCRtpSender, "getStats", packet_senders.problems),
    ],
)
def test_missing_hook_refuses_packet_mode(monkeypatch: pytest.MonkeyPatch, owner: type, name: str, listed_by) -> None:
    monkeypatch.delattr(owner, name)
    assert any(name in problem for problem in listed_by()), listed_by()
    assert any(name in problem for problem in aiortc_hooks.packet_problems())
    with pytest.raises(aiortc_hooks.PrivateApiError, match=name):
        make_forwarding("packet")


def test_auto_falls_back_to_encoded_frames(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delattr(RTCRtpReceiver, "receive")
    forwarding = make_forwarding("auto")
    assert type(forwarding) is Passthrough and forwarding.name == "auto"


def test_serve_refuses_packet_mode_clearly(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    from sfu.cli import main

    monkeypatch.delattr(RTCRtpReceiver, "receive")
    assert main(["serve", "--port", "0", "--forwarding", "packet"]) == 2
    err = capsys.readouterr().err
    assert "packet forwarding unavailable" in err and "RTCRtpReceiver.receive" in err
    assert "Traceback" not in err


async def _until(predicate, timeout: float = 10.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"no {what} within {timeout} s"
        await asyncio.sleep(0.02)


async def test_packets_bypass_aiortc_receive_path(server, make_client) -> None:
    """On a real connection: the publisher's RTP is taken before aiortc's receiver (no bandwidth
    estimation, no jitter buffer, no frames), rewritten onto the watcher's sender SSRC, and the
    watcher decodes it; the watcher's RTCP (receiver reports, NACK/PLI/REMB) reaches the hooks."""
    a = await make_client(1, width=352, height=288)
    b = await make_client(2, width=352, height=288)
    await pair_up(a, b)
    media_a = server.server.sessions[a.id].media
    media_b = server.server.sessions[b.id].media

    async def aiortc_received(kind: str) -> int:
        receiver = next(t.receiver for t in media_a.pc.getTransceivers() if t.kind == kind)
        stats = await receiver.getStats()
        return sum(s.packetsReceived for s in stats.values() if s.type == "inbound-rtp")

    # (A few packets queued before the tap was in place may have gone the old way.)
    before = {kind: (await aiortc_received(kind), media_a.sources[kind].assembler.frames,
                     media_a.sources[kind].inbound.packets) for kind in ("audio", "video")}
    for kind in ("audio", "video"):
        feed = media_a.sources[kind]
        floor = before[kind][2] + 20
        await _until(lambda feed=feed, floor=floor: feed.inbound.packets > floor, timeout=20, what=f"{kind} packets")
    for kind in ("audio", "video"):
        feed = media_a.sources[kind]
        assert isinstance(feed, PacketFeed) and feed.active
        assert feed.assembler.frames == before[kind][1], "a frame reached aiortc's receive path"
        assert await aiortc_received(kind) == before[kind][0], "aiortc's receiver saw RTP"
        stream = media_b.outbound[kind].stream
        assert stream is not None and stream.packets > 20
        sender = next(t.sender for t in media_b.pc.getTransceivers() if t.kind == kind)
        assert stream.leg.ssrc == testing.sender_ssrc(sender)
        # What B received came on that SSRC.
        receiver = next(t.receiver for t in b.pc.getTransceivers() if t.kind == kind)  # type: ignore[union-attr]
        assert stream.leg.ssrc in {s.source for s in receiver.getSynchronizationSources()}
    # No decoder thread for streams that are only forwarded (aiortc starts one per receiver; the
    # clients' own receivers, which decode, keep theirs).
    for media in (media_a, media_b):
        for transceiver in media.pc.getTransceivers():
            assert not server_hooks.decoder_running(transceiver.receiver), transceiver.kind
    assert server_hooks.decoder_running(next(t.receiver for t in b.pc.getTransceivers() if t.kind == "video"))  # type: ignore[union-attr]
    # The clients' RTCP (reports, REMB) is read off the transport too, not through aiortc's queue.
    tap = media_b.sources["video"]._tap
    await _until(lambda: tap.rtcp_handled > 0, timeout=10, what="RTCP taken by the packet path")
    # A PLI from the watcher reaches the publisher as a keyframe request.
    feed_a = media_a.sources["video"]
    sent_before = feed_a.keyframes.sent
    await asyncio.sleep(0.6)  # past the keyframe requester's rate limit
    media_b.outbound["video"].on_keyframe_request()
    await _until(lambda: feed_a.keyframes.sent > sent_before, what="PLI relayed upstream")


async def test_picture_decodes_one_keyframe(server, make_client) -> None:
    a = await make_client(1, width=352, height=288)
    b = await make_client(2, width=352, height=288)
    await pair_up(a, b)
    feed = server.server.sessions[a.id].media.sources["video"]
    picture = await feed.picture(timeout=5.0)
    assert picture is not None and (picture.width, picture.height) == (352, 288)
    stamp = stamps.read_frame(picture)
    assert stamp is not None and stamp.sender == 1
    assert await server.server.sessions[a.id].media.sources["audio"].picture(timeout=0.1) is None


async def test_h264_on_both_legs_is_forwarded_as_packets(server, make_client) -> None:
    """Two H.264-only clients: packets forwarded (keyframe starts found in H.264 payloads), and a
    switch to a new partner starts at that partner's keyframe."""
    a = await make_client(1, video_codecs=["video/H264"], width=352, height=288)
    b = await make_client(2, video_codecs=["video/H264"], width=352, height=288)
    c = await make_client(3, video_codecs=["video/H264"], width=352, height=288)
    await pair_up(a, b)
    await c.start()
    await c.expect("waiting")
    switched = time.monotonic()
    await b.next()
    assert (await a.expect("paired"))["partner"] == c.id
    await a.wait_frame_from(3, since=switched, timeout=20)
    await c.wait_frame_from(1, since=switched, timeout=20)
    status = server.server.status()
    assert status["directions"]["video"].get("packet") == 2, status
    stream = server.server.sessions[a.id].media.outbound["video"].stream
    assert stream.leg.codec.mime == "video/h264" and stream.packets > 0
    seen_new = False
    for frame in a.frames_since(switched):
        assert frame.stamp is not None or (frame.width, frame.height) == (320, 240), "corrupted frame"
        if frame.stamp is not None and frame.stamp.sender == 3:
            seen_new = True
        elif frame.stamp is not None:
            assert not seen_new, "the old partner's frame after the new partner's"
    picture = await server.server.sessions[c.id].media.sources["video"].picture(timeout=5.0)
    assert picture is not None and stamps.read_frame(picture).sender == 3  # type: ignore[union-attr]
