"""Upstream loss: which packets of a publisher's stream never arrived, when to NACK them again, and
when to give up and ask for a keyframe instead. Also the counters a Receiver Report needs."""

from __future__ import annotations

from dataclasses import dataclass, field

#: Seconds between two NACKs of the same packet.
NACK_INTERVAL = 0.04
#: NACKs per missing packet before giving up on it.
MAX_NACKS = 6
#: Seconds after which a missing packet is given up (the picture is then repaired by a keyframe).
GIVE_UP_AFTER = 0.35
#: Missing packets tracked at most; a larger hole is given up at once.
MAX_MISSING = 200


@dataclass(slots=True)
class _Missing:
    since: float
    nacked_at: float = -1e9
    nacks: int = 0


@dataclass
class LossReport:
    """What the caller should do now."""

    nack: list[int] = field(default_factory=list)
    #: A packet is lost for good: ask the publisher for a keyframe.
    keyframe: bool = False


class UpstreamLoss:
    def __init__(self, nack: bool = True) -> None:
        self._nack = nack
        self._missing: dict[int, _Missing] = {}
        self.highest: int | None = None
        self.cycles = 0  #: sequence number wraps, for the extended highest sequence number
        self.received = 0
        self.recovered = 0
        self.given_up = 0
        self._base: int | None = None
        # Receiver Report interval counters
        self._expected_prior = 0
        self._received_prior = 0

    def add(self, sequence: int, now: float) -> bool:
        """Record an arrival. Returns False for a duplicate or a packet already given up."""
        if self.highest is None:
            self.highest = self._base = sequence
            self.received += 1
            return True
        diff = ((sequence - self.highest + 0x8000) & 0xFFFF) - 0x8000  # seq_diff, inline: per packet
        if diff > 0:
            if diff > MAX_MISSING:
                self.given_up += len(self._missing) + diff - 1
                self._missing.clear()
            else:
                for gap in range(1, diff):
                    self._missing[(self.highest + gap) & 0xFFFF] = _Missing(now)
            if sequence < self.highest:
                self.cycles += 1
            self.highest = sequence
            self.received += 1
            return True
        if diff == 0:
            return False
        if self._missing.pop(sequence, None) is not None:
            self.recovered += 1
            self.received += 1
            return True
        return False

    def poll(self, now: float) -> LossReport:
        """NACKs due now, and whether something was given up since the last call."""
        report = LossReport()
        if not self._missing:
            return report
        for sequence, entry in list(self._missing.items()):
            if now - entry.since > GIVE_UP_AFTER or entry.nacks >= MAX_NACKS:
                del self._missing[sequence]
                self.given_up += 1
                report.keyframe = True
            elif self._nack and now - entry.nacked_at >= NACK_INTERVAL:
                entry.nacked_at = now
                entry.nacks += 1
                report.nack.append(sequence)
        return report

    @property
    def missing(self) -> int:
        return len(self._missing)

    def reset(self) -> None:
        """Forget every hole (e.g. the stream restarts at a keyframe anyway)."""
        self._missing.clear()

    def receiver_report(self) -> tuple[int, int, int]:
        """(fraction lost as 0-255 since the last report, cumulative lost, extended highest seq)."""
        if self.highest is None or self._base is None:
            return 0, 0, 0
        extended = (self.cycles << 16) | self.highest
        expected = extended - self._base + 1
        lost = max(0, expected - self.received)
        interval_expected = expected - self._expected_prior
        interval_received = self.received - self._received_prior
        self._expected_prior, self._received_prior = expected, self.received
        interval_lost = interval_expected - interval_received
        fraction = 0 if interval_expected <= 0 or interval_lost <= 0 else (interval_lost << 8) // interval_expected
        return min(fraction, 255), min(lost, 0x7FFFFF), extended & 0xFFFFFFFF
