"""Classifier interface, flag rules, the marker test classifier and the settings factory."""

from __future__ import annotations

import fractions
import importlib.util

import av
import numpy as np
import pytest

from sfu.headless.stamp import Stamp, make_background, make_frame, read_frame
from sfu.moderation.classifiers import (
    ClassifierError,
    ClassifierSettings,
    ClassifierUnavailable,
    FlagRule,
    Verdict,
    build_classifier,
    check_rgb,
    plan_classifier,
)
from sfu.moderation.classifiers.image import compact, fit_size, to_rgb
from sfu.moderation.classifiers.marker import (
    FACE_COLOUR,
    FACE_LABEL,
    MARKER_LABEL,
    MarkerClassifier,
    coverage,
    paint,
    paint_yuv420p,
)

VP8_OPTIONS = {"deadline": "realtime", "cpu-used": "8", "lag-in-frames": "0"}


def vp8_round_trip(
    backgrounds: list[np.ndarray], width: int = 640, height: int = 480, bit_rate: int = 400_000
) -> list[tuple[Stamp, av.VideoFrame]]:
    """Encode one headless-client frame per yuv420p background with libvpx (VP8, as browsers and
    aiortc send it) and decode it again: real decoded video frames, with the stamp each carried."""
    encoder = av.CodecContext.create("libvpx", "w")
    encoder.width, encoder.height, encoder.pix_fmt = width, height, "yuv420p"
    encoder.bit_rate = bit_rate
    encoder.time_base = fractions.Fraction(1, 30)
    encoder.framerate = fractions.Fraction(30, 1)
    encoder.options = VP8_OPTIONS
    decoder = av.CodecContext.create("vp8", "r")
    sent: dict[int, Stamp] = {}
    out: list[tuple[Stamp, av.VideoFrame]] = []

    def decode(packets: list[av.Packet]) -> None:
        for packet in packets:
            for frame in decoder.decode(packet):
                assert frame.pts is not None
                out.append((sent[frame.pts], frame))

    for i, background in enumerate(backgrounds):
        stamp = Stamp(sender=1000 + i, frame=i, clock_ms=123_456 + i)
        frame = make_frame(stamp, width, height, background)
        frame.pts = i
        frame.time_base = encoder.time_base
        sent[i] = stamp
        decode(encoder.encode(frame))
    decode(encoder.encode(None))
    return out


def marked_background(width: int = 640, height: int = 480, colour=None) -> np.ndarray:
    background = make_background(width, height)
    if colour is None:
        paint_yuv420p(background, width, height)
    else:
        paint_yuv420p(background, width, height, colour)
    return background


# --------------------------------------------------------------------------- flag rules


def test_rule_flags_from_threshold_and_names_best_label() -> None:
    rule = FlagRule(flag_labels=frozenset({"A", "B"}), threshold=0.5)
    assert not rule.judge({"A": 0.49, "B": 0.1, "C": 0.99}).flagged  # C does not flag
    at = rule.judge({"A": 0.5})
    assert at.flagged and at.reason == "A" and at.reason_score == 0.5
    both = rule.judge({"A": 0.7, "B": 0.9})
    assert both.reason == "B" and both.reason_score == pytest.approx(0.9)
    assert both.scores == {"A": 0.7, "B": 0.9}


def test_rule_per_label_threshold_and_face() -> None:
    rule = FlagRule(
        flag_labels=frozenset({"A", "B"}),
        threshold=0.5,
        thresholds={"B": 0.8},
        face_labels=frozenset({"FACE"}),
        face_threshold=0.3,
    )
    v = rule.judge({"B": 0.7, "FACE": 0.3})
    assert not v.flagged and v.reason is None and v.reason_score == 0.0
    assert v.face
    assert rule.judge({"B": 0.8}).reason == "B"
    assert not rule.judge({"FACE": 0.29}).face


def test_rule_validation() -> None:
    with pytest.raises(ClassifierError, match="threshold"):
        FlagRule(flag_labels=frozenset({"A"}), threshold=1.5)
    with pytest.raises(ClassifierError, match="face_threshold"):
        FlagRule(flag_labels=frozenset({"A"}), face_threshold=-0.1)
    with pytest.raises(ClassifierError, match="do not flag"):
        FlagRule(flag_labels=frozenset({"A"}), thresholds={"B": 0.4})
    rule = FlagRule(flag_labels=frozenset({"A", "Z"}), face_labels=frozenset({"F"}))
    with pytest.raises(ClassifierError, match=r"unknown labels \['F', 'Z'\]"):
        rule.check_labels({"A", "B"})


