"""The forwarding modes an operator can choose (``sfu serve --forwarding``): the one list.

Imports nothing of the media stack, so configuration, tests and benchmarks can read it cheaply.
"""

from __future__ import annotations

#: ``auto`` forwards RTP packets wherever both legs share a codec and transcodes the rest (encoded
#: frames instead of packets, or transcoding everything, if the installed aiortc lacks internals);
#: ``passthrough`` forwards encoded frames (re-packetized by aiortc) wherever both legs share a codec;
#: ``transcode`` decodes and re-encodes every direction;
#: ``packet`` is ``auto`` that refuses to start (like ``passthrough``) without the internals it needs.
FORWARDING_MODES: tuple[str, ...] = ("auto", "passthrough", "transcode", "packet")

DEFAULT_FORWARDING = "auto"
