"""openmla.write_cache: each new token's latent row and RoPE part into its slot of the paged cache;
write_cache_status and reset_status: the device status word of its out-of-range slots."""

from typing import Optional

from . import _C, _arrays, _fp8, _torch


def write_cache_status(like):
    """A status array for write_cache on like's device (uint8, in like's framework), reset to ok.

    Give it to write_cache(..., status=...) to have out-of-range slots on a GPU recorded; read it with
    openmla.check_status(status), which synchronizes and raises ValueError naming the lowest offending
    token. write_cache never resets it: reset_status(status) does, capturable in a CUDA graph.
    """
    _arrays.framework(like, "like")
    status = _arrays.empty(like, (_C.write_status_bytes,), "uint8")
    reset_status(status)
    return status


def reset_status(status):
    """Sets a status array of write_cache_status to ok (on a GPU: a 4-byte memset on the current stream)."""
    kind = _arrays.framework(status, "status")
    _arrays.check_writable(status, "status")
    if kind == "torch":
        _torch.torch.ops.openmla.reset_status_(status)
    else:
        with _arrays.device_guard(status):
            _C.reset_status(status, _arrays.stream_of(status))


def write_cache(kv_c, k_pe, k_cache, slot_mapping, *, status=None, k_scale=None, cache_format=None):
    """Writes each new token's latent row and RoPE part into its slot of the paged cache, in place.

    kv_c:         [tokens, d_v]                      bfloat16 or float16 (float32 too for a plain CPU
                                                     cache), last dim contiguous
    k_pe:         [tokens, d_qk - d_v]               kv_c's dtype, last dim contiguous
    k_cache:      [num_blocks, page_size, 1, d_qk]   kv_c's dtype, last dim contiguous (decode's cache); or
                                                     an FP8 cache (docs/fp8.md): float8_e4m3fn with k_scale,
                                                     or FlashMLA's 656-byte tokens [..., 656] uint8 or
                                                     float8_e4m3fn (d_v 512, d_qk 576)
    slot_mapping: [tokens]                           int64; slot s is row s % page_size of page
                                                     s // page_size; a negative slot skips its token
    status:       an array of write_cache_status(k_cache), or None
    k_scale:      [1] float32 on k_cache's device: the fp8_per_tensor cache's scale, read by the device
                  when the write runs (a captured CUDA graph sees a new value)
    cache_format: "plain", "fp8_per_tensor" or "fp8_656"; None infers it as decode does: plain for a
                  bfloat16/float16/float32 cache, fp8_per_tensor with k_scale, fp8_656 without

    k_cache[s // page_size, s % page_size, 0] = [kv_c[t], k_pe[t]] for each token t with slot s >= 0:
    bit for bit in a plain cache; quantized in an FP8 cache, by openmla.quantize_cache's rule (the same
    bytes as quantizing a bfloat16/float16 cache that holds these rows): per tensor e4m3(v / k_scale),
    656-byte tokens with a power-of-two scale per 128 latent values and the RoPE part bit for bit.
    Nothing else of k_cache changes (two tokens with one slot leave one of their rows). On
    the CPU a slot >= num_blocks * page_size raises ValueError naming the token before anything is
    written. On a GPU such a token is skipped (never written out of bounds) and, when `status` is
    given, recorded there: openmla.check_status(status) raises on it. tokens = 0 is legal.

    NumPy (CPU), torch (CPU, CUDA) and CuPy arrays of one framework and device; GPU work is one kernel
    on the caller's current stream, with no allocation and no synchronization (torch: the op
    torch.ops.openmla.write_cache_, which torch.compile and CUDA graphs capture). Returns None. Bad
    arguments raise ValueError (TypeError for a wrong type or an unsupported dtype) before anything
    is written.
    """
    kind = _arrays.framework(k_cache, "k_cache")
    for name, x in (("kv_c", kv_c), ("k_pe", k_pe), ("slot_mapping", slot_mapping), ("status", status),
                    ("k_scale", k_scale)):
        if x is not None:
            _arrays.check_same_framework(kind, x, name, like="k_cache")
    format_code = _fp8.cache_format_code(k_cache, k_scale, cache_format)
    _arrays.check_writable(k_cache, "k_cache")
    if status is not None:
        _arrays.check_writable(status, "status")
    if kind == "torch":
        for name, x in (("kv_c", kv_c), ("k_pe", k_pe), ("k_cache", k_cache)):
            _arrays.check_dtype(x, name)
        for name, x in (("kv_c", kv_c), ("k_pe", k_pe), ("slot_mapping", slot_mapping), ("k_cache", k_cache),
                        ("status", status), ("k_scale", k_scale)):
            if x is not None:
                _torch.check_has_data(x, name)
        _torch.torch.ops.openmla.write_cache_(kv_c, k_pe, slot_mapping, k_cache, status, k_scale, format_code)
    else:
        cache, e4m3 = _fp8.for_library(k_cache)
        scale = None if k_scale is None else _arrays.for_library(k_scale, "k_scale", "float32")
        with _arrays.device_guard(k_cache):
            _C.write_cache(_arrays.for_library(kv_c, "kv_c"), _arrays.for_library(k_pe, "k_pe"), slot_mapping,
                           cache, status, format_code, scale, e4m3, _arrays.stream_of(k_cache))


if _torch.torch is not None:
    torch = _torch.torch

    @torch.library.custom_op("openmla::write_cache_", mutates_args=("k_cache", "status"))
    def write_cache_(kv_c: torch.Tensor, k_pe: torch.Tensor, slot_mapping: torch.Tensor, k_cache: torch.Tensor,
                     status: Optional[torch.Tensor], k_scale: Optional[torch.Tensor] = None,
                     cache_format: int = 0) -> None:
        """openmla.write_cache on tensors: writes the rows of kv_c [tokens, d_v] and k_pe [tokens, d_rope]
        into k_cache [num_blocks, page_size, 1, d_v + d_rope] (or an FP8 cache: k_scale and cache_format,
        the library's CacheFormat value, as decode_ takes them) at slot_mapping [tokens] int64, on the
        current stream; out-of-range slots on a GPU are recorded in status when given."""
        cache, e4m3 = _fp8.for_library(k_cache.detach())
        with _torch.device_guard(k_cache):
            _C.write_cache(kv_c.detach(), k_pe.detach(), slot_mapping.detach(), cache,
                           None if status is None else status.detach(), cache_format,
                           None if k_scale is None else k_scale.detach(), e4m3, _torch.current_stream(k_cache))

    @write_cache_.register_fake
    def _(kv_c, k_pe, slot_mapping, k_cache, status, k_scale=None, cache_format=0):
        return None

    @torch.library.custom_op("openmla::reset_status_", mutates_args=("status",))
    def reset_status_(status: torch.Tensor) -> None:
        """openmla.reset_status on a tensor: the status word set to ok, on the current stream."""
        with _torch.device_guard(status):
            _C.reset_status(status.detach(), _torch.current_stream(status))

    @reset_status_.register_fake
    def _(status):
        return None
