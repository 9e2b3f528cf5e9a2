"""Unit tests of the packet path's pure logic (sfu/media/rtp/): no network, time injected."""

from __future__ import annotations

import struct

from sfu.media.aiortc_hooks import testing
from sfu.media.rtp import h264, rtcp, vp8
from sfu.media.rtp.header import (
    extensions,
    one_byte_extension,
    pack_extensions,
    pack_header,
    parse,
)
from sfu.media.rtp.history import PacketHistory, RtxWrapper
from sfu.media.rtp.inbound import InboundStream, KeyframeCollector
from sfu.media.rtp.legs import (
    ABS_SEND_TIME_URI,
    AUDIO_LEVEL_URI,
    MID_URI,
    Codec,
    InboundLeg,
    OutboundLeg,
    payload_type_map,
)
from sfu.media.rtp.loss import GIVE_UP_AFTER, UpstreamLoss
from sfu.media.rtp.rewriter import SequenceRewriter
from sfu.media.rtp.stream import LOCAL, OutboundStream

VP8 = Codec(96, "video/vp8", 90000)
VP8_RTX = Codec(97, "video/rtx", 90000, apt=96)
OPUS = Codec(111, "audio/opus", 48000)


def vp8_payload(picture_id: int, *, start: bool = True, key: bool = False, tl0: int | None = None,
                body: bytes = b"xyz") -> bytes:
    ext = 0x80 | (0x40 if tl0 is not None else 0)
    d = bytes([0x90 if start else 0x80, ext, 0x80 | (picture_id >> 8), picture_id & 0xFF])
    if tl0 is not None:
        d += bytes([tl0])
    return d + (bytes([0x00 if key else 0x01]) if start else b"") + body


def rtp(seq: int, ts: int, payload: bytes, *, pt: int = 96, ssrc: int = 1111, marker: bool = False,
        ext: list[tuple[int, bytes]] | None = None) -> bytes:
    block = pack_extensions(ext) if ext else b""
    return pack_header(marker, pt, seq & 0xFFFF, ts & 0xFFFFFFFF, ssrc, extension=bool(ext)) + block + payload


# -- header ------------------------------------------------------------------------------------------


def test_header_view_matches_aiortc_parser() -> None:
    data = rtp(65535, 123456, b"payload", marker=True, ext=[(1, b"0"), (3, b"\x01\x02\x03")])
    view = parse(data)
    ref = testing.parse_rtp(data)
    assert view is not None
    assert (view.sequence, view.timestamp, view.ssrc, view.payload_type, view.marker) == (
        ref.sequence_number, ref.timestamp, ref.ssrc, ref.payload_type, bool(ref.marker))
    assert view.payload == ref.payload == b"payload"
    assert extensions(view) == {1: b"0", 3: b"\x01\x02\x03"}
    assert one_byte_extension(view, 3) == b"\x01\x02\x03" and one_byte_extension(view, 9) is None


def test_header_padding_and_bad_input() -> None:
    padded = bytearray(rtp(1, 1, b"abc\x00\x00\x03"))
    padded[0] |= 0x20
    view = parse(bytes(padded))
    assert view is not None and view.payload == b"abc" and view.padding
    assert parse(b"\x80\x60") is None
    assert parse(b"\x40" + bytes(20)) is None  # version 1
    assert parse(b"\x90" + bytes(11)) is None  # extension bit without an extension


# -- rewriting ---------------------------------------------------------------------------------------


