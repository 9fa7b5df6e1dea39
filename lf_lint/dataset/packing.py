"""Packed example counts: pre-training blocks and packed SFT sequences.

Both processors work per ``Dataset.map`` batch (data/processor/pretrain.py,
supervised.py::PackedSupervisedDatasetProcessor): the rows are split into ``num_proc``
contiguous shards, each shard into batches of ``preprocessing_batch_size``; a pre-training
batch yields ``sum(tokens) // cutoff_len`` blocks (the remainder is discarded), a packed SFT
batch as many sequences as ``greedy_knapsack`` fills. The token counts need the model's
tokenizer and template; without them lf-lint estimates tokens from UTF-8 bytes and labels the
result an estimate.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator, Sequence

BYTES_PER_TOKEN = 4  # a tokenizer-agnostic average (English ~4 bytes/token, CJK ~4.5)
TEMPLATE_TOKENS_PER_MESSAGE = 6  # role markers and separators a chat template adds per message


def map_batches(rows: Sequence, batch_size: int | None, num_proc: int | None) -> Iterator[Sequence]:
    """The batches ``Dataset.map(batched=True, batch_size, num_proc)`` hands to the processor, in order."""
    n = len(rows)
    if n == 0:
        return
    shards = 1 if not num_proc or num_proc <= 1 else min(num_proc, n)  # datasets lowers num_proc to the row count
    size = batch_size if batch_size and batch_size > 0 else n  # datasets: batch_size <= 0 means one batch
    div, mod = divmod(n, shards)
    for shard in range(shards):
        start = div * shard + min(shard, mod)
        end = start + div + (1 if shard < mod else 0)
        for begin in range(start, end, size):
            yield rows[begin : min(begin + size, end)]


def greedy_knapsack_count(lengths: list[int], capacity: int) -> int:
    """len(processor_utils.greedy_knapsack(lengths, capacity)): fill each sack with the largest fitting item."""
    numbers = sorted(lengths)
    sacks = 0
    while numbers:
        remaining = capacity
        while True:
            index = bisect.bisect(numbers, remaining) - 1
            if index < 0:
                break
            remaining -= numbers.pop(index)
        sacks += 1
    return sacks


def pretrain_blocks(tokens: Sequence[int], block_size: int, batch_size: int | None, num_proc: int | None) -> int:
    if block_size <= 0:
        return 0
    return sum(sum(batch) // block_size for batch in map_batches(tokens, batch_size, num_proc))


def packed_sequences(lengths: Sequence[int], capacity: int, batch_size: int | None, num_proc: int | None) -> int:
    return sum(
        greedy_knapsack_count([n for n in batch if n <= capacity], capacity)
        for batch in map_batches(lengths, batch_size, num_proc)
    )


def estimated_tokens(size_bytes, messages: int = 0):
    """Tokens of a text of that many UTF-8 bytes (an int, or a numpy array of them), with template tokens per message."""
    return -(-size_bytes // BYTES_PER_TOKEN) + messages * TEMPLATE_TOKENS_PER_MESSAGE
