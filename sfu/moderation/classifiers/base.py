"""The classifier interface: an RGB picture in, a :class:`Verdict` out.

Every adapter (NudeNet, an operator-supplied ONNX model, the synthetic marker used by tests) turns
a picture into scores per label, then one :class:`FlagRule` decides: the picture is *flagged* when a
label of the rule's flagged set scores at least its threshold, and it *shows a face* when a face
label scores at least the face threshold (for an optional "face required" policy). The rule is a
setting of the adapter, so thresholds can be tuned without touching the model code.

Classifiers run in worker processes (see :mod:`sfu.moderation.sampler`): verdicts are small frozen
dataclasses that pickle cheaply, and classifiers must not touch the event loop.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np

__all__ = [
    "Classifier",
    "ClassifierError",
    "ClassifierUnavailable",
    "FlagRule",
    "Verdict",
    "check_rgb",
]


class ClassifierError(ValueError):
    """A classifier cannot be built from its settings (bad model file, labels, sizes...)."""


class ClassifierUnavailable(ClassifierError):
    """The package a classifier needs is not installed."""


@dataclass(frozen=True)
class Verdict:
    """What a classifier says about one picture."""

    scores: Mapping[str, float]
    """Best score per label the classifier reported (labels it did not see may be absent)."""
    flagged: bool
    """True when a flagged label scored at least its threshold."""
    reason: str | None = None
    """The flagged label with the highest score, when ``flagged``."""
    reason_score: float = 0.0
    """That label's score (0.0 when not flagged)."""
    face: bool = False
    """True when a face label scored at least the face threshold."""

    def top(self, n: int = 3) -> list[tuple[str, float]]:
        """The ``n`` best-scoring labels, best first (for logs and evidence metadata)."""
        return sorted(self.scores.items(), key=lambda kv: (-kv[1], kv[0]))[:n]

    def to_json(self) -> dict[str, object]:
        """A JSON-ready summary (scores rounded to 3 decimals)."""
        return {
            "flagged": self.flagged,
            "reason": self.reason,
            "reason_score": round(self.reason_score, 3),
            "face": self.face,
            "scores": {k: round(v, 3) for k, v in sorted(self.scores.items())},
        }


@dataclass(frozen=True)
class FlagRule:
    """Which labels flag a picture, from which score, and which labels mean "a face is visible".

    ``thresholds`` overrides ``threshold`` for single labels (e.g. a stricter score for a label a
    model over-reports)."""

    flag_labels: frozenset[str]
    threshold: float = 0.5
    thresholds: Mapping[str, float] = field(default_factory=dict)
    face_labels: frozenset[str] = frozenset()
    face_threshold: float = 0.5

    def __post_init__(self) -> None:
        for name, value in [
            ("threshold", self.threshold),
            ("face_threshold", self.face_threshold),
            *((f"thresholds[{k}]", v) for k, v in self.thresholds.items()),
        ]:
            if not 0.0 <= value <= 1.0:
                raise ClassifierError(f"{name} must be between 0 and 1, got {value}")
        stray = set(self.thresholds) - set(self.flag_labels)
        if stray:
            raise ClassifierError(f"thresholds given for labels that do not flag: {sorted(stray)}")

    def check_labels(self, known: Iterable[str]) -> None:
        """Raise :class:`ClassifierError` if the rule names labels the model does not have."""
        known_set = set(known)
        unknown = (set(self.flag_labels) | set(self.face_labels)) - known_set
        if unknown:
            raise ClassifierError(
                f"unknown labels {sorted(unknown)}; the model's labels are {sorted(known_set)}"
            )

    def judge(self, scores: Mapping[str, float]) -> Verdict:
        """Apply the rule to per-label scores."""
        reason: str | None = None
        best = 0.0
        for label in sorted(self.flag_labels):
            score = scores.get(label, 0.0)
            if score >= self.thresholds.get(label, self.threshold) and (
                reason is None or score > best
            ):
                reason, best = label, score
        face = any(scores.get(label, 0.0) >= self.face_threshold for label in self.face_labels)
        return Verdict(
            scores=dict(scores),
            flagged=reason is not None,
            reason=reason,
            reason_score=best,
            face=face,
        )


@runtime_checkable
class Classifier(Protocol):
    """Anything with ``classify``; ``name`` says what it is in logs and evidence metadata."""

    name: str

    def classify(self, rgb: np.ndarray) -> Verdict:
        """Classify an H x W x 3 uint8 RGB picture. Must be safe to call repeatedly."""
        ...


def check_rgb(rgb: object) -> np.ndarray:
    """Return ``rgb`` if it is an H x W x 3 uint8 array of at least 2x2 pixels, else raise
    ``TypeError`` (not an array) or ``ValueError`` (wrong shape or type) saying what was wrong."""
    if not isinstance(rgb, np.ndarray):
        raise TypeError(f"picture must be a numpy array, got {type(rgb).__name__}")
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"picture must be H x W x 3 uint8 RGB, got {rgb.shape} {rgb.dtype}")
    if rgb.shape[0] < 2 or rgb.shape[1] < 2:
        raise ValueError(f"picture too small: {rgb.shape[1]}x{rgb.shape[0]}")
    return rgb
