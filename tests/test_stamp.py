"""Tests for the video stamp and the synthetic headless tracks."""

from __future__ import annotations

import asyncio
import fractions
import time

import av
import numpy as np
import pytest
from aiortc import MediaStreamError, RTCRtpCodecParameters

from sfu.headless.stamp import (
    Stamp,
    draw,
    make_background,
    make_frame,
    read,
    read_frame,
    read_luma,
)
from sfu.headless.synthetic import StampedVideoTrack, ToneAudioTrack
from sfu.media.aiortc_hooks.server import decoder_for
from sfu.media.aiortc_hooks.testing import WireEncoder

SIZES = [(320, 240), (640, 480), (1280, 720)]

EXTREME_STAMPS = [
    Stamp(0, 0, 0),
    Stamp(65535, 65535, 2**32 - 1),
    Stamp(1, 2, 3),
    Stamp(0xA5A5, 0x5A5A, 0xDEADBEEF),
]


def stamp_for(i: int) -> Stamp:
    return Stamp(sender=(7919 * i + 3) % 65536, frame=i % 65536, clock_ms=(1_700_000_000_123 + 33 * i) % 2**32)


# --------------------------------------------------------------------------- raw round trips


@pytest.mark.parametrize("width,height", SIZES)
@pytest.mark.parametrize("stamp", EXTREME_STAMPS)
def test_draw_read_rgb(width: int, height: int, stamp: Stamp) -> None:
    rng = np.random.default_rng(width)
    image = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    draw(image, stamp)
    assert read(image) == stamp


@pytest.mark.parametrize("width,height", SIZES)
def test_draw_read_luma_plane(width: int, height: int) -> None:
    luma = np.full((height, width), 90, dtype=np.uint8)
    draw(luma, Stamp(12, 34, 56))
    assert read(luma) == Stamp(12, 34, 56)
    assert read_luma(luma) == Stamp(12, 34, 56)


@pytest.mark.parametrize("width,height", SIZES)
@pytest.mark.parametrize("stamp", EXTREME_STAMPS)
def test_make_frame_read_frame(width: int, height: int, stamp: Stamp) -> None:
    frame = make_frame(stamp, width, height, make_background(width, height))
    assert frame.format.name == "yuv420p"
    assert (frame.width, frame.height) == (width, height)
    assert read_frame(frame) == stamp
    # Also readable after conversion to RGB (e.g. a client that renders the picture).
    assert read(frame.to_ndarray(format="rgb24")) == stamp
    assert read_frame(frame.reformat(format="rgb24")) == stamp


def test_make_frame_backgrounds() -> None:
    stamp = Stamp(5, 6, 7)
    assert read_frame(make_frame(stamp, 320, 240)) == stamp  # default background
    rgb = np.zeros((240, 320, 3), dtype=np.uint8)
    rgb[..., 1] = 200
    assert read_frame(make_frame(stamp, 320, 240, rgb)) == stamp
    with pytest.raises(ValueError):
        make_frame(stamp, 320, 240, np.zeros((10, 10), dtype=np.uint8))
    with pytest.raises(ValueError):
        make_frame(stamp, 321, 240)


def test_background_is_not_modified_and_content_moves() -> None:
    bg = make_background(640, 480)
    before = bg.copy()
    a = make_frame(Stamp(1, 0, 0), 640, 480, bg).to_ndarray()
    b = make_frame(Stamp(1, 10, 0), 640, 480, bg).to_ndarray()
    assert np.array_equal(bg, before)
    # Below the stamp band the picture changes with the frame counter.
    assert not np.array_equal(a[200:480], b[200:480])


def test_stamp_validation() -> None:
    with pytest.raises(ValueError):
        Stamp(65536, 0, 0)
    with pytest.raises(ValueError):
        Stamp(0, -1, 0)
    with pytest.raises(ValueError):
        Stamp(0, 0, 2**32)


# --------------------------------------------------------------------------- negatives


