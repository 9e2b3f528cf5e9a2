"""What clients send: one dataclass per message type, and :func:`parse` (see docs/protocol.md)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import ClassVar, Union

from .errors import ErrorCode, ProtocolError


@dataclass(frozen=True)
class Offer:
    TYPE: ClassVar[str] = "offer"
    sdp: str


@dataclass(frozen=True)
class Start:
    TYPE: ClassVar[str] = "start"


@dataclass(frozen=True)
class Next:
    TYPE: ClassVar[str] = "next"


@dataclass(frozen=True)
class Stop:
    TYPE: ClassVar[str] = "stop"


@dataclass(frozen=True)
class Chat:
    TYPE: ClassVar[str] = "chat"
    text: str


ClientMessage = Union[Offer, Start, Next, Stop, Chat]
#: Every client message type (docs/protocol.md's "Client → server" table lists the same).
CLIENT_MESSAGES: tuple[type[ClientMessage], ...] = (Offer, Start, Next, Stop, Chat)

_SIMPLE: dict[str, type[Start | Next | Stop]] = {cls.TYPE: cls for cls in (Start, Next, Stop)}


def parse(raw: str, *, max_bytes: int, max_chat_length: int) -> ClientMessage:
    """Parse one text frame; raise :class:`ProtocolError` with a stable code if it is refused."""
    if len(raw) > max_bytes or len(raw.encode("utf-8", "surrogatepass")) > max_bytes:
        raise ProtocolError(ErrorCode.MESSAGE_TOO_LARGE, f"messages are limited to {max_bytes} bytes")
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError):
        raise ProtocolError(ErrorCode.BAD_JSON, "message is not valid JSON") from None
    if not isinstance(data, dict):
        raise ProtocolError(ErrorCode.BAD_JSON, "message must be a JSON object")
    kind = data.get("type")
    if not isinstance(kind, str):
        raise ProtocolError(ErrorCode.BAD_MESSAGE, 'message needs a string field "type"')
    if kind in _SIMPLE:
        return _SIMPLE[kind]()
    if kind == Offer.TYPE:
        sdp = data.get("sdp")
        if not isinstance(sdp, str) or not sdp.strip():
            raise ProtocolError(ErrorCode.BAD_MESSAGE, 'offer needs a non-empty string field "sdp"')
        return Offer(sdp)
    if kind == Chat.TYPE:
        text = data.get("text")
        if not isinstance(text, str):
            raise ProtocolError(ErrorCode.BAD_MESSAGE, 'chat needs a string field "text"')
        if not text.strip():
            raise ProtocolError(ErrorCode.CHAT_EMPTY, "chat text is empty")
        if len(text) > max_chat_length:
            raise ProtocolError(ErrorCode.CHAT_TOO_LONG, f"chat text is limited to {max_chat_length} characters")
        return Chat(text)
    raise ProtocolError(ErrorCode.UNKNOWN_TYPE, f"unknown message type {kind[:40]!r}")
