"""Who talks to whom: random matchmaking, Next and rematch cooldowns.

Pure logic: no media, no HTTP, no clock of its own (callers pass ``now``).
"""

from .events import Event, Idle, Paired, PartnerLeft, Waiting
from .matchmaker import Matchmaker, PairingState

__all__ = ["Event", "Idle", "Matchmaker", "Paired", "PairingState", "PartnerLeft", "Waiting"]
