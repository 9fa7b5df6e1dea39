"""Rules about the datasets a config names: registry, files, content, mixing, splitting and drops.

They read the ``counts`` fact (lf_lint/dataset/counting.py), which resolves every name through
``dataset_info.json``, reads the files and applies LLaMA-Factory's converters and processors.
"""

from __future__ import annotations

import re

from ..diagnostics import Severity
from ..loading import Span
from .base import Context, Finding, Rule
from .schema_rules import _suggest

ERROR, WARNING, INFO = Severity.ERROR, Severity.WARNING, Severity.INFO


def name_span(ctx: Context, name: str | None) -> tuple:
    """(key, span) pointing at ``name`` inside `dataset:` or `eval_dataset:` (the whole value otherwise)."""
    for key in ("dataset", "eval_dataset"):
        value = ctx.args.raw(key)
        if isinstance(value, list) and name in value:
            return (key, value.index(name)), None
        if isinstance(value, str) and name and name in [n.strip() for n in value.split(",")]:
            span = ctx.config.value_span((key,))
            lines = ctx.config.lines
            if 1 <= span.line <= len(lines):
                text = lines[span.line - 1]
                match = re.search(rf"(?<![\w.-]){re.escape(name)}(?![\w.-])", text[span.column - 1 :])
                if match:
                    start = span.column + match.start()
                    return key, Span(span.line, start, span.line, start + len(name))
            return key, None
    return "dataset", None


def _finding(
    ctx: Context, dataset: str | None, message: str, location: str | None = None, fix: str | None = None
) -> Finding:
    """A finding about one named dataset, pointing at its name in the config."""
    key, span = name_span(ctx, dataset)
    where = f" ({location})" if location else ""
    prefix = f"dataset `{dataset}`: " if dataset else ""
    return Finding(prefix + message + where, key=key, at="value", span=span, fix=fix)


def _problems(ctx: Context, rule: str):
    counts = ctx.counts
    return [p for p in counts.problems if p.rule == rule] if counts is not None else []


def _check_unregistered(ctx: Context):
    registry = None
    for problem in _problems(ctx, "unregistered"):
        if registry is None:
            from ..dataset.registry import read_registry

            registry = read_registry(ctx.args.dataset_dir if ctx.args.dataset_dir is not None else "data", ctx.workdir)
        names = sorted(registry.entries or {})
        name = problem.dataset or ""
        fix = None
        if name.endswith((".json", ".jsonl", ".csv", ".parquet", ".arrow", ".txt")) or "/" in name:
            stem = re.sub(r"\.(jsonl?|csv|parquet|arrow|txt)$", "", name.split("/")[-1])
            registered = [
                n
                for n, e in (registry.entries or {}).items()
                if isinstance(e, dict) and str(e.get("file_name", "")).endswith(name.split("/")[-1])
            ]
            fix = (f"use the registered name `{registered[0]}`" if registered else
                   f"`dataset` takes names registered in dataset_info.json, not paths; add an entry like \"{stem}\": {{\"file_name\": \"{name.split('/')[-1]}\"}}")  # fmt: skip
        else:
            suggestion = _suggest(name, names)
            fix = (
                f"did you mean `{suggestion}`?"
                if suggestion
                else (f"registered: {', '.join(names[:8])}{', ...' if len(names) > 8 else ''}" if names else None)
            )
        where = registry.path if registry.path else "the registry"
        yield _finding(
            ctx, problem.dataset, f"LLaMA-Factory stops with: {problem.message} (looked in {where})", fix=fix
        )


UNREGISTERED = Rule(
    code="LF401",
    name="unregistered-dataset",
    severity=ERROR,
    summary="A `dataset`/`eval_dataset` name that dataset_info.json does not define.",
    what="Looks every name up in `<dataset_dir>/dataset_info.json` (relative to the launch directory), with the "
    "closest registered name as a suggestion; a file name or path given instead of a name gets the entry to add.",
    why="LLaMA-Factory resolves names only through the registry and stops with `Undefined dataset X in "
    "dataset_info.json.` after loading the tokenizer (hiyouga/LLaMA-Factory #4873, #5341, #5491).",
    upstream="data/parser.py::get_dataset_list (LLaMA-Factory 0.9.2-0.9.5).",
    check=_check_unregistered,
)