def test_verdict_summaries() -> None:
    v = Verdict(scores={"x": 0.1, "y": 0.91234, "z": 0.5}, flagged=True, reason="y", reason_score=0.91234)
    assert v.top(2) == [("y", 0.91234), ("z", 0.5)]
    assert v.to_json() == {
        "flagged": True,
        "reason": "y",
        "reason_score": 0.912,
        "face": False,
        "scores": {"x": 0.1, "y": 0.912, "z": 0.5},
    }


def test_check_rgb_rejects_what_is_not_a_picture() -> None:
    ok = np.zeros((4, 4, 3), dtype=np.uint8)
    assert check_rgb(ok) is ok
    with pytest.raises(TypeError, match="numpy array"):
        check_rgb(b"jpeg")
    for bad in (np.zeros((4, 4), np.uint8), np.zeros((4, 4, 4), np.uint8), np.zeros((4, 4, 3), np.float32)):
        with pytest.raises(ValueError, match="H x W x 3 uint8"):
            check_rgb(bad)
    with pytest.raises(ValueError, match="too small"):
        check_rgb(np.zeros((1, 5, 3), np.uint8))


# --------------------------------------------------------------------------- picture sizes


def test_fit_size_keeps_aspect_and_never_upscales() -> None:
    assert fit_size(640, 480, 320, 320) == (320, 240)
    assert fit_size(480, 640, 320, 320) == (240, 320)
    assert fit_size(1280, 720, 640, 640) == (640, 360)
    assert fit_size(160, 120, 320, 320) == (160, 120)
    assert fit_size(4000, 10, 100, 100) == (100, 2)
    with pytest.raises(ValueError):
        fit_size(0, 10, 100, 100)


def test_to_rgb_converts_frames_and_arrays() -> None:
    frame = make_frame(Stamp(1, 2, 3), 640, 480)
    rgb = to_rgb(frame, 320)
    assert rgb.shape == (240, 320, 3) and rgb.dtype == np.uint8
    full = to_rgb(frame)
    assert full.shape == (480, 640, 3)
    # Downscaling an array gives (nearly) the same picture as downscaling the frame.
    again = to_rgb(full, 320)
    assert again.shape == (240, 320, 3)
    assert np.abs(again.astype(int) - rgb.astype(int)).mean() < 4


def test_compact_pictures_for_the_worker_processes() -> None:
    frame = make_frame(Stamp(1, 2, 3), 640, 480)
    small = compact(frame, 320)
    assert (small.format, small.width, small.height) == ("yuv420p", 320, 240)
    assert small.data.nbytes == 320 * 240 * 3 // 2  # half of RGB
    rgb = small.to_rgb()
    assert rgb.shape == (240, 320, 3)
    assert np.abs(rgb.astype(int) - to_rgb(frame, 320).astype(int)).mean() < 4
    odd = av.VideoFrame.from_ndarray(np.zeros((101, 99, 3), np.uint8), format="rgb24")
    assert compact(odd, 320).format == "rgb24" and compact(odd, 320).to_rgb().shape == (101, 99, 3)
    array = compact(np.zeros((480, 640, 3), np.uint8), 160)
    assert (array.format, array.data.shape) == ("rgb24", (120, 160, 3))


# --------------------------------------------------------------------------- marker classifier


def test_marker_flags_magenta_after_vp8_and_keeps_stamp_readable() -> None:
    clean = make_background()
    marked = marked_background()
    face = marked_background(colour=FACE_COLOUR)
    decoded = vp8_round_trip([clean, marked, clean, marked, face])
    classifier = MarkerClassifier()
    verdicts = []
    for stamp, frame in decoded:
        assert read_frame(frame) == stamp  # the stamp band is untouched by the marker
        verdicts.append(classifier.classify(to_rgb(frame, 160)))
    assert [v.flagged for v in verdicts] == [False, True, False, True, False]
    assert all(v.reason == MARKER_LABEL for v in verdicts if v.flagged)
    assert [v.face for v in verdicts] == [False, False, False, False, True]
    for v in (verdicts[1], verdicts[3]):
        assert v.scores[MARKER_LABEL] > 0.35  # about half of the picture is painted
    assert verdicts[0].scores[MARKER_LABEL] == 0.0 == verdicts[2].scores[MARKER_LABEL]


def test_marker_rgb_paint_and_small_patches() -> None:
    classifier = MarkerClassifier()
    picture = np.full((240, 320, 3), 90, dtype=np.uint8)
    assert not classifier.classify(picture).flagged
    paint(picture, box=(0.0, 0.0, 0.2, 0.2))  # 4% of the picture: a magenta object, not the marker
    small = classifier.classify(picture)
    assert not small.flagged and small.scores[MARKER_LABEL] == pytest.approx(0.04, abs=0.01)
    paint(picture)
    assert classifier.classify(picture).reason == MARKER_LABEL
    paint(picture, FACE_COLOUR, box=(0.0, 0.5, 1.0, 1.0))
    v = classifier.classify(picture)
    assert v.face and v.scores[FACE_LABEL] >= 0.45


