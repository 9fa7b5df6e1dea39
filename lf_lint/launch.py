"""How the training will be launched: processes, distributed mode and the DeepSpeed config.

``llamafactory-cli train`` (launcher.py, 0.9.2-0.9.5) relaunches itself under ``torchrun``
when ``FORCE_TORCHRUN`` is set or more than one device is visible (and neither Ray nor
KTransformers is used), with ``--nnodes $NNODES --nproc_per_node ${NPROC_PER_NODE:-devices}``.
Under torchrun the Trainer's ``parallel_mode`` is DISTRIBUTED and its world size is
``NNODES * NPROC_PER_NODE``; otherwise one process trains on one device.
"""

from __future__ import annotations

import json
import os

from .records import Record


class Launch(Record):
    nproc_per_node: int
    nnodes: int
    source: str  # "option", "environment", "assumed", "accelerate", "ray" (ray_num_workers) or "ray-default"
    force_torchrun: bool = False
    ray_workers: int | None = None
    accelerate: AccelerateConfig | None = None  # `accelerate launch --config_file`

    @property
    def world_size(self) -> int:
        if self.ray_workers is not None:
            return self.ray_workers
        return self.nproc_per_node * self.nnodes

    @property
    def distributed(self) -> bool:
        """``training_args.parallel_mode == DISTRIBUTED``: the run goes through torchrun (or Ray)."""
        return self.force_torchrun or self.world_size > 1 or self.ray_workers is not None

    def describe(self) -> str:
        how = {"option": "", "environment": " (from the environment)", "assumed": " (assumed; set --num-gpus)",
               "accelerate": " (from the accelerate config)", "ray": " (ray_num_workers)", "ray-default": " (USE_RAY=1, ray_num_workers unset)"}[self.source]  # fmt: skip
        if self.ray_workers is not None:
            return f"{self.ray_workers} Ray worker(s){how}"
        if self.nnodes > 1:
            return f"{self.nnodes} nodes x {self.nproc_per_node} process(es) = {self.world_size}{how}"
        return f"{self.world_size} process(es){how}"


def fsdp_loads_on_cpu(args, launch: Launch, tf: tuple) -> bool:
    """transformers' ``is_fsdp_enabled()`` while LLaMA-Factory loads the model (it then loads on the CPU, rank 0
    only, instead of whole onto every process's GPU): a distributed run with the environment's ACCELERATE_USE_FSDP
    and FSDP_CPU_RAM_EFFICIENT_LOADING both true. ``accelerate launch`` with an FSDP config sets both
    (``fsdp_cpu_ram_efficient_loading`` defaults to true, accelerate 1.x); a YAML ``fsdp`` makes TrainingArguments
    set the first before transformers 5 and the second from ``fsdp_config`` (``cpu_ram_efficient_loading``, default
    false), over what the launcher set (transformers 4.45-5.6). ``args`` may have an accelerate config's FSDP
    settings merged in: ``AccelerateConfig.fsdp_arguments`` carries its cpu_ram_efficient_loading along."""
    launched = launch.accelerate
    by_accelerate = launched is not None and launched.distributed_type == "FSDP"
    if not launch.distributed:
        return False
    if not args.fsdp_options:
        return by_accelerate and str(launched.fsdp.get("fsdp_cpu_ram_efficient_loading", True)).lower() == "true"
    config = args.fsdp_config
    if not isinstance(config, dict):  # a JSON file lf-lint does not read: its default
        config = {}
    efficient = str(config.get("cpu_ram_efficient_loading", False)).lower() == "true"
    return efficient and (by_accelerate or tf < (5, 0, 0))


def _env_int(env: dict, name: str) -> int | None:
    value = env.get(name, "").strip()
    return int(value) if value.isdigit() else None


def _truthy(env: dict, name: str) -> bool:
    # extras/misc.py::is_env_enabled
    return env.get(name, "0").strip().lower() in ("true", "y", "1")


