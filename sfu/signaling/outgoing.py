"""What the server sends: one dataclass per message type, each with ``to_json()`` (see docs/protocol.md).

Every message the server sends is built here and nowhere else; a new message type is one class here
plus its row in the protocol document (a test checks the two list the same types).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Any, ClassVar, Optional, Union

from ..config import IceServer
from .errors import ErrorCode


@dataclass(frozen=True)
class _Message:
    """Sent as ``{"type": TYPE, <field>: <value>, ...}`` in field order."""

    TYPE: ClassVar[str]

    def to_json(self) -> dict[str, Any]:
        return {"type": self.TYPE, **{f.name: getattr(self, f.name) for f in dataclasses.fields(self)}}

    def to_text(self) -> str:
        """The text frame that carries it."""
        return json.dumps(self.to_json())


@dataclass(frozen=True)
class Welcome(_Message):
    """First message on every connection: the client's id and the ICE servers it should use."""

    TYPE: ClassVar[str] = "welcome"
    id: str
    version: str
    ice_servers: tuple[IceServer, ...] = ()
    #: The rules to accept before ``start``: ``{"version", "text", "language"}`` (``None``: none asked).
    rules: Optional[dict[str, Any]] = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "type": self.TYPE,
            "id": self.id,
            "version": self.version,
            "iceServers": [server.to_json() for server in self.ice_servers],
        }
        if self.rules is not None:
            out["rules"] = self.rules
        return out


@dataclass(frozen=True)
class Online(_Message):
    """How many people are connected."""

    TYPE: ClassVar[str] = "online"
    count: int


@dataclass(frozen=True)
class Answer(_Message):
    """The server's complete SDP answer to the client's offer."""

    TYPE: ClassVar[str] = "answer"
    sdp: str


@dataclass(frozen=True)
class Paired(_Message):
    """Now paired with ``partner`` (an opaque id); ``common``: the interests both share, normalised."""

    TYPE: ClassVar[str] = "paired"
    partner: str
    common: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {"type": self.TYPE, "partner": self.partner, "common": list(self.common)}


@dataclass(frozen=True)
class Waiting(_Message):
    """Looking for a partner."""

    TYPE: ClassVar[str] = "waiting"


@dataclass(frozen=True)
class PartnerLeft(_Message):
    """The partner pressed Next, stopped or left; a ``waiting`` or ``paired`` follows."""

    TYPE: ClassVar[str] = "partner_left"


@dataclass(frozen=True)
class Idle(_Message):
    """Not looking (after ``stop``)."""

    TYPE: ClassVar[str] = "idle"


@dataclass(frozen=True)
class Chat(_Message):
    """A chat message from the current partner (plain text)."""

    TYPE: ClassVar[str] = "chat"
    text: str


@dataclass(frozen=True)
class Reported(_Message):
    """The report was stored (or had been already: the same id); the reporter moves on."""

    TYPE: ClassVar[str] = "reported"
    report_id: int


@dataclass(frozen=True)
class Moderation(_Message):
    """Moderation acted about this client: ``warned`` (a moderator's warning), ``video_hidden`` /
    ``video_shown`` (your video, for your partner), ``partner_hidden`` / ``partner_shown`` (your
    partner's), ``camera_required`` (no video of yours reaches the server: you are matched once it
    does); ``reason`` says why, when there is one."""

    TYPE: ClassVar[str] = "moderation"
    action: str
    reason: str | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": self.TYPE, "action": self.action}
        if self.reason is not None:
            out["reason"] = self.reason
        return out


@dataclass(frozen=True)
class Error(_Message):
    """Something the client sent was refused, or the connection is about to close."""

    TYPE: ClassVar[str] = "error"
    code: ErrorCode
    message: str
    #: More fields some codes carry (``banned``: ``until``, ``reason``; ``report_rate_limited``: ``retry_after``).
    details: dict[str, Any] = dataclasses.field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {**self.details, "type": self.TYPE, "code": self.code.value, "message": self.message}


ServerMessage = Union[Welcome, Online, Answer, Paired, Waiting, PartnerLeft, Idle, Chat, Reported, Moderation, Error]
#: Every server message type (docs/protocol.md's "Server → client" table lists the same).
SERVER_MESSAGES: tuple[type[ServerMessage], ...] = (
    Welcome, Online, Answer, Paired, Waiting, PartnerLeft, Idle, Chat, Reported, Moderation, Error,
)
