"""The operator's brand: settings checked at start (every problem at once), shown by `sfu config`,
served to the page at /brand.json (and /brand/logo for a logo file); the pairing waits as settings."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest

from sfu.config import Config, ConfigError, load
from sfu.config.brand import is_css_hex, is_web_url, logo_kind

ROOT = Path(__file__).resolve().parent.parent
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360f8cfc0f01f0005000201e5273ede0000000049454e44ae426082"
)


@pytest.mark.parametrize("value", ["#abc", "#ABC", "#0a1B2c", "#6d5dfc"])
def test_css_hex_colours_are_accepted(value: str) -> None:
    assert is_css_hex(value)


@pytest.mark.parametrize(
    "value", ["abc", "#abcd", "#12345", "#1234567", "red", "#ggg", "#abc;background:url(x)", "# abc", "rgb(1,2,3)", ""]
)
def test_anything_but_a_css_hex_colour_is_refused(value: str) -> None:
    assert not is_css_hex(value)
    with pytest.raises(ConfigError) as caught:
        load({"brand_accent": value}, env={})
    assert any(p.startswith("brand_accent:") and "CSS hex" in p for p in caught.value.problems)


def test_urls_and_logo_kinds() -> None:
    assert is_web_url("https://example.org/rules") and is_web_url("http://127.0.0.1:8080/x")
    assert not is_web_url("javascript:alert(1)") and not is_web_url("data:text/html,hi")
    assert not is_web_url("https://") and not is_web_url("/rules") and not is_web_url("https://a.org/x y")
    assert not is_web_url("mailto:team@example.org")
    assert is_web_url("mailto:team@example.org", mail=True) and not is_web_url("mailto:nobody", mail=True)
    assert logo_kind(None) == "none" and logo_kind("") == "none"
    assert logo_kind("https://cdn.example.org/logo.svg") == "url" and logo_kind("/etc/sfu/logo.png") == "file"


def test_every_brand_problem_is_reported_at_once(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load(
            {
                "brand_name": "x" * 61,
                "brand_accent": "purple",
                "brand_logo": str(tmp_path / "missing.png"),
                "brand_rules_url": "javascript:alert(1)",
                "brand_privacy_url": "ftp://example.org/privacy",
                "brand_contact_url": "mailto:nobody",
            },
            env={},
        )
    problems = "\n".join(caught.value.problems)
    for name in ("brand_name", "brand_accent", "brand_logo", "brand_rules_url", "brand_privacy_url", "brand_contact_url"):
        assert f"{name}:" in problems, problems


@pytest.mark.parametrize(
    "name, why",
    [("", "empty"), ("   ", "empty"), ("Chat\u202eevil", "control"), ("Line\nbreak", "control"), ("n" * 61, "at most 60")],
)
def test_site_names_are_plain_short_text(name: str, why: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load({"brand_name": name}, env={})
    assert any(p.startswith("brand_name:") and why in p for p in caught.value.problems), caught.value.problems


def test_logo_file_must_be_a_readable_image(tmp_path: Path) -> None:
    script = tmp_path / "logo.html"
    script.write_text("<script>alert(1)</script>")
    big = tmp_path / "big.png"
    big.write_bytes(b"\0" * (1024 * 1024 + 1))
    for value, why in ((str(script), "image file"), (str(big), "KiB")):
        with pytest.raises(ConfigError) as caught:
            load({"brand_logo": value}, env={})
        assert any(p.startswith("brand_logo:") and why in p for p in caught.value.problems), caught.value.problems
    logo = tmp_path / "logo.png"
    logo.write_bytes(PNG)
    config, _ = load({"brand_logo": str(logo)}, env={})
    assert config.brand_logo == str(logo)


def test_brand_and_pairing_settings_from_environment_and_file(tmp_path: Path) -> None:
    toml = tmp_path / "sfu.toml"
    toml.write_text('brand_name = "Café Roulette"\nbrand-accent = "#E11D48"\ninterest_wait = 2.5\n')
    env = {"SFU_BRAND_CONTACT_URL": "mailto:hello@example.org", "SFU_LANGUAGE_WAIT": "3"}
    config, sources = load({}, env=env, config_file=toml)
    assert (config.brand_name, config.brand_accent, config.interest_wait) == ("Café Roulette", "#E11D48", 2.5)
    assert config.brand_contact_url == "mailto:hello@example.org" and config.language_wait == 3.0
    assert sources["brand_contact_url"] == "environment SFU_BRAND_CONTACT_URL"
    defaults = Config()
    assert (defaults.brand_name, defaults.brand_accent, defaults.interest_wait, defaults.language_wait) == (
        "Roulette", "#6d5dfc", 5.0, 0.0,
    )
    with pytest.raises(ConfigError) as caught:
        load({"interest_wait": -1.0, "language_wait": -2.0}, env={})
    assert {p.split(":")[0] for p in caught.value.problems} == {"interest_wait", "language_wait"}


def test_config_command_shows_the_brand() -> None:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("SFU_")}
    result = subprocess.run(
        [sys.executable, "-m", "sfu", "config", "--format", "json", "--brand-name", "Lisbon Talks", "--brand-accent", "#0a7"],
        cwd=ROOT, env=clean, capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 0, result.stderr
    shown = json.loads(result.stdout)
    assert shown["brand_name"] == {"value": "Lisbon Talks", "source": "command line --brand-name"}
    assert shown["brand_accent"]["value"] == "#0a7"
    assert shown["brand_logo"]["value"] is None and shown["interest_wait"]["value"] == 5.0


@pytest.fixture
def config(tmp_path: Path) -> Config:
    logo = tmp_path / "logo.png"
    logo.write_bytes(PNG)
    return Config(
        host="127.0.0.1", port=0, brand_name="Lisbon Talks", brand_accent="#E11D48", brand_logo=str(logo),
        brand_rules_url="https://example.org/rules", brand_contact_url="mailto:hello@example.org",
    )


async def test_the_page_reads_the_brand_and_its_logo(server) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.get(server.url + "/brand.json") as response:
            assert response.status == 200 and response.headers["Cache-Control"] == "no-cache"
            brand = await response.json()
        assert brand == {
            "name": "Lisbon Talks",
            "accent": "#e11d48",
            "logo": "brand/logo",
            "links": {"rules": "https://example.org/rules", "contact": "mailto:hello@example.org"},
        }
        async with http.get(server.url + "/brand/logo") as response:
            assert response.status == 200 and response.headers["Content-Type"] == "image/png"
            assert response.headers["X-Content-Type-Options"] == "nosniff"
            assert "default-src 'none'" in response.headers["Content-Security-Policy"]
            assert await response.read() == PNG
