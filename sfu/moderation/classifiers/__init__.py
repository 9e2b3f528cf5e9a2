"""Picture classifiers for automatic moderation, and the factory that picks one from settings.

``--moderation-classifier``:

- ``auto`` (default): NudeNet when the optional extra is installed, else none;
- ``nudenet``: NudeNet's detector (``pip install 'sfu[nudenet]'``, AGPL-3.0, see
  :mod:`.nudenet`); refusing to start when it is not installed;
- ``onnx``: an operator-supplied ONNX classifier (:mod:`.onnx_model`);
- ``none``: no automatic detection;
- ``marker``: a deterministic test classifier (:mod:`.marker`), for end-to-end tests.

:func:`plan_classifier` checks the settings and says what will run (for the start-up log line)
without loading any model; :func:`build_classifier` loads it, once per sampler worker process.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from .base import (
    Classifier,
    ClassifierError,
    ClassifierUnavailable,
    FlagRule,
    Verdict,
    check_rgb,
)
from .marker import MarkerClassifier, MarkerSettings
from .nudenet import INSTALL_HINT, NudeNetSettings
from .onnx_model import OnnxSettings

__all__ = [
    "KINDS",
    "Classifier",
    "ClassifierError",
    "ClassifierPlan",
    "ClassifierSettings",
    "ClassifierUnavailable",
    "FlagRule",
    "Verdict",
    "build_classifier",
    "check_rgb",
    "nudenet_installed",
    "plan_classifier",
]

KINDS = ("auto", "nudenet", "onnx", "none", "marker")

AdapterSettings = NudeNetSettings | OnnxSettings | MarkerSettings | None


@dataclass(frozen=True)
class ClassifierSettings:
    """Classifier choice and tuning, as the server's configuration gives them.

    ``None`` means "the adapter's default" (NudeNet: exposed genitalia, female breast, anus and
    buttocks at 0.5; faces at 0.3). The ONNX adapter has no defaults for labels: the operator
    names the model's labels and which of them flag."""

    kind: str = "auto"
    threshold: float | None = None
    flag_labels: tuple[str, ...] | None = None
    label_thresholds: Mapping[str, float] = field(default_factory=dict)
    face_labels: tuple[str, ...] | None = None
    face_threshold: float | None = None
    threads: int = 1
    """onnxruntime threads per worker process."""
    # Operator-supplied ONNX model only:
    model_path: str | None = None
    labels: tuple[str, ...] = ()
    input_width: int = 224
    input_height: int = 224
    layout: str = "NCHW"
    mean: tuple[float, float, float] = (0.0, 0.0, 0.0)
    std: tuple[float, float, float] = (1.0, 1.0, 1.0)
    channel_order: str = "RGB"
    activation: str = "none"


@dataclass(frozen=True)
class ClassifierPlan:
    """What will classify pictures: the resolved kind, the adapter's settings (picklable, sent to
    worker processes), the picture size to downscale samples to, and a line for the log."""

    kind: str
    """``nudenet``, ``onnx``, ``marker`` or ``none``."""
    description: str
    adapter: AdapterSettings = None
    input_side: int = 0
    """Samples are downscaled to fit in ``input_side`` x ``input_side`` before classification."""

    @property
    def enabled(self) -> bool:
        return self.kind != "none"


def nudenet_installed() -> bool:
    """True when both ``nudenet`` and ``onnxruntime`` can be imported (nothing is imported)."""
    return all(importlib.util.find_spec(m) is not None for m in ("nudenet", "onnxruntime"))


def plan_classifier(settings: ClassifierSettings) -> ClassifierPlan:
    """Check ``settings`` and decide what runs, without loading a model.

    Raises :class:`ClassifierError` (or :class:`ClassifierUnavailable` for ``nudenet`` when it is
    not installed) with a message fit for the operator."""
    if settings.kind not in KINDS:
        raise ClassifierError(
            f"unknown moderation classifier {settings.kind!r}; choose one of {', '.join(KINDS)}"
        )
    if settings.threads < 1:
        raise ClassifierError(f"classifier threads must be at least 1, got {settings.threads}")
    kind = settings.kind
    if kind == "auto":
        if not nudenet_installed():
            return ClassifierPlan("none", f"none (auto: NudeNet is not installed; {INSTALL_HINT})")
        kind = "nudenet"
    if kind == "none":
        return ClassifierPlan("none", "none (automatic detection off)")
    if kind == "nudenet":
        return _plan_nudenet(settings, auto=settings.kind == "auto")
    if kind == "onnx":
        return _plan_onnx(settings)
    return _plan_marker(settings)


