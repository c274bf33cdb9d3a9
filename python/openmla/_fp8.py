"""FP8 latent caches (docs/fp8.md): which cache format a decode reads, how an FP8 cache travels to the
library, and openmla.quantize_cache, which makes either format from a bf16/fp16/fp32 cache."""

from . import _arrays, _torch

# The library's CacheFormat values.
CACHE_FORMATS = {"plain": 0, "fp8_per_tensor": 1, "fp8_656": 2}

TOKEN_BYTES = 656  # fp8_656: 512 e4m3 values, 4 float32 scales, 64 RoPE values (2 bytes each)
TOKEN_VALUES = 512
TOKEN_TILE = 128
E4M3_MAX = 448.0
AMAX_FLOOR = 1e-30  # fp8_656: a group's max |value| counts as at least this (no zero scale)
# fp8_656's scale from frexp(m) = (mantissa, exponent), m = mantissa * 2^exponent with mantissa in [0.5, 1):
# 448 * 2^(exponent - 9) = 0.875 * 2^exponent holds m when mantissa <= 0.875, else 2^(exponent - 8) is the
# smallest power of two that does. Exact, whatever the framework's division.
SCALE_MANTISSA_SPLIT = 0.875


def _dtype_name(x):
    return str(x.dtype).removeprefix("torch.")


def _known_name(cache_format, or_none):
    """cache_format if it names a format, else ValueError listing the names (and None where the call takes it)."""
    if not isinstance(cache_format, str) or cache_format not in CACHE_FORMATS:
        names = ", ".join(CACHE_FORMATS) + (" or None" if or_none else "")
        raise ValueError(f"openmla: cache_format: expected one of {names}, given {cache_format!r}")
    return cache_format


def format_code(cache_format):
    """The CacheFormat value of a format named "plain", "fp8_per_tensor" or "fp8_656"."""
    return CACHE_FORMATS[_known_name(cache_format, or_none=False)]


def cache_format_name(k_cache, k_scale, cache_format):
    """The name of the cache format a decode or write reads. None infers it: an FP8 (float8_e4m3fn) or uint8
    cache with k_scale is fp8_per_tensor, without k_scale fp8_656; any other cache is plain (bfloat16,
    float16, float32 on the CPU: the library checks the dtype)."""
    if cache_format is None:
        if _dtype_name(k_cache) in ("float8_e4m3fn", "uint8"):
            return "fp8_per_tensor" if k_scale is not None else "fp8_656"
        return "plain"
    return _known_name(cache_format, or_none=True)


def cache_format_code(k_cache, k_scale, cache_format):
    """The CacheFormat value for decode or write_cache (cache_format_name's format)."""
    return CACHE_FORMATS[cache_format_name(k_cache, k_scale, cache_format)]


def for_library(k_cache):
    """(the array the bindings read, whether its uint8 bytes are float8_e4m3fn values): float8_e4m3fn
    travels as uint8 (NumPy's ml_dtypes type has no DLPack code; torch's is sent the same way)."""
    if _dtype_name(k_cache) == "float8_e4m3fn":
        uint8 = _torch.torch.uint8 if _torch.is_tensor(k_cache) else "uint8"
        return k_cache.view(uint8), True
    return _arrays.for_library(k_cache, "k_cache", "bfloat16, float16, float8_e4m3fn or uint8"), False


