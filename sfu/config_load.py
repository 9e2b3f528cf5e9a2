"""Loading the configuration: command line > ``SFU_*`` environment > TOML file > defaults.

Everything here is derived from the fields of :class:`sfu.config.Config` and their metadata: the flag
(``--field-name`` unless the field says otherwise), the environment variable (``SFU_FIELD_NAME``) and
the TOML key (``field_name``; dashes are accepted too). Values are checked all at once so an operator
sees every problem in one go (:class:`ConfigError`).
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import ipaddress
import json
import os
import tomllib
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Optional

from .config import Config

ENV_PREFIX = "SFU_"
#: The environment variable naming a TOML file (``--config`` wins over it).
CONFIG_ENV = ENV_PREFIX + "CONFIG"
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


class ConfigError(Exception):
    """The configuration is unusable; ``problems`` holds one human-readable line per problem."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class Setting:
    """One field of :class:`Config`, with everything derived from it."""

    name: str
    type: Any
    default: Any
    help: str
    flag: str
    env: str
    metavar: Optional[str]
    choices: Optional[list[str]]
    min: Optional[float]
    max: Optional[float]
    secret: bool

    @property
    def base(self) -> Any:
        """The type without ``Optional``."""
        return _strip_optional(self.type)

    @property
    def optional(self) -> bool:
        return _strip_optional(self.type) is not self.type

    @property
    def is_list(self) -> bool:
        return typing.get_origin(self.base) is list

    @property
    def item(self) -> Any:
        return typing.get_args(self.base)[0] if self.is_list else self.base


def _strip_optional(tp: Any) -> Any:
    if typing.get_origin(tp) is typing.Union:
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return tp


def settings() -> list[Setting]:
    hints = typing.get_type_hints(Config)
    defaults = Config()
    out = []
    for f in dataclasses.fields(Config):
        meta = f.metadata
        out.append(
            Setting(
                name=f.name,
                type=hints[f.name],
                default=getattr(defaults, f.name),
                help=meta.get("help") or f.name.replace("_", " "),
                flag=meta.get("flag") or "--" + f.name.replace("_", "-"),
                env=ENV_PREFIX + f.name.upper(),
                metavar=meta.get("metavar"),
                choices=meta.get("choices"),
                min=meta.get("min"),
                max=meta.get("max"),
                secret=bool(meta.get("secret")),
            )
        )
    return out


# -- command line ---------------------------------------------------------------------------------
def add_arguments(parser: argparse.ArgumentParser) -> None:
    """One flag per setting, plus ``--config FILE``. Flags left out are absent from the namespace."""
    parser.add_argument(
        "--config",
        type=Path,
        metavar="FILE",
        default=argparse.SUPPRESS,
        help=f"TOML file of settings (keys: the names `sfu config` prints); env {CONFIG_ENV}",
    )
    for s in settings():
        default = "none" if s.default in (None, []) else _display(s, s.default)
        help = f"{s.help} [env {s.env}; default: {default}]".replace("%", "%%")
        kwargs: dict[str, Any] = {"dest": s.name, "default": argparse.SUPPRESS, "help": help}
        if s.base is bool:
            kwargs["action"] = argparse.BooleanOptionalAction
        else:
            kwargs["metavar"] = s.metavar or (
                "|".join(s.choices) if s.choices else {int: "N", float: "NUMBER", Path: "PATH"}.get(s.item, "TEXT")
            )
            if s.is_list:
                kwargs["action"] = "append"
        parser.add_argument(s.flag, **kwargs)


# -- loading --------------------------------------------------------------------------------------
def load(
    cli: Optional[Mapping[str, Any]] = None,
    env: Optional[Mapping[str, str]] = None,
    config_file: Optional[Path] = None,
) -> tuple[Config, dict[str, str]]:
    """Build the effective :class:`Config` and where each value came from.

    ``cli`` maps field names to what argparse gave (only flags actually passed); ``env`` defaults to
    ``os.environ``; ``config_file`` defaults to ``$SFU_CONFIG``. Raises :class:`ConfigError`.
    """
    cli = dict(cli or {})
    env = os.environ if env is None else env
    problems: list[str] = []
    known = {s.name: s for s in settings()}

    file_values: dict[str, Any] = {}
    if config_file is None and env.get(CONFIG_ENV):
        config_file = Path(env[CONFIG_ENV])
    if config_file is not None:
        file_values = _read_toml(config_file, known, problems)

    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for s in known.values():
        if s.name in cli:
            raw, source, from_text = cli[s.name], f"command line {s.flag}", True
        elif s.env in env:
            raw, source, from_text = env[s.env], f"environment {s.env}", True
        elif s.name in file_values:
            raw, source, from_text = file_values[s.name], f"file {config_file}", False
        else:
            sources[s.name] = "default"
            continue
        try:
            values[s.name] = _convert(s, raw, from_text)
            sources[s.name] = source
        except ValueError as exc:
            problems.append(f"{s.name} (from {source}): {exc}")

    config = Config(**values)
    problems += validate(config)
    if problems:
        raise ConfigError(problems)
    return config, sources


