"""The table both accuracy benchmarks print: median and worst relative error per source and over all rows."""

from __future__ import annotations

import statistics


def print_error_table(by_source: dict[str, list[float]], all_label: str, width: int) -> None:
    """``by_source``: relative errors (estimate / measurement - 1) of each source's rows."""
    print(f"{'source':<{width}} rows  median |err|  worst |err|")
    everything: list[float] = []
    for source, errors in sorted(by_source.items()):
        everything += errors
        _row(source, errors, width)
    _row(all_label, everything, width)


def _row(label: str, errors: list[float], width: int) -> None:
    absolute = [abs(e) for e in errors]
    print(f"{label:<{width}} {len(errors):>4}  {statistics.median(absolute):>11.1%}  {max(absolute):>10.1%}")
