"""The one seam between the cluster and the media pipe between processes (:mod:`sfu.media.pipe`).

When a local participant is paired with one served by another process, their media must cross: this
process exports the local one's media to the partner's process and expects the partner's from it,
then the router connects the local watcher to the remote publisher's piped sources. Undone when they
part. Without a pipe (not available in this build) only the router's side is done: the watcher gets
the neutral placeholder, everything else works.
"""

from __future__ import annotations

import importlib
import logging
from typing import Any, Optional

from ..config.cluster import parse_host_port
from ..media.router import MediaRouter
from .directory import ProcessInfo

log = logging.getLogger(__name__)


def open_pipe(host: str, port: int) -> Any:
    """The media pipe listening on ``host:port``, or ``None`` when this build has none."""
    try:
        pipe = importlib.import_module("sfu.media.pipe")
    except ImportError:
        return None
    return pipe.MediaPipe(host, port)


class MediaSeam:
    """Also the router's directory of sources served elsewhere (``MediaRouter(elsewhere=seam)``)."""

    def __init__(self, router: Optional[MediaRouter] = None, pipe: Any = None) -> None:
        self.router = router
        self.pipe = pipe

    def open(self, pipe_address: str) -> None:
        """Open the pipe on ``pipe_address`` (host[:port]), when this build has one."""
        host, port = parse_host_port(pipe_address)
        self.pipe = open_pipe(host, port)
        if self.pipe is None:
            log.info("no media pipe in this build: partners served by other processes get the placeholder")

    @property
    def address(self) -> str:
        return str(self.pipe.address) if self.pipe is not None else ""

    @property
    def key(self) -> str:
        return str(self.pipe.key) if self.pipe is not None else ""

    def sources(self, participant: str) -> dict:
        """The router's directory of participants served elsewhere."""
        return dict(self.pipe.sources(participant)) if self.pipe is not None else {}

    def cross(self, local: str, remote: str, origin: Optional[ProcessInfo]) -> None:
        """``local`` now watches ``remote``, served by the process ``origin`` describes."""
        if self.pipe is not None and origin is not None and origin.pipe_address:
            peer = importlib.import_module("sfu.media.pipe").PipePeer(origin.pipe_address, origin.pipe_key)
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
        if self.pipe is not None and hasattr(self.pipe, "close"):
            result = self.pipe.close()
            if result is not None:
                await result
