"""The pure parts of the added-latency measurement: recognising a packet across a relay that
rewrites its header, matching arrivals to sent packets, quantiles and the difference of two paths."""

from __future__ import annotations

import struct

import pytest

from sfu.loadtest.oneway import (
    TAIL,
    WINDOW,
    Arrival,
    Sent,
    Summary,
    added,
    match,
    packet_key,
    quantile,
    table,
    verdict,
)


def rtp(payload: bytes, *, ssrc: int = 0x1111, sequence: int = 1, timestamp: int = 90, extension: bytes = b"",
        padding: int = 0) -> bytes:
    """An RTP packet: optional one-byte header extension block and padding."""
    b0 = 0x80 | (0x10 if extension else 0) | (0x20 if padding else 0)
    header = struct.pack("!BBHII", b0, 96, sequence, timestamp, ssrc)
    if extension:
        words = (len(extension) + 3) // 4
        header += struct.pack("!HH", 0xBEDE, words) + extension.ljust(words * 4, b"\0")
    pad = bytes(padding - 1) + bytes([padding]) if padding else b""
    return header + payload + pad


def vp8_payload(picture_id: int, body: bytes) -> bytes:
    """A VP8 payload descriptor with a 15-bit picture id, then ``body``."""
    return bytes([0x90, 0x80, 0x80 | (picture_id >> 8) & 0x7F, picture_id & 0xFF]) + body


BODY = bytes(range(40))


def test_the_key_survives_what_a_relay_rewrites() -> None:
    sent = rtp(vp8_payload(5, BODY), ssrc=0x1111, sequence=7, timestamp=3000)
    relayed = rtp(vp8_payload(901, BODY), ssrc=0x2222, sequence=40000, timestamp=123456,
                  extension=b"\x10\x01\x02\x03", padding=4)
    assert packet_key(sent) == packet_key(relayed) == BODY[-TAIL:]
    assert packet_key(rtp(vp8_payload(5, bytes(reversed(BODY))))) != packet_key(sent)


def test_no_key_for_short_payloads_or_garbage() -> None:
    assert packet_key(rtp(bytes(TAIL - 1))) is None
    assert packet_key(rtp(bytes(TAIL))) == bytes(TAIL)
    assert packet_key(b"\x00" * 40) is None  # not RTP version 2
    assert packet_key(b"\x80\x60") is None  # too short


def test_each_arrival_matches_the_packet_it_is() -> None:
    sent = [Sent(1.000, b"a", "video"), Sent(1.001, b"b", "video"), Sent(1.010, b"c", "audio")]
    arrivals = [Arrival(1.004, b"a"), Arrival(1.003, b"b"), Arrival(1.012, b"c")]
    m = match(sent, arrivals)
    assert sorted(round(v, 6) for v in m.latencies["video"]) == [0.002, 0.004]
    assert [round(v, 6) for v in m.latencies["audio"]] == [0.002]
    assert m.unmatched == 0 and m.lost == 0


def test_a_repeated_payload_matches_its_latest_sending_not_an_earlier_one() -> None:
    # The same payload sent again one loop later: the first sending was lost on the way.
    sent = [Sent(1.0, b"x", "audio"), Sent(1.1, b"x", "audio")]
    m = match(sent, [Arrival(1.103, b"x")], until=2.0)
    assert [round(v, 6) for v in m.latencies["audio"]] == [0.003]
    assert m.lost == 1


def test_a_packet_matches_once_and_never_beyond_the_window() -> None:
    sent = [Sent(1.0, b"x", "video")]
    duplicate = match(sent, [Arrival(1.002, b"x"), Arrival(1.004, b"x")])
    assert len(duplicate.latencies["video"]) == 1 and duplicate.unmatched == 1
    late = match(sent, [Arrival(1.0 + WINDOW + 0.01, b"x")])
    assert late.all() == [] and late.unmatched == 1


def test_a_packet_never_matches_one_sent_after_it_arrived() -> None:
    m = match([Sent(2.0, b"x", "video")], [Arrival(1.9, b"x")])
    assert m.all() == [] and m.unmatched == 1


def test_only_arrivals_in_the_span_count_but_all_take_part() -> None:
    # Sent twice; the first arrives before the span: it must not leave its sending for the
    # second arrival (which would then read 1 s instead of 2 ms).
    sent = [Sent(0.0, b"x", "video"), Sent(0.3, b"x", "video"), Sent(5.0, b"y", "video")]
    arrivals = [Arrival(0.002, b"x"), Arrival(0.302, b"x"), Arrival(5.002, b"y")]
    m = match(sent, arrivals, since=0.1, until=1.0)
    assert [round(v, 6) for v in m.latencies["video"]] == [0.002]
    assert m.unmatched == 0 and m.lost == 0


def test_lost_counts_only_what_had_time_to_arrive() -> None:
    sent = [Sent(1.0, b"a", "video"), Sent(9.9, b"b", "video")]
    m = match(sent, [], since=0.0, until=10.0)
    assert m.lost == 1  # b was sent too close to the end to be called lost


def test_nearest_rank_quantiles() -> None:
    values = [float(v) for v in range(1, 101)]
    assert quantile(values, 0.5) == 50.0
    assert quantile(values, 0.95) == 95.0
    assert quantile(values, 0.99) == 99.0
    assert quantile(list(reversed(values)), 0.5) == 50.0
    assert quantile([3.0], 0.99) == 3.0
    assert quantile([], 0.5) is None


def test_added_is_the_difference_per_quantile() -> None:
    direct = Summary.of([0.0004] * 50 + [0.0010] * 45 + [0.0020] * 5)
    through = Summary.of([0.0012] * 50 + [0.0030] * 45 + [0.0100] * 5)
    difference = added(through, direct)
    assert difference[0.50] == pytest.approx(0.0008)
    assert difference[0.95] == pytest.approx(0.0020)
    assert difference[0.99] == pytest.approx(0.0080)
    assert added(Summary.of([]), direct)[0.50] is None


def test_verdict_and_table() -> None:
    direct = Summary.of([0.0005, 0.0005, 0.0006])
    fast, slow = Summary.of([0.0015, 0.0015, 0.0020]), Summary.of([0.0105, 0.0105, 0.0110])
    assert verdict(fast, direct, 0.005) == (True, "added p50 1.00 ms <= 5 ms: met")
    assert verdict(slow, direct, 0.005)[0] is False
    assert verdict(Summary.of([]), direct, 0.005)[0] is None
    text = table(direct, fast)
    lines = text.splitlines()
    assert lines[0] == "| path | packets | p50 ms | p95 ms | p99 ms |"
    assert lines[2] == "| direct (loopback + clients) | 3 | 0.50 | 0.60 | 0.60 |"
    assert lines[3] == "| through the server | 3 | 1.50 | 2.00 | 2.00 |"
    assert lines[4] == "| **added by the server** | | **1.00** | **1.40** | **1.40** |"
