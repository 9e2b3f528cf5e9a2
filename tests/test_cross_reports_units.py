"""Units of reports across processes: a partner known first by id, then by identity; pictures over
the message bus and back."""

from __future__ import annotations

from sfu.cluster.reports import picture_message, picture_of
from sfu.moderation.identity import ModerationIdentity
from sfu.moderation.recent import RecentPartners

from .moderation_helpers import jpeg_colour, picture


def test_a_partner_served_elsewhere_is_reportable_once_identified_even_after_parting() -> None:
    recent = RecentPartners(window=30.0)
    recent.met("a", "b")
    partner = recent.reportable("a", now=0.0)
    assert partner is not None and partner.session == "b" and partner.identity is None
    recent.parted("a", now=1.0)
    identity = ModerationIdentity("device-b", "hash-b")
    assert recent.identify("a", "b", identity, "n/0/x")
    partner = recent.reportable("a", now=20.0)
    assert partner is not None and (partner.identity, partner.served_by) == (identity, "n/0/x")
    assert recent.current("a") is None
    assert recent.reportable("a", now=40.0) is None


def test_an_identity_for_someone_who_is_no_longer_the_partner_is_dropped() -> None:
    recent = RecentPartners(window=30.0)
    recent.met("a", "b")
    recent.met("a", "c")  # a moved on before b's identity arrived
    assert not recent.identify("a", "b", ModerationIdentity("device-b"), "n/0/x")
    assert not recent.identify("nobody", "b", ModerationIdentity("device-b"), "n/0/x")
    partner = recent.reportable("a", now=0.0)
    assert partner is not None and partner.session == "c" and partner.identity is None


def test_a_picture_crosses_the_bus_unchanged_and_malformed_ones_are_refused() -> None:
    original = picture((200, 30, 40), captured_at=1234.5, width=64, height=48)
    message = picture_message("p#1", original)
    assert message["t"] == "evidence" and message["req"] == "p#1"
    back = picture_of(message)
    assert back == original and jpeg_colour(back.jpeg) == jpeg_colour(original.jpeg)
    for broken in ({**message, "jpeg": "not base64!"}, {**message, "w": "wide"}, {"t": "evidence", "req": "p#1"}):
        assert picture_of(broken) is None