def quantize_cache(k_cache, format="fp8_per_tensor", *, scale=None):
    """An FP8 copy of a latent cache, in the framework and on the device of k_cache.

    k_cache: [num_blocks, page_size, h_kv, d_qk] bfloat16, float16 or float32 (NumPy or torch, CPU or CUDA).
    format="fp8_per_tensor": returns (cache float8_e4m3fn [..., d_qk], k_scale float32 [1]) with
        value = fp8 * k_scale; scale (a float) fixes k_scale, else max|k_cache| / 448 over its finite values.
    format="fp8_656": returns the uint8 [..., 656] cache of FlashMLA's FP8 token (d_qk = 576): per token the
        first 512 values as e4m3, each 128 of them with the float32 scale s = the smallest power of two with
        max(max|values|, 1e-30) <= 448 s (NaN for 128 values with a NaN), then the 64 RoPE values in
        k_cache's dtype (bfloat16 for a float32 k_cache). Powers of two, as FlashMLA's quantizer has them:
        e4m3 times s is then exact in bf16, so a kernel that dequantizes to bf16 reads the exact keys.
    Values are divided by their scale, clipped to +-448 and rounded to nearest even; NaN becomes the e4m3
    NaN 0x7f. openmla.write_cache(..., cache_format=...) stores the same bytes token by token.
    """
    if format not in ("fp8_per_tensor", "fp8_656"):
        raise ValueError(f"openmla: format: expected 'fp8_per_tensor' or 'fp8_656', given {format!r}")
    _arrays.framework(k_cache, "k_cache")
    _arrays.rank_checked(k_cache, "k_cache", 4, "[num_blocks, page_size, h_kv, d_qk]")
    if _dtype_name(k_cache) not in ("bfloat16", "float16", "float32"):
        raise TypeError(f"openmla: k_cache: expected dtype bfloat16, float16 or float32, given {_dtype_name(k_cache)}")
    ops = _TorchOps() if _torch.is_tensor(k_cache) else _NumpyOps()
    values = ops.float32(k_cache)
    if format == "fp8_per_tensor":
        if scale is None:
            scale = max(ops.finite_amax(values), 1e-30) / E4M3_MAX
        k_scale = ops.scalar(float(scale), like=k_cache)
        return ops.e4m3(values / k_scale), k_scale
    if k_cache.shape[3] != TOKEN_VALUES + 64:
        raise ValueError(f"openmla: k_cache.size(3): expected 576 for format fp8_656, given {k_cache.shape[3]}")
    tiles = values[..., :TOKEN_VALUES].reshape(*k_cache.shape[:3], TOKEN_VALUES // TOKEN_TILE, TOKEN_TILE)
    scales = ops.group_scale(ops.tile_amax(tiles))  # [..., 4] float32
    quantized = ops.e4m3(tiles / scales[..., None]).reshape(*k_cache.shape[:3], TOKEN_VALUES)
    rope = k_cache[..., TOKEN_VALUES:]
    if _dtype_name(rope) == "float32":
        rope = ops.bfloat16(rope)
    return ops.concat_bytes([quantized, ops.contiguous(scales), ops.contiguous(rope)])


class _NumpyOps:
    def __init__(self):
        import ml_dtypes
        import numpy

        self.np, self.ml = numpy, ml_dtypes

    def float32(self, x):
        return x.astype(self.np.float32)

    def finite_amax(self, x):
        finite = self.np.abs(x[self.np.isfinite(x)])
        return float(finite.max()) if finite.size else 0.0

    def tile_amax(self, x):
        return self.np.abs(x).max(axis=-1)

    def group_scale(self, amax):
        np = self.np
        m = np.maximum(amax, np.float32(AMAX_FLOOR))  # NaN stays NaN
        mantissa, exponent = np.frexp(m)
        bits = (exponent - 9 + (mantissa > SCALE_MANTISSA_SPLIT) + 127).astype(np.int32) << 23
        return np.where(np.isfinite(m), bits.view(np.float32), np.where(np.isnan(m), np.float32(np.nan), m))

    def scalar(self, value, like):
        return self.np.array([value], dtype=self.np.float32)

    def e4m3(self, x):
        clipped = self.np.clip(x, -E4M3_MAX, E4M3_MAX)
        return self.np.where(self.np.isnan(x), self.np.float32(self.np.nan), clipped).astype(self.ml.float8_e4m3fn)

    def bfloat16(self, x):
        return x.astype(self.ml.bfloat16)

    def contiguous(self, x):
        return self.np.ascontiguousarray(x)

    def concat_bytes(self, parts):
        return self.np.concatenate([p.view(self.np.uint8) for p in parts], axis=-1)


class _TorchOps:
    def __init__(self):
        self.torch = _torch.torch

    def float32(self, x):
        return x.float()

    def finite_amax(self, x):
        finite = x[self.torch.isfinite(x)].abs()
        return float(finite.max()) if finite.numel() else 0.0

    def tile_amax(self, x):
        return x.abs().amax(dim=-1)

    def group_scale(self, amax):
        torch = self.torch
        m = torch.where(amax.isnan(), amax, amax.clamp_min(AMAX_FLOOR))
        mantissa, exponent = torch.frexp(m)
        bits = ((exponent - 9 + (mantissa > SCALE_MANTISSA_SPLIT).to(exponent.dtype) + 127) << 23).to(torch.int32)
        return torch.where(m.isfinite(), bits.view(torch.float32), torch.where(m.isnan(), float("nan"), m))

    def scalar(self, value, like):
        return self.torch.tensor([value], dtype=self.torch.float32, device=like.device)

    def e4m3(self, x):
        clipped = x.clamp(-E4M3_MAX, E4M3_MAX)
        return self.torch.where(x.isnan(), float("nan"), clipped).to(self.torch.float8_e4m3fn)

    def bfloat16(self, x):
        return x.to(self.torch.bfloat16)

    def contiguous(self, x):
        return x.contiguous()

    def concat_bytes(self, parts):
        return self.torch.cat([p.contiguous().view(self.torch.uint8) for p in parts], dim=-1)
