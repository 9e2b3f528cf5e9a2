"""Picture conversions shared by the classifiers, the sampler and the evidence encoder.

Everything goes through libswscale (PyAV), which is already a dependency: colour conversion and
downscaling happen in one call, in C, without an intermediate full-size RGB copy.

Setting up a libswscale context costs more than using it (about 1-2 ms against 0.3 ms for a
640x480 -> 320x240 downscale), and PyAV keeps one per frame object, so converting a new frame
each time pays the set-up every time. Code converting many frames passes one long-lived
``reformatter`` (:class:`av.video.reformatter.VideoReformatter`), which keeps its context while
sizes and formats stay the same. A reformatter belongs to one thread.
"""

from __future__ import annotations

from dataclasses import dataclass

import av
import numpy as np
from av.video.reformatter import VideoReformatter

from .base import check_rgb

__all__ = [
    "CompactPicture",
    "Picture",
    "VideoReformatter",
    "compact",
    "fit_size",
    "picture_size",
    "resize_rgb",
    "to_rgb",
]

Picture = av.VideoFrame | np.ndarray
"""A decoded video frame (any pixel format) or an H x W x 3 uint8 RGB array."""


def fit_size(width: int, height: int, max_width: int, max_height: int) -> tuple[int, int]:
    """The largest size with the aspect ratio of ``width`` x ``height`` that fits in
    ``max_width`` x ``max_height`` (never larger than the original; at least 2x2; even when
    scaled, so the result also suits 4:2:0 encoders)."""
    if width <= 0 or height <= 0:
        raise ValueError(f"bad picture size {width}x{height}")
    if max_width < 2 or max_height < 2:
        raise ValueError(f"bad bounding box {max_width}x{max_height}")
    scale = min(1.0, max_width / width, max_height / height)
    if scale >= 1.0:
        return width, height
    w = max(2, int(width * scale) // 2 * 2)
    h = max(2, int(height * scale) // 2 * 2)
    return w, h


def picture_size(picture: Picture) -> tuple[int, int]:
    """(width, height) of a frame or an RGB array; ``TypeError``/``ValueError`` for anything
    else."""
    if isinstance(picture, av.VideoFrame):
        if picture.width < 2 or picture.height < 2:
            raise ValueError(f"picture too small: {picture.width}x{picture.height}")
        return picture.width, picture.height
    rgb = check_rgb(picture)
    return rgb.shape[1], rgb.shape[0]


def resize_rgb(
    rgb: np.ndarray, width: int, height: int, reformatter: VideoReformatter | None = None
) -> np.ndarray:
    """``rgb`` scaled to ``width`` x ``height`` (bilinear; area averaging when shrinking a lot)."""
    check_rgb(rgb)
    if (rgb.shape[1], rgb.shape[0]) == (width, height):
        return rgb
    frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
    return _reformat(frame, width, height, "rgb24", reformatter)


def to_rgb(
    picture: Picture, max_side: int = 0, reformatter: VideoReformatter | None = None
) -> np.ndarray:
    """An H x W x 3 uint8 RGB copy of ``picture``, downscaled to fit in ``max_side`` x
    ``max_side`` when ``max_side`` > 0 (aspect ratio kept)."""
    width, height = picture_size(picture)
    w, h = (width, height) if max_side <= 0 else fit_size(width, height, max_side, max_side)
    if isinstance(picture, av.VideoFrame):
        return _reformat(picture, w, h, "rgb24", reformatter)
    return resize_rgb(picture, w, h, reformatter)


def _reformat(
    frame: av.VideoFrame,
    width: int,
    height: int,
    fmt: str,
    reformatter: VideoReformatter | None,
) -> np.ndarray:
    shrink = min(width / frame.width, height / frame.height)
    interpolation = "AREA" if shrink < 0.5 else "BILINEAR"
    if reformatter is None:
        out = frame.reformat(width=width, height=height, format=fmt, interpolation=interpolation)
    else:
        out = reformatter.reformat(
            frame, width=width, height=height, format=fmt, interpolation=interpolation
        )
    return out.to_ndarray()


@dataclass(frozen=True)
class CompactPicture:
    """A downscaled picture, cheap to hand to another process: the yuv420p planes of a video
    frame (half the bytes of RGB, and scaling without colour conversion costs the sender about
    half as much), or RGB for a picture that was RGB already."""

    format: str
    """``yuv420p``: ``data`` is the (H*3/2) x W array of ``VideoFrame.to_ndarray``; ``rgb24``:
    ``data`` is H x W x 3."""
    data: np.ndarray
    width: int
    height: int

    def to_rgb(self, reformatter: VideoReformatter | None = None) -> np.ndarray:
        """The picture as H x W x 3 RGB (converted in the receiving process)."""
        if self.format == "rgb24":
            return self.data
        frame = av.VideoFrame.from_ndarray(self.data, format="yuv420p")
        return _reformat(frame, self.width, self.height, "rgb24", reformatter)


def compact(
    picture: Picture, max_side: int = 0, reformatter: VideoReformatter | None = None
) -> CompactPicture:
    """``picture`` downscaled to fit in ``max_side`` x ``max_side`` (when > 0), as a
    :class:`CompactPicture`."""
    width, height = picture_size(picture)
    w, h = (width, height) if max_side <= 0 else fit_size(width, height, max_side, max_side)
    if isinstance(picture, av.VideoFrame) and w % 2 == 0 and h % 2 == 0:
        planes = _reformat(picture, w, h, "yuv420p", reformatter)
        return CompactPicture("yuv420p", planes, w, h)
    return CompactPicture("rgb24", to_rgb(picture, max_side, reformatter), w, h)
