"""Our own preallocated KV cache, and the attention function that reads it.

The model's own forward runs unchanged (so edited layers, GRACE wrappers and the
architecture's rotary/projection code all apply); only its attention step is swapped, through
transformers' `AttentionInterface`, for `kv_attention`, which receives the rotated query, key
and value of the new tokens, writes key/value into `KVState`'s static tensors and attends over
them. Nothing here allocates per step except small score tensors, shapes stay fixed within a
`kv_bucket`, and no value is read back to the host — so a decoding step can be captured as a
CUDA graph and replayed.

Two layouts:
- "shared": one prompt cache per problem, [B, Hkv, Lp, D], read by its n samples, plus a
  generated-part cache [B·n, Hkv, G, D]. Attention is two matmul blocks joined by one softmax
  over both (prompt scores for the n samples come from one batched matmul, as grouped-query
  attention does for heads). Prompt KV memory and reads are 1/n of "expand".
- "expand": the prompt cache is copied n times right after the single prefill, so every sample
  owns [Lp + G] slots; attention is `torch.nn.functional.scaled_dot_product_attention` with the
  query heads of one KV head packed as its query rows (no repeated K/V).
Prefill always writes the prompt once (chunks of rows) and uses SDPA with a causal+padding mask.
"""

from __future__ import annotations

from contextlib import contextmanager

__all__ = ["ATTENTION_NAME", "KVState", "kv_attention", "attention_swapped", "model_geometry"]

ATTENTION_NAME = "editsweep_kv"
_registered = False


def model_geometry(config) -> dict:
    """Layer count, KV heads, head dim, query heads, positions and vocab of a decoder config."""
    heads = config.num_attention_heads
    kv_heads = getattr(config, "num_key_value_heads", None) or heads
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // heads
    layer_types = getattr(config, "layer_types", None) or []
    if "sliding_attention" in layer_types:
        raise NotImplementedError(
            f"{config.model_type}: sliding-window attention layers are not supported by editsweep.generation"
        )
    return dict(
        layers=config.num_hidden_layers,
        heads=heads,
        kv_heads=kv_heads,
        head_dim=head_dim,
        groups=heads // kv_heads,
        max_positions=getattr(config, "max_position_embeddings", None),
        vocab=config.vocab_size,
        hidden=config.hidden_size,
    )


