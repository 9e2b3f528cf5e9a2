"""The signaling protocol's client messages: parsing and validation (see docs/protocol.md)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Union


class ProtocolError(Exception):
    """A client message was refused. ``fatal`` errors close the connection."""

    def __init__(self, code: str, message: str, *, fatal: bool = False) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.fatal = fatal

    def to_json(self) -> dict:
        return error(self.code, self.message)


def error(code: str, message: str) -> dict:
    return {"type": "error", "code": code, "message": message}


@dataclass(frozen=True)
class Offer:
    sdp: str


@dataclass(frozen=True)
class Start:
    pass


@dataclass(frozen=True)
class Next:
    pass


@dataclass(frozen=True)
class Stop:
    pass


@dataclass(frozen=True)
class Chat:
    text: str


ClientMessage = Union[Offer, Start, Next, Stop, Chat]

_SIMPLE = {"start": Start, "next": Next, "stop": Stop}


def parse(raw: str, *, max_bytes: int, max_chat_length: int) -> ClientMessage:
    """Parse one text frame; raise :class:`ProtocolError` with a stable code if it is refused."""
    if len(raw) > max_bytes or len(raw.encode("utf-8", "surrogatepass")) > max_bytes:
        raise ProtocolError("message_too_large", f"messages are limited to {max_bytes} bytes")
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError):
        raise ProtocolError("bad_json", "message is not valid JSON") from None
    if not isinstance(data, dict):
        raise ProtocolError("bad_json", "message must be a JSON object")
    kind = data.get("type")
    if not isinstance(kind, str):
        raise ProtocolError("bad_message", 'message needs a string field "type"')
    if kind in _SIMPLE:
        return _SIMPLE[kind]()
    if kind == "offer":
        sdp = data.get("sdp")
        if not isinstance(sdp, str) or not sdp.strip():
            raise ProtocolError("bad_message", 'offer needs a non-empty string field "sdp"')
        return Offer(sdp)
    if kind == "chat":
        text = data.get("text")
        if not isinstance(text, str):
            raise ProtocolError("bad_message", 'chat needs a string field "text"')
        if not text.strip():
            raise ProtocolError("chat_empty", "chat text is empty")
        if len(text) > max_chat_length:
            raise ProtocolError("chat_too_long", f"chat text is limited to {max_chat_length} characters")
        return Chat(text)
    raise ProtocolError("unknown_type", f"unknown message type {kind[:40]!r}")
