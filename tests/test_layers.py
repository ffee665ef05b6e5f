"""The package's layering, checked on its source: every import of every module under src/slimbench
-- at module level or inside a function, absolute or relative, and the dynamic ones
(`importlib.import_module`, `__import__` of a module named by a string) -- as a graph.

`LAYERS` is the one rank table, lowest first. Every module is in it (a new module fails the test
until it is placed); a module may import only modules placed before it, or modules of its own
package (`build.*` among themselves). No import cycle; nothing imports the test scaffolding.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"

# (layer, the modules it holds in import order: a name ending in ".*" is a whole package)
LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("foundation", ("errors", "extensions", "fsutil", "stats", "synthetic", "machine", "labels")),
    ("spec", ("spec", "spec.*")),
    ("formats", ("cache", "cache.*", "formats", "formats.*", "data", "data.*")),
    ("runtimes", ("runtimes", "runtimes.*")),
    ("build", ("build", "build.*")),
    ("measure", ("measure", "measure.*")),
    ("analysis", ("analysis", "analysis.*")),
    ("render", ("render", "render.*")),
    ("entry points", ("commands", "commands.*", "plugin", "plugin.*", "suite", "suite.*", "api", "cli")),
    ("test scaffolding", ("testing", "testing.*")),
)
ROOT = "slimbench"  # the package's __init__: sets the offline environment, imports nothing at load


def _name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_name(p): p for p in SRC.rglob("*.py")}


def _resolve(me: str, is_package: bool, module: str | None, level: int) -> str:
    """The absolute name of a relative import."""
    if level == 0:
        return module or ""
    base = me.split(".") if is_package else me.split(".")[:-1]
    base = base[: len(base) - (level - 1)]
    return ".".join([*base, module] if module else base)


def _imports(path: Path) -> set[str]:
    me, out = _name(path), set()
    tree = ast.parse(path.read_text(encoding="utf-8"))
    dynamic = False
    strings: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            module = _resolve(me, path.name == "__init__.py", node.module, node.level)
            out.add(module)
            out |= {f"{module}.{a.name}" for a in node.names}
        elif isinstance(node, ast.Call):
            f = node.func
            name = f.attr if isinstance(f, ast.Attribute) else f.id if isinstance(f, ast.Name) else ""
            dynamic |= name in ("import_module", "__import__")
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            strings.add(node.value)
    if dynamic:  # a module that imports by name: every string naming a module of ours is an edge
        out |= {s for s in strings if s in MODULES}
    return {m for m in out if m in MODULES and m != me and m != ROOT}


GRAPH = {m: _imports(p) for m, p in MODULES.items()}


def _slot(module: str) -> tuple[int, int, str] | None:
    """(layer, position, entry) of a module in the table; None if it is not placed."""
    short = module.removeprefix(f"{ROOT}.")
    for rank, (_, entries) in enumerate(LAYERS):
        for pos, entry in enumerate(entries):
            if short == entry or (entry.endswith(".*") and short.startswith(entry[:-1])):
                return rank, pos, entry
    return None


def reach(module: str) -> set[str]:
    seen: set[str] = set()
    todo = [module]
    while todo:
        for nxt in GRAPH[todo.pop()]:
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


def test_the_graph_is_read_from_the_real_source():
    assert len(GRAPH) > 30 and "slimbench.build.pipeline" in GRAPH["slimbench.cli"]
    assert "slimbench.formats.pruned" in GRAPH["slimbench.formats.torch_io"]  # a function-level import is seen
    assert "slimbench.commands.compare" in GRAPH["slimbench.cli"]  # cli loads the commands with importlib: seen too


def test_relative_and_dynamic_imports_are_seen(tmp_path):
    pkg = tmp_path / "slimbench"
    pkg.mkdir()
    (pkg / "a.py").write_text("from .errors import X\nimport importlib\nimportlib.import_module('slimbench.spec.zoo')\n")
    global SRC
    saved = SRC
    try:
        SRC = tmp_path
        found = _imports(pkg / "a.py")
    finally:
        SRC = saved
    assert {"slimbench.errors", "slimbench.spec.zoo"} <= found


def test_every_module_is_in_the_rank_table():
    missing = sorted(m for m in MODULES if m != ROOT and _slot(m) is None)
    assert not missing, f"modules missing from tests/test_layers.py LAYERS (place each in its layer): {missing}"


def test_no_module_imports_upward_or_sideways():
    bad = []
    for module, deps in GRAPH.items():
        if module == ROOT:
            continue
        me = _slot(module)
        assert me is not None
        for dep in deps:
            it = _slot(dep)
            assert it is not None
            # within one package (`build.*`), and between a package's __init__ and its own modules
            same_package = (me[2] == it[2] and me[2].endswith(".*") or module.startswith(dep + ".")
                            or dep.startswith(module + "."))
            if not ((it[0], it[1]) < (me[0], me[1]) or same_package):
                bad.append(f"{module} ({LAYERS[me[0]][0]}) -> {dep} ({LAYERS[it[0]][0]})")
    assert not bad, "imports against the rank table:\n" + "\n".join(sorted(bad))


def test_the_package_root_imports_nothing_when_loaded():
    tree = ast.parse(MODULES[ROOT].read_text(encoding="utf-8"))
    top = [n for n in tree.body if isinstance(n, ast.Import | ast.ImportFrom)]
    assert not [n for n in top if isinstance(n, ast.ImportFrom) and (n.module or "").startswith(ROOT)]


def test_no_import_cycle():
    cycles = sorted(m for m in GRAPH if m in reach(m))
    assert not cycles, f"modules on an import cycle: {cycles}"


def test_nothing_imports_the_test_scaffolding():
    users = sorted(m for m, deps in GRAPH.items()
                   if not m.startswith("slimbench.testing") and any(d.startswith("slimbench.testing") for d in deps))
    assert not users, f"production modules importing slimbench.testing: {users}"


@pytest.mark.parametrize("module", sorted(m for m in MODULES if m.startswith(
    ("slimbench.spec", "slimbench.cache", "slimbench.formats", "slimbench.data", "slimbench.runtimes"))))
def test_formats_and_runtimes_never_reach_the_build(module):
    build = sorted(m for m in reach(module) if m.startswith("slimbench.build"))
    assert not build, f"{module} reaches {build}"


@pytest.mark.parametrize("module", ["slimbench.stats", *sorted(m for m in MODULES if m.startswith(
    ("slimbench.analysis", "slimbench.render")))])
def test_gate_and_report_read_results_only(module):
    banned = ("slimbench.build", "slimbench.runtimes", "slimbench.formats", "slimbench.plugin", "slimbench.measure")
    bad = sorted(m for m in reach(module) if m.startswith(banned))
    assert not bad, f"{module} reaches {bad}"


def test_the_architecture_doc_shows_this_rank_table():
    """docs/architecture.md's table lists the layers of LAYERS, in order, each with exactly its modules."""
    import re

    doc = (SRC.parent / "docs" / "architecture.md").read_text(encoding="utf-8")
    block = doc.split("<!-- layers: checked by tests/test_layers.py -->")[1].split("<!-- end of layers -->")[0]
    rows = [line.strip().strip("|").split(" | ") for line in block.strip().splitlines()[2:]]
    assert [(layer.strip(), tuple(re.findall(r"`([^`]+)`", modules))) for layer, modules, _ in rows] == list(LAYERS)
