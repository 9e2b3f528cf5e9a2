"""Recognising received frames by their bytes instead of decoding them (``sfu loadtest --no-decode``).

Every client replays a pre-encoded loop (:mod:`.media`). When the server forwards what publishers
send (the ``packet`` and ``passthrough`` forwarding modes), each video frame a client receives is,
byte for byte, one frame of some client's loop. A :class:`FrameCatalog` of every loop's frames (a
short digest -> sender and loop index) then says who sent a frame and which one, exactly as the
stamp drawn in its pixels would, for a hash instead of a VP8 decode: the load generator drives many
more pairs from the same cores. A frame the catalog does not know (a transcoding server re-encodes
what it forwards) is counted as unstamped, and the report says so.

:func:`tap_frames` puts the catalog between a client's receiver and its recorder: the receiver's
depayloaded packets are assembled into frames (:class:`~sfu.media.encoded.FrameAssembler`, as the
server's frame path does) and aiortc's decoder thread is ended.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Callable, Iterable

from aiortc import RTCRtpReceiver

from ..headless.stamp import Stamp
from ..media.aiortc_hooks import server as hooks
from ..media.aiortc_hooks import testing
from ..media.encoded import EncodedFrame, FrameAssembler
from .media import VideoLoop

#: A keyframe is asked of the sender at most this often while frames cannot be assembled.
PLI_INTERVAL = 0.5


def digest(data: bytes) -> bytes:
    return hashlib.blake2b(data, digest_size=8).digest()


class FrameCatalog:
    """Every frame of the given loops (both the chained and the intra versions), by digest."""

    def __init__(self, loops: Iterable[VideoLoop]) -> None:
        self._known: dict[bytes, tuple[int, int]] = {}
        self._frame_ms = 1000.0
        for loop in loops:
            self._frame_ms = 1000.0 / loop.spec.fps
            for index, (chained, intra) in enumerate(zip(loop.chain, loop.intra)):
                self._known[digest(chained)] = self._known[digest(intra)] = (loop.sender, index)

    def __len__(self) -> int:
        return len(self._known)

    def stamp(self, data: bytes) -> Stamp | None:
        """The stamp the frame's pixels carry, or ``None`` for a frame no loop holds."""
        found = self._known.get(digest(data))
        if found is None:
            return None
        sender, index = found
        return Stamp(sender, index, int(index * self._frame_ms))  # as media.encode_video_loop drew it


def tap_frames(receiver: RTCRtpReceiver, kind: str, on_frame: Callable[[EncodedFrame], None]) -> FrameAssembler:
    """Hand ``receiver``'s frames to ``on_frame`` undecoded (call before media flows). While a video
    frame cannot be assembled (loss not repaired), a keyframe is asked for every half second."""
    asked = [0.0]

    def broken() -> None:
        now = time.monotonic()
        if kind == "video" and assembler.ssrc is not None and now - asked[0] >= PLI_INTERVAL:
            asked[0] = now
            asyncio.ensure_future(testing.send_pli(receiver, assembler.ssrc))

    assembler = FrameAssembler(kind, lambda pt: hooks.receiver_codec(receiver, pt), on_frame, broken)
    hooks.tap_receiver(receiver, assembler)
    return assembler
