"""The aiortc/aioice internals this project relies on still exist and still behave as assumed.

If an aiortc upgrade moves any of them, these tests fail loudly (and ``sfu serve`` refuses to start,
or falls back to transcoding in ``auto`` mode, or refuses to start in ``passthrough`` mode).
"""

from __future__ import annotations

import asyncio
import os
import struct
import time

import aiortc
import pytest
from aiortc import MediaStreamError, RTCPeerConnection, RTCRtpReceiver, RTCSessionDescription
from pylibsrtp import Policy, Session

from sfu.headless.synthetic import StampedVideoTrack
from sfu.media import aiortc_hooks
from sfu.media.aiortc_hooks import ice, server, testing
from sfu.media.aiortc_hooks import srtp as srtp_hooks
from sfu.media.aiortc_hooks.srtp import SrtpPath
from sfu.media.encoded import EncodedFrame, FrameAssembler
from sfu.media.forwarding import Transcode, make_forwarding


def test_installed_aiortc_is_the_tested_version() -> None:
    assert aiortc.__version__.startswith(aiortc_hooks.TESTED_AIORTC), aiortc.__version__


def test_every_hook_is_present() -> None:
    aiortc_hooks.check()
    assert aiortc_hooks.problems() == []
    assert aiortc_hooks.passthrough_problems() == []
    assert aiortc_hooks.testing_problems() == []
    assert aiortc_hooks.passthrough_supported() == (True, "")
    assert make_forwarding("auto").name == "auto"
    assert make_forwarding("passthrough").name == "passthrough"


def test_missing_hook_falls_back_or_refuses(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delattr(RTCRtpReceiver, "_send_rtcp_pli")
    assert "aiortc.RTCRtpReceiver._send_rtcp_pli" in aiortc_hooks.passthrough_problems()
    assert isinstance(make_forwarding("auto"), Transcode)
    with pytest.raises(aiortc_hooks.PrivateApiError, match="_send_rtcp_pli"):
        make_forwarding("passthrough")


@pytest.mark.parametrize(
    "owner, name, listed_by",
    [
        (aiortc.RTCRtpSender, "_send_keyframe", aiortc_hooks.problems),
        (aiortc.RTCPeerConnection, "_RTCPeerConnection__connect", aiortc_hooks.problems),
        (aiortc.RTCRtpSender, "_handle_rtcp_packet", aiortc_hooks.passthrough_problems),
        (aiortc.RTCRtpReceiver, "_handle_rtp_packet", aiortc_hooks.passthrough_problems),
    ],
)
def test_a_moved_hook_is_named(monkeypatch: pytest.MonkeyPatch, owner, name: str, listed_by) -> None:
    monkeypatch.delattr(owner, name)
    assert any(name in problem for problem in listed_by()), listed_by()


def test_start_up_check_names_what_is_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delattr(aiortc.RTCRtpSender, "_send_keyframe")
    with pytest.raises(aiortc_hooks.PrivateApiError, match="RTCRtpSender._send_keyframe") as caught:
        aiortc_hooks.check()
    assert "tested with aiortc 1.16" in str(caught.value)


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
                lambda pt: server.receiver_codec(receiver, pt),
                frames.append,
                lambda: broken.append(1),
            )
            server.tap_receiver(receiver, tap)
            taps.update(receiver=receiver, tap=tap, track=remote)

        sender = publisher.addTrack(track)
        server.on_sender_feedback(
            sender, keyframe_request=lambda: requests.append("pli"), bitrate=lambda bps: requests.append(f"remb {bps}")
        )
        server.on_sender_codec(sender, codecs_sent.append)
        for pc in (publisher, watcher):
            ice.set_host_addresses(pc, ["127.0.0.1"])
        await publisher.setLocalDescription(await publisher.createOffer())
        await watcher.setRemoteDescription(publisher.localDescription)
        transceiver = watcher.getTransceivers()[0]
        server.prefer_codecs(transceiver, ["video/H264"])
        assert server.negotiated_codecs(transceiver)[0].mimeType == "video/H264"
        server.prefer_codecs(transceiver, ["video/VP8"])
        assert server.negotiated_codecs(transceiver)[0].mimeType == "video/VP8"
        await watcher.setLocalDescription(await watcher.createAnswer())
        await publisher.setRemoteDescription(RTCSessionDescription(**{
            "sdp": watcher.localDescription.sdp, "type": "answer"}))

        await _wait(lambda: len(frames) >= 10, what="encoded frames at the tap")
        assert [c.mimeType for c in codecs_sent] == ["video/VP8"]
        assert frames[0].keyframe and frames[0].codec.mimeType == "video/VP8"
        assert all(len(f.data) > 0 for f in frames)
        assert taps["tap"].ssrc is not None
        # Nothing reached aiortc's decoder, whose idle thread was ended: its track only ends
        # (a decoded frame would come out before the end).
        assert not server.decoder_running(taps["receiver"])
        with pytest.raises(MediaStreamError):
            await asyncio.wait_for(taps["track"].recv(), 5)

        # PLI from the watcher: the publisher's hook sees it and the encoder sends a keyframe.
        keyframes_before = sum(f.keyframe for f in frames)
        server.send_pli(taps["receiver"], taps["tap"].ssrc)
        await _wait(lambda: "pli" in requests, what="PLI at the sender")
        await _wait(lambda: sum(f.keyframe for f in frames) > keyframes_before, what="keyframe after PLI")

        # REMB from the watcher: the publisher's hook and its encoder see the bitrate.
        server.send_remb(taps["receiver"], 321_000, [taps["tap"].ssrc])
        await _wait(lambda: "remb 321000" in requests, what="REMB at the sender")
        await _wait(lambda: testing.encoder_target_bitrate(sender) == 321_000, what="encoder bitrate")

        # The receiver's own REMB passes through a rewrite hook.
        seen: list[int] = []
        server.rewrite_receiver_remb(taps["receiver"], lambda bps: seen.append(bps) or 300_000)
        await _wait(lambda: bool(seen), timeout=20, what="receiver's own REMB")

        # A whole encoded keyframe off the tap decodes on its own with aiortc's decoder.
        keyframe = next(f for f in reversed(frames) if f.keyframe)
        pictures = server.decoder_for(keyframe.codec)(keyframe.data, keyframe.timestamp)
        assert [(p.width, p.height) for p in pictures] == [(320, 240)]
    finally:
        track.stop()
        await publisher.close()
        await watcher.close()


