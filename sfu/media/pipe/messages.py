"""What travels in the pipe's datagrams besides media, as plain values, with strict decoding.

* :class:`Describe` (exporter -> importer): a publisher's piped streams — for each kind its stream
  tag and the publisher's leg (payload type -> codec, header extension ids), whether the video is
  hidden, and whether the export ended. Sent on export, when something changes, and every second.
* :class:`Feedback` (importer -> exporter): what the watcher's side asks of the publisher: a
  keyframe, a bitrate cap (or none), NACKed sequence numbers of the publisher's stream, a watcher
  attached / detached, or a description.
* media: one or more RTP packets as the exporter's feeds received them, each preceded by its
  4-byte stream tag and 2-byte length (packets leaving within a millisecond share one datagram).

Bodies are JSON (small, sent a few times a second at most) except media, which is binary. Anything
that does not decode into these exact shapes raises :class:`ValueError`.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass, field
from typing import Any

from ..rtp.legs import Codec, InboundLeg

MAX_ID = 200  #: longest participant id accepted
MAX_NACKS = 256
OPS = ("keyframe", "cap", "nack", "attach", "detach", "describe")
_ENTRY = struct.Struct("!IH")


@dataclass(frozen=True)
class StreamInfo:
    kind: str
    tag: int
    leg: InboundLeg


@dataclass(frozen=True)
class Describe:
    publisher: str
    streams: tuple[StreamInfo, ...] = ()
    hidden: bool = False
    ended: bool = False


@dataclass(frozen=True)
class Feedback:
    publisher: str
    kind: str
    op: str
    bps: int | None = None
    sequences: tuple[int, ...] = field(default=())


# -- media -----------------------------------------------------------------------------------------


#: ``entry_header(tag, size)``: what precedes a packet of ``size`` bytes in its entry.
entry_header = _ENTRY.pack


def media(tag: int, packet: bytes) -> bytes:
    """One packet's entry in a media datagram (entries are concatenated)."""
    return entry_header(tag, len(packet)) + packet


def open_media(body: bytes) -> list[tuple[int, bytes]]:
    """The (stream tag, RTP packet) entries of a media datagram."""
    entries = []
    pos, end = 0, len(body)
    unpack = _ENTRY.unpack_from
    while pos < end:
        if end - pos < 6:
            raise ValueError("media entry truncated")
        tag, size = unpack(body, pos)
        pos += 6
        if size < 12 or pos + size > end:
            raise ValueError("media entry too short for an RTP header, or truncated")
        entries.append((tag, body[pos : pos + size]))
        pos += size
    if not entries:
        raise ValueError("empty media datagram")
    return entries


# -- describe --------------------------------------------------------------------------------------


def encode_describe(message: Describe) -> bytes:
    return json.dumps(
        {
            "p": message.publisher,
            "s": [_stream(s) for s in message.streams],
            "h": message.hidden,
            "e": message.ended,
        },
        separators=(",", ":"),
    ).encode()


def _stream(info: StreamInfo) -> dict[str, Any]:
    return {
        "k": info.kind,
        "t": info.tag,
        "c": [[c.payload_type, c.mime, c.clock_rate, c.packetization_mode, c.apt] for c in info.leg.codecs.values()],
        "x": info.leg.extensions,
    }


def decode_describe(body: bytes) -> Describe:
    raw = _object(body)
    publisher = _participant(raw.get("p"))
    streams = raw.get("s")
    if not isinstance(streams, list) or len(streams) > 2:
        raise ValueError("streams must be a list of at most 2")
    hidden, ended = raw.get("h"), raw.get("e")
    if not isinstance(hidden, bool) or not isinstance(ended, bool):
        raise ValueError("hidden and ended must be booleans")
    return Describe(publisher, tuple(_decode_stream(s) for s in streams), hidden, ended)


def _decode_stream(raw: Any) -> StreamInfo:
    if not isinstance(raw, dict):
        raise ValueError("a stream must be an object")
    kind, tag, codecs, extensions = _kind(raw.get("k")), raw.get("t"), raw.get("c"), raw.get("x")
    if not isinstance(tag, int) or not _uint(tag, 0xFFFFFFFF):
        raise ValueError("bad stream tag")
    if not isinstance(codecs, list) or not 1 <= len(codecs) <= 32:
        raise ValueError("codecs must be a list of 1 to 32")
    if not isinstance(extensions, dict) or len(extensions) > 16:
        raise ValueError("extensions must be an object of at most 16")
    leg = InboundLeg(kind=kind, codecs={})
    for entry in codecs:
        if not (isinstance(entry, list) and len(entry) == 5):
            raise ValueError("a codec is [payload type, mime, clock rate, packetization mode, apt]")
        pt, mime, clock, mode, apt = entry
        if not _uint(pt, 127) or not isinstance(mime, str) or len(mime) > 40 or not _uint(clock, 1 << 20):
            raise ValueError("bad codec")
        if not isinstance(mode, str) or len(mode) > 4 or not (apt is None or _uint(apt, 127)):
            raise ValueError("bad codec parameters")
        leg.codecs[pt] = Codec(pt, mime.lower(), clock, mode, apt)
    for uri, ext_id in extensions.items():
        if not isinstance(uri, str) or len(uri) > 200 or not _uint(ext_id, 255):
            raise ValueError("bad header extension")
        leg.extensions[uri] = ext_id
    return StreamInfo(kind, tag, leg)


# -- feedback --------------------------------------------------------------------------------------


def encode_feedback(message: Feedback) -> bytes:
    raw: dict[str, Any] = {"p": message.publisher, "k": message.kind, "o": message.op}
    if message.op == "cap":
        raw["b"] = message.bps
    if message.op == "nack":
        raw["n"] = list(message.sequences)
    return json.dumps(raw, separators=(",", ":")).encode()


def decode_feedback(body: bytes) -> Feedback:
    raw = _object(body)
    publisher, kind, op = _participant(raw.get("p")), _kind(raw.get("k")), raw.get("o")
    if op not in OPS:
        raise ValueError("unknown feedback")
    bps: int | None = None
    sequences: tuple[int, ...] = ()
    if op == "cap":
        bps = raw.get("b")
        if bps is not None and not _uint(bps, 10**10):
            raise ValueError("bad bitrate")
    if op == "nack":
        found = raw.get("n")
        if not isinstance(found, list) or not 1 <= len(found) <= MAX_NACKS or not all(_uint(s, 0xFFFF) for s in found):
            raise ValueError("bad NACK list")
        sequences = tuple(found)
    return Feedback(publisher, kind, op, bps, sequences)


# -- checks ----------------------------------------------------------------------------------------


def _object(body: bytes) -> dict[str, Any]:
    try:
        raw = json.loads(body)
    except (UnicodeDecodeError, ValueError):
        raise ValueError("not JSON") from None
    if not isinstance(raw, dict):
        raise ValueError("not a JSON object")
    return raw


def _participant(value: Any) -> str:
    if not isinstance(value, str) or not 1 <= len(value) <= MAX_ID:
        raise ValueError("bad participant id")
    return value


def _kind(value: Any) -> str:
    if value not in ("audio", "video"):
        raise ValueError("kind must be audio or video")
    return str(value)


def _uint(value: Any, limit: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= limit
