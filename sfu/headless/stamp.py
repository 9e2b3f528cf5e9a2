"""Machine-readable "stamp" drawn into video frames.

A stamp carries the sending client's id, a frame counter and the sender's wall clock. It is drawn as
a band of black/white cells at the top of the picture, large enough to survive lossy VP8/H.264
encoding, decoding and rescaling, so that a headless test client can tell whose video it receives,
count lost frames and measure glass-to-glass latency.

Layout: ``ROWS`` x ``COLS`` cells covering the full width and the top ``ROWS / ROW_DIVISOR`` of the
height. Every cell holds one bit, row-major, most significant bit first::

    sync (16 bits, fixed) | sender (16) | frame (16) | clock_ms (32) | CRC-16/CCITT-FALSE (16)

The CRC covers the 8 payload bytes. Geometry is proportional to the frame size, so a stamp written at
640x480 is still readable after the frame has been rescaled to 320x240 (or any other size).

Reading samples a 3x3 grid of points in the middle of each cell on the luma only, averages them,
and thresholds at the midpoint of the darkest and brightest cell. A frame is rejected (``None``)
when the contrast is too low (a plain grey frame), when any cell is ambiguous (noise, or a picture
that is not a stamp), when the sync bits differ or when the CRC fails.
"""

from __future__ import annotations

import binascii
import struct
from dataclasses import dataclass

import av
import numpy as np

__all__ = [
    "Stamp",
    "draw",
    "read",
    "make_frame",
    "make_background",
    "read_frame",
    "read_luma",
    "ROWS",
    "COLS",
    "ROW_DIVISOR",
]

ROWS = 4
"""Rows of cells in the stamp band."""
COLS = 24
"""Cells per row."""
ROW_DIVISOR = 16
"""Each row is ``height / ROW_DIVISOR`` pixels high, so the band is the top quarter of the frame."""

SYNC = 0xC5A3
"""Fixed 16-bit pattern at the start of the stamp; guarantees black and white cells are present."""

_BITS = ROWS * COLS  # 96 = 16 sync + 64 payload + 16 CRC
_SAMPLE_OFFSETS = (0.3, 0.5, 0.7)  # sample points inside a cell, as fractions of the cell size
_MIN_CONTRAST = 64.0  # minimum luma difference between the darkest and brightest cell
_AMBIGUITY = 0.2  # cells within this fraction of the contrast around the threshold are rejected

# Luma written into Y planes (limited range, as used by yuv420p video).
_Y_BLACK = 16
_Y_WHITE = 235

# Pixel formats whose first plane is 8-bit luma at full resolution (read without conversion).
_LUMA_PLANE_FORMATS = frozenset(
    {
        "yuv420p",
        "yuvj420p",
        "yuv422p",
        "yuvj422p",
        "yuv444p",
        "yuvj444p",
        "nv12",
        "nv21",
        "gray",
        "gray8",
    }
)

_LUMA_WEIGHTS = np.array([0.299, 0.587, 0.114], dtype=np.float32)


@dataclass(frozen=True)
class Stamp:
    """What a test client draws into each video frame it sends."""

    sender: int
    """0..65535, identity of the sending client."""
    frame: int
    """0..65535, frame counter (wraps)."""
    clock_ms: int
    """0..2**32-1, sender wall clock in ms (``time.time()*1000 mod 2**32``)."""

    def __post_init__(self) -> None:
        if not 0 <= self.sender <= 0xFFFF:
            raise ValueError(f"sender out of range: {self.sender}")
        if not 0 <= self.frame <= 0xFFFF:
            raise ValueError(f"frame out of range: {self.frame}")
        if not 0 <= self.clock_ms <= 0xFFFFFFFF:
            raise ValueError(f"clock_ms out of range: {self.clock_ms}")


# --------------------------------------------------------------------------- encoding / decoding


def _payload(stamp: Stamp) -> bytes:
    return struct.pack(">HHI", stamp.sender, stamp.frame, stamp.clock_ms)


def _crc(payload: bytes) -> int:
    # binascii.crc_hqx is CRC-16 with polynomial 0x1021; initial value 0xFFFF = CRC-16/CCITT-FALSE.
    return binascii.crc_hqx(payload, 0xFFFF)


def _stamp_bits(stamp: Stamp) -> np.ndarray:
    """The 96 cell values (0/1) of ``stamp`` as a ROWS x COLS uint8 array."""
    payload = _payload(stamp)
    raw = struct.pack(">H", SYNC) + payload + struct.pack(">H", _crc(payload))
    return np.unpackbits(np.frombuffer(raw, dtype=np.uint8)).reshape(ROWS, COLS)