class KVState:
    """The cache of one batch of B prompts × n samples, and what the next forward must do with it.

    `mode` is "prefill" (rows `rows` of the batch are being encoded) or "decode" (every sequence
    feeds its token number `step`, generated-part slot `step`). `gen_len` is how many generated
    slots attention reads this step (a multiple of the bucket, fixed per captured graph).
    """

    def __init__(self, geometry: dict, prompt_valid, n: int, max_new_tokens: int, layout: str, dtype, device):
        import torch

        self.geometry = geometry
        self.layout = layout
        self.n = n
        self.batch = prompt_valid.shape[0]
        self.rows_total = self.batch * n
        self.prompt_len = prompt_valid.shape[1]
        self.max_new = max_new_tokens
        layers, hkv, dim = geometry["layers"], geometry["kv_heads"], geometry["head_dim"]
        zeros = lambda *shape: torch.zeros(*shape, dtype=dtype, device=device)  # noqa: E731 (never NaN)
        self.prompt_valid = prompt_valid.to(device=device, dtype=torch.bool)
        self.prompt_valid_rows = self.prompt_valid.repeat_interleave(n, dim=0)  # [N, Lp]
        if layout == "shared":
            self.k_prompt = [zeros(self.batch, hkv, self.prompt_len, dim) for _ in range(layers)]
            self.v_prompt = [zeros(self.batch, hkv, self.prompt_len, dim) for _ in range(layers)]
            self.k_gen = [zeros(self.rows_total, hkv, max_new_tokens, dim) for _ in range(layers)]
            self.v_gen = [zeros(self.rows_total, hkv, max_new_tokens, dim) for _ in range(layers)]
        elif layout == "expand":
            total = self.prompt_len + max_new_tokens
            self.k_all = [zeros(self.rows_total, hkv, total, dim) for _ in range(layers)]
            self.v_all = [zeros(self.rows_total, hkv, total, dim) for _ in range(layers)]
        else:
            raise ValueError(f"unknown kv layout {layout!r}")
        self.step = torch.zeros(1, dtype=torch.long, device=device)
        self.gen_positions = torch.arange(max_new_tokens, device=device)
        self.mode = "prefill"
        self.rows = (0, self.batch)
        self.prefill_from = 0
        self.prefill_mask = None
        self.decode_mask = None
        self.gen_len = max_new_tokens

    # -- per-forward setup -------------------------------------------------------------------
    def begin_prefill(self, r0: int, r1: int, length: int) -> None:
        """Prepare to encode rows r0:r1, whose prompts fit in the last `length` prompt slots.

        Rows are sorted longest first, so a chunk is padded only to its own longest prompt: its
        keys go to slots [Lp - length, Lp) and the slots before stay zero and masked.
        """
        import torch

        self.mode = "prefill"
        self.rows = (r0, r1)
        self.prefill_from = self.prompt_len - length
        valid = self.prompt_valid[r0:r1, self.prefill_from:]
        causal = torch.ones(length, length, dtype=torch.bool, device=valid.device).tril_()
        eye = torch.eye(length, dtype=torch.bool, device=valid.device)
        # pad queries see themselves, so no softmax row is empty (NaN)
        self.prefill_mask = ((causal[None] & valid[:, None, :]) | eye[None])[:, None]  # [b, 1, L, L]

    def begin_decode(self, gen_len: int) -> None:
        """Prepare the mask of this step: real prompt tokens and generated slots 0..step."""
        import torch

        self.mode = "decode"
        self.gen_len = gen_len
        gen_valid = (self.gen_positions[:gen_len] <= self.step).expand(self.rows_total, gen_len)
        self.decode_mask = torch.cat([self.prompt_valid_rows, gen_valid], dim=-1)[:, None, None, :]

    # -- the attention ---------------------------------------------------------------------
    def attend(self, layer: int, query, key, value, scaling: float):
        if self.mode == "prefill":
            return self._prefill(layer, query, key, value, scaling)
        if self.layout == "shared":
            return self._decode_shared(layer, query, key, value, scaling)
        return self._decode_expand(layer, query, key, value, scaling)

    def _prefill(self, layer, query, key, value, scaling):
        import torch.nn.functional as F

        r0, r1 = self.rows
        first, end = self.prefill_from, self.prompt_len
        if self.layout == "shared":
            self.k_prompt[layer][r0:r1, :, first:end] = key
            self.v_prompt[layer][r0:r1, :, first:end] = value
        else:
            shape = (self.batch, self.n, *self.k_all[layer].shape[1:])
            self.k_all[layer].view(shape)[r0:r1, :, :, first:end] = key[:, None]
            self.v_all[layer].view(shape)[r0:r1, :, :, first:end] = value[:, None]
        groups = self.geometry["groups"]
        if groups > 1:
            key = key.repeat_interleave(groups, dim=1)
            value = value.repeat_interleave(groups, dim=1)
        out = F.scaled_dot_product_attention(query, key, value, attn_mask=self.prefill_mask, scale=scaling)
        return out.transpose(1, 2), None

    def _decode_expand(self, layer, query, key, value, scaling):
        import torch.nn.functional as F

        rows, hkv, dim = self.rows_total, self.geometry["kv_heads"], self.geometry["head_dim"]
        slot = self.step + self.prompt_len
        self.k_all[layer].index_copy_(2, slot, key)
        self.v_all[layer].index_copy_(2, slot, value)
        length = self.prompt_len + self.gen_len
        keys = self.k_all[layer][:, :, :length]
        values = self.v_all[layer][:, :, :length]
        packed = query.reshape(rows, hkv, self.geometry["groups"], dim)
        out = F.scaled_dot_product_attention(packed, keys, values, attn_mask=self.decode_mask, scale=scaling)
        return out.reshape(rows, 1, self.geometry["heads"], dim), None

    def _decode_shared(self, layer, query, key, value, scaling):
        import torch

        batch, n, rows = self.batch, self.n, self.rows_total
        hkv, groups, dim, plen = self.geometry["kv_heads"], self.geometry["groups"], self.geometry["head_dim"], self.prompt_len
        gen_len = self.gen_len
        self.k_gen[layer].index_copy_(2, self.step, key)
        self.v_gen[layer].index_copy_(2, self.step, value)
        # Prompt block: the n samples × the head group of each KV head share one matmul.
        q_prompt = query.reshape(batch, n, hkv, groups, dim).permute(0, 2, 1, 3, 4).reshape(batch, hkv, n * groups, dim)
        s_prompt = torch.matmul(q_prompt, self.k_prompt[layer].transpose(-1, -2))
        s_prompt = s_prompt.view(batch, hkv, n, groups, plen).permute(0, 2, 1, 3, 4).reshape(rows, hkv, groups, plen)
        q_gen = query.reshape(rows, hkv, groups, dim)
        s_gen = torch.matmul(q_gen, self.k_gen[layer][:, :, :gen_len].transpose(-1, -2))
        scores = torch.cat([s_prompt, s_gen], dim=-1).float() * scaling
        scores = scores.masked_fill_(~self.decode_mask, float("-inf"))
        probs = torch.softmax(scores, dim=-1).to(query.dtype)
        p_prompt = probs[..., :plen].reshape(batch, n, hkv, groups, plen).permute(0, 2, 1, 3, 4)
        o_prompt = torch.matmul(p_prompt.reshape(batch, hkv, n * groups, plen), self.v_prompt[layer])
        o_prompt = o_prompt.view(batch, hkv, n, groups, dim).permute(0, 2, 1, 3, 4).reshape(rows, hkv, groups, dim)
        o_gen = torch.matmul(probs[..., plen:], self.v_gen[layer][:, :, :gen_len])
        return (o_prompt + o_gen).reshape(rows, 1, self.geometry["heads"], dim), None

    # -- accounting ------------------------------------------------------------------------
    def cache_bytes(self) -> int:
        tensors = (
            self.k_prompt + self.v_prompt + self.k_gen + self.v_gen if self.layout == "shared" else self.k_all + self.v_all
        )
        return sum(t.numel() * t.element_size() for t in tensors)


