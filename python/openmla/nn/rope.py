"""Rotary position embedding as DeepSeek models define it: plain or YaRN frequencies, with the rotated
pairs interleaved (x0, x1), (x2, x3), ... or split in halves (x_i, x_{i + d/2})."""

import math

import torch


def _yarn_mscale(factor, mscale):
    return 1.0 if factor <= 1 else 0.1 * mscale * math.log(factor) + 1.0


def _yarn_inv_freq(d_rope, base, scaling):
    """YaRN: each pair's frequency blends the original (fast pairs, extrapolated) and the one divided by
    `factor` (slow pairs, interpolated), with a linear ramp between the pairs whose wavelengths fit
    beta_fast and beta_slow rotations in the original context."""
    factor = scaling["factor"]
    original = scaling["original_max_position_embeddings"]
    beta_fast = scaling.get("beta_fast") or 32
    beta_slow = scaling.get("beta_slow") or 1

    def pair_of(rotations):  # the (fractional) pair index that turns `rotations` times over `original` positions
        return d_rope * math.log(original / (rotations * 2 * math.pi)) / (2 * math.log(base))

    low, high = pair_of(beta_fast), pair_of(beta_slow)
    if scaling.get("truncate", True):
        low, high = math.floor(low), math.ceil(high)
    low, high = max(low, 0), min(high, d_rope - 1)
    if low == high:
        high += 0.001
    ramp = ((torch.arange(d_rope // 2, dtype=torch.float32) - low) / (high - low)).clamp(0, 1)  # [d_rope / 2]
    exponents = torch.arange(0, d_rope, 2, dtype=torch.float32) / d_rope  # [d_rope / 2]
    extrapolated = 1.0 / base**exponents  # [d_rope / 2]
    interpolated = 1.0 / (factor * base**exponents)  # [d_rope / 2]
    return interpolated * ramp + extrapolated * (1 - ramp)


def _yarn_attention_factor(scaling):
    """The factor YaRN multiplies cos and sin by (the model's "attention_factor" when it gives one)."""
    if scaling.get("attention_factor") is not None:
        return float(scaling["attention_factor"])
    factor, mscale, mscale_all_dim = scaling["factor"], scaling.get("mscale"), scaling.get("mscale_all_dim")
    if mscale and mscale_all_dim:
        return _yarn_mscale(factor, mscale) / _yarn_mscale(factor, mscale_all_dim)
    return _yarn_mscale(factor, 1.0)


def softmax_scale(qk_head_dim, scaling=None):
    """DeepSeek's softmax scale: 1 / sqrt(qk_nope + qk_rope), times mscale(factor, mscale_all_dim)^2 under
    YaRN. It is not 1 / sqrt(576): the absorbed query's width changes nothing in the scores."""
    scale = qk_head_dim**-0.5
    if scaling is not None and scaling.get("mscale_all_dim"):
        scale *= _yarn_mscale(scaling["factor"], scaling["mscale_all_dim"]) ** 2
    return scale


class RotaryEmbedding(torch.nn.Module):
    """cos and sin of each rotated pair's angle at given positions.

    d_rope: rotated dims (qk_rope_head_dim, 64 for DeepSeek); base: rope_theta; scaling: None or a YaRN
    dict with factor, original_max_position_embeddings and optionally beta_fast, beta_slow, mscale,
    mscale_all_dim, attention_factor, truncate (the keys of Hugging Face's rope_scaling / rope_parameters).
    """

    def __init__(self, d_rope, base=10000.0, scaling=None):
        super().__init__()
        if d_rope % 2:
            raise ValueError(f"openmla: d_rope: expected an even number, given {d_rope}")
        if scaling is None:
            inv_freq = 1.0 / base ** (torch.arange(0, d_rope, 2, dtype=torch.float32) / d_rope)  # [d_rope / 2]
            self.attention_scaling = 1.0
        else:
            inv_freq = _yarn_inv_freq(d_rope, base, scaling)  # [d_rope / 2]
            self.attention_scaling = _yarn_attention_factor(scaling)
        self.register_buffer("inv_freq", inv_freq, persistent=False)

    def forward(self, positions):
        """positions: [b, s] integers. Returns (cos, sin), each float32 [b, s, d_rope / 2]."""
        angles = positions[..., None].float() * self.inv_freq.to(positions.device)  # [b, s, d_rope / 2]
        return angles.cos() * self.attention_scaling, angles.sin() * self.attention_scaling


def apply_rope(x, cos, sin, interleaved):
    """Rotates the pairs of x's last dim by the angles of cos and sin, in float32, rounded once to x's dtype.

    x: [..., d_rope]; cos, sin: [..., d_rope / 2] broadcastable against x's leading dims.
    interleaved: pairs (x0, x1), (x2, x3), ... (DeepSeek's checkpoints); else (x_i, x_{i + d/2}).
    The result holds the first members of the rotated pairs, then the second members: queries and keys
    rotated alike keep their dot products, which is all attention reads.
    """
    x32 = x.float()
    first, second = (x32[..., 0::2], x32[..., 1::2]) if interleaved else x32.chunk(2, dim=-1)  # [..., d_rope / 2]
    rotated = torch.cat([first * cos - second * sin, second * cos + first * sin], dim=-1)  # [..., d_rope]
    return rotated.to(x.dtype)