@pytest.mark.parametrize("width,height", SIZES)
def test_plain_grey_black_white_frames_read_none(width: int, height: int) -> None:
    for value in (0, 16, 128, 235, 255):
        assert read_luma(np.full((height, width), value, dtype=np.uint8)) is None
        assert read(np.full((height, width, 3), value, dtype=np.uint8)) is None
        frame = av.VideoFrame.from_ndarray(np.full((height, width, 3), value, dtype=np.uint8), format="rgb24")
        assert read_frame(frame.reformat(format="yuv420p")) is None


def test_background_without_stamp_reads_none() -> None:
    assert read_luma(make_background(640, 480)[:480]) is None


def test_noise_frames_read_none() -> None:
    rng = np.random.default_rng(1234)
    for _ in range(300):
        assert read_luma(rng.integers(0, 256, (240, 320), dtype=np.uint8)) is None
    for _ in range(50):
        assert read(rng.integers(0, 256, (480, 640, 3), dtype=np.uint8)) is None


def test_random_black_white_cells_read_none() -> None:
    # Worst case for the checksum: a crisp black/white grid with random cells.
    rng = np.random.default_rng(99)
    height, width = 480, 640
    row_h = height // 16
    col_edges = np.rint(np.arange(25) * width / 24).astype(int)

    def crisp_cells_pass_ambiguity_check(image: np.ndarray) -> bool:
        # Sanity check of the test itself: the grid lines up with the stamp's cells, so any
        # rejection comes from the sync pattern / CRC and not from blurry cells.
        ys = ((np.arange(4)[:, None] + np.array([0.3, 0.5, 0.7])) * row_h).astype(int).ravel()
        xs = ((np.arange(24)[:, None] + np.array([0.3, 0.5, 0.7])) * width / 24).astype(int).ravel()
        samples = image[np.ix_(ys, xs)].reshape(4, 3, 24, 3)
        return bool(np.all(samples == samples[:, :1, :, :1]))

    for _ in range(300):
        cells = rng.integers(0, 2, (4, 24), dtype=np.uint8) * 219 + 16
        image = np.full((height, width), 100, dtype=np.uint8)
        image[: 4 * row_h] = np.repeat(np.repeat(cells, row_h, axis=0), np.diff(col_edges), axis=1)
        assert crisp_cells_pass_ambiguity_check(image)
        assert read_luma(image) is None


def test_corrupted_stamp_reads_none() -> None:
    height, width = 480, 640
    image = np.full((height, width, 3), 100, dtype=np.uint8)
    draw(image, Stamp(321, 654, 987654))
    assert read(image) is not None
    # Invert one cell (row 1, column 10) of the stamp.
    cell_h, cell_w = height // 16, width // 24
    y, x = 1 * cell_h, 10 * cell_w
    image[y : y + cell_h, x : x + cell_w] = 255 - image[y : y + cell_h, x : x + cell_w]
    assert read(image) is None


def test_half_grey_cell_reads_none() -> None:
    image = np.zeros((480, 640, 3), dtype=np.uint8)
    draw(image, Stamp(1, 2, 3))
    image[0:30, 0:26] = 128  # one ambiguous cell
    assert read(image) is None


def test_too_small_image() -> None:
    assert read(np.zeros((8, 8, 3), dtype=np.uint8)) is None
    with pytest.raises(ValueError):
        draw(np.zeros((8, 8, 3), dtype=np.uint8), Stamp(0, 0, 0))


# --------------------------------------------------------------------------- rescaling


@pytest.mark.parametrize(
    "src,dst",
    [((640, 480), (320, 240)), ((640, 480), (160, 120)), ((320, 240), (1280, 720)), ((1280, 720), (640, 360))],
)
def test_rescaled_frame_still_reads(src: tuple[int, int], dst: tuple[int, int]) -> None:
    stamp = Stamp(4242, 17, 123456789)
    frame = make_frame(stamp, *src, make_background(*src))
    scaled = frame.reformat(width=dst[0], height=dst[1])
    assert (scaled.width, scaled.height) == dst
    assert read_frame(scaled) == stamp


# --------------------------------------------------------------------------- real codecs


