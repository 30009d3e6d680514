"""Imports run one way (README, "Layout"):

    core <- models <- adapters | tasks <- bench (the harness) <- analysis <- perf <- experiments

`adapters | tasks`: both read models and core, neither the other. Every import statement of our
packages is read from the source (module level, inside functions and under TYPE_CHECKING alike), so
a lazy import cannot hide a dependency that points up. The one lookup by name is core/metrics.py
finding a task's declarations (`tasks.<task>.metric_defs`, a plug-in convention, as the registry's
strings are): it is named below, and no other string import exists in core."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

ALLOWED = {
    "core": {"core"},
    "models": {"core", "models"},
    "adapters": {"core", "models", "adapters"},
    "tasks": {"core", "models", "tasks"},
    "bench": {"core", "models", "adapters", "tasks", "bench"},
    "analysis": {"core", "models", "adapters", "tasks", "bench", "analysis"},
    "perf": {"core", "models", "adapters", "tasks", "bench", "analysis", "perf"},
    "experiments": {"core", "models", "adapters", "tasks", "bench", "analysis", "perf", "experiments"},
}
PLUGIN_LOOKUPS = {"core/metrics.py"}  # files of core allowed to import a module by a computed name


def _our_imports(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name.split(".")[0]) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module.split(".")[0]))
    return [(line, top) for line, top in found if top in ALLOWED]


def _violations() -> list[str]:
    out = []
    for layer, allowed in ALLOWED.items():
        for path in sorted((ROOT / layer).rglob("*.py")):
            for line, top in _our_imports(path):
                if top not in allowed:
                    out.append(f"{path.relative_to(ROOT)}:{line} imports {top} (a {layer} module may import "
                               f"{', '.join(sorted(allowed))})")
    return out


def test_every_layer_imports_only_the_layers_below_it():
    assert _violations() == []


def test_the_check_sees_lazy_imports(tmp_path, monkeypatch):
    """A function-level import of the harness from core is caught: the check can fail."""
    bad = tmp_path / "core" / "leak.py"
    bad.parent.mkdir()
    bad.write_text("def f():\n    from bench import registry\n    return registry\n")
    monkeypatch.setattr(__import__(__name__), "ROOT", tmp_path)
    assert _violations() == ["core/leak.py:2 imports bench (a core module may import core)"]


def test_core_imports_by_name_only_where_named():
    users = {str(p.relative_to(ROOT)) for p in (ROOT / "core").rglob("*.py") if "import_module(" in p.read_text()}
    assert users == PLUGIN_LOOKUPS


def test_no_package_is_left_outside_the_layers():
    packages = {p.parent.name for p in ROOT.glob("*/__init__.py")}
    assert packages - set(ALLOWED) == set(), "a new top-level package needs its place in ALLOWED"
