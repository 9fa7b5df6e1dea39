"""The column-wise scan (columnar.py, arrow_read.py, json_blocks.py) against the row-by-row one (scan.scan_rows).

Both must give the same Scan, field by field (codes, drop reasons and their numbering, sample locations,
crashes, columns, problems, media): on generated files full of bad rows, in every file format, formatting,
ranking and processor, read in tiny blocks so that rows and column types cross block boundaries; and on the
JSON lines pyarrow reads differently from Python's json. Where the column-wise reader declines a file it
returns None and scan.scan reads row by row, so scan.scan must equal the reference everywhere.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from lf_lint.dataset import arrow_read, json_blocks
from lf_lint.dataset.columnar import scan_columnar
from lf_lint.dataset.files import DataFiles
from lf_lint.dataset.registry import attr_from_entry
from lf_lint.dataset.scan import Verdicts, scan, scan_rows

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")

PROCESSORS = ("sft", "rm", "kto", "unsupervised", "pt")
FORMATS = ("alpaca", "sharegpt", "openai")

text = st.sampled_from(["q", "answer", "", " ", "é中", "2020-01-01", "1", "x\ny"])
scalar = st.one_of(text, st.none(), st.booleans(), st.integers(-3, 3), st.sampled_from([1.5, 1e30, 2**70]))
tools = st.sampled_from(['[{"name": "f"}]', "not json", "", "{}", None, "[1,"])
good_tools = st.sampled_from(['[{"name": "f"}]', "", None, None, "{}", "not json"])
media = st.one_of(st.none(), st.just([]), st.lists(st.sampled_from(["a.png", "b.png"]), max_size=3), text)


def maybe(strategy):
    """A value, or the key missing from the row."""
    return st.one_of(st.just(MISSING), strategy)


MISSING = object()


def alpaca_row(clean: bool):
    pair = st.one_of(st.lists(text, min_size=0, max_size=3), st.none())
    history = st.one_of(st.none(), st.lists(pair, max_size=3), st.lists(text, min_size=1, max_size=2))
    if clean:  # mostly what the rules keep, with nulls and bad pairs now and then, each column of one type
        pairs = st.lists(
            st.one_of(st.lists(text, min_size=2, max_size=2), st.lists(text, max_size=3), st.none()), max_size=2
        )
        lists = st.one_of(st.none(), st.lists(st.sampled_from(["a.png", "b.png"]), max_size=3))
        maybe_text = st.one_of(text, text, text, st.none())
        return st.fixed_dictionaries({"instruction": text, "input": text, "output": maybe_text},
                                     optional={"history": st.one_of(st.none(), pairs), "chosen": text, "rejected": maybe_text,
                                               "kto_tag": st.one_of(st.booleans(), st.none()), "tools": good_tools, "images": lists,
                                               "videos": lists})  # fmt: skip
    return st.fixed_dictionaries({}, optional={
        "instruction": st.one_of(text, scalar), "input": st.one_of(text, st.none()),
        "output": st.one_of(text, text, text, scalar, st.lists(text, max_size=2)),
        "history": history, "chosen": st.one_of(text, scalar), "rejected": st.one_of(text, scalar),
        "kto_tag": st.one_of(st.booleans(), st.none(), text), "system": st.one_of(text, st.none()),
        "tools": tools, "images": media, "videos": media,
    })  # fmt: skip


def message(role_key="from", content_key="value", roles=("human", "gpt", "system", "observation", "function_call")):
    role = st.one_of(st.sampled_from([*roles, "bot", ""]), st.none())
    full = st.fixed_dictionaries({role_key: role, content_key: st.one_of(text, st.none())})
    partial = st.fixed_dictionaries({}, optional={role_key: role, content_key: text, "tool_calls": st.sampled_from([None, [], [{"function": {"name": "f"}}]])})  # fmt: skip
    return st.one_of(full, full, full, partial, st.none())


def conversation_row(role_key, content_key, roles, clean: bool):
    """roles: (user, assistant, observation, function)."""
    user, assistant, observation, function = roles

    def turns(k, system, odd_roles, even_roles):
        return [{role_key: "system", content_key: "s"}] * system + [
            {role_key: (odd_roles if i % 2 == 0 else even_roles)[i // 2 % len(odd_roles if i % 2 == 0 else even_roles)], content_key: "m"}
            for i in range(k)
        ]  # fmt: skip

    alternate = st.builds(turns, st.one_of(st.integers(1, 3).map(lambda k: 2 * k), st.integers(0, 6)), st.integers(0, 1),
                          st.sampled_from([(user,), (user, observation)]), st.sampled_from([(assistant,), (assistant, function)]))  # fmt: skip
    messy = st.lists(message(role_key, content_key, (*roles, "system")), max_size=5)
    side = st.one_of(st.fixed_dictionaries({role_key: st.just(assistant), content_key: text}), text, st.none())
    images, tool_text = media, tools
    if clean:
        tool_text = good_tools
        messages = st.one_of(alternate, alternate, alternate, messy, st.none())
        side = st.one_of(st.fixed_dictionaries({role_key: st.just(assistant), content_key: text}), st.none())
        images = st.one_of(st.none(), st.lists(st.sampled_from(["a.png", "b.png"]), max_size=3))
    else:
        messages = st.one_of(alternate, messy, st.none(), text)
    return st.fixed_dictionaries({"conversations": messages}, optional={
        "system": st.one_of(text, st.none()), "tools": tool_text, "kto_tag": st.one_of(st.booleans(), st.none()),
        "chosen": side, "rejected": side, "images": images,
    })  # fmt: skip


def entry_for(formatting: str, ranking: bool, data: st.DataObject) -> dict:
    entry = {"file_name": "x", "formatting": formatting, "ranking": ranking}
    if formatting == "alpaca":
        if data.draw(st.booleans()):
            entry["columns"] = {"prompt": "instruction", "query": "input", "response": "output", "history": "history",
                                "kto_tag": "kto_tag", "tools": "tools", "images": "images", "videos": "videos",
                                "chosen": "chosen", "rejected": "rejected"}  # fmt: skip
    else:
        entry["columns"] = {"messages": "conversations", "system": "system", "tools": "tools", "images": "images",
                            "kto_tag": "kto_tag", "chosen": "chosen", "rejected": "rejected"}  # fmt: skip
        if formatting == "openai":
            entry["tags"] = {"role_tag": "role", "content_tag": "content", "user_tag": "user",
                             "assistant_tag": "assistant", "observation_tag": "tool", "function_tag": "function",
                             "system_tag": "system"}  # fmt: skip
        elif data.draw(st.booleans()):
            entry["tags"] = {"role_tag": "from", "content_tag": "value", "user_tag": "human", "assistant_tag": "gpt",
                             "observation_tag": data.draw(st.sampled_from(["observation", None])),
                             "function_tag": "function_call", "system_tag": data.draw(st.sampled_from(["system", None, ""]))}  # fmt: skip
    return entry


def rows_for(formatting: str, data: st.DataObject) -> list[dict]:
    clean = data.draw(st.integers(0, 3)) > 0
    if formatting == "alpaca":
        row = alpaca_row(clean)
    elif formatting == "sharegpt":
        row = conversation_row("from", "value", ("human", "gpt", "observation", "function_call"), clean)
    else:
        row = conversation_row("role", "content", ("user", "assistant", "tool", "function"), clean)
    rows = data.draw(st.lists(row, min_size=0, max_size=25))
    return [{k: v for k, v in r.items() if v is not MISSING} for r in rows]


def write(folder: Path, kind: str, rows: list[dict], data: st.DataObject) -> Path | None:
    """One file of ``kind`` holding the rows; None when the format cannot hold them (mixed parquet types)."""
    if kind == "jsonl":
        path = folder / "d.jsonl"
        lines = [json.dumps(r, ensure_ascii=data.draw(st.booleans())) for r in rows]
        end = data.draw(st.sampled_from(["\n", "\r\n"]))
        blank = data.draw(st.sampled_from(["", "  ", "\t"]))
        out = []
        for line in lines:
            if data.draw(st.integers(0, 9)) == 0:
                out.append(blank)  # a blank line (skipped)
            out.append(data.draw(st.sampled_from(["", " "])) + line if data.draw(st.integers(0, 9)) == 0 else line)
        body = end.join(out) + (end if data.draw(st.booleans()) else "")
        path.write_bytes(body.encode())
    elif kind == "json":
        path = folder / "d.json"
        path.write_text(json.dumps(rows))
    elif kind == "csv":
        import pandas as pd

        flat = [{k: v for k, v in r.items() if not isinstance(v, (list, dict))} for r in rows]
        if not flat or not any(flat):
            return None
        path = folder / "d.csv"
        pd.DataFrame(flat).to_csv(path, index=False)
    else:
        if data.draw(st.booleans()):  # keep only the columns of one type, which parquet can hold
            rows = [{k: v for k, v in r.items() if k in _one_type(rows)} for r in rows]
        try:
            table = pa.Table.from_pylist(rows) if rows else None
            if table is not None and table.num_columns:
                pq.write_table(table, folder / "d.parquet")
        except (pa.lib.ArrowException, OverflowError):
            return None
        if table is None or table.num_columns == 0:
            return None
        path = folder / "d.parquet"
    return path


def _one_type(rows: list[dict]) -> set:
    from lf_lint.dataset.columns import ColumnTypes

    names = {k for r in rows for k in r}
    for _ in range(len(names)):
        types = ColumnTypes()
        for row in rows:
            types.add({k: v for k, v in row.items() if k in names}, "")
        if types.problem is None:
            break
        names.discard(types.problem.column)
    return names


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(data=st.data())
def test_columnar_scan_equals_the_row_by_row_scan(data):
    formatting = data.draw(st.sampled_from(FORMATS))
    ranking = data.draw(st.booleans())
    kind = data.draw(st.sampled_from(["jsonl", "jsonl", "jsonl", "parquet", "parquet", "csv", "csv", "json"]))
    processor = data.draw(st.sampled_from(PROCESSORS))
    entry = entry_for(formatting, ranking, data)
    attr = attr_from_entry("x", entry, formats=FORMATS).attr
    with tempfile.TemporaryDirectory() as tmp:
        path = write(Path(tmp), kind, rows_for(formatting, data), data)
        if path is None:
            return
        builder = {"jsonl": "json", "json": "json", "csv": "csv", "parquet": "parquet"}[kind]
        files = DataFiles((path,), builder)
        reference = scan_rows(files, attr, processor)
        patch = pytest.MonkeyPatch()
        patch.setattr(json_blocks, "BLOCK_BYTES", data.draw(st.sampled_from([16, 200, 1 << 20])))
        patch.setattr(json_blocks, "SLACK_BYTES", data.draw(st.sampled_from([1, 50, 1 << 16])))
        patch.setattr(arrow_read, "PARQUET_BATCH_ROWS", data.draw(st.sampled_from([1, 4, 65536])))
        judged = []
        judge = Verdicts.judge
        patch.setattr(Verdicts, "judge", lambda self, index, *a: judged.append(index) or judge(self, index, *a))
        try:
            fast = scan_columnar(files, attr, processor, workers=data.draw(st.sampled_from([1, 3])), min_bytes=0)
        finally:
            patch.undo()
        event(f"{kind}: {'column-wise' if fast is not None else 'declined'}")
        if fast is not None and fast.rows:
            event(f"rows kept column-wise: {'some' if len(set(judged)) < fast.rows else 'none'}")

        if fast is not None:
            assert fast == reference
        assert scan(files, attr, processor) == reference


def _alpaca_lines(n: int) -> list[str]:
    return [
        json.dumps({"instruction": f"q{i}", "input": "", "output": None if i % 7 == 3 else f"a{i}"}) for i in range(n)
    ]


QUIRKS = {  # JSON lines that pyarrow reads differently from Python's json, or that need line bookkeeping
    "plain": ("\n".join(_alpaca_lines(40)) + "\n").encode(),
    "no final line break": "\n".join(_alpaca_lines(40)).encode(),
    "blank lines": ("\n\n".join(_alpaca_lines(40)) + "\n \n\t\n").encode(),
    "crlf": ("\r\n".join(_alpaca_lines(40)) + "\r\n").encode(),
    "lone carriage return": ("\r".join(_alpaca_lines(40)) + "\n").encode(),
    "byte order mark": b"\xef\xbb\xbf" + ("\n".join(_alpaca_lines(5)) + "\n").encode(),
    "two objects on a line": ("\n".join(_alpaca_lines(5)) + "\n" + _alpaca_lines(1)[0] + " " + _alpaca_lines(1)[0] + "\n").encode(),
    "one object on two lines": b'{"instruction": "q",\n"output": "a"}\n',
    "both, balanced": ("\n".join(_alpaca_lines(3)) + '\n{"instruction": "q",\n"output": "a"} {"output": "b"}\n').encode(),
    "-NaN": b'{"instruction": "q", "output": "a", "x": -NaN}\n',
    "Inf": b'{"instruction": "q", "output": "a", "x": Inf}\n',
    "NaN and Infinity": b'{"instruction": "q", "output": "a", "x": NaN}\n{"instruction": "q", "output": "a", "x": -Infinity}\n',
    "timestamps": b'{"instruction": "2020-01-01", "output": "2020-01-02 10:00:00"}\n{"instruction": "q", "output": "2021-03-04"}\n',
    "big integers": b'{"instruction": "q", "output": "a", "n": 123456789012345678901234567890}\n{"instruction": "q", "output": "a", "n": 1}\n',
    "duplicate keys": b'{"instruction": "q", "output": null, "output": "a"}\n',
    "escaped duplicate keys": b'{"instruction": "q", "output": null, "\\u006futput": "a"}\n',
    "lone surrogate": b'{"instruction": "\\ud800", "output": "a"}\n',
    "invalid UTF-8": b'{"instruction": "q\xe9", "output": "a"}\n',
    "invalid UTF-8 in a later block": ("\n".join(_alpaca_lines(20)) + "\n").encode() + b'{"instruction": "q\xe9x", "output": "a"}\n',
    "an encoded surrogate": b'{"instruction": "q\xed\xa0\x80", "output": "a"}\n',
    "an overlong encoding": b'{"instruction": "q\xc0\xaf", "output": "a"}\n',
    "valid UTF-8": '{"instruction": "é中文😀", "output": "a"}\n'.encode(),
    "control character": b'{"instruction": "q\x01", "output": "a"}\n',
    "huge exponent": b'{"instruction": "q", "output": "a", "x": 1e400}\n',
    "not an object": b'{"instruction": "q", "output": "a"}\n[1, 2]\n',
    "form feed line": b'{"instruction": "q", "output": "a"}\n\x0c\n{"instruction": "q", "output": "a"}\n',
    "non-breaking space": '\xa0{"instruction": "q", "output": "a"}\n'.encode(),
    "type conflict across blocks": ("\n".join(_alpaca_lines(30)) + '\n{"instruction": 3, "output": "a"}\n').encode(),
    "null, then a type": b'{"instruction": "q", "output": "a", "x": null}\n' * 30 + b'{"instruction": "q", "output": "a", "x": [1]}\n',
    "a column that appears late": ("\n".join(_alpaca_lines(30)) + '\n{"instruction": "q", "output": "a", "late": 1}\n').encode(),
    "a line longer than a block": ("\n".join(_alpaca_lines(3)) + "\n" + json.dumps({"instruction": "q" * 5000, "output": "a"}) + "\n").encode(),
    "empty": b"",
    "only blank lines": b"\n  \n\n",
    "a JSON array": json.dumps([{"instruction": "q", "output": "a"}]).encode(),
}  # fmt: skip


@pytest.mark.parametrize("name", list(QUIRKS))
@pytest.mark.parametrize("block, slack", [(64, 1), (64, 1 << 16), (1 << 20, 1 << 16)])
def test_json_lines_quirks(tmp_path, monkeypatch, name, block, slack):
    path = tmp_path / "d.jsonl"
    path.write_bytes(QUIRKS[name])
    files = DataFiles((path,), "json")
    attr = attr_from_entry("x", {"file_name": "d.jsonl"}, formats=FORMATS).attr
    reference = scan_rows(files, attr, "sft")
    monkeypatch.setattr(json_blocks, "BLOCK_BYTES", block)
    monkeypatch.setattr(json_blocks, "SLACK_BYTES", slack)
    fast = scan_columnar(files, attr, "sft", min_bytes=0)
    if fast is not None:
        assert fast == reference
    assert scan(files, attr, "sft") == reference


def test_the_columnar_reader_reads_ordinary_files(tmp_path, monkeypatch):
    """The fast path is taken (not declined) for ordinary data, in several blocks and several files."""
    monkeypatch.setattr(json_blocks, "BLOCK_BYTES", 256)
    monkeypatch.setattr(json_blocks, "SLACK_BYTES", 8)
    folder = tmp_path / "f"
    folder.mkdir()
    (folder / "a.jsonl").write_text("\n".join(_alpaca_lines(50)) + "\n")
    (folder / "b.jsonl").write_text("\r\n".join(_alpaca_lines(20)) + "\r\n\r\n")
    files = DataFiles((folder / "a.jsonl", folder / "b.jsonl"), "json")
    attr = attr_from_entry("x", {"file_name": "f"}, formats=FORMATS).attr
    fast = scan_columnar(files, attr, "sft", min_bytes=0)
    assert fast is not None and fast == scan_rows(files, attr, "sft")
    assert fast.rows == 70 and fast.samples[0][:2] == ((3, f"{folder / 'a.jsonl'}:4"), (10, f"{folder / 'a.jsonl'}:11"))
    sharegpt = [{"conversations": [{"from": "human", "value": "q"}, {"from": "gpt", "value": "a"}][: 2 - (i % 5 == 0)]}
                for i in range(30)]  # fmt: skip
    pq.write_table(pa.Table.from_pylist(sharegpt), tmp_path / "s.parquet")
    files = DataFiles((tmp_path / "s.parquet",), "parquet")
    attr = attr_from_entry("x", {"file_name": "s.parquet", "formatting": "sharegpt"}, formats=FORMATS).attr
    fast = scan_columnar(files, attr, "sft", min_bytes=0)
    assert fast is not None and fast == scan_rows(files, attr, "sft") and fast.codes.count(0) == 24
    assert scan_columnar(files, attr, "sft") is None  # small files: the row-by-row scan is as fast


def test_a_large_csv_file(tmp_path):
    """pandas reads a large CSV file into chunked columns; every slice of the frame is converted as a whole."""
    import pandas as pd

    text = "x" * 100
    rows = [{"instruction": f"q{i} {text}", "input": "" if i % 3 else "x", "output": None if i % 101 == 7 else f"a{i}"}
            for i in range(60_000)]  # fmt: skip
    pd.DataFrame(rows).to_csv(tmp_path / "d.csv", index=False)
    files = DataFiles((tmp_path / "d.csv",), "csv")
    attr = attr_from_entry("x", {"file_name": "d.csv"}, formats=FORMATS).attr
    fast = scan_columnar(files, attr, "sft")
    assert fast is not None and fast == scan_rows(files, attr, "sft") and fast.rows == 60_000


def test_blocks_are_read_without_pread_too(tmp_path, monkeypatch):
    """Where os.pread is missing (Windows) each block reads through a handle of its own."""
    monkeypatch.setattr(json_blocks, "BLOCK_BYTES", 100)
    monkeypatch.delattr(json_blocks.os, "preadv", raising=False)
    monkeypatch.delattr(json_blocks.os, "pread", raising=False)
    path = tmp_path / "d.jsonl"
    path.write_text("\n".join(_alpaca_lines(60)) + "\n")
    files = DataFiles((path,), "json")
    attr = attr_from_entry("x", {"file_name": "d.jsonl"}, formats=FORMATS).attr
    fast = scan_columnar(files, attr, "sft", workers=2, min_bytes=0)
    assert fast is not None and fast == scan_rows(files, attr, "sft") and fast.rows == 60


def test_the_json_lines_scan_does_not_import_pandas(tmp_path):
    """pyarrow imports pandas (0.3 s, 70 MB) to convert Python or NumPy values: the scan builds Arrow buffers itself."""
    import subprocess
    import sys

    path = tmp_path / "d.jsonl"
    rows = [{"conversations": [{"from": "system", "value": "s"}, {"from": "human", "value": "q"},
                               {"from": "gpt", "value": "a"}][: 3 - (i % 4 == 0)], "tools": "[]", "images": ["x"]}
            for i in range(100)]  # fmt: skip
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    probe = (
        "import sys\nfrom pathlib import Path\nfrom lf_lint.dataset.columnar import scan_columnar\n"
        "from lf_lint.dataset.files import DataFiles\nfrom lf_lint.dataset.registry import attr_from_entry\n"
        "attr = attr_from_entry('x', {'file_name': 'd.jsonl', 'formatting': 'sharegpt', 'columns': "
        "{'messages': 'conversations', 'tools': 'tools', 'images': 'images'}}, formats=('sharegpt',)).attr\n"
        "scan = scan_columnar(DataFiles((Path(sys.argv[1]),), 'json'), attr, 'sft', min_bytes=0)\n"
        "print(scan.codes.count(0), 'pandas' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", probe, str(path)], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["75", "False"]
