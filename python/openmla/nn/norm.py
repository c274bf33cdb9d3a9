"""RMSNorm as DeepSeek models compute it."""

import torch


class RMSNorm(torch.nn.Module):
    """x / rms(x) in float32, rounded to x's dtype, then times the weight [d] (Hugging Face's DeepSeek
    RMSNorm: the same rounding points, so shared weights give the same values)."""

    def __init__(self, d, eps=1e-6, device=None, dtype=None):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.ones(d, device=device, dtype=dtype))  # [d]
        self.variance_epsilon = eps

    def forward(self, x):
        """x: [..., d] -> [..., d]"""
        x32 = x.float()
        normed = x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + self.variance_epsilon)  # [..., d]
        return self.weight * normed.to(x.dtype)
