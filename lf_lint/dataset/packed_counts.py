"""Counts that depend on token lengths: pre-training blocks and packed SFT sequences.

``count_examples`` (counting.py) hands over here when ``packing`` is on (pre-training packs by default).
The lengths come from the scan: exact with the model's local tokenizer (tokens.py for pre-training rows,
chat_template.py for supervised examples, whose per-message token counts are truncated here at the
cut-off), else estimated from UTF-8 sizes. The packing itself is packing.py: per ``Dataset.map`` batch
and worker, ``cutoff_len`` blocks for pre-training, ``greedy_knapsack`` for SFT.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from . import selection
from .counting import SPLIT_BEFORE_PREPROCESSING, Problem

if TYPE_CHECKING:
    from .counting import Source, _Builder


def token_measure(args, target, workdir: Path, stage: str):
    """(exact token-length measure for the packed stage, or None with the reason the lengths are estimated)."""
    from .tokens import PretrainLengths, local_tokenizer

    tokens, missing = local_tokenizer(args.model_name_or_path, workdir)
    if tokens is None:
        return None, f"the real count needs the model's tokenizer: {missing}"
    from .chat_template import SupervisedLengths, load_template

    name = args.template if isinstance(args.template, str) else None
    template = load_template(name or "empty", target.llamafactory)
    if template is None:
        return None, f"template {name!r} is not registered in LLaMA-Factory {target.llamafactory}"
    parsed = name is None and tokens.has_chat_template()  # LLaMA-Factory parses the tokenizer's chat template
    if stage == "pt":
        if parsed:
            tokens.fix_for_template("parsed", [], False)
        else:
            tokens.fix_for_template(template.name, template.stop_words, template.replace_eos)
        return PretrainLengths(tokens, name), ""
    if parsed:
        return None, ("`template` is not set, so LLaMA-Factory derives one from the tokenizer's chat template (lf-lint "
                      "does not); set `template:` to count exactly")  # fmt: skip
    settings = {
        "cutoff_len": effective_cutoff(args, target),
        "mask_history": args.mask_history,
        "enable_thinking": args.enable_thinking,
        "preserve_thinking": args.preserve_thinking,
        "default_system": args.default_system,
    }
    return SupervisedLengths(tokens, template, target.llamafactory, settings), ""


def effective_cutoff(args, target) -> int:
    """data_args.cutoff_len after DataArguments.__post_init__: one less when packing is set in the config (0.9.3+)."""
    cutoff = args.cutoff_len if isinstance(args.cutoff_len, int) and not isinstance(args.cutoff_len, bool) else 2048
    explicit = bool(args.get("packing")) or bool(args.neat_packing)
    return cutoff - 1 if explicit and target.llamafactory != "0.9.2" else cutoff


def packed_counts(
    args, target, builder: _Builder, train: list[Source], merged, valid, val_size: float, seed: int, problems, result
):
    """Pre-training blocks or packed SFT sequences: exact from token lengths, else estimated from text sizes."""
    from array import array

    from . import packing
    from .scan import UNMEASURED

    np = selection.numpy()
    first = np.zeros(len(merged.source), dtype=np.int64)
    total = np.zeros(len(merged.source), dtype=np.int64)
    for i, s in enumerate(train):
        sizes = (
            np.frombuffer(array("I", s.scan.sizes).tobytes(), dtype=np.uint32).reshape(-1, 2)
            if s.scan.sizes
            else np.zeros((s.rows, 2), np.uint32)
        )
        picked = sizes[s.selected]
        mask = merged.source == i
        first[mask] = picked[merged.row[mask], 0]
        total[mask] = picked[merged.row[mask], 1]
        if getattr(builder.measure, "per_message", False) and s.scan.message_starts:  # truncate at this cut-off
            first[mask] = _example_lengths(s.scan, builder.measure, s.selected[merged.row[mask]])
    cutoff = effective_cutoff(args, target)
    batch_size = args.preprocessing_batch_size if isinstance(args.preprocessing_batch_size, int) else 1000
    workers = args.preprocessing_num_workers if isinstance(args.preprocessing_num_workers, int) else None
    pretrain = builder.processor == "pt"
    measured = builder.measure is not None and all(s.files is not None for s in train)  # not --num-examples
    unmeasured = set()  # rows whose length had to be estimated after all

    def count(rows) -> int:
        rows = rows[valid[rows]]
        if pretrain:  # the first prompt and the eos token
            lengths = packing.estimated_tokens(first[rows]) + 1
        else:
            lengths = np.minimum(packing.estimated_tokens(total[rows], messages=2), cutoff)
        if measured:
            missing = first[rows] == UNMEASURED
            unmeasured.update(rows[missing].tolist())
            lengths = np.where(missing, lengths, first[rows])
        if pretrain:
            return packing.pretrain_blocks(lengths.tolist(), cutoff, batch_size, workers)
        return packing.packed_sequences(lengths.tolist(), cutoff, batch_size, workers)

    order = np.arange(len(merged.source))
    num_eval = None
    if val_size > 1e-6 and target.llamafactory in SPLIT_BEFORE_PREPROCESSING:
        try:
            _, n_test = selection.split_sizes(len(order), val_size)
        except selection.SplitError as exc:
            problems.append(Problem("val-size", f"datasets stops with: {exc}"))
            return result(None, None, len(order), False, str(exc))
        perm = selection.split_permutation(len(order), seed)
        num, num_eval = count(perm[n_test:]), count(perm[:n_test])
    elif val_size > 1e-6:
        packed = count(order)
        try:
            num, num_eval = selection.split_sizes(packed, val_size)
        except selection.SplitError as exc:
            problems.append(Problem("val-size", f"datasets stops with: {exc}"))
            return result(None, None, len(order), False, str(exc))
    else:
        num = count(order)
    if num == 0:
        problems.append(Problem("no-valid-examples", "Cannot find sufficient samples, consider increasing dataset size." if pretrain
                                else "Cannot find valid samples, check `data/README.md` for the data format."))  # fmt: skip
    what = "pre-training blocks" if pretrain else "packed sequences"
    examples = int(valid.sum())
    if measured and not unmeasured:
        how = f"tokenized with {builder.measure.tokens.path}"
        if not pretrain:
            how = f"encoded with the {builder.measure.template.name} template and {builder.measure.tokens.path}"
        return result(
            num, num_eval, len(order), True, f"{num:,} {what} of {cutoff} tokens from {examples:,} examples, {how}"
        )
    assumption = f"assuming ~{packing.BYTES_PER_TOKEN:g} bytes per token"
    if measured:
        why = (f"{len(unmeasured):,} of {examples:,} examples could not be encoded (media, a multimodal template, the "
               "gemma4 tool format, or values LLaMA-Factory itself stops on) and are sized ")  # fmt: skip
        basis = f"estimate: {num:,} {what} of {cutoff} tokens; {why}{assumption}"
    elif builder.measure_note:
        basis = f"estimate: {num:,} {what} of {cutoff} tokens from {examples:,} examples, {assumption} ({builder.measure_note})"
    else:
        basis = f"estimate: {num:,} {what} of {cutoff} tokens from {examples:,} examples, {assumption} (lengths given with --num-examples are not known)"
    return result(
        num, num_eval, len(order), False, basis + "; run with --exact where LLaMA-Factory and the model are available"
    )


def _example_lengths(scan, measure, rows):
    """The supervised processor's length of each of these rows, from the per-message token counts in the scan."""
    from array import array

    from .scan import UNMEASURED

    np = selection.numpy()
    messages, starts, sizes = array("I"), array("I"), array("I")
    messages.frombytes(scan.messages)
    starts.frombytes(scan.message_starts)
    sizes.frombytes(scan.sizes)
    out = np.empty(len(rows), dtype=np.int64)
    for i, row in enumerate(rows.tolist()):
        begin, end = starts[row], starts[row + 1]
        out[i] = measure.length(messages[begin:end]) if sizes[2 * row] != UNMEASURED and end > begin else UNMEASURED
    return out
