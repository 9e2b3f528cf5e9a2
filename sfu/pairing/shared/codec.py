"""Between Python values and what the scripts store and return."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import cast

from ..events import BASES, Event, Idle, Paired, PartnerLeft, Waiting
from ..preferences import NO_PREFERENCES, Preferences
from .keys import GROUP, RECORD, SEP
from .protocol import CAUSES, Delivery


def text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def number(now: float) -> str:
    """A time as the scripts read it: exactly the same double."""
    value = float(now)
    if not math.isfinite(value):
        raise ValueError(f"time must be finite, not {now!r}")
    return repr(value)


def encode_preferences(prefs: Preferences) -> tuple[str, str, str]:
    for item in prefs.interests + prefs.languages:
        if not item or SEP in item:
            raise ValueError(f"not a normalised interest or language: {item!r:.60}")
    return SEP.join(prefs.interests), SEP.join(prefs.languages), "1" if prefs.strict else "0"


def decode_preferences(interests: object, languages: object, strict: object) -> Preferences:
    prefs = Preferences(_split(interests), _split(languages), strict is not None and text(strict) == "1")
    return NO_PREFERENCES if prefs == NO_PREFERENCES else prefs


def _split(value: object, separator: str = SEP) -> tuple[str, ...]:
    if value is None:
        return ()
    joined = text(value)
    return tuple(joined.split(separator)) if joined else ()


def decode_event(kind: object, a: object, b: object, common: object, basis: object) -> Event:
    name = text(kind)
    if name == "paired":
        found = text(basis)
        if found not in BASES:
            raise ValueError(f"unknown basis {found!r}")
        return Paired(text(a), text(b), tuple(sorted(_split(common, GROUP))), found)
    if name == "waiting":
        return Waiting(text(a))
    if name == "partner_left":
        return PartnerLeft(text(a))
    if name == "idle":
        return Idle(text(a))
    raise ValueError(f"unknown event {name!r}")


@dataclass(frozen=True)
class Outcome:
    """What one operation did."""

    #: Its number: operations were applied to the pool in the order of their numbers.
    op: int
    #: The time it acted at: the caller's ``now``, or the pool's clock if a little ahead.
    at: float
    events: list[Event]
    #: Waiting people looked at while searching.
    reads: int = 0
    #: How far the caller's clock was behind the pool's (0 when it was not).
    skew: float = 0.0


def decode_reply(reply: Sequence[object]) -> Outcome:
    """A script's ``{op number, candidates read, now, skew, events...}``."""
    op, reads, at, skew, *rows = reply
    events = [decode_event(*cast(Sequence[object], row)) for row in rows]
    return Outcome(int(cast(int, op)), float(text(at)), events, int(cast(int, reads)), float(text(skew)))


def decode_deliveries(fields: Mapping[object, object]) -> list[Delivery]:
    """One inbox stream entry: the events of one operation for one process."""
    f = {text(k): text(v) for k, v in fields.items()}
    cause = f["op"]
    if cause not in CAUSES:
        raise ValueError(f"unknown cause {cause!r}")
    at, op = float(f["t"]), int(f["n"])
    deliveries = []
    for line in f["ev"].split(RECORD):
        kind, a, b, basis, index, common = line.split(SEP)
        deliveries.append(Delivery(decode_event(kind, a, b, common, basis), at, op, int(index), cause))
    return deliveries
