"""What a person asks of a partner: interests, languages, and whether only common interests will do.

Everything a client sends goes through :func:`parse_preferences`, which either returns normalised
:class:`Preferences` or raises :class:`PreferencesError` with a stable ``code`` for the protocol.

- **Interests**: at most :data:`MAX_INTERESTS` strings. Each is normalised for caseless comparison
  (Unicode NFKC, case folded, trimmed, inner whitespace collapsed to one space, control and
  bidirectional-override characters removed) and must then be at most
  :data:`MAX_INTEREST_LENGTH` characters; empty ones are dropped, duplicates removed, order kept.
- **Languages**: BCP-47 tags reduced to their primary language (``"fr-CA"`` → ``"fr"``,
  ``"zh-Hant-TW"`` → ``"zh"``; deprecated codes mapped to current ones, Bokmål and Nynorsk to
  ``"no"``), duplicates removed, the first :data:`MAX_LANGUAGES` kept in the client's order.
  ``"any"``, an empty list or nothing means no preference.
- **strict**: ``true`` means only someone sharing an interest will do (no fallback after the wait).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

MAX_INTERESTS = 10
MAX_INTEREST_LENGTH = 32
#: Longer raw strings are refused before any normalisation work (NFKC may expand a string).
MAX_RAW_INTEREST_LENGTH = 4 * MAX_INTEREST_LENGTH
MAX_LANGUAGES = 8
#: Browsers list a person's languages in order of preference; more than this is not a browser.
MAX_RAW_LANGUAGES = 32
MAX_LANGUAGE_TAG_LENGTH = 35
ANY_LANGUAGE = "any"

#: Message fields read by :func:`preferences_from_message`.
MESSAGE_FIELDS = ("interests", "languages", "strict")

ErrorCode = Literal[
    "bad_interests",
    "too_many_interests",
    "interest_too_long",
    "bad_languages",
    "too_many_languages",
    "bad_strict",
]


class PreferencesError(ValueError):
    """Preferences a client sent were refused; ``code`` is stable and machine-readable."""

    def __init__(self, code: ErrorCode, detail: str) -> None:
        super().__init__(f"{code}: {detail}")
        self.code: ErrorCode = code
        self.detail = detail


@dataclass(frozen=True)
class Preferences:
    """Normalised matching preferences (build untrusted ones with :func:`parse_preferences`)."""

    interests: tuple[str, ...] = ()
    languages: tuple[str, ...] = ()
    strict: bool = False
    interest_set: frozenset[str] = field(init=False, repr=False, compare=False)
    language_set: frozenset[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "interest_set", frozenset(self.interests))
        object.__setattr__(self, "language_set", frozenset(self.languages))

    @property
    def only_common(self) -> bool:
        """Waits for a common interest forever (strict with at least one interest)."""
        return self.strict and bool(self.interests)

    @property
    def empty(self) -> bool:
        return not self.interests and not self.languages and not self.only_common


NO_PREFERENCES = Preferences()

# Characters that would let one person's tag reorder or hide text around it on another's screen.
_BIDI_CONTROLS = dict.fromkeys(
    map(ord, "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"), None
)
_LANGUAGE_TAG = re.compile(r"[A-Za-z]{1,8}(?:[-_][A-Za-z0-9]{1,8})*")
_PRIMARY_LANGUAGE = re.compile(r"[a-z]{2,3}")
_LANGUAGE_ALIASES = {"iw": "he", "in": "id", "ji": "yi", "jw": "jv", "mo": "ro", "nb": "no", "nn": "no"}
_NO_LANGUAGE = frozenset({"und", "mis", "mul", "zxx"})


def normalise_interest(raw: str) -> str:
    """The comparable form of one interest tag ("" when nothing is left)."""
    text = unicodedata.normalize("NFKC", raw)
    text = unicodedata.normalize("NFKC", text.casefold()).translate(_BIDI_CONTROLS)
    text = "".join(" " if unicodedata.category(c) == "Cc" else c for c in text)
    return " ".join(text.split())


def primary_language(tag: str) -> str | None:
    """The primary language subtag of a BCP-47 tag, or None for tags naming no usable language.

    Raises :class:`PreferencesError` (``bad_languages``) for something that is not a language tag.
    """
    tag = tag.strip()
    if len(tag) > MAX_LANGUAGE_TAG_LENGTH or not _LANGUAGE_TAG.fullmatch(tag):
        raise PreferencesError("bad_languages", f"not a language tag: {tag[:40]!r}")
    primary = re.split(r"[-_]", tag, maxsplit=1)[0].lower()
    if not _PRIMARY_LANGUAGE.fullmatch(primary) or primary in _NO_LANGUAGE:
        return None  # private use ("x-…"), grandfathered ("i-…"), reserved, or "undetermined"
    return _LANGUAGE_ALIASES.get(primary, primary)


def parse_interests(value: object) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, (list, tuple)):
        raise PreferencesError("bad_interests", "interests must be a list of strings")
    if len(value) > MAX_INTERESTS:
        raise PreferencesError("too_many_interests", f"at most {MAX_INTERESTS} interests")
    result: dict[str, None] = {}
    for item in value:
        if not isinstance(item, str):
            raise PreferencesError("bad_interests", "every interest must be a string")
        if len(item) > MAX_RAW_INTEREST_LENGTH:
            raise PreferencesError("interest_too_long", f"an interest has at most {MAX_INTEREST_LENGTH} characters")
        tag = normalise_interest(item)
        if len(tag) > MAX_INTEREST_LENGTH:
            raise PreferencesError("interest_too_long", f"an interest has at most {MAX_INTEREST_LENGTH} characters")
        if tag:
            result[tag] = None
    return tuple(result)


def parse_languages(value: object) -> tuple[str, ...]:
    if value is None or (isinstance(value, str) and value.strip().lower() == ANY_LANGUAGE):
        return ()
    if not isinstance(value, (list, tuple)):
        raise PreferencesError("bad_languages", 'languages must be a list of language tags or "any"')
    if len(value) > MAX_RAW_LANGUAGES:
        raise PreferencesError("too_many_languages", f"at most {MAX_RAW_LANGUAGES} language tags")
    result: dict[str, None] = {}
    for item in value:
        if not isinstance(item, str):
            raise PreferencesError("bad_languages", "every language must be a string")
        if item.strip().lower() in (ANY_LANGUAGE, "*"):
            return ()  # the person picked "any language"
        language = primary_language(item)
        if language is not None:
            result[language] = None
    return tuple(result)[:MAX_LANGUAGES]


def parse_strict(value: object) -> bool:
    if value is None:
        return False
    if not isinstance(value, bool):
        raise PreferencesError("bad_strict", "strict must be true or false")
    return value


def parse_preferences(*, interests: object = None, languages: object = None, strict: object = None) -> Preferences:
    """Normalise what a client sent, or raise :class:`PreferencesError`."""
    return Preferences(parse_interests(interests), parse_languages(languages), parse_strict(strict))


def preferences_from_message(message: Mapping[str, object]) -> Preferences | None:
    """The preferences a ``start``/``next`` message states, or None when it states none.

    A message carrying any of :data:`MESSAGE_FIELDS` states the whole preferences: fields left out
    take their defaults. A message carrying none keeps whatever the person had before.
    """
    if not any(name in message for name in MESSAGE_FIELDS):
        return None
    return parse_preferences(
        interests=message.get("interests"),
        languages=message.get("languages"),
        strict=message.get("strict"),
    )
