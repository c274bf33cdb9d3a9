"""openmla.nn: DeepSeek's MLA attention layer and its paged latent cache, for PyTorch models (needs torch).

    MLAAttention(hidden_size, num_heads, q_lora_rank=..., ...)   the layer; MLAAttention.from_hf(module)
    PagedLatentCache(num_layers, batch, dtype=, device=)         per-layer latent caches, one page pool
    RotaryEmbedding(d_rope, base, scaling)                       cos / sin of positions (plain or YaRN)
    apply_rope, softmax_scale, RMSNorm                           DeepSeek's RoPE, softmax scale and norm
"""

from .attention import MLAAttention
from .cache import PagedLatentCache, Step
from .norm import RMSNorm
from .rope import RotaryEmbedding, apply_rope, softmax_scale

__all__ = ["MLAAttention", "PagedLatentCache", "RMSNorm", "RotaryEmbedding", "Step", "apply_rope", "softmax_scale"]
