"""The media pipe: one UDP socket per process carrying media between processes.

In the spirit of mediasoup's PipeTransport. A :class:`MediaPipe` exports local publishers to other
processes (:meth:`MediaPipe.export`) and imports publishers served elsewhere
(:meth:`MediaPipe.expect`), which the process's :class:`~sfu.media.router.MediaRouter` then finds
through :meth:`MediaPipe.sources` (the pipe is its ``elsewhere`` directory). Every datagram is
sealed with the receiving process's key (:mod:`.wire`); anything refused is dropped and counted,
with at most one log line per ten seconds.

Pairing and signaling decide who exports what to whom: the pipe only carries media, descriptions
and feedback, and tells its router when a publisher's track becomes known or a remote publisher is
hidden.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..packet_feed import PacketFeed
from ..source import KINDS, Source, SourceId
from . import messages
from .batching import MediaBatches
from .counters import PipeCounters, RateLimitedLog
from .export import Export
from .imported import ImportedSource
from .peer import PipePeer
from .wire import Kind, Opened, Opener, Refused, Sealer, new_key

if TYPE_CHECKING:
    from ..router import MediaRouter

log = logging.getLogger(__name__)

#: Seconds between two descriptions of each export (a lost one costs at most this long).
DESCRIBE_INTERVAL = 1.0

@dataclass
class _Import:
    origin: PipePeer
    sources: dict[str, ImportedSource]
    sender: bytes | None = None  #: the exporting process's nonce prefix, once heard from
    counter: int = -1  #: the newest description applied
    tags: set[tuple[bytes, int]] = field(default_factory=set)
    hidden: bool = False


class MediaPipe:
    """One process's pipe: exports local publishers, imports remote ones (a ``SourceDirectory``)."""

    def __init__(
        self,
        bind: tuple[str, int] = ("127.0.0.1", 0),
        *,
        advertise: str | None = None,
        key: bytes | None = None,
        clock: Callable[[], float] = time.monotonic,
        on_hidden: Callable[[str, bool], None] | None = None,
        batch_window: float = 0.0,
    ) -> None:
        """``bind``: where the UDP socket listens (port 0: any free one); ``advertise``: the host
        other processes send to, if not the bound one (e.g. binding 0.0.0.0); ``on_hidden(publisher,
        hidden)``: the origin of an imported publisher hid or showed their video (default: this
        pipe's router hides or shows them to local watchers); ``batch_window``: seconds media may
        wait to share a datagram (:mod:`.batching`)."""
        self._bind = bind
        self._advertise = advertise
        self._key = new_key() if key is None else key
        self._clock = clock
        self.on_hidden = on_hidden
        self._sealer = Sealer()
        self._opener = Opener(self._key)
        self.counters = PipeCounters()
        self._refusals = RateLimitedLog(log)
        self._transport: asyncio.DatagramTransport | None = None
        self._router: MediaRouter | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._exports: dict[str, dict[tuple[str, int], Export]] = {}
        self._imports: dict[str, _Import] = {}
        self._by_tag: dict[tuple[bytes, int], ImportedSource] = {}
        self._address: tuple[str, int] | None = None
        self._batches = MediaBatches(lambda peer, body: self._send(peer, Kind.MEDIA, body),
                                     lambda: self._transport is not None, batch_window)

    # -- life ------------------------------------------------------------------------------------
    async def start(self, router: MediaRouter) -> None:
        """Bind the socket and follow ``router``'s local participants (create the router with
        ``MediaRouter(elsewhere=pipe)`` so it finds imported publishers here)."""
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(lambda: _Protocol(self), local_addr=self._bind)
        self._transport = transport
        host, port = transport.get_extra_info("sockname")[:2]
        self._address = (self._advertise or host, port)
        self._router = router
        router.observe(self)
        self._timer = loop.call_later(DESCRIBE_INTERVAL, self._tick)
        log.info("media pipe listening on %s:%d", host, port)

    async def close(self) -> None:
        for exports in self._exports.values():
            for export in exports.values():
                export.close()
        self._exports.clear()
        self._batches.flush()
        for publisher in list(self._imports):
            self.forget(publisher)
        if self._timer is not None:
            self._timer.cancel()
        if self._transport is not None:
            self._transport.close()
            self._transport = None

    @property
    def address(self) -> tuple[str, int]:
        """``(host, port)`` other processes send to (known once started)."""
        if self._address is None:
            raise RuntimeError("the media pipe is not started")
        return self._address

    @property
    def key(self) -> bytes:
        """This process's receive key: whoever sends here seals with it."""
        return self._key

    @property
    def peer(self) -> PipePeer:
        """This process as others name it (advertise it, e.g. ``pipe.peer.encode()`` in Redis)."""
        return PipePeer(self.address, self._key)

    # -- exporting -------------------------------------------------------------------------------
    def export(self, publisher: str, to: PipePeer) -> None:
        """Send local ``publisher``'s audio and video to ``to`` until :meth:`unexport` or until the
        router discards them (a track that arrives later is sent from its arrival on)."""
        exports = self._exports.setdefault(publisher, {})
        current = exports.get(to.address)
        if current is not None and current.to == to:
            current.describe()
            return
        if current is not None:
            current.close(tell=False)
        router = self._router
        hidden = router is not None and router.is_hidden(publisher)
        export = Export(publisher, to, self._send, self._batches.add, self.counters, hidden=hidden)
        exports[to.address] = export
        media = router.get(publisher) if router is not None else None
        if media is not None:
            for source in media.sources.values():
                export.add_feed(source)
        export.describe()

    def unexport(self, publisher: str, to: PipePeer | None = None) -> None:
        """Stop sending ``publisher``'s media to ``to`` (``None``: anywhere)."""
        exports = self._exports.get(publisher)
        if not exports:
            return
        for address in [a for a in exports if to is None or a == to.address]:
            exports.pop(address).close()
        if not exports:
            del self._exports[publisher]

    def exporting(self, publisher: str) -> list[PipePeer]:
        return [e.to for e in self._exports.get(publisher, {}).values()]

    # -- importing -------------------------------------------------------------------------------
    def expect(self, publisher: str, origin: PipePeer) -> None:
        """``publisher`` is served by ``origin``: take their media from it (their sources appear
        once the origin describes them; the router connects them to whoever watches them)."""
        current = self._imports.get(publisher)
        if current is not None and current.origin == origin:
            return
        if current is not None:
            self.forget(publisher)
        feedback = self._feedback_to(origin)
        sources = {kind: ImportedSource(SourceId(publisher, kind), feedback, self._clock) for kind in KINDS}
        self._imports[publisher] = _Import(origin, sources)
        self._send(origin, Kind.FEEDBACK, messages.encode_feedback(messages.Feedback(publisher, "video", "describe")))

    def forget(self, publisher: str) -> None:
        """Stop importing ``publisher``; local watchers still connected to them are disconnected
        (they get the placeholder)."""
        imported = self._imports.get(publisher)
        if imported is None:
            return
        if self._router is not None and self._router.get(publisher) is None:
            self._router.discard(publisher)
        del self._imports[publisher]
        for tag in imported.tags:
            self._by_tag.pop(tag, None)
        for source in imported.sources.values():
            source.close()

    def importing(self, publisher: str) -> PipePeer | None:
        imported = self._imports.get(publisher)
        return imported.origin if imported is not None else None

    def sources(self, participant: str) -> dict[str, Source]:
        """The imported publisher's sources by kind, once described by their origin (the
        ``SourceDirectory`` interface)."""
        imported = self._imports.get(participant)
        if imported is None:
            return {}
        return {kind: s for kind, s in imported.sources.items() if s.leg is not None}

    # -- the router's news (RouterObserver) --------------------------------------------------------
    def source_added(self, source: Source) -> None:
        for export in self._exports.get(source.id.participant, {}).values():
            export.add_feed(source)

    def participant_discarded(self, participant: str) -> None:
        for export in self._exports.pop(participant, {}).values():
            export.close()

    def hidden_changed(self, publisher: str, hidden: bool) -> None:
        for export in self._exports.get(publisher, {}).values():
            export.set_hidden(hidden)

    # -- datagrams -------------------------------------------------------------------------------
    def _send(self, peer: PipePeer, kind: Kind, body: bytes) -> None:
        transport = self._transport
        if transport is None:
            self.counters.drop("send_failed")
            return
        transport.sendto(self._sealer.seal(peer.key, kind, body), peer.address)

    def _feedback_to(self, origin: PipePeer) -> Callable[[messages.Feedback], None]:
        def send(feedback: messages.Feedback) -> None:
            self._send(origin, Kind.FEEDBACK, messages.encode_feedback(feedback))
            self.counters.control_sent += 1

        return send

    def datagram_received(self, data: bytes) -> None:
        now = self._clock()
        try:
            opened = self._opener.open(data)
        except Refused as refused:
            self._refuse(refused.reason, now)
            return
        try:
            if opened.kind is Kind.MEDIA:
                self._on_media(opened, now)
            elif opened.kind is Kind.DESCRIBE:
                self._on_describe(opened)
            else:
                self._on_feedback(opened, now)
        except ValueError as exc:
            self._refuse("invalid", now, str(exc))

    def _refuse(self, reason: str, now: float, detail: str = "") -> None:
        self.counters.drop(reason)
        if reason in ("unauthenticated", "invalid", "malformed", "truncated"):
            self._refusals.warning(now, "media pipe: datagram refused (%s%s)", reason, f": {detail}" if detail else "")

    def _on_media(self, opened: Opened, now: float) -> None:
        sender, by_tag = opened.sender, self._by_tag
        packets, octets = self.counters.packets_received, self.counters.bytes_received
        for tag, packet in messages.open_media(opened.body):
            source = by_tag.get((sender, tag))
            if source is None:
                self.counters.drop("unknown_stream")
                continue
            if not source.on_packet(packet, now):
                self.counters.drop("invalid")
                continue
            packets[source.kind] += 1
            octets[source.kind] += len(packet)

    def _on_describe(self, opened: Opened) -> None:
        message = messages.decode_describe(opened.body)
        self.counters.control_received += 1
        imported = self._imports.get(message.publisher)
        if imported is None:
            self.counters.drop("unexpected")
            return
        if imported.sender == opened.sender and opened.counter <= imported.counter:
            self.counters.drop("stale")
            return
        if imported.sender != opened.sender:
            for tag in imported.tags:
                self._by_tag.pop(tag, None)
            imported.tags.clear()
        imported.sender, imported.counter = opened.sender, opened.counter
        if message.ended:
            for tag in imported.tags:
                self._by_tag.pop(tag, None)
            imported.tags.clear()
        for info in message.streams:
            source = imported.sources[info.kind]
            for tag in [t for t in imported.tags if self._by_tag.get(t) is source]:
                imported.tags.discard(tag)
                self._by_tag.pop(tag, None)
            key = (opened.sender, info.tag)
            self._by_tag[key] = source
            imported.tags.add(key)
            first = source.leg is None
            source.describe(info.leg)
            if first and self._router is not None:
                self._router.published(source)
        if message.hidden != imported.hidden:
            imported.hidden = message.hidden
            if self.on_hidden is not None:
                self.on_hidden(message.publisher, message.hidden)
            elif self._router is not None:
                self._router.hide(message.publisher, message.hidden)

    def _on_feedback(self, opened: Opened, now: float) -> None:
        feedback = messages.decode_feedback(opened.body)
        self.counters.control_received += 1
        exports = self._exports.get(feedback.publisher)
        if not exports:
            self.counters.drop("unexpected")
            return
        export = next(iter(exports.values()))
        feed = export.feeds.get(feedback.kind)
        op = feedback.op
        if op == "describe":
            for export in exports.values():
                export.describe()
        elif op == "nack":
            for export in exports.values():
                export.resend(feedback.sequences, now)
        elif isinstance(feed, PacketFeed):
            if op == "keyframe":
                feed.request_keyframe()
            elif op == "cap":
                feed.set_bitrate_cap(feedback.bps)
            elif op in ("attach", "detach"):
                feed.remote_watcher(op == "attach")
                if op == "attach":
                    export.describe()

    def _tick(self) -> None:
        for exports in self._exports.values():
            for export in exports.values():
                export.describe()
        if self._transport is not None:
            self._timer = asyncio.get_running_loop().call_later(DESCRIBE_INTERVAL, self._tick)

    def snapshot(self) -> dict[str, Any]:
        """Counters and sizes for metrics."""
        counters = self.counters.snapshot()
        counters["exports"] = sum(len(e) for e in self._exports.values())
        counters["imports"] = len(self._imports)
        return counters


class _Protocol(asyncio.DatagramProtocol):
    def __init__(self, pipe: MediaPipe) -> None:
        self._pipe = pipe

    def datagram_received(self, data: bytes, addr: Any) -> None:
        try:
            self._pipe.datagram_received(data)
        except Exception:  # one bad datagram never stops the socket
            log.exception("media pipe: a datagram could not be handled")

    def error_received(self, exc: Exception) -> None:
        self._pipe.counters.drop("send_failed")
        log.debug("media pipe socket error: %r", exc)