def _check_registry(ctx: Context):
    for problem in _problems(ctx, "registry"):
        yield _finding(ctx, problem.dataset, f"LLaMA-Factory stops with: {problem.message}",
                       fix="run from the directory that holds the data folder, or set dataset_dir (see --workdir)")  # fmt: skip


REGISTRY = Rule(
    code="LF402",
    name="dataset-registry",
    severity=ERROR,
    summary="`dataset_info.json` is missing, unreadable or malformed (or an entry cannot be used).",
    what="Reports a missing or invalid `<dataset_dir>/dataset_info.json` when datasets are named, entries without "
    "`file_name` or a hub url, and unknown `formatting` values.",
    why="`dataset_dir` defaults to `data` relative to the directory training is launched from; running from "
    "elsewhere (a notebook, a cluster job) fails (hiyouga/LLaMA-Factory #7703).",
    upstream="data/parser.py::get_dataset_list (LLaMA-Factory 0.9.2-0.9.5).",
    check=_check_registry,
)


def _check_files(ctx: Context):
    for problem in _problems(ctx, "data-file"):
        yield _finding(ctx, problem.dataset, f"LLaMA-Factory stops with: {problem.message}")


DATA_FILES = Rule(
    code="LF403",
    name="dataset-file",
    severity=ERROR,
    summary="A dataset file or folder that is missing, of an unsupported type, or mixes types.",
    what="Checks the `file_name` of every named dataset: the file or folder must exist under `dataset_dir`, its "
    "extension must be arrow, csv, json, jsonl, parquet or txt, all files of a folder must share one type, and "
    "local files only have a `train` split.",
    why="LLaMA-Factory stops with `File X not found.`, `Allowed file types: ...` or `File types should be identical.`",
    upstream="data/loader.py::_load_single_dataset (LLaMA-Factory 0.9.2-0.9.5).",
    check=_check_files,
)


def _check_content(ctx: Context):
    for problem in _problems(ctx, "data-content"):
        yield _finding(ctx, problem.dataset, problem.message, problem.location)


DATA_CONTENT = Rule(
    code="LF404",
    name="dataset-content",
    severity=ERROR,
    summary="A dataset file LLaMA-Factory cannot load or convert (bad JSON, mixed column types, missing columns).",
    what="Reads the files like `datasets` and the converters do, and reports, with the file and line (or row): "
    "invalid JSON, non-UTF-8 text, empty files, a column holding strings in one row and numbers or objects in "
    "another, a column the configured converter needs but no row has (`columns` blocks reset every column they "
    "do not list), and rows the converter itself fails on.",
    why="Each of these ends the run with a traceback while the data is loaded, after the model download.",
    upstream="datasets `load_dataset` (json/csv/parquet/arrow/text builders) and data/converter.py (LLaMA-Factory 0.9.2-0.9.5).",
    check=_check_content,
)


def _check_stage(ctx: Context):
    for problem in _problems(ctx, "stage-mismatch"):
        yield _finding(ctx, problem.dataset, problem.message)


STAGE_MISMATCH = Rule(
    code="LF405",
    name="dataset-stage-mismatch",
    severity=ERROR,
    summary="Pairwise data for a stage that needs single responses, or the other way round.",
    what="Checks `ranking` of every dataset against the stage: rm and dpo need ranking (chosen/rejected) data; "
    "pt, sft, kto and ppo need non-ranking data.",
    why="LLaMA-Factory refuses the combination with `The dataset is not applicable in the current training stage.`",
    upstream="data/loader.py::_get_merged_dataset (LLaMA-Factory 0.9.2-0.9.5).",
    check=_check_stage,
)


def _check_drops(ctx: Context):
    counts = ctx.counts
    if counts is None:
        return
    for drop in counts.drops:
        where = ", ".join(drop.locations)
        yield _finding(
            ctx,
            drop.dataset,
            f"{drop.count:,} example(s) will be dropped: {drop.reason}" + (f" (first: {where})" if where else ""),
            fix="fix or remove these rows; LLaMA-Factory drops them silently (`Dropped invalid example`)",
        )


