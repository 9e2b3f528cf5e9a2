"""Real headless Chromium: interests and "You both like …", the page in the visitor's language
(French, Russian, the switcher), right-to-left layout, and an operator's brand.

Set SFU_SKIP_BROWSER=1 to skip; a missing Chromium is a failure (CI installs it).
"""

from __future__ import annotations

import os
import sys

import pytest
from playwright.sync_api import expect

if os.environ.get("SFU_SKIP_BROWSER") == "1":
    pytest.skip("real-browser tests disabled by SFU_SKIP_BROWSER=1", allow_module_level=True)

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import browser_helpers as bh  # noqa: E402
from browser_helpers import User  # noqa: E402
from catalogs import load_catalog  # noqa: E402

from sfu.pairing.preferences import normalise_interest  # noqa: E402

EN, FR, RU, DE = (load_catalog(lang) for lang in ("en", "fr", "ru", "de"))
BRAND_NAME = "<b>Lisbon</b> Talks"


@pytest.fixture(scope="module")
def server():
    srv = bh.ServerProcess(log_name="browser-i18n-server.log").start()
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def browser():
    yield from bh.chromium()


@pytest.fixture
def users(browser, server):
    yield from bh.user_factory(browser, server)


def text(user: User, selector: str) -> str:
    return user.page.text_content(selector) or ""


def add_interest(user: User, typed: str) -> None:
    user.page.fill("#interest-input", typed)
    user.page.press("#interest-input", "Enter")


def chips(user: User) -> list[str]:
    return user.js("() => [...document.querySelectorAll('#interest-chips .chip__text')].map((e) => e.textContent)")


def test_interests_chips_and_you_both_like(users):
    ana = users("ana").open()
    bea = users("bea").open()

    # chips: Enter and commas add, normalised like the server; Backspace and the × button remove
    add_interest(ana, "  Chess ")
    ana.page.fill("#interest-input", "JAZZ, go,")
    assert chips(ana) == ["chess", "jazz", "go"]
    add_interest(ana, "<i>x</i>")
    assert chips(ana)[-1] == "<i>x</i>"  # shown as text, never as HTML
    assert ana.js("() => document.querySelector('#interest-chips i')") is None
    ana.page.press("#interest-input", "Backspace")
    assert chips(ana) == ["chess", "jazz", "go"]
    add_interest(ana, "x" * 33)
    assert text(ana, "#interest-message") == EN["interests.too_long"]
    assert ana.page.input_value("#interest-input") == "x" * 33  # kept, to be fixed
    ana.page.fill("#interest-input", "")
    add_interest(bea, "Jazz")
    add_interest(bea, "tennis")
    add_interest(bea, "GO")
    remove = bea.page.get_by_role("button", name=EN["interests.remove"].format(tag="tennis"))
    remove.focus()
    bea.page.keyboard.press("Enter")
    assert chips(bea) == ["jazz", "go"]
    assert ana.js("() => window.sfu.preferences.interests") == ["chess", "jazz", "go"]

    ana.page.click("#start")
    ana.wait_state("waiting")
    bea.page.click("#start")
    for user in (ana, bea):
        user.wait_state("paired")
        assert user.js("() => window.sfu.common") == ["go", "jazz"]
        user.wait_js("() => document.querySelector('#chat-log').textContent.includes('You both like go and jazz')")
        assert text(user, "#common") == "You both like go and jazz"
        assert user.js("() => document.querySelector('#common').hidden") is False

    # remembered: a new visit has the same chips
    ana.page.reload()
    ana.page.wait_for_function("() => !!window.sfu")
    assert chips(ana) == ["chess", "jazz", "go"]
    bea.wait_state("waiting", "paired")


def test_the_page_normalises_tags_like_the_server(users):
    user = users("normaliser").open(wait_negotiated=False)
    samples = ["  Hello   World ", "ÉCOLE", "Straße", "ΣΊΣΥΦΟΣ", "ﬁsh", "a\u202eb", "tab\tx", "İstanbul",
               "ＮＩＮＴＥＮＤＯ", "Ꮳherokee", "ᾼ", "x\u0000y", "\u3000wide\u3000space\u3000"]
    shown = user.js("async (s) => { const m = await import('/interests.js'); return s.map(m.normaliseInterest); }",
                    samples)
    assert shown == [normalise_interest(s) for s in samples]


