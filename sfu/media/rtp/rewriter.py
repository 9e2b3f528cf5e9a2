"""One outbound RTP stream fed by a succession of sources (partners, or the server's own encoder).

The receiver must see one continuous stream: same SSRC, sequence numbers and timestamps that go on
from where the previous source stopped. :class:`SequenceRewriter` chooses, at the first packet of
each new source, the offsets that make that packet follow the last one sent (its timestamp advanced
by the wall-clock time elapsed since), and applies them to every later packet of that source. Gaps
within one source are kept, so the receiver still detects real loss and asks for retransmission.
Packets of a source older than its first forwarded packet are refused (they would reuse numbers).
"""

from __future__ import annotations

from dataclasses import dataclass

#: A jump of more sequence numbers than this within one source is treated as a restart of it.
MAX_SEQ_JUMP = 3000


@dataclass(slots=True)
class Rewritten:
    sequence: int
    timestamp: int
    #: True for the first packet of a new source (offsets were chosen for it).
    rebased: bool


class SequenceRewriter:
    """Sequence numbers and timestamps of one outbound stream, continuous across sources."""

    def __init__(self, clock_rate: int, first_sequence: int, first_timestamp: int) -> None:
        self.clock_rate = clock_rate
        #: Last (highest) values sent, and when.
        self.last_sequence = (first_sequence - 1) & 0xFFFF
        self.last_timestamp = first_timestamp & 0xFFFFFFFF
        self.last_time: float | None = None
        self._source: object = None
        self._seq_offset = 0
        self._ts_offset = 0
        self._base_seq = 0  #: the source's sequence number at its first forwarded packet
        self._highest_in: int = 0
        self.sent = 0
        self.refused = 0

    @property
    def source(self) -> object:
        return self._source

    def forget_source(self) -> None:
        """The next packet, even from the same source, starts a new run (e.g. the source restarted
        at a keyframe after loss)."""
        self._source = None

    def rewrite(self, source: object, sequence: int, timestamp: int, now: float) -> Rewritten | None:
        """Output numbers for a packet of ``source``, or ``None`` if it must not be sent."""
        rebased = False
        same = source is self._source or source == self._source  # source ids are values
        ahead = ((sequence - self._highest_in + 0x8000) & 0xFFFF) - 0x8000  # seq_diff, inline: per packet
        if not same or abs(ahead) > MAX_SEQ_JUMP:
            elapsed = 0 if self.last_time is None else max(1, round((now - self.last_time) * self.clock_rate))
            self._seq_offset = (self.last_sequence + 1 - sequence) & 0xFFFF
            self._ts_offset = (self.last_timestamp + elapsed - timestamp) & 0xFFFFFFFF
            self._source = source
            self._base_seq = self._highest_in = sequence
            ahead = 0
            rebased = True
        elif (sequence - self._base_seq) & 0xFFFF >= 0x8000:  # seq_diff(...) < 0
            self.refused += 1
            return None
        out_seq = (sequence + self._seq_offset) & 0xFFFF
        out_ts = (timestamp + self._ts_offset) & 0xFFFFFFFF
        if ahead > 0:
            self._highest_in = sequence
        if 0 < (out_seq - self.last_sequence) & 0xFFFF < 0x8000:  # seq_diff(...) > 0
            self.last_sequence = out_seq
            if (out_ts - self.last_timestamp) & 0xFFFFFFFF < 0x80000000 or rebased:  # ts_diff(...) >= 0
                self.last_timestamp = out_ts
                self.last_time = now
        self.sent += 1
        return Rewritten(out_seq, out_ts, rebased)

    def timestamp_at(self, now: float) -> int:
        """The RTP timestamp this stream would carry at ``now`` (for Sender Reports)."""
        if self.last_time is None:
            return self.last_timestamp
        return (self.last_timestamp + int((now - self.last_time) * self.clock_rate)) & 0xFFFFFFFF
