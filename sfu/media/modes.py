"""The forwarding modes an operator can choose (``sfu serve --forwarding``): the one list.

Imports nothing of the media stack, so configuration, tests and benchmarks can read it cheaply.
"""

from __future__ import annotations

#: ``auto`` forwards encoded media wherever both legs share a codec and transcodes the rest;
#: ``passthrough`` is the same but refuses to start without the aiortc internals it needs;
#: ``transcode`` decodes and re-encodes every direction;
#: ``packet`` forwards RTP packets (rewritten) wherever both legs share a codec, transcodes the rest.
FORWARDING_MODES: tuple[str, ...] = ("auto", "passthrough", "transcode", "packet")

DEFAULT_FORWARDING = "auto"
