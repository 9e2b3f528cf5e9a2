"""Unit tests of the signaling vocabulary: messages both ways, error codes, and docs/protocol.md
listing exactly what the code sends and accepts."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pytest

from sfu.config import IceServer
from sfu.signaling import outgoing as out
from sfu.signaling.errors import ErrorCode, ProtocolError, markdown_table
from sfu.signaling.messages import CLIENT_MESSAGES, Chat, Next, Offer, Start, Stop, parse

ROOT = Path(__file__).resolve().parent.parent
PROTOCOL = (ROOT / "docs" / "protocol.md").read_text()


def section(title: str) -> str:
    start = PROTOCOL.index(f"## {title}\n")
    end = PROTOCOL.find("\n## ", start + 1)
    return PROTOCOL[start : end if end >= 0 else None]


def documented_types(title: str) -> set[str]:
    return set(re.findall(r'^\| `\{"type":"([a-z_]+)"', section(title), flags=re.MULTILINE))


def test_protocol_doc_error_table_is_generated_from_the_enum() -> None:
    table = "\n".join(line for line in section("Error codes").splitlines() if line.startswith("|")) + "\n"
    assert table == markdown_table(), "run: python -m sfu.signaling.errors, and paste it into docs/protocol.md"
    documented = set(re.findall(r"^\| `([a-z_]+)` \|", table, flags=re.MULTILINE))
    assert documented == {code.value for code in ErrorCode}


def test_protocol_doc_lists_every_message_type_both_ways() -> None:
    assert documented_types("Server → client") == {cls.TYPE for cls in out.SERVER_MESSAGES}
    assert documented_types("Client → server") == {cls.TYPE for cls in CLIENT_MESSAGES}


def test_outgoing_messages_on_the_wire() -> None:
    turn = IceServer("turn:t.example:3478?transport=tcp", "1700000000:ab", "c3Vw")
    wire = [json.loads(m.to_text()) for m in (
        out.Welcome("id1", "9.9", (IceServer("stun:s.example"), turn)),
        out.Online(3),
        out.Answer("v=0\r\n"),
        out.Paired("id2"),
        out.Waiting(),
        out.PartnerLeft(),
        out.Idle(),
        out.Chat("<b>hi</b>"),
        out.Error(ErrorCode.NOT_PAIRED, "chat needs a partner"),
    )]
    assert wire == [
        {"type": "welcome", "id": "id1", "version": "9.9", "iceServers": [
            {"urls": "stun:s.example"},
            {"urls": "turn:t.example:3478?transport=tcp", "username": "1700000000:ab", "credential": "c3Vw"},
        ]},
        {"type": "online", "count": 3},
        {"type": "answer", "sdp": "v=0\r\n"},
        {"type": "paired", "partner": "id2"},
        {"type": "waiting"},
        {"type": "partner_left"},
        {"type": "idle"},
        {"type": "chat", "text": "<b>hi</b>"},
        {"type": "error", "code": "not_paired", "message": "chat needs a partner"},
    ]
    # Field order is part of the text on the wire: "type" first.
    assert out.Welcome("x", "1").to_text().startswith('{"type": "welcome", "id": "x"')


def test_no_server_module_builds_a_message_as_a_dict() -> None:
    """Every server-sent message comes from sfu/signaling/outgoing.py, never a dict literal."""
    server_side = [*ROOT.glob("sfu/*.py"), *ROOT.glob("sfu/signaling/*.py"), *ROOT.glob("sfu/config/*.py")]
    offenders = []
    for path in server_side:
        if path.name == "outgoing.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Dict) and any(
                isinstance(key, ast.Constant) and key.value == "type" for key in node.keys
            ):
                offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert not offenders


def parse_one(raw: str) -> object:
    return parse(raw, max_bytes=200, max_chat_length=10)


def test_parse_accepts_every_client_message() -> None:
    assert parse_one('{"type":"offer","sdp":"v=0"}') == Offer("v=0")
    assert parse_one('{"type":"start"}') == Start()
    assert parse_one('{"type":"next","extra":1}') == Next()
    assert parse_one('{"type":"stop"}') == Stop()
    assert parse_one('{"type":"chat","text":"hi"}') == Chat("hi")


@pytest.mark.parametrize(
    "raw, code",
    [
        ("x" * 201, ErrorCode.MESSAGE_TOO_LARGE),
        ('{"type":"chat","text":"' + "é" * 95 + '"}', ErrorCode.MESSAGE_TOO_LARGE),  # bytes, not characters
        ("{nope", ErrorCode.BAD_JSON),
        ("[1]", ErrorCode.BAD_JSON),
        ('{"type":5}', ErrorCode.BAD_MESSAGE),
        ('{"type":"offer","sdp":"  "}', ErrorCode.BAD_MESSAGE),
        ('{"type":"chat"}', ErrorCode.BAD_MESSAGE),
        ('{"type":"chat","text":" "}', ErrorCode.CHAT_EMPTY),
        ('{"type":"chat","text":"eleven char"}', ErrorCode.CHAT_TOO_LONG),
        ('{"type":"dance"}', ErrorCode.UNKNOWN_TYPE),
    ],
)
def test_parse_refuses_with_a_stable_code_that_keeps_the_connection(raw: str, code: ErrorCode) -> None:
    with pytest.raises(ProtocolError) as caught:
        parse_one(raw)
    assert caught.value.code is code
    assert not caught.value.fatal  # bad input never costs the connection


def test_error_codes_say_whether_they_close() -> None:
    assert ProtocolError(ErrorCode.BAD_SDP, "x").fatal and ProtocolError(ErrorCode.SERVER_FULL, "x").fatal
    assert not ProtocolError(ErrorCode.ALREADY_NEGOTIATED, "x").fatal
    assert ErrorCode("rate_limited") is ErrorCode.RATE_LIMITED and str(ErrorCode.RATE_LIMITED) == "rate_limited"
    assert ErrorCode.RATE_LIMITED.connection == "stays open (closed when sent instead of `welcome`)"
    assert ErrorCode.BAD_JSON.connection == "stays open" and ErrorCode.TIMEOUT.connection == "closed (1008)"
    for code in ErrorCode:
        assert code.meaning and "\n" not in code.meaning and "|" not in code.meaning, code
