"""Screening orchestration with a hand-moved clock, a pool whose verdicts the test releases, and a
media double that records what is hidden. Verdicts come from the real marker classifier applied to
the pictures the "publishers" show."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import numpy as np
import pytest
from prometheus_client import CollectorRegistry

from sfu.moderation.classifiers.marker import FACE_COLOUR, MarkerClassifier, paint
from sfu.moderation.evidence_image import decode_jpeg
from sfu.moderation.sampler import Sample
from sfu.moderation.screening import NO_FACE, NUDITY, RETRY, Screening
from sfu.moderation.screening_metrics import ScreeningMetrics
from sfu.moderation.settings import ModerationSettings

INTERVAL = 10.0


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def clean() -> np.ndarray:
    return np.full((60, 80, 3), 90, np.uint8)


def flagged() -> np.ndarray:
    rgb = clean()
    paint(rgb)
    return rgb


def with_face() -> np.ndarray:
    rgb = clean()
    paint(rgb, FACE_COLOUR, (0.3, 0.3, 0.7, 0.7))
    return rgb


class Media:
    """Publishers' current pictures, and who is hidden."""

    def __init__(self) -> None:
        self.pictures: dict[str, np.ndarray | None] = {}
        self.hidden: dict[str, bool] = {}
        self.asked: list[str] = []
        self.audio_only: set[str] = set()

    def hide(self, publisher: str, hidden: bool) -> None:
        self.hidden[publisher] = hidden

    async def picture(self, participant: str, timeout: float) -> Any:
        self.asked.append(participant)
        return None if participant in self.audio_only else self.pictures.get(participant)

    def has_video(self, participant: str) -> bool:
        return participant not in self.audio_only


class Pool:
    """Holds submitted pictures until ``release``; ``capacity`` pictures at most (then drops)."""

    def __init__(self, capacity: int = 4) -> None:
        self.capacity = capacity
        self.pending: list[tuple[np.ndarray, asyncio.Future[Sample]]] = []
        self.submitted = 0
        self.classifier = MarkerClassifier()

    def submit(self, picture: Any) -> asyncio.Future[Sample] | None:
        if len(self.pending) >= self.capacity:
            return None
        self.submitted += 1
        future: asyncio.Future[Sample] = asyncio.get_running_loop().create_future()
        self.pending.append((picture, future))
        return future

    async def release(self, latency: float = 0.03, fail: bool = False) -> None:
        pending, self.pending = self.pending, []
        for picture, future in pending:
            if fail:
                future.set_result(Sample(None, latency, 0.0, 80, 60, "boom"))
            else:
                future.set_result(Sample(self.classifier.classify(picture), latency, 0.01, 80, 60))
        await settle()


async def settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0)


class World:
    def __init__(self, **settings: Any) -> None:
        self.clock = Clock()
        self.media = Media()
        self.pool = Pool(settings.pop("capacity", 4))
        self.registry = CollectorRegistry()
        self.told: list[tuple[str, str, str | None]] = []
        self.reports: list[tuple[str, Any, list]] = []
        self.reported = asyncio.Event()
        self.screening = Screening(
            ModerationSettings(moderation_interval=INTERVAL, **settings), self.pool, self.media,
            notify=lambda who, action, reason: self.told.append((who, action, reason)),
            on_flagged=self.on_flagged, metrics=ScreeningMetrics(self.registry), clock=self.clock,
            wall_clock=lambda: 1_800_000_000.0,
        )

    async def on_flagged(self, publisher: str, verdict: Any, evidence: list) -> None:
        self.reports.append((publisher, verdict, list(evidence)))
        self.reported.set()

    def metric(self, name: str, **labels: str) -> float:
        return self.registry.get_sample_value(name, labels) or 0.0

    async def advance(self, seconds: float) -> None:
        self.clock.now += seconds
        self.screening.tick(self.clock.now)
        await settle()

    async def close(self) -> None:
        await self.screening.close()


@pytest.fixture
async def world():
    made: list[World] = []

    def make(**settings: Any) -> World:
        made.append(World(**settings))
        return made[-1]

    yield make
    for w in made:
        await w.close()


