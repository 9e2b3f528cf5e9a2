"""Configuration: flags > SFU_* environment > TOML file > defaults, validation, help, `sfu config`."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from sfu.config import Config, IceServer
from sfu.config import ConfigError, all_settings, load, render_toml
from sfu.cli import build_parser

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def sfu(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("SFU_")}
    return subprocess.run(
        [sys.executable, "-m", "sfu", *args],
        cwd=ROOT,
        env={**clean, **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
    )


def cli_values(*argv: str) -> dict:
    args = build_parser().parse_args(["serve", *argv])
    return {s.name: getattr(args, s.name) for s in all_settings() if hasattr(args, s.name)}


def test_precedence_cli_over_env_over_file_over_default(tmp_path: Path) -> None:
    toml = tmp_path / "sfu.toml"
    toml.write_text('port = 7001\nmax_participants = 11\nmessage_rate = 3\nrematch-cooldown = 9.5\n')
    env = {"SFU_PORT": "7002", "SFU_MAX_PARTICIPANTS": "12"}
    config, sources = load(cli_values("--port", "7003"), env=env, config_file=toml)
    assert config.port == 7003 and sources["port"] == "command line --port"
    assert config.max_participants == 12 and sources["max_participants"] == "environment SFU_MAX_PARTICIPANTS"
    assert config.message_rate == 3.0 and sources["message_rate"] == f"file {toml}"
    assert config.rematch_cooldown == 9.5  # dashes accepted in TOML keys
    assert config.max_chat_length == Config().max_chat_length and sources["max_chat_length"] == "default"


def test_config_file_from_environment_and_typed_values(tmp_path: Path) -> None:
    toml = tmp_path / "sfu.toml"
    toml.write_text(
        'media_addresses = ["10.0.0.5"]\n'
        'ice_servers = ["stun:stun.example.org", {urls = "turn:turn.example.org", username = "u", credential = "p"}]\n'
        "log_client_addresses = true\n"
    )
    config, sources = load({}, env={"SFU_CONFIG": str(toml), "SFU_IP_LIMITS_EXEMPT": "10.1.1.1, 10.1.1.2"})
    assert config.media_addresses == ["10.0.0.5"]
    assert config.ice_servers == [
        IceServer("stun:stun.example.org"),
        IceServer("turn:turn.example.org", "u", "p"),
    ]
    assert config.log_client_addresses is True
    assert config.ip_limits_exempt == ["10.1.1.1", "10.1.1.2"]
    # repeatable flags and boolean flags come from the same declarations
    config, _ = load(cli_values("--media-address", "10.0.0.6", "--media-address", "10.0.0.7", "--no-metrics"), env={})
    assert config.media_addresses == ["10.0.0.6", "10.0.0.7"] and config.metrics is False


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    toml = tmp_path / "bad.toml"
    toml.write_text('port = "eighty"\nmax_partcipants = 3\n')
    with pytest.raises(ConfigError) as caught:
        load(
            cli_values("--message-rate", "fast", "--tls-cert", str(tmp_path / "missing.pem")),
            env={"SFU_MAX_PARTICIPANTS": "-1", "SFU_LOG_FORMAT": "xml", "SFU_TRUST_FORWARDED_FOR": "maybe"},
            config_file=toml,
        )
    problems = caught.value.problems
    text = "\n".join(problems)
    assert "unknown setting 'max_partcipants' (did you mean 'max_participants'?)" in text
    assert "port (from file" in text and "expected a whole number, got a string" in text
    assert "message_rate (from command line --message-rate): expected a number, got 'fast'" in text
    assert "max_participants: -1 is below the minimum 0" in text
    assert "log_format: 'xml' is not one of text, json" in text
    assert "trust_forwarded_for (from environment SFU_TRUST_FORWARDED_FOR): expected true or false" in text
    assert "tls_cert and tls_key: give both or neither" in text
    assert len(problems) == 8, problems


def test_serve_exits_2_listing_problems() -> None:
    result = sfu("serve", "--port", "70000", env={"SFU_OFFER_TIMEOUT": "soon", "SFU_PROT": "1"})
    assert result.returncode == 2
    assert "2 problem(s)" in result.stderr
    assert "port: 70000 is above the maximum 65535" in result.stderr
    assert "offer_timeout (from environment SFU_OFFER_TIMEOUT): expected a number, got 'soon'" in result.stderr
    assert "SFU_PROT is not a setting (did you mean SFU_PORT?)" in result.stderr
    assert "Traceback" not in result.stderr


def test_help_documents_every_setting() -> None:
    result = sfu("serve", "--help")
    assert result.returncode == 0
    text = " ".join(result.stdout.split())
    for s in all_settings():
        assert s.flag in text, s.name
        assert s.env in text, s.name
    assert "--config FILE" in text


def test_config_command_prints_sources(tmp_path: Path) -> None:
    toml = tmp_path / "sfu.toml"
    toml.write_text("max_chat_length = 200\n")
    result = sfu(
        "config", "--format", "json", "--config", str(toml), "--port", "9001", env={"SFU_MAX_PARTICIPANTS": "7"}
    )
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert set(out) == {f.name for f in dataclasses.fields(Config)}
    assert out["port"] == {"value": 9001, "source": "command line --port"}
    assert out["max_participants"] == {"value": 7, "source": "environment SFU_MAX_PARTICIPANTS"}
    assert out["max_chat_length"] == {"value": 200, "source": f"file {toml}"}
    assert out["host"] == {"value": "127.0.0.1", "source": "default"}

    # The TOML output is a configuration file that loads back to the same values.
    result = sfu("config", "--config", str(toml), "--port", "9001")
    assert "max_chat_length = 200  # file" in result.stdout
    again = tmp_path / "again.toml"
    again.write_text(result.stdout)
    config, _ = load({}, env={}, config_file=again)
    assert config.port == 9001 and config.max_chat_length == 200


def test_rendered_toml_round_trips_every_type(tmp_path: Path) -> None:
    config = Config(ice_servers=[IceServer("turn:t.example:3478?transport=tcp", "u", "p")], media_addresses=["10.0.0.1"])
    path = tmp_path / "c.toml"
    path.write_text(render_toml(config, {}, reveal_secrets=True))
    loaded, _ = load({}, env={}, config_file=path)
    assert loaded == config


def test_config_command_masks_credentials(tmp_path: Path) -> None:
    toml = tmp_path / "sfu.toml"
    toml.write_text('ice_servers = [{urls = "turn:t.example", username = "u", credential = "hunter2"}]\n')
    result = sfu("config", "--config", str(toml))
    assert result.returncode == 0, result.stderr
    assert "hunter2" not in result.stdout and 'username = "u"' in result.stdout
    assert "hunter2" in sfu("config", "--config", str(toml), "--show-secrets").stdout


MEDIA_STACK = ("aiortc", "av", "aioice")


def test_config_and_its_commands_do_not_load_the_media_stack() -> None:
    """`import sfu.config`, `sfu config` and `sfu --version` never import aiortc or PyAV."""
    probe = (
        "import sys, contextlib, io\n"
        "import sfu.config\n"
        "from sfu.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    assert main(['config', '--format', 'json']) == 0\n"
        "    try:\n"
        "        main(['--version'])\n"
        "    except SystemExit as exc:\n"
        "        assert exc.code == 0\n"
        f"print(sorted(m for m in sys.modules if m.split('.')[0] in {MEDIA_STACK!r}))\n"
    )
    clean = {k: v for k, v in os.environ.items() if not k.startswith("SFU_")}
    done = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, env=clean, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
    # The same probe does see the media stack once the server is imported (it is not blind).
    loaded = subprocess.run(
        [sys.executable, "-c", "import sys, sfu.server; print('aiortc' in sys.modules)"],
        cwd=ROOT, env=clean, capture_output=True, text=True, timeout=60,
    )
    assert loaded.stdout.strip() == "True", loaded.stderr
