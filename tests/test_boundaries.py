"""The layers the design promises, enforced on the import graph of every module.

- `engines` never imports `agent` (the agent depends on engines, not the reverse).
- Run-time modules never import training code or torch: training is `engines.train`,
  `engines.data`, `engines.models`, `engines.synthesis` and `engines.export` (the torch
  exporter). The demo (`agent.demo`) is evaluation, allowed to make its pseudo-fake with
  `engines.synthesis`.

Every import counts, including those inside functions: a lazy import of training code is
still a run-time path into it.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TRAINING = ("engines.train", "engines.data", "engines.models", "engines.synthesis",
            "engines.export", "torch", "torchvision")
MAY_USE_SYNTHESIS = ("agent.demo",)


def _is(module: str, prefixes) -> bool:
    return any(module == p or module.startswith(p + ".") for p in prefixes)


def import_edges() -> list[tuple[str, str]]:
    edges = []
    for package in ("agent", "engines"):
        for path in (ROOT / package).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            module = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if isinstance(node, ast.Import):
                    edges += [(module, alias.name) for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                    edges.append((module, node.module))
    return edges


def test_the_graph_is_read():
    edges = import_edges()
    assert ("agent.app", "agent.alerts.sink") in edges  # the walker sees real imports


def test_engines_never_import_the_agent():
    bad = sorted({(a, b) for a, b in import_edges() if _is(a, ("engines",)) and _is(b, ("agent",))})
    assert not bad, f"engines -> agent: {bad}"


def test_run_time_never_imports_training_code_or_torch():
    bad = sorted({
        (a, b) for a, b in import_edges()
        if not _is(a, TRAINING) and _is(b, TRAINING)
        and not (_is(a, MAY_USE_SYNTHESIS) and _is(b, ("engines.synthesis",)))
    })
    assert not bad, f"run time -> training: {bad}"
