"""lf-lint: pre-flight checks for LLaMA-Factory training configs."""

from __future__ import annotations

__version__ = "0.1.0"
