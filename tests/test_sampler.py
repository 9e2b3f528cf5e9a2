"""The classifier process pool: results, bounded queue with drops, worker failures, shutdown."""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import signal
from pathlib import Path

import numpy as np
import pytest

from sfu.headless.stamp import Stamp, make_background, make_frame
from sfu.moderation.classifiers import (
    ClassifierError,
    ClassifierSettings,
    plan_classifier,
)
from sfu.moderation.classifiers.marker import MARKER_LABEL, paint
from sfu.moderation.sampler import ClassifierPool, LatencyWindow

from .test_classifiers import marked_background, vp8_round_trip

MARKER = plan_classifier(ClassifierSettings(kind="marker"))


def children() -> set[int]:
    return {p.pid for p in multiprocessing.active_children() if p.pid is not None}


def worker_pids(before: set[int]) -> set[int]:
    """Child processes started since ``before`` (this test's pool workers) still running."""
    return children() - before


def test_latency_window_percentiles() -> None:
    window = LatencyWindow(size=100)
    assert window.percentile(50) is None
    for v in range(1, 201):  # only the last 100 (101..200) are kept
        window.add(float(v))
    assert len(window) == 100
    assert window.percentile(50) == 150.0
    assert window.percentile(95) == 195.0
    assert window.percentile(100) == 200.0
    with pytest.raises(ValueError):
        window.percentile(0)


def test_pool_needs_a_classifier() -> None:
    with pytest.raises(ValueError, match="no classifier"):
        ClassifierPool(plan_classifier(ClassifierSettings(kind="none")))
    with pytest.raises(ValueError, match="workers"):
        ClassifierPool(MARKER, workers=0)


async def test_results_come_back_for_frames_and_arrays() -> None:
    pool = ClassifierPool(MARKER, workers=1, queue_limit=8)
    await pool.start()
    try:
        decoded = vp8_round_trip([make_background(), marked_background(), make_background()])
        futures = [pool.submit(frame) for _, frame in decoded]
        array = np.full((480, 640, 3), 70, dtype=np.uint8)
        paint(array)
        futures.append(pool.submit(array))
        assert all(f is not None for f in futures)
        samples = await asyncio.gather(*futures)  # type: ignore[arg-type]
    finally:
        await pool.close()
    assert [s.ok for s in samples] == [True] * 4
    assert [s.verdict.flagged for s in samples if s.verdict] == [False, True, False, True]
    assert samples[1].verdict is not None and samples[1].verdict.reason == MARKER_LABEL
    # Downscaled before crossing the process boundary: 640x480 -> the marker's 160 px.
    assert all((s.width, s.height) == (160, 120) for s in samples)
    assert all(s.latency_s > 0 and s.compute_s > 0 for s in samples)
    stats = pool.stats()
    assert (stats.submitted, stats.classified, stats.dropped, stats.failed) == (4, 4, 0, 0)
    assert stats.latency_p50 is not None and stats.latency_p95 is not None
    assert stats.latency_p50 <= stats.latency_p95
    assert stats.compute_p50 is not None


async def test_full_queue_drops_and_counts() -> None:
    pool = ClassifierPool(MARKER, workers=1, queue_limit=2)
    await pool.start()
    try:
        frame = make_frame(Stamp(1, 2, 3))
        # submit() never waits: all 10 calls return at once, the first 3 (1 worker + 2 queued)
        # are taken, the 7 others dropped.
        futures = [pool.submit(frame) for _ in range(10)]
        taken = [f for f in futures if f is not None]
        assert len(taken) == pool.capacity == 3
        assert futures[3:] == [None] * 7
        assert pool.stats().dropped == 7 and pool.stats().in_flight == 3
        samples = await asyncio.gather(*taken)
        assert all(s.ok for s in samples)
        # Room again once the queue drained.
        again = pool.submit(frame)
        assert again is not None and (await again).ok
    finally:
        await pool.close()
    stats = pool.stats()
    assert (stats.submitted, stats.classified, stats.dropped, stats.in_flight) == (4, 4, 7, 0)


