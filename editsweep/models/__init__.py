"""editsweep.models: load models by hub id, path or alias; module names by architecture; local models.

Public surface (import from the submodules; this package imports nothing heavy):
- `loading.load_model(name_or_path, device=None, dtype=None, expect=None) -> (model, tokenizer)`;
  names: paper keys (`codellama_7b`, `deepseek_coder_6_7b`, `codeqwen15_7b`), hub ids, local
  directories, `small:llama|qwen2` (trained, cached), `tiny:llama|qwen2` (random, in memory).
- `arch.arch_of(model) -> ArchSpec` (`.mlp_down(l)`, `.attn_out(l)`, `.layer(l)`, `.final_norm`,
  `.lm_head`, `.n_layers`, ...), `arch.get_module(model, name)`.
- `configs.known_config(key)`, `configs.build_random_model(key, dtype, device)`, `configs.tiny_config(arch)`.
- `tokenizer.train_tokenizer(texts, arch)`, `loading.local_tokenizer(arch)`.
- `small.small_model_path(arch) -> Path` (trains on first use), `reproduce.greedy_reproduction(...)`.
"""
