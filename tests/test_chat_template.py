"""Packed SFT lengths with LLaMA-Factory's chat templates and the model's own tokenizer (no LLaMA-Factory needed).

The differential test against the real templates is tests/test_groundtruth.py::test_chat_template_lengths_match_llamafactory;
these check the pieces by hand with a word-level tokenizer, where every word and every run of punctuation is one token.
"""

from __future__ import annotations

import json

import tokenizers  # a dependency of lf-lint

from lf_lint.dataset import chat_template
from lf_lint.dataset.chat_template import SupervisedLengths, infer_seqlen, load_template
from lf_lint.dataset.conversion import Conversation
from lf_lint.engine import LintOptions, lint_file


def word_tokenizer(folder, config: dict | None = None, truncation: int | None = None):
    from tokenizers import models, pre_tokenizers

    from lf_lint.dataset.tokens import TokenCounter

    vocab = {"<unk>": 0, "</s>": 1}
    tokenizer = tokenizers.Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    if truncation:
        tokenizer.enable_truncation(max_length=truncation)
    folder.mkdir(exist_ok=True)
    tokenizer.save(str(folder / "tokenizer.json"))
    if config is not None:
        (folder / "tokenizer_config.json").write_text(json.dumps(config))
    return TokenCounter(folder / "tokenizer.json")


def conv(*messages: str, system: str = "", tools: str = "") -> Conversation:
    roles = ["user", "assistant"] * len(messages)
    return Conversation(tuple(zip(roles, messages)), system, tools, False)


def lengths(tmp_path, template: str, conversations, release="0.9.5", config=None, **settings):
    counter = word_tokenizer(tmp_path / "tok", config if config is not None else {"eos_token": "</s>"})
    measure = SupervisedLengths(counter, load_template(template, release), release, {"cutoff_len": 1024, **settings})
    return measure.lengths(list(conversations))


def test_default_template_by_hand(tmp_path):
    # user: "Human: hi there" </s> "\nAssistant:" -> Human : hi there </s> Assistant : = 7
    # assistant: "ok" </s> "\n" -> 2; a system prompt adds "System: be nice" </s> "\n" -> 5
    assert lengths(tmp_path, "default", [conv("hi there", "ok"), conv("hi there", "ok", system="be nice")]) == [9, 14]


def test_default_system_argument_arrived_in_0_9_3(tmp_path):
    settings = {"default_system": "be nice"}
    assert lengths(tmp_path, "default", [conv("hi there", "ok")], **settings) == [14]
    older = lengths(tmp_path, "default", [conv("hi there", "ok")], release="0.9.2")
    assert lengths(tmp_path, "default", [conv("hi there", "ok")], release="0.9.2", **settings) == older


def test_truncation_follows_infer_seqlen(tmp_path):
    assert infer_seqlen(7, 2, 5) == (3, 2)  # a short response is kept whole, the prompt is cut
    assert infer_seqlen(2, 9, 6) == (2, 4)  # a short prompt is kept whole, the response is cut
    assert infer_seqlen(6, 6, 6) == (3, 3)  # both long: cut in proportion
    assert lengths(tmp_path, "default", [conv("hi there", "ok")], cutoff_len=5) == [5]


def test_efficient_eos_reserves_one_token(tmp_path):
    template = load_template("glm4", "0.9.5")
    assert template.efficient_eos
    measure = SupervisedLengths(
        word_tokenizer(tmp_path / "tok", {"eos_token": "</s>"}), template, "0.9.5", {"cutoff_len": 10}
    )
    assert measure.length([3, 4]) == 8  # 3 + 4 and the eos token
    assert measure.length([30, 40]) == 10  # truncated to cutoff - 1, then the eos token


def test_reasoning_templates_add_or_remove_thoughts(tmp_path):
    thought = "<think>\nlong reasoning here\n</think>\n\nok"
    on = lengths(tmp_path, "qwen3", [conv("hi", "ok"), conv("hi", thought)])
    off = lengths(tmp_path, "qwen3", [conv("hi", "ok"), conv("hi", thought)], enable_thinking=False)
    assert on[1] > on[0]  # the thought is trained on
    assert off[0] == off[1] == on[0]  # enable_thinking false removes it; both get the same empty thought
    written = lengths(tmp_path, "qwen3", [conv("hi", "<think>\n\n</think>\n\nok")])
    assert on[0] == written[0]  # the empty thought qwen3 adds to a response without one


