"""The machine-readable contract (documented in README.md): one JSON object for the whole run."""

from __future__ import annotations

import json

from ..engine import FileResult
from ..versions import Resolution


def _versions(resolution: Resolution) -> dict:
    target = resolution.target
    return {"llamafactory": target.llamafactory, "transformers": target.transformers, "source": resolution.source,
            "notes": list(resolution.notes)}  # fmt: skip


def file_record(result: FileResult) -> dict:
    return {
        "path": result.path,
        "kind": result.kind,
        "versions": _versions(result.resolution),
        "diagnostics": [d.to_dict() for d in result.diagnostics],
        "plan": result.plan.to_dict() if result.plan is not None else None,
        "memory": result.memory.to_dict() if result.memory is not None else None,
    }


def render(results: list[FileResult], **_: object) -> str:
    return json.dumps({"files": [file_record(r) for r in results]}, indent=2) + "\n"