async def test_prescreen_hides_a_new_partner_until_their_first_picture_is_clean(world) -> None:
    w = world()
    w.media.pictures["p"] = clean()
    w.screening.watch("w", "p")
    assert w.media.hidden == {"p": True}  # before any sample: the router applies it from the first frame
    await settle()
    assert w.pool.submitted == 1 and w.media.asked == ["p"]
    w.clock.now += 0.04
    await w.pool.release()
    assert w.media.hidden == {"p": False} and w.screening.hidden_reason("p") is None
    assert w.told == []  # a clean start is silent
    assert w.metric("sfu_moderation_samples_classified_total", verdict="clean") == 1
    assert w.metric("sfu_moderation_prescreen_seconds_sum") == pytest.approx(0.04)
    # Then every interval, not sooner.
    await w.advance(INTERVAL - 0.5)
    assert w.pool.submitted == 1
    await w.advance(0.5)
    assert w.pool.submitted == 2


async def test_a_flagged_new_partner_is_never_shown_and_counts_one_strike(world) -> None:
    w = world()
    w.media.pictures["p"] = flagged()
    w.screening.watch("w", "p")
    await settle()
    await w.pool.release()
    assert w.media.hidden == {"p": True} and w.screening.hidden_reason("p") == NUDITY
    assert w.told == [("p", "video_hidden", NUDITY), ("w", "partner_hidden", NUDITY)]
    await asyncio.wait_for(w.reported.wait(), 10)
    (publisher, verdict, evidence), = w.reports
    assert publisher == "p" and verdict.flagged and verdict.reason == "MARKER"
    assert len(evidence) == 1 and evidence[0].captured_at == 1_800_000_000.0
    rgb = decode_jpeg(evidence[0].jpeg)  # the picture that was classified, as JPEG
    assert rgb.shape[:2] == (60, 80) and MarkerClassifier().classify(rgb).flagged
    assert w.metric("sfu_moderation_flagged_labels_total", label="MARKER") == 1
    assert w.metric("sfu_moderation_videos_hidden_total", reason=NUDITY) == 1
    # Hidden for the rest of this conversation and not sampled again in it (one strike per conversation).
    await w.advance(INTERVAL * 3)
    assert w.pool.submitted == 1 and w.media.hidden["p"]
    # A new conversation: checked again from the start.
    w.screening.watch("w", None)
    w.screening.watch("x", "p")
    await settle()
    assert w.pool.submitted == 2


async def test_a_picture_flagged_mid_conversation_hides_the_video_at_once(world) -> None:
    w = world()
    w.media.pictures["p"] = clean()
    w.screening.watch("w", "p")
    await settle()
    await w.pool.release()
    assert w.media.hidden["p"] is False
    w.media.pictures["p"] = flagged()
    await w.advance(INTERVAL)
    assert w.pool.submitted == 2 and w.media.hidden["p"] is False
    w.clock.now += 0.05  # classification time
    await w.pool.release()
    assert w.media.hidden["p"] is True
    assert ("w", "partner_hidden", NUDITY) in w.told
    assert w.metric("sfu_moderation_hide_seconds_count") == 1
    assert w.metric("sfu_moderation_hide_seconds_sum") == pytest.approx(0.05)


async def test_a_full_queue_drops_and_the_prescreen_fails_open_after_its_timeout(world, caplog) -> None:
    w = world(capacity=0)
    w.media.pictures["p"] = clean()
    w.screening.watch("w", "p")
    await settle()
    assert w.pool.submitted == 0 and w.media.hidden["p"] is True
    assert w.metric("sfu_moderation_samples_dropped_total", why="queue_full") == 1
    await w.advance(RETRY)  # retried soon while the new partner waits
    assert w.metric("sfu_moderation_samples_dropped_total", why="queue_full") == 2
    with caplog.at_level(logging.WARNING, logger="sfu.moderation.screening"):
        await w.advance(w.screening.prescreen_timeout)
    assert w.media.hidden["p"] is False
    assert w.metric("sfu_moderation_prescreen_timeouts_total") == 1
    assert any("shown unchecked" in r.getMessage() for r in caplog.records)
    # Interval samples go on (and are dropped and counted while the classifier is overloaded).
    drops = w.metric("sfu_moderation_samples_dropped_total", why="queue_full")
    await w.advance(INTERVAL)
    assert w.metric("sfu_moderation_samples_dropped_total", why="queue_full") == drops + 1


