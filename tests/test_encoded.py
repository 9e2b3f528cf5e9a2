"""Frame assembly off the receiver: whole frames only, and nothing decodable-looking after a loss
until the next keyframe (aiortc's sender renumbers packets, so a hole would go unnoticed)."""

from __future__ import annotations

from aiortc import RTCRtpCodecParameters

from sfu.media.aiortc_hooks.testing import depayloaded_packet
from sfu.media.encoded import EncodedFrame, FrameAssembler, is_keyframe, same_codec

VP8 = RTCRtpCodecParameters(mimeType="video/VP8", clockRate=90000, payloadType=96)
H264 = RTCRtpCodecParameters(
    mimeType="video/H264", clockRate=90000, payloadType=102, parameters={"packetization-mode": "1"}
)


class Publisher:
    """Makes VP8-like packets: frame i has ``packets`` packets; keyframes every ``gop`` frames."""

    def __init__(self, packets: int = 3, gop: int = 10) -> None:
        self.seq = 65530  # wraps around during the test
        self.packets = packets
        self.gop = gop

    def frame(self, index: int) -> list:
        key = index % self.gop == 0
        out = []
        for i in range(self.packets):
            head = bytes([0x00 if key else 0x01]) if i == 0 else b""
            packet = depayloaded_packet(
                payload_type=96,
                sequence_number=self.seq,
                timestamp=3000 * index,
                ssrc=1234,
                marker=i == self.packets - 1,
                payload=bytes([0x10 if i == 0 else 0x00]) + b"x",  # VP8 descriptor: S bit on the first
                data=head + bytes([index % 256, i]),
            )
            out.append(packet)
            self.seq = (self.seq + 1) & 0xFFFF
        return out


def assembler() -> tuple[FrameAssembler, list[EncodedFrame], list[int]]:
    frames: list[EncodedFrame] = []
    broken: list[int] = []
    tap = FrameAssembler("video", lambda pt: VP8 if pt == 96 else None, frames.append, lambda: broken.append(1))
    return tap, frames, broken


def test_whole_frames_in_order_across_sequence_wrap() -> None:
    tap, frames, broken = assembler()
    pub = Publisher()
    for i in range(25):
        for packet in pub.frame(i):
            assert tap.add(packet) == (False, None)  # nothing for aiortc's decoder
    assert [f.timestamp // 3000 for f in frames] == list(range(25))
    assert all(len(f.data) == 7 for f in frames)  # 3 packets: 1 header byte + 2 bytes each
    assert [f.keyframe for f in frames] == [i % 10 == 0 for i in range(25)]
    assert not broken


def test_reordered_packets_still_make_whole_frames() -> None:
    tap, frames, _ = assembler()
    pub = Publisher()
    for i in range(5):
        packets = pub.frame(i)
        for packet in (packets[0], packets[2], packets[1]):
            tap.add(packet)
    assert [f.timestamp // 3000 for f in frames] == list(range(5))


def test_lost_packet_withholds_frames_until_the_next_keyframe() -> None:
    tap, frames, broken = assembler()
    pub = Publisher()
    now = 100.0
    for i in range(25):
        now += 0.033
        for n, packet in enumerate(pub.frame(i)):
            if i == 3 and n == 1:
                continue  # lost for good (no retransmission)
            tap.receive(packet, now)
    shown = [f.timestamp // 3000 for f in frames]
    # Frames 0-2 pass; 3 is incomplete; 4-9 depend on it and are withheld; 10 is a keyframe.
    assert shown == [0, 1, 2] + list(range(10, 25))
    assert broken, "the feed was not told to ask for a keyframe"
    assert tap.losses == 1


def test_starts_at_a_keyframe() -> None:
    tap, frames, _ = assembler()
    pub = Publisher()
    for i in range(5, 15):
        for packet in pub.frame(i):
            tap.add(packet)
    assert frames[0].keyframe and frames[0].timestamp // 3000 == 10


def test_keyframe_detection_and_codec_matching() -> None:
    assert is_keyframe(VP8, b"\x10\x02\x00\x9d\x01\x2a")
    assert not is_keyframe(VP8, b"\x11\x02\x00")
    assert is_keyframe(H264, b"\x00\x00\x00\x01\x67abc\x00\x00\x01\x68de\x00\x00\x01\x65fg")
    assert not is_keyframe(H264, b"\x00\x00\x00\x01\x41abc")
    assert same_codec(VP8, RTCRtpCodecParameters(mimeType="video/VP8", clockRate=90000, payloadType=97))
    assert not same_codec(VP8, H264)
    other_mode = RTCRtpCodecParameters(
        mimeType="video/H264", clockRate=90000, payloadType=99, parameters={"packetization-mode": "0"}
    )
    assert not same_codec(H264, other_mode)


def test_a_retransmission_within_the_wait_completes_the_frame() -> None:
    from sfu.media.encoded import MAX_WAIT

    tap, frames, broken = assembler()
    pub = Publisher()
    now = 50.0
    late = None
    for i in range(6):
        now += 0.033
        for n, packet in enumerate(pub.frame(i)):
            if i == 2 and n == 1:
                late = packet  # delayed: comes back as a NACK retransmission
                continue
            tap.receive(packet, now)
    assert [f.timestamp // 3000 for f in frames] == [0, 1]  # 2 is incomplete; 3-5 wait behind it
    assert late is not None and now - 50.0 < MAX_WAIT
    tap.receive(late, now)
    assert [f.timestamp // 3000 for f in frames] == [0, 1, 2, 3, 4, 5]
    assert not broken and tap.losses == 0