@pytest.mark.parametrize("locale, catalog, lang", [("fr-FR", FR, "fr"), ("ru-RU", RU, "ru")])
def test_the_page_speaks_the_browsers_language(users, locale, catalog, lang):
    user = users(lang, locale=locale).open(wait_negotiated=False)
    assert user.js("() => document.documentElement.lang") == lang
    assert user.js("() => document.documentElement.dir") == "ltr"
    assert user.page.title() == catalog["page.title"].format(name="Roulette")
    assert text(user, "#start span") == catalog["controls.start"]
    assert user.page.get_attribute("#start", "aria-label") == catalog["controls.start_label"]
    assert text(user, "#overlay-title") == catalog["overlay.idle_title"]
    assert text(user, ".status__text") == catalog["status.idle"]
    assert user.page.get_attribute("#interest-input", "placeholder") == catalog["interests.placeholder"]
    assert user.page.get_attribute("#chat-input", "placeholder") == catalog["chat.placeholder"]
    assert catalog["chat.welcome"] in user.chat_text()
    assert user.page.input_value("#language") == lang
    user.wait_js("(t) => window.sfu.online && document.querySelector('#online').textContent === "
                 "t.replace('{count}', window.sfu.online.toLocaleString(document.documentElement.lang))",
                 catalog["online.count"])
    # the service's rules come first, their dialog in the same language
    user.page.wait_for_selector("#rules-dialog[open]", state="visible")
    assert text(user, "#rules-title") == catalog["moderation.rules.title"]
    assert text(user, "#rules-accept") == catalog["moderation.rules.accept"]
    user.accept_rules()
    # texts set later by the scripts are in the same language
    user.page.click("#start")
    user.wait_js("(t) => document.querySelector('#overlay-title').textContent === t", catalog["overlay.looking_title"])
    assert text(user, ".status__text") in (catalog["status.waiting"], catalog["status.connecting"])
    assert user.js("() => window.sfu.preferences.languages") == [lang]
    # every catalog loads in the browser with exactly the English keys
    keys = user.js("""async () => {
        const out = {};
        for (const lang of ['en', 'fr', 'es', 'pt', 'de', 'ru', 'tr']) {
            out[lang] = Object.keys((await import(`/locales/${lang}.js`)).default).sort();
        }
        return out;
    }""")
    assert all(k == sorted(EN) for k in keys.values())


def test_the_switcher_changes_the_language_and_remembers_it(users):
    user = users("switcher", locale="en-US").open(wait_negotiated=False)
    assert text(user, ".status__text") == EN["status.idle"]
    user.page.select_option("#language", "de")
    user.wait_js("() => document.documentElement.lang === 'de'")
    assert text(user, ".status__text") == DE["status.idle"]
    assert text(user, "#interest-hint") == DE["interests.hint"]
    assert user.page.title() == DE["page.title"].format(name="Roulette")
    assert DE["chat.welcome"] in user.chat_text() and EN["chat.welcome"] not in user.chat_text()
    assert user.page.get_attribute("#mute-mic", "title") in (DE["media.mute"], DE["media.no_microphone_title"])
    user.page.reload()
    user.page.wait_for_function("() => !!window.sfu")
    assert user.js("() => window.sfu.lang") == "de"
    assert text(user, "#overlay-title") == DE["overlay.idle_title"]
    assert user.page.input_value("#language") == "de"


def test_every_language_fits_a_small_phone(users):
    """Longer words must not push anything sideways or out of its button."""
    user = users("phone", viewport={"width": 375, "height": 667}).open(wait_negotiated=False)
    for lang in ("en", "fr", "es", "pt", "de", "ru", "tr"):
        user.page.select_option("#language", lang)
        user.wait_js("(l) => document.documentElement.lang === l", lang)
        assert user.js("() => document.documentElement.scrollWidth") <= 375, lang
        clipped = user.js("""() => [...document.querySelectorAll('button, summary, .status__text, .prefs__title, .tile-label')]
            .filter((e) => e.offsetParent && e.scrollWidth > e.clientWidth + 1).map((e) => e.id || e.className)""")
        assert not clipped, (lang, clipped)


def test_right_to_left_mirrors_the_layout(users):
    user = users("rtl").open(wait_negotiated=False)
    assert user.js("async () => (await import('/i18n.js')).isRtl('ar-EG')") is True

    def boxes():
        return user.js("""() => {
            const r = (s) => document.querySelector(s).getBoundingClientRect();
            return { stage: r('.stage').left + r('.stage').width / 2, local: r('#local').left + r('#local').width / 2 };
        }""")
    ltr = boxes()
    user.js("() => { document.documentElement.dir = 'rtl'; }")
    rtl = boxes()
    assert ltr["local"] > ltr["stage"] and rtl["local"] < rtl["stage"]


def test_a_branded_page_shows_the_operators_name_colour_and_links(browser):
    srv = bh.ServerProcess(log_name="browser-brand-server.log", extra_args=(
        "--brand-name", BRAND_NAME, "--brand-accent", "#E11D48",
        "--brand-rules-url", "https://example.org/rules", "--brand-contact-url", "mailto:hello@example.org",
    )).start()
    user = User(browser, srv.url, "branded", locale="fr-FR")
    try:
        user.open(wait_negotiated=False)
        assert text(user, "#brand-name") == BRAND_NAME  # literally: never parsed as HTML
        assert user.js("() => document.querySelector('.brand b')") is None
        assert user.page.title() == FR["page.title"].format(name=BRAND_NAME)
        accent = user.js("() => getComputedStyle(document.documentElement).getPropertyValue('--accent').trim()")
        assert accent == "#e11d48"
        # The button's colour is transitioned: wait for where it settles.
        expect(user.page.locator("#chat-send")).to_have_css("background-color", "rgb(225, 29, 72)")
        links = user.js("() => [...document.querySelectorAll('#site-links a')]"
                        ".map((a) => [a.dataset.link, a.href, a.textContent])")
        assert links == [["rules", "https://example.org/rules", FR["links.rules"]],
                         ["contact", "mailto:hello@example.org", FR["links.contact"]]]
        assert "e11d48" in user.js("() => document.querySelector('link[rel=icon]').href").lower()
    finally:
        user.close()
        srv.stop()
