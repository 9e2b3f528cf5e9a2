"""What the switchboard needs of participants served by other processes (implemented by
:class:`sfu.cluster.link.ClusterLink`; absent when one process serves everyone)."""

from __future__ import annotations

from typing import Protocol


class Elsewhere(Protocol):
    """Participants served by other processes (:class:`sfu.cluster.link.ClusterLink`)."""

    def paired(self, local: str, remote: str) -> None:
        """``local``'s new partner ``remote`` is served elsewhere: bring their media here."""

    def parted(self, local: str, partner: str) -> None:
        """``local`` and ``partner`` (served here or elsewhere) are no longer partners."""

    def chat(self, sender: str, remote: str, text: str) -> None:
        """Hand ``text`` to ``remote``, ``sender``'s partner served elsewhere."""

    def online(self, here: int) -> int:
        """How many people are connected over the whole pool (``here`` of them in this process)."""

    def left(self, who: str) -> None:
        """``who`` left while the pool was unreachable: take them out of it once it is back."""
