"""Dataset diagnostics and drop rules, one case each (their agreement with LLaMA-Factory's own pipeline is
tested in test_groundtruth.py): registry, files, corrupt content with positions, stage mismatches, every drop
reason with its first locations, all-dropped data, val_size, mixing, max_samples, hub datasets, streaming,
the `columns` reset trap, and the file formats."""

from __future__ import annotations

import json

import pytest

from lf_lint.engine import LintOptions, lint_file


def alpaca(n: int) -> list[dict]:
    return [{"instruction": f"q{i}", "input": "", "output": f"a{i}"} for i in range(n)]


def run(tmp_path, info, files: dict, dataset: str = "a", extra: str = "", stage: str = "sft"):
    data = tmp_path / "data"
    data.mkdir(parents=True, exist_ok=True)
    if info is not None:
        (data / "dataset_info.json").write_text(info if isinstance(info, str) else json.dumps(info))
    for name, content in files.items():
        path = data / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content if isinstance(content, str) else json.dumps(content))
    config = tmp_path / "cfg.yaml"
    config.write_text(f"model_name_or_path: m\nstage: {stage}\ndo_train: true\nfinetuning_type: lora\ndataset: {dataset}\n"
                      f"template: default\noutput_dir: o\nbf16: true\nper_device_train_batch_size: 2\n{extra}")  # fmt: skip
    result = lint_file(
        config,
        LintOptions(llamafactory_version="0.9.5", transformers_version="4.57.1", workdir=tmp_path, use_cache=False),
    )
    found = {}
    for d in result.diagnostics:
        if d.code.startswith("LF4"):
            found.setdefault(d.code, []).append(d)
    return result, found


def only(found: dict, code: str):
    assert list(found) == [code], {k: [d.message for d in v] for k, v in found.items()}
    return found[code]


def test_unregistered_name_suggests_the_registered_one(tmp_path):
    _, found = run(tmp_path, {"alpaca": {"file_name": "a.json"}}, {"a.json": alpaca(3)}, dataset="alpca")
    (d,) = only(found, "LF401")
    assert "Undefined dataset alpca in dataset_info.json." in d.message and d.fix == "did you mean `alpaca`?"
    assert (d.line, d.column) == (5, 10)


def test_a_file_name_instead_of_a_dataset_name(tmp_path):
    _, found = run(tmp_path, {"x": {"file_name": "a.json"}}, {"a.json": alpaca(3)}, dataset="data/a.json")
    (d,) = only(found, "LF401")
    assert d.fix == "use the registered name `x`"


@pytest.mark.parametrize("info, fragment", [(None, "No such file or directory"), ("{not json", "is not valid JSON")])
def test_registry_missing_or_malformed(tmp_path, info, fragment):
    _, found = run(tmp_path, info, {})
    (d,) = only(found, "LF402")
    assert fragment in d.message


@pytest.mark.parametrize(
    "entry, files, fragment",
    [
        ({"file_name": "nope.json"}, {}, "not found"),
        ({"file_name": "f"}, {"f/.keep": ""}, "Allowed file types"),
        (
            {"file_name": "f"},
            {"f/x.json": alpaca(2), "f/y.csv": "instruction,input,output\nq,,a\n"},
            "File types should be identical",
        ),
        ({"file_name": "a.xml"}, {"a.xml": "<x/>"}, "Allowed file types: arrow,csv,json,jsonl,parquet,txt."),
    ],
)
def test_data_files(tmp_path, entry, files, fragment):
    _, found = run(tmp_path, {"a": entry}, files)
    (d,) = only(found, "LF403")
    assert fragment in d.message


@pytest.mark.parametrize(
    "name, content, fragment",
    [
        ("a.json", json.dumps(alpaca(3))[:-20], "a.json:1:"),  # truncated: the position of the break
        ("a.jsonl", "".join(json.dumps(r) + "\n" for r in alpaca(3)) + "{oops\n", "a.jsonl:4"),
        ("a.json", json.dumps(alpaca(2)).encode().replace(b"q0", b"q\xe9"), "not UTF-8 text"),
    ],
)
def test_corrupt_content_has_a_position(tmp_path, name, content, fragment):
    _, found = run(tmp_path, {"a": {"file_name": name}}, {name: content})
    (d,) = only(found, "LF404")
    assert fragment in d.message


