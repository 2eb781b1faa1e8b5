"""The folders show the layers, and imports only run downward, with no circle anywhere.

Every import counts, at the top of a module or hidden inside a function: a circle made of imports
inside functions is still a circle.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("cli", "office", "flows", "tasks", "paylinks", "stripe_emulator")

# What each top-level package may import of ours (data flows one way: entry → flow → task → library).
ALLOWED = {
    "cli": {"cli", "office", "flows", "tasks", "paylinks", "stripe_emulator"},
    "office": {"office", "flows", "tasks", "paylinks"},
    "flows": {"flows", "tasks", "paylinks"},
    "tasks": {"tasks", "paylinks"},
    "paylinks": {"paylinks"},
    "stripe_emulator": {"stripe_emulator"},
}
# Third-party layers the plain library never touches.
FORBIDDEN_FOR_LIBRARY = {"prefect"}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            found[module_name(path)] = path
    return found


def imports_of(path: Path, name: str, known: dict[str, Path]) -> Iterator[str]:
    """Every module this file imports (absolute names; `from pkg import module` resolved)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                candidate = f"{base}.{alias.name}"
                yield candidate if candidate in known else base


def graph() -> dict[str, set[str]]:
    known = modules()
    edges: dict[str, set[str]] = {}
    for name, path in known.items():
        targets = set()
        for imported in imports_of(path, name, known):
            # The deepest module of ours that the import names.
            while imported and imported not in known:
                imported = imported.rpartition(".")[0]
            if imported and imported != name:
                targets.add(imported)
        edges[name] = targets
    return edges


def test_no_layer_imports_upward() -> None:
    known = modules()
    upward = []
    for name, path in known.items():
        layer = name.split(".")[0]
        for imported in imports_of(path, name, known):
            top = imported.split(".")[0]
            if top in ALLOWED and top not in ALLOWED[layer]:
                upward.append(f"{name} imports {imported}")
            if layer == "paylinks" and top in FORBIDDEN_FOR_LIBRARY:
                upward.append(f"{name} imports {imported}")
    assert upward == []


def find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    visiting: list[str] = []
    done: set[str] = set()

    def visit(node: str) -> list[str] | None:
        if node in visiting:
            return visiting[visiting.index(node) :] + [node]
        if node in done:
            return None
        visiting.append(node)
        for target in sorted(edges.get(node, ())):
            cycle = visit(target)
            if cycle:
                return cycle
        visiting.pop()
        done.add(node)
        return None

    for node in sorted(edges):
        cycle = visit(node)
        if cycle:
            return cycle
    return None


def test_no_import_circle() -> None:
    edges = graph()
    # A package's __init__ may import its own modules (office/__init__ re-exports create_app).
    for name in list(edges):
        edges[name] = {t for t in edges[name] if not t.startswith(f"{name}.")}
    assert find_cycle(edges) is None


def test_the_check_finds_a_circle_and_an_upward_import() -> None:
    """The checks above can fail: a made-up circle is found."""
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


@pytest.mark.parametrize("package", sorted(p.parent.name for p in (ROOT / "paylinks").glob("*/__init__.py")))
def test_every_sub_package_says_what_it_owns(package: str) -> None:
    doc = ast.get_docstring(ast.parse((ROOT / "paylinks" / package / "__init__.py").read_text()))
    assert doc and "Imports" in doc, (
        f"paylinks/{package}/__init__.py needs a docstring saying what it owns and imports"
    )
