"""Keyframe requests and upstream bitrate caps: pure logic, time passed in by the caller."""

from __future__ import annotations

import pytest

from sfu.media import bandwidth, keyframes
from sfu.media.bandwidth import RateMeter, UpstreamCap
from sfu.media.keyframes import KeyframeRequester


class Publisher:
    """Records what would be sent to the publisher, and knows its SSRC once media arrived."""

    def __init__(self, ssrc: int | None = 1234) -> None:
        self.ssrc = ssrc
        self.plis: list[int] = []
        self.rembs: list[tuple[int, list[int]]] = []

    def requester(self) -> KeyframeRequester:
        return KeyframeRequester(self.plis.append, lambda: self.ssrc)

    def cap(self) -> UpstreamCap:
        return UpstreamCap(lambda bps, ssrcs: self.rembs.append((bps, ssrcs)), lambda: self.ssrc)


# -- keyframes ---------------------------------------------------------------------------------------


def test_requests_are_collapsed_until_the_interval_passes() -> None:
    pub = Publisher()
    requests = pub.requester()
    requests.request(10.0)
    requests.request(10.1)
    requests.request(10.0 + keyframes.MIN_INTERVAL - 0.01)
    assert pub.plis == [1234]
    requests.request(10.0 + keyframes.MIN_INTERVAL)  # still no keyframe: ask again
    assert pub.plis == [1234, 1234]
    assert requests.sent == 2


def test_a_request_after_the_last_keyframe_goes_out_at_once() -> None:
    pub = Publisher()
    requests = pub.requester()
    requests.request(10.0)
    requests.keyframe_arrived(10.05)
    requests.request(10.1)  # the keyframe that arrived cannot serve a newer request
    assert len(pub.plis) == 2
    requests.request(10.2)  # but this one is collapsed into the request just sent
    assert len(pub.plis) == 2


def test_a_request_before_the_ssrc_is_known_waits_for_the_first_media() -> None:
    pub = Publisher(ssrc=None)
    requests = pub.requester()
    requests.request(5.0)
    requests.media_seen(5.1)
    assert pub.plis == []
    pub.ssrc = 99
    requests.media_seen(5.2)
    assert pub.plis == [99]
    requests.media_seen(5.3)  # sent once, not on every frame
    assert pub.plis == [99]


def test_a_request_stands_until_a_keyframe_arrives() -> None:
    """The PLI, or the keyframe answering it, may be lost: while media flows and no keyframe came,
    the request goes out again every interval, and stops once one arrives."""
    pub = Publisher()
    requests = pub.requester()
    requests.request(10.0)
    for tick in range(1, 12):  # media every 0.1 s, no keyframe
        requests.media_seen(10.0 + tick * 0.1)
    assert len(pub.plis) == 3  # at 10.0, 10.5 and 11.0
    requests.keyframe_arrived(11.15)
    for tick in range(12, 30):
        requests.media_seen(10.0 + tick * 0.1)
    assert len(pub.plis) == 3, "answered: not asked again"
    assert not requests.pending


# -- bandwidth ---------------------------------------------------------------------------------------


def test_watcher_estimate_is_relayed_upstream_after_the_switch_settles() -> None:
    pub = Publisher()
    cap = pub.cap()
    cap.clear(100.0)  # a new watcher
    cap.set(400_000, 100.0 + bandwidth.SETTLE - 0.1)  # still describes the previous stream
    assert pub.rembs == [] and cap.current(100.0 + bandwidth.SETTLE) is None
    cap.set(400_000, 100.0 + bandwidth.SETTLE)
    assert pub.rembs == [(400_000, [1234])]
    assert cap.relayed == 1


def test_a_congested_watchers_estimate_is_relayed_at_once_after_a_switch() -> None:
    """Right after a switch, an estimate close to what the publisher sends is a watcher whose link
    cannot carry it (relayed at once); one far below it is left over from a slower stream."""
    pub = Publisher()
    cap = pub.cap()
    cap.clear(100.0)
    cap.set(60_000, 100.5, publishing=560_000)  # left over from the grey placeholder: ignored
    assert pub.rembs == []
    cap.set(380_000, 101.6, publishing=560_000)  # ~85% of what gets through a 450 kbps link
    assert pub.rembs == [(380_000, [1234])]
    cap.set(int(560_000 * bandwidth.TRUSTED_SHARE) - 1, 101.7, publishing=560_000)
    assert len(pub.rembs) == 1  # the share is a floor
    assert cap.current(101.7) == 380_000


def test_rate_meter_measures_a_byte_counter_over_about_a_second() -> None:
    meter = RateMeter()
    assert meter.rate(0, 10.0) is None  # one sample: no rate yet
    assert meter.rate(1_000, 10.1) is None  # too short a span
    assert meter.rate(25_000, 10.5) == 400_000  # 25 kB in 0.5 s
    for step in range(1, 30):  # then 100 kB/s: the old samples leave the window
        rate = meter.rate(25_000 + step * 10_000, 10.5 + step * 0.1)
    assert rate == 800_000


def test_cap_never_goes_below_the_floor_and_follows_the_servers_own_estimate() -> None:
    pub = Publisher()
    cap = pub.cap()
    assert cap.clamp(900_000, 10.0) == 900_000  # no cap: the server's own estimate as is
    cap.set(20_000, 11.0)
    assert pub.rembs == [(bandwidth.MIN_CAP, [1234])]
    cap.set(2_000_000, 12.0)  # more than the server itself estimates: the estimate wins
    assert pub.rembs[-1] == (900_000, [1234])
    assert cap.clamp(1_500_000, 13.0) == 1_500_000  # a cap above the estimate lowers nothing


def test_remb_is_rate_limited_unless_it_asks_for_much_less() -> None:
    pub = Publisher()
    cap = pub.cap()
    cap.set(1_000_000, 10.0)
    cap.set(950_000, 10.0625)  # within the interval, less than 10% lower: not sent
    cap.set(800_000, 10.125)  # within the interval, much lower: sent at once
    cap.set(1_200_000, 10.1875)  # higher, within the interval: not sent
    cap.set(1_200_000, 10.125 + bandwidth.MIN_INTERVAL)
    assert [bps for bps, _ in pub.rembs] == [1_000_000, 800_000, 1_200_000]
    # The server's own REMBs obey the same limit, clamped to the watcher's cap.
    assert cap.clamp(2_000_000, 10.125 + bandwidth.MIN_INTERVAL + 0.0625) is None
    assert cap.clamp(2_000_000, 11.0) == 1_200_000


def test_cap_expires_and_can_be_released() -> None:
    pub = Publisher()
    cap = pub.cap()
    cap.set(500_000, 10.0)
    assert cap.current(10.0 + bandwidth.CAP_TTL) == 500_000
    assert cap.current(10.0 + bandwidth.CAP_TTL + 0.01) is None
    cap.set(500_000, 20.0)
    cap.release()
    assert cap.current(20.0) is None
    assert cap.clamp(3_000_000, 30.0) == 3_000_000


def test_without_an_ssrc_the_cap_is_remembered_but_nothing_sent() -> None:
    pub = Publisher(ssrc=None)
    cap = pub.cap()
    cap.set(300_000, 10.0)
    assert pub.rembs == []
    assert cap.current(10.0) == 300_000
    assert cap.clamp(1_000_000, 10.5) == 300_000


@pytest.mark.parametrize("estimate", [50_000, 250_000])
def test_clamp_keeps_a_lower_server_estimate(estimate: int) -> None:
    cap = Publisher().cap()
    cap.set(400_000, 10.0)
    assert cap.clamp(estimate, 11.0) == estimate
