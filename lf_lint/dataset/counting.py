"""Count the examples LLaMA-Factory will train and evaluate on (its printed ``Num examples``).

The pipeline of data/loader.py::get_dataset, per release:

* 0.9.4+: load each dataset (``num_samples``, ``max_samples``), convert, merge, split off
  ``val_size`` from the *raw* rows, then let the stage's processor drop invalid rows of each side
  (commit b0d49e137).
* 0.9.2-0.9.3: merge, convert, drop invalid rows, *then* split the surviving rows.

Counts that need token lengths (pre-training blocks, packed SFT) are packed_counts.py's: exact with
the model's local tokenizer, else estimates with their basis; everything else is exact.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import NamedTuple

from ..versions import releases
from . import cache, selection
from .cache import cached_scan
from .files import DataFiles, locate, locate_in_hub_cache
from .registry import DatasetAttr, Registry, dataset_dir_path, read_registry, resolve
from .scan import KEPT, Scan, scan
from .tokenized import read_tokenized, tokenized_folder

# config stage -> (get_dataset stage, ranking data required)
STAGE = {
    "pt": ("pt", False),
    "sft": ("sft", False),
    "rm": ("rm", True),
    "dpo": ("rm", True),
    "kto": ("kto", False),
    "ppo": ("ppo", False),
}
PROCESSOR = {"pt": "pt", "sft": "sft", "rm": "rm", "kto": "kto", "ppo": "unsupervised"}
SPLIT_BEFORE_PREPROCESSING = releases("0.9.4")
FORMATS = {"0.9.2": ("alpaca", "sharegpt"), "0.9.3": ("alpaca", "sharegpt")}  # 0.9.4+: also "openai"


class Problem(NamedTuple):
    """Something in the data LLaMA-Factory stops on (or warns about); ``rule`` names the rule that reports it."""

    rule: str
    message: str
    dataset: str | None = None  # the name in `dataset:` / `eval_dataset:` it concerns
    location: str | None = None
    fatal: bool = True


class Source(NamedTuple):
    """One dataset name as LLaMA-Factory loads it."""

    name: str
    role: str  # "train" or "eval"
    attr: DatasetAttr | None
    files: DataFiles | None
    scan: Scan | None
    rows: int | None  # rows in the files (None: unknown)
    selected: object  # numpy index array into the rows after num_samples/max_samples (None: unknown; Drawn from the
    # counts cache)
    basis: str  # how the rows were counted, or why they could not be


TO_DRAW = "to draw"  # Source.selected of a dataset whose rows are known, before _Builder.draw


class Drawn:
    """Source.selected from the counts cache (cache.load_counts): how many rows an earlier run drew, not which."""

    __slots__ = ("count",)

    def __init__(self, count: int):
        self.count = count

    def __len__(self) -> int:
        return self.count

    def __repr__(self) -> str:
        return f"Drawn({self.count})"


class DropSummary(NamedTuple):
    dataset: str
    reason: str
    count: int
    locations: tuple[str, ...]


class DatasetCount(NamedTuple):
    """One dataset name of `dataset:` / `eval_dataset:`: its rows, those num_samples/max_samples select, and the
    examples among them the stage's processor keeps (before merging, splitting and packing)."""

    name: str
    role: str  # "train" or "eval"
    rows: int | None
    selected: int | None
    examples: int | None


class Counts(NamedTuple):
    sources: tuple[Source, ...]
    num_examples: int | None  # training examples after merging, splitting and preprocessing
    num_eval_examples: int | None
    merged_rows: int | None  # training rows after merging, before split and drops
    exact: bool
    basis: str  # how num_examples was obtained, or why it is unknown
    problems: tuple[Problem, ...]
    drops: tuple[DropSummary, ...]
    checked: object = None  # exact.ExactCount when --exact asked LLaMA-Factory itself
    own: tuple | None = None  # (num_examples, num_eval_examples, exact) lf-lint counted before --exact
    eval_each: bool = False  # every eval dataset is evaluated apart (evaluates_each_dataset)
    datasets: tuple | None = None  # per_dataset(), when the counts come from the cache

    def most_images(self) -> int | None:
        """The most images one training example carries, when every training dataset was read and none has
        videos (None otherwise)."""
        scans = [source.scan for source in self.sources if source.role == "train"]
        if not scans or any(scan is None or scan.problem or scan.videos for scan in scans):
            return None
        return max(scan.most_images for scan in scans)

    def per_dataset(self) -> tuple[DatasetCount, ...]:
        if self.datasets is not None:
            return self.datasets
        out = []
        for source in self.sources:
            selected = len(source.selected) if source.selected is not None else None
            examples = None
            if selected is not None and source.scan is not None and source.scan.codes:
                examples = int((_keep_array(source) == KEPT).sum())
            out.append(DatasetCount(source.name, source.role, source.rows, selected, examples))
        return tuple(out)