def test_marker_ignores_pink_and_purple_tones() -> None:
    """Skin, pink clothes and purple light are not saturated magenta."""
    tones = [(230, 160, 200), (120, 40, 160), (255, 120, 255), (200, 0, 90)]
    for tone in tones:
        picture = np.empty((100, 100, 3), dtype=np.uint8)
        picture[:] = tone
        assert coverage(picture)[MARKER_LABEL] == 0.0, tone


def test_marker_paint_validation() -> None:
    with pytest.raises(ValueError, match="fractions"):
        paint(np.zeros((10, 10, 3), np.uint8), box=(0.5, 0.0, 0.4, 1.0))
    with pytest.raises(ValueError, match="yuv420p"):
        paint_yuv420p(np.zeros((10, 10), np.uint8), 10, 10)


# --------------------------------------------------------------------------- factory


def test_plan_none_and_unknown() -> None:
    plan = plan_classifier(ClassifierSettings(kind="none"))
    assert not plan.enabled and plan.kind == "none" and "off" in plan.description
    with pytest.raises(ClassifierError, match="unknown moderation classifier 'nsfw'"):
        plan_classifier(ClassifierSettings(kind="nsfw"))
    with pytest.raises(ClassifierError, match="threads"):
        plan_classifier(ClassifierSettings(kind="marker", threads=0))
    with pytest.raises(ClassifierError, match="no classifier"):
        build_classifier(plan)


def test_plan_marker_builds_a_working_classifier() -> None:
    plan = plan_classifier(ClassifierSettings(kind="marker", threshold=0.6))
    assert plan.enabled and plan.kind == "marker" and plan.input_side > 0
    assert "MARKER>=0.6" in plan.description
    classifier = build_classifier(plan)
    picture = np.zeros((100, 100, 3), np.uint8)
    paint(picture, box=(0.0, 0.0, 1.0, 0.5))  # 50%: below the raised threshold
    assert not classifier.classify(picture).flagged
    paint(picture, box=(0.0, 0.0, 1.0, 0.7))
    assert classifier.classify(picture).flagged
    with pytest.raises(ClassifierError, match="unknown labels"):
        plan_classifier(ClassifierSettings(kind="marker", flag_labels=("NUDITY",)))


@pytest.mark.skipif(importlib.util.find_spec("nudenet") is None, reason="nudenet not installed")
def test_plan_auto_picks_nudenet_when_installed() -> None:
    plan = plan_classifier(ClassifierSettings())
    assert plan.kind == "nudenet" and plan.input_side == 320
    assert "AGPL-3.0" in plan.description and "auto" in plan.description
    assert "FEMALE_BREAST_EXPOSED>=0.5" in plan.description
    assert "FEMALE_BREAST_COVERED" not in plan.description
    custom = plan_classifier(
        ClassifierSettings(kind="nudenet", threshold=0.6, label_thresholds={"BUTTOCKS_EXPOSED": 0.8})
    )
    assert "BUTTOCKS_EXPOSED>=0.8" in custom.description and "ANUS_EXPOSED>=0.6" in custom.description
    with pytest.raises(ClassifierError, match="unknown labels"):
        plan_classifier(ClassifierSettings(kind="nudenet", flag_labels=("NSFW",)))


def test_plan_without_nudenet_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    """Where the extra is not installed: ``auto`` means none and says how to install it, an
    explicit ``nudenet`` is refused with the same hint."""
    real = importlib.util.find_spec

    def find_spec(name: str, package: str | None = None):
        return None if name == "nudenet" else real(name, package)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    plan = plan_classifier(ClassifierSettings(kind="auto"))
    assert not plan.enabled
    assert "NudeNet is not installed" in plan.description
    assert "pip install 'sfu[nudenet]'" in plan.description
    with pytest.raises(ClassifierUnavailable, match=r"pip install 'sfu\[nudenet\]'"):
        plan_classifier(ClassifierSettings(kind="nudenet"))


def test_plan_onnx_reports_every_problem(tmp_path) -> None:
    with pytest.raises(ClassifierError, match="labels that flag"):
        plan_classifier(ClassifierSettings(kind="onnx", model_path=str(tmp_path / "m.onnx")))
    with pytest.raises(ClassifierError) as info:
        plan_classifier(
            ClassifierSettings(
                kind="onnx",
                model_path=str(tmp_path / "missing.onnx"),
                labels=("safe", "nsfw", "nsfw"),
                flag_labels=("porn",),
                layout="CHW",
                std=(1.0, 0.0, 1.0),
            )
        )
    message = str(info.value)
    for part in ("labels repeat", "unknown labels ['porn']", "layout", "std", "model file not found"):
        assert part in message
