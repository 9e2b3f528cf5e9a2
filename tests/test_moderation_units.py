"""Pure moderation logic: policy, identities, rules, settings, console sessions."""

from __future__ import annotations

import os
import stat

import pytest

from sfu.moderation.auth import ConsoleAuth, SignInThrottle
from sfu.moderation.identity import IdentityIssuer, load_or_create_secret, parse_address
from sfu.moderation.origins import origin_allowed
from sfu.moderation.policy import (
    BAD_MESSAGE,
    BAD_REASON,
    NOTE_TOO_LONG,
    PriorBan,
    ReportLimits,
    ReportRefused,
    StrikePolicy,
    check_report,
)
from sfu.moderation.rules import (
    DEFAULT_RULES,
    MAX_RULES_BYTES,
    Rules,
    RulesError,
    load_rules,
)
from sfu.moderation.settings import ModerationSettings

HOUR, DAY = 3600.0, 86400.0
SECRET = b"0123456789abcdef0123456789abcdef"


# -- policy -------------------------------------------------------------------------------------
def policy(reports_before_ban: int = 0) -> StrikePolicy:
    return StrikePolicy(strikes_before_ban=3, strike_window=DAY, ban_durations=(HOUR, DAY, 7 * DAY),
                        ban_memory=90 * DAY, reports_before_ban=reports_before_ban)


def test_strikes_within_the_window_ban_with_escalating_durations():
    p = policy()
    now = 1000 * DAY
    assert p.decide(strikes=[now - 10, now - 5], reports=[], prior_bans=[], now=now) is None
    first = p.decide(strikes=[now - 10, now - 5, now], reports=[], prior_bans=[], now=now)
    assert first is not None and first.duration == HOUR and first.cause == "strikes" and first.count == 3
    # After that ban the earlier strikes are used up; three new ones give the next step.
    bans = [PriorBan(created_at=now, lifted=False)]
    later = now + 2 * HOUR
    assert p.decide(strikes=[now - 10, now - 5, now, later], reports=[], prior_bans=bans, now=later) is None
    second = p.decide(strikes=[later - 2, later - 1, later], reports=[], prior_bans=bans, now=later)
    assert second is not None and second.duration == DAY
    bans.append(PriorBan(created_at=later, lifted=False))
    third = p.decide(strikes=[later + 1, later + 2, later + 3], reports=[], prior_bans=bans, now=later + 3)
    assert third is not None and third.duration == 7 * DAY
    bans.append(PriorBan(created_at=later + 3, lifted=False))
    fourth = p.decide(strikes=[later + 4, later + 5, later + 6], reports=[], prior_bans=bans, now=later + 6)
    assert fourth is not None and fourth.duration == 7 * DAY  # the last duration repeats


def test_old_strikes_and_forgotten_or_lifted_bans_do_not_count():
    p = policy()
    now = 1000 * DAY
    assert p.decide(strikes=[now - DAY - 1, now - 5, now], reports=[], prior_bans=[], now=now) is None
    # A ban lifted by a moderator (a mistake) does not make the next ban longer; an old one is forgotten.
    lifted = [PriorBan(created_at=now - 10 * DAY, lifted=True), PriorBan(created_at=now - 100 * DAY, lifted=False)]
    decision = p.decide(strikes=[now - 2, now - 1, now], reports=[], prior_bans=lifted, now=now)
    assert decision is not None and decision.duration == HOUR
    # Strikes from the future (clock skew between nodes) do not count either.
    assert p.decide(strikes=[now - 1, now, now + 5], reports=[], prior_bans=[], now=now) is None


def test_reports_from_distinct_people_ban_when_enabled():
    now = 1000 * DAY
    off = policy(reports_before_ban=0)
    many = [(now - i, f"reporter{i}") for i in range(10)]
    assert off.decide(strikes=[], reports=many, prior_bans=[], now=now) is None
    on = policy(reports_before_ban=3)
    same_person = [(now - i, "one-address") for i in range(10)]
    assert on.decide(strikes=[], reports=same_person, prior_bans=[], now=now) is None
    decision = on.decide(strikes=[], reports=many[:3], prior_bans=[], now=now)
    assert decision is not None and decision.cause == "reports" and decision.count == 3
    assert decision.reason() == "automatic: reported by 3 people"


