"""The model's own tokenizer, when its files are on this machine: exact token counts.

LLaMA-Factory tokenizes with ``tokenizer.encode(text, add_special_tokens=False)`` on the model's
fast tokenizer, after ``Template.fix_special_tokens`` has added the template's stop words (and a
replaced end-of-sequence token) as special tokens. With the model's ``tokenizer.json`` (a local
``model_name_or_path``, or the Hugging Face cache), lf-lint rebuilds that tokenizer the way transformers loads
it (4.57 ``PreTrainedTokenizerFast.__init__``, 5.x ``TokenizersBackend.__init__``): the special
tokens named in ``tokenizer_config.json`` / ``special_tokens_map.json`` (the latter wins) are added
when the vocabulary does not already hold them as added tokens, and no truncation or padding
configured in ``tokenizer.json`` applies to ``encode``.

A model that ships only a slow tokenizer's files (a sentencepiece ``tokenizer.model``, a tiktoken file) is converted
into a fast one by transformers as it loads (``convert_slow_tokenizer``); lf-lint does not reproduce that conversion,
so such a model's counts stay estimates, and the basis says how to write the tokenizer.json that makes them exact.
"""

from __future__ import annotations

import json
from pathlib import Path

NAMED_SPECIAL = ("bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token")
FALLBACK_EOS = "<|endoftext|>"  # Template.fix_special_tokens when the tokenizer has no eos token


def _token_text(value: object) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and isinstance(value.get("content"), str):
        return value["content"]
    return None


def _read_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def special_tokens(folder: Path) -> tuple[dict[str, str], list[str]]:
    """(named special tokens, additional special tokens) as transformers reads them from the folder."""
    named: dict[str, str] = {}
    extra: list[str] = []
    for source in (_read_json(folder / "tokenizer_config.json"), _read_json(folder / "special_tokens_map.json")):
        for key in NAMED_SPECIAL:
            if key in source:
                text = _token_text(source[key])
                if text is None:
                    named.pop(key, None)
                else:
                    named[key] = text
        for key in ("additional_special_tokens", "extra_special_tokens"):
            if isinstance(source.get(key), list):
                extra = [t for t in map(_token_text, source[key]) if t]
    return named, extra


class TokenCounter:
    def __init__(self, path: Path):
        from tokenizers import AddedToken, Tokenizer

        self.path = path
        self._added_token = AddedToken
        self._tokenizer = Tokenizer.from_file(str(path))
        self._tokenizer.no_truncation()
        self._tokenizer.no_padding()
        self.named, extra = special_tokens(path.parent)
        self._add_special([*self.named.values(), *extra])
        stat = path.stat()
        self.identity = f"tokens:{path.resolve()}:{stat.st_size}:{stat.st_mtime_ns}"
        self.fixed_for: str | None = None

    def __str__(self) -> str:  # what the scan cache keys on: this tokenizer file, as the template left it
        return self.identity + (f":{self.fixed_for}" if self.fixed_for else "")

    def _add_special(self, tokens: list[str]) -> None:
        present = {token.content for token in self._tokenizer.get_added_tokens_decoder().values()}
        new = [t for t in dict.fromkeys(tokens) if t and t not in present]
        if new:
            self._tokenizer.add_special_tokens([self._added_token(t, special=True, normalized=False) for t in new])

    @property
    def bos_token(self) -> str | None:
        return self.named.get("bos_token")

    @property
    def eos_token(self) -> str | None:
        return self.named.get("eos_token")

    def fix_for_template(self, name: str, stop_words: list[str], replace_eos: bool) -> None:
        """Template.fix_special_tokens: a replaced or missing eos token and the stop words become special tokens."""
        stop_words = list(stop_words)
        if replace_eos and stop_words:
            self.named["eos_token"] = stop_words.pop(0)
        if self.eos_token is None:
            self.named["eos_token"] = FALLBACK_EOS
        self._add_special([self.eos_token, *stop_words])
        self.fixed_for = name

    def count(self, text: str) -> int:
        return len(self._tokenizer.encode(text, add_special_tokens=False).ids)

    def counts(self, texts: list[str]) -> list[int]:
        if not texts:
            return []
        return [len(e.ids) for e in self._tokenizer.encode_batch(texts, add_special_tokens=False)]

    def has_chat_template(self) -> bool:
        folder = self.path.parent
        config = _read_json(folder / "tokenizer_config.json")
        return isinstance(config.get("chat_template"), (str, list)) or any(
            (folder / name).is_file() for name in ("chat_template.jinja", "chat_template.json")
        )


class PretrainLengths:
    """Token counts of pre-training rows (data/processor/pretrain.py, 0.9.2-0.9.5): the first prompt message
    followed by the eos token as text ("<|end_of_text|>" under the llama3 template), without special tokens.

    ``scan`` passes it as ``measure``; ``str()`` is the cache key of everything the counts depend on.
    """

    def __init__(self, tokens: TokenCounter, template_name: str | None):
        self.tokens = tokens
        self.eos_text = "<|end_of_text|>" if template_name == "llama3" else tokens.eos_token

    def __str__(self) -> str:
        return f"pt-lengths:{self.tokens}:{self.eos_text}"

    def item(self, row: dict, attr, kept: bool) -> str:
        from .conversion import first_prompt_text

        return first_prompt_text(row, attr)

    def measure(self, texts: list[str]) -> list[int]:
        return self.tokens.counts([text + self.eos_text for text in texts])


# the files transformers converts into a fast tokenizer when tokenizer.json is missing (sentencepiece, tiktoken)
_SLOW_TOKENIZER_FILES = ("tokenizer.model", "spiece.model", "sentencepiece.bpe.model", "qwen.tiktoken", "vocab.json")


def local_tokenizer(model_name_or_path: object, workdir: Path) -> tuple[TokenCounter | None, str]:
    """(the model's fast tokenizer from its local tokenizer.json, or None with what is missing and how to get it)."""
    try:
        import tokenizers  # noqa: F401
    except ImportError:
        return None, "the `tokenizers` package is not installed here (pip install tokenizers)"
    from ..hub_cache import model_folders

    folders = model_folders(model_name_or_path, workdir)
    if not folders:
        return None, (f"the tokenizer.json of model {model_name_or_path!r} is not on this machine: point "
                      "model_name_or_path at a local folder, or let --online download it")  # fmt: skip
    for folder in folders:
        path = folder / "tokenizer.json"
        if path.is_file():
            try:
                return TokenCounter(path), ""
            except Exception as exc:  # an unreadable tokenizer leaves the estimate in place
                return None, f"{path} cannot be read by `tokenizers`: {type(exc).__name__}: {exc}"
    slow = next((folder / name for folder in folders for name in _SLOW_TOKENIZER_FILES if (folder / name).is_file()), None)
    if slow is not None:
        return None, (f"the model ships no tokenizer.json, only {slow.name}, which transformers converts into a fast "
                      "tokenizer when it loads (lf-lint does not run that conversion): write tokenizer.json once with "
                      "AutoTokenizer.from_pretrained(path).save_pretrained(path), or run with --exact")  # fmt: skip
    return None, f"no tokenizer.json in {folders[0]}"
