"""Forwarding modes end to end: real aiortc clients over loopback, through a real server.

The routing scenario and the quick-Next scenario run in every forwarding mode; codec mismatch and
the bandwidth-capped receiver are specific to encoded forwarding.
"""

from __future__ import annotations

import asyncio
import time
from typing import Optional

import pytest

from sfu.config import Config
from sfu.headless.client import HeadlessClient, ReceivedFrame
from sfu.headless.shaping import LinkShaper
from sfu.media.aiortc_hooks import ice, testing
from sfu.media.modes import FORWARDING_MODES

MODES = list(FORWARDING_MODES)
#: Client picture size, distinct from the server's 320x240 grey placeholder.
SIZE = {"width": 352, "height": 288}


@pytest.fixture(params=MODES)
def config(request: pytest.FixtureRequest) -> Config:
    return Config(
        host="127.0.0.1", port=0, online_interval=0.2, forwarding=request.param, rematch_cooldown=0.0
    )


def is_placeholder(frame: ReceivedFrame) -> bool:
    return frame.stamp is None and (frame.width, frame.height) == (320, 240)


def check_frames(frames: list[ReceivedFrame], *, new: int, old: Optional[int], switched_ms: float,
                 damaged: int = 0) -> None:
    """After a switch to ``new``: nothing corrupted (at most ``damaged`` pictures whose stamp cannot
    be read), nothing from ``old`` captured after the switch, and once ``new``'s first frame is
    shown, only ``new``'s frames."""
    seen_new = False
    for frame in frames:
        if frame.stamp is None and not is_placeholder(frame) and damaged > 0:
            damaged -= 1
            continue
        assert frame.stamp is not None or is_placeholder(frame), f"corrupted frame {frame}"
        if frame.stamp is None:
            assert not seen_new, "placeholder after the new partner's video started"
            continue
        if seen_new:
            assert frame.stamp.sender == new, f"frame from {frame.stamp.sender} after {new}'s video started"
        elif frame.stamp.sender == new:
            seen_new = True
        else:
            assert frame.stamp.sender == old, f"frame from a stranger {frame.stamp.sender}"
            assert frame.stamp.clock_ms <= switched_ms, "old partner's frame captured after the switch"
    assert seen_new


def wall_ms() -> float:
    """Now, on the stamps' clock (wall-clock milliseconds modulo 2**32)."""
    return (time.time() * 1000) % 2**32


async def paired_with(client: HeadlessClient, other: HeadlessClient, timeout: float = 15.0) -> None:
    message = await client.expect("paired", timeout=timeout)
    assert message["partner"] == other.id


async def test_routing_in_every_mode(server, make_client, config: Config) -> None:
    a = await make_client(1, **SIZE)
    b = await make_client(2, **SIZE)
    c = await make_client(3, **SIZE)
    await a.start()
    await a.expect("waiting")
    await b.start()
    await paired_with(a, b)
    await paired_with(b, a)
    start = time.monotonic()
    await a.wait_frame_from(2, since=start, timeout=20)
    await b.wait_frame_from(1, since=start, timeout=20)

    # C waits alone: it sees no one's video.
    await c.start()
    await c.expect("waiting")

    # B presses Next: A is paired with C, B waits (no rematch cooldown in this module).
    switched_ms, switched = wall_ms(), time.monotonic()
    await b.next()
    await paired_with(a, c)
    await paired_with(c, a)
    await b.expect("waiting")
    await a.wait_frame_from(3, since=switched, timeout=20)
    await c.wait_frame_from(1, since=switched, timeout=20)
    await asyncio.sleep(1.0)
    check_frames(a.frames_since(switched), new=3, old=2, switched_ms=switched_ms)
    check_frames(c.frames_since(switched), new=1, old=None, switched_ms=switched_ms)
    for frame in b.frames_since(switched):
        if frame.stamp is not None:
            assert frame.stamp.sender == 1 and frame.stamp.clock_ms <= switched_ms

    # C leaves: A is paired with B again.
    left = time.monotonic()
    await c.close()
    await a.expect("partner_left")
    await paired_with(a, b)
    await a.wait_frame_from(2, since=left, timeout=20)
    await b.wait_frame_from(1, since=left, timeout=20)

    status = server.server.status()
    expected = {"transcode": "transcode", "passthrough": "passthrough"}.get(config.forwarding, "packet")
    assert status["directions"]["video"].get(expected, 0) == 2, status
    assert status["directions"]["audio"].get(expected, 0) == 2, status
    assert a.received.audio_loud_frames > 0 and b.received.audio_loud_frames > 0


