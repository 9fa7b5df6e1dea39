"""Arguments of an installed release newer than any modelled one, read from its source (source_fields.py,
installed_release.py): synthetic installed packages put first on sys.path, the reader against Python's own
``dataclasses`` on generated sources, against fields.json on sources generated from it, and (with
LF_LINT_GROUNDTRUTH=1) against fields.json on the real releases of the ground-truth environments."""

from __future__ import annotations

import dataclasses
import importlib
import json
import os
import sys
import textwrap
from pathlib import Path

import pytest

from lf_lint import installed_release, source_fields, versions
from lf_lint.cli import main
from lf_lint.engine import LintOptions, lint_file
from lf_lint.pysource import Packages
from lf_lint.schema import COMMAND_GROUPS, database, field_table
from lf_lint.versions import SUPPORTED_LLAMAFACTORY, Target

ROOT = Path(__file__).resolve().parent.parent

# A LLaMA-Factory newer than any modelled: ModelArguments with mixins from two modules, an init=False field,
# a ClassVar, an Enum from extras, a Literal; TrainingArguments on transformers' Seq2SeqTrainingArguments;
# an infer-only group lf-lint does not know.
LLAMAFACTORY = {
    "llamafactory/__init__.py": "",
    "llamafactory/extras/__init__.py": "",
    "llamafactory/extras/constants.py": """
        from enum import Enum

        class EngineName(str, Enum):
            HF = "huggingface"
            VLLM = "vllm"
    """,
    "llamafactory/hparams/__init__.py": """
        from .data_args import DataArguments
        from .finetuning_args import FinetuningArguments
        from .generating_args import GeneratingArguments
        from .model_args import ModelArguments
        from .training_args import TrainingArguments
    """,
    "llamafactory/hparams/quant_args.py": """
        from dataclasses import dataclass, field
        from typing import Optional

        @dataclass
        class QuantizationArguments:
            quantization_bit: Optional[int] = field(default=None, metadata={"help": "The number of bits."})
    """,
    "llamafactory/hparams/model_args.py": """
        from dataclasses import dataclass, field
        from typing import ClassVar, Optional

        import torch

        from ..extras.constants import EngineName
        from .quant_args import QuantizationArguments

        @dataclass
        class BaseModelArguments:
            model_name_or_path: Optional[str] = None
            infer_backend: EngineName = field(default=EngineName.HF)

        @dataclass
        class ModelArguments(QuantizationArguments, BaseModelArguments):
            new_model_option: int = field(default=3, metadata={"help": "Added in 0.9.99."})
            compute_dtype: Optional[torch.dtype] = field(default=None, init=False)
            registry: ClassVar[dict] = {}
    """,
    "llamafactory/hparams/data_args.py": """
        from dataclasses import dataclass
        from typing import Optional

        @dataclass
        class DataArguments:
            dataset: Optional[str] = None
            template: Optional[str] = None
            cutoff_len: int = 2048
    """,
    "llamafactory/hparams/finetuning_args.py": """
        from dataclasses import dataclass
        from typing import Literal

        @dataclass
        class FinetuningArguments:
            stage: Literal["pt", "sft"] = "sft"
            finetuning_type: Literal["lora", "full"] = "lora"
            new_mode: Literal["fast", "slow"] = "fast"
    """,
    "llamafactory/hparams/generating_args.py": """
        from dataclasses import dataclass

        @dataclass
        class GeneratingArguments:
            max_new_tokens: int = 1024
    """,
    "llamafactory/hparams/training_args.py": """
        from dataclasses import dataclass

        from transformers import Seq2SeqTrainingArguments

        @dataclass
        class TrainingArguments(Seq2SeqTrainingArguments):
            ray_num_workers: int = 1
    """,
    "llamafactory/hparams/parser.py": """
        from dataclasses import dataclass

        from .data_args import DataArguments
        from .finetuning_args import FinetuningArguments
        from .generating_args import GeneratingArguments
        from .model_args import ModelArguments
        from .training_args import TrainingArguments

        @dataclass
        class _SpeculativeArguments:
            draft_model: str = "none"

        _TRAIN_ARGS = [ModelArguments, DataArguments, TrainingArguments, FinetuningArguments, GeneratingArguments]
        _INFER_ARGS = [ModelArguments, DataArguments, FinetuningArguments, GeneratingArguments, _SpeculativeArguments]
    """,
}