@pytest.mark.parametrize("ranking, stage, needs", [(True, "sft", "non-ranking"), (False, "dpo", "ranking")])
def test_stage_mismatch(tmp_path, ranking, stage, needs):
    _, found = run(tmp_path, {"a": {"file_name": "a.json", "ranking": ranking}}, {"a.json": alpaca(2)}, stage=stage)
    (d,) = only(found, "LF405")
    assert f"needs {needs} data" in d.message and "not applicable in the current training stage" in d.message


def test_sharegpt_drops_name_reason_and_row(tmp_path):
    rows = [
        {"conversations": [{"from": "human", "value": "hi"}, {"from": "gpt", "value": "yo"}]},
        {"conversations": [{"from": "gpt", "value": "yo"}, {"from": "human", "value": "hi"}]},
        {"conversations": [{"from": "human", "value": "hi"}]},
    ]
    result, found = run(tmp_path, {"a": {"file_name": "a.json", "formatting": "sharegpt"}}, {"a.json": rows})
    messages = [d.message for d in only(found, "LF406")]
    assert any("role 'gpt' where human/observation is expected" in m and "a.json[1]" in m for m in messages)
    assert any("an odd number of messages (1)" in m and "a.json[2]" in m for m in messages)
    assert result.plan.num_examples == 1


def test_kto_rows_without_a_tag_are_dropped(tmp_path):
    columns = {"prompt": "instruction", "query": "input", "response": "output", "kto_tag": "label"}
    rows = [
        {"instruction": "q", "input": "", "output": "a", "label": True},
        {"instruction": "q", "input": "", "output": "a"},
    ]
    result, found = run(tmp_path, {"a": {"file_name": "a.json", "columns": columns}}, {"a.json": rows}, stage="kto")
    (d,) = only(found, "LF406")
    assert "needs chosen and rejected, or a KTO tag" in d.message and result.plan.num_examples == 1


def test_every_row_dropped(tmp_path):
    rows = [{"instruction": "q", "input": "", "output": None}] * 3
    result, found = run(tmp_path, {"a": {"file_name": "a.json"}}, {"a.json": rows})
    assert set(found) == {"LF406", "LF407"}
    assert "`output` is null, not a string" in found["LF406"][0].message
    assert "Cannot find valid samples" in found["LF407"][0].message and result.plan.steps is None


def test_a_columns_block_resets_the_columns_it_does_not_list(tmp_path):
    rows = [{"question": "q", "output": "a"}] * 4
    _, found = run(tmp_path, {"a": {"file_name": "a.json", "columns": {"prompt": "question"}}}, {"a.json": rows})
    assert "no response column is configured" in found["LF406"][0].message and "LF407" in found


def test_val_size_larger_than_the_data(tmp_path):
    _, found = run(tmp_path, {"a": {"file_name": "a.json"}}, {"a.json": alpaca(5)}, extra="val_size: 10\n")
    (d,) = only(found, "LF408")
    assert "test_size=10 should be either positive and smaller than the number of samples 5" in d.message


def test_interleave_probs_of_the_wrong_length(tmp_path):
    extra = "mix_strategy: interleave_under\ninterleave_probs: 0.5,0.3,0.2\n"
    _, found = run(
        tmp_path,
        {"a": {"file_name": "a.json"}, "b": {"file_name": "a.json"}},
        {"a.json": alpaca(5)},
        dataset="a,b",
        extra=extra,
    )
    only(found, "LF409")


def test_max_samples_truncates(tmp_path):
    result, found = run(tmp_path, {"a": {"file_name": "a.json"}}, {"a.json": alpaca(50)}, extra="max_samples: 10\n")
    (d,) = only(found, "LF410")
    assert "uses the first 10 of the 50 rows" in d.message and result.plan.num_examples == 10


def test_hub_dataset_not_cached(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "empty-hf-home"))
    result, found = run(tmp_path, {"a": {"hf_hub_url": "x/y"}}, {})
    (d,) = only(found, "LF411")
    assert "not counted offline" in d.message and "--num-examples" in d.fix and result.plan.steps is None


def test_streaming_local_files_without_workers(tmp_path):
    _, found = run(
        tmp_path, {"a": {"file_name": "a.json"}}, {"a.json": alpaca(5)}, extra="streaming: true\nmax_steps: 10\n"
    )
    (d,) = only(found, "LF412")
    assert "StopIteration" in d.message


