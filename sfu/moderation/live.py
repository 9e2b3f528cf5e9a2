"""Automatic detection for a running server: the classifier chosen from the settings, its worker
pool, and the :class:`~sfu.moderation.screening.Screening` of everybody's video.

The server builds one :class:`LiveModeration` with its media router, a way to send a moderation
message to a participant and its metrics registry, then ``await start()`` / ``await stop()``. Where
automatic reports go is ``on_flagged``: the server sets it to :func:`report_detections` once its
moderation service is open, so a flagged sample is stored with its picture, counts a strike and may ban.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from prometheus_client import CollectorRegistry

from .classifiers import ClassifierPlan, ClassifierSettings, Verdict, plan_classifier
from .identity import ModerationIdentity
from .records import EvidenceImage
from .sampler import ClassifierPool
from .screening import NUDITY, Notify, OnFlagged, ScreenedMedia, Screening
from .screening_metrics import ScreeningMetrics
from .settings import DEFAULT_FACE_LABELS, DEFAULT_FLAG_LABELS, ModerationSettings

if TYPE_CHECKING:
    from .service import ModerationService

__all__ = ["LiveModeration", "classifier_settings", "report_detections", "screen_local"]

log = logging.getLogger(__name__)

_DEFAULT_THRESHOLD = ModerationSettings.__dataclass_fields__["moderation_threshold"].default
_DEFAULT_FACE_THRESHOLD = ModerationSettings.__dataclass_fields__["moderation_face_threshold"].default


def classifier_settings(settings: ModerationSettings) -> ClassifierSettings:
    """The classifier part of the moderation settings. Labels and thresholds left at their defaults
    mean "the adapter's own defaults" (NudeNet's labels are the defaults; the test classifier has
    its own)."""
    return ClassifierSettings(
        kind=settings.moderation_classifier,
        threshold=None if settings.moderation_threshold == _DEFAULT_THRESHOLD else settings.moderation_threshold,
        flag_labels=None if settings.moderation_flag_labels == DEFAULT_FLAG_LABELS else tuple(settings.moderation_flag_labels),
        face_labels=None if settings.moderation_face_labels == DEFAULT_FACE_LABELS else tuple(settings.moderation_face_labels),
        face_threshold=(
            None if settings.moderation_face_threshold == _DEFAULT_FACE_THRESHOLD else settings.moderation_face_threshold
        ),
        model_path=str(settings.moderation_model) if settings.moderation_model is not None else None,
        labels=tuple(settings.moderation_model_labels),
        input_width=settings.moderation_model_input_size,
        input_height=settings.moderation_model_input_size,
    )


class LocalMedia(Protocol):
    def get(self, participant: str) -> Any:
        """The participant's media when served by this process, else ``None``."""


def screen_local(watch: Callable[[str, str | None], None], media: LocalMedia) -> Callable[[str, str | None], None]:
    """The router's ``on_watch`` hook for ``watch`` (:meth:`Screening.watch`), leaving out publishers
    served by other processes: their own process screens them, and the pipe carries their hiding."""

    def on_watch(watcher: str, publisher: str | None) -> None:
        watch(watcher, publisher if publisher is None or media.get(publisher) is not None else None)

    return on_watch


def report_detections(
    service: ModerationService, identity_of: Callable[[str], ModerationIdentity | None]
) -> OnFlagged:
    """``on_flagged`` storing an automatic report, a strike and maybe a ban with
    :meth:`sfu.moderation.service.ModerationService.automatic_detection`; ``identity_of`` maps a
    participant id to their moderation identity (``None``: unknown, nothing stored)."""

    async def on_flagged(publisher: str, verdict: Verdict, evidence: Sequence[EvidenceImage]) -> None:
        identity = identity_of(publisher)
        if identity is None:
            log.warning("moderation: no identity for %s; automatic report not stored", publisher)
            return
        await service.automatic_detection(identity, dict(verdict.scores), evidence, reason=NUDITY)

    return on_flagged


class LiveModeration:
    """The classifier pool and the screening of a server's participants (nothing without a classifier)."""

    def __init__(
        self,
        settings: ModerationSettings,
        media: ScreenedMedia,
        *,
        notify: Notify,
        registry: CollectorRegistry,
        on_flagged: OnFlagged | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.media = media
        self.notify = notify
        self.registry = registry
        self.on_flagged = on_flagged
        self.clock = clock
        #: What classifies pictures (raises ClassifierError now for unusable settings).
        self.plan: ClassifierPlan = plan_classifier(classifier_settings(settings))
        self.pool: ClassifierPool | None = None
        self.screening: Screening | None = None

    @property
    def enabled(self) -> bool:
        return self.plan.enabled

    async def start(self) -> Screening | None:
        """Start the classifier workers (each loads the model) and the sampling; returns the
        screening (``None`` without a classifier). Hook it to the router: ``router.on_watch =
        screening.watch``."""
        log.info("moderation classifier: %s", self.plan.description)
        if not self.plan.enabled or self.screening is not None:
            return self.screening
        pool = ClassifierPool(
            self.plan, workers=self.settings.moderation_workers, queue_limit=self.settings.moderation_queue
        )
        await pool.start()
        self.pool = pool
        self.screening = Screening(
            self.settings, pool, self.media, notify=self.notify, on_flagged=self._flagged,
            metrics=ScreeningMetrics(self.registry), clock=self.clock,
        )
        self.screening.start()
        log.info(
            "automatic detection on: a sample at every pairing and every %g s, pre-screen %s, face %s",
            self.settings.moderation_interval, "on" if self.settings.moderation_prescreen else "off",
            "required" if self.settings.require_face else "not required",
        )
        return self.screening

    async def _flagged(self, publisher: str, verdict: Verdict, evidence: Sequence[EvidenceImage]) -> None:
        if self.on_flagged is not None:  # looked up at each detection: may be set after start
            result = self.on_flagged(publisher, verdict, evidence)
            if result is not None:
                await result

    async def stop(self) -> None:
        screening, self.screening = self.screening, None
        if screening is not None:
            await screening.close()
        pool, self.pool = self.pool, None
        if pool is not None:
            await pool.close()