def kv_attention(module, query, key, value, attention_mask, scaling=None, dropout=0.0, **kwargs):
    """transformers attention-interface entry: route to the `KVState` passed as `editsweep_kv`."""
    state = kwargs.get("editsweep_kv")
    if state is None:
        raise RuntimeError(
            f"attention implementation {ATTENTION_NAME!r} needs editsweep_kv=<KVState>; it is only active inside "
            "editsweep.generation.sample"
        )
    if scaling is None:
        scaling = query.shape[-1] ** -0.5
    return state.attend(module.layer_idx, query, key, value, scaling)


def _register() -> None:
    global _registered
    if not _registered:
        from transformers import AttentionInterface

        AttentionInterface.register(ATTENTION_NAME, kv_attention)
        _registered = True


@contextmanager
def attention_swapped(model):
    """Run the model with `kv_attention` and eval mode; restore its implementation and mode after."""
    _register()
    previous = model.config._attn_implementation
    was_training = model.training
    model.set_attn_implementation(ATTENTION_NAME)
    if model.config._attn_implementation != ATTENTION_NAME:
        model.set_attn_implementation(previous)
        raise NotImplementedError(
            f"{type(model).__name__} does not accept a custom attention implementation; "
            "editsweep.generation needs a transformers model built on AttentionInterface"
        )
    model.eval()
    try:
        yield
    finally:
        model.set_attn_implementation(previous)
        model.train(was_training)
