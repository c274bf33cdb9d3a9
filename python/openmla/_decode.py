"""openmla.decode, workspace_size and check_status."""

from . import _args, _C, _arrays, _fp8, _sizes, _torch
from ._plan import as_plan, num_splits_view, plan as make_plan


def _check_d_v(d_v, d_qk):
    """The library's own rule, checked here too because workspace and out are sized by d_v before the
    library sees it."""
    if not 1 <= d_v <= d_qk:
        raise ValueError(f"openmla: d_v: expected 1 <= d_v <= d_qk = {d_qk}, given {d_v}")


def _plan_arrays(plan):
    return {"tile_scheduler_metadata": plan.tile_scheduler_metadata, "num_splits": plan.num_splits}


def workspace_size(q, plan, *, d_v=512):
    """Bytes of workspace that decode(q, ..., plan=plan, d_v=d_v) needs.

    q: [b, s_q, h_q, d_qk] (only its shape and device are read); plan: a Plan from openmla.plan or
    get_mla_metadata. The size follows q's shapes and d_v: a plan made for a smaller h_q needs a larger
    workspace when it serves a larger one. Any uint8 array of this many bytes on q's device works: the
    binding aligns it.
    """
    kind = _arrays.framework(q, "q")
    plan = as_plan(plan)
    if plan is None:
        raise TypeError("openmla: plan: expected an openmla.Plan (tile_scheduler_metadata, num_splits), given None")
    for name, x in _plan_arrays(plan).items():
        _arrays.check_same_framework(kind, x, name)
    d_v = _args.integer(d_v, "d_v")
    b, s_q, h_q, d_qk = _arrays.rank_checked(q, "q", 4, "[b, s_q, h_q, d_qk]")
    _check_d_v(d_v, d_qk)
    schedule = plan.tile_scheduler_metadata
    _arrays.rank_checked(schedule, "tile_scheduler_metadata", 2, "[num_parts, words_per_part]")
    device_type, device_index = _arrays.device_of(q)
    return _sizes.workspace_bytes(b, s_q, h_q, d_v, schedule.shape[0], device_type, device_index)


def decode(q, k_cache, block_table, cache_seqlens, *, d_v=512, softmax_scale=None, causal=False, plan=None,
           workspace=None, out=None, lse=None, check=False, k_scale=None, cache_format=None):
    """MLA decode: out = softmax(softmax_scale * q k^T) v over a paged latent cache, v = k[..., :d_v].

    q:             [b, s_q, h_q, d_qk]                    bfloat16 or float16 (float32 too on the CPU), last dim
                                                          contiguous
    k_cache:       [num_blocks, page_size, h_kv, d_qk]    q's dtype, last dim contiguous; h_q % h_kv == 0;
                   or an FP8 cache (docs/fp8.md): float8_e4m3fn with k_scale, or FlashMLA's 656-byte
                   tokens [num_blocks, page_size, h_kv, 656] uint8 or float8_e4m3fn (d_qk 576, d_v 512)
    block_table:   [b, max_blocks_per_seq]                int32, page j of sequence i
    cache_seqlens: [b]                                    int32, keys of each sequence (0 is legal)
    d_v:           columns of k_cache that are v (512 for DeepSeek)
    softmax_scale: default 1 / sqrt(d_qk)
    causal:        query row i (of s_q) sees keys 0 .. s_k - s_q + i; otherwise every key
    plan:          a Plan from openmla.plan / get_mla_metadata (or the 2-tuple of its arrays), shared by
                   the layers of a step; made here when None
    workspace:     uint8 array of >= workspace_size(q, plan, d_v=d_v) bytes; allocated here when None
    out:           [b, s_q, h_q, d_v] q's dtype, last dim contiguous; allocated here when None
    lse:           [b, h_q, s_q] float32; allocated here when None
    check:         after the decode, synchronize and raise ValueError if the device found a bad length,
                   page index or plan (not inside torch.compile or CUDA graph capture)
    k_scale:       [1] float32 on q's device: the fp8_per_tensor cache's scale (value = fp8 * k_scale),
                   read by the device when the decode runs (a captured CUDA graph sees a new value)
    cache_format:  "plain", "fp8_per_tensor" or "fp8_656"; None infers it: plain for a bfloat16/float16
                   cache, fp8_per_tensor with k_scale, fp8_656 without (openmla.quantize_cache makes both)

    All arrays are of one framework (numpy: CPU; torch: CPU or CUDA; cupy: CUDA) and device. b = 0 is
    legal and returns empty outputs. GPU work runs on the caller's current stream and allocates
    nothing when plan and workspace are given.
    Returns (out, lse): lse is the natural-log log-sum-exp of the scaled scores; a row that sees no key
    gets out = 0 and lse = +inf. Bad arguments raise ValueError (TypeError for a wrong type or an
    unsupported dtype) before anything is written.
    With torch, inputs that require grad are accepted (out and lse then carry a grad_fn), but decode has
    no backward: backpropagating through out or lse raises NotImplementedError.
    """
    kind = _arrays.framework(q, "q")
    plan = as_plan(plan)
    arrays = {"k_cache": k_cache, "k_scale": k_scale, "block_table": block_table, "cache_seqlens": cache_seqlens,
              "workspace": workspace, "out": out, "lse": lse, **(_plan_arrays(plan) if plan is not None else {})}
    for name, x in arrays.items():
        if x is not None:
            _arrays.check_same_framework(kind, x, name)
    for name in ("workspace", "out", "lse"):
        if arrays[name] is not None:
            _arrays.check_writable(arrays[name], name)
    if kind == "torch":
        for name, x in {"q": q, **arrays}.items():
            if x is not None:
                _torch.check_has_data(x, name)
    d_v = _args.integer(d_v, "d_v")
    softmax_scale = _args.optional_real(softmax_scale, "softmax_scale")
    causal = _args.flag(causal, "causal")
    check = _args.flag(check, "check")
    format_name = _fp8.cache_format_name(k_cache, k_scale, cache_format)
    format_code = _fp8.CACHE_FORMATS[format_name]
    b, s_q, h_q, d_qk = _arrays.rank_checked(q, "q", 4, "[b, s_q, h_q, d_qk]")
    h_kv = _arrays.rank_checked(k_cache, "k_cache", 4, "[num_blocks, page_size, h_kv, d_qk]")[2]
    _check_d_v(d_v, d_qk)
    if plan is None:
        plan = make_plan(cache_seqlens, s_q=s_q, h_q=h_q, h_kv=h_kv, cache_format=format_name)
    tile_scheduler_metadata, num_splits = plan
    if workspace is None:
        workspace = _arrays.empty(q, (workspace_size(q, plan, d_v=d_v),), "uint8")
    if out is None:
        out = _arrays.empty(q, (b, s_q, h_q, d_v))  # [b, s_q, h_q, d_v]
    if lse is None:
        lse = _arrays.empty(q, (b, h_q, s_q), "float32")  # [b, h_q, s_q]
    if kind == "torch":
        out, lse = _torch_decode(q, k_cache, block_table, cache_seqlens, tile_scheduler_metadata, num_splits,
                                 workspace, out, lse, d_v, softmax_scale, causal, k_scale, format_code)
    else:
        cache, e4m3 = _fp8.for_library(k_cache)
        scale = None if k_scale is None else _arrays.for_library(k_scale, "k_scale", "float32")
        with _arrays.device_guard(q):
            _C.decode(_arrays.for_library(q, "q"), cache, block_table, cache_seqlens, tile_scheduler_metadata,
                      num_splits, workspace, _arrays.for_library(out, "out"), lse, d_v, softmax_scale, causal,
                      format_code, scale, e4m3, _arrays.stream_of(q))
    if check:
        check_status(workspace)
    return out, lse


