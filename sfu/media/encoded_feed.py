"""A source that forwards a participant's media encoded, as the publisher sent it.

:class:`EncodedFeed` taps an inbound receiver (no decoder work) and hands complete encoded frames to
its sink when the sink's leg negotiated the same codec; otherwise it decodes on demand and hands over
pictures and sounds. It relays keyframe requests (RTCP PLI) and bitrate caps (REMB) to the
publisher, and decodes the publisher's current picture when asked.

This module is the I/O boundary of :mod:`.keyframes` and :mod:`.bandwidth`: it reads the clock and
passes ``now`` to them.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

import av
from aiortc import MediaStreamTrack, RTCRtpCodecParameters, RTCRtpReceiver

from .aiortc_hooks import server as hooks
from .bandwidth import RateMeter, UpstreamCap
from .encoded import EncodedFrame, FrameAssembler
from .feed import Feed
from .keyframes import KeyframeRequester
from .ondemand import OnDemandDecoder
from .source import SourceId

log = logging.getLogger(__name__)

#: A picture the on-demand decoder produced at most this long ago is still the current picture.
PICTURE_FRESH = 0.5


class EncodedFeed(Feed):
    """One participant's inbound track, as complete encoded frames (decoded only on demand)."""

    def __init__(
        self,
        source_id: SourceId,
        track: MediaStreamTrack,
        receiver: RTCRtpReceiver,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(source_id)
        self._receiver = receiver
        self._clock = clock
        self._codec: RTCRtpCodecParameters | None = None
        self.assembler = FrameAssembler(
            track.kind,
            lambda pt: hooks.receiver_codec(receiver, pt),
            self._on_frame,
            self.request_keyframe,
            clock,
        )
        self.keyframes = KeyframeRequester(
            lambda ssrc: hooks.send_pli(receiver, ssrc), lambda: self.assembler.ssrc
        )
        self.cap = UpstreamCap(
            lambda bps, ssrcs: hooks.send_remb(receiver, bps, ssrcs), lambda: self.assembler.ssrc
        )
        #: Bytes received from the publisher (what the watcher is sent), and their rate when asked.
        self.octets = 0
        self._publishing = RateMeter()
        self._decoder: OnDemandDecoder | None = None
        self._decoded: tuple[av.VideoFrame, float] | None = None  #: last picture decoded, when
        self._keyframe_waiters: list[asyncio.Future[EncodedFrame | None]] = []
        hooks.tap_receiver(receiver, self.assembler)
        if track.kind == "video":
            hooks.rewrite_receiver_remb(receiver, lambda bps: self.cap.clamp(bps, self._clock()))

    @property
    def codec(self) -> RTCRtpCodecParameters | None:
        """The codec of the last frame received (``None`` before the first)."""
        return self._codec

    def on_attach(self) -> None:
        now = self._clock()
        self.cap.clear(now)
        self._publishing.rate(self.octets, now)  # a baseline for the new watcher's first estimate
        if self._decoder is not None:
            self._decoder.restart()
        self.request_keyframe()

    def on_detach(self) -> None:
        self.cap.clear(self._clock())

    def request_keyframe(self) -> None:
        if self.kind == "video":
            self.keyframes.request(self._clock())

    def set_bitrate_cap(self, bps: int | None) -> None:
        if self.kind != "video":
            return
        if bps is None:
            self.cap.release()
        else:
            now = self._clock()
            self.cap.set(bps, now, self._publishing.rate(self.octets, now))

    async def picture(self, timeout: float) -> av.VideoFrame | None:
        """The publisher's current picture: the on-demand decoder's latest if it is fresh, else
        the next keyframe (asked for at once), decoded in a worker thread."""
        if self.kind != "video":
            return None
        if self._decoded is not None and self._clock() - self._decoded[1] <= PICTURE_FRESH:
            return self._decoded[0]
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        waiter: asyncio.Future[EncodedFrame | None] = loop.create_future()
        self._keyframe_waiters.append(waiter)
        self.request_keyframe()
        try:
            keyframe = await asyncio.wait_for(waiter, timeout)
            if keyframe is None:  # the feed closed
                return None
            decode = hooks.decoder_for(keyframe.codec)
            pictures = await asyncio.wait_for(
                loop.run_in_executor(None, decode, keyframe.data, keyframe.timestamp),
                max(0.0, deadline - loop.time()),
            )
        except asyncio.TimeoutError:
            return None
        except Exception as exc:  # a keyframe the decoder refuses  # noqa: BLE001
            log.debug("%s: picture decode failed: %r", self.id, exc)
            return None
        finally:
            if waiter in self._keyframe_waiters:
                self._keyframe_waiters.remove(waiter)
        video = [p for p in pictures if isinstance(p, av.VideoFrame)]
        return video[-1] if video else None

    def _on_frame(self, frame: EncodedFrame) -> None:
        self.items += 1
        self.octets += len(frame.data)
        self._media_arrived(frame.arrival)
        self._codec = frame.codec
        if frame.keyframe and self.kind == "video":
            self.keyframes.keyframe_arrived(frame.arrival)
            if self._keyframe_waiters:
                waiters, self._keyframe_waiters = self._keyframe_waiters, []
                for waiter in waiters:
                    if not waiter.done():
                        waiter.set_result(frame)
        self.keyframes.media_seen(frame.arrival)
        sink = self.sink
        if sink is None:
            return
        if sink.accepts(frame.codec):
            sink.deliver(self.id, frame)
            return
        if self._decoder is None:
            self._decoder = OnDemandDecoder(self._on_decoded, self.request_keyframe)
        self._decoder.submit(frame)

    def _on_decoded(self, frame: av.frame.Frame) -> None:
        if isinstance(frame, av.VideoFrame):
            self._decoded = (frame, self._clock())
        sink = self.sink
        if sink is not None:
            sink.deliver(self.id, frame)

    async def close(self) -> None:
        await super().close()
        waiters, self._keyframe_waiters = self._keyframe_waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)
        if self._decoder is not None:
            await self._decoder.close()