async def test_quick_nexts_show_only_the_new_partner(server, make_client, config: Config) -> None:
    clients = [await make_client(i + 1, **SIZE) for i in range(3)]
    by_id = {c.id: c for c in clients}
    partner: dict[str, Optional[str]] = {c.id: None for c in clients}
    for c in clients:
        await c.start()
    # Two of them are paired, the third waits (queued once its video reaches the server).
    deadline = time.monotonic() + 15
    while sum(1 for c in clients if c.messages("paired")) < 2 or server.server.matchmaker.waiting_count < 1:
        assert time.monotonic() < deadline, "nobody paired"
        await asyncio.sleep(0.05)
    for c in clients:
        if c.messages("paired"):
            partner[c.id] = c.messages("paired")[-1]["partner"]
            await c.expect("paired")

    delays = []
    for _ in range(10):
        presser = next(by_id[i] for i, p in partner.items() if p is not None)
        old = by_id[partner[presser.id]]  # type: ignore[index]
        waiting = next(c for c in clients if partner[c.id] is None)
        switched_ms, switched = wall_ms(), time.monotonic()
        await presser.next()
        # The pressed-away partner is paired with the one who was waiting.
        await paired_with(old, waiting)
        await paired_with(waiting, old)
        await presser.expect("waiting")
        first = await old.wait_frame_from(waiting.sender_id, since=switched, timeout=20)
        await waiting.wait_frame_from(old.sender_id, since=switched, timeout=20)
        delays.append(first.at - switched)
        partner = {presser.id: None, old.id: waiting.id, waiting.id: old.id}
        await asyncio.sleep(0.2)
        # Transcoding decodes with aiortc's own jitter buffer and decoder, which on a starved machine
        # may hand over one damaged picture after a late packet; the forwarding modes never do.
        damaged = 1 if config.forwarding == "transcode" else 0
        check_frames(old.frames_since(switched), new=waiting.sender_id, old=presser.sender_id, switched_ms=switched_ms,
                     damaged=damaged)
        check_frames(waiting.frames_since(switched), new=old.sender_id, old=None, switched_ms=switched_ms,
                     damaged=damaged)
    print(f"[{config.forwarding}] Next -> first new-partner frame: " + ", ".join(f"{d * 1000:.0f}" for d in delays) + " ms")


@pytest.mark.parametrize("config", ["auto", "passthrough"], indirect=True)
async def test_codec_mismatch_falls_back_to_transcoding(server, make_client, config: Config) -> None:
    h264 = await make_client(1, video_codecs=["video/H264"], **SIZE)
    vp8 = await make_client(2, video_codecs=["video/VP8"], **SIZE)
    await h264.start()
    await vp8.start()
    await paired_with(h264, vp8)
    start = time.monotonic()
    await h264.wait_frame_from(2, since=start, timeout=20)
    await vp8.wait_frame_from(1, since=start, timeout=20)
    await asyncio.sleep(1.5)
    for client, other in ((h264, 2), (vp8, 1)):
        frames = client.frames_since(start)
        assert len(frames) >= 10
        # Both directions are transcoded: aiortc's decoder may hand over one damaged picture (see above).
        check_frames(frames, new=other, old=None, switched_ms=wall_ms(), damaged=1)
    sdp_codecs = {
        c.sender_id: c.pc.remoteDescription.sdp for c in (h264, vp8)  # type: ignore[union-attr]
    }
    assert "H264/90000" in sdp_codecs[1] and "VP8/90000" not in sdp_codecs[1]
    assert "VP8/90000" in sdp_codecs[2] and "H264/90000" not in sdp_codecs[2]
    status = server.server.status()
    assert status["directions"]["video"] == {"transcode": 2}, status
    same = "passthrough" if config.forwarding == "passthrough" else "packet"  # auto: packets
    assert status["directions"]["audio"] == {same: 2}, status


@pytest.mark.parametrize("config", ["auto", "passthrough"], indirect=True)
async def test_a_codec_negotiated_but_not_sent_is_no_route(server, make_client, config: Config) -> None:
    """A publisher that negotiated VP8 and H.264 but sends VP8, watched by someone who takes only
    H.264: the server goes by what is sent, so the watcher gets the pictures transcoded (not the
    publisher's VP8 packets dropped for want of a payload type)."""
    h264 = await make_client(1, video_codecs=["video/H264"], **SIZE)
    both = await make_client(2, video_codecs=["video/VP8", "video/H264"], **SIZE)
    await h264.start()
    await both.start()
    await paired_with(h264, both)
    start = time.monotonic()
    await h264.wait_frame_from(2, since=start, timeout=20)
    await both.wait_frame_from(1, since=start, timeout=20)
    sdp = both.pc.remoteDescription.sdp  # type: ignore[union-attr]
    assert "VP8/90000" in sdp and "H264/90000" in sdp
    assert server.server.status()["directions"]["video"] == {"transcode": 2}