def test_formats(tmp_path):
    csv = "instruction,input,output\nq1,,a1\nq2,,\nq3,x,a3\n"
    result, found = run(tmp_path / "csv", {"a": {"file_name": "a.csv"}}, {"a.csv": csv})
    assert result.plan.num_examples == 2 and "a.csv[1]" in found["LF406"][0].message  # an empty cell is missing
    text = "line one\nline two\n\nline four\n"
    result, _ = run(tmp_path / "txt", {"a": {"file_name": "a.txt", "columns": {"prompt": "text"}}}, {"a.txt": text},
                    extra="packing: false\n", stage="pt")  # fmt: skip
    assert result.plan.num_examples == 4
    pyarrow = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    table = pyarrow.Table.from_pylist(alpaca(7))
    (tmp_path / "pq" / "data").mkdir(parents=True)
    pq.write_table(table, tmp_path / "pq" / "data" / "a.parquet")
    result, _ = run(tmp_path / "pq", {"a": {"file_name": "a.parquet"}}, {})
    assert result.plan.num_examples == 7
    (tmp_path / "ar" / "data").mkdir(parents=True)
    with pyarrow.ipc.new_stream(str(tmp_path / "ar" / "data" / "a.arrow"), table.schema) as writer:
        writer.write_table(table)
    result, _ = run(tmp_path / "ar", {"a": {"file_name": "a.arrow"}}, {})
    assert result.plan.num_examples == 7


def test_exact_never_runs_a_dataset_script(tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "dataset_info.json").write_text(json.dumps({"a": {"script_url": "my_loader"}}))
    (tmp_path / "data" / "my_loader").mkdir()
    (tmp_path / "data" / "my_loader" / "my_loader.py").write_text("open('/tmp/lf-lint-should-not-exist', 'w')\n")
    config = tmp_path / "cfg.yaml"
    config.write_text(
        "model_name_or_path: m\nstage: sft\ndo_train: true\ndataset: a\ntemplate: default\noutput_dir: o\n"
    )
    options = LintOptions(llamafactory_version="0.9.5", transformers_version="4.57.1", workdir=tmp_path, exact=True)
    result = lint_file(config, options)
    (d,) = [d for d in result.diagnostics if d.code == "LF414"]
    assert "loaded by a script" in d.message


