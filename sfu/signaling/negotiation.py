"""A participant's one offer: their peer connection with the server, and the server's answer."""

from __future__ import annotations

import logging
import time

from ..limits import SessionLimits
from ..media.forwarding import Forwarding
from ..media.peer import NegotiationError, NoMediaPort, PeerMedia, PeerSettings
from ..media.router import MediaRouter
from ..metrics import ServerMetrics
from .connection import Session
from .errors import ErrorCode, ProtocolError
from .outgoing import Answer
from .tasks import ClosingTasks

log = logging.getLogger(__name__)


class Negotiator:
    """Accepts offers: builds each participant's media, registers it with the router by id, answers."""

    def __init__(
        self,
        settings: PeerSettings,
        forwarding: Forwarding,
        router: MediaRouter,
        *,
        metrics: ServerMetrics,
        limits: SessionLimits,
        closing: ClosingTasks,
    ) -> None:
        self.settings = settings
        self.forwarding = forwarding
        self.router = router
        self.metrics = metrics
        self.limits = limits
        self.closing = closing

    async def negotiate(self, session: Session, sdp: str) -> None:
        """Accept ``session``'s offer and send the answer; :class:`ProtocolError` if refused."""
        if session.media is not None:
            raise ProtocolError(ErrorCode.ALREADY_NEGOTIATED, "one offer per connection")
        media = PeerMedia(self.settings, self.forwarding)
        session.media = media  # owned by the session from now on, even if the client vanishes
        self.router.add(session.id, media)

        def on_ended(state: str) -> None:
            log.info("session %s: peer connection %s", session.id, state)
            self.closing.spawn(session.ws.close(code=1011, message=b"media connection " + state.encode()))

        media.on_ended = on_ended
        try:
            answer = await media.accept(sdp)
        except NoMediaPort as exc:
            log.warning("session %s: %s", session.id, exc)
            raise ProtocolError(ErrorCode.SERVER_FULL, "no media port free; try again later") from None
        except NegotiationError as exc:
            raise ProtocolError(ErrorCode.BAD_SDP, f"cannot accept the offer: {exc}"[:300]) from None
        video = media.outbound.get("video")
        if video is not None:
            video.on_first_item = self.metrics.first_frame_callback(session.id)
        self.limits.negotiated(session.id, time.monotonic())
        session.send(Answer(answer))
        log.info(
            "session %s: negotiated (%s)", session.id, media.forwarding,
            extra={"event": "negotiated", "session": session.id, "forwarding": media.forwarding},
        )
