"""Every error code the server sends (``{"type":"error","code":...}``): the one list.

Each code carries a one-line meaning and whether it always closes the connection; the table in
docs/protocol.md is generated from here (``python -m sfu.signaling.errors``) and a test keeps the two
equal. A new code is one new member below.
"""

from __future__ import annotations

import enum
from typing import Any, Optional, Self


class ErrorCode(enum.StrEnum):
    """A stable, machine-readable error code. ``str(code)`` is the code as sent."""

    #: What causes it (one line of Markdown, as docs/protocol.md shows it).
    meaning: str
    #: True when the server always closes the connection after sending it.
    closes: bool
    #: More about the connection (close codes, exceptions), shown after "closed" / "stays open".
    detail: str

    def __new__(cls, code: str, meaning: str, closes: bool, detail: str = "") -> Self:
        member = str.__new__(cls, code)
        member._value_ = code
        member.meaning = meaning
        member.closes = closes
        member.detail = detail
        return member

    BAD_JSON = "bad_json", "A text frame that is not a JSON object.", False
    BAD_MESSAGE = "bad_message", "A known `type` with missing or wrongly typed fields.", False
    UNKNOWN_TYPE = "unknown_type", "`type` is not one of the client messages above.", False
    BINARY_NOT_SUPPORTED = "binary_not_supported", "A binary frame.", False
    MESSAGE_TOO_LARGE = (
        "message_too_large",
        (
            "A message over the size limit (64 KiB by default, `--max-message-bytes`). Frames over the hard "
            "limit (1 MiB, `--hard-message-bytes`) close the socket with WebSocket code 1009; invalid UTF-8 "
            "in a text frame closes it with 1007."
        ),
        False,
    )
    CHAT_TOO_LONG = "chat_too_long", "Chat text over the limit (`--max-chat-length`).", False
    CHAT_EMPTY = "chat_empty", "Chat text that is empty or only white space.", False
    BAD_INTERESTS = "bad_interests", "`interests` in `start`/`next` is not a list of strings.", False
    TOO_MANY_INTERESTS = "too_many_interests", "More than 10 `interests`.", False
    INTEREST_TOO_LONG = (
        "interest_too_long",
        "An interest over 32 characters once normalised (or over 128 as sent).",
        False,
    )
    BAD_LANGUAGES = (
        "bad_languages",
        '`languages` is neither a list of language tags (BCP 47, e.g. `"pt-BR"`) nor `"any"`.',
        False,
    )
    TOO_MANY_LANGUAGES = "too_many_languages", "More than 32 `languages`.", False
    BAD_STRICT = "bad_strict", "`strict` is not `true` or `false`.", False
    OFFER_REQUIRED = "offer_required", "`start` or `next` before `offer`.", False
    ALREADY_NEGOTIATED = "already_negotiated", "A second `offer`.", False
    BAD_SDP = (
        "bad_sdp",
        (
            "The offer could not be parsed or negotiated (e.g. no codec in common, no audio or video "
            "section, more than one of either, a BUNDLE group naming unknown sections, a section without "
            "ICE credentials or DTLS fingerprint)."
        ),
        True,
        "1008",
    )
    NOT_PAIRED = "not_paired", "`chat` while not paired.", False
    SERVER_FULL = (
        "server_full",
        (
            "The server has reached its participant limit (`--max-participants`), or is overloaded "
            "(`--max-loop-lag`, `--max-cpu`); sent instead of `welcome`, with `retry_after` (seconds: 15 "
            "when full, 3 when overloaded, as another worker or node behind the same address may take "
            "the next attempt). Also the reply to `offer` when every UDP port of `--port-range` is in use."
        ),
        True,
        "WebSocket code 1013; 1008 after an `offer`",
    )
    RATE_LIMITED = (
        "rate_limited",
        (
            "Too many messages too fast on this connection (`--message-rate`, `--message-burst`): the "
            "message was ignored. Also sent instead of `welcome` when one address opens connections too "
            "fast (`--ip-connection-rate`, `--ip-connection-burst`); then the connection is closed (1013)."
        ),
        False,
        "closed when sent instead of `welcome`",
    )
    TOO_MANY_CONNECTIONS = (
        "too_many_connections",
        (
            "One address already has the maximum number of connections open (`--ip-max-connections`); "
            "sent instead of `welcome`."
        ),
        True,
        "1013",
    )
    TIMEOUT = (
        "timeout",
        (
            "No `offer` within `--offer-timeout` seconds of connecting, media not connected within "
            "`--ice-timeout` seconds of the offer, or neither waiting nor paired and silent for "
            "`--idle-timeout` seconds. `message` says which."
        ),
        True,
        "1008",
    )
    RULES_NOT_ACCEPTED = (
        "rules_not_accepted",
        "`start` or `next` before `accept_rules` with the version of the rules `welcome` carried.",
        False,
    )
    RULES_CHANGED = (
        "rules_changed",
        "`accept_rules` with a version other than the current rules' (`welcome` carries it): show them again.",
        False,
    )
    BAD_REASON = "bad_reason", "`report` with a `reason` other than `nudity`, `harassment`, `minor`, `spam`, `other`.", False
    NOTE_TOO_LONG = "note_too_long", "A `report` note over the limit (`--max-note-length`, 500 characters).", False
    NOTHING_TO_REPORT = (
        "nothing_to_report",
        "`report` while neither paired nor within `--report-window` seconds (30) after the partner left.",
        False,
    )
    CANNOT_REPORT_SELF = "cannot_report_self", "`report` of a partner on the same device (two tabs).", False
    REPORT_RATE_LIMITED = (
        "report_rate_limited",
        (
            "More than `--report-rate-limit` reports (5) within `--report-rate-window` seconds (600); nothing "
            "was stored and the partner stays. `retry_after` says in how many seconds a report is accepted again."
        ),
        False,
    )
    REPORT_FAILED = (
        "report_failed",
        "The report could not be stored (the server's database did not answer); nothing changed, try again.",
        False,
    )
    BANNED = (
        "banned",
        (
            "This device (or its address) is banned: `until` (ISO 8601, UTC) and `reason` say until when and why. "
            "Sent instead of `welcome`, or at once when a moderator or the automatic policy bans someone connected."
        ),
        True,
        "1008",
    )
    PAIRING_UNAVAILABLE = (
        "pairing_unavailable",
        (
            "`start` or `next` while the shared pool of people (Redis, `--redis-url`) cannot be reached: "
            "nothing changed, a pair already formed keeps talking; try again in a few seconds."
        ),
        False,
    )
    SHUTTING_DOWN = "shutting_down", "The server is stopping.", True, "1001"
    INTERNAL_ERROR = "internal_error", "A bug on the server; this one client is affected.", True, "1011"

    @property
    def connection(self) -> str:
        """What happens to the connection, as docs/protocol.md says it."""
        state = "closed" if self.closes else "stays open"
        return f"{state} ({self.detail})" if self.detail else state


class ProtocolError(Exception):
    """A client message was refused; the connection closes when the code says so. ``details``: more
    fields for the client (e.g. ``retry_after``)."""

    def __init__(self, code: ErrorCode, message: str, details: Optional[dict[str, Any]] = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details or {}

    @property
    def fatal(self) -> bool:
        return self.code.closes


def markdown_table() -> str:
    """The error-code table of docs/protocol.md."""
    lines = ["| code | cause | connection |", "|---|---|---|"]
    lines += [f"| `{code}` | {code.meaning} | {code.connection} |" for code in ErrorCode]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(markdown_table(), end="")
