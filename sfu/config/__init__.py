"""Configuration: what can be set (:mod:`.settings`), where values come from (:mod:`.loading`:
flags > ``SFU_*`` environment > TOML file > defaults), what is wrong with them (:mod:`.validation`)
and how ``sfu config`` prints them (:mod:`.render`).

Imports nothing of the media stack, so ``sfu config`` and ``sfu --version`` stay light.
"""

from .catalog import Setting, all_settings
from .loading import CONFIG_ENV, ConfigError, add_arguments, load, unknown_env
from .render import render_json, render_toml
from .settings import ENV_PREFIX, Config, IceServer, setting
from .validation import turn_problems, validate

__all__ = [
    "CONFIG_ENV",
    "ENV_PREFIX",
    "Config",
    "ConfigError",
    "IceServer",
    "Setting",
    "add_arguments",
    "all_settings",
    "load",
    "render_json",
    "render_toml",
    "setting",
    "turn_problems",
    "unknown_env",
    "validate",
]
