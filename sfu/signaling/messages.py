"""What clients send: one dataclass per message type, and :func:`parse` (see docs/protocol.md)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, ClassVar, Optional, Union

from ..pairing.preferences import Preferences, PreferencesError, preferences_from_message
from .errors import ErrorCode, ProtocolError


@dataclass(frozen=True)
class Offer:
    TYPE: ClassVar[str] = "offer"
    sdp: str


@dataclass(frozen=True)
class Start:
    TYPE: ClassVar[str] = "start"
    #: Interests, languages, strict, normalised; None when the message states none (keep the last).
    preferences: Preferences | None = None


@dataclass(frozen=True)
class Next:
    TYPE: ClassVar[str] = "next"
    preferences: Preferences | None = None


@dataclass(frozen=True)
class Stop:
    TYPE: ClassVar[str] = "stop"


@dataclass(frozen=True)
class Chat:
    TYPE: ClassVar[str] = "chat"
    text: str


@dataclass(frozen=True)
class AcceptRules:
    TYPE: ClassVar[str] = "accept_rules"
    version: str


@dataclass(frozen=True)
class Report:
    """Report the partner (or the last one, shortly after they left); ``reason`` is checked later."""

    TYPE: ClassVar[str] = "report"
    reason: str
    note: Optional[str] = None


ClientMessage = Union[Offer, Start, Next, Stop, Chat, AcceptRules, Report]
#: Every client message type (docs/protocol.md's "Client → server" table lists the same).
CLIENT_MESSAGES: tuple[type[ClientMessage], ...] = (Offer, Start, Next, Stop, Chat, AcceptRules, Report)

_LOOKING: dict[str, type[Start | Next]] = {cls.TYPE: cls for cls in (Start, Next)}


def _preferences(data: dict[str, Any]) -> Preferences | None:
    try:
        return preferences_from_message(data)
    except PreferencesError as exc:
        raise ProtocolError(ErrorCode[exc.code.upper()], exc.detail) from None


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
    if kind in _LOOKING:
        return _LOOKING[kind](_preferences(data))
    if kind == Stop.TYPE:
        return Stop()
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
    if kind == AcceptRules.TYPE:
        version = data.get("version")
        if not isinstance(version, str) or not version:
            raise ProtocolError(ErrorCode.BAD_MESSAGE, 'accept_rules needs the string field "version" from welcome')
        return AcceptRules(version[:64])
    if kind == Report.TYPE:
        return _report(data)
    raise ProtocolError(ErrorCode.UNKNOWN_TYPE, f"unknown message type {kind[:40]!r}")


def _report(data: dict) -> Report:
    reason, note = data.get("reason"), data.get("note")
    if not isinstance(reason, str):
        raise ProtocolError(ErrorCode.BAD_MESSAGE, 'report needs a string field "reason"')
    if note is not None and not isinstance(note, str):
        raise ProtocolError(ErrorCode.BAD_MESSAGE, 'report "note" must be a string')
    return Report(reason[:64], note)
