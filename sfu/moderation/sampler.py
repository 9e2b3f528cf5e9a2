"""Classify sampled pictures in worker processes, never on the event loop.

:class:`ClassifierPool` is what media code hands pictures to. ``submit`` never blocks and is never
awaited by media: it downscales the picture to the classifier's input size (one libswscale call
on the YUV planes, about a quarter of a millisecond for 640x480; the conversion to RGB happens in
the worker), hands it to a worker process and returns a future at once, or returns ``None`` and
counts a drop when the bounded queue is full (overload never stalls media).
Each worker loads the classifier once, in its initializer. The future always resolves to a
:class:`Sample` (a verdict, or an error string when classification failed), never to an exception.

If a worker process dies (a crash in native code, the OOM killer), the samples in flight resolve
with an error, one line is logged and the pool starts fresh workers at the next sample, but no
sooner than ``restart_backoff`` seconds after the previous start (a classifier that crashes on
every picture costs one process start per backoff, not one per sample); meanwhile samples are
dropped.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import logging
import math
import multiprocessing
import signal
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass

import numpy as np

from .classifiers import (
    Classifier,
    ClassifierError,
    ClassifierPlan,
    Verdict,
    build_classifier,
)
from .classifiers.image import (
    CompactPicture,
    Picture,
    VideoReformatter,
    compact,
    picture_size,
)

__all__ = ["ClassifierPool", "LatencyWindow", "PoolStats", "Sample"]

log = logging.getLogger(__name__)

_Job = concurrent.futures.Future[tuple[Verdict, float]]


@dataclass(frozen=True)
class Sample:
    """The outcome of one submitted picture."""

    verdict: Verdict | None
    """None when classification failed (see ``error``)."""
    latency_s: float
    """From ``submit`` to the result on the event loop: downscaling, queueing, transfer and
    classification."""
    compute_s: float
    """Time spent in the worker: conversion to RGB and classification (0 when it failed)."""
    width: int
    height: int
    """Size of the picture as classified (after downscaling)."""
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.verdict is not None


@dataclass(frozen=True)
class PoolStats:
    """Counters since the pool started and latency percentiles over recent samples (seconds)."""

    workers: int
    queue_limit: int
    submitted: int
    dropped: int
    classified: int
    failed: int
    in_flight: int
    restarts: int
    latency_p50: float | None
    latency_p95: float | None
    compute_p50: float | None
    compute_p95: float | None


class LatencyWindow:
    """The last ``size`` durations, with nearest-rank percentiles."""

    def __init__(self, size: int = 1024) -> None:
        self._values: deque[float] = deque(maxlen=size)

    def add(self, seconds: float) -> None:
        self._values.append(seconds)

    def __len__(self) -> int:
        return len(self._values)

    def percentile(self, q: float) -> float | None:
        """The ``q``-th percentile (0 < q <= 100), or None when empty."""
        if not 0 < q <= 100:
            raise ValueError(f"percentile must be in (0, 100], got {q}")
        if not self._values:
            return None
        ordered = sorted(self._values)
        return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


# --------------------------------------------------------------------------- worker process side


class _Worker:
    """The classifier of this worker process (set by the pool's initializer; one per process)."""

    classifier: Classifier | None = None
    error: str | None = None
    reformatter = VideoReformatter()


def _init_worker(plan: ClassifierPlan) -> None:
    # The server handles Ctrl-C and shuts the pool down itself; workers must not die first.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        _Worker.classifier = build_classifier(plan)
    except ClassifierError as exc:
        _Worker.error = str(exc)  # reported by every job instead of a bare BrokenProcessPool


def _classify_in_worker(picture: CompactPicture) -> tuple[Verdict, float]:
    if _Worker.error is not None:
        raise ClassifierError(_Worker.error)
    if _Worker.classifier is None:
        raise ClassifierError("classifier worker was not initialised")
    started = time.perf_counter()
    verdict = _Worker.classifier.classify(picture.to_rgb(_Worker.reformatter))
    return verdict, time.perf_counter() - started


# --------------------------------------------------------------------------- event loop side


class ClassifierPool:
    """Worker processes classifying pictures for the event loop.

    ``workers`` processes (default 1), at most ``workers + queue_limit`` pictures in flight;
    ``clock`` (monotonic seconds) times each sample. Call :meth:`start` before submitting and
    :meth:`close` when done."""

    def __init__(
        self,
        plan: ClassifierPlan,
        *,
        workers: int = 1,
        queue_limit: int = 4,
        start_method: str = "spawn",
        restart_backoff: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
        window: int = 1024,
    ) -> None:
        if not plan.enabled:
            raise ValueError("no classifier configured: do not start a classifier pool")
        if workers < 1:
            raise ValueError(f"workers must be at least 1, got {workers}")
        if queue_limit < 0:
            raise ValueError(f"queue_limit must not be negative, got {queue_limit}")
        self.plan = plan
        self.workers = workers
        self.queue_limit = queue_limit
        self._context = multiprocessing.get_context(start_method)
        self._restart_backoff = restart_backoff
        self._clock = clock
        self._executor: concurrent.futures.ProcessPoolExecutor | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pending: set[asyncio.Future[Sample]] = set()
        self._broken_at: float | None = None
        self._started_at = -math.inf
        self._closed = False
        self._latency = LatencyWindow(window)
        self._compute = LatencyWindow(window)
        self._reformatter = VideoReformatter()  # keeps its scaler set up from sample to sample
        self.submitted = 0
        self.dropped = 0
        self.classified = 0
        self.failed = 0
        self.restarts = 0

    @property
    def capacity(self) -> int:
        """Pictures that may be in flight (being classified or waiting) at once."""
        return self.workers + self.queue_limit

    @property
    def in_flight(self) -> int:
        return len(self._pending)

    async def start(self) -> None:
        """Start the workers and have each classify a small grey picture, so that every worker
        has loaded its classifier before the first sample, and a classifier that cannot load
        fails here, with its own message."""
        if self._closed:
            raise RuntimeError("classifier pool is closed")
        self._loop = asyncio.get_running_loop()
        self._executor = self._new_executor()
        grey = compact(np.full((32, 32, 3), 128, dtype=np.uint8))
        jobs = [self._executor.submit(_classify_in_worker, grey) for _ in range(self.workers)]
        try:
            await asyncio.gather(*(asyncio.wrap_future(job) for job in jobs))
        except BaseException:
            await self.close()
            raise

    def _new_executor(self) -> concurrent.futures.ProcessPoolExecutor:
        self._started_at = self._clock()
        return concurrent.futures.ProcessPoolExecutor(
            max_workers=self.workers,
            mp_context=self._context,
            initializer=_init_worker,
            initargs=(self.plan,),
        )

    def submit(self, picture: Picture) -> asyncio.Future[Sample] | None:
        """Queue ``picture`` (an ``av.VideoFrame`` or an H x W x 3 uint8 RGB array) for
        classification; never blocks. Returns a future resolving to a :class:`Sample`, or
        ``None`` when the picture was dropped (queue full, pool closed or restarting).
        Raises ``TypeError``/``ValueError`` if ``picture`` is not a picture."""
        picture_size(picture)  # cheap validation, before anything is counted
        if self._closed or self._executor is None or self._loop is None:
            self.dropped += 1
            return None
        if len(self._pending) >= self.capacity or not self._ready():
            self.dropped += 1
            return None
        started = self._clock()
        small = compact(picture, self.plan.input_side, self._reformatter)
        try:
            job = self._executor.submit(_classify_in_worker, small)
        except BrokenProcessPool:
            self._mark_broken()
            self.dropped += 1
            return None
        self.submitted += 1
        result: asyncio.Future[Sample] = self._loop.create_future()
        self._pending.add(result)
        done = functools.partial(self._finish, result, started, small.width, small.height)
        job.add_done_callback(functools.partial(self._from_worker_thread, done))
        return result

    async def classify(self, picture: Picture) -> Sample | None:
        """Submit ``picture`` and wait for its sample (None when dropped)."""
        future = self.submit(picture)
        return None if future is None else await future

    def _ready(self) -> bool:
        """False while broken and waiting for the restart backoff; restarts when it is over."""
        if self._broken_at is None:
            return True
        if self._clock() - self._started_at < self._restart_backoff:
            return False
        if self._pending:  # old jobs still settling
            return False
        old = self._executor
        if old is not None:
            old.shutdown(wait=False, cancel_futures=True)
        self._executor = self._new_executor()
        self._broken_at = None
        self.restarts += 1
        log.info("classifier workers restarted", extra={"event": "classifier_restarted"})
        return True

    def _mark_broken(self) -> None:
        if self._broken_at is None:
            self._broken_at = self._clock()
            log.error(
                "a classifier worker process died; samples are dropped until it is restarted",
                extra={"event": "classifier_broken"},
            )

    def _from_worker_thread(self, done: Callable[[_Job], None], job: _Job) -> None:
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        try:
            loop.call_soon_threadsafe(done, job)
        except RuntimeError:  # the loop closed meanwhile
            pass

    def _finish(
        self,
        result: asyncio.Future[Sample],
        started: float,
        width: int,
        height: int,
        job: _Job,
    ) -> None:
        self._pending.discard(result)
        if result.done():  # resolved by close()
            return
        latency = self._clock() - started
        error: str | None = None
        if job.cancelled():
            error = "cancelled"
        elif isinstance(job.exception(), BrokenProcessPool):
            self._mark_broken()
            error = "classifier worker died"
        elif job.exception() is not None:
            exc = job.exception()
            error = f"{type(exc).__name__}: {exc}"
            log.warning(
                "classification failed: %s", error, extra={"event": "classifier_failed"}
            )
        if error is not None:
            self.failed += 1
            result.set_result(Sample(None, latency, 0.0, width, height, error))
            return
        verdict, compute = job.result()
        self.classified += 1
        self._latency.add(latency)
        self._compute.add(compute)
        result.set_result(Sample(verdict, latency, compute, width, height))

    def stats(self) -> PoolStats:
        return PoolStats(
            workers=self.workers,
            queue_limit=self.queue_limit,
            submitted=self.submitted,
            dropped=self.dropped,
            classified=self.classified,
            failed=self.failed,
            in_flight=self.in_flight,
            restarts=self.restarts,
            latency_p50=self._latency.percentile(50),
            latency_p95=self._latency.percentile(95),
            compute_p50=self._compute.percentile(50),
            compute_p95=self._compute.percentile(95),
        )

    async def close(self) -> None:
        """Stop accepting pictures, resolve the ones in flight as cancelled, stop the workers
        (waiting for a classification in progress to end, off the event loop). Idempotent."""
        if self._closed:
            return
        self._closed = True
        for future in list(self._pending):
            if not future.done():
                future.set_result(Sample(None, 0.0, 0.0, 0, 0, "classifier pool closed"))
        self._pending.clear()
        executor, self._executor = self._executor, None
        if executor is not None:
            shutdown = functools.partial(executor.shutdown, wait=True, cancel_futures=True)
            await asyncio.get_running_loop().run_in_executor(None, shutdown)
