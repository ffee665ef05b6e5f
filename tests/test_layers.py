"""The package's layering, checked on its source: every import (module-level or inside a function)
of every module under src/slimbench, as a graph.

- no import cycle;
- nothing imports `slimbench.testing` (test scaffolding never reaches production code);
- the on-disk formats and the runtime never reach the build (a runner loads an artifact without
  knowing how it was made);
- the gate, the report, the judgement of change and the results schema never reach the build, the
  runtimes or the timing workers (they read results files, nothing else).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"


def _name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_name(p): p for p in SRC.rglob("*.py")}


def _imports(path: Path) -> set[str]:
    me, out = _name(path), set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.add(node.module)
            out |= {f"{node.module}.{a.name}" for a in node.names}
    return {m for m in out if m in MODULES and m != me}


GRAPH = {m: _imports(p) for m, p in MODULES.items()}


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
    assert "slimbench.formats.pruned" in GRAPH["slimbench.torch_io"]  # a function-level import is seen


def test_no_import_cycle():
    cycles = sorted(m for m in GRAPH if m in reach(m))
    assert not cycles, f"modules on an import cycle: {cycles}"


def test_nothing_imports_the_test_scaffolding():
    users = sorted(m for m, deps in GRAPH.items()
                   if not m.startswith("slimbench.testing") and any(d.startswith("slimbench.testing") for d in deps))
    assert not users, f"production modules importing slimbench.testing: {users}"


@pytest.mark.parametrize("module", sorted(m for m in MODULES if m.startswith(
    ("slimbench.formats", "slimbench.runtime", "slimbench.torch_io", "slimbench.numpy_bert", "slimbench.worker"))))
def test_formats_and_runtimes_never_reach_the_build(module):
    build = sorted(m for m in reach(module) if m.startswith("slimbench.build"))
    assert not build, f"{module} reaches {build}"


@pytest.mark.parametrize("module", ["slimbench.gate", "slimbench.gate_rules", "slimbench.report",
                                    "slimbench.report_summary", "slimbench.report_plots", "slimbench.compare",
                                    "slimbench.results", "slimbench.stats"])
def test_gate_and_report_read_results_only(module):
    banned = ("slimbench.build", "slimbench.runtime", "slimbench.torch_io", "slimbench.numpy_bert",
              "slimbench.worker", "slimbench.probes", "slimbench.plugin")
    bad = sorted(m for m in reach(module) if m.startswith(banned))
    assert not bad, f"{module} reaches {bad}"
