"""FSDP as the Hugging Face Trainer sets it up for ``fsdp:`` in a LLaMA-Factory config: what one GPU holds, and when.

Read in torch 2.13 (``torch/distributed/fsdp``, FSDP1, which accelerate 1.11 uses unless ``fsdp_config`` asks for
version 2) and accelerate 1.11 (``Accelerator.prepare_model``); measured with LLaMA-Factory 0.9.5 and transformers
4.57 on CPU, every allocation traced (tests/groundtruth/fsdp_probe.py). Per GPU, with w processes and the
transformers defaults (``use_orig_params`` on, no backward prefetch):

* Kept: trainable parameters in fp32 (accelerate upcasts FSDP's flat parameters under bf16/fp16 mixed precision),
  their fp32 gradients and Adam's two moments, all sharded: 16/w bytes per parameter; frozen ones in 16 bits, 2/w.
  Autocast keeps no copies: the parameters FSDP gathers are already 16-bit.
* The previous step's gradients are freed when the next forward begins and backward rebuilds them layer by layer:
  at the start of backward, where the activations peak, there are none.
* The root unit (embeddings, final norm, output head: what is outside the wrapped decoder layers) is gathered in
  16 bits from the forward to the end of backward; FSDP does not reshard the root after forward. Each decoder
  layer is gathered (2 bytes per parameter) for its forward, and again for its backward.
* A trainable layer's backward holds its gathered parameters, autograd's gradient of each of them and their
  concatenation into the flat gradient: 6 bytes per layer parameter. Of frozen layers (LoRA), the one whose backward
  runs and the one before it are gathered: 4.
* The output head's gradient (2 bytes per element) lives from the start of backward to the root's reduce-scatter.
  At the end of backward the root holds its gathered parameters, their gradients and the flat gradient: 6 bytes
  per root parameter, with every layer's gradient rebuilt.
* ``backward_prefetch`` gathers the next layer early (2 more per layer parameter; with frozen layers the next
  one is gathered by then anyway); ``shard_grad_op`` (and
  ``hybrid_shard_zero2``) keep every layer gathered from its forward to its backward; without ``auto_wrap`` the
  whole model is one unit, gathered at once.
"""

from __future__ import annotations

from typing import NamedTuple

from .model import Shape, count_params, layer_params_at


class FsdpLayout(NamedTuple):
    """Bytes per GPU beyond what is kept, in backward (``estimate`` adds them to its phases)."""

    unit_bytes: float  # the layer(s) gathered for a layer's backward, beside its recomputation
    backward_bytes: float  # beside the activations at the start of backward: the root, the head's gradient
    late_bytes: float | None  # while the last layer's backward runs (its gathered unit included): the gradients
    # but that layer's and the root's are rebuilt, the activations gone but that layer's recomputation
    end_bytes: float  # at the root's reduce-scatter, the last moment of backward


def fsdp_layout(
    shape: Shape,
    *,
    options: list[str],
    config: dict,
    world: int,
    trainable_layers: bool,
    trainable_root: bool,
    trainable_head: bool,
    gathered_bytes: float,
    grad_bytes: float,
    layer_bytes: float | None = None,
) -> FsdpLayout:
    """``gathered_bytes``: 2 under bf16/fp16 mixed precision or pure_bf16, 4 in fp32; ``layer_bytes`` the same for
    the decoder layers when their weights are quantized (QLoRA stores 4-bit weights packed in 16-bit elements,
    ``bnb_4bit_quant_storage``, so FSDP gathers them packed); ``grad_bytes`` what a sharded gradient element keeps
    (4 beside fp32 parameters); ``config`` the ``fsdp_config`` mapping."""
    world = max(1, world)
    g = gathered_bytes
    lb = g if layer_bytes is None else layer_bytes
    total = count_params(shape)
    sizes = [layer_params_at(shape, i) for i in range(shape.layers)]
    layer = max(sizes)
    root = total - sum(sizes)
    wrapped_layers = total - root
    if "auto_wrap" not in options:  # one unit: the whole model is gathered at once
        root, layer, wrapped_layers = total, 0, 0
    unit = (3 if trainable_layers else 2) * lb * layer
    prefetch = str(config.get("backward_prefetch", "")).lower() in ("backward_pre", "backward_post")
    prefetched = lb * layer if prefetch and trainable_layers else 0.0  # frozen: the one before is gathered anyway
    kept_gathered = lb * (wrapped_layers - layer) if {"shard_grad_op", "hybrid_shard_zero2"} & set(options) else 0.0
    head = g * shape.vocab * shape.hidden if trainable_head else 0.0
    late = None
    if trainable_layers:
        unrebuilt = grad_bytes * (layer + (root if trainable_root else 0)) / world
        late = g * root + head + unit - unrebuilt  # nothing left to prefetch: the root is gathered
    end = 3 * g * root - grad_bytes * root / world if trainable_root else 0.0
    return FsdpLayout(unit + prefetched, g * root + head + kept_gathered, late, end)