DROPPED = Rule(
    code="LF406",
    name="dropped-examples",
    severity=WARNING,
    summary="Rows the stage's processor will drop, with the reason and where they are.",
    what="Applies LLaMA-Factory's converter and the stage's keep/drop rule to every selected row: a missing or "
    "non-string response, a ShareGPT conversation with roles out of order or an odd number of turns, a KTO tag "
    "in SFT data, chosen/rejected that are not both given, ... Each reason is reported once per dataset with the "
    "first locations (file:line for JSON lines, the row index otherwise).",
    why="LLaMA-Factory drops such rows without stopping, so `Num examples` (and every step count) is smaller than "
    "the file suggests (hiyouga/LLaMA-Factory #6185, #4249).",
    upstream="data/processor/*.py::preprocess_dataset (LLaMA-Factory 0.9.2-0.9.5).",
    check=_check_drops,
)


def _check_no_valid(ctx: Context):
    for problem in _problems(ctx, "no-valid-examples"):
        key = (
            "dataset"
            if "training" in problem.message
            else ("val_size" if ctx.args.is_set("val_size") else "eval_dataset")
        )
        yield Finding(f"LLaMA-Factory stops with: {problem.message}", key=key, at="value")


NO_VALID = Rule(
    code="LF407",
    name="no-valid-examples",
    severity=ERROR,
    summary="Every training example is dropped.",
    what="Reports configs whose training set is empty after LLaMA-Factory's processor drops invalid rows (for "
    "instance KTO data used for SFT, or pre-training text without a response column).",
    why="LLaMA-Factory stops with `Cannot find valid samples, check data/README.md for the data format.`",
    upstream="data/loader.py::_get_preprocessed_dataset (LLaMA-Factory 0.9.2-0.9.5).",
    check=_check_no_valid,
)


def _check_split(ctx: Context):
    for problem in _problems(ctx, "val-size"):
        yield Finding(f"{problem.message} (val_size: {ctx.args.raw('val_size')!r}; an integer is a number of examples, a "
                      "float below 1 a fraction)", key="val_size", at="value")  # fmt: skip


VAL_SIZE = Rule(
    code="LF408",
    name="val-size-too-large",
    severity=ERROR,
    summary="`val_size` cannot be split off the data (larger than the data, or 1.0).",
    what="Computes the validation split as `Dataset.train_test_split` does: an integer `val_size` must be smaller "
    "than the number of examples, a float must lie in (0, 1) (`val_size: 1.0` is a float; `1` means one example).",
    why="datasets refuses the split with `test_size=... should be either positive and smaller than the number of "
    "samples ...` when the data has already been loaded.",
    upstream="data/data_utils.py::split_dataset and datasets `Dataset.train_test_split`.",
    check=_check_split,
)


def _check_mixing(ctx: Context):
    for problem in _problems(ctx, "mixing"):
        yield Finding(
            f"LLaMA-Factory stops with: {problem.message}",
            key="mix_strategy" if ctx.args.is_set("mix_strategy") else "interleave_probs",
            at="value",
        )


MIXING = Rule(
    code="LF409",
    name="dataset-mixing",
    severity=ERROR,
    summary="Datasets that cannot be mixed as configured (`interleave_once`, probabilities that do not sum to 1).",
    what="Reports `mix_strategy: interleave_once` (it needs datasets > 4.0.0, which LLaMA-Factory does not allow) "
    "and `interleave_probs` that numpy refuses, when several datasets are merged.",
    why="The merge happens after every dataset has loaded, so the error comes late.",
    upstream="data/data_utils.py::merge_dataset (LLaMA-Factory 0.9.2-0.9.5).",
    check=_check_mixing,
)


def _check_max_samples(ctx: Context):
    counts = ctx.counts
    if counts is None or not isinstance(ctx.args.max_samples, int):
        return
    for source in counts.sources:
        if (
            source.rows is not None
            and source.selected is not None
            and source.rows > ctx.args.max_samples
            and source.attr
            and source.attr.num_samples is None
        ):
            yield Finding(f"max_samples: {ctx.args.max_samples} uses the first {ctx.args.max_samples:,} of the {source.rows:,} rows of "
                          f"`{source.name}`", key="max_samples", at="value",
                          fix="remove max_samples to use all of it (it is a per-dataset cap, often left over from the examples)")  # fmt: skip


