"""The server: builds the parts and ties them together; admission, lifecycle, status.

Signaling (sessions, the switchboard, background housekeeping) lives in :mod:`sfu.signaling`, media
in :mod:`sfu.media`, pairing in :mod:`sfu.pairing`; nothing global outside the :class:`Server`.
"""

from __future__ import annotations

import logging
import os
import time
from typing import TYPE_CHECKING, Optional

from aiohttp import web
from aiortc import RTCIceServer

from . import __version__
from .config import Config
from .config.cluster import node_name
from .limits import AddressLimits, Refusal, SessionLimits, client_address
from .logs import AddressTagger
from .media.forwarding import direction_modes, make_forwarding
from .media.peer import PeerSettings
from .media.router import MediaRouter
from .metrics import ServerMetrics
from .moderation.camera import CameraGate
from .moderation.devices import is_https, remember_device, request_device
from .moderation.identity import ModerationIdentity
from .moderation.live import LiveModeration, report_detections, screen_local
from .moderation.origins import origin_allowed
from .moderation.service import ModerationService
from .overload import LoadLimits, OverloadGuard
from .pairing import Matchmaker
from .pairing.shared import LocalPairing

if TYPE_CHECKING:
    from .cluster import ClusterLink
    from .cluster.media import MediaSeam
from .signaling.connection import Session
from .signaling.errors import ErrorCode
from .signaling.housekeeping import Housekeeping
from .signaling.negotiation import Negotiator
from .signaling.outgoing import Error, Moderation
from .signaling.safety import Safety, banned_error
from .signaling.switchboard import Switchboard
from .signaling.tasks import ClosingTasks
from .turn import IceServerIssuer

log = logging.getLogger(__name__)

#: ``retry_after`` (seconds) sent with ``server_full``: at the participant limit, and when overloaded.
RETRY_WHEN_FULL = 15.0
RETRY_WHEN_BUSY = 3.0


def peer_settings(config: Config) -> PeerSettings:
    """The media side of ``config`` (the one place its ICE servers become aiortc's own type)."""
    return PeerSettings(
        ice_servers=[RTCIceServer(urls=s.urls, username=s.username, credential=s.credential) for s in config.ice_servers],
        host_addresses=config.host_addresses(),
        public_ip=config.public_ip,
        port_range=config.media_port_range(),
    )


