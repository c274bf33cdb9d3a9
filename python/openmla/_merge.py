"""openmla.merge: partial attention results of the same queries over disjoint key sets -> the exact
attention over their union (split-KV chunks, context-parallel ranks)."""

from typing import Sequence

from . import _C, _arrays, _torch


def _stacked(parts, name):
    """A list or tuple of same-shaped arrays stacked on a new first dim (a copy); an array as is."""
    if not isinstance(parts, Sequence):
        return parts
    if len(parts) == 0:
        raise ValueError(f"openmla: {name}: expected at least one part, given an empty sequence")
    first = parts[0]
    kind = _arrays.framework(first, f"{name}[0]")
    for i, x in enumerate(parts):
        _arrays.check_same_framework(kind, x, f"{name}[{i}]")
    if kind == "torch":
        return _torch.torch.stack(tuple(parts))
    module = __import__(kind)
    return module.stack(parts)


def merge(out_parts, lse_parts, *, out=None, lse=None):
    """The attention over the union of n disjoint key sets, from each set's partial result.

    out_parts: [n, b, s_q, h_q, d_v] bfloat16, float16 or float32, last dim contiguous (or a list of
               n arrays [b, s_q, h_q, d_v], stacked here at the cost of a copy)
    lse_parts: [n, b, h_q, s_q] float32 (or a list of n arrays [b, h_q, s_q]), natural log
    out:       [b, s_q, h_q, d_v] bfloat16, float16 or float32 (any of them), last dim contiguous;
               allocated in out_parts's dtype when None
    lse:       [b, h_q, s_q] float32; allocated when None

    Per row: lse = log(sum_k exp(lse_k)), out = sum_k exp(lse_k - lse) * out_k, in float32, rounded
    once. A part with lse_k = +inf (decode's "saw no key") or -inf contributes nothing and its out is
    not read; a row no part saw gets out = 0, lse = +inf; NaN in any lse_k makes the row NaN, and NaN
    in the out of a contributing part reaches the same elements of out. Any strides (e.g. the stacked
    buffer of an all-gather, or views into it). out and lse must not overlap each other or an input.

    NumPy (CPU), torch (CPU, CUDA) and CuPy arrays of one framework and device; GPU work is one kernel
    on the caller's current stream and allocates nothing when out and lse are given. Returns (out, lse)
    in out_parts's framework (torch: the op torch.ops.openmla.merge_). Bad arguments raise ValueError
    (TypeError for a wrong type or dtype) before anything is written.
    """
    out_parts = _stacked(out_parts, "out_parts")
    lse_parts = _stacked(lse_parts, "lse_parts")
    kind = _arrays.framework(out_parts, "out_parts")
    for name, x in (("lse_parts", lse_parts), ("out", out), ("lse", lse)):
        if x is not None:
            _arrays.check_same_framework(kind, x, name)
    _, b, s_q, h_q, d_v = _arrays.rank_checked(out_parts, "out_parts", 5, "[n, b, s_q, h_q, d_v]")
    if out is None:
        out = _arrays.empty(out_parts, (b, s_q, h_q, d_v))  # [b, s_q, h_q, d_v]
    if lse is None:
        lse = _arrays.empty(out_parts, (b, h_q, s_q), "float32")  # [b, h_q, s_q]
    if kind == "torch":
        for name, x in (("out_parts", out_parts), ("out", out)):
            _arrays.check_dtype(x, name, _arrays.FLOAT_DTYPES)
        _torch.torch.ops.openmla.merge_(out_parts, lse_parts, out, lse)
    else:
        with _arrays.device_guard(out_parts):
            _C.merge(_arrays.for_library(out_parts, "out_parts", _arrays.FLOAT_DTYPES), lse_parts,
                     _arrays.for_library(out, "out", _arrays.FLOAT_DTYPES), lse, _arrays.stream_of(out_parts))
    return out, lse


if _torch.torch is not None:
    torch = _torch.torch

    @torch.library.custom_op("openmla::merge_", mutates_args=("out", "lse"))
    def merge_(out_parts: torch.Tensor, lse_parts: torch.Tensor, out: torch.Tensor, lse: torch.Tensor) -> None:
        """openmla.merge on tensors: writes out [b, s_q, h_q, d_v] and lse [b, h_q, s_q] float32 from
        out_parts [n, b, s_q, h_q, d_v] and lse_parts [n, b, h_q, s_q], on the current stream."""
        with _torch.device_guard(out_parts):
            _C.merge(out_parts.detach(), lse_parts.detach(), out.detach(), lse.detach(),
                     _torch.current_stream(out_parts))

    @merge_.register_fake
    def _(out_parts, lse_parts, out, lse):
        return None