MAX_SAMPLES = Rule(
    code="LF410",
    name="max-samples-truncates",
    severity=INFO,
    summary="`max_samples` keeps only the first rows of a dataset.",
    what="Reports each dataset that has more rows than `max_samples`, which LLaMA-Factory truncates to its first "
    "`max_samples` rows (per dataset, train and eval alike).",
    why="LLaMA-Factory's examples set `max_samples: 1000`; configs copied from them silently train on a fraction of "
    "the data (hiyouga/LLaMA-Factory #5788, #7017).",
    check=_check_max_samples,
)


def _check_uncounted(ctx: Context):
    counts = ctx.counts
    if counts is None:
        return
    for source in counts.sources:
        if (
            source.attr is not None
            and source.attr.load_from != "file"
            and source.selected is None
            and source.role in ("train", "eval")
        ):
            online = " or run with --online to download its data files" if source.attr.load_from == "hf_hub" else ""
            yield _finding(ctx, source.name, f"{source.basis}; the step plan needs its size",
                           fix=f"give it with --num-examples {source.name}=ROWS (or the total with --num-examples N){online}")  # fmt: skip


UNCOUNTED = Rule(
    code="LF411",
    name="dataset-not-counted",
    severity=INFO,
    summary="A hub dataset lf-lint cannot count offline.",
    what="Reports datasets that live on a hub (`hf_hub_url`, `ms_hub_url`, `om_hub_url`) or behind a script and "
    "are not in the local cache, so the number of examples (and the step plan) is unknown.",
    why="lf-lint never downloads data unless asked; `--num-examples NAME=ROWS` makes the plan exact, and so does "
    "`--online` for a Hugging Face hub dataset that has data files.",
    check=_check_uncounted,
)


def _check_downloads(ctx: Context):
    for fetched in ctx.options.get("fetched") or ():
        key = "dataset" if fetched.what.startswith("dataset") else "model_name_or_path"
        if fetched.problem:
            message = f"--online could not download the {fetched.what}: {fetched.problem}; what needs it stays unknown or estimated"
        else:
            message = f"--online downloaded the {fetched.what} into the Hugging Face cache ({fetched.path})"
        yield Finding(message, key=key)


DOWNLOADS = Rule(
    code="LF415",
    name="online-download",
    severity=INFO,
    summary="What `--online` downloaded from the Hugging Face Hub, or could not.",
    what="With `--online`, lists the hub datasets (data files only) and model files (config, tokenizer, processor; no "
    "weights) lf-lint downloaded into the Hugging Face cache before counting, and the downloads that failed.",
    why="lf-lint touches the network only when asked; this says what it fetched and where, so nothing is silent.",
    check=_check_downloads,
)


def _check_streaming_workers(ctx: Context):
    a = ctx.args
    counts = ctx.counts
    if not a.streaming or ctx.target.llamafactory == "0.9.2" or counts is None:
        return
    local = [s for s in counts.sources if s.attr is not None and s.attr.load_from == "file"]
    if local and a.dataloader_num_workers == 0:
        yield Finding("streaming local files with dataloader_num_workers: 0 yields no rows (to_iterable_dataset(num_shards=0)); "
                      "training stops with a bare StopIteration", key="streaming",
                      fix="set dataloader_num_workers to 1 or more, or turn streaming off for local files")  # fmt: skip


STREAMING_WORKERS = Rule(
    code="LF412",
    name="streaming-local-files",
    severity=ERROR,
    summary="Streaming local files with `dataloader_num_workers: 0`.",
    what="Reports `streaming: true` over local dataset files while `dataloader_num_workers` is 0 (the default).",
    why="Since 0.9.3 LLaMA-Factory converts local files with `to_iterable_dataset(num_shards=dataloader_num_workers)`; "
    "zero shards yield nothing (hiyouga/LLaMA-Factory #8560, #8870, #9596).",
    upstream="data/loader.py::_load_single_dataset (LLaMA-Factory 0.9.3-0.9.5).",
    check=_check_streaming_workers,
)