def resolve_launch(
    num_gpus: int | None = None,
    nnodes: int | None = None,
    env: dict | None = None,
    ray_num_workers: int | None = None,
    accelerate: AccelerateConfig | None = None,
) -> Launch:
    env = dict(os.environ) if env is None else env
    force = _truthy(env, "FORCE_TORCHRUN")
    if _truthy(env, "USE_RAY"):
        return Launch(1, 1, "ray" if ray_num_workers else "ray-default", force, ray_num_workers or 1)
    if num_gpus is not None or nnodes is not None:
        return Launch(num_gpus or 1, nnodes or _env_int(env, "NNODES") or 1, "option", force, accelerate=accelerate)
    if accelerate is not None:
        machines = accelerate.num_machines
        return Launch(max(1, accelerate.num_processes // machines), machines, "accelerate",
                      accelerate.distributed_type != "NO", accelerate=accelerate)  # fmt: skip
    world = _env_int(env, "WORLD_SIZE")
    if world is not None and world > 0:
        return Launch(world, 1, "environment", True)
    nodes = _env_int(env, "NNODES") or 1
    per_node = _env_int(env, "NPROC_PER_NODE")
    if per_node is None and env.get("CUDA_VISIBLE_DEVICES", "").strip():
        per_node = len([d for d in env["CUDA_VISIBLE_DEVICES"].split(",") if d.strip()])
    if per_node is not None and per_node > 0:
        return Launch(per_node, nodes, "environment", force)
    return Launch(1, nodes, "assumed" if nodes == 1 else "environment", force)


class DeepSpeed(Record):
    """The ``deepspeed`` argument, read the way transformers' HfDeepSpeedConfig reads it."""

    source: str | None  # the path as written, or None for an inline dict
    config: dict | None
    problem: str | None = None
    launcher: str | None = None  # the accelerate config that names it, when the YAML has no `deepspeed`

    def describe(self) -> str:
        """How a message names this config."""
        if self.launcher is None:
            return "the `deepspeed` config"
        return f"the DeepSpeed config {self.launcher} launches with" + (f" ({self.source})" if self.source else "")

    @property
    def zero_stage(self) -> int | None:
        if not self.config:
            return None
        stage = (self.config.get("zero_optimization") or {}).get("stage")
        return stage if isinstance(stage, int) else None

    @property
    def zero3(self) -> bool:
        """transformers.integrations.is_deepspeed_zero3_enabled()"""
        return self.zero_stage == 3

    def offloads(self, what: str) -> bool:
        section = (self.config or {}).get("zero_optimization") or {}
        device = (section.get(f"offload_{what}") or {}).get("device")
        return device in ("cpu", "nvme")


# extras/constants.py::CHECKPOINT_NAMES (LLaMA-Factory 0.9.2-0.9.5): files that mark a finished save
WEIGHT_FILES = (
    "adapter_model.safetensors", "adapter_model.bin", "model.safetensors.index.json", "model.safetensors",
    "pytorch_model.bin.index.json", "pytorch_model.bin",
)  # fmt: skip


class OutputDir(Record):
    """What is already in ``output_dir`` (relative to the launch directory)."""

    path: str  # as the run sees it: relative to the launch directory, ~ expanded
    exists: bool
    last_checkpoint: str | None  # transformers trainer_utils.get_last_checkpoint
    has_weights: bool


def read_output_dir(value: object, workdir: str | os.PathLike) -> OutputDir | None:
    if not isinstance(value, str):
        return None
    path = os.path.join(workdir, os.path.expanduser(value))  # an absolute value stays as it is
    try:
        names = os.listdir(path)
    except (OSError, ValueError):
        return OutputDir(path, False, None, False)
    numbered = []
    for name in names:
        if name.startswith("checkpoint-") and name[len("checkpoint-") :].isdigit() and os.path.isdir(os.path.join(path, name)):
            numbered.append((int(name[len("checkpoint-") :]), name))
    last = max(numbered)[1] if numbered else None
    return OutputDir(path, True, last, any(os.path.isfile(os.path.join(path, n)) for n in WEIGHT_FILES))


def read_deepspeed(value: object, workdir: str | os.PathLike) -> DeepSpeed | None:
    if value is None:
        return None
    if isinstance(value, dict):
        return DeepSpeed(None, value)
    if not isinstance(value, str):
        return DeepSpeed(str(value), None, f"`deepspeed` must be a path to a JSON file or a mapping, not {value!r}")
    if value.lstrip().startswith("{"):  # transformers parses dict-like strings itself (_VALID_DICT_FIELDS)
        try:
            inline = json.loads(value)
        except json.JSONDecodeError as exc:
            return DeepSpeed(None, None, f"the inline DeepSpeed JSON is not valid: {exc.msg} at column {exc.colno}")
        return (
            DeepSpeed(None, inline)
            if isinstance(inline, dict)
            else DeepSpeed(None, None, "the inline DeepSpeed JSON must be an object")
        )
    try:
        with open(os.path.join(workdir, value), encoding="utf-8") as handle:
            config = json.loads(handle.read())
    except FileNotFoundError:
        return DeepSpeed(value, None, f"DeepSpeed config {value} not found (relative paths start at {workdir})")
    except json.JSONDecodeError as exc:
        return DeepSpeed(
            value,
            None,
            f"DeepSpeed config {value} is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}",
        )
    except (OSError, UnicodeDecodeError, ValueError) as exc:  # ValueError: a NUL byte in the path
        return DeepSpeed(value, None, f"cannot read DeepSpeed config {value!r}: {exc}")
    if not isinstance(config, dict):
        return DeepSpeed(value, None, f"DeepSpeed config {value} must hold a JSON object")
    return DeepSpeed(value, config)


# accelerate 1.x commands/config/config_args.py and utils/dataclasses.py: the sharding strategies by name or number
_SHARDING = {"1": "full_shard", "2": "shard_grad_op", "3": "no_shard", "4": "hybrid_shard", "5": "hybrid_shard_zero2"}


class AccelerateConfig(Record):
    """An ``accelerate launch --config_file`` YAML (what ``accelerate config`` writes): the processes, and FSDP or
    DeepSpeed as the Trainer then sets them up from accelerate's environment."""

    path: str
    distributed_type: str  # NO, MULTI_GPU, FSDP, DEEPSPEED, ...
    num_processes: int
    num_machines: int
    fsdp: dict  # fsdp_config
    deepspeed: dict  # deepspeed_config

    def fsdp_arguments(self) -> dict:
        """The Trainer arguments (``fsdp``, ``fsdp_config``) that set FSDP up as this file does."""
        if self.distributed_type != "FSDP":
            return {}
        f = self.fsdp
        strategy = str(f.get("fsdp_sharding_strategy", "FULL_SHARD")).lower()
        if "fsdp_reshard_after_forward" in f:  # FSDP2's form of the same choice
            strategy = "full_shard" if f["fsdp_reshard_after_forward"] in (True, "true", "True") else "shard_grad_op"
        options = [_SHARDING.get(strategy, strategy)]
        if str(f.get("fsdp_auto_wrap_policy", "NO_WRAP")).upper() != "NO_WRAP":
            options.append("auto_wrap")
        if f.get("fsdp_offload_params") is True:
            options.append("offload")
        config = {"backward_prefetch": str(f.get("fsdp_backward_prefetch", "NO_PREFETCH")).lower(),
                  "cpu_ram_efficient_loading": str(f.get("fsdp_cpu_ram_efficient_loading", True)).lower() == "true"}  # fmt: skip
        if "fsdp_version" in f:
            config["version"] = f["fsdp_version"]
        return {"fsdp": " ".join(options), "fsdp_config": config}

    def deepspeed_config(self, workdir: str | os.PathLike) -> DeepSpeed | None:
        """The DeepSpeed config this file launches with: its ``deepspeed_config_file``, or the few settings it
        names itself (``zero_stage``, offload devices), as accelerate's DeepSpeedPlugin builds them."""
        if self.distributed_type != "DEEPSPEED":
            return None
        d = self.deepspeed
        if d.get("deepspeed_config_file"):
            return read_deepspeed(str(d["deepspeed_config_file"]), workdir)._replace(launcher=self.path)
        section: dict = {"stage": d.get("zero_stage", 2)}
        for what in ("optimizer", "param"):
            device = d.get(f"offload_{what}_device", "none")
            if device in ("cpu", "nvme"):
                section[f"offload_{what}"] = {"device": device}
        return DeepSpeed(None, {"zero_optimization": section}, launcher=self.path)


def read_accelerate_config(path: str | os.PathLike) -> AccelerateConfig:
    """Raises ``ValueError`` with the file (and line and column) when it cannot be used."""
    import yaml

    path = os.fspath(path)
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"cannot read the accelerate config {path}: {exc}") from exc
    try:
        data = yaml.safe_load(text) if not path.endswith(".json") else json.loads(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}:{mark.column + 1}" if mark else ""
        raise ValueError(
            f"{path}{where}: the accelerate config is not valid YAML ({getattr(exc, 'problem', exc)})"
        ) from exc
    except json.JSONDecodeError as exc:
        raise ValueError(
            f"{path}:{exc.lineno}:{exc.colno}: the accelerate config is not valid JSON ({exc.msg})"
        ) from exc
    if not isinstance(data, dict) or "distributed_type" not in data:
        raise ValueError(f"{path}: not an accelerate config (no `distributed_type`; `accelerate config` writes one)")

    def count(key: str) -> int:
        value = data.get(key, 1)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{path}: `{key}` must be a whole number of at least 1, not {value!r}")
        return value

    sections = {}
    for key in ("fsdp_config", "deepspeed_config"):
        value = data.get(key) or {}
        if not isinstance(value, dict):
            raise ValueError(f"{path}: `{key}` must be a mapping")
        sections[key] = value
    return AccelerateConfig(str(path), str(data["distributed_type"]).upper(), count("num_processes"),
                            count("num_machines"), sections["fsdp_config"], sections["deepspeed_config"])  # fmt: skip
