"""Who talks to whom: random matchmaking, interests and languages, Next and rematch cooldowns.

Pure logic: no media, no HTTP, no clock of its own (callers pass ``now``).
"""

from .events import BASES, Basis, Event, Idle, Paired, PartnerLeft, Waiting
from .matchmaker import Matchmaker, PairingState
from .preferences import (
    NO_PREFERENCES,
    Preferences,
    PreferencesError,
    parse_preferences,
    preferences_from_message,
)

__all__ = [
    "BASES",
    "NO_PREFERENCES",
    "Basis",
    "Event",
    "Idle",
    "Matchmaker",
    "Paired",
    "PairingState",
    "PartnerLeft",
    "Preferences",
    "PreferencesError",
    "Waiting",
    "parse_preferences",
    "preferences_from_message",
]
