"""Exporting: one local publisher's packets sent to one other process.

An :class:`Export` taps the publisher's :class:`~sfu.media.packet_feed.PacketFeed` objects (audio and
video, each as the feed receives it: SRTP removed, RTX unwrapped) and sends every packet to the
importing process, tagged with a random stream tag per kind. It describes the streams (tags, the
publisher's leg: payload types -> codecs, header extension ids; hidden or not) on start, whenever
the leg changes, when asked, and every second (the caller's timer), so a lost description costs at
most a second. While the publisher is hidden no video is sent (audio continues). Recent video packets
are kept (:class:`~sfu.media.rtp.history.PacketHistory`, keyed by the publisher's own sequence
numbers) to answer the importer's NACKs for packets the pipe lost.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable

from ..packet_feed import PacketFeed
from ..rtp.history import PacketHistory
from ..rtp.inbound import Arrival
from ..rtp.legs import InboundLeg
from ..source import Source
from . import messages
from .counters import PipeCounters
from .peer import PipePeer
from .wire import Kind

log = logging.getLogger(__name__)

#: Sends one body of a kind to a peer (sealed with the peer's key).
Send = Callable[[PipePeer, Kind, bytes], None]
#: Queues one media entry for a peer: its header (:data:`~.messages.entry_header`), the packet, whether
#: it ends a picture or is a sound, whether it is a repair (see :meth:`.batching.MediaBatches.add`).
SendMedia = Callable[[PipePeer, bytes, bytes, bool, bool], None]


class Export:
    """One local publisher's media sent to one process (``to``) while it exists."""

    def __init__(
        self, publisher: str, to: PipePeer, send: Send, send_media: SendMedia, counters: PipeCounters, *, hidden: bool
    ) -> None:
        self.publisher = publisher
        self.to = to
        self.hidden = hidden
        self._send = send
        self._send_media = send_media
        self._counters = counters
        self.tags = {kind: random.getrandbits(32) for kind in ("audio", "video")}
        self.feeds: dict[str, PacketFeed] = {}
        self._taps: dict[str, Callable[[Arrival, float], None]] = {}
        self._described: dict[str, InboundLeg] = {}
        self.history = PacketHistory()
        self._refused: set[str] = set()

    def add_feed(self, source: Source) -> None:
        """Send ``source``'s packets from now on (a publisher's track that arrived later, too)."""
        kind = source.kind
        if not isinstance(source, PacketFeed):
            if kind not in self._refused:
                self._refused.add(kind)
                log.warning("%s/%s cannot be piped: forwarding packets is off", self.publisher, kind)
            return
        if self.feeds.get(kind) is source:
            return
        self._remove_tap(kind)
        tap = self._tap(source)
        source.taps.append(tap)
        self.feeds[kind] = source
        self._taps[kind] = tap
        if source.leg is not None:
            self.describe()

    def _tap(self, feed: PacketFeed) -> Callable[[Arrival, float], None]:
        kind = feed.kind
        video = kind == "video"
        tag = self.tags[kind]
        to, send, counters = self.to, self._send_media, self._counters
        history = self.history
        described = self._described
        header = messages.entry_header
        sent_packets, sent_bytes = counters.packets_sent, counters.bytes_sent

        def tap(arrival: Arrival, now: float) -> None:
            if video and self.hidden:
                return
            if described.get(kind) is not feed.leg:
                self.describe()
            data = arrival.view.data
            if video:
                history.add(arrival.view.sequence, data, now)
            send(to, header(tag, len(data)), data, not video or arrival.view.marker, False)
            sent_packets[kind] += 1
            sent_bytes[kind] += len(data)

        return tap

    def describe(self, *, ended: bool = False) -> None:
        streams = []
        for kind, feed in self.feeds.items():
            if feed.leg is not None:
                self._described[kind] = feed.leg
                streams.append(messages.StreamInfo(kind, self.tags[kind], feed.leg))
        body = messages.encode_describe(messages.Describe(self.publisher, tuple(streams), self.hidden, ended))
        self._send(self.to, Kind.DESCRIBE, body)
        self._counters.control_sent += 1

    def set_hidden(self, hidden: bool) -> None:
        """Hidden: stop sending video (audio continues) and tell the importer at once."""
        if hidden != self.hidden:
            self.hidden = hidden
            self.describe()

    def resend(self, sequences: tuple[int, ...], now: float) -> int:
        """Send again the video packets the importer NACKed that are still in the history."""
        if self.hidden or "video" not in self.feeds:
            return 0
        count = 0
        tag = self.tags["video"]
        for sequence in sequences:
            packet = self.history.get(sequence, now)
            if packet is not None:
                self._send_media(self.to, messages.entry_header(tag, len(packet)), packet, True, True)
                count += 1
        self._counters.resent += count
        return count

    def _remove_tap(self, kind: str) -> None:
        feed, tap = self.feeds.pop(kind, None), self._taps.pop(kind, None)
        if feed is not None and tap is not None and tap in feed.taps:
            feed.taps.remove(tap)

    def close(self, *, tell: bool = True) -> None:
        """Stop sending; tell the importer the export ended (unless the peer is gone anyway)."""
        for kind in list(self.feeds):
            self._remove_tap(kind)
        if tell:
            self.describe(ended=True)
