"""The page speaks the visitor's language: every catalog has exactly the English keys, with the
same placeholders; every key the page names exists; every text of index.html is translated."""

from __future__ import annotations

import pytest

from .catalogs import (
    LOCALES,
    CatalogError,
    keys_used_in_scripts,
    languages,
    load_catalog,
    parse_catalog,
    placeholders,
    scan_page,
)

LANGS = list(languages())
OTHERS = [lang for lang in LANGS if lang != "en"]
EN = load_catalog("en")
GROUPS = {key.split(".", 1)[0] for key in EN}


def test_the_switcher_lists_every_catalog_and_at_least_seven_languages() -> None:
    assert LANGS[0] == "en"
    assert {"en", "fr", "es", "pt", "de", "ru", "tr"} <= set(LANGS)
    assert {path.stem for path in LOCALES.glob("*.js")} == set(LANGS)


def test_english_is_complete_and_plain() -> None:
    assert len(EN) > 100
    for key, text in EN.items():
        assert text.strip(), f"en: {key} is empty"
        assert "." in key and key == key.strip(), key


@pytest.mark.parametrize("lang", OTHERS)
def test_catalog_has_exactly_the_english_keys(lang: str) -> None:
    catalog = load_catalog(lang)
    missing = sorted(set(EN) - set(catalog))
    unknown = sorted(set(catalog) - set(EN))
    assert not missing, f"{lang}.js misses {missing}"
    assert not unknown, f"{lang}.js has keys English does not: {unknown}"


@pytest.mark.parametrize("lang", OTHERS)
def test_translations_keep_every_placeholder_and_are_translated(lang: str) -> None:
    catalog = load_catalog(lang)
    for key, text in catalog.items():
        assert text.strip(), f"{lang}: {key} is empty"
        assert placeholders(text) == placeholders(EN[key]), f"{lang}: {key} {text!r} vs {EN[key]!r}"
    # a real translation, not English copied over: most sentences differ
    same = [key for key, text in catalog.items() if text == EN[key] and len(text) > 12]
    assert len(same) <= 3, f"{lang}: untranslated {same}"


def test_a_catalog_with_a_missing_or_unknown_key_is_caught() -> None:
    """The checks above fail on a broken catalog (this is what they would see)."""
    broken = parse_catalog("export default {\n  'page.title': 'x {name}', // a comment\n  \"bogus.key\": \"y\",\n};\n")
    assert set(EN) - set(broken) and set(broken) - set(EN) == {"bogus.key"}
    assert parse_catalog(r"export default { 'a.b': 'l\'été \u00e9\n', };") == {"a.b": "l'été é\n"}
    for bad in (
        "export default { 'a.b': `template` };",
        "export default { 'a.b': 'x' + 'y' };",
        "export default { 'a.b': 'x', 'a.b': 'y' };",
        "export default { a: 'x' };",
        "export default { 'a.b': 'x' }; export const more = 1;",
    ):
        with pytest.raises(CatalogError):
            parse_catalog(bad)


def test_every_key_the_scripts_name_is_in_english() -> None:
    used = keys_used_in_scripts(GROUPS)
    missing = {name: sorted(keys - set(EN)) for name, keys in used.items() if keys - set(EN)}
    assert not missing, f"keys used but not in en.js: {missing}"
    # the scan does find them (the page really is translated)
    assert {"status.waiting", "common.you_both_like", "chat.welcome"} <= set().union(*used.values())


def test_every_text_of_the_page_names_a_key_in_english() -> None:
    scan = scan_page()
    assert not scan.untranslated, f"index.html texts without data-i18n / data-i18n-attr: {scan.untranslated}"
    assert not scan.keys - set(EN), f"index.html names keys not in en.js: {sorted(scan.keys - set(EN))}"


def test_no_english_key_is_unused() -> None:
    used = set().union(*keys_used_in_scripts(GROUPS).values()) | scan_page().keys
    assert not set(EN) - used, f"keys nothing uses: {sorted(set(EN) - used)}"
