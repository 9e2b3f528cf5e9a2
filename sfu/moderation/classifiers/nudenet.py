"""NudeNet adapter: the 320n ONNX detector shipped inside the ``nudenet`` wheel, run with onnxruntime.

**Licence: AGPL-3.0.** The NudeNet repository's LICENSE, and the LICENSE file inside the 3.4.x
wheel, are the GNU Affero General Public License v3 (the wheel's metadata says MIT; the maintainer
says v3 must be AGPL because it is based on YOLOv8). An operator who installs the optional extra
(``pip install 'sfu[nudenet]'``) and runs it as a network service takes on the AGPL's duties, such
as offering the source to users. sfu itself does not depend on it: nothing here is imported unless
this classifier is chosen, and nothing is downloaded at run time.

The model: input ``images`` [batch, 3, 320, 320] RGB scaled to 0..1; output [batch, 22, anchors],
4 box values then 18 class scores per anchor. We reproduce the package's own preprocessing (the
picture is scaled so its longer side is 320 and padded with black at the right/bottom to a square)
without OpenCV, and keep per label the best score of the anchors whose top class is that label, as
the package's ``NudeDetector.detect`` does (boxes and non-maximum suppression are not needed to
decide whether a label is present). Channels are fed in RGB order, the order YOLOv8 models are
trained in; the package's own ``detect`` swaps channels twice for a picture read with OpenCV and so
feeds BGR, which gives somewhat lower scores (a portrait's face: 0.61 there, 0.81 here).
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .base import ClassifierError, ClassifierUnavailable, FlagRule, Verdict, check_rgb
from .image import VideoReformatter, resize_rgb

__all__ = [
    "DEFAULT_FLAG_LABELS",
    "FACE_LABELS",
    "LABELS",
    "NudeNetClassifier",
    "NudeNetSettings",
    "model_path",
]

LABELS: tuple[str, ...] = (
    "FEMALE_GENITALIA_COVERED",
    "FACE_FEMALE",
    "BUTTOCKS_EXPOSED",
    "FEMALE_BREAST_EXPOSED",
    "FEMALE_GENITALIA_EXPOSED",
    "MALE_BREAST_EXPOSED",
    "ANUS_EXPOSED",
    "FEET_EXPOSED",
    "BELLY_COVERED",
    "FEET_COVERED",
    "ARMPITS_COVERED",
    "ARMPITS_EXPOSED",
    "FACE_MALE",
    "BELLY_EXPOSED",
    "MALE_GENITALIA_EXPOSED",
    "ANUS_COVERED",
    "FEMALE_BREAST_COVERED",
    "BUTTOCKS_COVERED",
)
"""Class order of the 320n model's output (nudenet 3.4.x)."""

DEFAULT_FLAG_LABELS: frozenset[str] = frozenset(
    {
        "FEMALE_GENITALIA_EXPOSED",
        "MALE_GENITALIA_EXPOSED",
        "FEMALE_BREAST_EXPOSED",
        "ANUS_EXPOSED",
        "BUTTOCKS_EXPOSED",
    }
)
"""What a random video chat's rules forbid. Covered parts, bellies, armpits, feet and a bare male
chest are ordinary in a video call and never flag by default."""

FACE_LABELS: frozenset[str] = frozenset({"FACE_FEMALE", "FACE_MALE"})

DEFAULT_THRESHOLD = 0.5
"""Flag from a score of 0.5. The package lists detections from 0.2, but at that level skin-coloured
areas (arms, walls, bedding) produce false positives, and a positive sample hides a person's video
and counts a strike against them, so each sample must be fairly sure. The cost is recall per
picture (one published test on 10,000 explicit images: 60.6% at 0.2, 37.8% at 0.5); a
conversation is sampled repeatedly, so content that stays on camera is caught within a few samples.
"""

DEFAULT_FACE_THRESHOLD = 0.3
"""A face counts from 0.3: lenient, because missing a real face would refuse an honest user under
the optional "face required" rule, while the rule only has to catch cameras showing no face."""

INPUT_SIZE = 320
_MODEL_FILE = "320n.onnx"
_BOX_VALUES = 4

INSTALL_HINT = "pip install 'sfu[nudenet]' (nudenet and onnxruntime; AGPL-3.0)"


@dataclass(frozen=True)
class NudeNetSettings:
    """Settings of the NudeNet adapter."""

    rule: FlagRule = field(
        default_factory=lambda: FlagRule(
            flag_labels=DEFAULT_FLAG_LABELS,
            threshold=DEFAULT_THRESHOLD,
            face_labels=FACE_LABELS,
            face_threshold=DEFAULT_FACE_THRESHOLD,
        )
    )
    threads: int = 1
    """onnxruntime intra-op threads per classifier (one per worker process keeps media cores free)."""


