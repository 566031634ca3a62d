"""`verity eval`: measure the agent on a labelled manifest, clean or perturbed.

- manifest: read an evaluation CSV (path,label[,method,group,kind]), pick a training split.
- runner: run the agent's own face pipeline on each file (`Evaluator`).
- report: metrics overall / per kind / per method / per family, unknown shares, per-file
  rows, sweep tables, JSON (keys documented in agent/evaluation/report.py and README.md).
"""

from agent.evaluation.manifest import (
    EvalItem,
    ManifestError,
    SplitRule,
    limit_items,
    load_split_rule,
    read_eval_manifest,
    select_split,
)
from agent.evaluation.report import (
    build_report,
    build_sweep,
    format_report,
    format_sweep,
    metric_block,
    sweep_table,
    to_json,
)
from agent.evaluation.runner import Evaluator, FileResult, Perturbation, StillsPolicy

__all__ = [
    "EvalItem",
    "Evaluator",
    "FileResult",
    "ManifestError",
    "Perturbation",
    "SplitRule",
    "StillsPolicy",
    "build_report",
    "build_sweep",
    "format_report",
    "format_sweep",
    "limit_items",
    "load_split_rule",
    "metric_block",
    "read_eval_manifest",
    "select_split",
    "sweep_table",
    "to_json",
]