def evaluates_each_dataset(args, target) -> bool:
    """Whether every eval dataset stays apart (a dict of eval sets): `eval_on_each_dataset` (0.9.3+); 0.9.2
    (data/loader.py::_get_merged_dataset, merge=training_args.do_predict) keeps them apart unless predicting."""
    if not args.eval_dataset:
        return False
    if target.llamafactory == "0.9.2":
        return not args.do_predict
    return bool(args.eval_on_each_dataset)


def _dataset_names(value: object) -> list | None:
    if value is None:
        return None
    if isinstance(value, str):
        return [item.strip() for item in value.split(",")]
    return list(value) if isinstance(value, list) else [value]


class _Builder:
    def __init__(self, args, target, workdir: Path, stage: str, given_rows: dict, use_cache: bool):
        self.args, self.target, self.workdir, self.given_rows = args, target, workdir, given_rows
        self.use_cache = use_cache
        self.get_dataset_stage, self.needs_ranking = STAGE.get(stage, ("sft", False))
        self.packing = args.packing and self.get_dataset_stage in ("pt", "sft")
        self.measure = None  # exact token lengths for packing (tokens.py, chat_template.py)
        self.measure_note = ""  # why packed lengths are estimated instead
        if self.packing:
            from .packed_counts import token_measure

            self.measure, self.measure_note = token_measure(args, target, workdir, self.get_dataset_stage)
        self.processor = PROCESSOR[self.get_dataset_stage]
        self.problems: list[Problem] = []
        self.rng = None
        self.scan_keys: list[str | None] = []  # the cache key of every scan read before the counts cache is asked

    def _global_rng(self):
        if self.rng is None:
            seed = self.args.seed if isinstance(self.args.seed, int) and not isinstance(self.args.seed, bool) else 42
            self.rng = selection.GlobalRng(seed)
        return self.rng

    def sources(self, names: list, role: str, registry: Registry) -> list[Source]:
        formats = FORMATS.get(self.target.llamafactory, ("alpaca", "sharegpt", "openai"))
        out = []
        for resolved in resolve(names, registry, formats=formats):
            if resolved.attr is None:
                rule = (
                    "unregistered"
                    if resolved.problem and resolved.problem.startswith("Undefined dataset")
                    else "registry"
                )
                if resolved.problem != registry.problem:  # an unreadable registry is reported once, not per name
                    self.problems.append(Problem(rule, resolved.problem or "cannot resolve", resolved.name))
                out.append(Source(resolved.name, role, None, None, None, None, None, resolved.problem or ""))
                continue
            out.append(self._load(resolved.attr, role))
        return out

    def _load(self, attr: DatasetAttr, role: str) -> Source:
        if attr.ranking != self.needs_ranking:
            kind = "ranking (pairwise)" if attr.ranking else "non-ranking"
            self.problems.append(Problem(
                "stage-mismatch",
                f"it is {kind} data, and stage {self.args.stage} needs "
                f"{'ranking' if self.needs_ranking else 'non-ranking'} data: LLaMA-Factory stops with "
                "`The dataset is not applicable in the current training stage.`",
                attr.name,
            ))  # fmt: skip
            return Source(attr.name, role, attr, None, None, None, None, "not loaded: wrong kind of data for the stage")
        if attr.name in self.given_rows:
            return self._given(attr, role, int(self.given_rows[attr.name]))
        cached = None
        if attr.load_from == "hf_hub" and not attr.subset and attr.split == "train":
            cached = locate_in_hub_cache(attr.dataset_name, attr.folder)
        if attr.load_from != "file" and cached is None:
            return Source(
                attr.name,
                role,
                attr,
                None,
                None,
                None,
                None,
                f"{attr.load_from.replace('_', ' ')} dataset {attr.dataset_name}: not counted offline",
            )
        if attr.split != "train":
            self.problems.append(
                Problem("data-file", f"Unknown split \"{attr.split}\". Should be one of ['train'].", attr.name)
            )
            return Source(attr.name, role, attr, None, None, None, None, "unknown split")
        files = cached or locate(
            dataset_dir_path(str(self.args.dataset_dir or "data"), self.workdir), attr.dataset_name
        )
        if files.problem:
            self.problems.append(Problem("data-file", files.problem, attr.name))
            return Source(attr.name, role, attr, files, None, None, None, files.problem)
        result = self.scan(files, attr, self._processor_for(role))
        if result.problem:
            self.problems.append(Problem("data-content", result.problem, attr.name, result.problem_location))
            return Source(attr.name, role, attr, files, result, None, None, result.problem)
        if result.rows == 0:
            self.problems.append(
                Problem(
                    "data-content",
                    'the dataset has no rows: datasets stops with `Instruction "train" corresponds to no data!`',
                    attr.name,
                )
            )
            return Source(attr.name, role, attr, files, result, 0, None, "no rows")
        where = files.paths[0] if len(files.paths) == 1 else f"{len(files.paths)} files in {files.paths[0].parent}"
        return Source(attr.name, role, attr, files, result, result.rows, TO_DRAW, f"{result.rows:,} rows in {where}")

    def draw(self, sources: list[Source]) -> list[Source]:
        """The rows num_samples and max_samples select from each dataset, drawn in the order LLaMA-Factory loads
        them (call it for the train datasets, then the eval ones)."""
        return [s._replace(selected=self._select(s.rows, s.attr)) if s.selected is TO_DRAW else s for s in sources]

    def _select(self, rows: int, attr: DatasetAttr):
        np = selection.numpy()
        indexes = np.arange(rows)
        if attr.num_samples is not None and not self.args.streaming:
            indexes = self._global_rng().num_samples(rows, int(attr.num_samples))
        return selection.truncate(indexes, self.args.max_samples if isinstance(self.args.max_samples, int) else None)

    def scan(self, files: DataFiles, attr: DatasetAttr, processor: str) -> Scan:
        return cached_scan(
            files,
            attr,
            processor,
            self.target.llamafactory,
            scan,
            self.use_cache,
            measure=(self.measure or True) if self.packing else False,
            keys=self.scan_keys,
        )

    def _given(self, attr: DatasetAttr, role: str, rows: int) -> Source:
        """Rows given with --num-examples NAME=N: every row counts as valid."""
        given = Scan(rows, bytes(rows), (), {}, {}, ())
        return Source(attr.name, role, attr, None, given, rows, TO_DRAW, f"{rows:,} rows given with --num-examples")

    def _processor_for(self, role: str) -> str:
        if role == "eval" and self.processor == "sft" and self.args.predict_with_generate:
            return "unsupervised"
        return self.processor


