"""SARIF 2.1.0, for code-scanning services (GitHub code scanning, Azure DevOps, ...)."""

from __future__ import annotations

import json

from .. import __version__
from ..engine import FileResult
from ..rules import BY_CODE

_LEVEL = {"error": "error", "warning": "warning", "info": "note"}
SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"


def _rule_descriptor(code: str) -> dict:
    rule = BY_CODE[code]
    return {
        "id": rule.code,
        "name": rule.name,
        "shortDescription": {"text": rule.summary},
        "fullDescription": {"text": rule.what.strip()},
        "help": {"text": rule.documentation(), "markdown": rule.documentation()},
        "defaultConfiguration": {"level": _LEVEL[rule.severity.value]},
    }


def render(results: list[FileResult], **_: object) -> str:
    codes = sorted({d.code for r in results for d in r.diagnostics})
    index = {code: i for i, code in enumerate(codes)}
    sarif_results = []
    for result in results:
        for d in result.diagnostics:
            sarif_results.append(
                {
                    "ruleId": d.code,
                    "ruleIndex": index[d.code],
                    "level": _LEVEL[d.severity.value],
                    "message": {"text": d.message + (f" (help: {d.fix})" if d.fix else "")},
                    "locations": [
                        {
                            "physicalLocation": {
                                "artifactLocation": {"uri": d.path.replace("\\", "/")},
                                "region": {
                                    "startLine": d.line,
                                    "startColumn": d.column,
                                    "endLine": max(d.end_line, d.line),
                                    "endColumn": max(d.end_column, d.column + 1)
                                    if d.end_line <= d.line
                                    else d.end_column,
                                },
                            }
                        }
                    ],
                }
            )
    document = {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "lf-lint",
                        "version": __version__,
                        "informationUri": "https://pypi.org/project/lf-lint/",
                        "rules": [_rule_descriptor(code) for code in codes],
                    }
                },
                "results": sarif_results,
            }
        ],
    }
    return json.dumps(document, indent=2) + "\n"