def test_pretraining_blocks_with_the_local_tokenizer(tmp_path):
    import tokenizers
    from tokenizers import models, pre_tokenizers, trainers

    tokenizer = tokenizers.Tokenizer(models.BPE(unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    texts = [f"row {i} says " + "word " * (i % 13) for i in range(300)]
    tokenizer.train_from_iterator(texts, trainers.BpeTrainer(vocab_size=200, special_tokens=["<unk>", "</s>"]))
    model = tmp_path / "model"
    model.mkdir()
    tokenizer.save(str(model / "tokenizer.json"))
    rows = [{"text": t} for t in texts]
    info = {"a": {"file_name": "a.json", "columns": {"prompt": "text"}}}
    extra = "cutoff_len: 32\npreprocessing_batch_size: 50\n"
    result, _ = run(tmp_path, info, {"a.json": rows}, extra=extra, stage="pt")
    assert not result.plan.exact  # model_name_or_path `m` has no tokenizer here: an estimate
    (tmp_path / "cfg.yaml").write_text(
        (tmp_path / "cfg.yaml").read_text().replace("model_name_or_path: m", f"model_name_or_path: {model}")
    )
    result = lint_file(
        tmp_path / "cfg.yaml",
        LintOptions(llamafactory_version="0.9.5", transformers_version="4.57.1", workdir=tmp_path, use_cache=False),
    )
    lengths = [len(tokenizer.encode(t, add_special_tokens=False).ids) + 1 for t in texts]  # + the eos token
    expected = sum(sum(lengths[i : i + 50]) // 32 for i in range(0, 300, 50))  # blocks per map batch of 50 rows
    assert result.plan.exact and result.plan.num_examples == expected and "tokenized with" in result.plan.basis


def test_counts_per_dataset_and_eval_on_each_dataset(tmp_path):
    from lf_lint.explain import trainer_block

    def rows(n, drop):
        return [{"instruction": f"q{i}", "input": "", "output": None if i < drop else "a"} for i in range(n)]

    info = {"a": {"file_name": "a.json"}, "b": {"file_name": "b.json"}}
    extra = "eval_dataset: a,b\neval_on_each_dataset: true\nmax_samples: 30\n"
    result, _ = run(tmp_path, info, {"a.json": rows(40, 5), "b.json": rows(20, 2)}, dataset="a,b", extra=extra)
    plan = result.plan.to_dict()
    assert plan["datasets"] == [
        {"name": "a", "role": "train", "rows": 40, "selected": 30, "examples": 25},
        {"name": "b", "role": "train", "rows": 20, "selected": 20, "examples": 18},
        {"name": "a", "role": "eval", "rows": 40, "selected": 30, "examples": 25},
        {"name": "b", "role": "eval", "rows": 20, "selected": 20, "examples": 18},
    ]
    assert plan["num_examples"] == 43 and plan["num_eval_examples"] == 43 and plan["eval_on_each_dataset"]
    text = "\n".join(trainer_block(result.plan))
    assert "a: 25 valid examples of 40 rows (30 selected by num_samples/max_samples)" in text
    assert "evaluated apart" in text


def test_a_config_that_only_predicts_counts_its_eval_sets(tmp_path):
    """Without do_train there is no step plan, but the eval sets are counted: prediction (predict_with_generate)
    keeps rows without a response, an evaluation of the loss drops them (LLaMA-Factory 0.9.5 data/processor)."""
    data = tmp_path / "data"
    data.mkdir()
    (data / "dataset_info.json").write_text(json.dumps({"a": {"file_name": "a.json"}, "b": {"file_name": "b.json"}}))
    (data / "a.json").write_text(json.dumps(alpaca(30)))
    (data / "b.json").write_text(json.dumps(alpaca(18) + [{"instruction": "q", "input": "", "output": None}] * 2))
    config = tmp_path / "cfg.yaml"
    base = "model_name_or_path: m\nstage: sft\nfinetuning_type: lora\neval_dataset: a,b\nmax_samples: 25\ntemplate: default\n"
    options = LintOptions(
        llamafactory_version="0.9.5", transformers_version="4.57.1", workdir=tmp_path, use_cache=False
    )
    config.write_text(base + "do_predict: true\npredict_with_generate: true\n")
    plan = lint_file(config, options).plan
    assert plan.steps is None and plan.num_eval_examples == 45
    assert plan.problem == "the config does not train (do_train is not set); it only predicts on 45 examples"
    config.write_text(base + "do_eval: true\n")
    plan = lint_file(config, options).plan
    assert plan.num_eval_examples == 43 and plan.problem.endswith("it only evaluates on 43 examples")


def test_a_config_that_trains_nothing(tmp_path):
    """LF511: without do_train the run does nothing, or only predicts while `dataset` is loaded for nothing; with
    val_size the eval split comes from `dataset`, which is then used."""
    base = "model_name_or_path: m\nfinetuning_type: lora\ntemplate: default\noutput_dir: o\ndataset: a\n"
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "dataset_info.json").write_text(
        json.dumps({"a": {"file_name": "a.json"}, "b": {"file_name": "b.json"}})
    )
    (tmp_path / "data" / "a.json").write_text(json.dumps(alpaca(20)))
    (tmp_path / "data" / "b.json").write_text(json.dumps(alpaca(10)))

    def lf511(extra: str, stage: str = "sft") -> list[str]:
        (tmp_path / "cfg.yaml").write_text(f"{base}stage: {stage}\n{extra}")
        options = LintOptions(llamafactory_version="0.9.5", transformers_version="4.57.1", workdir=tmp_path)
        return [d.message for d in lint_file(tmp_path / "cfg.yaml", options).diagnostics if d.code == "LF511"]

    assert lf511("") == ["the run does nothing: neither do_train nor do_eval/do_predict is set, so LLaMA-Factory "
                         "loads the model and the data, then exits without training"]  # fmt: skip
    assert lf511("do_train: false\n") == lf511("")
    predict = "do_predict: true\npredict_with_generate: true\n"
    assert lf511(predict + "eval_dataset: b\n") == [
        "`dataset` is loaded and preprocessed but never trained on: do_train is not set, so the run only predicts "
        "on eval_dataset"
    ]
    assert lf511(predict + "val_size: 0.2\n") == []
    assert lf511("do_train: true\n") == []
    assert lf511("reward_model: r\n", stage="ppo") == []  # LLaMA-Factory refuses PPO without do_train: LF233 says so
