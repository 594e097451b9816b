"""The house's shape, checked from the source: no import cycles in library/ (imports inside functions and the backend
registry count), no module over 400 lines, and a sweep driver that names no backend."""
from __future__ import annotations

import ast
from pathlib import Path

from library import launch

LIBRARY = Path(__file__).resolve().parents[1] / "library"
MAX_LINES = 400


def module_name(path: Path) -> str:
    parts = path.relative_to(LIBRARY.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(LIBRARY.rglob("*.py"))}


def imports(path: Path, known: set[str]) -> set[str]:
    """The library modules `path` imports anywhere in it: `import a.b`, `from a import b` (b a module, else a name
    in a). A submodule's parent packages, which Python initialises on the way, are not counted: every submodule
    would otherwise import its package, and a package that loads its submodules would form a cycle with each."""
    found = set()
    package = module_name(path) if path.name == "__init__.py" else module_name(path).rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
            found |= {f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names}
    return {m for m in found if m in known}


def graph() -> dict[str, set[str]]:
    mods = modules()
    edges = {name: imports(path, set(mods)) - {name} for name, path in mods.items()}
    # The registry imports its backends by name when one is chosen: those are imports too.
    edges["library.launch"] |= {target.split(":")[0] for target, _ in launch.BACKENDS.values()}
    return edges


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    found, state = [], {}

    def visit(node: str, path: list[str]) -> None:
        state[node] = "open"
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == "open":
                found.append(path[path.index(nxt):] + [nxt] if nxt in path else [node, nxt])
            elif nxt not in state:
                visit(nxt, path + [nxt])
        state[node] = "done"

    for node in sorted(edges):
        if node not in state:
            visit(node, [node])
    return found


def test_the_cycle_finder_finds_a_planted_cycle_through_a_function_level_import():
    edges = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(edges) == [["a", "b", "c", "a"]]


def test_library_has_no_import_cycle_counting_imports_inside_functions_and_the_backend_registry():
    edges = graph()
    assert "library.launch.local" in edges["library.launch"] and "library.trial" in edges["library.driver"]
    assert cycles(edges) == []


def test_no_library_module_is_over_400_lines():
    long = {name: n for name, path in modules().items() if (n := len(path.read_text().splitlines())) > MAX_LINES}
    assert long == {}


def test_the_sweep_driver_names_no_backend():
    path = LIBRARY / "driver.py"
    tree = ast.parse(path.read_text())
    strings = {n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)}
    assert strings & set(launch.BACKENDS) == set()
    assert {m for m in imports(path, set(modules())) if m.startswith("library.launch.")} == set()