def test_sequence_and_timestamps_continue_across_sources() -> None:
    r = SequenceRewriter(90000, first_sequence=1000, first_timestamp=5000)
    a, b = object(), object()
    first = r.rewrite(a, 40000, 7, now=10.0)
    assert first is not None and first.rebased and (first.sequence, first.timestamp) == (1000, 5000)
    second = r.rewrite(a, 40001, 3007, now=10.033)
    assert second is not None and (second.sequence, second.timestamp) == (1001, 8000)
    # A new source 0.5 s later: next sequence number, timestamp advanced by the elapsed time.
    switched = r.rewrite(b, 7, 999999, now=10.533)
    assert switched is not None and switched.rebased
    assert switched.sequence == 1002 and switched.timestamp == 8000 + 45000
    # A packet of the new source older than its first forwarded one would reuse numbers.
    assert r.rewrite(b, 6, 996999, now=10.54) is None
    # A gap within a source stays a gap (the receiver must see the loss).
    later = r.rewrite(b, 10, 999999 + 3000, now=10.6)
    assert later is not None and later.sequence == 1005


def test_sequence_wraps_and_sender_report_timestamp() -> None:
    r = SequenceRewriter(48000, first_sequence=65535, first_timestamp=0xFFFFFF00)
    src = object()
    out = [r.rewrite(src, s, s * 960, now=1.0 + s * 0.02) for s in range(3)]
    assert [o.sequence for o in out if o] == [65535, 0, 1]
    assert r.timestamp_at(1.04 + 0.5) == (out[2].timestamp + 24000) & 0xFFFFFFFF  # type: ignore[union-attr]


def test_vp8_picture_ids_continue_across_sources() -> None:
    ids = vp8.PictureIdContinuity()
    out = bytearray(vp8_payload(0, tl0=0))
    sent = []
    for source_pid, source_tl0, rebase in ((500, 9, True), (501, 10, False), (32767, 200, True), (0, 201, False)):
        payload = vp8_payload(source_pid, tl0=source_tl0)
        d = vp8.descriptor(payload)
        assert d is not None and d.picture_id == source_pid and d.tl0picidx == source_tl0
        if rebase:
            ids.rebase(d)
        out = bytearray(payload)
        ids.rewrite(out, 0, d)
        got = vp8.descriptor(bytes(out))
        assert got is not None
        sent.append((got.picture_id, got.tl0picidx))
    assert sent == [(500, 9), (501, 10), (502, 11), (503, 12)]


def test_keyframe_starts() -> None:
    assert vp8.is_keyframe_start(vp8_payload(1, key=True))
    assert not vp8.is_keyframe_start(vp8_payload(1, key=False))
    assert not vp8.is_keyframe_start(vp8_payload(1, start=False))
    assert vp8.depayload(vp8_payload(1, key=True, body=b"AB")) == b"\x00AB"
    sps, pps, idr, slice_ = b"\x67\x42", b"\x68\xce", b"\x65\x88", b"\x41\x9a"
    stap = bytes([24]) + struct.pack("!H", 2) + sps + struct.pack("!H", 2) + pps
    fu_start = bytes([0x7C, 0x85]) + b"data"
    fu_middle = bytes([0x7C, 0x05]) + b"more"
    assert h264.is_keyframe_start(stap) and h264.is_keyframe_start(idr) and h264.is_keyframe_start(fu_start)
    assert not h264.is_keyframe_start(slice_) and not h264.is_keyframe_start(fu_middle)
    assert h264.depayload(stap) == b"\x00\x00\x00\x01" + sps + b"\x00\x00\x00\x01" + pps
    assert h264.depayload(fu_start) + h264.depayload(fu_middle) == b"\x00\x00\x00\x01\x65datamore"


# -- history and loss --------------------------------------------------------------------------------


def test_history_answers_nacks_in_rtx() -> None:
    history = PacketHistory(size=8, max_age=1.0)
    packet = rtp(100, 9000, b"hello", ssrc=1234, marker=True, ext=[(1, b"1")])
    history.add(100, packet, now=5.0)
    assert history.get(100, now=5.5) == packet
    assert history.get(108, now=5.5) is None  # same slot, other number
    assert history.get(100, now=6.5) is None  # too old
    wrapped = RtxWrapper(ssrc=5678, payload_type=97, first_sequence=40).wrap(packet)
    assert wrapped is not None
    ref = testing.parse_rtp(wrapped)
    assert (ref.ssrc, ref.payload_type, ref.sequence_number, ref.timestamp) == (5678, 97, 40, 9000)
    assert ref.payload == struct.pack("!H", 100) + b"hello"