def test_report_rate_limit_and_dedupe():
    limits = ReportLimits(limit=3, window=600, dedupe_window=DAY)
    now = 5000.0
    assert limits.retry_after([now - 700, now - 650, now - 601], now) is None  # all outside the window
    assert limits.retry_after([now - 100, now - 50], now) is None
    assert limits.retry_after([now - 100, now - 50, now - 10], now) == pytest.approx(500)
    assert limits.is_duplicate(now - 100, now)
    assert not limits.is_duplicate(now - DAY, now)
    assert not limits.is_duplicate(None, now)


def test_report_checks():
    assert check_report("nudity", None, 10) == ("nudity", None)
    assert check_report("spam", "  buy \x00now  ", 10) == ("spam", "buy now")
    assert check_report("other", "   ", 10) == ("other", None)
    for reason in ("rude", None, 3, ["nudity"]):
        with pytest.raises(ReportRefused) as info:
            check_report(reason, None, 10)
        assert info.value.code == BAD_REASON
    with pytest.raises(ReportRefused) as info:
        check_report("spam", "x" * 11, 10)
    assert info.value.code == NOTE_TOO_LONG and info.value.to_json()["code"] == NOTE_TOO_LONG
    with pytest.raises(ReportRefused) as info:
        check_report("spam", {"a": 1}, 10)
    assert info.value.code == BAD_MESSAGE


# -- identities ---------------------------------------------------------------------------------
def test_device_tokens_verify_and_forgeries_are_replaced():
    issuer = IdentityIssuer(SECRET)
    token = issuer.issue()
    assert token.issued and issuer.verify(token.token) == token.device
    again = issuer.resolve(token.token)
    assert not again.issued and again.device == token.device

    version, device, signature = token.token.split(".")
    other = issuer.issue()
    forged = [
        f"{version}.{other.device}.{signature}",  # someone else's id with this signature
        f"{version}.{device}.{signature[:-1]}{'A' if signature[-1] != 'A' else 'B'}",  # edited signature
        f"v2.{device}.{signature}",
        token.token + ".x",
        "",
        "garbage",
        "v1..",
        "v1.%%%.%%%",
        "v1." + "A" * 200,
    ]
    for value in forged:
        assert issuer.verify(value) is None, value
        fresh = issuer.resolve(value)
        assert fresh.issued and fresh.device not in (device, other.device)
    assert IdentityIssuer(b"another secret of 32 bytes......").verify(token.token) is None


def test_addresses_are_hashed_by_network_and_loopback_or_exempt_never_are():
    issuer = IdentityIssuer(SECRET, exempt=["10.0.0.0/8", "192.0.2.1"])
    a = issuer.address_hash("2001:db8:1:2::1")
    assert a is not None and a == issuer.address_hash("2001:db8:1:2:ffff::9")  # same /64
    assert a != issuer.address_hash("2001:db8:1:3::1")
    v4 = issuer.address_hash("203.0.113.7")
    assert v4 is not None and v4 == issuer.address_hash("::ffff:203.0.113.7")
    assert v4 != issuer.address_hash("203.0.113.8")
    assert "203.0.113.7" not in v4
    for address in ("127.0.0.1", "::1", "10.1.2.3", "192.0.2.1", None, "", "not-an-ip"):
        assert issuer.address_hash(address) is None, address
    assert issuer.address_hash("192.0.2.2") is not None
    assert IdentityIssuer(b"another secret of 32 bytes......").address_hash("203.0.113.7") != v4
    assert str(parse_address("2001:db8::1%eth0")) == "2001:db8::1"
    assert IdentityIssuer(SECRET, exempt=["2001:db8::5"]).address_hash("2001:db8::5") is None
    assert IdentityIssuer(SECRET, exempt=["2001:db8::5"]).address_hash("2001:db8::6") is not None


