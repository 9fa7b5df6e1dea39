"""Regenerate lf-lint's argument database and JSON Schemas from the real dataclasses.

    python tools/generate_schema.py [--work DIR] [--only-merge]

Steps:
1. For every transformers release in TRANSFORMERS_RELEASES, install it (with the
   CPU build of torch) into one scratch environment and dump
   ``Seq2SeqTrainingArguments`` with tools/extract_fields.py.
2. For every LLaMA-Factory release, use the ground-truth environment of
   tests/groundtruth/envs.py and dump LF's five train groups, its templates,
   tool formats and dependency pins.
3. Merge the dumps into ``lf_lint/data/fields.json`` (one entry per field, with the
   versions it exists in), cut it into one table per release in ``lf_lint/data/fields/`` (what a lint reads at
   run time: the two tables of its target instead of the whole database) and write one editor schema per
   LLaMA-Factory release (``schemas/llamafactory-<v>.schema.json``, paired with the newest transformers
   that release allows) plus ``schemas/llamafactory.schema.json`` for the newest.

Dumps are cached in ``--work`` (``<work>/dumps/*.json``), so ``--only-merge``
rebuilds the outputs without reinstalling anything; ``--only-tables`` rewrites the per-release tables from the
shipped fields.json. When LLaMA-Factory or transformers releases, add the version below and rerun.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCHEMAS = ROOT / "schemas"
EXTRACTOR = ROOT / "tools" / "extract_fields.py"
DATABASE = ROOT / "lf_lint" / "data" / "fields.json"
TABLES = ROOT / "lf_lint" / "data" / "fields"

# The newest patch of every minor release in lf-lint's supported range. A minor's
# field set is taken from its newest patch (patches do not add arguments).
TRANSFORMERS_RELEASES = [
    "4.45.2", "4.46.3", "4.47.1", "4.48.3", "4.49.0", "4.50.3", "4.51.3", "4.52.4",
    "4.53.3", "4.54.1", "4.55.4", "4.56.2", "4.57.6",
    "5.0.0", "5.1.0", "5.2.0", "5.3.0", "5.4.0", "5.5.4", "5.6.0", "5.7.0", "5.8.1",
]  # fmt: skip

# LLaMA-Factory release -> ground-truth environment (tests/groundtruth/envs.py) to import it from. None: not on
# PyPI (main, as its README's git install gives it): pass the Python of an environment holding that checkout with
# ``--release-python 0.9.6.dev0=PATH``, and record the commit in lf_lint/versions.py (MAIN_COMMITS).
LLAMAFACTORY_RELEASES = {
    "0.9.2": "lf092-tf449",
    "0.9.3": "lf093-tf451",
    "0.9.4": "lf094-tf457",
    "0.9.5": "lf095-tf56",
    "0.9.6.dev0": None,
}


def _run(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    print("+", " ".join(cmd), file=sys.stderr)
    return subprocess.run(cmd, check=True, **kw)


def _extract(python: Path, kind: str) -> dict:
    env = dict(os.environ, DISABLE_VERSION_CHECK="1", HF_HUB_OFFLINE="1", CUDA_VISIBLE_DEVICES="")
    out = _run([str(python), str(EXTRACTOR), kind], capture_output=True, text=True, env=env)
    return json.loads(out.stdout)


def dump_transformers(work: Path) -> None:
    venv = work / "tf-extract"
    python = venv / "bin" / "python"
    if not python.exists():
        _run([sys.executable, "-m", "venv", str(venv)])
        _run([str(python), "-m", "pip", "install", "-q", "torch==2.13.0", "numpy"])
    for version in TRANSFORMERS_RELEASES:
        target = work / "dumps" / f"transformers-{version}.json"
        if target.exists():
            continue
        _run([str(python), "-m", "pip", "install", "-q", f"transformers=={version}", "accelerate"])
        data = _extract(python, "transformers")
        assert data["version"] == version, (data["version"], version)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(data, indent=1, sort_keys=True))


def release_pythons(items: list[str]) -> dict[str, Path]:
    """``--release-python VERSION=PATH`` options as a dict."""
    pythons = {}
    for item in items:
        version, _, path = item.partition("=")
        if not path:
            raise SystemExit(f"--release-python takes VERSION=PATH, not {item!r}")
        pythons[version] = Path(path)
    return pythons


def release_python(version: str, env_name: str | None, gt_root: Path, pythons: dict[str, Path]) -> Path:
    """The Python that has LLaMA-Factory ``version``: the one given for it, else its ground-truth environment."""
    if version in pythons:
        return pythons[version]
    if env_name is None:
        raise SystemExit(f"LLaMA-Factory {version} is not on PyPI: give --release-python {version}=PATH")
    spec = importlib.util.spec_from_file_location("gt_envs", ROOT / "tests" / "groundtruth" / "envs.py")
    envs = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(envs)
    return Path(envs.ensure_env(env_name, gt_root))


def dump_llamafactory(work: Path, gt_root: Path, pythons: dict[str, Path]) -> None:
    for version, env_name in LLAMAFACTORY_RELEASES.items():
        target = work / "dumps" / f"llamafactory-{version}.json"
        if target.exists():
            continue
        data = _extract(release_python(version, env_name, gt_root, pythons), "llamafactory")
        assert data["version"] == version, (data["version"], version)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(data, indent=1, sort_keys=True))


def _minor(version: str) -> str:
    return ".".join(version.split(".")[:2])


def _variants(rows_by_version: dict[str, dict]) -> list[dict]:
    """Collapse per-version rows of one field into runs of identical definitions."""
    variants: list[dict] = []
    for version, row in rows_by_version.items():
        shape = {k: row[k] for k in ("group", "json_types", "default", "choices", "init")}
        if variants and all(variants[-1][k] == v for k, v in shape.items()):
            variants[-1]["versions"].append(version)
            variants[-1]["help"] = row["help"] or variants[-1]["help"]
            variants[-1]["type"] = row["type"]
        else:
            variants.append({"versions": [version], **shape, "type": row["type"], "help": row["help"]})
    return variants


def merge(work: Path) -> dict:
    dumps = work / "dumps"
    tf_rows: dict[str, dict[str, dict]] = {}
    tf_versions = []
    scheduler_kwargs = {}
    for version in TRANSFORMERS_RELEASES:
        data = json.loads((dumps / f"transformers-{version}.json").read_text())
        tf_versions.append(_minor(version))
        scheduler_kwargs[_minor(version)] = data["scheduler_kwargs"]
        for row in data["fields"]:
            tf_rows.setdefault(row["name"], {})[_minor(version)] = row

    lf_rows: dict[str, dict[str, dict]] = {}
    lf_meta = {}
    for version in LLAMAFACTORY_RELEASES:
        data = json.loads((dumps / f"llamafactory-{version}.json").read_text())
        lf_meta[version] = {
            "extracted_with_transformers": data["transformers"],
            "requires": sorted(r for r in data["requires"] if "extra ==" not in r),
            "templates": data["templates"],
            "tool_formats": data["tool_formats"],
        }
        for row in data["fields"]:
            if row["defined_in"].startswith("llamafactory."):
                lf_rows.setdefault(row["name"], {})[version] = row

    return {
        "format": 1,
        "generated_by": "tools/generate_schema.py",
        "transformers_releases": TRANSFORMERS_RELEASES,
        "transformers_minors": tf_versions,
        "llamafactory_releases": lf_meta,
        "llamafactory_fields": {name: _variants(rows) for name, rows in sorted(lf_rows.items())},
        "transformers_fields": {name: _variants(rows) for name, rows in sorted(tf_rows.items())},
        "transformers_scheduler_kwargs": scheduler_kwargs,
    }


def write_tables(db: dict) -> None:
    """The per-release tables (lf_lint.schema.release_tables), one small JSON file each."""
    sys.path.insert(0, str(ROOT))
    from lf_lint.schema import release_tables

    TABLES.mkdir(exist_ok=True)
    for old in TABLES.glob("*.json"):
        old.unlink()
    for name, table in release_tables(db).items():
        (TABLES / name).write_text(json.dumps(table, indent=0, sort_keys=True) + "\n")


def write_outputs(db: dict) -> None:
    SCHEMAS.mkdir(exist_ok=True)
    DATABASE.write_text(json.dumps(db, indent=1, sort_keys=True) + "\n")
    write_tables(db)

    sys.path.insert(0, str(ROOT))
    from lf_lint import schema as schema_module
    from lf_lint.versions import DEFAULT_LLAMAFACTORY, Target, newest_transformers_for

    default = None
    for lf_version in db["llamafactory_releases"]:
        target = Target(lf_version, newest_transformers_for(lf_version))
        doc = schema_module.json_schema(target, database=db)
        text = json.dumps(doc, indent=1, sort_keys=False) + "\n"
        (SCHEMAS / f"llamafactory-{lf_version}.schema.json").write_text(text)
        if lf_version == DEFAULT_LLAMAFACTORY:
            default = text
    (SCHEMAS / "llamafactory.schema.json").write_text(default)  # the release `pip install llamafactory` gives


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, default=Path.home() / ".cache" / "lf-lint-schemagen")
    parser.add_argument(
        "--groundtruth-root",
        type=Path,
        default=Path(os.environ.get("LF_LINT_GT_ROOT", Path.home() / ".cache" / "lf-lint-groundtruth")),
    )
    parser.add_argument("--only-merge", action="store_true", help="reuse the cached dumps")
    parser.add_argument("--only-tables", action="store_true", help="rewrite lf_lint/data/fields/ from fields.json")
    parser.add_argument("--release-python", action="append", default=[], metavar="VERSION=PATH",
                        help="the Python of an environment that has this LLaMA-Factory release (one not on PyPI)")  # fmt: skip
    args = parser.parse_args()
    if args.only_tables:
        write_tables(json.loads(DATABASE.read_text()))
        return 0
    if not args.only_merge:
        dump_transformers(args.work)
        dump_llamafactory(args.work, args.groundtruth_root, release_pythons(args.release_python))
    write_outputs(merge(args.work))
    return 0


if __name__ == "__main__":
    sys.exit(main())