def _check_tokenized(ctx: Context):
    a = ctx.args
    if not isinstance(a.tokenized_path, str) or not a.tokenized_path:
        return
    from ..dataset.tokenized import tokenized_folder

    saved = tokenized_folder(a.tokenized_path, ctx.workdir)
    if saved is None:
        if a.streaming:
            yield Finding("LLaMA-Factory stops with: Turn off `streaming` when saving dataset to disk.", key="streaming",
                          fix=f"turn streaming off for the run that writes {a.tokenized_path}")  # fmt: skip
        return
    counts = ctx.counts
    problem = next((p for p in counts.problems if p.rule == "tokenized"), None) if counts is not None else None
    if problem is not None:
        yield Finding(f"LLaMA-Factory stops in load_from_disk: {problem.message}", key="tokenized_path", at="value")
        return
    ignored = [
        k
        for k in ("dataset", "eval_dataset", "max_samples", "val_size", "cutoff_len", "packing", "mix_strategy")
        if a.is_set(k)
    ]
    if ignored:
        yield Finding(
            f"LLaMA-Factory warns: Loading dataset from disk will ignore other data arguments. ({saved} exists, so "
            f"{', '.join(ignored)} {'has' if len(ignored) == 1 else 'have'} no effect)",
            key="tokenized_path",
            at="value",
            severity=WARNING,
            fix="delete the folder to preprocess again with these settings, or drop the ignored keys",
        )


TOKENIZED = Rule(
    code="LF413",
    name="tokenized-path",
    severity=ERROR,
    summary="`tokenized_path` that shadows the dataset arguments, cannot be read, or cannot be written.",
    what="When `tokenized_path` is an existing, non-empty folder, LLaMA-Factory loads it and ignores `dataset`, "
    "`max_samples`, `val_size`, `cutoff_len`, ... (a warning naming the ignored keys; the step plan counts the "
    "saved rows); an unreadable folder is an error, and so is `streaming` when the folder is still to be written.",
    why="A stale tokenized dataset silently replaces the data the config names: edits to the dataset or the cut-off "
    "length change nothing until the folder is deleted.",
    upstream="data/loader.py::get_dataset (LLaMA-Factory 0.9.2-0.9.5).",
    check=_check_tokenized,
)


def _check_exact(ctx: Context):
    counts = ctx.counts
    if counts is None or counts.checked is None:
        return
    checked, (own_train, own_eval, own_exact) = counts.checked, counts.own
    if checked.problem:
        yield Finding(f"--exact could not ask LLaMA-Factory: {checked.problem}; the plan uses lf-lint's own count",
                      key="dataset", severity=INFO)  # fmt: skip
    elif own_exact and (own_train, own_eval) != (checked.train, checked.eval):
        yield Finding(f"lf-lint counted {own_train} training and {own_eval} eval examples, LLaMA-Factory {checked.llamafactory}'s "
                      f"pipeline {checked.train} and {checked.eval}: the plan uses LLaMA-Factory's; please report this difference",
                      key="dataset", severity=WARNING)  # fmt: skip
    elif not own_exact:
        yield Finding(f"LLaMA-Factory {checked.llamafactory}'s own pipeline makes {checked.train:,} training examples "
                      f"(lf-lint's estimate was {own_train if own_train is None else format(own_train, ',')})",
                      key="dataset", severity=INFO)  # fmt: skip


EXACT = Rule(
    code="LF414",
    name="exact-count",
    severity=INFO,
    summary="What `--exact` (LLaMA-Factory's own data pipeline) said about the example count.",
    what="With `--exact`, reports the count LLaMA-Factory's own pipeline produced when lf-lint had only an estimate "
    "(packing, length filtering), a failure to run it, and any difference from a count lf-lint considered exact.",
    why="Token-dependent counts need the tokenizer and the template; `--exact` gets them from LLaMA-Factory itself.",
    check=_check_exact,
)

RULES = [
    DOWNLOADS,
    UNREGISTERED,
    REGISTRY,
    DATA_FILES,
    DATA_CONTENT,
    STAGE_MISMATCH,
    DROPPED,
    NO_VALID,
    VAL_SIZE,
    MIXING,
    MAX_SAMPLES,
    UNCOUNTED,
    STREAMING_WORKERS,
    TOKENIZED,
    EXACT,
]