def _encode_decode_av(
    encoder_name: str,
    decoder_name: str,
    width: int,
    height: int,
    bit_rate: int,
    count: int,
    options: dict[str, str],
    rescale: tuple[int, int] | None = None,
) -> tuple[dict[int, Stamp], list[tuple[int, Stamp | None]], list[bool]]:
    """Encode ``count`` stamped frames and decode them; returns sent stamps by pts, the decoded
    (pts, stamp) pairs and the keyframe flag of each packet."""
    enc = av.CodecContext.create(encoder_name, "w")
    enc.width, enc.height, enc.pix_fmt = width, height, "yuv420p"
    enc.bit_rate = bit_rate
    enc.time_base = fractions.Fraction(1, 30)
    enc.framerate = fractions.Fraction(30, 1)
    enc.gop_size = 15
    enc.options = options
    dec = av.CodecContext.create(decoder_name, "r")

    background = make_background(width, height)
    sent: dict[int, Stamp] = {}
    received: list[tuple[int, Stamp | None]] = []
    keyframes: list[bool] = []

    def handle(packets: list[av.Packet]) -> None:
        for packet in packets:
            keyframes.append(bool(packet.is_keyframe))
            for decoded in dec.decode(packet):
                if rescale is not None:
                    decoded = decoded.reformat(width=rescale[0], height=rescale[1])
                received.append((decoded.pts, read_frame(decoded)))

    for i in range(count):
        stamp = stamp_for(i)
        frame = make_frame(stamp, width, height, background)
        frame.pts = i
        frame.time_base = enc.time_base
        sent[i] = stamp
        handle(enc.encode(frame))
    handle(enc.encode(None))
    for decoded in dec.decode(None):
        received.append((decoded.pts, read_frame(decoded)))
    return sent, received, keyframes


VP8_OPTIONS = {"deadline": "realtime", "cpu-used": "8", "lag-in-frames": "0"}
X264_OPTIONS = {"preset": "ultrafast", "tune": "zerolatency"}


@pytest.mark.parametrize("width,height", SIZES)
@pytest.mark.parametrize("bit_rate", [300_000, 800_000])
def test_vp8_round_trip(width: int, height: int, bit_rate: int) -> None:
    sent, received, keyframes = _encode_decode_av("libvpx", "vp8", width, height, bit_rate, 40, VP8_OPTIONS)
    assert any(keyframes) and not all(keyframes)  # key and inter frames were exercised
    assert len(received) == len(sent)
    for pts, stamp in received:
        assert stamp == sent[pts]


@pytest.mark.parametrize("width,height", SIZES)
def test_h264_round_trip_low_bitrate(width: int, height: int) -> None:
    sent, received, keyframes = _encode_decode_av("libx264", "h264", width, height, 250_000, 40, X264_OPTIONS)
    assert any(keyframes) and not all(keyframes)
    assert len(received) == len(sent)
    for pts, stamp in received:
        assert stamp == sent[pts]


@pytest.mark.parametrize("encoder,decoder", [("libvpx", "vp8"), ("libx264", "h264")])
def test_codec_round_trip_then_downscale(encoder: str, decoder: str) -> None:
    options = VP8_OPTIONS if encoder == "libvpx" else X264_OPTIONS
    sent, received, _ = _encode_decode_av(encoder, decoder, 640, 480, 300_000, 20, options, rescale=(320, 240))
    assert len(received) == len(sent)
    for pts, stamp in received:
        assert stamp == sent[pts]


@pytest.mark.parametrize("codec_name", ["VP8", "H264"])
def test_aiortc_codec_round_trip(codec_name: str) -> None:
    """The exact encoder/decoder classes aiortc uses on the wire, including RTP (de)payloading."""
    codec = RTCRtpCodecParameters(mimeType=f"video/{codec_name}", clockRate=90000)
    encoder, decode = WireEncoder(codec, bitrate=500_000), decoder_for(codec)
    background = make_background(640, 480)
    for i in range(30):
        stamp = stamp_for(i)
        frame = make_frame(stamp, 640, 480, background)
        frame.pts = i * 3000
        frame.time_base = fractions.Fraction(1, 90000)
        data, timestamp = encoder.encode(frame, keyframe=(i == 0))
        decoded = decode(data, timestamp)
        assert len(decoded) == 1
        assert read_frame(decoded[0]) == stamp