def _bits_to_stamp(bits: np.ndarray) -> Stamp | None:
    raw = np.packbits(bits.reshape(-1)).tobytes()
    sync, sender, frame, clock_ms, crc = struct.unpack(">HHHIH", raw)
    if sync != SYNC or crc != _crc(raw[2:10]):
        return None
    return Stamp(sender, frame, clock_ms)


def _cell_edges(width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel boundaries of the cells: (ROWS + 1) y edges and (COLS + 1) x edges."""
    ys = np.rint(np.arange(ROWS + 1) * (height / ROW_DIVISOR)).astype(np.intp)
    xs = np.rint(np.arange(COLS + 1) * (width / COLS)).astype(np.intp)
    return ys, xs


def _sample_points(width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    """Row and column indices of the 3x3 sample points of every cell, grouped by cell."""
    offsets = np.asarray(_SAMPLE_OFFSETS)
    ys = ((np.arange(ROWS)[:, None] + offsets) * (height / ROW_DIVISOR)).astype(np.intp).ravel()
    xs = ((np.arange(COLS)[:, None] + offsets) * (width / COLS)).astype(np.intp).ravel()
    return ys, xs


def _cell_means(samples: np.ndarray) -> np.ndarray:
    """(ROWS*3, COLS*3) sampled luma -> (ROWS, COLS) mean per cell."""
    n = len(_SAMPLE_OFFSETS)
    return samples.reshape(ROWS, n, COLS, n).mean(axis=(1, 3), dtype=np.float32)


def _decode_cells(means: np.ndarray) -> Stamp | None:
    lo = float(means.min())
    hi = float(means.max())
    contrast = hi - lo
    if contrast < _MIN_CONTRAST:
        return None
    threshold = (lo + hi) / 2.0
    if np.any(np.abs(means - threshold) < _AMBIGUITY * contrast):
        return None
    return _bits_to_stamp((means > threshold).astype(np.uint8))


def _check_size(width: int, height: int) -> None:
    if height < ROW_DIVISOR or width < COLS:
        raise ValueError(f"frame too small for a stamp: {width}x{height}")


# --------------------------------------------------------------------------- public API


def draw(image: np.ndarray, stamp: Stamp) -> None:
    """Draw ``stamp`` into ``image`` in place.

    ``image`` is an H x W x C uint8 array (RGB, BGR, RGBA...: cells are pure black/white, so the
    channel order does not matter), or an H x W uint8 luma (Y) plane, in which case limited-range
    values 16/235 are used.
    """
    if image.ndim not in (2, 3) or image.dtype != np.uint8:
        raise ValueError("image must be a HxW or HxWxC uint8 array")
    height, width = image.shape[:2]
    _check_size(width, height)
    black, white = (_Y_BLACK, _Y_WHITE) if image.ndim == 2 else (0, 255)
    _draw_cells(image, stamp, width, height, black, white)


def _draw_cells(
    target: np.ndarray, stamp: Stamp, width: int, height: int, black: int, white: int
) -> None:
    ys, xs = _cell_edges(width, height)
    cells = np.where(_stamp_bits(stamp), np.uint8(white), np.uint8(black)).astype(np.uint8)
    band = np.repeat(np.repeat(cells, np.diff(ys), axis=0), np.diff(xs), axis=1)
    if target.ndim == 3:
        band = band[:, :, None]
    target[: ys[-1], :width] = band


def read(image: np.ndarray) -> Stamp | None:
    """Read the stamp from an H x W x 3 (RGB/BGR) or H x W (luma) uint8 array; ``None`` if absent."""
    if image.ndim == 2:
        return read_luma(image)
    if image.ndim != 3 or image.shape[2] < 3:
        raise ValueError("image must be a HxW or HxWx3 array")
    height, width = image.shape[:2]
    if height < ROW_DIVISOR or width < COLS:
        return None
    ys, xs = _sample_points(width, height)
    rgb = image[np.ix_(ys, xs)][:, :, :3].astype(np.float32)
    # Rec.601 luma weights are symmetric enough for black/white cells that RGB vs BGR is irrelevant.
    return _decode_cells(_cell_means(rgb @ _LUMA_WEIGHTS))


def read_luma(luma: np.ndarray) -> Stamp | None:
    """Read the stamp from a H x W luma plane (any range); ``None`` if absent."""
    height, width = luma.shape[:2]
    if height < ROW_DIVISOR or width < COLS:
        return None
    ys, xs = _sample_points(width, height)
    return _decode_cells(_cell_means(luma[np.ix_(ys, xs)]))


def read_frame(frame: av.VideoFrame) -> Stamp | None:
    """Read the stamp from a decoded video frame; ``None`` if absent.

    For planar YUV/NV12/gray frames (what decoders produce) the Y plane is used in place, without
    any conversion or copy; other formats are converted to gray first (slower).
    """
    if frame.format.name in _LUMA_PLANE_FORMATS:
        plane = frame.planes[0]
        width, height, stride = frame.width, frame.height, plane.line_size
        buf = np.frombuffer(plane, dtype=np.uint8, count=stride * height)  # type: ignore[call-overload]  # a buffer
        luma = buf.reshape(height, stride)[:, :width]
    else:
        luma = frame.to_ndarray(format="gray")
    return read_luma(luma)


def make_background(width: int = 640, height: int = 480) -> np.ndarray:
    """A static, textured yuv420p picture (as the (H*3/2) x W array ``VideoFrame.from_ndarray``
    takes for ``format="yuv420p"``). Compute it once and pass it to :func:`make_frame`."""
    _check_even(width, height)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    luma = (
        60.0
        + 100.0 * (xx / width) * (yy / height)  # diagonal gradient
        + 25.0 * np.sin(xx / width * 40.0) * np.cos(yy / height * 30.0)  # mild texture
    )
    cy, cx = np.mgrid[0 : height // 2, 0 : width // 2].astype(np.float32)
    u = 128.0 + 40.0 * (cx / (width / 2) - 0.5)
    v = 128.0 + 40.0 * (cy / (height / 2) - 0.5)
    out = np.empty((height * 3 // 2, width), dtype=np.uint8)
    out[:height] = np.clip(luma, 16, 235).astype(np.uint8)
    chroma = out[height:].reshape(-1)  # U plane then V plane, each (H/2) x (W/2)
    quarter = (height // 2) * (width // 2)
    chroma[:quarter] = u.astype(np.uint8).ravel()
    chroma[quarter:] = v.astype(np.uint8).ravel()
    return out


def make_frame(
    stamp: Stamp,
    width: int = 640,
    height: int = 480,
    background: np.ndarray | None = None,
) -> av.VideoFrame:
    """A yuv420p ``VideoFrame`` showing ``background`` with moving bars and ``stamp`` on top.

    ``background`` is either a yuv420p array as returned by :func:`make_background` (fast: pass a
    precomputed one for every frame) or an H x W x 3 RGB array (converted on every call, slower).
    When ``None`` a default background is computed on every call, which costs a few milliseconds:
    callers producing many frames should precompute it with :func:`make_background`.
    The returned frame has no pts/time_base; the caller sets them.
    """
    _check_even(width, height)
    _check_size(width, height)
    if background is None:
        buf = make_background(width, height)
    elif background.shape == (height * 3 // 2, width) and background.dtype == np.uint8:
        buf = background.copy()
    elif background.shape == (height, width, 3) and background.dtype == np.uint8:
        rgb = av.VideoFrame.from_ndarray(np.ascontiguousarray(background), format="rgb24")
        buf = rgb.reformat(format="yuv420p").to_ndarray()
    else:
        raise ValueError(
            f"background must be a ({height * 3 // 2}, {width}) yuv420p array or a "
            f"({height}, {width}, 3) RGB array, got {background.shape} {background.dtype}"
        )

    luma = buf[:height]
    band_h = int(_cell_edges(width, height)[0][-1])

    # Moving content below the band: a vertical bar sweeping right and a horizontal bar sweeping
    # down, positions derived from the frame counter so consecutive frames differ.
    bar_w = max(2, width // 20)
    step_x = max(1, width // 128)
    x0 = (stamp.frame * step_x) % (width - bar_w)
    luma[band_h:, x0 : x0 + bar_w] = 220
    area_h = height - band_h
    bar_h = max(2, area_h // 16)
    step_y = max(1, height // 160)
    y0 = band_h + (stamp.frame * step_y) % max(1, area_h - bar_h)
    luma[y0 : y0 + bar_h, :] = 40

    # The stamp itself: black/white luma cells on neutral chroma.
    _draw_cells(luma, stamp, width, height, _Y_BLACK, _Y_WHITE)
    chroma = buf[height:].reshape(2, height // 2, width // 2)
    chroma[:, : (band_h + 1) // 2, :] = 128

    return av.VideoFrame.from_ndarray(buf, format="yuv420p")


def _check_even(width: int, height: int) -> None:
    if width <= 0 or height <= 0 or width % 2 or height % 2:
        raise ValueError(f"yuv420p frames need positive even dimensions, got {width}x{height}")
