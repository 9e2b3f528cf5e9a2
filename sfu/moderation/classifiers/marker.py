"""A deterministic test classifier: flags pictures showing a large saturated magenta area.

Automatic detection is tested end to end without a model and without explicit pictures: a test
client paints a large magenta rectangle into the video it sends (:func:`paint` on an RGB picture,
:func:`paint_yuv420p` on the yuv420p background the headless client's frames are drawn on), the
server samples and classifies its copy of the stream with this classifier, and the policy reacts.
A cyan rectangle stands for a face, for tests of the "face required" rule.

Scores are the fraction of the picture covered by the colour (with tolerance for lossy video
coding); by default a picture is flagged from 20% magenta and shows a face from 10% cyan. The
synthetic video of the headless client, Chromium's fake camera and ordinary pictures have no such
saturated areas, so they stay clean. No machine learning; select it with
``--moderation-classifier marker`` (tests only).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .base import FlagRule, Verdict, check_rgb

__all__ = [
    "FACE_COLOUR",
    "FACE_LABEL",
    "MARKER_COLOUR",
    "MARKER_LABEL",
    "MarkerClassifier",
    "MarkerSettings",
    "paint",
    "paint_yuv420p",
]

MARKER_LABEL = "MARKER"
FACE_LABEL = "MARKER_FACE"
MARKER_COLOUR = (255, 0, 255)
"""Saturated magenta."""
FACE_COLOUR = (0, 255, 255)
"""Saturated cyan."""

DEFAULT_BOX = (0.1, 0.3, 0.9, 0.95)
"""Where :func:`paint` draws by default, as fractions (left, top, right, bottom): below the
headless client's stamp band (the top quarter), about half of the picture."""

_HIGH = 190  # a saturated channel after lossy coding stays above this
_LOW = 80  # an absent channel stays below this


@dataclass(frozen=True)
class MarkerSettings:
    rule: FlagRule = field(
        default_factory=lambda: FlagRule(
            flag_labels=frozenset({MARKER_LABEL}),
            threshold=0.2,
            face_labels=frozenset({FACE_LABEL}),
            face_threshold=0.1,
        )
    )


class MarkerClassifier:
    """Scores = fraction of magenta (``MARKER``) and cyan (``MARKER_FACE``) pixels."""

    name = "marker"

    def __init__(self, settings: MarkerSettings = MarkerSettings()) -> None:
        settings.rule.check_labels({MARKER_LABEL, FACE_LABEL})
        self.settings = settings

    def classify(self, rgb: np.ndarray) -> Verdict:
        return self.settings.rule.judge(coverage(rgb))


def coverage(rgb: np.ndarray) -> dict[str, float]:
    """Fraction of the picture that is marker magenta and face cyan."""
    check_rgb(rgb)
    r = rgb[:, :, 0]
    g = rgb[:, :, 1]
    b = rgb[:, :, 2]
    magenta = (r > _HIGH) & (b > _HIGH) & (g < _LOW)
    cyan = (g > _HIGH) & (b > _HIGH) & (r < _LOW)
    total = float(r.size)
    return {
        MARKER_LABEL: float(np.count_nonzero(magenta)) / total,
        FACE_LABEL: float(np.count_nonzero(cyan)) / total,
    }


def _pixel_box(width: int, height: int, box: tuple[float, float, float, float]) -> tuple[int, ...]:
    left, top, right, bottom = box
    if not (0.0 <= left < right <= 1.0 and 0.0 <= top < bottom <= 1.0):
        raise ValueError(f"box must be fractions (left, top, right, bottom), got {box}")
    # Even edges, so the box covers whole 2x2 chroma blocks in 4:2:0 video.
    x0, x1 = (int(v * width) // 2 * 2 for v in (left, right))
    y0, y1 = (int(v * height) // 2 * 2 for v in (top, bottom))
    return x0, y0, x1, y1


def paint(
    rgb: np.ndarray,
    colour: tuple[int, int, int] = MARKER_COLOUR,
    box: tuple[float, float, float, float] = DEFAULT_BOX,
) -> None:
    """Fill ``box`` (fractions of the picture) of an H x W x 3 RGB array with ``colour``, in place."""
    check_rgb(rgb)
    x0, y0, x1, y1 = _pixel_box(rgb.shape[1], rgb.shape[0], box)
    rgb[y0:y1, x0:x1] = np.asarray(colour, dtype=np.uint8)


def yuv_of(colour: tuple[int, int, int]) -> tuple[int, int, int]:
    """Limited-range BT.601 (Y, Cb, Cr) of an RGB colour, as video decoders convert it back."""
    r, g, b = (c / 255.0 for c in colour)
    y = 16 + 65.481 * r + 128.553 * g + 24.966 * b
    cb = 128 - 37.797 * r - 74.203 * g + 112.0 * b
    cr = 128 + 112.0 * r - 93.786 * g - 18.214 * b
    return round(y), round(cb), round(cr)


def paint_yuv420p(
    buf: np.ndarray,
    width: int,
    height: int,
    colour: tuple[int, int, int] = MARKER_COLOUR,
    box: tuple[float, float, float, float] = DEFAULT_BOX,
) -> None:
    """Fill ``box`` of a yuv420p picture held as the (H*3/2) x W array used by
    ``VideoFrame.from_ndarray(..., format="yuv420p")`` (and by the headless client's
    ``make_background``/``make_frame``), in place."""
    if buf.dtype != np.uint8 or buf.shape != (height * 3 // 2, width) or width % 2 or height % 2:
        raise ValueError(f"expected a ({height * 3 // 2}, {width}) uint8 yuv420p array")
    x0, y0, x1, y1 = _pixel_box(width, height, box)
    y, cb, cr = yuv_of(colour)
    buf[y0:y1, x0:x1] = y
    chroma = buf[height:].reshape(2, height // 2, width // 2)
    chroma[0, y0 // 2 : y1 // 2, x0 // 2 : x1 // 2] = cb
    chroma[1, y0 // 2 : y1 // 2, x0 // 2 : x1 // 2] = cr
