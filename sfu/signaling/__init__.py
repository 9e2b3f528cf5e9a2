"""Signaling: the JSON-over-WebSocket protocol of docs/protocol.md and everything that speaks it.

- :mod:`.messages`: what clients send, as dataclasses, and ``parse()``
- :mod:`.outgoing`: what the server sends, as dataclasses with ``to_json()``
- :mod:`.errors`: every error code (meaning, whether it closes the connection) and ``ProtocolError``
- :mod:`.connection`: one visit: the WebSocket, its outbox, the read loop handing messages on
- :mod:`.negotiation`: a participant's offer becomes their peer connection and the server's answer
- :mod:`.switchboard`: arrivals, departures, requests, and the matchmaker's decisions carried out
- :mod:`.housekeeping`: the background loops (online count, cooldowns, deadlines, statistics, lag)
- :mod:`.tasks`: background closing steps, owned and awaited on stop
"""
