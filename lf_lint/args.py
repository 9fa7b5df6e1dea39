"""Argument values as LLaMA-Factory's dataclasses will hold them, for cross-field rules.

``Args`` answers ``args.val_size`` with the user's value when it has a usable type, else
the field's default for the targeted versions (a wrong-typed value is already reported by
the schema rules; using the default keeps every other rule well-typed). A few values are
normalised the way ``__post_init__`` does it, where rules need the normalised form.
"""

from __future__ import annotations

from .schema import FieldTable, SchemaProblem

_MISSING = object()


def split_list(value: object) -> list | None:
    """``DataArguments.__post_init__.split_arg``: a str is split on commas and stripped."""
    if isinstance(value, str):
        return [item.strip() for item in value.split(",")]
    if isinstance(value, list):
        return value
    return None if value is None else [value]


class Args:
    def __init__(self, data: dict, table: FieldTable, problems: list[SchemaProblem]):
        self._data = data
        self._table = table
        self._bad = {p.key for p in problems if p.kind in ("type", "enum", "range")}

    def with_values(self, overrides: dict) -> Args:
        """The same config with some keys set otherwise (the memory advice's alternatives)."""
        changed = Args({**self._data, **overrides}, self._table, [])
        changed._bad = self._bad - set(overrides)
        return changed

    def is_set(self, name: str) -> bool:
        """The config (or an override) gives this key a value, even an unusable one."""
        return name in self._data

    def raw(self, name: str, default: object = None) -> object:
        return self._data.get(name, default)

    def get(self, name: str) -> object:
        if name in self._data and name not in self._bad:
            return self._data[name]
        return self._table.default(name)

    def __getattr__(self, name: str) -> object:
        if name.startswith("_"):
            raise AttributeError(name)
        return self.get(name)

    # --- values normalised as LLaMA-Factory / transformers do in __post_init__ ---

    @property
    def datasets(self) -> list | None:
        return split_list(self.get("dataset"))

    @property
    def eval_datasets(self) -> list | None:
        return split_list(self.get("eval_dataset"))

    @property
    def report_to(self) -> list[str]:
        value = self.get("report_to")
        if value is None:
            return []
        return [value] if isinstance(value, str) else [str(v) for v in value]

    @property
    def fsdp_options(self) -> list[str]:
        """``fsdp`` as the list of options transformers reads (a string, a list, or ``true``)."""
        value = self.get("fsdp")
        if value is True:
            return ["full_shard"]
        if isinstance(value, str):
            return value.split()
        return [str(option) for option in value] if isinstance(value, list) else []

    @property
    def stage(self) -> str:
        return str(self.get("stage") or "sft")

    @property
    def eval_strategy(self) -> str:
        """The evaluation strategy; the ``evaluation_strategy`` alias (transformers <= 4.50) overrides it."""
        alias = self.get("evaluation_strategy") if "evaluation_strategy" in self._table else None
        value = alias if alias is not None else self.get("eval_strategy")
        return str(value or "no")

    @property
    def do_eval(self) -> bool:
        return bool(self.get("do_eval")) or self.eval_strategy != "no"

    @property
    def trains(self) -> bool:
        """Whether the config trains: ``do_train``, or none of ``do_eval``/``do_predict`` either (a config that
        names no task is taken for the training it most likely forgot to ask for)."""
        return bool(self.get("do_train") or not (self.do_eval or self.get("do_predict")))

    @property
    def packing(self) -> bool:
        """``packing`` after DataArguments.__post_init__ (neat_packing forces it) and get_train_args
        (unset packing means "pack for pt")."""
        if self.get("neat_packing"):
            return True
        value = self.get("packing")
        return self.stage == "pt" if value is None else bool(value)

    @property
    def use_ref_model(self) -> bool:
        # FinetuningArguments.__post_init__ (0.9.2-0.9.5)
        return self.stage == "dpo" and self.get("pref_loss") not in ("orpo", "simpo")
