"""Several processes and machines serving one pool of people, through Redis.

Each server process given ``--redis-url`` joins the shared pool (:mod:`sfu.pairing.shared`) and:

- :mod:`.node`: is one process of the pool: its identity, heartbeat (with what others need to know of
  it), the sweep of dead processes, and whether Redis is reachable;
- :mod:`.directory`: knows every live process (counts, media pipe address and key) and which process
  serves a given participant;
- :mod:`.bus`: sends and receives the messages that cross processes (chat, moderation notes, bans);
- :mod:`.media`: the one seam to the media pipe between processes;
- :mod:`.link`: ties these to the switchboard (what it needs of participants served elsewhere).
"""

from .link import ClusterLink

__all__ = ["ClusterLink"]
