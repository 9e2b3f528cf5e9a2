"""Overload shedding: the guard's decisions on a fake clock, and a real `sfu serve` that stops taking
newcomers while the people it serves carry on."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import aiohttp

from sfu.headless.client import HeadlessClient
from sfu.overload import HOLD, LoadLimits, OverloadGuard

from .ops_helpers import RawSocket
from .routing import pair_up
from .test_process import Process, processes  # noqa: F401  (fixture)

TICK = 0.25  # the server samples at this interval


def feed(
    guard: OverloadGuard, start: float, seconds: float, lag: float, cpu: float, cpu_at: float,
    when: list[float] | None = None,
) -> tuple[float, float, list[bool]]:
    """Samples every TICK from ``start`` for ``seconds``: ``lag`` each, CPU growing by ``cpu`` cores.
    Returns the clock, the CPU seconds reached and the state changes seen (their times in ``when``)."""
    changes = []
    now = start
    while now < start + seconds:
        now += TICK
        cpu_at += cpu * TICK
        changed = guard.sample(now, lag, cpu_at)
        if changed is not None:
            changes.append(changed)
            if when is not None:
                when.append(now)
    return now, cpu_at, changes


def test_quiet_process_is_never_overloaded() -> None:
    guard = OverloadGuard(LoadLimits(max_loop_lag=0.05, max_cpu=0.9))
    _, _, changes = feed(guard, 0.0, 60.0, lag=0.002, cpu=0.3, cpu_at=0.0)
    assert changes == [] and not guard.overloaded
    load = guard.load()
    assert load.loop_lag is not None and abs(load.loop_lag - 0.002) < 1e-9
    assert load.cpu is not None and abs(load.cpu - 0.3) < 1e-6


def test_no_decision_before_half_a_window_of_samples() -> None:
    guard = OverloadGuard(LoadLimits(max_loop_lag=0.05, max_cpu=0.9))
    assert guard.sample(0.0, 1.0, 0.0) is None
    assert guard.sample(0.25, 1.0, 0.25) is None  # far over both limits, but only 0.25 s of data
    assert guard.load().loop_lag is None
    _, _, changes = feed(guard, 0.25, 1.0, lag=1.0, cpu=1.0, cpu_at=0.25)
    assert changes == [True]


def test_cpu_over_the_limit_sheds_then_recovers_after_the_hold() -> None:
    guard = OverloadGuard(LoadLimits(max_loop_lag=0.05, max_cpu=0.9))
    now, cpu, changes = feed(guard, 0.0, 10.0, lag=0.001, cpu=0.5, cpu_at=0.0)
    assert changes == []
    now, cpu, changes = feed(guard, now, 3.0, lag=0.001, cpu=0.98, cpu_at=cpu)
    assert changes == [True] and guard.overloaded
    assert guard.reason is not None and "CPU" in guard.reason
    # Just under the limit but above the release level (0.8 x 0.9): still overloaded, no flapping.
    now, cpu, changes = feed(guard, now, 30.0, lag=0.001, cpu=0.85, cpu_at=cpu)
    assert changes == [] and guard.overloaded
    # Well below: recovers only once the window has emptied and HOLD seconds have passed.
    calm_from, when = now, []
    now, cpu, changes = feed(guard, now, 30.0, lag=0.001, cpu=0.2, cpu_at=cpu, when=when)
    assert changes == [False] and not guard.overloaded and guard.reason is None
    assert when[0] - calm_from >= HOLD


def test_recovery_takes_the_hold_time_and_restarts_after_a_spike() -> None:
    guard = OverloadGuard(LoadLimits(max_loop_lag=0.05, max_cpu=0))
    now, cpu, changes = feed(guard, 0.0, 3.0, lag=0.2, cpu=0.5, cpu_at=0.0)
    assert changes == [True] and "event loop" in (guard.reason or "")
    # Calm for less than the window plus HOLD: still overloaded.
    now, cpu, changes = feed(guard, now, HOLD, lag=0.001, cpu=0.5, cpu_at=cpu)
    assert changes == [] and guard.overloaded
    # A spike resets the calm period.
    now, cpu, changes = feed(guard, now, 1.0, lag=0.3, cpu=0.5, cpu_at=cpu)
    assert changes == []
    spike_end, when = now, []
    now, cpu, changes = feed(guard, now, 30.0, lag=0.001, cpu=0.5, cpu_at=cpu, when=when)
    assert changes == [False]
    assert when[0] - spike_end >= HOLD


def test_disabled_limits_never_shed() -> None:
    guard = OverloadGuard(LoadLimits(max_loop_lag=0, max_cpu=0))
    assert not guard.enabled
    _, _, changes = feed(guard, 0.0, 20.0, lag=5.0, cpu=1.0, cpu_at=0.0)
    assert changes == [] and not guard.overloaded
    assert guard.load().cpu is not None and abs(guard.load().cpu - 1.0) < 1e-6  # still measured


async def _get(http: aiohttp.ClientSession, url: str) -> tuple[int, dict]:
    async with http.get(url) as response:
        return response.status, await response.json()


async def _until_ready(http: aiohttp.ClientSession, url: str, want: int, timeout: float) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        status, body = await _get(http, url + "/readyz")
        if status == want:
            return body
        assert time.monotonic() < deadline, f"/readyz stayed {status} {body}"
        await asyncio.sleep(0.25)


async def test_overloaded_server_refuses_newcomers_and_keeps_its_pair(processes: list[Process], tmp_path: Path) -> None:  # noqa: F811
    """A CPU limit far below what one transcoded pair costs: once the pair streams, /readyz says
    overloaded and a newcomer gets server_full, while the pair keeps receiving each other's
    picture; when the pair leaves, the server takes newcomers again."""
    p = Process(["--forwarding", "transcode", "--max-cpu", "0.05", "--max-loop-lag", "0"], tmp_path / "serve.log")
    processes.append(p)
    await p.wait_ready()
    a, b = HeadlessClient(p.url, 1), HeadlessClient(p.url, 2)
    http = aiohttp.ClientSession()
    try:
        await a.connect()
        await b.connect()
        await pair_up(a, b)
        body = await _until_ready(http, p.url, 503, timeout=30)
        assert body == {"ready": False, "reason": "overloaded"}
        _, health = await _get(http, p.url + "/healthz")
        assert health["load"]["overloaded"] is True and "CPU" in health["load"]["reason"]
        async with http.get(p.url + "/metrics") as response:
            assert "sfu_overloaded 1.0" in await response.text()

        newcomer = await RawSocket.open(p.url.replace("http", "ws") + "/ws")
        try:
            refusal = await newcomer.error("server_full")
            assert "busy" in refusal["message"] and refusal["retry_after"] == 3.0  # another worker may take it
        finally:
            await newcomer.close()

        # The pair already here carries on: fresh frames of each other while overloaded.
        since = time.monotonic()
        await a.wait_frame_from(b.sender_id, since=since, timeout=10)
        await b.wait_frame_from(a.sender_id, since=since, timeout=10)
        status, _ = await _get(http, p.url + "/readyz")
        assert status == 503
    finally:
        await a.close()
        await b.close()
    try:
        await _until_ready(http, p.url, 200, timeout=30)
        newcomer = await RawSocket.open(p.url.replace("http", "ws") + "/ws")
        try:
            welcome = await newcomer.until(lambda m: m.get("type") in ("welcome", "error"))
            assert welcome["type"] == "welcome"
        finally:
            await newcomer.close()
    finally:
        await http.close()
    log = p.output()
    assert "overloaded: CPU at" in log and "accepting newcomers" in log
