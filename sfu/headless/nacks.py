"""Asking again for lost video packets, as browsers do.

aiortc's receiver sends a NACK when it notices a new gap, listing everything still missing, and never
on its own again: a retransmission that is lost too leaves a hole that its jitter buffer waits on
until 512 packets later (~10 s of video), then stays that far behind. Browsers retry each missing
packet every round trip, a few times, then ask for a keyframe. :func:`ask_again` gives the headless
client the same retries, so what it measures is the server's behaviour rather than that gap.
"""

from __future__ import annotations

import asyncio

from aiortc import RTCRtpReceiver

from ..media.aiortc_hooks import testing

#: Seconds between two rounds of requests for the packets still missing.
INTERVAL = 0.1
#: Requests per missing packet, at most (after the one aiortc sent itself).
MAX_TRIES = 8


class NackRetries:
    """Which still-missing packets to ask for again this round (each at most :data:`MAX_TRIES` times)."""

    def __init__(self) -> None:
        self._tries: dict[int, int] = {}

    def due(self, missing: list[int]) -> list[int]:
        """``missing``: what the receiver misses now; returns those to ask for this round."""
        self._tries = tries = {sequence: self._tries.get(sequence, 0) + 1 for sequence in missing}
        return [sequence for sequence in missing if tries[sequence] <= MAX_TRIES]


async def ask_again(receiver: RTCRtpReceiver) -> None:
    """Every :data:`INTERVAL` s, NACK again what ``receiver`` still misses (runs until cancelled)."""
    retries = NackRetries()
    while True:
        await asyncio.sleep(INTERVAL)
        lost = retries.due(testing.missing_packets(receiver))
        sources = receiver.getSynchronizationSources()
        if lost and sources:
            latest = max(sources, key=lambda s: s.timestamp)
            await testing.send_nack(receiver, latest.source, lost)
