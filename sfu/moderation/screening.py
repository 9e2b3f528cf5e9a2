"""Automatic detection on live video: sample each watched publisher, hide what is flagged, pre-screen.

For every publisher someone watches, :class:`Screening` takes the publisher's current picture at
every pairing (the server asks for a keyframe then anyway) and every ``moderation_interval`` seconds,
and hands it to the classifier pool (worker processes; a full queue drops the sample and counts it,
media never waits). It never classifies anybody nobody watches.

- **Flagged** picture: the publisher's video is hidden from their partner at once (the partner gets the
  neutral placeholder and can press Next; sound continues), the publisher is told why
  (``video_hidden``), the partner is told too (``partner_hidden``), and ``on_flagged`` gets the
  verdict with the picture as JPEG evidence (the server stores an automatic report and a strike,
  which may ban). The video stays hidden for the rest of that conversation and is not sampled again
  in it: one conversation counts one strike.
- **Pre-screened start** (``moderation_prescreen``): a new partner's video is hidden until the picture
  taken at pairing is classified clean. When no verdict comes within ``prescreen_timeout`` seconds
  (classifier overloaded, dropped or failed samples are retried meanwhile), the video is shown anyway:
  the pre-screen *fails open*, with a log line and a counted metric. Failing closed would turn a busy
  or broken classifier into an outage where everybody sees placeholders; failing open keeps the chat
  working while the interval samples keep checking, and a flagged picture still hides the video at once.
- **Face required** (``require_face``): ``face_misses`` samples in a row without a face hide the video
  with reason ``no_face`` (no strike); the next sample showing a face shows it again.

Pure orchestration: the media (hide, current picture), the pool, the messages to people and the
reports are injected, and so is the clock (``clock()`` monotonic seconds; ``wall_clock()`` for
evidence). :meth:`tick` does what is due at ``now``; :meth:`start` runs it every :data:`TICK` seconds.
"""

from __future__ import annotations

import asyncio
import inspect
import itertools
import logging
import math
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from .classifiers.base import Verdict
from .records import EvidenceImage
from .sampler import Sample
from .screening_metrics import ScreeningMetrics
from .settings import ModerationSettings

__all__ = [
    "NO_FACE",
    "NUDITY",
    "PRESCREEN_TIMEOUT",
    "TICK",
    "Screening",
    "jpeg_evidence",
]

log = logging.getLogger(__name__)

#: Seconds a new partner's video stays hidden waiting for a verdict before it is shown unchecked.
PRESCREEN_TIMEOUT = 2.0
#: Longest wait for a publisher's picture (a keyframe decoded) per sample.
PICTURE_TIMEOUT = 2.0
#: Longest wait for a verdict: a classifier that hangs must not stop that publisher's sampling.
SAMPLE_TIMEOUT = 5.0
#: Seconds before a failed or dropped pre-screen sample is taken again.
RETRY = 0.25
#: Seconds between two rounds of :meth:`Screening.tick`.
TICK = 0.1
#: Samples in a row without a face that hide the video, with ``require_face``.
FACE_MISSES = 2

NUDITY = "nudity"
NO_FACE = "no_face"
_PRESCREEN = "prescreen"  # hidden until the first picture is classified (never told to anyone)


class ScreenedMedia(Protocol):
    """The media side, by participant id (the server's :class:`~sfu.media.router.MediaRouter`)."""

    def hide(self, publisher: str, hidden: bool) -> None: ...

    async def picture(self, participant: str, timeout: float) -> Any: ...

    def has_video(self, participant: str) -> bool: ...


class SamplePool(Protocol):
    """The classifier pool (:class:`~sfu.moderation.sampler.ClassifierPool`)."""

    def submit(self, picture: Any) -> asyncio.Future[Sample] | None: ...


#: ``notify(participant, action, reason)``: send ``{"type":"moderation","action":…,"reason":…}``.
Notify = Callable[[str, str, "str | None"], None]
#: ``on_flagged(publisher, verdict, evidence)``: store the automatic report (may be a coroutine).
OnFlagged = Callable[[str, Verdict, Sequence[EvidenceImage]], "Awaitable[None] | None"]
#: ``evidence(picture, captured_at_wall_clock)``: the picture as a JPEG (run in a worker thread).
EvidenceMaker = Callable[[Any, float], EvidenceImage]


def jpeg_evidence(picture: Any, captured_at: float, *, max_side: int = 640, quality: int = 80) -> EvidenceImage:
    """``picture`` (a video frame or an RGB array) as bounded JPEG evidence."""
    from .evidence_image import encode_jpeg, jpeg_size  # PyAV, only when something is flagged

    jpeg = encode_jpeg(picture, quality=quality, max_width=max_side, max_height=max_side)
    width, height = jpeg_size(jpeg)
    return EvidenceImage(jpeg=jpeg, captured_at=captured_at, width=width, height=height)


