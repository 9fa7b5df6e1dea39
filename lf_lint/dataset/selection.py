"""Which rows LLaMA-Factory samples, merges and splits off, reproduced with the same random draws.

* ``num_samples`` (a registry entry): ``np.random.permutation`` of the rows, topped up with
  ``np.random.choice`` when more samples than rows are asked for, on the global NumPy RNG that
  ``transformers.set_seed(seed)`` seeded; train datasets first, then eval datasets, in order
  (data/loader.py::_load_single_dataset).
* ``max_samples``: the first rows of each dataset.
* several datasets: concatenated, or interleaved as ``datasets.interleave_datasets`` does for
  map-style datasets (``np.random.default_rng(seed)``, sources drawn 1000 at a time), stopping at
  the first (``interleave_under``) or the last (``interleave_over``) exhausted source.
* ``val_size``: ``Dataset.train_test_split(test_size, seed)``: ``default_rng(seed).permutation``,
  the first ``ceil(val_size * n)`` rows (or ``int(val_size)``) are the validation set.

A selection is an array of (source, row) pairs; counting keeps only arrays of indices.
"""

from __future__ import annotations

import math
from typing import NamedTuple


def numpy():
    import numpy as np  # imported when datasets are counted, never on the schema-only path

    return np


class GlobalRng:
    """The process-wide NumPy RNG after ``transformers.set_seed(seed)``."""

    def __init__(self, seed: int):
        self.state = numpy().random.RandomState(seed)

    def num_samples(self, n_rows: int, target: int):
        np = numpy()
        indexes = self.state.permutation(n_rows)[:target]
        missing = target - len(indexes)
        if missing > 0:
            indexes = np.concatenate((indexes, self.state.choice(n_rows, missing)), axis=0)
        return indexes


def truncate(indexes, max_samples: int | None):
    return indexes if max_samples is None else indexes[: min(max_samples, len(indexes))]


class Merged(NamedTuple):
    source: object  # numpy int array: which dataset each merged row comes from
    row: object  # numpy int array: the row inside that dataset's selection


def concatenate(lengths: list[int]) -> Merged:
    np = numpy()
    source = (
        np.concatenate([np.full(n, i, dtype=np.int64) for i, n in enumerate(lengths)])
        if lengths
        else np.zeros(0, np.int64)
    )
    row = np.concatenate([np.arange(n, dtype=np.int64) for n in lengths]) if lengths else np.zeros(0, np.int64)
    return Merged(source, row)


def interleave(lengths: list[int], probabilities: list[float] | None, seed: int, oversample: bool) -> Merged:
    """datasets arrow_dataset.py::_interleave_map_style_datasets (datasets 2.16-4.0)."""
    np = numpy()
    k = len(lengths)
    if probabilities is None:
        size = max(lengths) if oversample else min(lengths)
        steps = np.arange(size).reshape(-1, 1)
        rows = np.mod(steps, np.array(lengths).reshape(1, -1)) if oversample else np.broadcast_to(steps, (size, k))
        source = np.broadcast_to(np.arange(k).reshape(1, -1), (size, k))
        return Merged(source.flatten().astype(np.int64), np.asarray(rows).flatten().astype(np.int64))
    rng = np.random.default_rng(seed)
    exhausted = [False] * k
    current = [0] * k
    sources, rows = [], []
    stop = all if oversample else any
    while True:
        for s in rng.choice(k, size=1000, p=probabilities):
            if stop(exhausted):
                return Merged(np.array(sources, dtype=np.int64), np.array(rows, dtype=np.int64))
            s = int(s)
            sources.append(s)
            rows.append(current[s])
            current[s] += 1
            if current[s] >= lengths[s]:
                exhausted[s] = True
                current[s] = 0


class SplitError(ValueError):
    """``train_test_split`` refuses the size (the message is datasets')."""


def split_sizes(n: int, val_size: float) -> tuple[int, int]:
    """(n_train, n_test) as data_utils.py::split_dataset + ``Dataset.train_test_split`` compute them."""
    test_size = int(val_size) if val_size > 1 else val_size  # LF passes the YAML type through: 1 is an int, 1.0 a float
    if (isinstance(test_size, int) and (test_size >= n or test_size <= 0)) or (
        isinstance(test_size, float) and (test_size <= 0 or test_size >= 1)
    ):
        raise SplitError(
            f"test_size={test_size} should be either positive and smaller than the number of samples {n} or a float in the (0, 1) range"
        )
    n_test = math.ceil(test_size * n) if isinstance(test_size, float) else test_size
    n_train = n - n_test
    if n_train == 0:
        raise SplitError(
            f"With n_samples={n}, test_size={test_size} and train_size=None, the resulting train set will be empty. Adjust any of the aforementioned parameters."
        )
    return n_train, n_test


def split_permutation(n: int, seed: int):
    return numpy().random.default_rng(seed).permutation(n)
