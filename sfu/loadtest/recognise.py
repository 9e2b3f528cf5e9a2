"""Recognising received frames by their bytes instead of decoding them (``sfu loadtest --no-decode``).

Every client replays a pre-encoded loop (:mod:`.media`). When the server forwards what publishers
send (the ``packet`` and ``passthrough`` forwarding modes), each video frame a client receives is,
byte for byte, one frame of some client's loop. A :class:`FrameCatalog` of every loop's frames (a
short digest -> sender and loop index) then says who sent a frame and which one, exactly as the
stamp drawn in its pixels would, for a hash instead of a VP8 decode: the load generator drives many
more pairs from the same cores. A frame the catalog does not know (a transcoding server re-encodes
what it forwards) is counted as unstamped, and the report says so.

:func:`tap_frames` hands a client's received frames over undecoded, for the catalog to name: the
receiver's depayloaded packets are assembled into frames (:class:`~sfu.media.encoded.FrameAssembler`, as the
server's frame path does) and aiortc's decoder thread is ended.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Callable, Coroutine, Iterable
from typing import Any

from aiortc import RTCRtpReceiver

from ..headless.stamp import Stamp
from ..media.aiortc_hooks import server as hooks
from ..media.aiortc_hooks import testing
from ..media.encoded import EncodedFrame, FrameAssembler
from ..media.keyframes import KeyframeRequester
from .media import VideoLoop, loop_stamp


def digest(data: bytes) -> bytes:
    return hashlib.blake2b(data, digest_size=8).digest()


class FrameCatalog:
    """Every frame of the given loops (both the chained and the intra versions), by digest."""

    def __init__(self, loops: Iterable[VideoLoop]) -> None:
        self._known: dict[bytes, Stamp] = {}
        for loop in loops:
            for index, (chained, intra) in enumerate(zip(loop.chain, loop.intra)):
                stamp = loop_stamp(loop.sender, index, loop.spec)
                self._known[digest(chained)] = self._known[digest(intra)] = stamp

    def __len__(self) -> int:
        return len(self._known)

    def stamp(self, data: bytes) -> Stamp | None:
        """The stamp the frame's pixels carry, or ``None`` for a frame no loop holds."""
        return self._known.get(digest(data))


def tap_frames(receiver: RTCRtpReceiver, kind: str, on_frame: Callable[[EncodedFrame], None]) -> FrameAssembler:
    """Hand ``receiver``'s frames to ``on_frame`` undecoded (call before media flows). While video
    frames cannot be assembled (a loss not repaired), a keyframe is asked for, as the server asks
    its publishers (:class:`~sfu.media.keyframes.KeyframeRequester`: at most every half second)."""
    keyframes = KeyframeRequester(lambda ssrc: _spawn(testing.send_pli(receiver, ssrc)), lambda: assembler.ssrc)

    def frame(encoded: EncodedFrame) -> None:
        if encoded.keyframe:
            keyframes.keyframe_arrived(encoded.arrival)
        on_frame(encoded)

    def broken() -> None:
        if kind == "video":
            keyframes.request(time.monotonic())

    assembler = FrameAssembler(kind, lambda pt: hooks.receiver_codec(receiver, pt), frame, broken)
    hooks.tap_receiver(receiver, assembler)
    return assembler


def _spawn(request: Coroutine[Any, Any, None]) -> None:
    asyncio.ensure_future(request)
