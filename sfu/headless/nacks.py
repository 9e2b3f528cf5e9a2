"""Asking again for lost video packets, and starting again at a keyframe, as browsers do.

aiortc's receiver sends a NACK when it notices a new gap, listing everything still missing, and never
on its own again: a packet that never comes (its retransmission lost too, or lost before the server
got it) leaves a hole that its jitter buffer waits on until 512 packets later (~10 s of video), then
stays that far behind. Browsers retry each missing packet every round trip, a few times, then ask
for a keyframe and decode again from it. :func:`ask_again` gives the headless client the same
behaviour, so what it measures is the server's recovery rather than that wait.
"""

from __future__ import annotations

import asyncio
import time

from aiortc import RTCRtpReceiver

from ..media.aiortc_hooks import testing

#: Seconds between two rounds of requests for the packets still missing.
INTERVAL = 0.1
#: Requests per missing packet, at most (after the one aiortc sent itself).
MAX_TRIES = 8
#: Seconds between two keyframe requests while waiting for a keyframe to start again at.
PLI_INTERVAL = 0.5


class NackRetries:
    """Which still-missing packets to ask for again this round (each at most :data:`MAX_TRIES` times)."""

    def __init__(self) -> None:
        self._tries: dict[int, int] = {}
        #: Whether a packet ran out of tries in the last round (time to start again at a keyframe).
        self.gave_up = False

    def due(self, missing: list[int]) -> list[int]:
        """``missing``: what the receiver misses now; returns those to ask for this round."""
        self._tries = tries = {sequence: self._tries.get(sequence, 0) + 1 for sequence in missing}
        self.gave_up = any(tries[sequence] == MAX_TRIES + 1 for sequence in missing)
        return [sequence for sequence in missing if tries[sequence] <= MAX_TRIES]


async def ask_again(receiver: RTCRtpReceiver) -> None:
    """Every :data:`INTERVAL` s, NACK again what ``receiver`` still misses; once a packet ran out of
    tries, restart at the next keyframe and ask for one (runs until cancelled)."""
    retries = NackRetries()
    asked = 0.0
    while True:
        await asyncio.sleep(INTERVAL)
        lost = retries.due(testing.missing_packets(receiver))
        sources = receiver.getSynchronizationSources()
        if not sources:
            continue
        latest = max(sources, key=lambda s: s.timestamp).source
        if lost:
            await testing.send_nack(receiver, latest, lost)
        if retries.gave_up:
            testing.restart_at_keyframe(receiver)
        now = time.monotonic()
        if testing.waiting_for_keyframe(receiver) and now - asked >= PLI_INTERVAL:
            asked = now
            await testing.send_pli(receiver, latest)