def build_classifier(plan: ClassifierPlan) -> Classifier:
    """Load the classifier ``plan`` describes (in the process that will use it)."""
    if isinstance(plan.adapter, NudeNetSettings):
        from .nudenet import NudeNetClassifier

        return NudeNetClassifier(plan.adapter)
    if isinstance(plan.adapter, OnnxSettings):
        from .onnx_model import OnnxClassifier

        return OnnxClassifier(plan.adapter)
    if isinstance(plan.adapter, MarkerSettings):
        return MarkerClassifier(plan.adapter)
    raise ClassifierError(f"no classifier to build for {plan.kind!r}")


def _rule(
    settings: ClassifierSettings,
    flag_labels: frozenset[str],
    threshold: float,
    face_labels: frozenset[str],
    face_threshold: float,
) -> FlagRule:
    return FlagRule(
        flag_labels=flag_labels if settings.flag_labels is None else frozenset(settings.flag_labels),
        threshold=threshold if settings.threshold is None else settings.threshold,
        thresholds=dict(settings.label_thresholds),
        face_labels=face_labels if settings.face_labels is None else frozenset(settings.face_labels),
        face_threshold=face_threshold if settings.face_threshold is None else settings.face_threshold,
    )


def _describe_rule(rule: FlagRule) -> str:
    flags = ", ".join(
        f"{label}>={rule.thresholds.get(label, rule.threshold):g}"
        for label in sorted(rule.flag_labels)
    )
    return f"flags {flags}"


def _plan_nudenet(settings: ClassifierSettings, *, auto: bool) -> ClassifierPlan:
    from . import nudenet

    path = nudenet.model_path()  # raises ClassifierUnavailable
    if importlib.util.find_spec("onnxruntime") is None:
        raise ClassifierUnavailable(f"onnxruntime is not installed: {INSTALL_HINT}")
    rule = _rule(
        settings,
        nudenet.DEFAULT_FLAG_LABELS,
        nudenet.DEFAULT_THRESHOLD,
        nudenet.FACE_LABELS,
        nudenet.DEFAULT_FACE_THRESHOLD,
    )
    rule.check_labels(nudenet.LABELS)
    try:
        version = importlib.metadata.version("nudenet")
    except importlib.metadata.PackageNotFoundError:
        version = "?"
    how = "auto: installed" if auto else "chosen"
    return ClassifierPlan(
        "nudenet",
        f"nudenet {version} ({how}; AGPL-3.0; model {path}; {_describe_rule(rule)}; "
        f"{settings.threads} thread(s) per worker)",
        NudeNetSettings(rule=rule, threads=settings.threads),
        nudenet.INPUT_SIZE,
    )


def _plan_onnx(settings: ClassifierSettings) -> ClassifierPlan:
    if importlib.util.find_spec("onnxruntime") is None:
        raise ClassifierUnavailable("onnxruntime is not installed: pip install onnxruntime")
    if not settings.flag_labels:
        raise ClassifierError("an ONNX moderation model needs the labels that flag a picture")
    rule = _rule(settings, frozenset(), 0.5, frozenset(), 0.5)
    adapter = OnnxSettings(
        model_path=settings.model_path or "",
        labels=tuple(settings.labels),
        rule=rule,
        input_width=settings.input_width,
        input_height=settings.input_height,
        layout=settings.layout,
        mean=settings.mean,
        std=settings.std,
        channel_order=settings.channel_order,
        activation=settings.activation,
        threads=settings.threads,
    )
    problems = adapter.problems()
    if adapter.model_path and not Path(adapter.model_path).is_file():
        problems.append(f"model file not found: {adapter.model_path}")
    if problems:
        raise ClassifierError("moderation model settings: " + "; ".join(problems))
    return ClassifierPlan(
        "onnx",
        f"onnx ({adapter.model_path}; {adapter.input_width}x{adapter.input_height} "
        f"{adapter.layout}; {len(adapter.labels)} labels; {_describe_rule(rule)})",
        adapter,
        max(adapter.input_width, adapter.input_height),
    )


def _plan_marker(settings: ClassifierSettings) -> ClassifierPlan:
    default = MarkerSettings().rule
    rule = _rule(
        settings, default.flag_labels, default.threshold, default.face_labels, default.face_threshold
    )
    adapter = MarkerSettings(rule=rule)
    MarkerClassifier(adapter)  # checks the labels
    return ClassifierPlan(
        "marker",
        f"marker (test classifier, no model: {_describe_rule(rule)} of the picture magenta)",
        adapter,
        160,
    )