def test_upstream_loss_nacks_then_gives_up() -> None:
    loss = UpstreamLoss()
    assert loss.add(10, 0.0) and loss.add(13, 0.01)
    assert loss.poll(0.01).nack == [11, 12]
    assert loss.poll(0.02).nack == []  # not again so soon
    assert loss.add(11, 0.03) and loss.recovered == 1
    assert not loss.add(11, 0.031)  # duplicate
    assert loss.poll(0.06).nack == [12]
    report = loss.poll(0.02 + GIVE_UP_AFTER)
    assert report.keyframe and loss.missing == 0 and loss.given_up == 1
    fraction, lost, highest = loss.receiver_report()
    assert (lost, highest) == (1, 13) and fraction == 256 // 4


def test_inbound_unwraps_rtx_and_ignores_padding() -> None:
    leg = InboundLeg("video", {96: VP8, 97: VP8_RTX}, rtx_ssrcs={1111: 2222})
    inbound = InboundStream(leg, nack=True)
    first = inbound.accept(parse(rtp(10, 0, vp8_payload(1, key=True))), 0.0)  # type: ignore[arg-type]
    assert first is not None and first.keyframe_start
    assert inbound.accept(parse(rtp(12, 0, vp8_payload(1, start=False))), 0.01) is not None  # type: ignore[arg-type]
    original = rtp(11, 0, vp8_payload(1, start=False, body=b"lost"), ssrc=1111)
    rtx = RtxWrapper(2222, 97, 500).wrap(original)
    arrival = inbound.accept(parse(rtx), 0.05)  # type: ignore[arg-type]
    assert arrival is not None and arrival.view.ssrc == 1111 and arrival.view.sequence == 11
    assert arrival.view.payload == vp8_payload(1, start=False, body=b"lost") and inbound.loss.recovered == 1
    probe = pack_header(False, 97, 501, 0, 2222)  # RTX padding: nothing to repair
    assert inbound.accept(parse(probe), 0.06) is None  # type: ignore[arg-type]


def test_keyframe_collector_needs_every_packet() -> None:
    collector = KeyframeCollector()
    leg = InboundLeg("video", {96: VP8})
    inbound = InboundStream(leg, nack=False)

    def feed(seq: int, ts: int, payload: bytes, marker: bool = False) -> bytes | None:
        arrival = inbound.accept(parse(rtp(seq, ts, payload, marker=marker)), 0.0)  # type: ignore[arg-type]
        return collector.add(arrival) if arrival else None

    assert feed(1, 100, vp8_payload(1, key=True, body=b"A")) is None
    assert feed(3, 100, vp8_payload(1, start=False, body=b"C"), marker=True) is None  # 2 missing
    assert feed(4, 200, vp8_payload(2, key=False), marker=True) is None  # not a keyframe
    assert feed(5, 300, vp8_payload(3, key=True, body=b"A")) is None
    assert feed(6, 300, vp8_payload(3, start=False, body=b"B"), marker=True) == b"\x00AB"


# -- RTCP --------------------------------------------------------------------------------------------


def test_rtcp_packets_parse_with_aiortc() -> None:
    lost = [65534, 65535, 0, 5, 40]
    (nack,) = testing.parse_rtcp(rtcp.nack(1, 2, lost))
    assert sorted(s & 0xFFFF for s in nack.lost) == sorted(lost) and nack.media_ssrc == 2  # aiortc does not wrap
    assert sorted(rtcp.nack_lost(nack_fci(rtcp.nack(1, 2, lost)))) == sorted(lost)
    (pli,) = testing.parse_rtcp(rtcp.pli(1, 2))
    assert pli.fmt == 1 and pli.media_ssrc == 2
    (remb,) = testing.parse_rtcp(rtcp.remb(1, 1_234_567, [2, 3]))
    bitrate, ssrcs = testing.parse_remb(remb.fci)
    assert ssrcs == [2, 3] and abs(bitrate - 1_234_567) < 1_234_567 / 1000
    (rr,) = testing.parse_rtcp(rtcp.receiver_report(1, 2, 64, 3, 70000, lsr=5, dlsr=6))
    report = rr.reports[0]
    assert (report.ssrc, report.fraction_lost, report.packets_lost, report.highest_sequence, report.lsr, report.dlsr) == (
        2, 64, 3, 70000, 5, 6)


