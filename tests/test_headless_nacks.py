"""The headless client recovers from lost video packets as browsers do: it asks again a bounded
number of times, then starts again at the next keyframe instead of waiting on the hole."""

from __future__ import annotations

from sfu.headless.nacks import MAX_TRIES, NackRetries
from sfu.media.aiortc_hooks.testing import RestartableVideoBuffer, depayloaded_packet


def test_each_missing_packet_is_asked_for_again_a_bounded_number_of_times() -> None:
    retries = NackRetries()
    assert retries.due([]) == []
    assert retries.due([10, 11]) == [10, 11]
    assert retries.due([11, 40]) == [11, 40]  # 10 arrived: forgotten
    for _ in range(MAX_TRIES - 2):
        assert retries.due([11, 40]) == [11, 40] and not retries.gave_up
    assert retries.due([11, 40]) == [40] and retries.gave_up  # 11 was asked for MAX_TRIES times
    assert retries.due([11, 40]) == [] and retries.gave_up  # now 40 ran out too
    assert retries.due([11, 40]) == [] and not retries.gave_up  # each is given up once, not again
    assert retries.due([12]) == [12]
    assert retries.due([11]) == [11]  # missing again later (a new gap): asked for afresh


def packet(sequence: int, timestamp: int, *, key: bool = False, start: bool = True, marker: bool = True):
    """A VP8 packet (S bit and partition 0 when ``start``; the frame tag's P bit clear for a keyframe)."""
    payload = bytes([0x10 if start else 0x00]) + (bytes([0x00 if key else 0x01]) if start else b"") + b"data"
    return depayloaded_packet(payload_type=96, sequence_number=sequence, timestamp=timestamp, ssrc=1,
                              marker=marker, payload=payload, data=payload[1:])


def keyframe_start(rtp) -> bool:
    return bool(rtp.payload[0] & 0x10) and rtp.payload[1] & 1 == 0


def test_a_restart_drops_the_hole_and_decodes_again_from_the_next_keyframe() -> None:
    buffer = RestartableVideoBuffer(keyframe_start)
    assert buffer.add(packet(1, 0, key=True)) == (False, None)
    assert buffer.add(packet(2, 3000))[1].timestamp == 0  # a frame completes when the next starts
    for sequence in range(4, 8):  # 3 never comes: nothing more is decoded
        assert buffer.add(packet(sequence, sequence * 3000))[1] is None
    buffer.restarting = True  # given up on 3
    assert buffer.add(packet(10, 27000, start=False))[1] is None  # the keyframe's second packet, early
    assert buffer.add(packet(8, 24000)) == (False, None)  # nothing is decoded while restarting
    assert buffer.add(packet(9, 27000, key=True, marker=False))[1] is None  # the keyframe's first
    decoded = buffer.add(packet(11, 30000))[1]
    assert decoded is not None and decoded.timestamp == 27000  # decoding again, from the keyframe
    assert decoded.data == b"\x00data" + b"data"  # both of its packets
    assert buffer.restarts == 1 and not buffer.restarting


def test_a_keyframe_arriving_while_a_packet_is_missing_is_decoded_at_once() -> None:
    buffer = RestartableVideoBuffer(keyframe_start)
    buffer.add(packet(1, 0, key=True))
    buffer.add(packet(2, 3000, marker=False))  # emits frame 1; frame 2 has two packets
    assert buffer.add(packet(4, 9000))[1] is None  # 3 (frame 2's second) is missing: stuck
    assert buffer.add(packet(5, 12000, key=True))[1] is None  # a keyframe: the hole is left behind
    decoded = buffer.add(packet(6, 15000))[1]
    assert decoded is not None and decoded.timestamp == 12000 and buffer.restarts == 1
