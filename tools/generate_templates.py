"""Regenerate ``lf_lint/data/templates.json``: LLaMA-Factory's chat templates, per release.

    python tools/generate_templates.py [--groundtruth-root DIR]

For every release in tools/generate_schema.py::LLAMAFACTORY_RELEASES it imports
``llamafactory.data.template.TEMPLATES`` in that release's ground-truth environment
(tools/extract_fields.py templates) and records what the supervised processors need to
count tokens: the formatter slots, default system prompt, stop and thought words and the
eos flags. A template that is the same in several releases is stored once.

The templates are LLaMA-Factory's (Apache-2.0, data/template.py); lf-lint stores them as
data to encode conversations the way LLaMA-Factory does.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
OUTPUT = ROOT / "lf_lint" / "data" / "templates.json"


def _load(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--groundtruth-root",
        type=Path,
        default=Path(os.environ.get("LF_LINT_GT_ROOT", Path.home() / ".cache" / "lf-lint-groundtruth")),
    )
    parser.add_argument("--release-python", action="append", default=[], metavar="VERSION=PATH",
                        help="the Python of an environment that has this LLaMA-Factory release (one not on PyPI)")  # fmt: skip
    args = parser.parse_args()
    schema_tool = _load("generate_schema", HERE / "generate_schema.py")
    pythons = schema_tool.release_pythons(args.release_python)
    # name -> field -> [{"releases": [...], "value": ...}]: a field that did not change is stored once
    templates: dict[str, dict[str, list[dict]]] = {}
    releases = list(schema_tool.LLAMAFACTORY_RELEASES)
    tool_prompts: dict[str, list[dict]] = {}  # prompt constant -> runs of releases, as for template fields
    for version, env_name in schema_tool.LLAMAFACTORY_RELEASES.items():
        python = schema_tool.release_python(version, env_name, args.groundtruth_root, pythons)
        data = schema_tool._extract(python, "templates")
        assert data["version"] == version, (data["version"], version)
        for name, value in data["tool_prompts"].items():
            runs = tool_prompts.setdefault(name, [])
            if runs and runs[-1]["value"] == value:
                runs[-1]["releases"].append(version)
            else:
                runs.append({"releases": [version], "value": value})
        for name, template in data["templates"].items():
            fields = templates.setdefault(name, {})
            for field, value in template.items():
                runs = fields.setdefault(field, [])
                if runs and runs[-1]["value"] == value:
                    runs[-1]["releases"].append(version)
                else:
                    runs.append({"releases": [version], "value": value})
    OUTPUT.write_text(
        json.dumps(
            {
                "format": 1,
                "generated_by": "tools/generate_templates.py",
                "source": "LLaMA-Factory data/template.py::TEMPLATES (Apache-2.0), read from each installed release",
                "releases": releases,
                "templates": dict(sorted(templates.items())),
                "tool_prompts": dict(sorted(tool_prompts.items())),
            },
            indent=None,
            separators=(",", ":"),
            sort_keys=True,
        )
        + "\n"
    )
    print(f"{OUTPUT}: {len(templates)} templates over {len(releases)} releases", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