def _keep_array(source: Source):
    np = selection.numpy()
    codes = np.frombuffer(source.scan.codes, dtype=np.uint8)
    return codes[source.selected]


def _crashes(sources: list[Source], problems: list[Problem]) -> None:
    for source in sources:
        if source.scan is None or source.selected is None or not source.scan.crashes:
            continue
        selected = set(int(i) for i in source.selected)
        for row, (location, message) in sorted(source.scan.crashes.items()):
            if row in selected:
                problems.append(
                    Problem(
                        "data-content", f"LLaMA-Factory stops converting this row: {message}", source.name, location
                    )
                )
                break


def _drop_summaries(sources: list[Source]) -> list[DropSummary]:
    np = selection.numpy()
    out = []
    for source in sources:
        if source.scan is None or source.selected is None:
            continue
        codes = _keep_array(source)
        selected = set(int(i) for i in source.selected) if len(source.selected) != source.rows else None
        for index, reason in enumerate(source.scan.reasons):
            count = int(np.count_nonzero(codes == 1 + min(index, 253)))
            if not count:
                continue
            locations = tuple(
                loc for row, loc in source.scan.samples.get(index, ()) if selected is None or row in selected
            )[:3]
            out.append(DropSummary(source.name, reason, count, locations))
    return out


def _merge(args, sources: list[Source], seed: int, problems: list[Problem]):
    lengths = [len(s.selected) for s in sources]
    if len(sources) == 1:
        return selection.concatenate(lengths)
    strategy = str(args.mix_strategy or "concat")
    if strategy == "concat":
        return selection.concatenate(lengths)
    if strategy in ("interleave_under", "interleave_over"):
        from ..args import split_list

        probs = split_list(args.interleave_probs)
        try:
            probs = [float(p) for p in probs] if probs is not None else None
            return selection.interleave(lengths, probs, seed, oversample=strategy == "interleave_over")
        except (ValueError, TypeError) as exc:
            problems.append(Problem("mixing", f"interleave_datasets stops with: {exc}", None))
            return None
    if strategy == "interleave_once":
        problems.append(Problem("mixing", "interleave_once needs datasets > 4.0.0, and LLaMA-Factory pins datasets <= 4.0.0: "
                                          "`all_exhausted_without_replacement is not supported`", None))  # fmt: skip
        return None
    problems.append(Problem("mixing", f"Unknown mixing strategy: {strategy}.", None))
    return None


