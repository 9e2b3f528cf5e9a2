"""How the hooks tell whether the installed aiortc / aioice still have the internals they use.

Private names can change in any release. Each hook module lists what it relies on through these
helpers, so a missing name is reported by start-up and by the tests instead of failing mid-call.
"""

from __future__ import annotations

from typing import Any

import aioice
import aiortc

#: Versions these hooks were written and tested against.
TESTED_AIORTC = ("1.16",)
TESTED_AIOICE = ("0.13",)


class PrivateApiError(RuntimeError):
    """The installed aiortc/aioice no longer has an internal this server relies on."""


def code_names(function: Any) -> tuple[str, ...]:
    """The global and attribute names a function's code uses (``()`` if it is not Python code)."""
    code = getattr(function, "__code__", None)
    return tuple(code.co_names) if code is not None else ()


def missing_callables(owner: Any, names: tuple[str, ...], label: str) -> list[str]:
    """``label.name`` for every name in ``names`` that is not a callable attribute of ``owner``."""
    return [f"{label}.{name}" for name in names if not callable(getattr(owner, name, None))]


def missing_attributes(owner: Any, names: tuple[str, ...], label: str) -> list[str]:
    """``label.name`` for every name in ``names`` that ``owner`` lacks."""
    return [f"{label}.{name}" for name in names if not hasattr(owner, name)]


def unused_names(function: Any, names: tuple[str, ...], label: str) -> list[str]:
    """``label`` + name for every name in ``names`` that ``function``'s code no longer uses."""
    used = code_names(function)
    return [f"{label}{name}" for name in names if name not in used]


def versions() -> str:
    return f"aiortc {aiortc.__version__} / aioice {aioice.__version__}"


def tested() -> str:
    return f"aiortc {', '.join(TESTED_AIORTC)} and aioice {', '.join(TESTED_AIOICE)}"
