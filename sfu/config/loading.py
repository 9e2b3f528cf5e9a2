"""Loading the configuration: command line > ``SFU_*`` environment > TOML file > defaults.

Everything here is derived from the fields of :class:`~sfu.config.settings.Config` and their metadata: the flag
(``--field-name`` unless the field says otherwise), the environment variable (``SFU_FIELD_NAME``) and
the TOML key (``field_name``; dashes are accepted too). Values are checked all at once so an operator
sees every problem in one go (:class:`ConfigError`).
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import os
import tomllib
from pathlib import Path
from typing import Any, Mapping, Optional

from .catalog import Setting, all_settings
from .render import display
from .settings import ENV_PREFIX, Config
from .validation import validate

#: The environment variable naming a TOML file (``--config`` wins over it).
CONFIG_ENV = ENV_PREFIX + "CONFIG"
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


class ConfigError(Exception):
    """The configuration is unusable; ``problems`` holds one human-readable line per problem."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


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
    for s in all_settings():
        default = "none" if s.default in (None, []) else display(s.default)
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
    known = {s.name: s for s in all_settings()}

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

    groups: dict[str, dict[str, Any]] = {}
    for name in list(values):
        group = known[name].group
        if group is not None:
            groups.setdefault(group, {})[name] = values.pop(name)
    defaults = Config()
    config = Config(**values, **{g: type(getattr(defaults, g))(**v) for g, v in groups.items()})
    problems += validate(config)
    if problems:
        raise ConfigError(problems)
    return config, sources


def unknown_env(env: Optional[Mapping[str, str]] = None) -> list[str]:
    """``SFU_*`` variables that name no setting (likely typos), with a suggestion when there is one."""
    env = os.environ if env is None else env
    names = {s.env for s in all_settings()} | {CONFIG_ENV}
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
        if _is_dataclass_type(tp):
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
    if _is_dataclass_type(tp):
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


def _is_dataclass_type(tp: Any) -> bool:
    """A table-like setting type (e.g. :class:`~sfu.config.settings.IceServer`)."""
    return isinstance(tp, type) and dataclasses.is_dataclass(tp)


def _toml_type(value: Any) -> str:
    return {bool: "a boolean", int: "an integer", float: "a float", str: "a string", list: "an array", dict: "a table"}.get(
        type(value), type(value).__name__
    )
