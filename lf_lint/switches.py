"""LLaMA-Factory's launch switches: environment variables that change what a train config may contain.

LLaMA-Factory reads them with ``extras/misc.py::is_env_enabled`` (a value of "true", "y" or "1", any case):

* ``USE_MCA`` (0.9.4+): ``hparams/parser.py::get_train_args`` parses the config with mcore_adapter's
  ``TrainingArguments`` (Megatron-Core's parallelism, optimizer and recompute settings over transformers'
  ``TrainingArguments``) instead of LLaMA-Factory's own, and trains with mcore_adapter's ``McaTrainer``.
* ``USE_MEGATRON_BRIDGE`` (main, 0.9.6.dev0): ``MegatronBridgeArguments`` join the groups and the run goes through
  megatron-bridge; ``USE_MCA`` wins when both are set.
* ``USE_RAY``: the run is launched on ``ray_num_workers`` Ray workers (launch.py).
* ``USE_V1``: the v1 trainer, whose configs lf-lint recognises and does not check (kinds.py).
* ``DISABLE_VERSION_CHECK``: skips the start-up check of the installed packages' versions (``check_version``).
* ``ALLOW_EXTRA_ARGS``: unknown keys are ignored instead of refused.

Where the launch environment is not the one lf-lint runs in (pre-commit, CI), ``--env NAME=VALUE`` and
``[tool.lf-lint] env`` give it; a config whose keys only make sense under one switch is linted under it, with a
note (``detect``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from .records import Record
from .versions import Target

# the argument set each switch parses a train config with (schema.TRAIN_VARIANT_GROUPS), and the first
# LLaMA-Factory release that has it
ARGUMENT_SWITCHES = {"USE_MCA": ("mca", (0, 9, 4)), "USE_MEGATRON_BRIDGE": ("megatron_bridge", (0, 9, 6))}
# ``use_kt: true`` on main: KTransformers runs on transformers-kt, whose TrainingArguments take ``kt_config``
# (docs/en/advanced/ktransformers.md at ff6d4d12e)
KT_SWITCH = ("kt", (0, 9, 6))


def enabled(env: Mapping[str, str], name: str) -> bool:
    """``is_env_enabled``: the variable is "true", "y" or "1" (any case)."""
    return str(env.get(name, "0")).strip().lower() in ("true", "y", "1")


class LaunchEnv(Record):
    """The environment the run is launched with, and how the train arguments are parsed under it."""

    variables: Mapping[str, str]
    detected: str | None = None  # a switch lf-lint assumed from the config's keys (not set in the environment)

    @classmethod
    def of(cls, overrides: Mapping[str, str] | None = None, base: Mapping[str, str] | None = None) -> LaunchEnv:
        """``base`` (default: this process's environment) with ``overrides`` (``--env``, ``[tool.lf-lint] env``)."""
        variables = dict(os.environ if base is None else base)
        variables.update(overrides or {})
        return cls(variables)

    def enabled(self, name: str) -> bool:
        return enabled(self.variables, name) or self.detected == name

    def arguments(self, target: Target, use_kt: bool = False) -> str:
        """The argument set of a train config: "default", "mca" or "megatron_bridge" (``get_train_args``'s order),
        or "kt" for a config with ``use_kt: true`` where that runs on transformers-kt."""
        for name, (variant, first) in ARGUMENT_SWITCHES.items():
            if self.enabled(name) and target.lf >= first:
                return variant
        return KT_SWITCH[0] if use_kt and target.lf >= KT_SWITCH[1] else "default"

    def with_detected(self, name: str | None) -> LaunchEnv:
        return self._replace(detected=name)


def parse_assignments(items: list[str]) -> dict[str, str]:
    """``["USE_MCA=1", ...]`` (--env, [tool.lf-lint] env) as a dict; ValueError names a malformed item."""
    parsed = {}
    for item in items:
        name, equals, value = str(item).partition("=")
        if not equals or not name.strip() or not name.strip().replace("_", "").isalnum():
            raise ValueError(f"--env takes NAME=VALUE, not {item!r}")
        parsed[name.strip()] = value.strip()
    return parsed


def detect_switch(config: Mapping, target: Target) -> str | None:
    """The argument switch a train config was written for, when its keys say so: the default arguments leave some
    of them unknown and one switch's arguments accept them (USE_MCA first, as ``get_train_args`` tries it first).
    None when the keys fit the default arguments, or no switch explains them."""
    from .schema import field_table

    keys = {key for key in config if isinstance(key, str)}
    default = field_table(target, "train")
    unknown = {key for key in keys if key not in default}
    if not unknown:
        return None
    best, explained = None, 0
    for name, (variant, first) in ARGUMENT_SWITCHES.items():
        if target.lf < first:
            continue
        accepted = set(field_table(target, "train", variant).accepted())
        if len(unknown & accepted) > explained and not (keys - unknown) - accepted - _REPLACED:
            best, explained = name, len(unknown & accepted)
    return best


# keys LLaMA-Factory's own TrainingArguments accepts that a switch's arguments do not, which a config written for
# the switch may still carry from a template (they do not decide against it)
_REPLACED = frozenset({"overwrite_output_dir", "predict_with_generate", "generation_max_length", "generation_num_beams"})