def _from_tokenized(saved) -> Counts:
    if saved.problem or saved.train is None:
        problem = saved.problem or f"the saved dataset at {saved.path} has no train split"
        return Counts((), None, None, None, False, problem, (Problem("tokenized", problem),), ())
    basis = f"the tokenized dataset saved at {saved.path} (LLaMA-Factory loads it and ignores dataset, max_samples, val_size, ...)"
    return Counts((), saved.train, saved.eval, saved.train, True, basis, (), ())


def count_examples(
    args, target, workdir: Path, stage: str, given_rows: dict | None = None, use_cache: bool = True
) -> Counts:
    """Everything ``get_dataset`` decides about the number of examples, without loading a model.

    ``given_rows`` gives the row count of datasets lf-lint cannot read (hub datasets not cached):
    their rows are taken as all valid.
    """
    saved = tokenized_folder(args.tokenized_path, workdir)
    if saved is not None:
        return _from_tokenized(read_tokenized(saved))
    builder = _Builder(args, target, workdir, stage, given_rows or {}, use_cache)
    train_names, eval_names = _dataset_names(args.dataset), _dataset_names(args.eval_dataset)
    registry = read_registry(args.dataset_dir if args.dataset_dir is not None else "data", workdir)
    if registry.problem and (train_names or eval_names) and registry.mode == "local":
        builder.problems.append(Problem("registry", registry.problem))
    train = builder.sources(train_names or [], "train", registry)
    evals = builder.sources(eval_names or [], "eval", registry)
    digest = _counts_key(builder, target, stage, given_rows or {}, train + evals)
    record = cache.load_counts(digest) if digest is not None else None
    cached = _cached_counts(record, args, train + evals) if record is not None else None
    if cached is not None:
        return cached
    builder.args = read = _ReadArguments(args)  # the arguments counting reads from here on, for the counts cache
    counts = _count(read, target, builder, builder.draw(train), builder.draw(evals), eval_names)
    if digest is not None and not builder.packing:
        _store_counts(digest, read, counts)
    return counts


