"""Matchmaking shared by many processes and machines, on Redis; and the one interface every
matchmaker offers (:class:`Pairing`), with the in-memory one behind it (:class:`LocalPairing`).

- :mod:`.protocol`: the interface, deliveries, errors;
- :mod:`.local`: the in-memory matchmaker as a :class:`Pairing`;
- :mod:`.redis_matchmaker`: the shared pool (atomic Lua scripts: :mod:`.lua_pool`, :mod:`.lua_search`,
  :mod:`.lua_ops`);
- :mod:`.feed`: a process's inbox, read in order and acknowledged;
- :mod:`.registry`: processes' heartbeats, and the sweep of those that died.

No media, no HTTP: only the ``redis`` package's asyncio client.
"""

from .codec import Outcome
from .connect import connect
from .feed import EventFeed
from .keys import Keys, ProcessId
from .local import LocalPairing
from .protocol import (
    Delivery,
    EventSink,
    NotOwner,
    Pairing,
    PairingCounts,
    PairingUnavailable,
)
from .redis_matchmaker import PairingRules, RedisMatchmaker
from .registry import Heartbeat, ProcessRegistry

__all__ = [
    "Delivery",
    "EventFeed",
    "EventSink",
    "Heartbeat",
    "Keys",
    "LocalPairing",
    "NotOwner",
    "Outcome",
    "Pairing",
    "PairingCounts",
    "PairingRules",
    "PairingUnavailable",
    "ProcessId",
    "ProcessRegistry",
    "RedisMatchmaker",
    "connect",
]