@pytest.mark.parametrize("config", ["auto", "passthrough"], indirect=True)
async def test_bandwidth_capped_receiver_keeps_receiving(server, make_client) -> None:
    """A watcher behind a 600 kbps bottleneck (tail drop beyond 250 ms of queue) watches a partner
    who would send more: its bandwidth estimate reaches the partner's encoder through the server,
    so video keeps flowing at the lower rate instead of piling up in the bottleneck."""
    link_bps = 600_000
    publisher = await make_client(1, width=640, height=480, fps=30)
    watcher = await make_client(2, width=160, height=120, fps=5)
    shaper = LinkShaper(link_bps)
    shaper.attach(watcher.pc)  # type: ignore[arg-type]
    try:
        await publisher.start()
        await watcher.start()
        await paired_with(watcher, publisher)
        sender = next(t.sender for t in publisher.pc.getTransceivers() if t.kind == "video")  # type: ignore[union-attr]
        targets = []
        for _ in range(16):
            await asyncio.sleep(1.0)
            targets.append(testing.encoder_target_bitrate(sender) or 0)
        window_start = time.monotonic() - 8.0
        frames = [f for f in watcher.frames_since(window_start) if f.stamp is not None and f.stamp.sender == 1]
        late = [f for f in frames if f.at >= time.monotonic() - 4.0]
        latency = sorted((f.wall_ms % 2**32) - f.stamp.clock_ms for f in late)  # type: ignore[union-attr]
    finally:
        await shaper.close()
    print(f"bottleneck {link_bps // 1000} kbps: publisher targets {[t // 1000 for t in targets]} kbps, "
          f"{len(frames) / 8:.1f} fps over the last 8 s, median latency {latency[len(latency) // 2] if latency else None} ms, "
          f"{shaper.dropped} packets dropped at the bottleneck")
    assert shaper.passed_bytes > 0
    # The partner was told to slow down below what the bottleneck carries ...
    assert max(targets[-4:]) < link_bps
    # ... and the watcher kept receiving: no freeze, no seconds-long backlog.
    assert len(frames) >= 40, f"only {len(frames)} frames in 8 s"
    gaps = [b.at - a.at for a, b in zip(frames, frames[1:])]
    assert max(gaps) < 2.0, f"video froze for {max(gaps):.1f} s"
    assert latency and latency[len(latency) // 2] < 1500, f"median latency {latency[len(latency) // 2]} ms"
    source = server.server.sessions[publisher.id].media.sources["video"]
    assert source.cap.relayed > 0


@pytest.mark.parametrize("mode", MODES)
async def test_serve_forwarding_flag(serve_process, mode: str) -> None:
    import json
    import urllib.request

    url, _ = serve_process("--forwarding", mode)
    with urllib.request.urlopen(url + "/healthz", timeout=5) as response:
        status = json.load(response)
    assert status["forwarding"] == mode
    assert status["directions"] == {}


@pytest.mark.parametrize("mode", ["auto", "transcode"])
async def test_answer_puts_vp8_first(mode: str) -> None:
    """An offer that prefers H.264 but allows VP8 is answered with VP8 first in encoded modes, so
    that it can share a codec with browsers; transcoding keeps the client's order."""
    from aiortc import RTCPeerConnection, RTCRtpSender

    from sfu.media.forwarding import make_forwarding
    from sfu.media.peer import PeerMedia, PeerSettings

    client = RTCPeerConnection()
    media = PeerMedia(PeerSettings(host_addresses=["127.0.0.1"]), make_forwarding(mode))
    try:
        transceiver = client.addTransceiver("video", direction="sendrecv")
        caps = RTCRtpSender.getCapabilities("video").codecs
        h264_first = [c for c in caps if c.mimeType == "video/H264"] + [
            c for c in caps if c.mimeType != "video/H264"
        ]
        transceiver.setCodecPreferences(h264_first)
        ice.set_host_addresses(client, ["127.0.0.1"])
        await client.setLocalDescription(await client.createOffer())
        answer = await media.accept(client.localDescription.sdp)
        rtpmap = [line.split(" ", 1)[1] for line in answer.splitlines() if line.startswith("a=rtpmap:")]
        first = rtpmap[0].split("/")[0]
        assert first == ("VP8" if mode == "auto" else "H264"), rtpmap
    finally:
        await media.close()
        await client.close()
