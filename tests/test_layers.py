"""The package's shape: who may import whom, no import cycles, no oversized modules.

Read from the source with :mod:`ast`, so nothing is imported and nothing runs.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "sfu"
#: Third-party packages that mean "HTTP" or "the media stack".
HTTP = {"aiohttp"}
MEDIA_STACK = {"aiortc", "aioice", "av", "pylibsrtp"}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(path: Path) -> set[str]:
    """Absolute names of everything ``path`` imports (relative imports resolved)."""
    tree = ast.parse(path.read_text(), str(path))
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                prefix = ".".join(base + ([node.module] if node.module else []))
            else:
                prefix = node.module or ""
            found.add(prefix)
            # ``from . import x`` / ``from .pkg import mod`` may name submodules
            found.update(f"{prefix}.{alias.name}" for alias in node.names)
    return found


MODULES = {module_name(p): p for p in PACKAGE.rglob("*.py")}


def first_party(names: set[str]) -> set[str]:
    return {n for n in names if n in MODULES}


def third_party_roots(names: set[str]) -> set[str]:
    return {n.split(".")[0] for n in names if not n.startswith("sfu")}


def modules_under(prefix: str) -> list[str]:
    return sorted(m for m in MODULES if m == prefix or m.startswith(prefix + "."))


@pytest.mark.parametrize("module", modules_under("sfu.pairing"))
def test_pairing_knows_nothing_of_media_or_http(module: str) -> None:
    names = imports_of(MODULES[module])
    assert not third_party_roots(names) & (HTTP | MEDIA_STACK)
    assert all(n.startswith("sfu.pairing") for n in first_party(names)), first_party(names)


@pytest.mark.parametrize("module", modules_under("sfu.media"))
def test_media_knows_nothing_of_http_pairing_or_signaling(module: str) -> None:
    names = imports_of(MODULES[module])
    assert not third_party_roots(names) & HTTP
    forbidden = [n for n in first_party(names) if not n.startswith("sfu.media")]
    assert not forbidden, f"{module} imports {forbidden}"


@pytest.mark.parametrize("module", modules_under("sfu.config"))
def test_configuration_loads_without_the_media_stack(module: str) -> None:
    names = imports_of(MODULES[module])
    assert not third_party_roots(names) & MEDIA_STACK
    heavy = [n for n in first_party(names) if n.startswith("sfu.media") and n != "sfu.media.modes" and n != "sfu.media"]
    assert not heavy, f"{module} imports {heavy}"


def test_no_import_cycles() -> None:
    graph = {m: {n for n in first_party(imports_of(p)) if n != m} for m, p in MODULES.items()}
    # a package's __init__ importing its own submodules is the usual re-export, not a cycle
    for m in graph:
        if MODULES[m].name == "__init__.py":
            graph[m] = {n for n in graph[m] if not n.startswith(m + ".")}
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(m: str) -> None:
        state[m] = 1
        stack.append(m)
        for n in sorted(graph[m]):
            if state.get(n) == 1:
                cycle = stack[stack.index(n):] + [n]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if n not in state:
                visit(n)
        stack.pop()
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m)


def test_modules_stay_small() -> None:
    sources = [*PACKAGE.rglob("*.py"), *(ROOT / "client").rglob("*.js")]
    big = {str(p.relative_to(ROOT)): n for p in sources if (n := len(p.read_text().splitlines())) > 420}
    assert not big, f"modules over ~400 lines: {big}"
