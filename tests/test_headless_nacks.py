"""The headless client asks again for lost video packets, a bounded number of times, as browsers do."""

from __future__ import annotations

from sfu.headless.nacks import MAX_TRIES, NackRetries


def test_each_missing_packet_is_asked_for_again_a_bounded_number_of_times() -> None:
    retries = NackRetries()
    assert retries.due([]) == []
    assert retries.due([10, 11]) == [10, 11]
    assert retries.due([11, 40]) == [11, 40]  # 10 arrived: forgotten
    for _ in range(MAX_TRIES - 2):
        assert retries.due([11, 40]) == [11, 40]
    assert retries.due([11, 40]) == [40]  # 11 was asked for MAX_TRIES times: given up
    assert retries.due([11]) == []  # and stays given up while it is still missing
    assert retries.due([12]) == [12]
    assert retries.due([11]) == [11]  # missing again later (a new gap): asked for afresh
