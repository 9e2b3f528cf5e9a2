"""The media pipe's datagrams: sealed with the receiver's key, tampering and replays refused, and
messages decoded strictly."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sfu.media.pipe import PipePeer
from sfu.media.pipe import messages as m
from sfu.media.pipe.wire import HEADER_SIZE, REPLAY_WINDOW, Kind, Opener, Refused, Sealer, new_key
from sfu.media.rtp.legs import Codec, InboundLeg

KEY = new_key()


def refused(opener: Opener, data: bytes) -> str:
    with pytest.raises(Refused) as caught:
        opener.open(data)
    return caught.value.reason


def test_a_sealed_datagram_opens_with_the_receivers_key_only() -> None:
    sealer, opener = Sealer(), Opener(KEY)
    data = sealer.seal(KEY, Kind.MEDIA, b"hello")
    opened = opener.open(data)
    assert (opened.kind, opened.body, opened.sender) == (Kind.MEDIA, b"hello", sealer.prefix)
    assert b"hello" not in data  # encrypted
    assert refused(Opener(new_key()), sealer.seal(KEY, Kind.MEDIA, b"x")) == "unauthenticated"


def test_nonces_are_unique_per_datagram() -> None:
    sealer = Sealer()
    nonces = {sealer.seal(KEY, Kind.MEDIA, b"same")[2:HEADER_SIZE] for _ in range(1000)}
    assert len(nonces) == 1000


@given(st.binary(min_size=0, max_size=200), st.data())
def test_any_single_bit_flip_is_refused(body: bytes, data: st.DataObject) -> None:
    sealer, opener = Sealer(), Opener(KEY)
    datagram = bytearray(sealer.seal(KEY, Kind.DESCRIBE, body))
    bit = data.draw(st.integers(0, len(datagram) * 8 - 1))
    datagram[bit // 8] ^= 1 << (bit % 8)
    assert refused(opener, bytes(datagram)) in ("malformed", "unauthenticated")


@given(st.binary(max_size=100))
def test_garbage_is_refused_not_raised(garbage: bytes) -> None:
    assert refused(Opener(KEY), garbage) in ("truncated", "malformed", "unauthenticated", "replayed")


def test_truncated_datagrams_are_refused() -> None:
    datagram = Sealer().seal(KEY, Kind.MEDIA, b"payload")
    opener = Opener(KEY)
    assert refused(opener, datagram[:10]) == "truncated"
    assert refused(opener, datagram[:-1]) == "unauthenticated"


def test_a_replayed_datagram_is_refused_and_reordering_is_not() -> None:
    sealer, opener = Sealer(), Opener(KEY)
    first, second, third = (sealer.seal(KEY, Kind.DESCRIBE, bytes([i])) for i in range(3))
    opener.open(first)
    opener.open(third)
    assert opener.open(second).body == b"\x01"  # late but never seen: accepted
    for again in (first, second, third):
        assert refused(opener, again) == "replayed"


def test_datagrams_older_than_the_window_are_refused() -> None:
    sealer, opener = Sealer(), Opener(KEY)
    old = sealer.seal(KEY, Kind.MEDIA, b"old")
    for _ in range(REPLAY_WINDOW):
        opener.open(sealer.seal(KEY, Kind.MEDIA, b"new"))
    assert refused(opener, old) == "replayed"


def test_a_forged_datagram_does_not_poison_the_replay_window() -> None:
    sealer, opener = Sealer(), Opener(KEY)
    genuine = sealer.seal(KEY, Kind.MEDIA, b"x")
    forged = bytearray(genuine)
    forged[-1] ^= 1
    assert refused(opener, bytes(forged)) == "unauthenticated"
    assert opener.open(genuine).body == b"x"


def leg() -> InboundLeg:
    return InboundLeg(
        "video",
        {96: Codec(96, "video/vp8", 90000), 97: Codec(97, "video/rtx", 90000, apt=96)},
        {"urn:ietf:params:rtp-hdrext:sdes:mid": 4},
    )


def test_describe_round_trips() -> None:
    message = m.Describe("alice", (m.StreamInfo("video", 7, leg()),), hidden=True, ended=False)
    assert m.decode_describe(m.encode_describe(message)) == message


@pytest.mark.parametrize(
    "feedback",
    [
        m.Feedback("bob", "video", "keyframe"),
        m.Feedback("bob", "video", "cap", bps=300_000),
        m.Feedback("bob", "video", "cap", bps=None),
        m.Feedback("bob", "video", "nack", sequences=(1, 65535)),
        m.Feedback("bob", "audio", "attach"),
    ],
)
def test_feedback_round_trips(feedback: m.Feedback) -> None:
    assert m.decode_feedback(m.encode_feedback(feedback)) == feedback


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"[]",
        b'{"p":"a","k":"video","o":"explode"}',
        b'{"p":"a","k":"smell","o":"keyframe"}',
        b'{"p":"","k":"video","o":"keyframe"}',
        b'{"p":"a","k":"video","o":"nack","n":[70000]}',
        b'{"p":"a","k":"video","o":"cap","b":true}',
        b'{"p":"a","s":[{"k":"video","t":1,"c":[[300,"video/vp8",90000,"0",null]],"x":{}}],"h":false,"e":false}',
        b'{"p":"a","s":[],"h":"yes","e":false}',
    ],
)
def test_malformed_messages_are_refused(body: bytes) -> None:
    with pytest.raises(ValueError):
        if b'"s"' in body:
            m.decode_describe(body)
        else:
            m.decode_feedback(body)


def test_media_entries_need_a_tag_a_length_and_an_rtp_header() -> None:
    assert m.open_media(m.media(5, bytes(12)) + m.media(6, bytes(20))) == [(5, bytes(12)), (6, bytes(20))]
    for bad in (b"", b"\x00\x00\x00\x05short", m.media(5, bytes(11)), m.media(5, bytes(30))[:-1]):
        with pytest.raises(ValueError):
            m.open_media(bad)


def test_a_peer_is_one_line_without_its_key_in_repr() -> None:
    peer = PipePeer(("10.0.0.2", 40000), KEY)
    assert PipePeer.decode(peer.encode()) == peer
    assert KEY.hex() not in repr(peer)
    v6 = PipePeer(("::1", 5), KEY)
    assert PipePeer.decode(v6.encode()) == v6
    for bad in ("nope", f"{KEY.hex()}@host:port", "zz@h:1", f"{KEY.hex()[:10]}@h:1"):
        with pytest.raises(ValueError):
            PipePeer.decode(bad)


async def test_an_old_or_replayed_description_changes_nothing() -> None:
    from sfu.media.pipe import MediaPipe
    from sfu.media.router import MediaRouter

    calls: list[tuple[str, bool]] = []
    pipe = MediaPipe(("127.0.0.1", 0), on_hidden=lambda p, h: calls.append((p, h)))
    await pipe.start(MediaRouter(elsewhere=pipe))
    try:
        origin = PipePeer(("127.0.0.1", 9), new_key())
        pipe.expect("a", origin)
        sealer = Sealer()
        stream = m.StreamInfo("video", 7, leg())

        def describe(hidden: bool) -> bytes:
            body = m.encode_describe(m.Describe("a", (stream,), hidden=hidden))
            return sealer.seal(pipe.key, Kind.DESCRIBE, body)

        shown, hidden = describe(False), describe(True)  # sent in this order
        pipe.datagram_received(hidden)  # ... but the newer arrives first
        assert calls == [("a", True)] and set(pipe.sources("a")) == {"video"}
        pipe.datagram_received(shown)  # an older description: ignored
        pipe.datagram_received(hidden)  # a replay: refused
        assert calls == [("a", True)]
        assert pipe.counters.dropped == {"stale": 1, "replayed": 1}
        pipe.datagram_received(describe(False))
        assert calls == [("a", True), ("a", False)]
    finally:
        await pipe.close()
