"""Printing the effective configuration (``sfu config``): TOML that loads back, or JSON, each value
with its source; credentials masked unless asked for.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any, Mapping

from .catalog import Setting, all_settings
from .settings import Config


def _plain(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {k: v for k, v in dataclasses.asdict(value).items() if v is not None}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def display(value: Any) -> str:
    """A value as one line for humans (``--help`` defaults): lists comma-separated, ICE servers by URL."""
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
        s.name: {"value": _mask(s, _plain(s.get(config)), reveal_secrets), "source": sources.get(s.name, "default")}
        for s in all_settings()
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
    for s in all_settings():
        value = _mask(s, _plain(s.get(config)), reveal_secrets)
        source = sources.get(s.name, "default")
        if value is None:
            lines.append(f"# {s.name} is unset  # {source}")
        else:
            lines.append(f"{s.name} = {_toml_value(value)}  # {source}")
    return "\n".join(lines) + "\n"
