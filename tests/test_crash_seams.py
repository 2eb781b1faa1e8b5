"""Every crash seam of the club's state machine is reachable by patching its module's attribute.

`tests/test_club_lives.py` crashes a run by replacing `module.function` (CRASH_POINTS) with one
that raises once. That only reaches the call if the function exists there and some task or flow
calls it as an attribute of that module object (`mint.relink_rows(...)`); a `from module import
function` binds the original and silently defeats the patch. Read with `ast`, nothing runs.
"""

from __future__ import annotations

import ast
import importlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.test_club_lives import CRASH_POINTS

ROOT = Path(__file__).resolve().parent.parent
CALLERS = ("tasks", "flows")  # where the runs call the library


def caller_files() -> list[Path]:
    return sorted(path for folder in CALLERS for path in (ROOT / folder).rglob("*.py"))


def module_of(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def absolute(node: ast.ImportFrom, path: Path) -> str:
    """The module an ImportFrom reads from, relative imports resolved."""
    if not node.level:
        return node.module or ""
    package = module_of(path).split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    anchor = package[: len(package) - node.level + 1]
    return ".".join([*anchor, node.module] if node.module else anchor)


def module_bindings(tree: ast.AST, path: Path) -> dict[str, str]:
    """Local name → dotted module path, for every import in the file (inside functions too).

    `from a.b import c` binds `c` to `a.b.c` whether or not `c` is a module: a name bound to a
    function simply never matches a crash point's module."""
    bound: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.asname:
                    bound[alias.asname] = alias.name
                else:  # `import a.b.c` binds `a`; the call spells the rest
                    root = alias.name.split(".")[0]
                    bound[root] = root
        elif isinstance(node, ast.ImportFrom):
            base = absolute(node, path)
            for alias in node.names:
                bound[alias.asname or alias.name] = f"{base}.{alias.name}"
    return bound


def dotted(node: ast.expr, bound: dict[str, str]) -> str | None:
    """`mint` or `paylinks.billing.mint` as the module path it names, if it names an import."""
    if isinstance(node, ast.Name):
        return bound.get(node.id)
    if isinstance(node, ast.Attribute):
        base = dotted(node.value, bound)
        return f"{base}.{node.attr}" if base else None
    return None


def attribute_calls(path: Path) -> Iterator[tuple[str, str]]:
    """(module path, function) of every `module.function(...)` call in the file."""
    tree = ast.parse(path.read_text(), filename=str(path))
    bound = module_bindings(tree, path)
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            module = dotted(node.func.value, bound)
            if module:
                yield module, node.func.attr


def direct_imports(path: Path) -> Iterator[tuple[str, str]]:
    """(module path, name) of every `from module import name` in the file."""
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            base = absolute(node, path)
            for alias in node.names:
                yield base, alias.name


def seam_id(point: tuple[str, str]) -> str:
    return ".".join(point)


@pytest.mark.parametrize("point", CRASH_POINTS, ids=seam_id)
def test_crash_seam_is_reached_through_its_module(point: tuple[str, str]) -> None:
    module_name, function = point
    module = importlib.import_module(module_name)
    assert callable(getattr(module, function, None)), f"{module_name} has no function {function}"
    callers = [
        str(path.relative_to(ROOT))
        for path in caller_files()
        if (module_name, function) in set(attribute_calls(path))
    ]
    assert callers, (
        f"no module under {', '.join(CALLERS)} calls {module_name}.{function} as an attribute of its module, "
        "so patching it never crashes a run"
    )


@pytest.mark.parametrize("point", CRASH_POINTS, ids=seam_id)
def test_crash_seam_is_not_imported_by_name(point: tuple[str, str]) -> None:
    """A `from module import function` in a task or flow would call the original past the patch."""
    bypasses = [str(path.relative_to(ROOT)) for path in caller_files() if point in set(direct_imports(path))]
    assert bypasses == []