def test_secret_is_created_once_and_kept(tmp_path):
    first = load_or_create_secret(None, tmp_path)
    assert len(first) >= 32
    assert stat.S_IMODE(os.stat(tmp_path / "device-secret").st_mode) == 0o600
    assert load_or_create_secret(None, tmp_path) == first
    assert load_or_create_secret("configured secret value", tmp_path) == b"configured secret value"
    with pytest.raises(ValueError):
        load_or_create_secret("short", tmp_path)
    token = IdentityIssuer(first).issue()
    assert IdentityIssuer(load_or_create_secret(None, tmp_path)).verify(token.token) == token.device


# -- rules --------------------------------------------------------------------------------------
def test_default_rules_and_version():
    rules = Rules()
    assert "18" in rules.text and "nudity" in rules.text.lower() and "face" in rules.text.lower()
    assert "harassment" in rules.text.lower()
    assert rules.version == Rules(DEFAULT_RULES).version and len(rules.version) == 12
    assert Rules("other text\n").version != rules.version
    assert rules.accepts(rules.version) and not rules.accepts("nope") and not rules.accepts(None)
    assert load_rules(None) == rules


def test_operator_rules_with_translations(tmp_path):
    (tmp_path / "rules.txt").write_text("House rules\n\nBe nice.\r\n", encoding="utf-8")
    (tmp_path / "rules.de.txt").write_text("Hausregeln\n", encoding="utf-8")
    (tmp_path / "rules.pt-BR.txt").write_text("Regras\n", encoding="utf-8")
    (tmp_path / "rules.backup.old.txt").write_text("ignored\n", encoding="utf-8")
    rules = load_rules(tmp_path / "rules.txt")
    assert rules.text == "House rules\n\nBe nice.\n"
    assert rules.languages == ["de", "pt-br"]
    assert rules.for_language("de-AT,de;q=0.9,en;q=0.5") == ("Hausregeln\n", "de")
    assert rules.for_language("fr, pt-BR;q=0.8") == ("Regras\n", "pt-br")
    assert rules.for_language("fr") == (rules.text, None)
    assert rules.for_language("de;q=0, en") == (rules.text, None)
    assert rules.to_json("de")["version"] == rules.version
    before = rules.version
    (tmp_path / "rules.de.txt").write_text("Hausregeln, neu\n", encoding="utf-8")
    assert load_rules(tmp_path / "rules.txt").version != before


@pytest.mark.parametrize("content, problem", [
    (None, "cannot read"),
    (b"  \n", "empty"),
    (b"\xff\xfe\x00bad", "not UTF-8"),
    (b"x" * (MAX_RULES_BYTES + 1), "bytes"),
])
def test_unusable_rules_files_are_refused_clearly(tmp_path, content, problem):
    path = tmp_path / "rules.txt"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(RulesError, match=problem):
        load_rules(path)


# -- settings -----------------------------------------------------------------------------------
def test_default_settings_are_valid_and_sensible(tmp_path):
    s = ModerationSettings()
    assert s.validate() == []
    assert s.evidence_retention_days == 30 and s.report_window == 30 and s.moderation_interval == 10
    assert s.ban_durations == [HOUR, DAY, 7 * DAY] and s.require_camera and s.moderation_prescreen
    assert s.moderation_classifier == "auto" and s.read_admin_token() is None
    assert s.data_path({"XDG_DATA_HOME": str(tmp_path)}) == tmp_path / "sfu"
    assert s.data_path({"HOME": str(tmp_path)}) == tmp_path / ".local" / "share" / "sfu"


def test_bad_settings_are_all_reported(tmp_path):
    token_file = tmp_path / "token"
    token_file.write_text("short\n")
    s = ModerationSettings(
        evidence_retention_days=0, moderation_classifier="magic", ban_durations=[], database_url="mysql://x/y",
        admin_token_file=token_file, address_ban_exempt=["nope"], moderation_threshold=2.0,
    )
    problems = "\n".join(s.validate())
    for expected in ("evidence_retention_days", "classifier", "ban_durations", "database_url", "16 characters",
                     "address_ban_exempt", "moderation_threshold"):
        assert expected in problems
    assert "at least 16" in "\n".join(ModerationSettings(admin_token="short").validate())
    assert "onnx" in "\n".join(ModerationSettings(moderation_classifier="onnx").validate())
    assert "in-memory" in "\n".join(ModerationSettings(database_url="sqlite://").validate())
    token_file.write_text("a-long-enough-moderator-token\n")
    assert ModerationSettings(admin_token_file=token_file).read_admin_token() == "a-long-enough-moderator-token"