def test_tools_and_function_calls_in_the_default_format(tmp_path):
    counter = word_tokenizer(tmp_path / "tok", {"eos_token": "</s>"})
    measure = SupervisedLengths(counter, load_template("default", "0.9.5"), "0.9.5", {"cutoff_len": 1024})
    tools = '[{"name": "f", "description": "", "parameters": {"properties": {}}}]'
    prompt = chat_template.tool_prompts("0.9.5")["DEFAULT_TOOL_PROMPT"]
    text = prompt.format(tool_text="> Tool Name: f\nTool Description: \nTool Args:\n\n", tool_names="f")
    with_tools = measure.lengths([conv("hi", "ok", tools=tools)])[0]
    assert with_tools == 8 + 3 + counter.count(text)  # the tool text joins the (empty) system prompt: System : </s>
    call = Conversation((("user", "hi"), ("function", '{"name": "f", "arguments": {"x": 1}}')), "", "", False)
    # Human : hi </s> Assistant : = 6, then "Action: f\nAction Input: {"x": 1}" </s> (the assistant slots)
    assert measure.lengths([call]) == [6 + counter.count('Action: f\nAction Input: {"x": 1}') + 1]


def test_what_is_not_encoded_leaves_an_estimate(tmp_path):
    counter = word_tokenizer(tmp_path / "tok", {"eos_token": "</s>"})
    measure = SupervisedLengths(
        counter, load_template("default", "0.9.5"), "0.9.5", {"cutoff_len": 64, "tool_format": "gemma4"}
    )
    tool = conv("hi", "ok", tools='[{"name": "f"}]')  # a tool format lf-lint does not write
    broken = Conversation((("user", "hi"), ("function", "not json")), "", "", False)  # LLaMA-Factory stops on it
    media = Conversation((("user", "hi"), ("assistant", "ok")), "", "", True)
    empty_tools = conv("hi", "ok", tools="[]")  # an empty tool list still opens the system block
    assert measure.lengths([tool, broken, media, empty_tools]) == [None, None, None, 8 + 3]  # + System : </s>
    assert measure.unsupported == 3
    vision = SupervisedLengths(counter, load_template("qwen2_vl", "0.9.5"), "0.9.5", {"cutoff_len": 64})
    assert vision.lengths([conv("hi", "ok")]) == [None]


def test_tokenizer_loads_like_transformers(tmp_path):
    config = {"eos_token": {"content": "</s>"}, "additional_special_tokens": ["<|im_end|>"]}
    counter = word_tokenizer(tmp_path / "tok", config, truncation=2)
    assert counter.count("one two three four") == 4  # tokenizer.json's truncation does not apply to encode()
    assert counter.count("a<|im_end|>b") == 3  # a special token is never split by the pre-tokenizer
    assert counter.count("a<|eot_id|>b") == 5  # a <| eot_id |> b
    counter.fix_for_template("llama3", ["<|eot_id|>", "<|eom_id|>"], True)
    assert counter.eos_token == "<|eot_id|>" and counter.count("a<|eot_id|>b") == 3


def test_template_registry_per_release():
    from lf_lint.versions import SUPPORTED_LLAMAFACTORY

    assert chat_template._database()["releases"] == list(SUPPORTED_LLAMAFACTORY)  # regenerate it with a new release
    assert "qwen3" in chat_template.template_names("0.9.5") and "qwen3" not in chat_template.template_names("0.9.2")
    assert load_template("qwen3", "0.9.2") is None
    assert load_template("qwen3", "0.9.7").release == "0.9.6.dev0"  # a newer release reads the newest known registry
    assert "moss_vl" in chat_template.template_names("0.9.6.dev0") and "moss_vl" not in chat_template.template_names("0.9.5")
    assert load_template("qwen3", "0.9.3").thought_words == ("<think>", "</think>")


def write_sft_project(tmp_path, model: str, template: str | None = "default", rows=None, columns=None, extra=()):
    rows = rows or [{"instruction": f"say {'word ' * (i % 9)}", "input": "", "output": f"done {i}"} for i in range(60)]
    data = tmp_path / "data"
    data.mkdir(exist_ok=True)
    entry = {"file_name": "a.json", **({"columns": columns} if columns else {})}
    (data / "dataset_info.json").write_text(json.dumps({"a": entry}))
    (data / "a.json").write_text(json.dumps(rows))
    lines = [f"model_name_or_path: {model}", "stage: sft", "do_train: true", "finetuning_type: lora", "dataset: a",
             "output_dir: out", "packing: true", "cutoff_len: 17", "preprocessing_batch_size: 20"]  # fmt: skip
    if template:
        lines.append(f"template: {template}")
    lines += extra
    (tmp_path / "cfg.yaml").write_text("\n".join(lines) + "\n")
    options = LintOptions(
        llamafactory_version="0.9.5", transformers_version="4.57.1", workdir=tmp_path, use_cache=False
    )
    return lint_file(tmp_path / "cfg.yaml", options)


