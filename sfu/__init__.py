"""sfu: a self-hostable random 1:1 video chat server.

Every browser talks only to the server over one WebRTC connection; the server pairs people at random
and forwards each one's audio and video to their partner.
"""

__version__ = "0.1.0"
