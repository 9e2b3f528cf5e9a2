"""Everything that touches frames and packets: feeds, outbound tracks, forwarding strategies.

Knows aiortc; knows nothing of HTTP, WebSockets or pairing.
"""