class Server:
    """Owns every part: sessions, matchmaker, media router, limits, metrics, background tasks."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.forwarding = make_forwarding(config.forwarding)
        self.peer_settings = settings = peer_settings(config)
        self.accepting = True
        #: False once a drain is announced (``drain_grace``): /readyz says so while still serving.
        self.ready = True
        self.matchmaker = Matchmaker(
            rematch_cooldown=config.rematch_cooldown,
            interest_wait=config.interest_wait,
            language_wait=config.language_wait,
        )
        #: Media of partners served by other processes (only with a shared pool, ``redis_url``).
        self.remote_media: Optional[MediaSeam] = None
        if config.redis_url:
            from .cluster.media import MediaSeam

            self.remote_media = MediaSeam()
        self.media = MediaRouter(elsewhere=self.remote_media)
        if self.remote_media is not None:
            self.remote_media.router = self.media
        #: This process's part in the shared pool (opened by :meth:`start`).
        self.cluster: Optional[ClusterLink] = None
        self.limits = SessionLimits(config)
        self.addresses = AddressLimits(config)
        self.tag_address = AddressTagger(full=config.log_client_addresses)
        self.closing = ClosingTasks()
        self.ice_issuer = IceServerIssuer.from_config(config)
        self.overload = OverloadGuard(LoadLimits(max_loop_lag=config.max_loop_lag, max_cpu=config.max_cpu))
        self.metrics = ServerMetrics(
            connected=lambda: len(self.sessions),
            waiting=lambda: self.matchmaker.waiting_count,
            paired=lambda: self.matchmaker.paired_count,
            draining=lambda: 0 if self.accepting else 1,
            directions=self._directions,
            overloaded=lambda: 1 if self.overload.overloaded else 0,
            cpu=lambda: self.overload.load().cpu or 0.0,
            identity=self.identity(),
        )
        negotiator = Negotiator(
            settings, self.forwarding, self.media, metrics=self.metrics, limits=self.limits, closing=self.closing
        )
        self.camera = (
            CameraGate(lambda who: self.media.video_live(who, time.monotonic()), self.media.when_video)
            if config.moderation.require_camera else None
        )
        self.pairing = LocalPairing(self.matchmaker)
        self.switchboard = Switchboard(
            config, pairing=self.pairing, router=self.media, negotiator=negotiator, metrics=self.metrics,
            limits=self.limits, addresses=self.addresses, tag_address=self.tag_address,
            ice_servers=self.ice_issuer.for_client, camera=self.camera,
        )
        self.pairing.sink = self.switchboard.deliver
        #: Automatic detection (flagged samples become automatic reports once :meth:`start` opened the
        #: moderation service).
        self.live = LiveModeration(
            config.moderation, self.media, notify=self._tell_moderation, registry=self.metrics.registry
        )
        self.housekeeping = Housekeeping(
            config, self.switchboard, limits=self.limits, metrics=self.metrics,
            closing=self.closing, overload=self.overload,
        )
        #: Reports, bans, rules (opened by :meth:`start`: it needs its database).
        self.moderation: Optional[ModerationService] = None
        self.safety: Optional[Safety] = None

    @property
    def sessions(self) -> dict[str, Session]:
        return self.switchboard.sessions

    # -- lifecycle -------------------------------------------------------------------------------
    async def start(self) -> None:
        if self.config.redis_url:  # first: an unreachable Redis stops the start-up before anything opens
            from .cluster import ClusterLink

            assert self.remote_media is not None
            await self.remote_media.open(self.config.pipe_address, self.config.pipe_batch_ms)
            self.cluster = await ClusterLink.open(self.config, self.switchboard, self.remote_media)
        self.moderation = await ModerationService.open(
            self.config.moderation, registry=self.metrics.registry, exempt=self.config.ip_limits_exempt
        )
        self.moderation.start()
        self.safety = self.switchboard.safety = Safety(self.moderation, self.media, self.closing)
        self.live.on_flagged = report_detections(self.moderation, self._identity_of)
        if self.cluster is not None:
            await self.cluster.start(self.moderation)
        self.housekeeping.start()
        screening = await self.live.start()
        if screening is not None:
            self.media.on_watch = screen_local(screening.watch, self.media)
            if self.cluster is not None:  # local publishers watched from other processes are screened here
                self.cluster.screen = screening.watch

    async def shutdown(self) -> None:
        """Tell every client the server is stopping and close every session, within drain_timeout."""
        self.accepting = False
        await self.switchboard.drain(max(0.2, self.config.drain_timeout))

    async def stop(self) -> None:
        await self.shutdown()
        await self.housekeeping.stop()
        self.media.on_watch = None
        if self.cluster is not None:
            self.cluster.screen = None
        await self.live.stop()
        if self.safety is not None:
            await self.safety.settle()
        await self.closing.cancel()
        if self.cluster is not None:
            await self.cluster.stop()
        if self.moderation is not None:
            await self.moderation.close()

    def _identity_of(self, participant: str) -> Optional[ModerationIdentity]:
        """The moderation identity (device + address) of a connected participant."""
        visitor = self.safety.visitors.get(participant) if self.safety is not None else None
        return visitor.identity if visitor is not None else None

    def _tell_moderation(self, participant: str, action: str, reason: str | None) -> None:
        session = self.sessions.get(participant)
        if session is not None:
            session.send(Moderation(action, reason))
        elif self.cluster is not None:  # e.g. a remote partner whose video was hidden here
            self.cluster.tell(participant, action, reason)

    # -- status ----------------------------------------------------------------------------------
    def _directions(self) -> dict[str, dict[str, int]]:
        return direction_modes(s.media for s in self.sessions.values() if s.media)

    def identity(self) -> dict[str, str]:
        """Which process this is (``/healthz``, ``sfu_worker_info``): its node, worker id and pid."""
        return {"node": node_name(self.config.node_id), "worker": self.config.worker_id, "pid": str(os.getpid())}

    def status(self) -> dict:
        mm = self.matchmaker
        sb = self.switchboard
        load = self.overload.load()
        status = {
            "status": "ok" if self.accepting and self.ready else "draining",
            "version": __version__,
            **self.identity(),
            "load": {
                "overloaded": self.overload.overloaded,
                "reason": self.overload.reason,
                "loop_lag_seconds": load.loop_lag,
                "cpu_cores": load.cpu,
            },
            "forwarding": self.forwarding.name,
            "participants": {"connected": len(self.sessions), "waiting": mm.waiting_count, "paired": mm.paired_count},
            "pairs_made": mm.pairs_made,
            "pairing": {"by_basis": dict(mm.pairs_by_basis), "time_to_pair_seconds": self.metrics.time_to_pair_quantiles()},
            "directions": self._directions(),
        }
        if self.cluster is not None:
            pool = self.cluster.counts()
            status["participants"] = {"connected": len(self.sessions), "waiting": len(sb.looking),
                                      "paired": len(sb.partners)}
            status.pop("pairs_made")
            status["pairing"] = {"time_to_pair_seconds": self.metrics.time_to_pair_quantiles(),
                                 "shared": True, "reachable": self.cluster.reachable}
            status["node"] = self.cluster.process.node
            status["worker"] = self.cluster.process.worker
            status["pool"] = {"processes": pool.processes, "participants": {
                "connected": pool.connected, "waiting": pool.waiting, "paired": pool.paired}}
            if self.remote_media is not None and self.remote_media.pipe is not None:
                status["pipe"] = self.remote_media.pipe.snapshot()
        return status

    def readiness(self) -> tuple[bool, str]:
        """Whether a new participant would be accepted (for /readyz), and why not."""
        if not self.accepting or not self.ready:
            return False, "draining"
        if self.cluster is not None and not self.cluster.reachable:
            return False, "pairing unavailable"
        if self._full():
            return False, "full"
        return (False, "overloaded") if self.overload.overloaded else (True, "ready")

    def _full(self) -> bool:
        return bool(self.config.max_participants) and len(self.sessions) >= self.config.max_participants

    # -- admission -------------------------------------------------------------------------------
    async def handle_ws(self, request: web.Request) -> web.StreamResponse:
        """One visit at /ws: refused, or admitted and served by the switchboard until it ends."""
        config = self.config
        if not origin_allowed(request.headers.get("Origin"), request.host, config.moderation.allowed_origins):
            log.info("WebSocket upgrade refused: foreign page origin", extra={"event": "refused", "code": "origin"})
            raise web.HTTPForbidden(text="this page's origin may not use this server (see --allowed-origin)\n")
        address = client_address(request.remote, request.headers.get("X-Forwarded-For"), config.trust_forwarded_for)
        assert self.moderation is not None and self.safety is not None, "start() first"
        device = request_device(self.moderation.identities, request)
        secure = is_https(request, config.trust_forwarded_for)
        session = await Session.accept(
            request, address, max_frame_bytes=config.hard_message_bytes,
            prepare=lambda ws: remember_device(ws, device, max_age_days=config.moderation.device_cookie_days,
                                               secure=secure),
        )
        session.on_error = self.metrics.on_error
        if not self.accepting:
            await session.refuse(Error(ErrorCode.SHUTTING_DOWN, "the server is stopping"), 1001, b"server shutting down")
        elif (refusal := self._admission(address, time.monotonic())) is not None:
            await self.switchboard.refuse(session, refusal)
        elif (ban := await self.safety.admit(session, device.device, address,
                                             request.headers.get("Accept-Language"))) is not None:
            self.addresses.release(address)
            await session.refuse(banned_error(ban), 1008, b"banned")
        else:
            await self.switchboard.serve(session)
        return session.ws

    def _admission(self, address: str, now: float) -> Optional[Refusal]:
        if self._full():
            return Refusal(ErrorCode.SERVER_FULL, "the server is full; try again later", RETRY_WHEN_FULL)
        if self.overload.overloaded:
            # Another worker or node behind the same address may well take the next attempt.
            return Refusal(ErrorCode.SERVER_FULL, "the server is busy; try again later", RETRY_WHEN_BUSY)
        return self.addresses.admit(address, now)
