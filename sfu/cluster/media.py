"""The one seam between the cluster and the media pipe between processes (:mod:`sfu.media.pipe`).

When a local participant is paired with one served by another process, their media must cross: this
process exports the local one's media to the partner's process and expects the partner's from it,
then the router connects the local watcher to the remote publisher's piped sources. Undone when they
part. Every process publishes its pipe (address and receive key) with its heartbeat.
"""

from __future__ import annotations

import logging
from typing import Optional

from ..config.cluster import parse_host_port
from ..media.pipe import MediaPipe, PipePeer
from ..media.router import MediaRouter
from ..media.source import Source
from .directory import ProcessInfo

log = logging.getLogger(__name__)


class MediaSeam:
    """Also the router's directory of sources served elsewhere (``MediaRouter(elsewhere=seam)``)."""

    def __init__(self, router: Optional[MediaRouter] = None) -> None:
        self.router = router
        self.pipe: Optional[MediaPipe] = None

    async def open(self, pipe_address: str, batch_ms: float) -> None:
        """Open the pipe on ``pipe_address`` (host[:port]; port 0 or none: any free one); media waits
        up to ``batch_ms`` to share a datagram."""
        assert self.router is not None, "the router first"
        host, port = parse_host_port(pipe_address)
        self.pipe = MediaPipe(bind=(host, port), batch_window=batch_ms / 1000)
        await self.pipe.start(self.router)
        log.info("media pipe on %s:%d (UDP, encrypted)", *self.pipe.address,
                 extra={"event": "pipe", "address": f"{self.pipe.address[0]}:{self.pipe.address[1]}"})

    @property
    def address(self) -> str:
        if self.pipe is None:
            return ""
        host, port = self.pipe.address
        return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"

    @property
    def key(self) -> str:
        return self.pipe.key.hex() if self.pipe is not None else ""

    def sources(self, participant: str) -> dict[str, Source]:
        """The router's directory of participants served elsewhere."""
        return dict(self.pipe.sources(participant)) if self.pipe is not None else {}

    def cross(self, local: str, remote: str, origin: Optional[ProcessInfo]) -> None:
        """``local`` now watches ``remote``, served by the process ``origin`` describes."""
        peer = self._peer(origin)
        if self.pipe is not None and peer is not None:
            self.pipe.export(local, to=peer)
            self.pipe.expect(remote, origin=peer)
        if self.router is not None:
            self.router.connect(local, remote)

    def uncross(self, local: str, remote: str) -> None:
        """``local`` no longer watches ``remote`` (the router was switched already)."""
        if self.pipe is not None:
            self.pipe.unexport(local)
            self.pipe.forget(remote)

    async def close(self) -> None:
        if self.pipe is not None:
            await self.pipe.close()

    @staticmethod
    def _peer(origin: Optional[ProcessInfo]) -> Optional[PipePeer]:
        if origin is None or not origin.pipe_address or not origin.pipe_key:
            return None
        try:
            return PipePeer.decode(f"{origin.pipe_key}@{origin.pipe_address}")
        except ValueError as error:
            log.warning("process %s:%s published a bad pipe address: %s", origin.node, origin.worker, error)
            return None
