"""Reports of a partner served by another process, over the :mod:`.bus`.

Who someone is (device id and address hash) and their pictures are known only where they are served.
So:

- At a pairing across processes, each process tells the other who its participant is
  (``identity``), and which process serves them: the partner may report them from then on, even
  after they left or their process died, with that identity.
- A report is stored where the reporter is served, at once (the reporter gets ``reported`` without
  waiting for pictures). The evidence is asked of the reported person's process (``capture``): it
  takes the pictures from its own copy of their video, as for a local report
  (:func:`~sfu.moderation.capture.capture_pictures`), and sends them back one per message
  (``evidence``, then ``evidence_done``), each JPEG well under what a stream entry carries easily.
  The reporter's process adds them to the report. Why back rather than stored there: the moderation
  database is per node unless shared, and the report lives where the reporter's node keeps reports.
- The reported person's process gone (not in the pool any more), or silent until the deadline: the
  report stays as stored, without pictures, and a log line says why.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import itertools
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Optional

from ..moderation.capture import CapturePlan, capture_pictures
from ..moderation.identity import ModerationIdentity
from ..moderation.records import EvidenceImage
from .bus import Bus, Message
from .directory import Directory

if TYPE_CHECKING:
    from ..media.router import MediaRouter
    from ..signaling.safety import Safety

log = logging.getLogger(__name__)

#: Largest picture sent over the bus (a 640-pixel JPEG is some tens of KB).
MAX_PICTURE_BYTES = 400_000
#: Seconds between two looks at whether the reported person's process is still alive.
LIVENESS_STEP = 1.0
#: Seconds added to the capture plan's own worst case before giving up on an answer.
ANSWER_MARGIN = 5.0

KINDS = ("identity", "capture", "evidence", "evidence_done")


@dataclass
class _Waiting:
    process: str
    pictures: list[EvidenceImage] = field(default_factory=list)
    done: asyncio.Event = field(default_factory=asyncio.Event)


def picture_message(request: str, picture: EvidenceImage) -> Message:
    return {"t": "evidence", "req": request, "jpeg": base64.b64encode(picture.jpeg).decode("ascii"),
            "at": picture.captured_at, "w": picture.width, "h": picture.height}


def picture_of(message: Message) -> Optional[EvidenceImage]:
    """The picture an ``evidence`` message carries, ``None`` when malformed (the service checks the rest)."""
    try:
        jpeg = base64.b64decode(str(message["jpeg"]), validate=True)
        return EvidenceImage(jpeg=jpeg, captured_at=float(message["at"]), width=int(message["w"]),
                             height=int(message["h"]))
    except (KeyError, TypeError, ValueError, binascii.Error):
        return None


class CrossReports:
    """This process's side of reports across processes (see the module's description)."""

    def __init__(
        self,
        bus: Bus,
        directory: Directory,
        router: MediaRouter,
        safety: Callable[[], Optional[Safety]],
        plan: Optional[CapturePlan] = None,
    ) -> None:
        self.bus = bus
        self.directory = directory
        self.router = router
        self.safety = safety
        self.plan = plan
        self._waiting: dict[str, _Waiting] = {}
        self._ids = itertools.count(1)

    @property
    def deadline(self) -> float:
        """Seconds the reporter's process waits for the pictures at most."""
        plan = self._plan()
        return plan.count * (plan.spacing + plan.timeout) + ANSWER_MARGIN

    def _plan(self) -> CapturePlan:
        safety = self.safety()
        return self.plan or (safety.plan if safety is not None else CapturePlan())

    # -- at a pairing across processes --------------------------------------------------------------
    async def introduce(self, local: str, remote: str, process: str) -> None:
        """Tell ``process`` (serving ``remote``) who ``local``, ``remote``'s new partner, is."""
        safety = self.safety()
        identity = safety.identity_of(local) if safety is not None else None
        if identity is None:
            return
        await self.bus.send(process, {"t": "identity", "to": remote, "of": local, "from": self.bus.me,
                                      "device": identity.device, "address": identity.address_hash})

    # -- the reporter's side -------------------------------------------------------------------------
    async def capture(self, participant: str, process: str) -> list[EvidenceImage]:
        """Pictures of ``participant`` taken by ``process``, which serves them (none if it is gone or
        does not answer in time)."""
        await self.directory.refresh()  # rare: a fresh look at who is alive now
        if process not in self.directory.processes:
            log.info("evidence of %s not asked for: their process %s is gone", participant, process)
            return []
        request = f"{self.bus.me}#{next(self._ids)}"
        waiting = self._waiting[request] = _Waiting(process)
        try:
            await self.bus.send(process, {"t": "capture", "req": request, "of": participant, "reply": self.bus.me})
            deadline = asyncio.get_running_loop().time() + self.deadline
            while not waiting.done.is_set():
                left = deadline - asyncio.get_running_loop().time()
                if left <= 0:
                    log.warning("evidence of %s: %s did not answer in time (%d pictures came)", participant,
                                process, len(waiting.pictures))
                    break
                try:
                    await asyncio.wait_for(waiting.done.wait(), min(LIVENESS_STEP, left))
                except TimeoutError:
                    if process not in self.directory.processes:  # refreshed with every heartbeat
                        log.warning("evidence of %s: their process %s is gone (%d pictures came)", participant,
                                    process, len(waiting.pictures))
                        break
            return list(waiting.pictures)
        finally:
            del self._waiting[request]

    # -- messages from other processes -----------------------------------------------------------------
    def received(self, message: Message, spawn: Callable[[Any], None]) -> None:
        kind = message.get("t")
        if kind == "identity":
            self._introduced(message)
        elif kind == "capture":
            spawn(self._answer(str(message["req"]), str(message["of"]), str(message["reply"])))
        elif kind == "evidence":
            waiting = self._waiting.get(str(message.get("req")))
            picture = picture_of(message)
            if waiting is None:
                log.info("evidence picture for a request no longer waited for (%s)", message.get("req"))
            elif picture is None:
                log.warning("evidence picture from %s dropped: malformed", waiting.process)
            else:
                waiting.pictures.append(picture)
        elif kind == "evidence_done":
            waiting = self._waiting.get(str(message.get("req")))
            if waiting is not None:
                waiting.done.set()

    def _introduced(self, message: Message) -> None:
        safety = self.safety()
        if safety is None:
            return
        address = message.get("address")
        identity = ModerationIdentity(str(message["device"]), str(address) if address is not None else None)
        local, remote = str(message["to"]), str(message["of"])
        if not safety.introduced(local, remote, identity, str(message["from"])):
            log.info("identity of %s dropped: no longer %s's partner", remote, local)

    # -- the reported person's side --------------------------------------------------------------------
    async def _answer(self, request: str, participant: str, reply: str) -> None:
        """Take pictures of local ``participant`` and send them to ``reply``, then say it is done."""
        source = self.router.sources(participant).get("video") if self.router.get(participant) else None
        pictures = await capture_pictures(source, self._plan()) if source is not None else []
        sent = 0
        try:
            for picture in pictures:
                if len(picture.jpeg) > MAX_PICTURE_BYTES:
                    log.warning("evidence picture of %s not sent: %d bytes", participant, len(picture.jpeg))
                    continue
                await self.bus.send(reply, picture_message(request, picture))
                sent += 1
        finally:
            await self.bus.send(reply, {"t": "evidence_done", "req": request, "count": sent})
        log.info("evidence of %s: %d pictures sent to %s", participant, sent, reply,
                 extra={"event": "evidence_sent", "session": participant})