def _torch_decode(q, k_cache, block_table, cache_seqlens, tile_scheduler_metadata, num_splits, workspace, out,
                  lse, d_v, softmax_scale, causal, k_scale, cache_format):
    """The torch op, which takes the plan buffer alone: num_splits is checked here to be its view."""
    for name, x in (("q", q), ("k_cache", k_cache), ("out", out)):
        _arrays.check_dtype(x, name)
    torch = _torch.torch
    if not _torch.is_tracing(num_splits):
        if len(num_splits.shape) != 1 or num_splits.shape[0] < 1:
            raise ValueError(f"openmla: num_splits: expected int32 [b + 1], given shape {tuple(num_splits.shape)}")
        if num_splits.shape[0] != q.shape[0] + 1:  # the library's message, for the batch num_splits carries
            raise ValueError(f"openmla: plan.config.batch: expected the decode's batch = {q.shape[0]}, given a "
                             f"plan made for {num_splits.shape[0] - 1}")
        if num_splits.data_ptr() != num_splits_view(tile_scheduler_metadata, q.shape[0]).data_ptr():
            raise ValueError("openmla: num_splits: expected the num_splits returned together with this "
                             "tile_scheduler_metadata, given another array")
    args = (q, k_cache, block_table, cache_seqlens, tile_scheduler_metadata, workspace, out, lse, d_v,
            softmax_scale, causal, k_scale, cache_format)
    if _torch.records_grad(q, k_cache):
        return _torch.DecodeWithoutBackward.apply(*args)
    torch.ops.openmla.decode_(*args)
    return out, lse


def check_status(workspace):
    """Raises ValueError if the last decode into `workspace` met a bad cache_seqlens or block_table
    value, or a plan that does not fit the lengths, on the device (that sequence's out and lse are
    NaN). Synchronizes the current stream first. On the CPU such values are refused before the decode
    starts, so this never raises there. Given a status array of write_cache_status instead, raises if
    a write_cache since its last reset met a slot past the cache (naming the lowest such token)."""
    _arrays.framework(workspace, "workspace")
    _arrays.check_writable(workspace, "workspace")
    with _arrays.device_guard(workspace):
        _C.check_status(workspace, _arrays.stream_of(workspace))