# A transformers newer than any modelled, with its lazy __init__ (only TYPE_CHECKING imports the class).
TRANSFORMERS = {
    "transformers/__init__.py": """
        from typing import TYPE_CHECKING

        _import_structure = {"training_args_seq2seq": ["Seq2SeqTrainingArguments"]}
        if TYPE_CHECKING:
            from .training_args_seq2seq import Seq2SeqTrainingArguments
        else:
            import sys
            sys.modules[__name__] = None
    """,
    "transformers/utils/__init__.py": "from .generic import ExplicitEnum\n",
    "transformers/utils/generic.py": """
        from enum import Enum

        class ExplicitEnum(str, Enum):
            pass
    """,
    "transformers/trainer_utils.py": """
        from .utils import ExplicitEnum

        class SchedulerType(ExplicitEnum):
            LINEAR = "linear"
            COSINE = "cosine"
    """,
    "transformers/training_args.py": """
        from dataclasses import dataclass, field
        from typing import Optional, Union

        from .trainer_utils import SchedulerType

        @dataclass
        class TrainingArguments:
            output_dir: Optional[str] = None
            do_train: bool = False
            per_device_train_batch_size: int = 8
            gradient_accumulation_steps: int = 1
            learning_rate: float = 5e-5
            num_train_epochs: float = 3.0
            max_steps: int = -1
            lr_scheduler_type: Union[SchedulerType, str] = field(default="linear")
            warmup_steps: float = 0
            logging_steps: float = 500
            save_steps: float = 500
            brand_new_tf_option: bool = field(default=False, metadata={"help": "Added in 5.99."})
            _n_gpu: int = field(init=False, repr=False, default=-1)
    """,
    "transformers/training_args_seq2seq.py": """
        from dataclasses import dataclass

        from .training_args import TrainingArguments

        @dataclass
        class Seq2SeqTrainingArguments(TrainingArguments):
            predict_with_generate: bool = False
    """,
}

CONFIG = """\
model_name_or_path: Qwen/Qwen3-0.6B
stage: sft
do_train: true
finetuning_type: lora
dataset: identity
template: qwen3
output_dir: saves/qwen3
per_device_train_batch_size: 1
learning_rate: 1.0e-4
new_model_option: 4
new_mode: slow
brand_new_tf_option: true
"""