def model_path() -> Path:
    """Where the installed ``nudenet`` package keeps its model, without importing the package
    (which would pull in OpenCV). Raises :class:`ClassifierUnavailable` when not installed."""
    spec = importlib.util.find_spec("nudenet")
    if spec is None or not spec.submodule_search_locations:
        raise ClassifierUnavailable(f"NudeNet is not installed: {INSTALL_HINT}")
    for folder in spec.submodule_search_locations:
        candidate = Path(folder) / _MODEL_FILE
        if candidate.is_file():
            return candidate
    raise ClassifierUnavailable(
        f"the installed nudenet package has no {_MODEL_FILE} (expected nudenet>=3.4): {INSTALL_HINT}"
    )


def load_onnxruntime() -> Any:
    """Import onnxruntime, or raise :class:`ClassifierUnavailable` with the install hint."""
    try:
        import onnxruntime
    except ImportError as exc:
        raise ClassifierUnavailable(f"onnxruntime is not installed: {INSTALL_HINT}") from exc
    return onnxruntime


def session_options(ort: Any, threads: int) -> Any:
    """onnxruntime session options for a sampler worker: ``threads`` intra-op threads, quiet."""
    if threads < 1:
        raise ClassifierError(f"threads must be at least 1, got {threads}")
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3  # errors only
    return options


class NudeNetClassifier:
    """Classifies pictures with NudeNet's 320n detector. Loading takes ~0.1 s; build it once per
    worker process and reuse it."""

    name = "nudenet"

    def __init__(self, settings: NudeNetSettings = NudeNetSettings()) -> None:
        settings.rule.check_labels(LABELS)
        self.settings = settings
        self.path = model_path()
        ort = load_onnxruntime()
        try:
            self._session = ort.InferenceSession(
                str(self.path),
                sess_options=session_options(ort, settings.threads),
                providers=["CPUExecutionProvider"],
            )
        except Exception as exc:  # onnxruntime raises its own exception types
            raise ClassifierError(f"cannot load NudeNet model {self.path}: {exc}") from exc
        inputs = self._session.get_inputs()
        outputs = self._session.get_outputs()
        if len(inputs) != 1 or len(outputs) < 1:
            raise ClassifierError(f"unexpected NudeNet model interface in {self.path}")
        self._input = inputs[0].name
        self._reformatter = VideoReformatter()
        channels = outputs[0].shape[1] if len(outputs[0].shape) == 3 else None
        if isinstance(channels, int) and channels != _BOX_VALUES + len(LABELS):
            raise ClassifierError(
                f"NudeNet model {self.path} has {channels} output channels, expected "
                f"{_BOX_VALUES + len(LABELS)} (nudenet 3.4 labels)"
            )

    def classify(self, rgb: np.ndarray) -> Verdict:
        raw = self._session.run(None, {self._input: preprocess(rgb, self._reformatter)})[0]
        return self.settings.rule.judge(label_scores(np.asarray(raw)))


def preprocess(rgb: np.ndarray, reformatter: VideoReformatter | None = None) -> np.ndarray:
    """RGB picture -> [1, 3, 320, 320] float32 in 0..1: scaled so the longer side is 320, padded
    with black at the right and bottom (NudeNet's own preprocessing)."""
    check_rgb(rgb)
    height, width = rgb.shape[:2]
    scale = INPUT_SIZE / max(width, height)
    w = min(INPUT_SIZE, max(1, round(width * scale)))
    h = min(INPUT_SIZE, max(1, round(height * scale)))
    small = resize_rgb(rgb, w, h, reformatter)
    blob = np.zeros((1, 3, INPUT_SIZE, INPUT_SIZE), dtype=np.float32)
    blob[0, :, :h, :w] = small.transpose(2, 0, 1)
    blob *= np.float32(1.0 / 255.0)
    return blob


def label_scores(output: np.ndarray) -> dict[str, float]:
    """Model output [1, 4 + labels, anchors] -> best score per label, counting each anchor for
    its top class only (as the package does before its 0.2 cut-off)."""
    if output.ndim != 3 or output.shape[0] != 1 or output.shape[1] != _BOX_VALUES + len(LABELS):
        raise ClassifierError(f"unexpected NudeNet output shape {output.shape}")
    classes = output[0, _BOX_VALUES:, :]  # (labels, anchors)
    top = classes.argmax(axis=0)
    best = classes.max(axis=0)
    per_label = np.zeros(len(LABELS), dtype=np.float32)
    np.maximum.at(per_label, top, best)
    return {LABELS[i]: float(per_label[i]) for i in np.flatnonzero(per_label > 0.0)}
