"""Regenerate ``lf_lint/data/switch_fields.json``: the arguments a launch switch adds to a train config that are
in no release lf-lint installs from PyPI.

    python tools/generate_switch_fields.py ROLL_CHECKOUT ROLL_COMMIT TRANSFORMERS_KT_DIR TRANSFORMERS_KT_VERSION

* ``mcore_adapter`` (``USE_MCA=1``): Megatron-Core's arguments of mcore_adapter's ``TrainingArguments``
  (``MegatronArguments`` and its bases), which LLaMA-Factory parses instead of its own ``TrainingArguments``.
  mcore_adapter is not on PyPI (alibaba/ROLL, ``mcore_adapter/``); give a checkout of ROLL and its commit.
* ``transformers_kt`` (``use_kt: true`` on LLaMA-Factory main): the ``TrainingArguments`` fields that
  transformers-kt (KTransformers' build of transformers, on PyPI) adds to transformers, such as ``kt_config``;
  give the folder an unpacked transformers-kt wheel is in.

Both are read as source (lf_lint/source_fields.py: parsed, never imported), with the JSON types, choices,
default and help lf-lint's schema uses. Nothing of either project is stored but these facts and where they
were read.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from lf_lint.pysource import Packages  # noqa: E402
from lf_lint.schema import database  # noqa: E402
from lf_lint.source_fields import DataclassReader, read_transformers  # noqa: E402

OUTPUT = ROOT / "lf_lint" / "data" / "switch_fields.json"
MCORE_SOURCE = "mcore_adapter/src/mcore_adapter/training_args.py"


def mcore_adapter(checkout: Path) -> dict:
    packages = Packages([str(checkout / "mcore_adapter" / "src")], ("mcore_adapter",))
    reader = DataclassReader(packages)
    ref = packages.member(packages.module_ref("mcore_adapter.training_args"), "MegatronArguments")
    if not reader.is_dataclass(ref):
        raise SystemExit(f"MegatronArguments not found as a dataclass in {checkout / MCORE_SOURCE}")
    return reader.rows(ref, "McaTrainingArguments")


def transformers_kt(folder: Path, base_minor: str) -> dict:
    read = read_transformers([str(folder)])
    if not read.complete:
        raise SystemExit(f"transformers-kt could not be read in full: {'; '.join(read.problems)}")
    known = {name for name, variants in database()["transformers_fields"].items()
             if any(base_minor in v["versions"] for v in variants)}  # fmt: skip
    return {name: row for name, row in read.groups["TrainingArguments"].items() if name not in known}


def _stored(rows: dict, group: str) -> dict:
    keep = ("type", "json_types", "choices", "default", "help", "init")
    return {name: {**{k: row.get(k) for k in keep}, "group": group} for name, row in sorted(rows.items())}


def main(argv: list[str]) -> int:
    if len(argv) != 4:
        print(__doc__, file=sys.stderr)
        return 2
    checkout, commit, kt_folder, kt_version = Path(argv[0]), argv[1], Path(argv[2]), argv[3]
    base_minor = ".".join(kt_version.split(".")[:2])  # transformers-kt 5.6.0.post6 builds on transformers 5.6
    data = {
        "format": 1,
        "generated_by": "tools/generate_switch_fields.py",
        "mcore_adapter": {"source": f"alibaba/ROLL {MCORE_SOURCE} at {commit}",
                          "fields": _stored(mcore_adapter(checkout), "McaTrainingArguments")},
        "transformers_kt": {"source": f"transformers-kt {kt_version} (PyPI), transformers/training_args.py, the "
                                      f"fields transformers {base_minor} lacks",
                            "fields": _stored(transformers_kt(kt_folder, base_minor), "TrainingArguments")},
    }  # fmt: skip
    OUTPUT.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
    print(f"{len(data['mcore_adapter']['fields'])} mcore_adapter and {len(data['transformers_kt']['fields'])} "
          f"transformers-kt fields -> {OUTPUT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
