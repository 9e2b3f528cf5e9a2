"""What clients send as matching preferences: normalisation and every refusal code."""

from __future__ import annotations

import pytest

from sfu.pairing import (
    NO_PREFERENCES,
    Preferences,
    PreferencesError,
    parse_preferences,
    preferences_from_message,
)
from sfu.pairing.preferences import (
    MAX_INTEREST_LENGTH,
    MAX_INTERESTS,
    MAX_LANGUAGES,
    MAX_RAW_LANGUAGES,
    normalise_interest,
    primary_language,
)


def interests(*raw: object) -> tuple[str, ...]:
    return parse_preferences(interests=list(raw)).interests


def languages(value: object) -> tuple[str, ...]:
    return parse_preferences(languages=value).languages


def refused(**fields: object) -> str:
    with pytest.raises(PreferencesError) as info:
        parse_preferences(**fields)
    assert str(info.value).startswith(info.value.code)
    return info.value.code


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Music", "music"),
        ("  Film   Noir\t", "film noir"),
        ("ＭＵＳＩＣ", "music"),  # full-width forms (NFKC)
        ("Straße", "strasse"),  # case folding, not just lower-casing
        ("ﬁlm", "film"),  # ligature
        ("Cafe\u0301", "café"),  # combining accent composed
        ("line\nbreak", "line break"),  # control characters count as spaces
        ("a\u202eb\u2066c", "abc"),  # bidirectional overrides removed
        ("Ελληνικά", "ελληνικά"),
        ("日本", "日本"),
        ("👩\u200d💻", "👩\u200d💻"),  # emoji sequences keep their joiner
        ("   ", ""),
    ],
)
def test_normalise_interest(raw: str, expected: str) -> None:
    assert normalise_interest(raw) == expected


def test_interests_drop_empties_and_duplicates_keeping_order() -> None:
    assert interests("Music", " ", "film", "MUSIC", "", "Film ", "chess") == ("music", "film", "chess")


def test_interests_limits() -> None:
    assert len(interests(*(f"tag{i}" for i in range(MAX_INTERESTS)))) == MAX_INTERESTS
    assert interests("x" * MAX_INTEREST_LENGTH) == ("x" * MAX_INTEREST_LENGTH,)
    # length is counted after normalisation: outer and repeated spaces do not count
    assert interests("  " + "x " * 16 + "  ") == (("x " * 16).strip(),)


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"interests": [f"t{i}" for i in range(MAX_INTERESTS + 1)]}, "too_many_interests"),
        ({"interests": ["x" * (MAX_INTEREST_LENGTH + 1)]}, "interest_too_long"),
        ({"interests": ["x" * 100_000]}, "interest_too_long"),
        ({"interests": ["ﷺ" * 2]}, "interest_too_long"),  # NFKC expands this to 36 characters
        ({"interests": "music"}, "bad_interests"),  # a string, not a list
        ({"interests": {"music": True}}, "bad_interests"),
        ({"interests": 3}, "bad_interests"),
        ({"interests": ["music", 3]}, "bad_interests"),
        ({"interests": [None]}, "bad_interests"),
        ({"interests": [["nested"]]}, "bad_interests"),
        ({"languages": "fr"}, "bad_languages"),
        ({"languages": 1}, "bad_languages"),
        ({"languages": {"fr": 1}}, "bad_languages"),
        ({"languages": ["fr", 5]}, "bad_languages"),
        ({"languages": ["not a tag"]}, "bad_languages"),
        ({"languages": ["fr--CA"]}, "bad_languages"),
        ({"languages": ["fr-" + "x" * 40]}, "bad_languages"),
        ({"languages": ["<script>"]}, "bad_languages"),
        ({"languages": ["en"] * (MAX_RAW_LANGUAGES + 1)}, "too_many_languages"),
        ({"strict": "yes"}, "bad_strict"),
        ({"strict": 1}, "bad_strict"),
    ],
)
def test_bad_input_is_refused_with_a_stable_code(fields: dict, code: str) -> None:
    assert refused(**fields) == code


@pytest.mark.parametrize(
    ("tag", "expected"),
    [
        ("fr-CA", "fr"),
        ("EN-us", "en"),
        ("en_GB", "en"),
        ("zh-Hant-TW", "zh"),
        ("pt", "pt"),
        ("yue-HK", "yue"),
        ("iw", "he"),
        ("in-ID", "id"),
        ("nb-NO", "no"),
        ("nn", "no"),
        ("x-klingon", None),
        ("i-default", None),
        ("und", None),
        ("abcde", None),  # reserved lengths name no language
    ],
)
def test_primary_language(tag: str, expected: str | None) -> None:
    assert primary_language(tag) == expected


def test_languages_normalised_bounded_and_any() -> None:
    assert languages(["fr-CA", "fr-FR", "fr", "en-US", "en", "x-private"]) == ("fr", "en")
    many = ["en", "fr", "de", "es", "pt", "ru", "tr", "ar", "he", "ja", "ko", "zh"]
    assert languages(many) == tuple(many[:MAX_LANGUAGES])
    for no_preference in (None, "any", " ANY ", [], ["any"], ["fr", "any"], ["*"]):
        assert languages(no_preference) == ()


def test_strict_and_defaults() -> None:
    assert parse_preferences() == NO_PREFERENCES
    assert parse_preferences(strict=True).strict is True
    assert not parse_preferences(strict=True).only_common  # nothing to be strict about
    assert parse_preferences(interests=["chess"], strict=True).only_common
    assert NO_PREFERENCES.empty and not Preferences(("chess",)).empty


def test_preferences_from_message() -> None:
    assert preferences_from_message({"type": "start"}) is None
    assert preferences_from_message({"type": "next", "interests": ["Chess"]}) == Preferences(("chess",))
    assert preferences_from_message({"type": "start", "interests": None, "languages": "any"}) == NO_PREFERENCES
    assert preferences_from_message(
        {"type": "start", "interests": ["Go", "go"], "languages": ["tr-TR"], "strict": True}
    ) == Preferences(("go",), ("tr",), True)
    with pytest.raises(PreferencesError) as info:
        preferences_from_message({"type": "start", "interests": [1]})
    assert info.value.code == "bad_interests"