# -- console sessions ---------------------------------------------------------------------------
def test_console_sessions_are_signed_expire_and_carry_a_csrf_token():
    auth = ConsoleAuth("the-moderator-token-123456", session_seconds=3600)
    assert auth.token_matches("the-moderator-token-123456")
    assert not auth.token_matches("the-moderator-token-12345") and not auth.token_matches(None)
    assert auth.bearer("Bearer the-moderator-token-123456", "ops").actor == "api:ops"
    assert auth.bearer("Basic the-moderator-token-123456") is None and auth.bearer("Bearer wrong") is None

    cookie, who = auth.new_session("alice", now=100.0)
    assert who.actor == "console:alice" and who.csrf
    again = auth.session(cookie, now=200.0)
    assert again is not None and again.actor == who.actor and again.csrf == who.csrf
    assert auth.session(cookie, now=100.0 + 3600) is None  # expired
    payload, signature = cookie.rsplit(".", 1)
    assert auth.session(payload + "." + signature[::-1], now=200.0) is None
    assert auth.session(payload[:-2] + "." + signature, now=200.0) is None
    assert ConsoleAuth("another-moderator-token-1234", 3600).session(cookie, now=200.0) is None
    assert auth.csrf_ok(again, who.csrf) and not auth.csrf_ok(again, None) and not auth.csrf_ok(again, "x")
    _, other = auth.new_session("alice", now=100.0)
    assert other.csrf != who.csrf  # each session has its own


def test_sign_in_throttle():
    throttle = SignInThrottle(failures=3, window=60)
    for t in (0, 1, 2):
        assert throttle.retry_after("a", t) is None
        throttle.failed("a", t)
    assert throttle.retry_after("a", 3) == pytest.approx(57)
    assert throttle.retry_after("b", 3) is None
    assert throttle.retry_after("a", 61) is None


# -- origins ------------------------------------------------------------------------------------
def test_only_our_own_and_allowed_origins_may_drive_the_service():
    allowed = ["https://Chat.Example.org/", "http://127.0.0.1:9000"]
    assert origin_allowed(None, "sfu.example.org")  # not a browser
    assert origin_allowed("https://sfu.example.org", "sfu.example.org")
    assert origin_allowed("http://sfu.example.org:8080", "sfu.example.org:8080")  # TLS ended at a proxy
    assert origin_allowed("https://chat.example.org", "sfu.example.org", allowed)
    assert origin_allowed("http://127.0.0.1:9000", "127.0.0.1:8080", allowed)
    for foreign in ("https://evil.example", "https://sfu.example.org.evil.example", "null",
                    "https://chat.example.org:444", "http://127.0.0.1:9001"):
        assert not origin_allowed(foreign, "sfu.example.org", allowed), foreign


def test_every_setting_is_documented_and_loadable_like_the_servers():
    """Each field can become a flag, an SFU_* variable and a TOML key, without clashing with the server's."""
    import dataclasses
    import types
    import typing
    from pathlib import Path

    scalar = {str, int, float, bool, Path}
    flags = set()
    for f in dataclasses.fields(ModerationSettings):
        tp = typing.get_type_hints(ModerationSettings)[f.name]
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        base = args[0] if typing.get_origin(tp) in (typing.Union, types.UnionType) else tp
        if typing.get_origin(base) is list:
            assert typing.get_args(base)[0] in scalar, f.name
        else:
            assert base in scalar, f.name
        assert f.metadata["help"], f.name
        flags.add(f.metadata.get("flag") or "--" + f.name.replace("_", "-"))
    assert len(flags) == len(dataclasses.fields(ModerationSettings))
    try:
        from sfu.config_load import settings as server_settings
    except ImportError:
        pytest.skip("the server's configuration loader moved")
    assert not flags & {s.flag for s in server_settings()}
