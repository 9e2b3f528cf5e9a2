"""The generic ONNX adapter, with tiny models built here: mean colour per channel as "scores"."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from sfu.moderation.classifiers import (
    ClassifierError,
    ClassifierSettings,
    FlagRule,
    build_classifier,
    plan_classifier,
)
from sfu.moderation.classifiers.onnx_model import OnnxClassifier, OnnxSettings

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper

LABELS = ("red", "green", "blue")


def mean_colour_model(
    path: Path,
    layout: str = "NCHW",
    size: int = 8,
    dynamic: bool = False,
    outputs: int = 3,
    input_type: int = TensorProto.FLOAT,
) -> Path:
    """A model whose scores are the mean of each input channel (so a red picture scores 1.0 for
    "red" when scaled to 0..1). ``outputs`` > 3 appends constant zero scores."""
    h = "H" if dynamic else size
    w = "W" if dynamic else size
    batch = "N" if dynamic else 1
    if layout == "NCHW":
        shape, axes = [batch, 3, h, w], [2, 3]
    else:
        shape, axes = [batch, h, w, 3], [1, 2]
    nodes = []
    source = "x"
    if input_type != TensorProto.FLOAT:
        nodes.append(helper.make_node("Cast", ["x"], ["xf"], to=TensorProto.FLOAT))
        source = "xf"
    nodes.append(helper.make_node("ReduceMean", [source], ["means"], axes=axes, keepdims=0))
    if outputs > 3:
        zeros = helper.make_tensor("zeros", TensorProto.FLOAT, [1, outputs - 3], [0.0] * (outputs - 3))
        nodes.append(helper.make_node("Constant", [], ["pad"], value=zeros))
        nodes.append(helper.make_node("Concat", ["means", "pad"], ["scores"], axis=1))
    else:
        nodes.append(helper.make_node("Identity", ["means"], ["scores"]))
    graph = helper.make_graph(
        nodes,
        "mean_colour",
        [helper.make_tensor_value_info("x", input_type, shape)],
        [helper.make_tensor_value_info("scores", TensorProto.FLOAT, [batch, outputs])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    path.write_bytes(model.SerializeToString())
    return path


def solid(colour: tuple[int, int, int], width: int = 64, height: int = 48) -> np.ndarray:
    picture = np.empty((height, width, 3), dtype=np.uint8)
    picture[:] = colour
    return picture


def settings(path: Path, **kwargs) -> OnnxSettings:
    kwargs.setdefault("rule", FlagRule(flag_labels=frozenset({"red"}), threshold=0.5))
    kwargs.setdefault("input_width", 8)
    kwargs.setdefault("input_height", 8)
    return OnnxSettings(model_path=str(path), labels=LABELS, **kwargs)


@pytest.mark.parametrize("layout", ["NCHW", "NHWC"])
def test_scores_follow_the_picture_in_both_layouts(tmp_path: Path, layout: str) -> None:
    model = mean_colour_model(tmp_path / "m.onnx", layout=layout)
    classifier = OnnxClassifier(settings(model, layout=layout))
    assert classifier.name == "onnx:m.onnx"
    red = classifier.classify(solid((255, 0, 0)))
    assert red.flagged and red.reason == "red"
    assert red.scores == pytest.approx({"red": 1.0, "green": 0.0, "blue": 0.0}, abs=1e-3)
    teal = classifier.classify(solid((0, 128, 255)))
    assert not teal.flagged
    assert teal.scores == pytest.approx({"red": 0.0, "green": 128 / 255, "blue": 1.0}, abs=1e-3)
    # Half red, half black: the picture is resized, not cropped.
    half = solid((0, 0, 0), 100, 50)
    half[:, :50] = (255, 0, 0)
    assert classifier.classify(half).scores["red"] == pytest.approx(0.5, abs=0.05)


def test_mean_std_channel_order_and_activations(tmp_path: Path) -> None:
    model = mean_colour_model(tmp_path / "m.onnx")
    normalised = OnnxClassifier(settings(model, mean=(0.5, 0.5, 0.5), std=(0.5, 0.25, 0.5)))
    s = normalised.scores(solid((255, 0, 51)))
    assert s == pytest.approx({"red": 1.0, "green": -2.0, "blue": -0.6}, abs=1e-3)

    bgr = OnnxClassifier(settings(model, channel_order="BGR"))
    s = bgr.scores(solid((255, 0, 51)))
    assert s == pytest.approx({"red": 0.2, "green": 0.0, "blue": 1.0}, abs=1e-3)

    softmax = OnnxClassifier(settings(model, activation="softmax"))
    s = softmax.scores(solid((255, 0, 0)))
    assert sum(s.values()) == pytest.approx(1.0)
    e = np.exp([1.0, 0.0, 0.0])
    assert s["red"] == pytest.approx(e[0] / e.sum(), abs=1e-3)

    sigmoid = OnnxClassifier(settings(model, activation="sigmoid", mean=(0.5,) * 3, std=(0.1,) * 3))
    s = sigmoid.scores(solid((255, 0, 128)))
    assert s["red"] == pytest.approx(1 / (1 + np.exp(-5.0)), abs=1e-3)
    assert s["green"] == pytest.approx(1 / (1 + np.exp(5.0)), abs=1e-3)
    assert s["blue"] == pytest.approx(0.5, abs=0.02)


def test_dynamic_dims_take_the_configured_size(tmp_path: Path) -> None:
    model = mean_colour_model(tmp_path / "m.onnx", dynamic=True)
    classifier = OnnxClassifier(settings(model, input_width=32, input_height=16))
    assert classifier.preprocess(solid((1, 2, 3))).shape == (1, 3, 16, 32)
    assert classifier.classify(solid((255, 0, 0))).flagged


def test_face_labels(tmp_path: Path) -> None:
    model = mean_colour_model(tmp_path / "m.onnx")
    rule = FlagRule(
        flag_labels=frozenset({"red"}),
        threshold=0.9,
        face_labels=frozenset({"green"}),
        face_threshold=0.4,
    )
    v = OnnxClassifier(settings(model, rule=rule)).classify(solid((0, 200, 0)))
    assert v.face and not v.flagged


def test_load_errors_are_clear(tmp_path: Path) -> None:
    nchw = mean_colour_model(tmp_path / "nchw.onnx")
    with pytest.raises(ClassifierError, match="does not match layout NHWC"):
        OnnxClassifier(settings(nchw, layout="NHWC"))
    with pytest.raises(ClassifierError, match="does not match layout NCHW with input size 16x16"):
        OnnxClassifier(settings(nchw, input_width=16, input_height=16))
    five = mean_colour_model(tmp_path / "five.onnx", outputs=5)
    with pytest.raises(ClassifierError, match="outputs 5 scores but 3 labels"):
        OnnxClassifier(settings(five))
    as_uint8 = mean_colour_model(tmp_path / "u8.onnx", input_type=TensorProto.UINT8)
    with pytest.raises(ClassifierError, match=r"input is tensor\(uint8\); float32 expected"):
        OnnxClassifier(settings(as_uint8))
    with pytest.raises(ClassifierError, match="moderation model not found"):
        OnnxClassifier(settings(tmp_path / "nothing.onnx"))
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"this is not a model" * 10)
    with pytest.raises(ClassifierError, match="cannot load moderation model"):
        OnnxClassifier(settings(garbage))
    with pytest.raises(ClassifierError, match="no label flags a picture"):
        OnnxClassifier(settings(nchw, rule=FlagRule(flag_labels=frozenset())))


def test_bad_picture_is_refused(tmp_path: Path) -> None:
    classifier = OnnxClassifier(settings(mean_colour_model(tmp_path / "m.onnx")))
    with pytest.raises(ValueError, match="H x W x 3 uint8"):
        classifier.classify(np.zeros((8, 8), dtype=np.uint8))
    assert classifier.classify(solid((255, 0, 0))).flagged  # still fine afterwards


def test_factory_builds_the_onnx_adapter(tmp_path: Path) -> None:
    model = mean_colour_model(tmp_path / "m.onnx", layout="NHWC", size=16)
    plan = plan_classifier(
        ClassifierSettings(
            kind="onnx",
            model_path=str(model),
            labels=LABELS,
            flag_labels=("red", "blue"),
            label_thresholds={"blue": 0.9},
            threshold=0.6,
            input_width=16,
            input_height=16,
            layout="NHWC",
        )
    )
    assert plan.kind == "onnx" and plan.input_side == 16
    assert str(model) in plan.description and "blue>=0.9" in plan.description
    classifier = build_classifier(plan)
    assert classifier.classify(solid((0, 0, 255))).reason == "blue"
    assert not classifier.classify(solid((0, 0, 220))).flagged  # 0.86 < 0.9
    assert classifier.classify(solid((160, 0, 0))).reason == "red"  # 0.63 >= 0.6