@dataclass
class _Watched:
    """A publisher while someone watches them (one conversation: one ``epoch``)."""

    watcher: str
    epoch: int
    since: float
    next_at: float
    hidden: str | None = None  #: _PRESCREEN, NUDITY or NO_FACE
    deadline: float = math.inf  #: pre-screen fails open at this time
    in_flight: bool = False
    flagged: bool = False
    no_face: int = 0  #: samples in a row without a face


class Screening:
    """See the module's description. ``watch`` is the router's ``on_watch`` hook."""

    def __init__(
        self,
        settings: ModerationSettings,
        pool: SamplePool,
        media: ScreenedMedia,
        *,
        notify: Notify,
        on_flagged: OnFlagged | None = None,
        metrics: ScreeningMetrics | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        evidence: EvidenceMaker | None = None,
        prescreen_timeout: float = PRESCREEN_TIMEOUT,
        face_misses: int = FACE_MISSES,
    ) -> None:
        self.settings = settings
        self.pool = pool
        self.media = media
        self.notify = notify
        self.on_flagged = on_flagged
        self.metrics = metrics
        self.clock = clock
        self.wall_clock = wall_clock
        self.evidence = evidence or (
            lambda picture, at: jpeg_evidence(
                picture, at, max_side=settings.evidence_max_side, quality=settings.evidence_jpeg_quality
            )
        )
        self.prescreen_timeout = prescreen_timeout
        self.face_misses = max(1, face_misses)
        self._watched: dict[str, _Watched] = {}  #: publisher -> while watched
        self._watching: dict[str, str] = {}  #: watcher -> publisher
        self._epochs = itertools.count(1)
        self._tasks: set[asyncio.Task[None]] = set()
        self._loop_task: asyncio.Task[None] | None = None

    # -- who watches whom ------------------------------------------------------------------------
    def watch(self, watcher: str, publisher: str | None) -> None:
        """``watcher`` is about to be shown ``publisher`` (``None``: nobody). Called before the media
        switches, so a pre-screened publisher is hidden from the first frame."""
        now = self.clock()
        old = self._watching.pop(watcher, None)
        if old is not None:
            state = self._watched.get(old)
            if state is not None and state.watcher == watcher:
                del self._watched[old]
        if publisher is None:
            return
        self._watching[watcher] = publisher
        state = _Watched(watcher=watcher, epoch=next(self._epochs), since=now, next_at=now + self.settings.moderation_interval)
        self._watched[publisher] = state
        if self.settings.moderation_prescreen:
            state.hidden = _PRESCREEN
            state.deadline = now + self.prescreen_timeout
        self.media.hide(publisher, state.hidden is not None)
        self._sample(publisher, state)

    def hidden_reason(self, publisher: str) -> str | None:
        """Why ``publisher``'s video is hidden from their partner now (``"prescreen"`` while waiting for
        the first verdict), or ``None``."""
        state = self._watched.get(publisher)
        return None if state is None else state.hidden

    # -- time ------------------------------------------------------------------------------------
    def tick(self, now: float) -> None:
        """Take the samples due at ``now``; show pre-screened videos whose verdict is overdue."""
        for publisher, state in list(self._watched.items()):
            if state.hidden == _PRESCREEN and now >= state.deadline:
                self._fail_open(publisher, state)
            if state.flagged or state.in_flight or now < state.next_at:
                continue
            state.next_at = now + self.settings.moderation_interval
            self._sample(publisher, state)

    def start(self) -> None:
        if self._loop_task is None:
            self._loop_task = asyncio.ensure_future(self._run())

    async def close(self) -> None:
        tasks = [t for t in (self._loop_task, *self._tasks) if t is not None]
        self._loop_task = None
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(TICK)
            try:
                self.tick(self.clock())
            except Exception:  # one bad round must not end automatic detection
                log.exception("moderation sampling round failed")

    # -- one sample ------------------------------------------------------------------------------
    def _sample(self, publisher: str, state: _Watched) -> None:
        state.in_flight = True
        task = asyncio.ensure_future(self._take(publisher, state.epoch))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _current(self, publisher: str, epoch: int) -> _Watched | None:
        state = self._watched.get(publisher)
        return state if state is not None and state.epoch == epoch else None

    async def _take(self, publisher: str, epoch: int) -> None:
        verdict: Verdict | None = None
        try:
            picture = await self.media.picture(publisher, PICTURE_TIMEOUT)
            if picture is None:
                state = self._current(publisher, epoch)
                if state is not None and state.hidden == _PRESCREEN and not self.media.has_video(publisher):
                    self._show(publisher, state)  # sends no video at all (no camera rule): nothing to check
                    return
                self._count_drop("no_picture")
                return
            if self._current(publisher, epoch) is None:
                return  # the conversation ended meanwhile: nobody to protect
            captured, wall = self.clock(), self.wall_clock()
            try:
                future = self.pool.submit(picture)
            except (TypeError, ValueError) as exc:
                log.warning("moderation sample of %s is not a picture: %s", publisher, exc)
                self._count_drop("failed")
                return
            if future is None:
                self._count_drop("queue_full")
                return
            try:
                sample = await asyncio.wait_for(future, SAMPLE_TIMEOUT)
            except TimeoutError:
                self._count_drop("timeout")
                return
            if sample.verdict is None:
                self._count_drop("failed")
                return
            verdict = sample.verdict
            if self.metrics is not None:
                self.metrics.latency.observe(sample.latency_s)
                self.metrics.samples.labels(verdict="flagged" if verdict.flagged else "clean").inc()
            self._judge(publisher, epoch, verdict, picture, captured, wall)
        finally:
            state = self._current(publisher, epoch)
            if state is not None:
                state.in_flight = False
                if verdict is None and state.hidden == _PRESCREEN:
                    state.next_at = min(state.next_at, self.clock() + RETRY)

    def _count_drop(self, why: str) -> None:
        if self.metrics is not None:
            self.metrics.dropped.labels(why=why).inc()

    # -- verdicts --------------------------------------------------------------------------------
    def _judge(self, publisher: str, epoch: int, verdict: Verdict, picture: Any, captured: float, wall: float) -> None:
        state = self._current(publisher, epoch)
        if verdict.flagged:
            if self.metrics is not None:
                self.metrics.labels.labels(label=verdict.reason or "?").inc()
            if state is not None:
                state.flagged = True
                self._hide(publisher, state, NUDITY)
                if self.metrics is not None:
                    self.metrics.hide_seconds.observe(max(0.0, self.clock() - captured))
            log.info(
                "moderation: %s flagged (%s %.2f)%s", publisher, verdict.reason, verdict.reason_score,
                "; video hidden" if state is not None else " after the conversation ended",
                extra={"event": "flagged", "session": publisher, "label": verdict.reason},
            )
            self._spawn(self._report(publisher, verdict, picture, wall))
            return
        if state is None:
            return
        no_face = False
        if self.settings.require_face:
            state.no_face = 0 if verdict.face else state.no_face + 1
            no_face = state.no_face >= self.face_misses
        if state.hidden == _PRESCREEN:
            if self.metrics is not None:
                self.metrics.prescreen_seconds.observe(max(0.0, self.clock() - state.since))
            if no_face:
                self._hide(publisher, state, NO_FACE)
            else:
                self._show(publisher, state)
        elif no_face and state.hidden is None:
            self._hide(publisher, state, NO_FACE)
        elif not no_face and state.hidden == NO_FACE:
            self._show(publisher, state)
            self.notify(publisher, "video_shown", None)
            self.notify(state.watcher, "partner_shown", None)

    def _hide(self, publisher: str, state: _Watched, reason: str) -> None:
        state.hidden = reason
        self.media.hide(publisher, True)
        if self.metrics is not None:
            self.metrics.hidden.labels(reason=reason).inc()
        self.notify(publisher, "video_hidden", reason)
        self.notify(state.watcher, "partner_hidden", reason)

    def _show(self, publisher: str, state: _Watched) -> None:
        state.hidden = None
        self.media.hide(publisher, False)

    def _fail_open(self, publisher: str, state: _Watched) -> None:
        self._show(publisher, state)
        if self.metrics is not None:
            self.metrics.prescreen_timeouts.inc()
        log.warning(
            "moderation: no verdict on %s's first picture within %.1f s; shown unchecked", publisher,
            self.prescreen_timeout, extra={"event": "prescreen_timeout", "session": publisher},
        )

    # -- reports ---------------------------------------------------------------------------------
    def _spawn(self, coro: Awaitable[None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _report(self, publisher: str, verdict: Verdict, picture: Any, wall: float) -> None:
        if self.on_flagged is None:
            return
        try:
            evidence = await asyncio.to_thread(self.evidence, picture, wall)
            result = self.on_flagged(publisher, verdict, [evidence])
            if inspect.isawaitable(result):
                await result
        except Exception:  # the video is hidden already; a storage problem must not stop sampling
            log.exception("moderation: storing the automatic report on %s failed", publisher)
