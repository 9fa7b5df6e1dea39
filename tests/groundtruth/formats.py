"""Writing dataset files in the formats LLaMA-Factory reads, for ground-truth cases (shared by the runner, which
runs inside a ground-truth environment, and the tests). pyarrow is imported only when a case needs it."""

from __future__ import annotations

import csv
import io
from pathlib import Path


def write_table(path: Path, fmt: str, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if fmt in ("parquet", "arrow"):
        import pyarrow as pa

        table = pa.Table.from_pylist(rows)
        if fmt == "parquet":
            import pyarrow.parquet as pq

            pq.write_table(table, str(path))
        else:
            with pa.ipc.new_stream(str(path), table.schema) as writer:
                writer.write_table(table)
    elif fmt == "csv":
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
        path.write_text(out.getvalue())
    elif fmt == "text":
        path.write_text("".join(row["text"] + "\n" for row in rows))
    else:
        raise ValueError(fmt)


def write_tables(root: Path, tables: dict) -> None:
    """``tables``: relative path -> {"format": ..., "rows": [...]}."""
    for relpath, table in (tables or {}).items():
        write_table(root / relpath, table["format"], table["rows"])