async def test_bad_pictures_are_refused_and_disturb_nothing() -> None:
    pool = ClassifierPool(MARKER)
    await pool.start()
    try:
        with pytest.raises(TypeError):
            pool.submit(b"not a picture")  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="H x W x 3"):
            pool.submit(np.zeros((10, 10), dtype=np.float64))
        sample = await pool.classify(make_frame(Stamp(1, 2, 3)))
        assert sample is not None and sample.ok
    finally:
        await pool.close()
    assert pool.stats().submitted == 1 and pool.stats().failed == 0


async def test_close_stops_workers_and_settles_pending_samples() -> None:
    before = children()
    pool = ClassifierPool(MARKER, workers=2, queue_limit=4)
    await pool.start()
    frame = make_frame(Stamp(1, 2, 3))
    pending = [pool.submit(frame) for _ in range(6)]
    assert worker_pids(before)
    await pool.close()
    assert worker_pids(before) == set()  # worker processes exited
    for future in pending:
        assert future is not None and future.done()
        sample = future.result()
        assert sample.ok or sample.error == "classifier pool closed"
    assert pool.submit(frame) is None  # closed: dropped, counted
    assert pool.stats().dropped == 1
    await pool.close()  # idempotent


async def test_a_dead_worker_is_replaced() -> None:
    before = children()
    pool = ClassifierPool(MARKER, workers=1, restart_backoff=0.0)
    await pool.start()
    try:
        (pid,) = worker_pids(before)
        os.kill(pid, signal.SIGKILL)
        marked = np.zeros((120, 160, 3), dtype=np.uint8)
        paint(marked)
        outcomes = []
        for _ in range(20):
            sample = await pool.classify(marked)
            outcomes.append(None if sample is None else sample.ok)
            if sample is not None and sample.ok:
                assert sample.verdict is not None and sample.verdict.flagged
                break
            await asyncio.sleep(0.05)  # let the executor notice the dead process
        assert outcomes[-1] is True, outcomes
        stats = pool.stats()
        assert stats.restarts == 1
        assert stats.failed + stats.dropped >= 1  # what was lost with the dead worker is counted
        assert pid not in worker_pids(before)
    finally:
        await pool.close()


async def test_restart_waits_for_the_backoff() -> None:
    now = [0.0]
    before = children()
    pool = ClassifierPool(MARKER, workers=1, restart_backoff=30.0, clock=lambda: now[0])
    await pool.start()
    try:
        (pid,) = worker_pids(before)
        os.kill(pid, signal.SIGKILL)
        picture = np.zeros((120, 160, 3), dtype=np.uint8)
        # Until the pool notices, samples fail; once it has, they are dropped during the backoff.
        for _ in range(40):
            if await pool.classify(picture) is None:
                break
            await asyncio.sleep(0.05)
        assert pool.stats().restarts == 0
        now[0] = 29.0
        assert pool.submit(picture) is None
        now[0] = 31.0
        sample = await pool.classify(picture)
        assert sample is not None and sample.ok
        assert pool.stats().restarts == 1
    finally:
        await pool.close()


async def test_a_classifier_that_cannot_load_fails_at_start(tmp_path: Path) -> None:
    pytest.importorskip("onnx")
    from .test_classifiers_onnx import LABELS, mean_colour_model

    model = mean_colour_model(tmp_path / "m.onnx")
    plan = plan_classifier(
        ClassifierSettings(
            kind="onnx",
            model_path=str(model),
            labels=LABELS,
            flag_labels=("red",),
            input_width=8,
            input_height=8,
        )
    )
    model.write_bytes(b"corrupted after the settings were checked")
    pool = ClassifierPool(plan)
    with pytest.raises(ClassifierError, match="cannot load moderation model"):
        await pool.start()
    assert pool.submit(np.zeros((8, 8, 3), np.uint8)) is None
