"""A vision-language model's encoder in training: what autograd keeps of it per image patch, and how many
patches LLaMA-Factory feeds it in one sequence.

``VisionTraining`` says what of the encoder trains (llamafactory.py fills it from LLaMA-Factory's freezing);
``patch_bytes`` gives its activations per patch (estimate.py multiplies them by the micro-batch's patches);
``image_patches`` bounds the patches by the cut-off, or by the data's images and ``image_max_pixels``.
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import NamedTuple

from .model import Vision


class VisionTraining(NamedTuple):
    """What autograd records of a vision encoder (Qwen-VL towers: a patch embedding, blocks, a merger)."""

    blocks: int  # trainable tower blocks, checkpointed like the language model's layers
    recorded: int  # frozen blocks after the first trainable one: recorded in full, never checkpointed
    stem: bool  # the patch embedding trains (its pixel input is kept)
    projector: bool  # the projector trains
    fp32: bool  # the tower's trainable weights are upcast to fp32 (full and freeze tuning under AMP)
    patches: int = 0  # image patches in one micro-batch


class _TowerActivations(NamedTuple):
    """Bytes per image patch a trained vision encoder keeps, in multiples of its width (w) and MLP width (i)."""

    per_width: float  # a block run in full: per_width x w + per_inner x i
    per_inner: float
    merger_trained: float  # the projector, when it trains
    merger_passed: float  # when only gradients for the tower pass through it
    tower_extra: tuple[float, float, float]  # after the blocks when the tower trains: 16-bit, fp32 blocks, all fp32
    per_deepstack: float = 0.0  # each of Qwen3-VL's deepstack mergers
    fp32_stream: bool = False  # a trained fp32 position embedding makes the residual stream fp32


# Measured like the decoder layers (transformers 4.57, bf16 autocast, SDPA) on each tower with every way LLaMA-Factory
# trains it (tests/groundtruth/memory_probe.py with images). A checkpointed block keeps its input (2 x w, 4 x w with
# an fp32 residual stream); a frozen block recorded after a trained one about half of a full block.
_TOWERS = {
    "qwen2_vl": _TowerActivations(23.4, 6, 8, 4, (0, 0, 0)),  # LayerNorms, a QuickGELU MLP (input, sigmoid, product)
    "qwen2_5_vl": _TowerActivations(32, 8, 8, 4, (2, 4, 4)),  # RMSNorms, a gated MLP, window reordering
    "qwen3_vl": _TowerActivations(26, 4, 8, 4, (2, 2, 2), per_deepstack=6, fp32_stream=True),
    "qwen3_vl_moe": _TowerActivations(26, 4, 8, 4, (2, 2, 2), per_deepstack=6, fp32_stream=True),
    # SigLIP; the projector works on pooled tokens (16 patches each), the extra is its post-LayerNorm
    "gemma3": _TowerActivations(25, 4, 0.375, 0, (4.5, 4.5, 8.75), fp32_stream=True),
}
# Qwen3.5's tower is Qwen3-VL's without the deepstack mergers (transformers 5.x: the same patch embedding, position
# embedding, blocks and merger code): Qwen3-VL's measurements, not measured on Qwen3.5 itself.
_TOWERS["qwen3_5"] = _TOWERS["qwen3_5_moe"] = _TOWERS["qwen3_vl"]


def patch_bytes(vision: Vision | None, run: VisionTraining, checkpointing: bool) -> tuple[float, float]:
    """(kept from forward to backward, one checkpointed block rebuilt in backward) per image patch."""
    tower = _TOWERS.get(vision.model_type) if vision is not None else None
    if tower is None or not (run.blocks or run.stem or run.projector):
        return 0.0, 0.0
    w = vision.width
    block = tower.per_width * w + tower.per_inner * vision.inner
    kept = (4 if tower.fp32_stream and run.stem and run.fp32 else 2) * w
    saved = 2.0 * vision.patch_values if run.stem else 0.0  # the pixel values, in 16 bits
    saved += run.blocks * (kept if checkpointing else block) + run.recorded * block / 2
    merger_trains = run.projector or (run.blocks and run.fp32)  # (an fp32 tower's output costs it as much)
    saved += (tower.merger_trained if merger_trains else tower.merger_passed) * w
    if run.blocks:
        extra = tower.tower_extra[(1 + run.stem) if run.fp32 else 0]
        saved += (extra + tower.per_deepstack * vision.deepstack) * w
    rebuilt = 2 * block if (checkpointing and run.blocks) else 0.0
    return saved, rebuilt


@lru_cache(maxsize=16)
def most_image_tokens(max_pixels: int, side: int) -> int:
    """The most image tokens an image of at most ``max_pixels`` becomes, over every aspect ratio up to 200:1
    (LLaMA-Factory's Qwen-VL plugins shrink an image to ``max_pixels`` and reshape more elongated ones; transformers'
    ``smart_resize`` then rounds each side to a whole number of tokens of ``side`` pixels)."""
    most = 0
    for width in range(1, math.isqrt(max_pixels * 200) + 1):
        height = max_pixels // width  # the tallest image of this width: rounding only grows with it
        w, h = max(width, 28), max(height, 28)  # the plugin's least side
        if max(w, h) <= 200 * min(w, h):
            most = max(most, max(1, round(h / side)) * max(1, round(w / side)))
    return most


def image_patches(image_max_pixels: object, vision: Vision, seq: int, images: int | None) -> tuple[int, str]:
    """(patches a vision encoder sees for the longest sequence, the basis in words). Image tokens sit within
    cutoff_len, each standing for ``patches_per_token`` patches; with the data read, no more than its most images per
    example, each at most ``image_max_pixels`` (``most_image_tokens``) or Gemma 3's fixed size."""
    per_token = vision.patches_per_token
    by_cutoff = seq * per_token
    if images is None or not per_token:
        return by_cutoff, f"every token of the sequence an image token, {per_token} patches each; fewer need less"
    if vision.patches_per_image:
        per_image, size = vision.patches_per_image, "its fixed size"
    else:
        max_pixels = image_max_pixels if isinstance(image_max_pixels, int) else 768 * 768  # LLaMA-Factory's default
        per_image = most_image_tokens(max_pixels, vision.token_pixels) * per_token
        size = f"image_max_pixels {max_pixels:,}"
    if images * per_image >= by_cutoff:
        return by_cutoff, f"the data's {images} image(s) per example fill the sequence: {per_token} patches per token"
    return images * per_image, f"the data's most images per example ({images}), each at {size}"
