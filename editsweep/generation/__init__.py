"""vLLM-free batched sampling on plain transformers: n completions per prompt, cut at stop rules.

    from editsweep.generation import sample, GenerationConfig
    completions = sample(model, tokenizer, prompts, n=5, cfg=GenerationConfig.from_yaml(), seeds=seeds)

How it is fast (each part kept because `editsweep bench generation` measured it):
- many prompts per batch, left-padded, sorted by length and sized by a KV token budget that
  fits the free GPU memory (`planner`);
- the prompt is encoded once per problem and its KV cache copied n times (`kvcache`, layout
  "expand", the default) or shared by the n samples (layout "shared": 1/n of the prompt
  memory, but its matmul attention measured slower than SDPA over the copies);
- our own preallocated static KV cache and attention, plugged into the model's unchanged
  forward through transformers' AttentionInterface; SDPA for prefill (and "expand" decode);
- sampling on the device with counter-based random streams, so no step waits for the host;
- each decoding step captured as a CUDA graph per KV-length bucket and replayed;
- host checks for EOS / stop strings only every `check_every` steps, early exit when all stopped.

Reproducibility. Sample j of a prompt draws from the stream (seed, j): its uniforms do not
depend on the batch, the other prompts, their order, or n. On CPU (float32/float64) a
completion is therefore independent of how prompts were batched (the tests check this; only
float rounding in differently padded matrix products could ever change a near-tie). On GPU
(bf16), the same prompts, seeds, config and batch plan give the same completions run after run
on the same GPU and software; the plan depends on `token_budget` (fix it, instead of "auto",
to make the plan independent of free memory), and a different batch composition can change
bf16 rounding in the matrix products, so a sample may diverge after a near-tie — the
distribution and the seed-to-stream mapping stay the same.
"""

from editsweep.generation.config import GenerationConfig
from editsweep.generation.sampling import sample
from editsweep.generation.stopping import StopRule
from editsweep.generation.streams import derive_seed

__all__ = ["sample", "GenerationConfig", "StopRule", "derive_seed"]
