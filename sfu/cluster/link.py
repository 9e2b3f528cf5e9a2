"""The switchboard's view of participants served by other processes (its
:class:`~sfu.signaling.elsewhere.Elsewhere`), and this process's part in the shared pool.

- A pair across processes: each process does its own half (media in, ``paired`` to its client),
  the media crossing through :class:`~.media.MediaSeam`.
- Reports of a partner served elsewhere: see :mod:`.reports` (their identity comes at the pairing,
  their pictures from their process).
- Automatic detection screens each publisher in the process serving them: a local publisher watched
  from elsewhere is screened here (:attr:`ClusterLink.screen`), and its hiding crosses with the media.
- Chat to a partner elsewhere, moderation notes (``partner_hidden``...) and warnings for people
  served elsewhere, and bans (whoever they cover, wherever they are served) go over the :mod:`.bus`.
- ``online`` is the sum of every live process's count (refreshed with the heartbeats).
- Redis unreachable: Start/Next are refused (``pairing_unavailable``), pairs already formed go on;
  people who left meanwhile are taken out of the pool when it is back, and those waiting look again.
- The pool lost this process's people (Redis restarted empty, or this process was presumed dead):
  those waiting look again; pairs go on, *orphaned* (the pool no longer knows them): when one of an
  orphaned pair moves on, this process tells the other one itself.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Optional

from prometheus_client import Gauge
from redis.exceptions import RedisError

from ..config import Config
from ..config.cluster import node_name
from ..moderation.actions import Warned
from ..moderation.identity import ModerationIdentity
from ..moderation.records import Ban
from ..pairing import PartnerLeft
from ..pairing.shared import PairingRules, PairingUnavailable, ProcessId
from ..pairing.shared.registry import Lost
from ..signaling import outgoing as out
from .bus import Bus, Message
from .directory import PoolCounts, ProcessInfo
from .media import MediaSeam
from .node import Node, NodeHooks
from .reports import KINDS as REPORT_KINDS
from .reports import CrossReports

if TYPE_CHECKING:
    from ..moderation.service import ModerationService
    from ..signaling.switchboard import Switchboard

log = logging.getLogger(__name__)


class ClusterLink:
    def __init__(self, node: Node, switchboard: Switchboard, seam: MediaSeam) -> None:
        self.node = node
        self.switchboard = switchboard
        self.seam = seam
        self.process = node.process
        self.directory = node.directory
        self.bus = Bus(node.redis, node.keys.prefix, str(node.process), self._received)
        #: Local participant -> the remote partner whose media crosses to them.
        self._crossing: dict[str, str] = {}
        #: Pairs the pool no longer knows (it lost them), local participant -> partner.
        self.orphans: dict[str, str] = {}
        #: People who left while the pool was unreachable (taken out when it is back).
        self._left: set[str] = set()
        self._tasks: list[asyncio.Task[None]] = []
        self._spawned: set[asyncio.Task[None]] = set()
        self.reports = CrossReports(self.bus, self.directory, switchboard.router, lambda: switchboard.safety)
        #: Automatic detection's watch hook (``screen(watcher, publisher or None)``), told when a local
        #: publisher is watched from another process: they are screened here, where their video is.
        self.screen: Optional[Callable[[str, Optional[str]], None]] = None
        #: Remote watcher -> the local publisher screened for them.
        self._screened: dict[str, str] = {}

    @classmethod
    async def open(cls, config: Config, switchboard: Switchboard, seam: MediaSeam) -> ClusterLink:
        """Joined to the pool at ``config.redis_url``, or :class:`PairingUnavailable`."""
        assert config.redis_url is not None
        process = ProcessId(node_name(config.node_id), config.worker_id)
        rules = PairingRules(config.rematch_cooldown, config.interest_wait, config.language_wait)
        node = await Node.open(config.redis_url, process, rules)
        return cls(node, switchboard, seam)

    # -- lifecycle -------------------------------------------------------------------------------
    async def start(self, moderation: Optional[ModerationService] = None) -> None:
        """Take over pairing for the switchboard, register this process, start its loops."""
        sb = self.switchboard
        sb.pairing = self.node.matchmaker
        sb.clock = _wall_clock
        sb.elsewhere = self
        feed = self.node.inbox(sb.deliver)
        await self.bus.start()
        await self.node.join(self.info())
        hooks = NodeHooks(info=self.info, lost=self._lost, back=self._back)
        self._tasks = [asyncio.ensure_future(t) for t in (feed.run(), self.node.run(hooks), self.bus.run())]
        if sb.safety is not None:
            sb.safety.remote_capture = self.reports.capture
        if moderation is not None:
            moderation.on_ban(self._ban_made)
            moderation.on_warn(self._warning_made)
        self._export_metrics()
        log.info("joined the shared pool as %s (%d process(es) alive)", self.process, len(self.directory.live()),
                 extra={"event": "pool_joined", "node_process": str(self.process)})

    async def stop(self) -> None:
        for task in self._tasks + list(self._spawned):
            task.cancel()
        await asyncio.gather(*self._tasks, *self._spawned, return_exceptions=True)
        await self.node.close()
        await self.seam.close()

    @property
    def reachable(self) -> bool:
        return self.node.reachable

    def info(self) -> ProcessInfo:
        sb = self.switchboard
        return ProcessInfo(
            self.process.node, self.process.worker, len(sb.sessions), len(sb.looking), len(sb.partners),
            self.seam.address, self.seam.key,
        )

    def counts(self) -> PoolCounts:
        return self.directory.counts(self.info())

    # -- Elsewhere (called by the switchboard) -------------------------------------------------------
    def paired(self, local: str, remote: str) -> None:
        self._crossing[local] = remote
        if self.screen is not None:  # before the export starts, so a pre-screened video starts hidden
            self._screened[remote] = local
            self.screen(remote, local)
        if self.switchboard.safety is not None:
            self.switchboard.safety.paired_elsewhere(local, remote)
        self.switchboard.router.connect(local, remote)  # the placeholder until the partner's media is here
        self._spawn(self._cross(local, remote))

    async def _cross(self, local: str, remote: str) -> None:
        process = await self.directory.locate(remote)
        info = await self.directory.fresh_info(process) if process else None
        if self._crossing.get(local) == remote:  # still partners
            if info is None:
                log.warning("%s's partner %s is served by %s, which is not in the pool: no media between them",
                            local, remote, process or "no process")
            self.seam.cross(local, remote, info)
        if process is not None:  # even if they parted already: they may still report each other
            await self.reports.introduce(local, remote, process)

    def parted(self, local: str, partner: str) -> None:
        if self._crossing.get(local) == partner:
            del self._crossing[local]
            if self.screen is not None and self._screened.get(partner) == local:
                del self._screened[partner]
                self.screen(partner, None)
            self.seam.uncross(local, partner)
        if self.orphans.get(local) == partner:
            del self.orphans[local]
            self.orphans.pop(partner, None)
            self._tell_orphan(partner, local)
        self.directory.forget(partner)

    def chat(self, sender: str, remote: str, text: str) -> None:
        self._spawn(self._send_to(remote, {"t": "chat", "to": remote, "from": sender, "text": text}))

    def online(self, here: int) -> int:
        others = sum(i.connected for p, i in self.directory.processes.items() if p != str(self.process))
        return here + others

    def left(self, who: str) -> None:
        self._left.add(who)

    def tell(self, participant: str, action: str, reason: Optional[str]) -> None:
        """A moderation note for someone served elsewhere (e.g. ``video_hidden`` for a remote partner)."""
        self._spawn(self._send_to(participant, {"t": "note", "to": participant, "action": action, "reason": reason}))

    # -- the pool's state changes ------------------------------------------------------------------
    async def _back(self) -> None:
        for who in sorted(self._left):
            await self.node.matchmaker.leave(who, _wall_clock())
            self._left.discard(who)
        await self.switchboard.look_again()

    async def _lost(self, why: Lost) -> None:
        self._left.clear()
        sb = self.switchboard
        for local, partner in list(sb.partners.items()):
            if why == "swept" and partner not in sb.sessions:  # the partner's process was told already
                sb.apply([PartnerLeft(local)], time.monotonic())
            else:
                self.orphans[local] = partner
        await sb.look_again()

    def _tell_orphan(self, partner: str, by: str) -> None:
        if partner in self.switchboard.sessions:
            self._orphan_left(partner, by)
        else:
            self._spawn(self._send_to(partner, {"t": "orphan_left", "to": partner, "from": by}))

    def _orphan_left(self, who: str, by: str) -> None:
        sb = self.switchboard
        if sb.partners.get(who) != by:
            return
        self.orphans.pop(who, None)
        sb.apply([PartnerLeft(who)], time.monotonic())
        self._spawn(sb.pairing.start(who, _wall_clock(), preferences=sb.asked.get(who)))

    # -- moderation ----------------------------------------------------------------------------------
    def _ban_made(self, ban: Ban) -> None:
        self._spawn(self._to_everyone({"t": "ban", "ban": dataclasses.asdict(ban)}))

    def _warning_made(self, warned: Warned) -> None:
        self._spawn(self._to_everyone(
            {"t": "warn", "device": warned.identity.device, "reason": warned.reason, "report": warned.report_id}))

    async def _to_everyone(self, message: Message) -> None:
        try:
            await self.directory.refresh()  # rare and important: to every process alive now
        except (RedisError, OSError):
            pass  # Redis away: to every process known alive; the message waits in the bus's outbox
        await self.bus.send_all(self.directory.live(), message)

    # -- messages from other processes -----------------------------------------------------------------
    async def _send_to(self, participant: str, message: Message) -> None:
        process = await self.directory.locate(participant)
        if process is None:
            log.info("message for %s dropped: nobody serves them any more", participant)
            return
        await self.bus.send(process, message)

    def _received(self, message: Message) -> None:
        kind = message.get("t")
        sb = self.switchboard
        if kind == "chat":
            session = sb.sessions.get(str(message["to"]))
            if session is not None and sb.partners.get(session.id) in (None, message["from"]):
                session.send(out.Chat(str(message["text"])))
        elif kind == "note":
            session = sb.sessions.get(str(message["to"]))
            if session is not None:
                session.send(out.Moderation(str(message["action"]), message.get("reason")))
        elif kind in REPORT_KINDS:
            self.reports.received(message, self._spawn)
        elif kind == "orphan_left":
            self._orphan_left(str(message["to"]), str(message["from"]))
        elif kind == "ban" and sb.safety is not None:
            sb.safety.banned(Ban(**message["ban"]))
        elif kind == "warn" and sb.safety is not None:
            identity = ModerationIdentity(str(message["device"]))
            sb.safety.warned(Warned(identity, str(message["reason"]), int(message["report"])))
        else:
            log.warning("message bus: unknown message %r", kind)

    # -- helpers ---------------------------------------------------------------------------------------
    def _spawn(self, step: Awaitable[Any]) -> None:
        async def run() -> None:
            try:
                await step
            except PairingUnavailable:
                pass
            except Exception as error:
                if "ConnectionError" in type(error).__name__ or isinstance(error, OSError):
                    log.info("cross-process step dropped: Redis unreachable (%s)", error)
                else:
                    log.exception("cross-process step failed")

        task = asyncio.ensure_future(run())
        self._spawned.add(task)
        task.add_done_callback(self._spawned.discard)

    def _export_metrics(self) -> None:
        registry = self.switchboard.metrics.registry
        for name, doc, read in (
            ("sfu_pool_processes", "Processes alive in the shared pool", lambda: self.counts().processes),
            ("sfu_pool_participants_connected", "Participants connected over the whole pool",
             lambda: self.counts().connected),
            ("sfu_pool_reachable", "1 while the shared pool (Redis) is reachable", lambda: int(self.reachable)),
        ):
            Gauge(name, doc, registry=registry).set_function(read)


_wall_clock = time.time
