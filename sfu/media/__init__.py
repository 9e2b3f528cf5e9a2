"""Everything that touches frames and packets: sources, outbound tracks, forwarding strategies.

A participant's inbound tracks are sources (:mod:`.source`), their outbound tracks are sinks
(:mod:`.outbound`); :mod:`.router` connects one participant's sources to another's outbound tracks by
participant id. Every aiortc internal is reached through :mod:`.aiortc_hooks`.

Knows aiortc; knows nothing of HTTP, WebSockets or pairing. This package's ``__init__`` imports
nothing, so :mod:`.modes` can be read without loading the media stack.
"""
