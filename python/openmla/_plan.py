"""openmla.plan: the split-KV schedule of one decoding step, made once and reused by every layer."""

from typing import Any, NamedTuple

from . import _args, _C, _arrays, _fp8, _sizes, _torch


class Plan(NamedTuple):
    """The schedule of one decoding step, as the two arrays FlashMLA's get_mla_metadata returns.

    tile_scheduler_metadata: int32 [num_parts, words_per_part], the whole plan buffer; num_parts (its
        first dim) is how many parallel work parts the step is cut into.
    num_splits: int32 [b + 1], a view into tile_scheduler_metadata: the exclusive prefix sum of the
        number of splits of each sequence. Pass both arrays together, unchanged.

    A plan is tied to its batch, its device and, for each sequence, the number of 64-key tiles of the
    length it was made from: decode refuses it for lengths with other tile counts (on the CPU up
    front; on a GPU that sequence's rows become NaN and check_status reports it). It serves any s_q,
    h_q, h_kv, page size, d_v and cache format: those only balance it (num_parts, and what each piece of
    a sequence is charged). So one plan serves every layer of a step.
    """

    tile_scheduler_metadata: Any
    num_splits: Any


def as_plan(plan):
    """plan as a Plan: a Plan or any 2-tuple (tile_scheduler_metadata, num_splits); None stays None."""
    if plan is None or isinstance(plan, Plan):
        return plan
    if isinstance(plan, tuple) and len(plan) == 2:
        return Plan(*plan)
    given = f"a tuple of {len(plan)}" if isinstance(plan, tuple) else type(plan).__name__
    raise TypeError(f"openmla: plan: expected an openmla.Plan (tile_scheduler_metadata, num_splits), "
                    f"given {given}")


def num_splits_view(tile_scheduler_metadata, batch):
    """The num_splits [b + 1] view inside a plan buffer [num_parts, words_per_part] made for `batch`
    sequences, for callers that kept only the buffer."""
    shape = tuple(tile_scheduler_metadata.shape)
    if len(shape) != 2 or shape[0] < 1:
        raise ValueError(f"openmla: tile_scheduler_metadata: expected int32 [num_parts, words_per_part], "
                         f"given shape {shape}")
    device_type, device_index = _arrays.device_of(tile_scheduler_metadata)
    _, _, split_word = _sizes.plan_geometry(batch, 1, 1, 1, shape[0], device_type, device_index)
    return tile_scheduler_metadata.reshape(-1)[split_word : split_word + batch + 1]  # [b + 1]


def plan(cache_seqlens, *, s_q=1, h_q, h_kv=1, num_parts=0, out=None, cache_format="plain"):
    """Computes the split-KV schedule of one decoding step.

    cache_seqlens: int32 [b], the number of cached tokens of each sequence, on the decode device
        (numpy array for the CPU backend; torch tensor or cupy array, CPU or CUDA). b = 0 is legal.
    s_q, h_q, h_kv: query tokens per sequence, query heads and KV heads of the decode calls; they pick
        num_parts for the device and balance the schedule for the kernel that will run them.
    num_parts: work parts (0 picks one for the device).
    out: optional int32 [num_parts, words_per_part] array to write into (e.g. a static buffer for CUDA
        graphs); its shape must be the one a call without `out` returns for the same b and num_parts.
    cache_format: "plain", "fp8_per_tensor" or "fp8_656", the cache the decode calls read; it only
        balances the schedule (a piece of an FP8 decode costs the Hopper kernel more tiles).

    Returns a Plan in cache_seqlens's framework. On a CUDA device the schedule is computed by a kernel
    on the current stream: no host synchronization, so it can be captured in a CUDA graph.
    """
    kind = _arrays.framework(cache_seqlens, "cache_seqlens")
    s_q = _args.integer(s_q, "s_q")
    h_q = _args.integer(h_q, "h_q")
    h_kv = _args.integer(h_kv, "h_kv")
    num_parts = _args.integer(num_parts, "num_parts")
    format_code = _fp8.format_code(cache_format)
    if out is not None:
        _arrays.check_same_framework(kind, out, "out")
        _arrays.check_writable(out, "out")
    if kind == "torch":
        _torch.check_has_data(cache_seqlens, "cache_seqlens")
        if out is not None:
            _torch.check_has_data(out, "out")
    if len(cache_seqlens.shape) != 1:
        raise ValueError(f"openmla: cache_seqlens: expected rank 1 [b], given rank {len(cache_seqlens.shape)}")
    batch = cache_seqlens.shape[0]
    device_type, device_index = _arrays.device_of(cache_seqlens)
    parts, words, split_word = _sizes.plan_geometry(batch, s_q, h_q, h_kv, num_parts, device_type, device_index)
    if out is None:
        out = _arrays.empty(cache_seqlens, (parts, words), "int32")  # [num_parts, words_per_part]
    elif tuple(out.shape) != (parts, words):
        raise ValueError(f"openmla: out: expected shape ({parts}, {words}) [num_parts, words_per_part], "
                         f"given {tuple(out.shape)}")
    if kind == "torch":
        _torch.torch.ops.openmla.plan_(cache_seqlens, out, s_q, h_q, h_kv, format_code)
    else:
        with _arrays.device_guard(cache_seqlens):
            _C.plan(cache_seqlens, out, _arrays.stream_of(cache_seqlens), s_q, h_q, h_kv, format_code)
    num_splits = out.reshape(-1)[split_word : split_word + batch + 1]  # [b + 1]
    return Plan(out, num_splits)
