"""What an evaluation during training adds on one GPU: the forward pass of the largest eval batch.

The Trainer evaluates (``eval_strategy`` other than "no", or ``do_eval`` after training) with
``per_device_eval_batch_size`` sequences per forward (default 8, whatever the training micro-batch), under
``torch.no_grad`` (``Trainer.prediction_step``, transformers 4.49-5.6). Nothing is kept for a backward pass, but the
loss still materialises the logits of every position: bf16 logits, their fp32 copy (``ForCausalLMLoss`` upcasts)
and ``cross_entropy``'s log-softmax, 10 bytes per logit element, measured on CPU (tests/groundtruth/eval_probe.py,
the same on transformers 4.49, 4.57 and 5.6). Liger's fused loss does not help here: it skips the logits only in
training mode. Before the logits, one decoder layer's working set is alive at a time.

Between steps the optimizer step has freed the gradients (``zero_grad`` sets them to None; DeepSpeed ZeRO-1/2 frees
its partition in the step), so an evaluation holds the weights, the optimizer states and the buffers that persist.

With ``predict_with_generate`` (sft) the evaluation generates instead, without labels and so without a loss:
``num_beams`` sequences per prompt, the prompt's forward (the logits of its last position only) and a KV cache that
grows to ``max_new_tokens`` - 1 beyond the prompt, 2 x layers x KV heads x head size in 16 bits per token
(``DynamicCache``). At the last step each layer's keys, then values, grow by ``torch.cat`` beside the old ones; with
grouped-query attention SDPA first copies a layer's keys and values to every head (``repeat_kv``) when the batch is
padded, as prompts of different lengths are, and before transformers 4.54 always; eager attention always does, FA2
never. Measured on CPU (tests/groundtruth/eval_probe.py, transformers 4.49-5.6): the decoding peak to a few
kilobytes, the prompt's forward within 10% (one layer's working set, analytic).

The other stages evaluate with their own loss (LLaMA-Factory 0.9.5 ``train/*/trainer.py``), measured the same way:
RM and DPO run chosen and rejected together (2 x the eval batch), KTO its batch and the KL batch; DPO keeps the
policy's fp32 logits through the reference model's forward (16 bytes per element; 12 without a reference model:
ORPO, SimPO); the reward model's value head still computes the language model's logits.
"""

from __future__ import annotations

from typing import NamedTuple

from .model import Shape, kv_widths

LOGIT_BYTES = 10.0  # bf16 logits + fp32 copy + log-softmax
# stage: (sequences in one eval forward per eval-batch example, bytes per logit element); "dpo" with a reference
# model, "dpo-noref" without
_STAGES = {"pt": (1, LOGIT_BYTES), "sft": (1, LOGIT_BYTES), "rm": (2, LOGIT_BYTES), "kto": (2, LOGIT_BYTES),
           "dpo": (2, 16.0), "dpo-noref": (2, 12.0)}  # fmt: skip


class EvalForward(NamedTuple):
    """Bytes beyond what is kept, at the peak of the largest eval batch's forward."""

    logits: float
    activations: float  # the hidden states, a decoder layer's working set, the attention mask; parameters gathered


def layer_working_bytes(shape: Shape) -> float:
    """Bytes per token alive inside one decoder layer's inference forward (bf16), the larger of its attention and
    its MLP: the residual and normalised input, q/k/v with rotary temporaries, or the MLP's three intermediates."""
    h, a, kv, d = shape.hidden, shape.heads, shape.kv_heads, shape.head_dim
    attention = 8 * h + 10 * a * d + 4 * kv * d
    if shape.moe is not None:
        inner = shape.moe.top_k * shape.moe.expert_intermediate + (shape.moe.shared_intermediate or 0)
    else:
        inner = shape.intermediate
    return max(attention, 4 * h + 6 * inner)


def kv_cache_bytes(shape: Shape, sequences: int, length: int) -> float:
    """A 16-bit KV cache of ``sequences`` sequences of ``length`` tokens (generation: PPO rollouts, evaluation): keys
    and values of every attention layer (a Gated DeltaNet layer's fixed-size state is not counted)."""
    return sequences * length * kv_widths(shape)[0] * 2 * 2


def attention_scores_bytes(shape: Shape, seq_len: int) -> float:
    """Bytes per token of eager attention's scores in an inference forward: bf16 scores, their fp32 softmax and its
    bf16 copy, for every head over ``seq_len`` keys (measured on CPU: tests/groundtruth/eval_probe.py)."""
    return 8 * shape.heads * seq_len


def generation_forward(
    shape: Shape,
    *,
    sequences: int,
    prompt_len: int,
    max_new_tokens: int,
    mask_bytes: int,
    repeats_kv: bool,
    eager: bool = False,
) -> EvalForward:
    """``predict_with_generate``: the larger of the prompt's forward (the cache filling, one layer's working set) and
    the last decoding step (the whole cache, one layer's keys copied as they grow, or its keys and values copied to
    every head when ``repeats_kv``). ``sequences`` counts each beam."""
    tokens = sequences * prompt_len
    per_token = layer_working_bytes(shape) + 4 * shape.hidden  # + the embeddings' output and final hidden states
    if eager:
        per_token += attention_scores_bytes(shape, prompt_len)
    prefill = kv_cache_bytes(shape, sequences, prompt_len) + per_token * tokens + tokens * prompt_len * mask_bytes
    length = prompt_len + max_new_tokens
    cache = kv_cache_bytes(shape, sequences, length - 1)  # the last new token is never fed back
    layer_keys = sequences * (length - 1) * kv_widths(shape)[1] * 2  # the widest layer's keys
    repeat = shape.heads // shape.kv_heads if repeats_kv else 1
    copies = layer_keys * (2 * repeat if repeat > 1 else 1)
    # the token ids and attention mask (int64) and the last position's logits, bf16 and an fp32 copy
    kept = sequences * length * 16 + sequences * shape.vocab * 6
    return EvalForward(0.0, max(prefill, cache + copies + kept))


def eval_forward(
    shape: Shape,
    *,
    stage: str,
    eval_batch: int,
    seq_len: int,
    mask_bytes: int,
    gathered: float = 0.0,
    eager: bool = False,
) -> EvalForward:
    """``stage`` as in ``_STAGES``, ``mask_bytes`` per element of the padding mask (0 without one), ``gathered``
    the parameters ZeRO-3 or FSDP holds gathered meanwhile."""
    factor, logit_bytes = _STAGES.get(stage, _STAGES["sft"])
    sequences = factor * eval_batch
    tokens = sequences * seq_len
    hidden = 4 * shape.hidden * tokens  # the embeddings' output and the final hidden states
    mask = sequences * seq_len * seq_len * mask_bytes
    layer = (layer_working_bytes(shape) + (attention_scores_bytes(shape, seq_len) if eager else 0)) * tokens
    logits = tokens * shape.vocab * logit_bytes
    # the layers run before the logits exist: whichever moment is larger, with the hidden states and mask beside
    if logits >= layer:
        return EvalForward(logits, hidden + mask + gathered)
    return EvalForward(0.0, hidden + mask + gathered + layer)
