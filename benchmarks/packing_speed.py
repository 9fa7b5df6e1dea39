"""How fast lf-lint counts packed SFT sequences exactly, with the model's tokenizer and chat template.

    python benchmarks/packing_speed.py [--rows 200000]

Writes an alpaca-style JSON-lines file, a byte-level BPE ``tokenizer.json`` (8,000 tokens, trained on a
sample of the data, with a ``tokenizer_config.json`` naming its eos token) in a local model folder, and a
config with ``packing: true`` and the ``qwen3`` template (stop words, replaced eos, empty thoughts). Then it
times, each in a fresh process, ``lf-lint --no-cache`` (every row converted, encoded with the template,
truncated and packed per preprocessing batch), ``lf-lint`` again from the scan cache, and again with another
``cutoff_len`` (the cached per-message token counts are truncated anew), and prints wall time,
peak memory, the count and whether it is exact. Needs the ``tokenizers`` package (``lf-lint[tokenize]``).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from count_speed import run

WORDS = [
    "the",
    "model",
    "learns",
    "to",
    "answer",
    "short",
    "questions",
    "about",
    "numbers",
    "words",
    "and",
    "code",
    "in",
    "a",
    "few",
    "lines",
]


def write_project(folder: Path, rows: int) -> None:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    rng = random.Random(0)
    data = folder / "data"
    data.mkdir(parents=True, exist_ok=True)
    texts = []
    with (data / "chat.jsonl").open("w") as out:
        for i in range(rows):
            question = " ".join(rng.choice(WORDS) for _ in range(rng.randint(5, 120)))
            answer = " ".join(rng.choice(WORDS) for _ in range(rng.randint(5, 400)))
            if i < 2000:
                texts += [question, answer]
            out.write(json.dumps({"instruction": question, "input": "", "output": f"{answer} {i}"}) + "\n")
    (data / "dataset_info.json").write_text(json.dumps({"chat": {"file_name": "chat.jsonl"}}))
    model = folder / "model"
    model.mkdir(exist_ok=True)
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=8000, special_tokens=["<|endoftext|>", "<|im_end|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)  # fmt: skip
    tokenizer.train_from_iterator(texts, trainer=trainer)
    tokenizer.save(str(model / "tokenizer.json"))
    (model / "tokenizer_config.json").write_text(json.dumps({"eos_token": "<|endoftext|>"}))
    (folder / "cfg.yaml").write_text(
        f"model_name_or_path: {model}\nstage: sft\ndo_train: true\nfinetuning_type: lora\ndataset: chat\n"
        "template: qwen3\npacking: true\ncutoff_len: 1024\noutput_dir: out\nbf16: true\n"
        "per_device_train_batch_size: 4\ngradient_accumulation_steps: 4\n"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=200_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="lf-lint-packing-") as tmp:
        folder = Path(tmp)
        write_project(folder, args.rows)
        size = (folder / "data" / "chat.jsonl").stat().st_size
        print(f"{args.rows:,} rows, {size / 1e6:.0f} MB of JSON lines, packed SFT (qwen3 template, cutoff 1024)")
        env = dict(os.environ, LF_LINT_CACHE_DIR=str(folder / "cache"), TOKENIZERS_PARALLELISM="true")
        lint = [sys.executable, "-m", "lf_lint.cli", "cfg.yaml", "--format", "json", "--llamafactory-version", "0.9.5"]
        cold_wall, cold_rss, out = run([*lint, "--no-cache"], folder, env)
        plan = json.loads(out)["files"][0]["plan"]
        run(lint, folder, env)  # fills the cache
        warm_wall, warm_rss, _ = run(lint, folder, env)
        config = folder / "cfg.yaml"
        config.write_text(config.read_text().replace("cutoff_len: 1024", "cutoff_len: 2048"))
        recut_wall, recut_rss, recut = run(lint, folder, env)
        recut_plan = json.loads(recut)["files"][0]["plan"]
        print(f"lf-lint, cold (--no-cache): {cold_wall:6.2f} s  {cold_rss:6.0f} MB  -> {plan['num_examples']:,} "
              f"packed sequences, exact: {plan['exact']}")  # fmt: skip
        print(f"lf-lint, cached           : {warm_wall:6.2f} s  {warm_rss:6.0f} MB")
        print(f"cutoff_len 2048, cached   : {recut_wall:6.2f} s  {recut_rss:6.0f} MB  -> {recut_plan['num_examples']:,} "
              "packed sequences (the per-message token counts are reused)")  # fmt: skip
        print(f"basis: {plan['basis']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