async def test_failed_samples_are_retried_while_prescreening(world) -> None:
    w = world()
    w.media.pictures["p"] = None  # no decodable picture yet
    w.screening.watch("w", "p")
    await settle()
    assert w.metric("sfu_moderation_samples_dropped_total", why="no_picture") == 1
    w.media.pictures["p"] = clean()
    await w.advance(RETRY)
    await w.pool.release(fail=True)
    assert w.metric("sfu_moderation_samples_dropped_total", why="failed") == 1 and w.media.hidden["p"]
    await w.advance(RETRY)
    await w.pool.release()
    assert w.media.hidden["p"] is False and w.metric("sfu_moderation_prescreen_timeouts_total") == 0


async def test_someone_without_video_is_not_held_for_a_picture_that_cannot_come(world) -> None:
    w = world()
    w.media.audio_only.add("p")  # only possible without the camera rule
    w.screening.watch("w", "p")
    await settle()
    assert w.media.hidden["p"] is False and w.pool.submitted == 0
    assert w.metric("sfu_moderation_prescreen_timeouts_total") == 0


async def test_a_verdict_from_an_earlier_conversation_does_not_show_the_next_one(world) -> None:
    w = world()
    w.media.pictures["p"] = clean()
    w.screening.watch("w", "p")
    await settle()
    w.screening.watch("w", None)  # w pressed Next before the verdict
    w.screening.watch("x", "p")  # p's next partner
    await settle()
    first, second = w.pool.pending
    w.pool.pending = [first]
    await w.pool.release()
    assert w.media.hidden["p"] is True  # still waiting for its own verdict
    w.pool.pending = [second]
    await w.pool.release()
    assert w.media.hidden["p"] is False


async def test_a_flag_after_the_conversation_ended_is_still_reported(world) -> None:
    w = world(moderation_prescreen=False)
    w.media.pictures["p"] = flagged()
    w.screening.watch("w", "p")
    assert w.media.hidden == {"p": False}  # without pre-screen, shown at once
    await settle()
    w.screening.watch("w", None)
    await w.pool.release()
    await asyncio.wait_for(w.reported.wait(), 10)
    assert [r[0] for r in w.reports] == ["p"] and w.told == []  # nobody to hide it from


async def test_nobody_watched_is_not_sampled(world) -> None:
    w = world()
    w.media.pictures["p"] = clean()
    w.screening.watch("w", "p")
    await settle()
    await w.pool.release()
    w.screening.watch("w", None)
    await w.advance(INTERVAL * 5)
    assert w.pool.submitted == 1


async def test_face_required_hides_after_misses_without_a_strike_and_shows_again(world) -> None:
    w = world(require_face=True)
    w.media.pictures["p"] = clean()  # no face
    w.screening.watch("w", "p")
    await settle()
    await w.pool.release()
    assert w.media.hidden["p"] is False  # one miss is not enough
    await w.advance(INTERVAL)
    await w.pool.release()
    assert w.media.hidden["p"] is True and w.screening.hidden_reason("p") == NO_FACE
    assert w.told == [("p", "video_hidden", NO_FACE), ("w", "partner_hidden", NO_FACE)]
    w.media.pictures["p"] = with_face()
    await w.advance(INTERVAL)  # still sampled while hidden for no face
    await w.pool.release()
    assert w.media.hidden["p"] is False
    assert w.told[2:] == [("p", "video_shown", None), ("w", "partner_shown", None)]
    assert w.reports == [] and w.metric("sfu_moderation_videos_hidden_total", reason=NO_FACE) == 1
