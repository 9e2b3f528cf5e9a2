"""Evidence pictures: decoded video frames to bounded JPEG files, and back (for tests and review).

Encoding uses FFmpeg's MJPEG encoder through PyAV, already a dependency of the server (Pillow is not
one), converting and downscaling in one libswscale call. Pictures are bounded to 640 x 640 pixels
(aspect ratio kept) at quality 85: a 640x480 camera picture takes roughly 20-60 kB, and the
headless client's stamp still reads back after encoding, so a stored picture can be proven to be
the server's own copy of a given stream.
"""

from __future__ import annotations

import fractions
import struct

import av
import numpy as np

from .classifiers.image import Picture, fit_size, picture_size

__all__ = [
    "DEFAULT_QUALITY",
    "MAX_SIDE",
    "decode_jpeg",
    "encode_jpeg",
    "jpeg_size",
    "qscale_for",
]

DEFAULT_QUALITY = 85
MAX_SIDE = 640
MAX_DECODE_BYTES = 16 * 1024 * 1024
MAX_DECODE_SIDE = 8192

_SOI = b"\xff\xd8"
# Start-of-frame markers (baseline, progressive, lossless...); C4, C8 and CC are other segments.
_SOF_MARKERS = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
# Markers without a length field.
_STANDALONE = frozenset(range(0xD0, 0xDA)) | {0x01}


def qscale_for(quality: int) -> int:
    """FFmpeg MJPEG quantiser scale (1 best .. 31 worst) for a 1..100 quality, so that quality 85
    gives files about the size libjpeg/Pillow quality 85 gives (qscale 3)."""
    if not 1 <= quality <= 100:
        raise ValueError(f"quality must be between 1 and 100, got {quality}")
    return max(1, min(31, round((100 - quality) / 5)))


def encode_jpeg(
    picture: Picture,
    *,
    quality: int = DEFAULT_QUALITY,
    max_width: int = MAX_SIDE,
    max_height: int = MAX_SIDE,
) -> bytes:
    """JPEG bytes of ``picture`` (an ``av.VideoFrame`` in any pixel format, or an H x W x 3 uint8
    RGB array), downscaled to fit in ``max_width`` x ``max_height``. Raises ``ValueError`` for
    something that is not a picture."""
    qscale = qscale_for(quality)
    width, height = picture_size(picture)
    w, h = fit_size(width, height, max_width, max_height)
    w, h = max(2, w // 2 * 2), max(2, h // 2 * 2)  # 4:2:0 chroma wants even sizes
    if isinstance(picture, av.VideoFrame):
        frame = picture
    else:
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(picture), format="rgb24")
    interpolation = "AREA" if w < width / 2 else "BILINEAR"
    yuv = frame.reformat(width=w, height=h, format="yuvj420p", interpolation=interpolation)
    yuv.pts = 0
    encoder = av.CodecContext.create("mjpeg", "w")
    encoder.width = w
    encoder.height = h
    encoder.pix_fmt = "yuvj420p"
    encoder.time_base = fractions.Fraction(1, 1)
    encoder.qmin = encoder.qmax = qscale
    packets = encoder.encode(yuv) + encoder.encode(None)
    data = b"".join(bytes(p) for p in packets)
    if not data.startswith(_SOI):
        raise RuntimeError("the JPEG encoder produced no picture")
    return data


def jpeg_size(data: bytes) -> tuple[int, int]:
    """(width, height) read from a JPEG's header without decoding it; ``ValueError`` if the bytes
    are not a JPEG."""
    if not data.startswith(_SOI):
        raise ValueError("not a JPEG picture (no start-of-image marker)")
    i = 2
    while i + 4 <= len(data):
        if data[i] != 0xFF:
            raise ValueError("not a JPEG picture (bad marker)")
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker in _STANDALONE:
            i += 2
            continue
        (length,) = struct.unpack(">H", data[i + 2 : i + 4])
        if length < 2:
            raise ValueError("not a JPEG picture (bad segment length)")
        if marker in _SOF_MARKERS:
            if i + 9 > len(data):
                break
            height, width = struct.unpack(">HH", data[i + 5 : i + 9])
            if width == 0 or height == 0:
                raise ValueError("JPEG picture has no size")
            return width, height
        if marker == 0xDA:  # start of scan before any frame header
            break
        i += 2 + length
    raise ValueError("not a JPEG picture (no frame header)")


def decode_jpeg(data: bytes, *, max_bytes: int = MAX_DECODE_BYTES) -> np.ndarray:
    """An H x W x 3 uint8 RGB array from JPEG bytes. Raises ``ValueError`` for bytes that are not a
    JPEG picture, larger than ``max_bytes`` or wider/taller than 8192 pixels."""
    if len(data) > max_bytes:
        raise ValueError(f"JPEG picture too large: {len(data)} bytes (limit {max_bytes})")
    width, height = jpeg_size(data)
    if width > MAX_DECODE_SIDE or height > MAX_DECODE_SIDE:
        raise ValueError(f"JPEG picture too large: {width}x{height}")
    decoder = av.CodecContext.create("mjpeg", "r")
    try:
        frames = decoder.decode(av.Packet(data))
    except av.FFmpegError as exc:
        raise ValueError(f"cannot decode JPEG picture: {exc}") from exc
    if not frames:
        raise ValueError("cannot decode JPEG picture: no frame")
    return frames[0].to_ndarray(format="rgb24")
