"""The catalogue of settings: each field of :class:`~.settings.Config` (and of its groups, e.g.
``moderation``) as one :class:`Setting` with its flag, ``SFU_<NAME>`` variable, TOML key, type,
default and help, derived from the field and its ``metadata`` (see :func:`~.settings.setting`)."""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass
from typing import Any, Optional

from .settings import ENV_PREFIX, Config


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
    #: The field of :class:`Config` holding this setting's dataclass (``None``: Config itself).
    group: Optional[str] = None

    def get(self, config: Config) -> Any:
        """This setting's value in ``config``."""
        return getattr(getattr(config, self.group) if self.group else config, self.name)

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
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return tp


def all_settings() -> list[Setting]:
    """Every setting, in the order of :class:`Config`'s fields, then those of its groups'."""
    defaults = Config()
    out = _settings_of(Config, defaults, None)
    for f in dataclasses.fields(Config):
        if f.metadata.get("group"):
            group = getattr(defaults, f.name)
            out += _settings_of(type(group), group, f.name)
    return out


def _settings_of(cls: type, defaults: Any, group: Optional[str]) -> list[Setting]:
    hints = typing.get_type_hints(cls)
    out = []
    for f in dataclasses.fields(cls):
        meta = f.metadata
        if meta.get("group"):
            continue
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
                group=group,
            )
        )
    return out