def _count(args, target, builder: _Builder, train: list[Source], evals: list[Source], eval_names) -> Counts:
    problems = builder.problems
    seed = args.seed if isinstance(args.seed, int) and not isinstance(args.seed, bool) else 42
    _crashes(train + evals, problems)
    drops = _drop_summaries(train + evals)

    def result(num, num_eval, merged, exact, basis):
        each = evaluates_each_dataset(args, target)
        return Counts(
            tuple(train + evals), num, num_eval, merged, exact, basis, tuple(problems), tuple(drops), eval_each=each
        )

    unknown = [s for s in train if s.selected is None]
    fatal = any(p.fatal for p in problems)
    if not train or unknown or fatal:
        why = "; ".join(f"{s.name}: {s.basis}" for s in unknown) or (problems[0].message if problems else "no dataset")
        # a config that only evaluates or predicts names eval datasets alone
        only_eval = _eval_count(args, builder, evals, seed, problems) if not train and evals and not fatal else None
        return result(None, only_eval, None, False, why)
    if args.streaming:
        return result(None, None, None, False, "streaming: the Trainer prints total batch x max_steps")
    merged = _merge(args, train, seed, problems)
    if merged is None:
        return result(None, None, None, False, problems[-1].message)
    np = selection.numpy()
    keeps = [(_keep_array(s) == KEPT) for s in train]
    valid = np.zeros(len(merged.source), dtype=bool)
    for i, keep in enumerate(keeps):
        mask = merged.source == i
        valid[mask] = keep[merged.row[mask]]
    val_size = args.val_size if isinstance(args.val_size, (int, float)) and not isinstance(args.val_size, bool) else 0.0
    num_eval = None
    if builder.packing:
        from .packed_counts import packed_counts

        return packed_counts(args, target, builder, train, merged, valid, val_size, seed, problems, result)
    if val_size > 1e-6:
        split_first = target.llamafactory in SPLIT_BEFORE_PREPROCESSING
        population = len(valid) if split_first else int(valid.sum())
        try:
            n_train, n_test = selection.split_sizes(population, val_size)
        except selection.SplitError as exc:
            problems.append(Problem("val-size", f"datasets stops with: {exc}"))
            return result(None, None, len(valid), False, str(exc))
        if split_first:
            perm = selection.split_permutation(len(valid), seed)
            eval_rows, train_rows = perm[:n_test], perm[n_test:]
            num = int(valid[train_rows].sum())
            eval_valid = _eval_keep(builder, train, merged, eval_rows)
            num_eval = int(eval_valid.sum())
        else:
            num, num_eval = n_train, n_test
    else:
        num = int(valid.sum())
    if eval_names:
        num_eval = _eval_count(args, builder, evals, seed, problems)
    basis = _basis(train, merged, val_size)
    empty = (
        "Cannot find sufficient samples, consider increasing dataset size."
        if builder.processor == "pt"
        else "Cannot find valid samples, check `data/README.md` for the data format."
    )
    if num == 0:
        problems.append(Problem("no-valid-examples", f"{empty} Every training example is dropped."))
    elif num_eval == 0:
        problems.append(Problem("no-valid-examples", f"{empty} Every evaluation example is dropped."))
    return result(num, num_eval, len(valid), True, basis)


def _eval_keep(builder: _Builder, train: list[Source], merged, rows):
    """Validity of the split-off validation rows under the eval processor (it may differ for sft + generation)."""
    np = selection.numpy()
    if builder._processor_for("eval") == builder._processor_for("train"):
        keeps = [(_keep_array(s) == KEPT) for s in train]
    else:  # sft + predict_with_generate evaluates with the unsupervised processor: rescan under it
        keeps = []
        for s in train:
            again = builder.scan(s.files, s.attr, "unsupervised")
            keeps.append(np.frombuffer(again.codes, dtype=np.uint8)[s.selected] == KEPT)
    out = np.zeros(len(rows), dtype=bool)
    sources, positions = merged.source[rows], merged.row[rows]
    for i, keep in enumerate(keeps):
        mask = sources == i
        out[mask] = keep[positions[mask]]
    return out


def _eval_count(args, builder: _Builder, evals: list[Source], seed: int, problems: list[Problem]) -> int | None:
    if any(s.selected is None for s in evals):
        return None
    np = selection.numpy()
    if evaluates_each_dataset(args, builder.target):
        return int(sum(int((_keep_array(s) == KEPT).sum()) for s in evals))
    merged = _merge(args, evals, seed, problems)
    if merged is None:
        return None
    total = 0
    for i, s in enumerate(evals):
        keep = _keep_array(s) == KEPT
        mask = merged.source == i
        total += int(np.count_nonzero(keep[merged.row[mask]]))
    return total


def _basis(train: list[Source], merged, val_size: float) -> str:
    parts = [f"{s.name}: {len(s.selected):,} of {s.basis}" for s in train]
    text = "; ".join(parts)
    if len(train) > 1:
        text += f"; merged to {len(merged.source):,}"
    if val_size > 1e-6:
        text += f"; val_size {val_size} split off"
    return text