async def test_offer_outline_reads_what_aiortc_reads() -> None:
    pc = RTCPeerConnection()
    try:
        pc.addTransceiver("audio")
        pc.addTransceiver("video")
        ice.set_host_addresses(pc, ["127.0.0.1"])
        await pc.setLocalDescription(await pc.createOffer())
        outline = server.outline_offer(pc.localDescription.sdp)
    finally:
        await pc.close()
    assert [(m.kind, m.mid) for m in outline.media] == [("audio", "0"), ("video", "1")]
    assert all(m.has_ice_credentials and m.has_fingerprint for m in outline.media)
    assert outline.bundles == (("0", "1"),)
    with pytest.raises(ValueError, match=r"unreadable SDP \("):
        server.outline_offer("v=0\r\nm=video notaport UDP/TLS/RTP/SAVPF 96\r\n")


def test_serve_refuses_passthrough_clearly_when_aiortc_lacks_a_hook(monkeypatch, capsys) -> None:
    """`sfu serve --forwarding passthrough` on an aiortc without the hooks: one clear line, exit 2."""
    from sfu.cli import main

    monkeypatch.delattr(RTCRtpReceiver, "_send_rtcp_pli")
    assert main(["serve", "--port", "0", "--forwarding", "passthrough"]) == 2
    err = capsys.readouterr().err
    assert "encoded forwarding unavailable" in err and "_send_rtcp_pli" in err
    assert "Traceback" not in err


def test_srtp_path_matches_pylibsrtp_and_refuses_what_it_would() -> None:
    """The packet path's direct libsrtp calls give what pylibsrtp's own methods give, on the same
    session state, and ``None`` where pylibsrtp raises (forged, replayed, too long)."""
    key = os.urandom(30)
    ours_tx = Session(policy=Policy(key=key, ssrc_type=Policy.SSRC_ANY_OUTBOUND))
    theirs_tx = Session(policy=Policy(key=key, ssrc_type=Policy.SSRC_ANY_OUTBOUND))
    rx = Session(policy=Policy(key=key, ssrc_type=Policy.SSRC_ANY_INBOUND))
    protect, unprotect = SrtpPath(ours_tx).protect, SrtpPath(rx).unprotect
    for seq in range(50):
        plain = struct.pack("!BBHII", 0x80, 96, seq, seq * 3000, 0x1234) + bytes([seq]) * (100 + seq)
        protected = protect(plain)
        assert protected is not None and protected == theirs_tx.protect(plain)
        if seq % 2:
            assert unprotect(protected) == plain
        else:
            assert rx.unprotect(protected) == plain  # the session's own method, same state
        assert unprotect(protected) is None  # replayed
    forged = bytearray(theirs_tx.protect(struct.pack("!BBHII", 0x80, 96, 99, 0, 0x1234) + b"x" * 40))
    forged[-1] ^= 1
    assert unprotect(bytes(forged)) is None
    assert protect(bytes(1500)) is None  # no room for the tag
    assert srtp_hooks.problems() == []
