"""Whom each person may report (pure logic, time passed in), and the device cookie's attributes."""

from __future__ import annotations

from sfu.moderation.identity import ModerationIdentity, device_cookie_attributes
from sfu.moderation.recent import RecentPartners

A, B, C = (ModerationIdentity(f"device-{n}", f"net-{n}") for n in "abc")


def test_the_partner_is_reportable_while_paired_and_for_the_window_after() -> None:
    recent = RecentPartners(window=30)
    assert recent.reportable("a", 0) is None
    recent.paired("a", A, "b", B)
    assert recent.reportable("a", 1000).identity == B and recent.reportable("b", 1000).identity == A
    assert recent.current("a").session == "b"
    recent.parted("a", 100)
    recent.parted("b", 100)
    assert recent.current("a") is None
    assert recent.reportable("a", 130).session == "b"  # 30 s after parting: still
    assert recent.reportable("a", 130.5) is None
    recent.parted("a", 125)  # a later "parted" (e.g. Stop after partner_left) does not move the window
    assert recent.reportable("a", 130.5) is None


def test_a_new_partner_replaces_the_last_and_leaving_forgets_only_the_leaver() -> None:
    recent = RecentPartners(window=30)
    recent.paired("a", A, "b", B)
    recent.parted("b", 10)
    recent.paired("a", A, "c", C)  # Next straight into a new pair: the new partner is the one reported
    assert recent.reportable("a", 11).identity == C
    recent.forget("c")  # c disconnected: a can still report them, with the identity known at pairing
    recent.parted("a", 12)
    assert recent.reportable("a", 20).identity == C
    assert recent.reportable("b", 20).identity == A
    recent.forget("a")
    recent.forget("b")
    assert len(recent) == 0


def test_device_cookie_is_http_only_for_the_whole_site() -> None:
    assert device_cookie_attributes(400, secure=True) == {
        "max_age": 400 * 86400, "path": "/", "httponly": True, "samesite": "Lax", "secure": True,
    }


def test_classifier_workers_and_the_config_do_not_load_the_database_layer() -> None:
    """``sfu.moderation`` imports nothing: a classifier worker (``sampler``) and ``sfu.config`` stay light."""
    import subprocess
    import sys
    from pathlib import Path

    probe = ("import sys, sfu.moderation.sampler, sfu.config\n"
             "print(sorted(m for m in ('sqlalchemy', 'aiosqlite') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", probe], cwd=Path(__file__).resolve().parent.parent, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