# --------------------------------------------------------------------------- the counts cache
# Counting draws with NumPy, whose import costs more than the rest of a lint. What it made of one set of datasets
# (the scans' cache keys, their registry entries, the stage, the release) under the argument values it read is kept
# in the cache (cache.store_counts); a later count with the same datasets takes it when every one of those values
# is still the same. Packed counts (token lengths) are not kept. Whatever else counting comes to depend on must be
# read through ``args`` (recorded) or be part of _counts_key; an edit of lf_lint/dataset/ discards what was kept.


class _ReadArguments:
    """The config's arguments as counting reads them: every value read (and every ``get(name)``-style call) is
    recorded in ``read`` as ``(name, call arguments or None) -> value``."""

    def __init__(self, args):
        self._args = args
        self.read: dict[tuple, object] = {}

    def __getattr__(self, name: str):
        value = getattr(self._args, name)
        if not callable(value):
            self.read[(name, None)] = value
            return value

        def call(*arguments):
            result = value(*arguments)
            self.read[(name, arguments)] = result
            return result

        return call


def _counts_key(builder: _Builder, target, stage: str, given_rows: dict, sources: list[Source]) -> str | None:
    if not builder.use_cache or builder.packing or None in builder.scan_keys:
        return None
    datasets = [[s.name, s.role, s.attr, _file_names(s.files), s.rows, s.basis, s.selected is TO_DRAW] for s in sources]
    facts = [list(target), stage, builder.processor, sorted(given_rows.items()), builder.scan_keys, datasets,
             builder.problems]  # fmt: skip
    return cache.counts_key(facts)


def _file_names(files: DataFiles | None) -> list | None:
    return None if files is None else [[str(path) for path in files.paths], files.builder, files.problem]


def _value_text(value: object) -> str:
    return json.dumps(value, sort_keys=True)  # true, 1 and 1.0 stay apart


def _store_counts(digest: str, read: _ReadArguments, counts: Counts) -> None:
    try:
        arguments = [[name, call, _value_text(value)] for (name, call), value in read.read.items()]
    except (TypeError, ValueError):
        return  # a value JSON cannot hold (a date): not kept
    record = {
        "arguments": arguments,
        "counts": {
            "selected": [len(s.selected) if s.selected is not None else None for s in counts.sources],
            "num_examples": counts.num_examples,
            "num_eval_examples": counts.num_eval_examples,
            "merged_rows": counts.merged_rows,
            "exact": counts.exact,
            "basis": counts.basis,
            "problems": [list(p) for p in counts.problems],
            "drops": [[d.dataset, d.reason, d.count, list(d.locations)] for d in counts.drops],
            "eval_each": counts.eval_each,
            "datasets": [list(d) for d in counts.per_dataset()],
        },
    }
    try:
        json.dumps(record)
    except (TypeError, ValueError):
        return  # a count JSON cannot hold (a NumPy number): not kept
    cache.store_counts(digest, record)


def _cached_counts(record: dict, args, sources: list[Source]) -> Counts | None:
    """The counts ``record`` keeps, when ``args`` has the values they were made with; None otherwise."""
    try:
        for name, call, text in record["arguments"]:
            value = getattr(args, name)
            if _value_text(value(*call) if call is not None else value) != text:
                return None
        saved = record["counts"]
        if len(saved["selected"]) != len(sources):
            return None
        drawn = []
        for source, count in zip(sources, saved["selected"]):
            if (count is None) != (source.selected is not TO_DRAW):
                return None
            drawn.append(source._replace(selected=None if count is None else Drawn(count)))
        return Counts(
            tuple(drawn), saved["num_examples"], saved["num_eval_examples"], saved["merged_rows"], saved["exact"],
            saved["basis"], tuple(Problem(*p) for p in saved["problems"]),
            tuple(DropSummary(d[0], d[1], d[2], tuple(d[3])) for d in saved["drops"]),
            eval_each=saved["eval_each"], datasets=tuple(DatasetCount(*d) for d in saved["datasets"]),
        )  # fmt: skip
    except (KeyError, TypeError, ValueError, AttributeError):
        return None  # another layout, or an argument that cannot be read the same way: count again
