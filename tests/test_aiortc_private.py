"""The aiortc/aioice internals the server relies on still exist and still behave as assumed.

If an aiortc upgrade moves any of them, these tests fail loudly (and ``sfu serve`` falls back to
transcoding in ``auto`` mode, or refuses to start in ``passthrough`` mode).
"""

from __future__ import annotations

import asyncio
import time

import aiortc
import pytest
from aiortc import RTCPeerConnection, RTCRtpReceiver, RTCSessionDescription

from sfu.headless.synthetic import StampedVideoTrack
from sfu.media import aiortc_private
from sfu.media.encoded import EncodedFrame, FrameAssembler
from sfu.media.forwarding import Transcode, make_forwarding


def test_installed_aiortc_is_the_tested_version() -> None:
    assert aiortc.__version__.startswith(aiortc_private.TESTED_AIORTC), aiortc.__version__


def test_every_hook_is_present() -> None:
    aiortc_private.check()
    assert aiortc_private.passthrough_problems() == []
    assert aiortc_private.passthrough_supported() == (True, "")
    assert make_forwarding("auto").name == "auto"
    assert make_forwarding("passthrough").name == "passthrough"


def test_missing_hook_falls_back_or_refuses(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delattr(RTCRtpReceiver, "_send_rtcp_pli")
    assert "aiortc.RTCRtpReceiver._send_rtcp_pli" in aiortc_private.passthrough_problems()
    assert isinstance(make_forwarding("auto"), Transcode)
    with pytest.raises(aiortc_private.PrivateApiError, match="_send_rtcp_pli"):
        make_forwarding("passthrough")


def test_untested_version_falls_back(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(aiortc, "__version__", "9.0.0")
    assert isinstance(make_forwarding("auto"), Transcode)


async def _wait(predicate, timeout: float = 15.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"no {what} within {timeout} s"
        await asyncio.sleep(0.02)


async def test_hooks_work_on_a_real_connection() -> None:
    """Publisher -> watcher over loopback: the tap gets whole VP8 frames and the decoder gets none;
    PLI and REMB sent from the watcher's receiver reach the publisher's sender hooks."""
    publisher, watcher = RTCPeerConnection(), RTCPeerConnection()
    track = StampedVideoTrack(7, 320, 240, 15)
    frames: list[EncodedFrame] = []
    broken: list[int] = []
    taps: dict = {}
    requests: list[str] = []
    codecs_sent = []
    try:

        @watcher.on("track")
        def on_track(remote) -> None:
            receiver = next(t.receiver for t in watcher.getTransceivers() if t.receiver.track is remote)
            tap = FrameAssembler(
                "video",
                lambda pt: aiortc_private.receiver_codec(receiver, pt),
                frames.append,
                lambda: broken.append(1),
            )
            aiortc_private.tap_receiver(receiver, tap)
            taps.update(receiver=receiver, tap=tap, track=remote)

        sender = publisher.addTrack(track)
        aiortc_private.on_sender_feedback(
            sender, keyframe_request=lambda: requests.append("pli"), bitrate=lambda bps: requests.append(f"remb {bps}")
        )
        aiortc_private.on_sender_codec(sender, codecs_sent.append)
        for pc in (publisher, watcher):
            aiortc_private.set_host_addresses(pc, ["127.0.0.1"])
        await publisher.setLocalDescription(await publisher.createOffer())
        await watcher.setRemoteDescription(publisher.localDescription)
        transceiver = watcher.getTransceivers()[0]
        aiortc_private.prefer_codecs(transceiver, ["video/H264"])
        assert aiortc_private.negotiated_codecs(transceiver)[0].mimeType == "video/H264"
        aiortc_private.prefer_codecs(transceiver, ["video/VP8"])
        assert aiortc_private.negotiated_codecs(transceiver)[0].mimeType == "video/VP8"
        await watcher.setLocalDescription(await watcher.createAnswer())
        await publisher.setRemoteDescription(RTCSessionDescription(**{
            "sdp": watcher.localDescription.sdp, "type": "answer"}))

        await _wait(lambda: len(frames) >= 10, what="encoded frames at the tap")
        assert [c.mimeType for c in codecs_sent] == ["video/VP8"]
        assert frames[0].keyframe and frames[0].codec.mimeType == "video/VP8"
        assert all(len(f.data) > 0 for f in frames)
        assert taps["tap"].ssrc is not None
        # Nothing reached aiortc's decoder.
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(taps["track"].recv(), 0.3)

        # PLI from the watcher: the publisher's hook sees it and the encoder sends a keyframe.
        keyframes_before = sum(f.keyframe for f in frames)
        aiortc_private.send_pli(taps["receiver"], taps["tap"].ssrc)
        await _wait(lambda: "pli" in requests, what="PLI at the sender")
        await _wait(lambda: sum(f.keyframe for f in frames) > keyframes_before, what="keyframe after PLI")

        # REMB from the watcher: the publisher's hook and its encoder see the bitrate.
        aiortc_private.send_remb(taps["receiver"], 321_000, [taps["tap"].ssrc])
        await _wait(lambda: "remb 321000" in requests, what="REMB at the sender")
        await _wait(lambda: aiortc_private.encoder_target_bitrate(sender) == 321_000, what="encoder bitrate")

        # The receiver's own REMB passes through a rewrite hook.
        seen: list[int] = []
        aiortc_private.rewrite_receiver_remb(taps["receiver"], lambda bps: seen.append(bps) or 300_000)
        await _wait(lambda: bool(seen), timeout=20, what="receiver's own REMB")
    finally:
        track.stop()
        await publisher.close()
        await watcher.close()


def test_serve_refuses_passthrough_clearly_when_aiortc_lacks_a_hook(monkeypatch, capsys) -> None:
    """`sfu serve --forwarding passthrough` on an aiortc without the hooks: one clear line, exit 2."""
    from sfu.cli import main

    monkeypatch.delattr(RTCRtpReceiver, "_send_rtcp_pli")
    assert main(["serve", "--port", "0", "--forwarding", "passthrough"]) == 2
    err = capsys.readouterr().err
    assert "encoded forwarding unavailable" in err and "_send_rtcp_pli" in err
    assert "Traceback" not in err
