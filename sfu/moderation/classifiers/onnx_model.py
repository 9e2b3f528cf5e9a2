"""Generic adapter for an operator-supplied ONNX image classifier.

Operators who cannot accept NudeNet's AGPL licence can bring any image classifier exported to ONNX
(e.g. a permissively licensed NSFW model) and describe it with settings: the label of each output
score, the input size, the normalisation, the tensor layout and which labels flag a picture.

The model must take one float32 picture tensor, [1, 3, H, W] (NCHW) or [1, H, W, 3] (NHWC), and
return scores as its first output, [1, labels] or [labels]. The picture is stretched to the input
size, scaled to 0..1, then normalised per channel as ``(x - mean) / std`` (ImageNet models: mean
0.485/0.456/0.406, std 0.229/0.224/0.225; models expecting 0..1: mean 0, std 1; models expecting
-1..1: mean 0.5, std 0.5). Raw logits can be turned into probabilities with ``activation``
(``softmax`` for one-of-N classifiers, ``sigmoid`` for multi-label ones).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .base import ClassifierError, FlagRule, Verdict
from .image import VideoReformatter, resize_rgb
from .nudenet import load_onnxruntime, session_options

__all__ = ["ACTIVATIONS", "LAYOUTS", "OnnxClassifier", "OnnxSettings"]

LAYOUTS = ("NCHW", "NHWC")
ACTIVATIONS = ("none", "softmax", "sigmoid")
CHANNEL_ORDERS = ("RGB", "BGR")


@dataclass(frozen=True)
class OnnxSettings:
    """How to run an operator-supplied model."""

    model_path: str
    labels: tuple[str, ...]
    """One label per output score, in output order."""
    rule: FlagRule
    input_width: int = 224
    input_height: int = 224
    layout: str = "NCHW"
    mean: tuple[float, float, float] = (0.0, 0.0, 0.0)
    """Per-channel mean subtracted after scaling to 0..1 (in the model's channel order)."""
    std: tuple[float, float, float] = (1.0, 1.0, 1.0)
    """Per-channel divisor applied after subtracting ``mean``."""
    channel_order: str = "RGB"
    activation: str = "none"
    threads: int = 1

    def problems(self) -> list[str]:
        """Everything wrong with these settings that can be seen without opening the model."""
        out = []
        if not self.model_path:
            out.append("no model path given")
        if not self.labels:
            out.append("no labels given (one per output score)")
        elif len(set(self.labels)) != len(self.labels):
            out.append(f"labels repeat: {list(self.labels)}")
        if not self.rule.flag_labels:
            out.append("no label flags a picture: name at least one")
        if self.labels:
            try:
                self.rule.check_labels(self.labels)
            except ClassifierError as exc:
                out.append(str(exc))
        if self.input_width < 8 or self.input_height < 8:
            out.append(f"input size {self.input_width}x{self.input_height} is too small")
        if self.input_width > 4096 or self.input_height > 4096:
            out.append(f"input size {self.input_width}x{self.input_height} is too large")
        if self.layout not in LAYOUTS:
            out.append(f"layout must be one of {', '.join(LAYOUTS)}, got {self.layout!r}")
        if self.channel_order not in CHANNEL_ORDERS:
            out.append(f"channel order must be RGB or BGR, got {self.channel_order!r}")
        if self.activation not in ACTIVATIONS:
            out.append(f"activation must be one of {', '.join(ACTIVATIONS)}, got {self.activation!r}")
        if len(self.mean) != 3 or len(self.std) != 3:
            out.append("mean and std need three values each")
        elif any(s == 0 for s in self.std):
            out.append(f"std values must not be zero: {list(self.std)}")
        if self.threads < 1:
            out.append(f"threads must be at least 1, got {self.threads}")
        return out


class OnnxClassifier:
    """Runs an operator-supplied ONNX classifier described by :class:`OnnxSettings`."""

    def __init__(self, settings: OnnxSettings) -> None:
        problems = settings.problems()
        if problems:
            raise ClassifierError("moderation model settings: " + "; ".join(problems))
        self.settings = settings
        path = Path(settings.model_path)
        self.name = f"onnx:{path.name}"
        if not path.is_file():
            raise ClassifierError(f"moderation model not found: {path}")
        ort = load_onnxruntime()
        try:
            self._session = ort.InferenceSession(
                str(path),
                sess_options=session_options(ort, settings.threads),
                providers=["CPUExecutionProvider"],
            )
        except Exception as exc:  # onnxruntime raises its own exception types
            raise ClassifierError(f"cannot load moderation model {path}: {exc}") from exc
        inputs = self._session.get_inputs()
        if len(inputs) != 1:
            raise ClassifierError(f"model {path} takes {len(inputs)} inputs; one picture expected")
        self._input = inputs[0].name
        self._check_input(inputs[0], path)
        self._check_output(self._session.get_outputs()[0], path)
        order = [2, 1, 0] if settings.channel_order == "BGR" else [0, 1, 2]
        self._order = np.asarray(order)
        self._mean = np.asarray(settings.mean, dtype=np.float32)
        self._std = np.asarray(settings.std, dtype=np.float32)
        self._reformatter = VideoReformatter()

    def _check_input(self, meta: Any, path: Path) -> None:
        s = self.settings
        if meta.type != "tensor(float)":
            raise ClassifierError(f"model {path} input is {meta.type}; float32 expected")
        shape = list(meta.shape)
        if len(shape) != 4:
            raise ClassifierError(f"model {path} input has shape {shape}; a 4-D picture expected")
        if s.layout == "NCHW":
            expected = {1: 3, 2: s.input_height, 3: s.input_width}
        else:
            expected = {1: s.input_height, 2: s.input_width, 3: 3}
        for axis, want in expected.items():
            if isinstance(shape[axis], int) and shape[axis] != want:
                raise ClassifierError(
                    f"model {path} input shape is {shape}, which does not match layout "
                    f"{s.layout} with input size {s.input_width}x{s.input_height}"
                )

    def _check_output(self, meta: Any, path: Path) -> None:
        shape = list(meta.shape)
        count = shape[-1] if shape else None
        if isinstance(count, int) and count != len(self.settings.labels):
            raise ClassifierError(
                f"model {path} outputs {count} scores but {len(self.settings.labels)} labels "
                f"were given"
            )

    def preprocess(self, rgb: np.ndarray) -> np.ndarray:
        """RGB picture -> the model's input tensor."""
        s = self.settings
        small = resize_rgb(rgb, s.input_width, s.input_height, self._reformatter)
        small = small[:, :, self._order]
        x = small.astype(np.float32) * np.float32(1.0 / 255.0)
        x = (x - self._mean) / self._std
        if s.layout == "NCHW":
            x = x.transpose(2, 0, 1)
        return np.ascontiguousarray(x[None, ...], dtype=np.float32)

    def scores(self, rgb: np.ndarray) -> dict[str, float]:
        """Per-label scores after the activation."""
        raw = np.asarray(self._session.run(None, {self._input: self.preprocess(rgb)})[0])
        values = raw.reshape(-1).astype(np.float64)
        if values.size != len(self.settings.labels):
            raise ClassifierError(
                f"model returned {values.size} scores, expected {len(self.settings.labels)}"
            )
        return dict(zip(self.settings.labels, _activate(values, self.settings.activation)))

    def classify(self, rgb: np.ndarray) -> Verdict:
        return self.settings.rule.judge(self.scores(rgb))


def _activate(values: np.ndarray, activation: str | None) -> list[float]:
    if activation == "softmax":
        e = np.exp(values - values.max())
        values = e / e.sum()
    elif activation == "sigmoid":
        values = 1.0 / (1.0 + np.exp(-values))
    return [float(v) for v in values]