# --------------------------------------------------------------------------- speed


def test_read_frame_is_fast() -> None:
    frame = make_frame(Stamp(1, 2, 3), 640, 480, make_background(640, 480))
    assert read_frame(frame) == Stamp(1, 2, 3)
    runs = 500
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        for _ in range(runs):
            read_frame(frame)
        best = min(best, (time.perf_counter() - start) / runs)
    assert best < 1e-3, f"read_frame took {best * 1e6:.0f} us"


# --------------------------------------------------------------------------- synthetic tracks


@pytest.mark.asyncio
async def test_stamped_video_track() -> None:
    track = StampedVideoTrack(sender_id=777, width=320, height=240, fps=50)
    assert track.kind == "video"
    frames = [await track.recv() for _ in range(6)]
    stamps = [read_frame(f) for f in frames]
    assert all(s is not None and s.sender == 777 for s in stamps)
    assert [s.frame for s in stamps] == list(range(6))  # type: ignore[union-attr]
    pts = [f.pts for f in frames]
    assert pts[0] == 0
    assert all(b > a for a, b in zip(pts, pts[1:]))
    assert pts[1] - pts[0] == 90000 // 50
    assert all(f.time_base == fractions.Fraction(1, 90000) for f in frames)
    assert all((f.width, f.height, f.format.name) == (320, 240, "yuv420p") for f in frames)
    now_ms = int(time.time() * 1000) % 2**32
    assert all(0 <= (now_ms - s.clock_ms) % 2**32 < 5000 for s in stamps)  # type: ignore[union-attr]
    track.stop()
    with pytest.raises(MediaStreamError):
        await track.recv()


@pytest.mark.asyncio
async def test_stamped_video_track_is_paced() -> None:
    track = StampedVideoTrack(sender_id=1, width=320, height=240, fps=25)
    start = time.monotonic()
    for _ in range(6):
        await track.recv()
    elapsed = time.monotonic() - start
    track.stop()
    # 5 frame intervals of 40 ms after the first (immediate) frame.
    assert 0.18 <= elapsed < 0.6


@pytest.mark.asyncio
async def test_tone_audio_track() -> None:
    track = ToneAudioTrack()
    assert track.kind == "audio"
    frames = [await track.recv() for _ in range(5)]
    for frame in frames:
        assert frame.samples == 960
        assert frame.sample_rate == 48000
        assert frame.format.name == "s16"
        assert frame.time_base == fractions.Fraction(1, 48000)
    assert [f.pts for f in frames] == [0, 960, 1920, 2880, 3840]
    # A continuous sine: consecutive frames join without a jump, and it is not silence.
    pcm = np.concatenate([f.to_ndarray().reshape(-1) for f in frames]).astype(np.int32)
    assert np.abs(pcm).max() > 4000
    assert np.abs(np.diff(pcm)).max() < 32767 * 0.25 * 2 * np.pi * 440 / 48000 * 1.1
    track.stop()
    with pytest.raises(MediaStreamError):
        await track.recv()


@pytest.mark.asyncio
async def test_stop_while_waiting_raises() -> None:
    track = StampedVideoTrack(sender_id=2, width=320, height=240, fps=5)
    await track.recv()
    pending = asyncio.ensure_future(track.recv())
    await asyncio.sleep(0.01)
    track.stop()
    with pytest.raises(MediaStreamError):
        await pending


@pytest.mark.asyncio
async def test_tone_audio_track_other_rate() -> None:
    track = ToneAudioTrack(frequency_hz=1000.0, sample_rate=16000, ptime=0.01)
    frames = [await track.recv() for _ in range(3)]
    assert [f.samples for f in frames] == [160, 160, 160]
    assert [f.pts for f in frames] == [0, 160, 320]
    track.stop()
