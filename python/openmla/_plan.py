"""openmla.plan: the split-KV schedule of one decoding step, made once and reused by every layer."""

from typing import Any, NamedTuple

from . import _C, _arrays, _sizes, _torch


class Plan(NamedTuple):
    """The schedule of one decoding step, as the two arrays FlashMLA's get_mla_metadata returns.

    tile_scheduler_metadata: int32 [num_parts, words_per_part], the whole plan buffer; num_parts (its
        first dim) is how many parallel work parts the step is cut into.
    num_splits: int32 [b + 1], a view into tile_scheduler_metadata: the exclusive prefix sum of the
        number of splits of each sequence. Pass both arrays together, unchanged.

    A plan depends only on cache_seqlens and num_parts, so one plan serves every layer of a step and
    any s_q, h_q, page size and d_v of the decode calls that use it.
    """

    tile_scheduler_metadata: Any
    num_splits: Any


def plan(cache_seqlens, *, s_q=1, h_q, h_kv=1, num_parts=0, out=None):
    """Computes the split-KV schedule of one decoding step.

    cache_seqlens: int32 [b], the number of cached tokens of each sequence, on the decode device
        (numpy array for the CPU backend; torch tensor or cupy array, CPU or CUDA).
    s_q, h_q, h_kv: query tokens per sequence, query heads and KV heads of the decode calls; used only
        to pick num_parts for the device.
    num_parts: work parts (0 picks one for the device).
    out: optional int32 [num_parts, words_per_part] array to write into (e.g. a static buffer for CUDA
        graphs); its shape must be the one a call without `out` returns for the same b and num_parts.

    Returns a Plan in cache_seqlens's framework. On a CUDA device the schedule is computed by a kernel
    on the current stream: no host synchronization, so it can be captured in a CUDA graph.
    """
    kind = _arrays.framework(cache_seqlens, "cache_seqlens")
    if len(cache_seqlens.shape) != 1:
        raise ValueError(f"openmla: cache_seqlens: expected rank 1 [b], given rank {len(cache_seqlens.shape)}")
    batch = cache_seqlens.shape[0]
    device_type, device_index = _arrays.device_of(cache_seqlens)
    parts, words, split_word = _sizes.plan_geometry(batch, s_q, h_q, h_kv, num_parts, device_type, device_index)
    if out is None:
        out = _arrays.empty(cache_seqlens, (parts, words), "int32")  # [num_parts, words_per_part]
    else:
        _arrays.check_same_framework(kind, out, "out")
        if tuple(out.shape) != (parts, words):
            raise ValueError(f"openmla: out: expected shape ({parts}, {words}) [num_parts, words_per_part], "
                             f"given {tuple(out.shape)}")
    if kind == "torch":
        _torch.torch.ops.openmla.plan_(cache_seqlens, out)
    else:
        with _arrays.device_guard(cache_seqlens):
            _C.plan(cache_seqlens, out, _arrays.stream_of(cache_seqlens))
    num_splits = out.reshape(-1)[split_word : split_word + batch + 1]  # [b + 1]
    return Plan(out, num_splits)
