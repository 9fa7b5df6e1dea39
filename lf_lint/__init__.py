"""lf-lint: pre-flight checks for LLaMA-Factory training configs.

    from lf_lint import lint
    for d in lint("train.yaml", num_gpus=8):
        print(d.code, d.severity.value, d.line, d.message)

Names are imported on first use, so ``import lf_lint`` stays cheap.
"""

from __future__ import annotations

__version__ = "0.1.0"
__all__ = ["Diagnostic", "LfLintError", "Plan", "Severity", "estimate_memory", "lint", "predict_steps", "suggest"]


def __getattr__(name: str):
    if name in ("lint", "predict_steps", "estimate_memory", "suggest", "LfLintError"):
        from . import api

        return getattr(api, name)
    if name == "Plan":
        from .plan import Plan

        return Plan
    if name in ("Diagnostic", "Severity"):
        from . import diagnostics

        return getattr(diagnostics, name)
    raise AttributeError(f"module 'lf_lint' has no attribute {name!r}")
