"""Dependencies between the packages of eventrelay point one way (docs/architecture.md).

Each top-level package or module gets a layer; a module may import from its own package and
from lower layers only. A new edge upwards (the cycles control <-> runtime <-> delivery once
were) fails here with the import that made it."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "eventrelay"

# Lowest first. Modules on one line are peers and must not import each other.
LAYERS: list[set[str]] = [
    {"__init__", "timeutil", "ids", "tasks", "settings", "errors"},
    {"logs", "telemetry", "core"},
    {"rules"},
    {"destinations"},
    {"store"},
    {"bus", "queue"},
    {"routing"},
    {"loaders"},
    {"runtime"},
    {"delivery"},
    {"control"},
    {"api"},
    {"app", "server"},
    {"commands"},
    {"cli"},
    {"__main__"},
]
RANK = {name: rank for rank, names in enumerate(LAYERS) for name in names}


def _imports(path: Path) -> list[tuple[int, str]]:
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "eventrelay":
                found += [(node.lineno, alias.name) for alias in node.names]
            elif node.module.startswith("eventrelay."):
                found.append((node.lineno, node.module.split(".")[1]))
        elif isinstance(node, ast.Import):
            found += [
                (node.lineno, a.name.split(".")[1])
                for a in node.names
                if a.name.startswith("eventrelay.")
            ]
    return found


def test_every_package_has_a_layer() -> None:
    names = {
        p.stem if p.is_file() else p.name
        for p in SRC.iterdir()
        if p.suffix == ".py" or (p.is_dir() and (p / "__init__.py").exists())
    }
    assert names - set(RANK) == set()


def test_imports_point_down() -> None:
    upward: list[str] = []
    for path in sorted(SRC.rglob("*.py")):
        parts = path.relative_to(SRC).parts
        own = parts[0].removesuffix(".py")
        for line, target in _imports(path):
            if target == "__version__":
                target = "__init__"
            if target != own and RANK[target] >= RANK[own]:
                upward.append(f"{path.relative_to(SRC)}:{line} imports {target}")
    assert upward == []


def test_rules_engine_is_self_contained() -> None:
    """The rule engine is shared by delivery, preview, evaluate and the ingest-side tap: it
    imports nothing else of eventrelay."""
    outside = [
        f"{path.relative_to(SRC)}:{line} imports {target}"
        for path in sorted((SRC / "rules").rglob("*.py"))
        for line, target in _imports(path)
        if target != "rules"
    ]
    assert outside == []
