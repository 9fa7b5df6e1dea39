"""Exact token counts for pre-training blocks, with the model's own tokenizer when it is on this machine.

LLaMA-Factory's pre-training processor (data/processor/pretrain.py) tokenizes each row's first prompt
message followed by the end-of-sequence token, without special tokens, and packs the token stream into
blocks of ``cutoff_len``. The block count therefore depends only on the per-row token counts: with the
model's ``tokenizer.json`` (a local ``model_name_or_path``, or the Hugging Face cache) and the optional
``tokenizers`` package (``pip install 'lf-lint[tokenize]'``), lf-lint counts them exactly. The
end-of-sequence marker is one special token whichever the template picks.
"""

from __future__ import annotations

from pathlib import Path


class TokenCounter:
    def __init__(self, path: Path):
        from tokenizers import Tokenizer

        self.path = path
        self._tokenizer = Tokenizer.from_file(str(path))
        stat = path.stat()
        self.identity = f"tokens:{path.resolve()}:{stat.st_size}:{stat.st_mtime_ns}"

    def __str__(self) -> str:  # what the scan cache keys on: this tokenizer file, as it is now
        return self.identity

    def count(self, text: str) -> int:
        return len(self._tokenizer.encode(text, add_special_tokens=False).ids)


def local_tokenizer(model_name_or_path: object, workdir: Path) -> TokenCounter | None:
    """The model's fast tokenizer, when its tokenizer.json is local and ``tokenizers`` is installed."""
    if not isinstance(model_name_or_path, str) or not model_name_or_path:
        return None
    try:
        import tokenizers  # noqa: F401
    except ImportError:
        return None
    from ..hub_cache import snapshot

    local = Path(model_name_or_path).expanduser()
    local = local if local.is_absolute() else workdir / local
    candidates = [local / "tokenizer.json"]
    cached = snapshot("models", model_name_or_path)
    if cached is not None:
        candidates.append(cached / "tokenizer.json")
    for path in candidates:
        if path.is_file():
            try:
                return TokenCounter(path)
            except Exception:  # an unreadable tokenizer leaves the estimate in place
                return None
    return None