def test_packed_sft_is_exact_with_the_local_tokenizer(tmp_path):
    from lf_lint.dataset import packing

    without = write_sft_project(tmp_path, "no-such-model")
    assert not without.plan.exact and "tokenizer.json" in without.plan.basis
    word_tokenizer(tmp_path / "model", {"eos_token": "</s>"})
    result = write_sft_project(tmp_path, str(tmp_path / "model"))
    # prompt: Human : say word*w </s> Assistant : = 6 + w tokens; response: done i </s> = 3. The cutoff is 17 less one
    # (packing set in the config): 16, so infer_seqlen keeps the response and cuts the prompt to 13.
    measured = [min(6 + i % 9, 13) + 3 for i in range(60)]
    expected = sum(
        packing.greedy_knapsack_count(measured[i : i + 20], 16) for i in range(0, 60, 20)
    )  # map batches of 20
    assert result.plan.exact and result.plan.num_examples == expected, result.plan.basis
    assert "default template" in result.plan.basis


def test_what_is_missing_for_exact_counts_is_said(tmp_path):
    """A sentencepiece-only model (no tokenizer.json) stays an estimate that says how to make it exact; so does a
    tokenizer.json that `tokenizers` cannot read."""
    model = tmp_path / "sp-model"
    model.mkdir()
    (model / "tokenizer.model").write_bytes(b"\x0a\x0b sentencepiece")
    result = write_sft_project(tmp_path, str(model))
    assert not result.plan.exact
    assert "only tokenizer.model" in result.plan.basis and "save_pretrained" in result.plan.basis
    (model / "tokenizer.json").write_text("{not json")
    result = write_sft_project(tmp_path, str(model))
    assert not result.plan.exact and "cannot be read by `tokenizers`" in result.plan.basis


def test_unset_template_with_a_chat_template_stays_an_estimate(tmp_path):
    word_tokenizer(tmp_path / "model", {"eos_token": "</s>", "chat_template": "{{ messages }}"})
    result = write_sft_project(tmp_path, str(tmp_path / "model"), template=None)
    assert not result.plan.exact and "set `template:`" in result.plan.basis


def test_rows_that_cannot_be_encoded_leave_an_estimate(tmp_path):
    word_tokenizer(tmp_path / "model", {"eos_token": "</s>"})
    rows = [{"instruction": "hi", "input": "", "output": "ok", "tools": '[{"name": "f"}]'}] + [
        {"instruction": "hi", "input": "", "output": "ok", "tools": ""} for _ in range(9)
    ]
    columns = {"prompt": "instruction", "query": "input", "response": "output", "tools": "tools"}
    extra = ["tool_format: gemma4"]  # a tool format lf-lint does not write
    result = write_sft_project(tmp_path, str(tmp_path / "model"), rows=rows, columns=columns, extra=extra)
    assert not result.plan.exact and "1 of 10 examples could not be encoded" in result.plan.basis


def test_odd_values_never_raise(tmp_path):
    word_tokenizer(tmp_path / "model", {"eos_token": "</s>"})
    rows = [{"instruction": 7, "input": ["x"], "output": "ok"}, {"instruction": "hi", "input": "", "output": "ok"}]
    result = write_sft_project(tmp_path, str(tmp_path / "model"), rows=rows)
    assert result.plan is not None and not result.plan.exact


def test_tools_that_are_not_json_stop_llamafactory(tmp_path):
    rows = [{"instruction": "hi", "input": "", "output": "ok", "tools": "not json"}]
    columns = {"prompt": "instruction", "query": "input", "response": "output", "tools": "tools"}
    result = write_sft_project(tmp_path, "no-model", rows=rows, columns=columns)
    assert any(
        d.code.startswith("LF4") and "Invalid JSON format in tool description" in d.message for d in result.diagnostics
    )


def test_a_new_cutoff_reuses_the_cached_tokenization(tmp_path, monkeypatch):
    from lf_lint.dataset import counting, packing

    monkeypatch.setenv("LF_LINT_CACHE_DIR", str(tmp_path / "cache"))
    word_tokenizer(tmp_path / "model", {"eos_token": "</s>"})
    options = LintOptions(llamafactory_version="0.9.5", transformers_version="4.57.1", workdir=tmp_path)
    write_sft_project(tmp_path, str(tmp_path / "model"))
    lint_file(tmp_path / "cfg.yaml", options)  # tokenizes every row once and caches the per-message counts

    def no_rescan(*args, **kwargs):
        raise AssertionError("the rows were tokenized again")

    monkeypatch.setattr(counting, "scan", no_rescan)
    config = tmp_path / "cfg.yaml"
    config.write_text(config.read_text().replace("cutoff_len: 17", "cutoff_len: 11"))
    result = lint_file(config, options)
    # as in test_packed_sft_is_exact_with_the_local_tokenizer, with the cut-off 11 - 1: prompts cut to 10 - 3
    measured = [min(6 + i % 9, 7) + 3 for i in range(60)]
    expected = sum(packing.greedy_knapsack_count(measured[i : i + 20], 10) for i in range(0, 60, 20))
    assert result.plan.exact and result.plan.num_examples == expected
