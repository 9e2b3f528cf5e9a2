"""Evidence pictures taken from the server's own copy of a publisher's video.

Nothing is recorded until a report asks: then the publisher's current picture is decoded (a
keyframe is requested when the video is forwarded encoded) a few times, a little apart, and each is
encoded as a bounded JPEG in a worker thread, never on the event loop.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .evidence_image import encode_jpeg, jpeg_size
from .records import EvidenceImage

if TYPE_CHECKING:
    from ..media.source import Source
    from .settings import ModerationSettings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CapturePlan:
    #: Pictures to take at most.
    count: int = 3
    #: Seconds between two pictures (more than a decoded keyframe stays "current": 0.5 s).
    spacing: float = 1.0
    #: Seconds to wait for each picture (a keyframe may have to be asked for).
    timeout: float = 3.0
    max_side: int = 640
    quality: int = 80

    @classmethod
    def from_settings(cls, settings: ModerationSettings) -> CapturePlan:
        return cls(count=settings.evidence_frames, max_side=settings.evidence_max_side,
                   quality=settings.evidence_jpeg_quality)


async def capture_pictures(
    source: Source | None,
    plan: CapturePlan,
    clock: Callable[[], float] = time.time,
) -> list[EvidenceImage]:
    """Up to ``plan.count`` pictures of ``source`` (a video source), oldest first; fewer (or none) when
    the video stops or never decodes in time."""
    pictures: list[EvidenceImage] = []
    if source is None:
        return pictures
    for index in range(plan.count):
        if index:
            await asyncio.sleep(plan.spacing)
        frame = await source.picture(plan.timeout)
        if frame is None:
            break
        captured_at = clock()
        try:
            jpeg = await asyncio.to_thread(encode_jpeg, frame, quality=plan.quality, max_width=plan.max_side,
                                           max_height=plan.max_side)
            width, height = jpeg_size(jpeg)
        except (ValueError, RuntimeError) as exc:
            log.warning("evidence picture of %s not encoded: %s", source.id, exc)
            break
        pictures.append(EvidenceImage(jpeg=jpeg, captured_at=captured_at, width=width, height=height))
    return pictures