def test_compound_rtcp_read_for_the_packet_path() -> None:
    sr = rtcp_sr(77)
    compound = rtcp.read_compound(
        sr + rtcp.receiver_report(1, 2, 0, 0, 5) + rtcp.remb(1, 1_234_567, [7, 8]) + rtcp.nack(1, 7, [5, 6, 9])
        + rtcp.pli(1, 8) + struct.pack("!BBHII", 0x84, 206, 4, 1, 0) + struct.pack("!IBBH", 9, 1, 0, 0)  # FIR for 9
    )
    assert compound is not None
    assert compound.sender_reports == [(77, 0)]
    assert compound.nacks == [(7, [5, 6, 9])] and compound.keyframes == [8, 9]
    (bitrate, ssrcs), = compound.rembs
    assert ssrcs == [7, 8] and abs(bitrate - 1_234_567) < 1_234_567 / 1000
    assert list(compound.media_ssrcs()) == [7, 8, 9]
    # Anything else (BYE, APP, other feedback) or a malformed packet: not for the fast path.
    bye = struct.pack("!BBHI", 0x81, 203, 1, 77)
    assert rtcp.read_compound(sr + bye) is None
    assert rtcp.read_compound(struct.pack("!BBHII", 0x8F, 205, 2, 1, 7)) is None  # transport-wide CC
    assert rtcp.read_compound(sr[:20]) is None
    assert rtcp.read_compound(b"") is None
    assert rtcp.read_compound(struct.pack("!BBHII", 0x8F, 206, 4, 1, 0) + b"RMEB" + bytes(4)) is None


def nack_fci(packet: bytes) -> bytes:
    return packet[12:]


# -- one outbound stream -----------------------------------------------------------------------------


def watcher_leg(kind: str = "video") -> OutboundLeg:
    if kind == "audio":
        return OutboundLeg("audio", Codec(109, "audio/opus", 48000), ssrc=4444, mid="0",
                           extensions={MID_URI: 9, AUDIO_LEVEL_URI: 10})
    return OutboundLeg("video", Codec(100, "video/vp8", 90000), ssrc=3333, rtx_ssrc=3334, rtx_payload_type=101,
                       mid="1", extensions={MID_URI: 5, ABS_SEND_TIME_URI: 6}, nack=True)


def test_stream_switches_only_at_a_keyframe_and_never_back() -> None:
    sent: list[bytes] = []
    stream = OutboundStream(watcher_leg(), sent.append, wall_offset=1e9, first_sequence=7000, first_timestamp=0)
    a, b = object(), object()
    stream.follow(a)
    assert not stream.forward(a, parse(rtp(1, 0, vp8_payload(5))), 100, now=1.0)  # type: ignore[arg-type]
    assert stream.forward(a, parse(rtp(2, 3000, vp8_payload(6, key=True))), 100, now=1.03)  # type: ignore[arg-type]
    assert stream.forward(a, parse(rtp(3, 6000, vp8_payload(7), marker=True)), 100, now=1.06)  # type: ignore[arg-type]
    stream.follow(b)
    assert not stream.forward(a, parse(rtp(4, 9000, vp8_payload(8, key=True))), 100, now=1.1)  # type: ignore[arg-type]
    assert not stream.forward(b, parse(rtp(900, 1, vp8_payload(77))), 100, now=1.1)  # type: ignore[arg-type]
    assert stream.forward(b, parse(rtp(901, 3001, vp8_payload(78, key=True))), 100, now=1.2)  # type: ignore[arg-type]
    assert stream.skipped == 2
    assert stream.resend([7001], now=1.3) == 0  # the previous partner's packet is not resent
    assert stream.resend([7002], now=1.3) == 1
    sent.pop()
    out = [testing.parse_rtp(p) for p in sent]
    assert [p.sequence_number for p in out] == [7000, 7001, 7002]
    assert {p.ssrc for p in out} == {3333} and {p.payload_type for p in out} == {100}
    assert abs(out[2].timestamp - out[1].timestamp - 0.14 * 90000) <= 1  # the wall-clock time between them
    assert [vp8.descriptor(p.payload).picture_id for p in out] == [6, 7, 8]  # type: ignore[union-attr]
    view = parse(sent[2])
    assert view is not None and extensions(view)[5] == b"1" and len(extensions(view)[6]) == 3


