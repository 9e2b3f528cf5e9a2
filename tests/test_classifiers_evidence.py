"""Evidence pictures: decoded frames to bounded JPEG and back, the headless client's stamp intact."""

from __future__ import annotations

import struct

import numpy as np
import pytest

from sfu.headless.stamp import Stamp, draw, make_background, make_frame, read
from sfu.moderation.classifiers.marker import MARKER_LABEL, coverage
from sfu.moderation.evidence_image import (
    decode_jpeg,
    encode_jpeg,
    jpeg_size,
    qscale_for,
)

from .test_classifiers import marked_background, vp8_round_trip


def test_decoded_video_frames_keep_their_stamp_through_jpeg() -> None:
    """The path evidence takes: the server's decoded copy of a stream -> JPEG -> a reviewer."""
    decoded = vp8_round_trip([make_background()] * 5)
    for stamp, frame in decoded:
        jpeg = encode_jpeg(frame)
        assert jpeg[:2] == b"\xff\xd8" and jpeg[-2:] == b"\xff\xd9"
        assert jpeg_size(jpeg) == (640, 480)
        assert len(jpeg) < 150_000
        picture = decode_jpeg(jpeg)
        assert picture.shape == (480, 640, 3)
        assert read(picture) == stamp


@pytest.mark.parametrize(
    "size,expected", [((1280, 720), (640, 360)), ((480, 960), (320, 640)), ((320, 240), (320, 240))]
)
def test_size_is_bounded_and_the_stamp_survives_rescaling(
    size: tuple[int, int], expected: tuple[int, int]
) -> None:
    stamp = Stamp(sender=4242, frame=17, clock_ms=987_654_321)
    frame = make_frame(stamp, *size)
    jpeg = encode_jpeg(frame)
    assert jpeg_size(jpeg) == expected
    picture = decode_jpeg(jpeg)
    assert (picture.shape[1], picture.shape[0]) == expected
    assert read(picture) == stamp


def test_rgb_arrays_and_colours_round_trip() -> None:
    rng = np.random.default_rng(3)
    rgb = (rng.integers(0, 40, (360, 500, 3)) + 100).astype(np.uint8)
    stamp = Stamp(1, 2, 3)
    draw(rgb, stamp)
    back = decode_jpeg(encode_jpeg(rgb))
    assert back.shape == rgb.shape
    assert read(back) == stamp
    # A picture flagged by the marker classifier still shows the marker in its evidence.
    frame = make_frame(stamp, 640, 480, marked_background())
    evidence = decode_jpeg(encode_jpeg(frame))
    assert coverage(evidence)[MARKER_LABEL] > 0.4
    assert read(evidence) == stamp


def test_quality_setting() -> None:
    assert qscale_for(85) == 3
    assert qscale_for(100) == 1 and qscale_for(1) == 20
    with pytest.raises(ValueError, match="quality"):
        qscale_for(0)
    frame = make_frame(Stamp(1, 2, 3))
    sizes = [len(encode_jpeg(frame, quality=q)) for q in (95, 85, 50)]
    assert sizes[0] > sizes[1] > sizes[2]
    assert read(decode_jpeg(encode_jpeg(frame, quality=50))) == Stamp(1, 2, 3)
    small = encode_jpeg(frame, max_width=200, max_height=200)
    assert jpeg_size(small) == (200, 150)


def test_bad_jpeg_input_is_refused_clearly() -> None:
    good = encode_jpeg(make_frame(Stamp(1, 2, 3), 320, 240))
    with pytest.raises(ValueError, match="not a JPEG"):
        decode_jpeg(b"GIF89a" + bytes(100))
    with pytest.raises(ValueError, match="not a JPEG"):
        decode_jpeg(b"")
    with pytest.raises(ValueError, match="too large: .* bytes"):
        decode_jpeg(good, max_bytes=1000)
    # A header announcing a 60000 x 60000 picture is refused before any decoding.
    huge = b"\xff\xd8" + b"\xff\xc0" + struct.pack(">HBHHB", 11, 8, 60000, 60000, 1) + bytes(3)
    assert jpeg_size(huge) == (60000, 60000)
    with pytest.raises(ValueError, match="too large: 60000x60000"):
        decode_jpeg(huge)
    # Headers without picture data: undecodable, a clear error.
    with pytest.raises(ValueError, match="cannot decode"):
        decode_jpeg(good[: good.find(b"\xff\xda")])
    # Cut short inside the picture data: decoded as far as it goes (like a browser would show it).
    assert decode_jpeg(good[: len(good) // 2]).shape == (240, 320, 3)
    with pytest.raises(TypeError):
        encode_jpeg("frame.png")  # type: ignore[arg-type]
