"""The NudeNet adapter with the model shipped in the installed wheel, on real decoded frames."""

from __future__ import annotations

import statistics
import time
from pathlib import Path

import numpy as np
import pytest

from sfu.headless.stamp import make_background
from sfu.moderation.classifiers import (
    ClassifierSettings,
    build_classifier,
    plan_classifier,
)
from sfu.moderation.classifiers.image import to_rgb
from sfu.moderation.classifiers.nudenet import (
    DEFAULT_FLAG_LABELS,
    LABELS,
    NudeNetClassifier,
    label_scores,
    model_path,
    preprocess,
)
from sfu.moderation.sampler import ClassifierPool

from .test_classifiers import vp8_round_trip

nudenet_package = pytest.importorskip("nudenet.nudenet")


def portrait() -> np.ndarray:
    """A real photograph of a person (Grace Hopper, shipped with matplotlib), as RGB."""
    cbook = pytest.importorskip("matplotlib.cbook")
    jpeg = Path(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))
    from sfu.moderation.evidence_image import decode_jpeg

    return decode_jpeg(jpeg.read_bytes())


@pytest.fixture(scope="module")
def classifier() -> NudeNetClassifier:
    return NudeNetClassifier()


def test_the_shipped_model_is_used() -> None:
    path = model_path()
    assert path.name == "320n.onnx" and path.parent.name == "nudenet"
    assert path.stat().st_size > 10_000_000


def test_label_order_matches_the_package() -> None:
    assert tuple(vars(nudenet_package)["__labels"]) == LABELS
    assert DEFAULT_FLAG_LABELS <= set(LABELS)


def test_decoded_synthetic_video_gives_no_exposed_label(classifier: NudeNetClassifier) -> None:
    """The headless client's picture after VP8: benign, so nothing exposed, not flagged."""
    frames = vp8_round_trip([make_background()] * 6)
    durations = []
    for _, frame in frames:
        rgb = to_rgb(frame, 320)  # what the sampler sends to a worker
        started = time.perf_counter()
        verdict = classifier.classify(rgb)
        durations.append(time.perf_counter() - started)
        exposed = {k: v for k, v in verdict.scores.items() if k.endswith("_EXPOSED") and v >= 0.2}
        assert exposed == {}, exposed
        assert not verdict.flagged and verdict.reason is None
        assert not verdict.face
    print(
        f"\nNudeNet on decoded 640x480 VP8 frames (downscaled to 320x240): "
        f"median {statistics.median(durations) * 1000:.1f} ms, max {max(durations) * 1000:.1f} ms "
        f"over {len(durations)} frames"
    )


def test_a_photograph_of_a_face(classifier: NudeNetClassifier) -> None:
    picture = portrait()
    verdict = classifier.classify(picture)
    assert verdict.face and verdict.scores["FACE_FEMALE"] >= 0.5
    assert not verdict.flagged
    assert verdict.top(1)[0][0] == "FACE_FEMALE"
    # Mirrored and cropped the same person is still a face.
    assert classifier.classify(np.ascontiguousarray(picture[:, ::-1])).face
    assert classifier.classify(np.ascontiguousarray(picture[100:400, 50:500])).face


def test_a_face_label_made_to_flag() -> None:
    """Rule settings reach the real model: an operator flagging faces flags the portrait."""
    plan = plan_classifier(
        ClassifierSettings(kind="nudenet", flag_labels=("FACE_FEMALE", "FACE_MALE"), threshold=0.5)
    )
    verdict = build_classifier(plan).classify(portrait())
    assert verdict.flagged and verdict.reason == "FACE_FEMALE"


def test_preprocessing_matches_the_package() -> None:
    """For pictures already at the model's scale (no resampling involved), our input tensor is
    the package's, given RGB (the package swaps channels twice, so RGB in = RGB to the model)."""
    rng = np.random.default_rng(7)
    for height, width in [(320, 320), (240, 320), (320, 200)]:
        rgb = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
        ours = preprocess(rgb)
        theirs = nudenet_package._read_image(rgb.copy(), 320)[0]
        assert ours.shape == theirs.shape == (1, 3, 320, 320)
        np.testing.assert_allclose(ours, theirs, atol=1e-6)


def test_postprocessing_matches_the_package(classifier: NudeNetClassifier) -> None:
    """Per label, our score is the best score the package reports for that class."""
    picture = portrait()
    for rgb in (picture, np.ascontiguousarray(picture[::-1, ::-1]), picture[:320, :320].copy()):
        raw = classifier._session.run(None, {classifier._input: preprocess(rgb)})
        ours = label_scores(np.asarray(raw[0]))
        height, width = rgb.shape[:2]
        side = max(width, height)
        theirs = nudenet_package._postprocess(
            raw, side - width, side - height, 1, 1, width, height, 320, 320
        )
        assert theirs, "the package detects something in a portrait"
        for detection in theirs:
            best = max(d["score"] for d in theirs if d["class"] == detection["class"])
            assert ours[detection["class"]] == pytest.approx(best, abs=1e-6)


def test_bad_input(classifier: NudeNetClassifier) -> None:
    with pytest.raises(ValueError, match="H x W x 3 uint8"):
        classifier.classify(np.zeros((10, 10, 4), dtype=np.uint8))
    with pytest.raises(TypeError):
        classifier.classify("picture.jpg")  # type: ignore[arg-type]


async def test_nudenet_in_the_process_pool() -> None:
    plan = plan_classifier(ClassifierSettings(kind="nudenet"))
    pool = ClassifierPool(plan, workers=1, queue_limit=4)
    await pool.start()
    try:
        frames = [f for _, f in vp8_round_trip([make_background()] * 4)]
        samples = []
        for frame in frames:
            sample = await pool.classify(frame)
            assert sample is not None and sample.ok, sample
            samples.append(sample)
        face = await pool.classify(portrait())
    finally:
        await pool.close()
    assert all(not s.verdict.flagged for s in samples if s.verdict)
    assert all((s.width, s.height) == (320, 240) for s in samples)
    assert face is not None and face.verdict is not None and face.verdict.face
    stats = pool.stats()
    assert stats.classified == 5 and stats.dropped == 0 and stats.failed == 0
    assert stats.latency_p50 is not None and stats.latency_p95 is not None
    assert stats.compute_p50 is not None and stats.compute_p95 is not None
    print(
        f"\nNudeNet in the pool: latency p50 {stats.latency_p50 * 1000:.1f} ms "
        f"p95 {stats.latency_p95 * 1000:.1f} ms; classification p50 "
        f"{stats.compute_p50 * 1000:.1f} ms p95 {stats.compute_p95 * 1000:.1f} ms"
    )
