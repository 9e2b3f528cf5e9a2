"""How the media package is put together: no import cycles, light modules stay light, and every
aiortc/aioice internal is reached through ``sfu.media.aiortc_hooks`` only."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import aiortc

ROOT = Path(__file__).resolve().parent.parent
MEDIA = ROOT / "sfu" / "media"
HOOKS = MEDIA / "aiortc_hooks"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path) -> set[str]:
    """Every module ``path`` imports, at any depth (function-level imports included), resolved."""
    package = module_name(path) if path.name == "__init__.py" else module_name(path).rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            found.add(target)
            found.update(f"{target}.{alias.name}" for alias in node.names)  # `from . import x`
    return found


def media_graph() -> dict[str, set[str]]:
    modules = {module_name(p): p for p in MEDIA.rglob("*.py")}
    return {name: imported_modules(path) & set(modules) - {name} for name, path in modules.items()}


def test_no_import_cycles_in_the_media_package() -> None:
    graph = media_graph()
    done: set[str] = set()

    def visit(name: str, path: list[str]) -> None:
        if name in path:
            cycle = path[path.index(name):] + [name]
            raise AssertionError("import cycle: " + " -> ".join(cycle))
        if name in done:
            return
        for dependency in sorted(graph[name]):
            # A package imports its own submodules by design; only module-to-module edges count.
            if not dependency.startswith(name + "."):
                visit(dependency, [*path, name])
        done.add(name)

    for module in sorted(graph):
        visit(module, [])
    assert "sfu.media.passthrough" in graph and "sfu.media.forwarding" in graph


def test_modes_and_the_source_interface_load_without_the_media_stack() -> None:
    code = (
        "import sys, sfu.media, sfu.media.modes, sfu.media.source\n"
        "loaded = sorted(m for m in sys.modules if m.split('.')[0] in ('aiortc', 'aioice', 'av'))\n"
        "assert not loaded, loaded\n"
    )
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, timeout=60)


PUBLIC = set(aiortc.__all__)
#: Name-mangled private attributes of aiortc classes (``_RTCRtpSender__encoder`` and the like).
MANGLED = re.compile(r"_RTC[A-Za-z]+__[a-z]")


def python_files() -> list[Path]:
    files = [*(ROOT / "sfu").rglob("*.py"), *(ROOT / "benchmarks").rglob("*.py"), *(ROOT / "tests").rglob("*.py")]
    return [p for p in files if HOOKS not in p.parents]


def test_aiortc_internals_are_reached_only_through_the_hooks() -> None:
    offenders = []
    for path in python_files():
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
                if node.module == "aiortc":
                    names = [f"aiortc.{a.name}" for a in node.names if a.name not in PUBLIC]
                else:
                    names = [node.module]
            for name in names:
                top, _, sub = name.partition(".")
                if top == "aioice" or (top == "aiortc" and sub and not sub.startswith("contrib")):
                    offenders.append(f"{path.relative_to(ROOT)}:{node.lineno} imports {name}")
        if path.name not in (Path(__file__).name, "test_aiortc_hooks.py"):  # these name them on purpose
            for number, line in enumerate(path.read_text().splitlines(), 1):
                if MANGLED.search(line):
                    offenders.append(f"{path.relative_to(ROOT)}:{number} uses {MANGLED.search(line).group()}")
    assert not offenders, "\n".join(offenders)