def test_keyframe_packets_that_arrive_before_its_first_one_follow_it_without_a_hole() -> None:
    """The keyframe's first packet is repaired late (or reordered): the packets after it that came
    first are held while waiting, then sent after it in order; older ones are not."""
    sent: list[bytes] = []
    stream = OutboundStream(watcher_leg(), sent.append, wall_offset=0.0, first_sequence=500, first_timestamp=0)
    src = object()
    stream.follow(src)
    early = [
        rtp(40, 0, vp8_payload(3, start=False)),  # the tail of an older picture
        rtp(43, 3000, vp8_payload(4, start=False), marker=True),  # the keyframe's second packet ...
        rtp(42, 3000, vp8_payload(4, start=False)),  # ... and its first middle packet, reordered
        rtp(44, 6000, vp8_payload(5), marker=True),  # the next picture
    ]
    for packet in early:
        assert not stream.forward(src, parse(packet), 100, now=1.0)  # type: ignore[arg-type]
    assert stream.forward(src, parse(rtp(41, 3000, vp8_payload(4, key=True))), 100, now=1.05)  # type: ignore[arg-type]
    assert stream.forward(src, parse(rtp(45, 9000, vp8_payload(6), marker=True)), 100, now=1.06)  # type: ignore[arg-type]
    out = [testing.parse_rtp(p) for p in sent]
    assert [p.sequence_number for p in out] == [500, 501, 502, 503, 504]
    assert [vp8.descriptor(p.payload).picture_id for p in out] == [4, 4, 4, 5, 6]  # type: ignore[union-attr]
    assert stream.released == 3 and stream.resend([501, 502, 503], now=1.1) == 3
    other = object()
    stream.follow(other)
    assert not stream.forward(src, parse(rtp(47, 12000, vp8_payload(7), marker=True)), 100, now=1.2)  # type: ignore[arg-type]
    assert stream.forward(other, parse(rtp(7, 0, vp8_payload(1, key=True))), 100, now=1.3)  # type: ignore[arg-type]
    assert len(sent) == 5 + 3 + 1  # the resent three, then only the new source's keyframe


def test_stream_maps_audio_level_and_renumbers_local_packets() -> None:
    sent: list[bytes] = []
    stream = OutboundStream(watcher_leg("audio"), sent.append, wall_offset=0.0, first_sequence=10, first_timestamp=0)
    stream.follow(LOCAL)
    assert stream.send_local(rtp(5000, 48000, b"opus", pt=109, ssrc=4444, ext=[(9, b"0")]), now=2.0)
    partner = object()
    stream.follow(partner)
    assert not stream.send_local(rtp(5001, 48960, b"late", pt=109, ssrc=4444), now=2.02)
    inbound = parse(rtp(77, 123, b"voice", pt=111, ext=[(1, b"0"), (2, b"\x85")]))
    assert inbound is not None
    level = one_byte_extension(inbound, 2)
    assert stream.forward(partner, inbound, 109, now=2.1, audio_level=level)
    first, second = (parse(p) for p in sent)
    assert first is not None and second is not None
    assert (first.sequence, second.sequence) == (10, 11)
    assert second.timestamp - first.timestamp == int(0.1 * 48000)
    assert extensions(second) == {9: b"0", 10: b"\x85"} and second.payload == b"voice"


