"""Unit tests of the background loops' decisions: time comes from the test, never from a clock."""

from __future__ import annotations

import pytest

from sfu.config import Config
from sfu.limits import SessionLimits
from sfu.signaling.housekeeping import OnlineBroadcast, SessionState, due_timeouts, loop_lag


def test_online_count_is_sent_only_when_it_changed() -> None:
    online = OnlineBroadcast()
    assert [online.due(count) for count in (0, 0, 2, 2, 2, 1, 2)] == [True, False, True, False, False, True, True]
    assert online.sent == 2


def limits() -> SessionLimits:
    return SessionLimits(Config(offer_timeout=1.0, ice_timeout=2.0, idle_timeout=5.0))


def state(session_id: str, *, connected: bool = False, active: bool = False) -> SessionState:
    return SessionState(id=session_id, media_connected=connected, active=active)


def test_no_offer_in_time_is_closed_once() -> None:
    lim = limits()
    lim.opened("a", 0.0)
    assert due_timeouts(lim, [state("a")], now=0.9) == []
    assert due_timeouts(lim, [state("a")], now=1.1) == [("a", "no offer within 1 s")]
    assert due_timeouts(lim, [state("a")], now=9.0) == []  # decided once: the session is being closed


def test_media_that_never_connects_is_closed_and_connected_media_is_not() -> None:
    lim = limits()
    for session_id in ("slow", "fine"):
        lim.opened(session_id, 0.0)
        lim.negotiated(session_id, 0.5)
    sessions = [state("slow", active=True), state("fine", connected=True, active=True)]
    assert due_timeouts(lim, sessions, now=2.4) == []
    assert due_timeouts(lim, sessions, now=2.6) == [("slow", "media did not connect within 2 s of the offer")]
    # Once seen connected, a later state without it does not bring the deadline back.
    assert due_timeouts(lim, [state("fine", active=True)], now=60.0) == []


def test_silence_closes_only_sessions_neither_waiting_nor_paired() -> None:
    lim = limits()
    for session_id in ("paired", "idle"):
        lim.opened(session_id, 0.0)
        lim.negotiated(session_id, 0.1)
    lim.message("idle", 3.0)  # its last message
    sessions = [state("paired", connected=True, active=True), state("idle", connected=True)]
    assert due_timeouts(lim, sessions, now=7.9) == []
    assert due_timeouts(lim, sessions, now=8.1) == [("idle", "idle for 5 s")]
    assert due_timeouts(lim, sessions, now=100.0) == []


def test_forgotten_sessions_are_skipped() -> None:
    assert due_timeouts(limits(), [state("never-opened")], now=1e9) == []


@pytest.mark.parametrize(
    "before, after, interval, lag",
    [(10.0, 10.25, 0.25, 0.0), (10.0, 10.30, 0.25, 0.05), (10.0, 10.2, 0.25, 0.0), (0.0, 2.25, 0.25, 2.0)],
)
def test_loop_lag(before: float, after: float, interval: float, lag: float) -> None:
    assert loop_lag(before, after, interval) == pytest.approx(lag)