def write_tree(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")


def dist_info(root: Path, name: str, version: str) -> None:
    folder = root / f"{name}-{version}.dist-info"
    folder.mkdir(parents=True)
    (folder / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")


def forget_installed() -> None:
    versions._installed_versions.cache_clear()
    installed_release._MEMO.clear()
    field_table.cache_clear()


@pytest.fixture
def site(tmp_path, monkeypatch):
    """A site-packages folder first on sys.path (its packages are only read, never imported)."""
    folder = tmp_path / "site-packages"
    folder.mkdir()
    monkeypatch.syspath_prepend(str(folder))
    monkeypatch.setenv("LF_LINT_CACHE_DIR", str(tmp_path / "cache"))
    forget_installed()
    yield folder
    monkeypatch.undo()
    forget_installed()


@pytest.fixture
def newer(site):
    write_tree(site, {**LLAMAFACTORY, **TRANSFORMERS})
    dist_info(site, "llamafactory", "0.9.99")
    dist_info(site, "transformers", "5.99.0")
    return site


def lint_text(text: str, **options):
    return lint_file("cfg.yaml", LintOptions(count_datasets=False, **options), text=text)


def codes(result, code: str) -> list[str]:
    return [d.message for d in result.diagnostics if d.code == code]


def test_newer_releases_accept_their_own_arguments_with_a_note(newer):
    result = lint_text(CONFIG)
    assert not codes(result, "LF101") and not codes(result, "LF102") and not codes(result, "LF000")
    assert result.resolution.target == Target(SUPPORTED_LLAMAFACTORY[-1], versions.NEWEST_TRANSFORMERS)
    notes = " ".join(result.resolution.notes)
    assert (
        "LLaMA-Factory 0.9.99 is newer than any modelled release: its arguments are read from its installed source"
        in notes
    )
    assert "new_model_option" in notes and "new_mode" in notes and "ray_num_workers" not in notes.split("gone")[0]
    minor = ".".join(versions.NEWEST_TRANSFORMERS.split(".")[:2])
    assert (
        f"transformers 5.99.0 is newer than any modelled release: its arguments are read from its installed source (1 not in {minor}: brand_new_tf_option;"
        in notes
    )
    assert f"rules and step arithmetic are transformers {minor}'s." in notes


def test_the_cli_prints_the_note(newer, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "cfg.yaml").write_text(CONFIG)
    main(["--isolated", "--no-datasets", "--format", "concise", "cfg.yaml"])
    out = capsys.readouterr().out
    assert "transformers 5.99.0 is newer than any modelled release" in out and "LF101" not in out


def test_a_misspelled_key_is_still_unknown(newer):
    result = lint_text(CONFIG + "new_model_optoin: 5\n")
    [message] = codes(result, "LF101")
    assert "new_model_optoin" in message
    assert [d.fix for d in result.diagnostics if d.code == "LF101"] == ["did you mean `new_model_option`?"]


def test_the_source_types_are_checked(newer):
    result = lint_text(
        CONFIG.replace("new_mode: slow", "new_mode: medium").replace("new_model_option: 4", "new_model_option: '4'")
    )
    assert any("new_mode: medium" in m and "'fast', 'slow'" in m for m in codes(result, "LF104"))  # a Literal
    assert any("`new_model_option` is the string '4'" in m for m in codes(result, "LF103"))
    boolean = lint_text(CONFIG.replace("brand_new_tf_option: true", "brand_new_tf_option: 1"))
    assert any("`brand_new_tf_option` must be a boolean" in m for m in codes(boolean, "LF103"))


def test_init_false_fields_and_class_variables_are_refused(newer):
    result = lint_text(CONFIG + "compute_dtype: bf16\nregistry: {}\n")
    assert any("compute_dtype" in m and "set by LLaMA-Factory itself" in m for m in codes(result, "LF101"))
    assert any("unknown key `registry`" in m for m in codes(result, "LF101"))


def test_an_argument_the_newer_release_dropped_is_refused(newer):
    result = lint_text(CONFIG + "warmup_ratio: 0.1\nlora_rank: 8\n")
    dropped = " ".join(codes(result, "LF102"))
    assert "`warmup_ratio` is not an argument of LLaMA-Factory 0.9.99, transformers 5.99.0 (installed" in dropped
    assert "`lora_rank` is not an argument" in dropped
    minor = ".".join(versions.NEWEST_TRANSFORMERS.split(".")[:2])
    assert f"of {minor}'s gone: " in " ".join(result.resolution.notes)


def test_a_group_only_the_installed_parser_knows(newer):
    result = lint_file("cfg.yaml", LintOptions(count_datasets=False, command="chat"),
                       text="model_name_or_path: m\ntemplate: qwen3\ndraft_model: small\ninfer_backend: vllm\n")  # fmt: skip
    assert not codes(result, "LF101") and not codes(result, "LF102")
    assert any("draft_model" in m for m in codes(lint_text(CONFIG + "draft_model: small\n"), "LF101"))  # not train's


@pytest.mark.parametrize(
    "damage",
    [
        {"llamafactory/hparams/model_args.py": "def broken(:\n    pass\n"},
        {"llamafactory/hparams/model_args.py": "x = 1\n\x00\x00"},
        {"llamafactory/hparams/model_args.py": "\ufeff\udcff"},
        {"llamafactory/hparams/model_args.py": "from .nowhere import ModelArguments\n"},
        {"llamafactory/hparams/model_args.py": "class ModelArguments(ModelArguments):\n    pass\n"},
    ],
    ids=["syntax", "null-bytes", "undecodable", "missing-module", "self-inheritance"],
)
def test_an_unreadable_source_gives_a_note_not_a_traceback(newer, damage):
    for name, text in damage.items():
        (newer / name).write_bytes(text.encode("utf-8", "surrogateescape"))
    result = lint_text(CONFIG)
    assert not codes(result, "LF000")
    note = next(n for n in result.resolution.notes if n.startswith("LLaMA-Factory 0.9.99 is newer"))
    assert "read in part" in note and "still accepted" in note
    assert any("new_model_option" in m for m in codes(result, "LF101"))  # its class could not be read
    assert not any("`new_mode`" in m for m in codes(result, "LF101"))  # other groups were
    assert "lora_rank" not in " ".join(codes(lint_text(CONFIG + "lora_rank: 8\n"), "LF102"))  # incomplete: kept


def test_a_missing_package_folder_gives_a_note(site):
    dist_info(site, "transformers", "5.99.0")
    result = lint_text("model_name_or_path: m\nbrand_new_tf_option: true\n")
    note = next(n for n in result.resolution.notes if n.startswith("transformers 5.99.0 is newer"))
    assert "its installed source could not be read (the transformers package was not found)" in note
    assert codes(result, "LF101")


def test_modelled_releases_read_nothing(site, monkeypatch):
    write_tree(site, TRANSFORMERS)
    dist_info(site, "transformers", "5.6.0")
    monkeypatch.setattr(source_fields, "read_transformers", None)  # any read would fail
    assert installed_release.installed_arguments(Target("0.9.5", "5.6.0")) == ()
    result = lint_text("model_name_or_path: m\n")
    assert not [n for n in result.resolution.notes if "installed source" in n]
    assert not (Path(os.environ["LF_LINT_CACHE_DIR"]) / "source-fields").exists()


def test_another_release_asked_for_is_not_read_from_the_installed_one(newer):
    result = lint_text(CONFIG, transformers_version="5.6.0", llamafactory_version="0.9.5")
    assert not [n for n in result.resolution.notes if "installed source" in n]
    assert codes(result, "LF101")  # new_model_option, brand_new_tf_option: not arguments of 0.9.5 / 5.6


def test_the_read_is_cached_until_a_file_changes(newer, monkeypatch):
    lint_text(CONFIG)
    cached = sorted(p.name for p in (Path(os.environ["LF_LINT_CACHE_DIR"]) / "source-fields").iterdir())
    assert [n.split("-")[0] for n in cached] == ["llamafactory", "transformers"]
    forget_installed()

    def fail(roots):
        raise AssertionError("read again")

    monkeypatch.setattr(source_fields, "read_llamafactory", fail)
    monkeypatch.setattr(source_fields, "read_transformers", fail)
    assert not codes(lint_text(CONFIG), "LF101")  # from the cache
    forget_installed()
    args = newer / "llamafactory" / "hparams" / "generating_args.py"
    args.write_text(args.read_text() + "    newest_generation_option: int = 1\n")
    os.utime(args, ns=(args.stat().st_atime_ns, args.stat().st_mtime_ns + 10**9))
    with pytest.raises(AssertionError, match="read again"):
        lint_text(CONFIG)


def test_no_cache_writes_nothing(newer):
    assert not codes(lint_text(CONFIG, use_cache=False), "LF101")
    assert not (Path(os.environ["LF_LINT_CACHE_DIR"]) / "source-fields").exists()


def test_a_newer_commit_of_a_modelled_main_is_read(site, monkeypatch):
    main_release = next((v for v in SUPPORTED_LLAMAFACTORY if v in getattr(versions, "MAIN_COMMITS", {})), None)
    if main_release is None:
        pytest.skip("no development release is modelled")
    write_tree(site, {**LLAMAFACTORY, **TRANSFORMERS})
    dist_info(site, "llamafactory", main_release)
    dist_info(site, "transformers", versions.NEWEST_TRANSFORMERS)
    modelled = versions.MAIN_COMMITS[main_release][0]
    monkeypatch.setattr(versions, "installed_checkout_commit", lambda name: modelled)
    assert installed_release.installed_arguments(Target(main_release, versions.NEWEST_TRANSFORMERS)) == ()
    monkeypatch.setattr(versions, "installed_checkout_commit", lambda name: "0123456789abcdef")
    [source] = installed_release.installed_arguments(Target(main_release, versions.NEWEST_TRANSFORMERS))
    assert source.distribution == "llamafactory" and "new_model_option" in source.rows("train", COMMAND_GROUPS["train"])


# ---------------------------------------------------------------- the reader against Python's dataclasses

ORACLE = {
    "lflint_oracle/__init__.py": "",
    "lflint_oracle/kinds.py": """
        from __future__ import annotations

        import enum

        class Color(enum.Enum):
            RED = "red"
            BLUE = "blue"
            CRIMSON = "red"

        class Level(enum.IntEnum):
            LOW = 1
            HIGH = 2

        class Mode(enum.StrEnum):
            FAST = enum.auto()
            SLOW = enum.auto()
    """,
    "lflint_oracle/mixins.py": """
        import dataclasses
        import pathlib
        import typing as t
        from dataclasses import InitVar, KW_ONLY, field

        from .kinds import Color, Level

        LIMIT = 10
        NAME = "x" + "y"

        class Plain:
            not_a_field: int = 3

        @dataclasses.dataclass
        class A:
            shared: int = 1
            color: Color = Color.BLUE
            level: t.Optional[Level] = None
            path: t.Optional[pathlib.Path] = None
            limit: int = LIMIT * 2
            name: str = NAME
            seed: InitVar[int] = 0

        @dataclasses.dataclass
        class B(A):
            shared: str = "b"
            tags: t.List[str] = field(default_factory=list)
            extra: "t.Dict[str, t.Any]" = field(default_factory=lambda: {"k": [1, 2]})
            _: KW_ONLY
            late: float = -1.5

        @dataclasses.dataclass
        class C(A, Plain):
            shared: t.Union[int, str, None] = None
            hidden: int = field(default=0, init=False)
            either: t.Union[Color, str] = "red"
            both: t.Optional[t.Union[t.Literal[1, 2], t.Literal["x"]]] = None
    """,
    "lflint_oracle/args.py": """
        from __future__ import annotations

        from dataclasses import dataclass, field
        from typing import Any, ClassVar, Literal

        from .kinds import Mode
        from .mixins import B, C, Plain

        @dataclass
        class D(C, B):
            counter: ClassVar[int] = 0
            mode: Mode = Mode.FAST
            pick: Literal["p", "q"] | None = "p"
            anything: Any = None
            number: int | float = 1
            required: str = field(kw_only=True, metadata={"help": "Must " "be given."})

        class NotData(D):
            ignored: int = 1

        @dataclass
        class E(NotData):
            own: bool = False
    """,
}


@pytest.mark.skipif(sys.version_info < (3, 11), reason="the generated code uses StrEnum and X | Y annotations")
def test_the_reader_agrees_with_dataclasses(tmp_path, monkeypatch):
    write_tree(tmp_path, ORACLE)
    packages = Packages([str(tmp_path)], ("lflint_oracle",))
    reader = source_fields.DataclassReader(packages)
    monkeypatch.syspath_prepend(str(tmp_path))  # the test's own generated code, imported for the oracle
    sys.path_importer_cache.clear()
    sys.path.insert(0, str(ROOT / "tools"))
    environ = dict(os.environ)
    try:
        extract = importlib.import_module("extract_fields")  # the tool that makes fields.json
        module = importlib.import_module("lflint_oracle.args")
    finally:
        sys.path.remove(str(ROOT / "tools"))
        os.environ.clear()
        os.environ.update(environ)  # extract_fields sets HF_HUB_OFFLINE and the like for its own runs
        sys.modules.pop("extract_fields", None)
    for name in ("D", "E"):
        ref = packages.member(packages.module_ref("lflint_oracle.args"), name)
        mine = reader.rows(ref, "G")
        theirs = {row["name"]: row for row in extract.describe(getattr(module, name), "G")}
        assert list(mine) == list(theirs)  # the same fields, in the same order
        for field_name, row in theirs.items():
            for key in ("json_types", "choices", "default", "init", "help", "defined_in"):
                assert mine[field_name][key] == row[key], (name, field_name, key)
    assert dataclasses.fields(module.E)[-1].name == "own"
    for name in [m for m in list(sys.modules) if m == "lflint_oracle" or m.startswith("lflint_oracle.")]:
        del sys.modules[name]


def _generated_release(root: Path, lf_release: str, tf_minor: str) -> dict[str, set[str]]:
    """Sources shaped like the releases' (mixins in several modules, LF's TrainingArguments on transformers'
    Seq2SeqTrainingArguments on TrainingArguments) holding fields.json's names for them; returns group -> names."""
    db = database()
    groups: dict[str, set[str]] = {}
    for name, variants in db["llamafactory_fields"].items():
        variant = next((v for v in variants if lf_release in v["versions"]), None)
        if variant is not None:
            groups.setdefault(variant["group"], set()).add(name)
    tf = {n for n, vs in db["transformers_fields"].items() if any(tf_minor in v["versions"] for v in vs)}
    seq2seq = {"sortish_sampler", "predict_with_generate", "generation_max_length", "generation_num_beams",
               "generation_config"} & tf  # fmt: skip
    files = {
        "transformers/__init__.py": "if False:\n    from .training_args_seq2seq import Seq2SeqTrainingArguments\n",
        "transformers/training_args.py": _dataclass_source("TrainingArguments", "", tf - seq2seq),
        "transformers/training_args_seq2seq.py": "from .training_args import TrainingArguments\n"
        + _dataclass_source("Seq2SeqTrainingArguments", "TrainingArguments", seq2seq),
        "llamafactory/__init__.py": "",
    }
    imports = []
    for group, names in groups.items():
        ordered = sorted(names)
        half = len(ordered) // 2
        module = f"llamafactory/hparams/{group.lower()}.py"
        base, prelude = f"{group}Mixin", f"from .mixins_{group.lower()} import {group}Mixin\n"
        if group == "TrainingArguments":
            base, prelude = (
                f"{base}, Seq2SeqTrainingArguments",
                f"{prelude}from transformers import Seq2SeqTrainingArguments\n",
            )
        files[f"llamafactory/hparams/mixins_{group.lower()}.py"] = _dataclass_source(
            f"{group}Mixin", "", set(ordered[:half])
        )
        files[module] = prelude + _dataclass_source(group, base, set(ordered[half:]))
        imports.append(f"from .{group.lower()} import {group}\n")
    files["llamafactory/hparams/__init__.py"] = "".join(imports)
    write_tree(root, files)
    return {**groups, "transformers": tf}


def _dataclass_source(name: str, base: str, fields: set[str]) -> str:
    body = "".join(f"    {f}: int = 0\n" for f in sorted(fields)) or "    pass\n"
    return f"from dataclasses import dataclass\n\n@dataclass\nclass {name}({base}):\n{body}"


@pytest.mark.parametrize("lf_release,tf_minor", [("0.9.2", "4.49"), (SUPPORTED_LLAMAFACTORY[-1], "5.6")])
def test_the_reader_finds_every_name_of_fields_json(tmp_path, lf_release, tf_minor):
    expected = _generated_release(tmp_path, lf_release, tf_minor)
    read = source_fields.read_llamafactory([str(tmp_path)])
    assert read.complete and not read.problems
    for group in COMMAND_GROUPS["train"]:
        owned = {n for n, r in read.groups[group].items() if r["owner"] == "llamafactory"}
        assert owned == expected.get(group, set()), group
    tf = source_fields.read_transformers([str(tmp_path)])
    assert set(tf.groups["TrainingArguments"]) == expected["transformers"]
    lf_tf = {n for n, r in read.groups["TrainingArguments"].items() if r["owner"] == "transformers"}
    assert lf_tf == expected["transformers"] - expected["TrainingArguments"]


# ---------------------------------------------------------------- the real releases (ground-truth environments)

GROUNDTRUTH = os.environ.get("LF_LINT_GROUNDTRUTH") == "1"


def _groundtruth_envs():
    sys.path.insert(0, str(ROOT / "tests" / "groundtruth"))
    try:
        return importlib.import_module("envs")
    finally:
        sys.path.remove(str(ROOT / "tests" / "groundtruth"))


GT_ENVS = [
    n for n in os.environ.get("LF_LINT_GT_ENVS", ",".join(sorted(_groundtruth_envs().VERSION_SETS))).split(",") if n
]


def _site_packages(env_name: str) -> Path | None:
    envs = _groundtruth_envs()
    python = envs.env_python(env_name, envs.default_root())
    found = sorted(python.parent.parent.glob("lib/python*/site-packages"))
    return found[0] if found else None


@pytest.mark.skipif(not GROUNDTRUTH, reason="set LF_LINT_GROUNDTRUTH=1 to read the real releases")
@pytest.mark.parametrize("env_name", GT_ENVS)
def test_the_reader_matches_fields_json_on_the_real_releases(env_name):
    site = _site_packages(env_name)
    if site is None or not any(site.glob("llamafactory-*.dist-info")):
        pytest.skip(f"{env_name} is not built")
    lf_release = next(site.glob("llamafactory-*.dist-info")).name.split("-")[1][: -len(".dist")]
    tf_release = next(site.glob("transformers-*.dist-info")).name.split("-")[1][: -len(".dist")]
    tf_minor = ".".join(tf_release.split(".")[:2])
    db = database()
    read = source_fields.read_llamafactory([str(site)])
    assert read.complete, read.problems
    for group in {v["group"] for vs in db["llamafactory_fields"].values() for v in vs}:
        expected = {n for n, vs in db["llamafactory_fields"].items()
                    if any(lf_release in v["versions"] and v["group"] == group for v in vs)}  # fmt: skip
        owned = {n for n, r in read.groups.get(group, {}).items() if r["owner"] == "llamafactory"}
        assert owned == expected, (group, sorted(owned ^ expected))
    tf = source_fields.read_transformers([str(site)])
    expected = {n for n, vs in db["transformers_fields"].items() if any(tf_minor in v["versions"] for v in vs)}
    assert tf.complete and set(tf.groups["TrainingArguments"]) == expected, sorted(
        set(tf.groups["TrainingArguments"]) ^ expected
    )
    print(json.dumps({"env": env_name, "llamafactory": lf_release, "transformers": tf_release}))
