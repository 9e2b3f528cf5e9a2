"""Pictures of an imported publisher, for a watcher whose leg has no codec in common with it.

Packets through a pipe are normally forwarded as they are. When the watcher's leg negotiated no
codec the publisher sends (say the publisher sends VP8, the watcher's browser takes only H.264),
the importing process assembles the publisher's frames from the piped packets
(:class:`~sfu.media.encoded.FrameAssembler`, as for a local publisher), decodes them on demand
(:class:`~sfu.media.ondemand.OnDemandDecoder`, in a worker thread) and hands the pictures to the
watcher's outbound track, whose encoder sends them in the watcher's codec: the same transcoding a
local partner with another codec gets.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

import av
from aiortc import RTCRtpCodecParameters

from ..encoded import EncodedFrame, FrameAssembler
from ..ondemand import OnDemandDecoder
from ..rtp import h264, vp8
from ..rtp.header import RtpView


@dataclass(slots=True)
class _Packet:
    """What the frame assembler reads of a packet (the fields it shares with aiortc's)."""

    sequence_number: int
    timestamp: int
    marker: bool
    payload_type: int
    ssrc: int
    payload: bytes
    _data: bytes  #: the codec bitstream the packet carries (depayloaded)


def depayload(mime: str, payload: bytes) -> bytes:
    if mime == "video/vp8":
        return vp8.depayload(payload)
    if mime == "video/h264":
        return h264.depayload(payload)
    return payload  # audio: the payload is the frame


class ImportedPictures:
    """Frames of one imported stream assembled from its packets, decoded, handed to ``deliver``."""

    def __init__(
        self,
        kind: str,
        codec_for: Callable[[int], RTCRtpCodecParameters | None],
        deliver: Callable[[av.frame.Frame], None],
        request_keyframe: Callable[[], None],
    ) -> None:
        self._codec_for = codec_for
        self._deliver = deliver
        self._request_keyframe = request_keyframe
        self._assembler = FrameAssembler(kind, codec_for, self._on_frame, request_keyframe)
        self._decoder: OnDemandDecoder | None = None

    @property
    def decoded(self) -> int:
        return 0 if self._decoder is None else self._decoder.decoded

    def add(self, view: RtpView, now: float) -> None:
        """One piped packet (the publisher's own numbering), arrived at ``now``."""
        codec = self._codec_for(view.payload_type)
        if codec is None:
            return
        payload = view.data[view.payload_start : view.payload_end]
        packet = _Packet(view.sequence, view.timestamp, view.marker, view.payload_type, view.ssrc, payload,
                         depayload(codec.mimeType.lower(), payload))
        self._assembler.receive(cast(Any, packet), now)

    def _on_frame(self, frame: EncodedFrame) -> None:
        if self._decoder is None:
            self._decoder = OnDemandDecoder(self._deliver, self._request_keyframe)
        self._decoder.submit(frame)

    def close(self) -> None:
        """Stop decoding (the decoder's thread ends in the background)."""
        decoder, self._decoder = self._decoder, None
        if decoder is not None:
            task = asyncio.ensure_future(decoder.close())
            task.add_done_callback(lambda t: t.cancelled() or t.exception())
