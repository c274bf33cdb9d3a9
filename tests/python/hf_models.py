"""Tiny random-weight Hugging Face DeepSeek models for the openmla.hf tests (needs torch and transformers)."""

import torch

YARN = {"rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": 64, "beta_fast": 32,
        "beta_slow": 1, "mscale": 0.707, "mscale_all_dim": 0.707}

# name: (family, config overrides). Every family with the q_lora path and without; YaRN; both RoPE layouts.
CONFIGS = {
    "v3": ("v3", {}),
    "v3-yarn-no-interleave": ("v3", {"rope_scaling": YARN, "rope_interleave": False}),
    "v2-no-q-lora": ("v2", {"q_lora_rank": None}),
    "v2-yarn": ("v2", {"rope_scaling": YARN}),
}


def make_model(name, *, hidden_size=64, heads=4, kv_lora_rank=32, qk_rope_head_dim=16, qk_nope_head_dim=16,
               v_head_dim=16, layers=2, vocab=256, dtype=torch.float32, device="cpu", seed=0):
    """A DeepseekV3ForCausalLM / DeepseekV2ForCausalLM with random weights and dense MLPs, eager attention."""
    import transformers

    family, overrides = CONFIGS[name]
    common = dict(vocab_size=vocab, hidden_size=hidden_size, intermediate_size=2 * hidden_size,
                  moe_intermediate_size=hidden_size // 2, num_hidden_layers=layers, num_attention_heads=heads,
                  num_key_value_heads=heads, first_k_dense_replace=layers, n_routed_experts=4, n_shared_experts=1,
                  num_experts_per_tok=2, n_group=1, topk_group=1, q_lora_rank=48, kv_lora_rank=kv_lora_rank,
                  qk_rope_head_dim=qk_rope_head_dim, qk_nope_head_dim=qk_nope_head_dim, v_head_dim=v_head_dim,
                  max_position_embeddings=256, pad_token_id=0, bos_token_id=1, eos_token_id=2,
                  attn_implementation="eager")
    common.update(overrides)
    config_class = transformers.DeepseekV3Config if family == "v3" else transformers.DeepseekV2Config
    model_class = transformers.DeepseekV3ForCausalLM if family == "v3" else transformers.DeepseekV2ForCausalLM
    torch.manual_seed(seed)
    model = model_class(config_class(**common)).to(device=device, dtype=dtype).eval()
    model.generation_config.pad_token_id = 0
    return model


def left_padded_batch(vocab=256, lengths=(12, 5, 9), device="cpu", seed=1):
    """input_ids [b, T] and attention_mask [b, T]: prompts of different lengths, padded on the left (id 0)."""
    generator = torch.Generator().manual_seed(seed)
    width = max(lengths)
    ids = torch.randint(3, vocab, (len(lengths), width), generator=generator)  # [b, T]
    mask = torch.zeros(len(lengths), width, dtype=torch.long)  # [b, T]
    for i, n in enumerate(lengths):
        mask[i, width - n :] = 1
    return ids.masked_fill(mask == 0, 0).to(device), mask.to(device)
