"""openmla.nn.MLAAttention: DeepSeek's Multi-head Latent Attention layer, decoding on openmla."""

import torch
import torch.nn.functional as F

from .._decode import decode
from .norm import RMSNorm
from .rope import apply_rope

# The projections MLAAttention holds, under Hugging Face's names (a state dict loads either way).
PROJECTIONS = ("q_proj", "q_a_proj", "q_a_layernorm", "q_b_proj", "kv_a_proj_with_mqa", "kv_a_layernorm",
               "kv_b_proj", "o_proj")


class MLAAttention(torch.nn.Module):
    """DeepSeek-V2/V3 MLA: queries through a low-rank path (q_a_proj -> RMSNorm -> q_b_proj) or one q_proj,
    keys and values through a latent: c_kv = RMSNorm(x W_DKV) (kv_lora_rank wide) and a RoPE key k_pe
    (qk_rope_head_dim) shared by all heads; these two are all a cache holds.

    Prefill (tokens of sequences with nothing cached) runs PyTorch's scaled_dot_product_attention on the
    decompressed keys and values. Decode (s_q >= 1 new tokens per sequence over a PagedLatentCache,
    causal within the new tokens) runs openmla.decode in the absorbed form: W_UK folded into the query
    (q_nope [qk_nope] -> q_lat [kv_lora_rank], so the query is kv_lora_rank + qk_rope wide, 576 for
    DeepSeek) and W_UV applied to the kv_lora_rank-wide output before o_proj.

    hidden_size, num_heads, q_lora_rank (None: a plain q_proj), kv_lora_rank, qk_nope_head_dim,
    qk_rope_head_dim, v_head_dim: the model's dims. softmax_scale: default 1 / sqrt(qk_nope + qk_rope);
    under YaRN pass the model's (openmla.nn.softmax_scale(qk_head_dim, scaling)). rope_interleave: how
    the RoPE pairs are laid out (openmla.nn.apply_rope).
    """

    def __init__(self, hidden_size, num_heads, *, q_lora_rank, kv_lora_rank=512, qk_nope_head_dim=128,
                 qk_rope_head_dim=64, v_head_dim=128, softmax_scale=None, rope_interleave=True,
                 attention_bias=False, rms_norm_eps=1e-6, device=None, dtype=None):
        super().__init__()
        self._set_dims(num_heads, q_lora_rank, kv_lora_rank, qk_nope_head_dim, qk_rope_head_dim, v_head_dim,
                       softmax_scale, rope_interleave)
        kw = {"device": device, "dtype": dtype}
        qk_head_dim = qk_nope_head_dim + qk_rope_head_dim
        if q_lora_rank is None:
            self.q_proj = torch.nn.Linear(hidden_size, num_heads * qk_head_dim, bias=False, **kw)
            self.q_a_proj = self.q_a_layernorm = self.q_b_proj = None
        else:
            self.q_proj = None
            self.q_a_proj = torch.nn.Linear(hidden_size, q_lora_rank, bias=attention_bias, **kw)
            self.q_a_layernorm = RMSNorm(q_lora_rank, rms_norm_eps, **kw)
            self.q_b_proj = torch.nn.Linear(q_lora_rank, num_heads * qk_head_dim, bias=False, **kw)
        self.kv_a_proj_with_mqa = torch.nn.Linear(hidden_size, kv_lora_rank + qk_rope_head_dim,
                                                  bias=attention_bias, **kw)
        self.kv_a_layernorm = RMSNorm(kv_lora_rank, rms_norm_eps, **kw)
        self.kv_b_proj = torch.nn.Linear(kv_lora_rank, num_heads * (qk_nope_head_dim + v_head_dim), bias=False, **kw)
        self.o_proj = torch.nn.Linear(num_heads * v_head_dim, hidden_size, bias=attention_bias, **kw)

    def _set_dims(self, num_heads, q_lora_rank, kv_lora_rank, qk_nope_head_dim, qk_rope_head_dim, v_head_dim,
                  softmax_scale, rope_interleave):
        self.num_heads = num_heads
        self.q_lora_rank = q_lora_rank
        self.kv_lora_rank = kv_lora_rank
        self.qk_nope_head_dim = qk_nope_head_dim
        self.qk_rope_head_dim = qk_rope_head_dim
        self.v_head_dim = v_head_dim
        qk_head_dim = qk_nope_head_dim + qk_rope_head_dim
        self.softmax_scale = qk_head_dim**-0.5 if softmax_scale is None else float(softmax_scale)
        self.rope_interleave = bool(rope_interleave)

    @classmethod
    def from_hf(cls, module, *, rope_interleave=None):
        """The MLAAttention of a transformers DeepseekV3Attention / DeepseekV2Attention, sharing its
        projection modules (and so their weights: nothing is copied). The softmax scale is the module's
        own (YaRN's mscale included). rope_interleave: default the model's (DeepSeek-V3's config flag,
        always True for DeepSeek-V2, whose RoPE rotates complex pairs)."""
        name = type(module).__name__
        if name not in ("DeepseekV3Attention", "DeepseekV2Attention"):
            raise TypeError(f"openmla: module: expected a transformers DeepseekV3Attention or DeepseekV2Attention, "
                            f"given {type(module).__module__}.{name}")
        if rope_interleave is None:
            rope_interleave = getattr(module.config, "rope_interleave", True) if name == "DeepseekV3Attention" else True
        scale = getattr(module, "scaling", None) or getattr(module, "softmax_scale", None)
        self = cls.__new__(cls)
        torch.nn.Module.__init__(self)
        self._set_dims(module.num_heads, module.q_lora_rank, module.kv_lora_rank, module.qk_nope_head_dim,
                       module.qk_rope_head_dim, module.v_head_dim, scale, rope_interleave)
        for projection in PROJECTIONS:
            setattr(self, projection, getattr(module, projection, None))
        return self

    def forward(self, hidden_states, rope, *, cache=None, layer=0, valid=None):
        """hidden_states: [b, s, hidden]; rope: (cos, sin) float32 [b, s, qk_rope / 2] of the tokens'
        positions (openmla.nn.RotaryEmbedding). Returns [b, s, hidden].

        cache=None: causal attention over these s tokens alone; valid [b, s] bool marks real tokens
        (padding is never attended to; a padding row attends to itself). With a PagedLatentCache whose
        step is begun (cache.begin_step): the tokens' latents go into layer `layer`'s cache at the step's
        slots, then prefill (nothing was cached) or decode over the cache.
        """
        b, s, _ = hidden_states.shape
        q_nope, q_pe = self._queries(hidden_states)  # [b, s, h, qk_nope], [b, s, h, qk_rope]
        kv_c, k_pe = self._latents(hidden_states)  # [b, s, kv_lora], [b, s, qk_rope]
        cos, sin = rope  # [b, s, qk_rope / 2]
        q_pe = apply_rope(q_pe, cos[:, :, None], sin[:, :, None], self.rope_interleave)  # [b, s, h, qk_rope]
        k_pe = apply_rope(k_pe, cos, sin, self.rope_interleave)  # [b, s, qk_rope]
        if cache is None:
            out = self._prefill(q_nope, q_pe, kv_c, k_pe, valid)  # [b, s, h, v]
        else:
            step = cache.step
            cache.write(layer, kv_c, k_pe)
            if step.prefill:
                out = self._prefill(q_nope, q_pe, kv_c, k_pe, step.valid)  # [b, s, h, v]
            else:
                out = self._decode(q_nope, q_pe, cache, layer)  # [b, s, h, v]
        return self.o_proj(out.reshape(b, s, self.num_heads * self.v_head_dim))

    def _queries(self, x):
        """x [b, s, hidden] -> q_nope [b, s, h, qk_nope], q_pe [b, s, h, qk_rope] (before RoPE)."""
        if self.q_proj is not None:
            q = self.q_proj(x)  # [b, s, h * qk_head]
        else:
            q = self.q_b_proj(self.q_a_layernorm(self.q_a_proj(x)))  # [b, s, h * qk_head]
        q = q.view(*x.shape[:2], self.num_heads, self.qk_nope_head_dim + self.qk_rope_head_dim)
        return q.split([self.qk_nope_head_dim, self.qk_rope_head_dim], dim=-1)

    def _latents(self, x):
        """x [b, s, hidden] -> c_kv [b, s, kv_lora] (normalized), k_pe [b, s, qk_rope] (before RoPE)."""
        kv_c, k_pe = self.kv_a_proj_with_mqa(x).split([self.kv_lora_rank, self.qk_rope_head_dim], dim=-1)
        return self.kv_a_layernorm(kv_c), k_pe

    def _kv_b_per_head(self):
        """W_UK [h, qk_nope, kv_lora] and W_UV [h, v, kv_lora]: views of kv_b_proj's weight."""
        w = self.kv_b_proj.weight.view(self.num_heads, self.qk_nope_head_dim + self.v_head_dim, self.kv_lora_rank)
        return w[:, : self.qk_nope_head_dim], w[:, self.qk_nope_head_dim :]

    def _prefill(self, q_nope, q_pe, kv_c, k_pe, valid):
        """Causal attention over the s new tokens, keys and values decompressed. Returns [b, s, h, v]."""
        b, s, h, _ = q_nope.shape
        kv = self.kv_b_proj(kv_c).view(b, s, h, self.qk_nope_head_dim + self.v_head_dim)  # [b, s, h, nope + v]
        k_nope, v = kv.split([self.qk_nope_head_dim, self.v_head_dim], dim=-1)  # [b, s, h, nope], [b, s, h, v]
        q = torch.cat([q_nope, q_pe], dim=-1).transpose(1, 2)  # [b, h, s, qk_head]
        k = torch.cat([k_nope, k_pe[:, :, None].expand(b, s, h, self.qk_rope_head_dim)], dim=-1)  # [b, s, h, qk_head]
        mask = torch.ones(s, s, dtype=torch.bool, device=q.device).tril()  # [s, s] query row, key column
        if valid is not None:
            eye = torch.eye(s, dtype=torch.bool, device=q.device)  # [s, s]
            mask = (mask & valid[:, None, :]) | eye  # [b, s, s]
        mask = mask.expand(b, s, s)[:, None]  # [b, 1, s, s]
        out = F.scaled_dot_product_attention(q, k.transpose(1, 2), v.transpose(1, 2), attn_mask=mask,
                                             scale=self.softmax_scale)  # [b, h, s, v]
        return out.transpose(1, 2)

    def _decode(self, q_nope, q_pe, cache, layer):
        """Absorbed attention of the new tokens over the cache through openmla. Returns [b, s, h, v]."""
        w_uk, w_uv = self._kv_b_per_head()  # [h, nope, kv_lora], [h, v, kv_lora]
        q_lat = torch.einsum("bshn,hnc->bshc", q_nope, w_uk)  # [b, s, h, kv_lora]
        q = torch.cat([q_lat, q_pe], dim=-1)  # [b, s, h, kv_lora + qk_rope]
        step = cache.step
        out_lat, _ = decode(q, cache.k_cache(layer), step.block_table, step.cache_seqlens, d_v=self.kv_lora_rank,
                            softmax_scale=self.softmax_scale, causal=True, plan=step.plan,
                            workspace=step.workspace_for(q, self.kv_lora_rank))  # [b, s, h, kv_lora]
        return torch.einsum("bshc,hvc->bshv", out_lat, w_uv)