def unknown_env(env: Optional[Mapping[str, str]] = None) -> list[str]:
    """``SFU_*`` variables that name no setting (likely typos), with a suggestion when there is one."""
    env = os.environ if env is None else env
    names = {s.env for s in settings()} | {CONFIG_ENV}
    out = []
    for key in sorted(env):
        if key.startswith(ENV_PREFIX) and key not in names:
            close = difflib.get_close_matches(key, names, 1)
            out.append(f"{key} is not a setting" + (f" (did you mean {close[0]}?)" if close else ""))
    return out


def _read_toml(path: Path, known: dict[str, Setting], problems: list[str]) -> dict[str, Any]:
    try:
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
    except OSError as exc:
        problems.append(f"config file {path}: cannot read it ({exc.strerror or exc})")
        return {}
    except tomllib.TOMLDecodeError as exc:
        problems.append(f"config file {path}: not valid TOML ({exc})")
        return {}
    out: dict[str, Any] = {}
    for key, value in data.items():
        name = key.replace("-", "_")
        if name not in known:
            close = difflib.get_close_matches(name, known, 1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            problems.append(f"config file {path}: unknown setting {key!r}{hint}")
            continue
        out[name] = value
    return out


def _convert(s: Setting, raw: Any, from_text: bool) -> Any:
    """Turn a flag/env string (``from_text``) or a TOML value into the field's type."""
    if s.is_list:
        if from_text:
            items: list[Any] = []
            for part in raw if isinstance(raw, list) else [raw]:
                items += [p.strip() for p in str(part).split(",") if p.strip()]
        elif isinstance(raw, list):
            items = raw
        else:
            raise ValueError(f"expected a list, got {_toml_type(raw)}")
        return [_scalar(s.item, item, from_text) for item in items]
    if s.optional and from_text and raw == "":
        return None
    return _scalar(s.base, raw, from_text)


def _scalar(tp: Any, raw: Any, from_text: bool) -> Any:
    if from_text:
        text = str(raw).strip()
        if tp is bool:
            if text.lower() in _TRUE:
                return True
            if text.lower() in _FALSE:
                return False
            raise ValueError(f"expected true or false, got {text!r}")
        if tp is int:
            try:
                return int(text)
            except ValueError:
                raise ValueError(f"expected a whole number, got {text!r}") from None
        if tp is float:
            try:
                return float(text)
            except ValueError:
                raise ValueError(f"expected a number, got {text!r}") from None
        if tp in (str, Path):
            return tp(text)
        if dataclasses.is_dataclass(tp):
            return tp(text)  # first field from text, e.g. IceServer(urls)
        raise ValueError(f"cannot read a {tp!r} from text")
    # TOML values are already typed: check them.
    if tp is bool and isinstance(raw, bool):
        return raw
    if tp is int and isinstance(raw, int) and not isinstance(raw, bool):
        return raw
    if tp is float and isinstance(raw, (int, float)) and not isinstance(raw, bool):
        return float(raw)
    if tp in (str, Path) and isinstance(raw, str):
        return tp(raw)
    if dataclasses.is_dataclass(tp):
        if isinstance(raw, str):
            return tp(raw)
        if isinstance(raw, dict):
            names = {f.name for f in dataclasses.fields(tp)}
            extra = set(raw) - names
            if extra:
                raise ValueError(f"unknown keys {sorted(extra)} (known: {sorted(names)})")
            try:
                return tp(**raw)
            except TypeError as exc:
                raise ValueError(str(exc)) from None
    expected = {bool: "true or false", int: "a whole number", float: "a number", str: "a string", Path: "a path"}
    raise ValueError(f"expected {expected.get(tp, 'a string or a table')}, got {_toml_type(raw)}")


def _toml_type(value: Any) -> str:
    return {bool: "a boolean", int: "an integer", float: "a float", str: "a string", list: "an array", dict: "a table"}.get(
        type(value), type(value).__name__
    )


# -- validation -----------------------------------------------------------------------------------
def validate(config: Config) -> list[str]:
    """Every problem with ``config``, one line each (empty: fine)."""
    problems = []
    for s in settings():
        value = getattr(config, s.name)
        if s.choices and value not in s.choices:
            problems.append(f"{s.name}: {value!r} is not one of {', '.join(s.choices)}")
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if s.min is not None and value < s.min:
                problems.append(f"{s.name}: {value} is below the minimum {s.min:g}")
            if s.max is not None and value > s.max:
                problems.append(f"{s.name}: {value} is above the maximum {s.max:g}")
    if not config.host:
        problems.append("host: must not be empty")
    for address in list(config.media_addresses) + list(config.ip_limits_exempt):
        try:
            ipaddress.ip_address(address)
        except ValueError:
            problems.append(f"{address!r} is not an IP address")
    for server in config.ice_servers:
        if not server.urls.split(":", 1)[0] in ("stun", "stuns", "turn", "turns"):
            problems.append(f"ice_servers: {server.urls!r} is not a stun:, turn: or turns: URL")
    if config.hard_message_bytes < config.max_message_bytes:
        problems.append("hard_message_bytes: must be at least max_message_bytes")
    if (config.tls_cert is None) != (config.tls_key is None):
        problems.append("tls_cert and tls_key: give both or neither")
    for name in ("tls_cert", "tls_key"):
        path = getattr(config, name)
        if path is not None and not os.access(path, os.R_OK):
            problems.append(f"{name}: cannot read {path}")
    if config.client_dir is not None and not (config.client_dir / "index.html").is_file():
        problems.append(f"client_dir: no index.html in {config.client_dir}")
    problems += _network_problems(config)
    return problems


def _network_problems(config: Config) -> list[str]:
    """Public address, media port range and TURN settings (see docs/deploying.md)."""
    from .media.addresses import check_public_ip
    from .turn import IceServerIssuer

    problems = []
    if config.public_ip is not None:
        try:
            check_public_ip(config.public_ip)
        except ValueError as exc:
            problems.append(f"public_ip: {exc}")
    try:
        config.media_port_range()
    except ValueError as exc:
        problems.append(str(exc))
    if config.turn_secret and config.turn_secret_file:
        problems.append("turn_secret and turn_secret_file: give one or the other")
    if config.turn_secret_file is not None and not os.access(config.turn_secret_file, os.R_OK):
        problems.append(f"turn_secret_file: cannot read {config.turn_secret_file}")
    else:
        try:
            IceServerIssuer.from_config(config)
        except ValueError as exc:
            problems.append(f"turn: {exc}")
    return problems


# -- printing -------------------------------------------------------------------------------------
def _plain(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if dataclasses.is_dataclass(value):
        return {k: v for k, v in dataclasses.asdict(value).items() if v is not None}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _display(s: Setting, value: Any) -> str:
    plain = _plain(value)
    if isinstance(plain, list):
        return ", ".join(p["urls"] if isinstance(p, dict) else str(p) for p in plain)
    return str(plain).lower() if isinstance(plain, bool) else str(plain)


_SECRET_KEYS = ("credential", "password", "secret")


def _mask(s: Setting, value: Any, reveal: bool = False) -> Any:
    if reveal:
        return value
    if (s.secret or any(key in s.name for key in _SECRET_KEYS)) and value not in (None, ""):
        return "********"
    if isinstance(value, list):
        return [
            {k: ("********" if k in _SECRET_KEYS and v else v) for k, v in item.items()} if isinstance(item, dict) else item
            for item in value
        ]
    return value


def render_json(config: Config, sources: Mapping[str, str], reveal_secrets: bool = False) -> str:
    out = {
        s.name: {"value": _mask(s, _plain(getattr(config, s.name)), reveal_secrets), "source": sources.get(s.name, "default")}
        for s in settings()
    }
    return json.dumps(out, indent=2)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # a JSON string is a valid TOML basic string
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {_toml_value(v)}" for k, v in value.items()) + " }"
    raise TypeError(type(value))


def render_toml(config: Config, sources: Mapping[str, str], reveal_secrets: bool = False) -> str:
    lines = ["# Effective sfu configuration; each value's source is in the comment."]
    for s in settings():
        value = _mask(s, _plain(getattr(config, s.name)), reveal_secrets)
        source = sources.get(s.name, "default")
        if value is None:
            lines.append(f"# {s.name} is unset  # {source}")
        else:
            lines.append(f"{s.name} = {_toml_value(value)}  # {source}")
    return "\n".join(lines) + "\n"