def test_stream_answers_nacks_and_reports_consistently() -> None:
    sent: list[bytes] = []
    stream = OutboundStream(watcher_leg(), sent.append, wall_offset=1_700_000_000.0, first_sequence=1, first_timestamp=0)
    src = object()
    stream.follow(src)
    for seq in range(3):
        payload = vp8_payload(seq, key=seq == 0)
        assert stream.forward(src, parse(rtp(seq, 0, payload)), 100, now=3.0)  # type: ignore[arg-type]
    assert stream.resend([2, 1, 99], now=3.1) == 2
    resent = [testing.parse_rtp(p) for p in sent[3:]]
    assert [p.ssrc for p in resent] == [3334, 3334] and [p.payload[:2] for p in resent] == [b"\x00\x02", b"\x00\x01"]
    compound = bytearray(rtcp_sr(3333) + rtcp_sr(9))
    assert stream.sender_report(compound, now=4.0)
    (sr, other) = testing.parse_rtcp(bytes(compound))
    assert sr.sender_info.rtp_timestamp == stream.rewriter.timestamp_at(4.0) == 90000
    assert sr.sender_info.ntp_timestamp >> 32 == int(1_700_000_004.0 + 2208988800)
    assert sr.sender_info.packet_count == 3 and other.sender_info.packet_count == 0


def rtcp_sr(ssrc: int) -> bytes:
    return struct.pack("!BBHIQIII", 0x80, 200, 6, ssrc, 0, 0, 0, 0)


def test_payload_types_map_by_codec() -> None:
    inbound = InboundLeg("video", {96: VP8, 97: VP8_RTX, 102: Codec(102, "video/h264", 90000, "1")})
    assert payload_type_map(inbound, watcher_leg()) == {96: 100}
    h264_watcher = OutboundLeg("video", Codec(120, "video/h264", 90000, "0"), ssrc=1)
    assert payload_type_map(inbound, h264_watcher) == {}  # packetization modes differ


def test_a_picture_cut_by_a_switch_is_completed_before_the_new_source() -> None:
    sent: list[bytes] = []
    stream = OutboundStream(watcher_leg(), sent.append, wall_offset=0.0, first_sequence=1, first_timestamp=0)
    a, b = object(), object()
    stream.follow(a)
    assert stream.forward(a, parse(rtp(10, 900, vp8_payload(1, key=True))), 100, now=1.0)  # type: ignore[arg-type]
    stream.follow(b)  # in the middle of a's picture
    assert stream.forward(a, parse(rtp(11, 900, vp8_payload(1, start=False), marker=True)), 100, now=1.01)  # type: ignore[arg-type]
    assert not stream.forward(a, parse(rtp(12, 3900, vp8_payload(2))), 100, now=1.02)  # type: ignore[arg-type]
    stream.follow(a)
    stream.forward(a, parse(rtp(13, 6900, vp8_payload(3, key=True))), 100, now=1.05)  # type: ignore[arg-type]
    stream.follow(b)  # cut again; this time b's keyframe comes first
    assert stream.forward(b, parse(rtp(50, 0, vp8_payload(9, key=True))), 100, now=1.1)  # type: ignore[arg-type]
    assert not stream.forward(a, parse(rtp(14, 6900, vp8_payload(3, start=False), marker=True)), 100, now=1.11)  # type: ignore[arg-type]
    out = [testing.parse_rtp(p) for p in sent]
    assert [p.sequence_number for p in out] == [1, 2, 3, 4]
    assert [p.marker for p in out] == [0, 1, 0, 0]
