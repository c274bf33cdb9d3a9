"""openmla.decode, workspace_size and check_status."""

from . import _C, _arrays, _sizes, _torch
from ._plan import Plan, plan as make_plan


def _rank_checked(x, name, rank, dims):
    if len(x.shape) != rank:
        raise ValueError(f"openmla: {name}: expected rank {rank} {dims}, given rank {len(x.shape)}")
    return tuple(x.shape)


def workspace_size(q, plan, *, d_v=512):
    """Bytes of workspace that decode(q, ..., plan=plan, d_v=d_v) needs.

    q: [b, s_q, h_q, d_qk] (only its shape and device are read); plan: a Plan from openmla.plan or
    get_mla_metadata. Any uint8 array of this many bytes on q's device works: the binding aligns it.
    """
    b, s_q, h_q, _ = _rank_checked(q, "q", 4, "[b, s_q, h_q, d_qk]")
    num_parts = plan.tile_scheduler_metadata.shape[0]
    device_type, device_index = _arrays.device_of(q)
    return _sizes.workspace_bytes(b, s_q, h_q, d_v, num_parts, device_type, device_index)


def decode(q, k_cache, block_table, cache_seqlens, *, d_v=512, softmax_scale=None, causal=False, plan=None,
           workspace=None, out=None, lse=None, check=False):
    """MLA decode: out = softmax(softmax_scale * q k^T) v over a paged latent cache, v = k[..., :d_v].

    q:             [b, s_q, h_q, d_qk]                    bfloat16 or float16, last dim contiguous
    k_cache:       [num_blocks, page_size, h_kv, d_qk]    q's dtype, last dim contiguous; h_q % h_kv == 0
    block_table:   [b, max_blocks_per_seq]                int32, page j of sequence i
    cache_seqlens: [b]                                    int32, keys of each sequence (0 is legal)
    d_v:           columns of k_cache that are v (512 for DeepSeek)
    softmax_scale: default 1 / sqrt(d_qk)
    causal:        query row i (of s_q) sees keys 0 .. s_k - s_q + i; otherwise every key
    plan:          a Plan from openmla.plan / get_mla_metadata, shared by the layers of a step; made
                   here when None
    workspace:     uint8 array of >= workspace_size(q, plan, d_v=d_v) bytes; allocated here when None
    out:           [b, s_q, h_q, d_v] q's dtype, last dim contiguous; allocated here when None
    lse:           [b, h_q, s_q] float32; allocated here when None
    check:         after the decode, synchronize and raise ValueError if the device found a bad length
                   or page index (not inside torch.compile or CUDA graph capture)

    All arrays are of one framework (numpy: CPU; torch: CPU or CUDA; cupy: CUDA) and device. GPU work
    runs on the caller's current stream and allocates nothing when plan and workspace are given.
    Returns (out, lse): lse is the natural-log log-sum-exp of the scaled scores; a row that sees no key
    gets out = 0 and lse = +inf. Bad arguments raise ValueError (TypeError for a wrong type or an
    unsupported dtype) before anything is written.
    """
    kind = _arrays.framework(q, "q")
    arrays = {"k_cache": k_cache, "block_table": block_table, "cache_seqlens": cache_seqlens,
              "workspace": workspace, "out": out, "lse": lse}
    for name, x in arrays.items():
        if x is not None:
            _arrays.check_same_framework(kind, x, name)
    if plan is not None and not isinstance(plan, tuple):
        raise TypeError(f"openmla: plan: expected an openmla.Plan, given {type(plan).__name__}")
    b, s_q, h_q, _ = _rank_checked(q, "q", 4, "[b, s_q, h_q, d_qk]")
    h_kv = _rank_checked(k_cache, "k_cache", 4, "[num_blocks, page_size, h_kv, d_qk]")[2]
    if plan is None:
        plan = make_plan(cache_seqlens, s_q=s_q, h_q=h_q, h_kv=h_kv)
    tile_scheduler_metadata, num_splits = plan
    if workspace is None:
        workspace = _arrays.empty(q, (workspace_size(q, plan, d_v=d_v),), "uint8")
    if out is None:
        out = _arrays.empty(q, (b, s_q, h_q, d_v))  # [b, s_q, h_q, d_v]
    if lse is None:
        lse = _arrays.empty(q, (b, h_q, s_q), "float32")  # [b, h_q, s_q]
    if kind == "torch":
        for name, x in (("q", q), ("k_cache", k_cache), ("out", out)):
            _arrays.check_dtype(x, name)
        torch = _torch.torch
        if not torch.compiler.is_compiling() and (
                num_splits.data_ptr() != _torch.plan_num_splits(tile_scheduler_metadata, q, k_cache).data_ptr()):
            raise ValueError("openmla: num_splits: expected the num_splits returned together with this "
                             "tile_scheduler_metadata, given another array")
        _torch.torch.ops.openmla.decode_(q, k_cache, block_table, cache_seqlens, tile_scheduler_metadata,
                                          workspace, out, lse, d_v, softmax_scale, causal)
    else:
        with _arrays.device_guard(q):
            _C.decode(_arrays.for_library(q, "q"), _arrays.for_library(k_cache, "k_cache"), block_table,
                      cache_seqlens, tile_scheduler_metadata, num_splits, workspace,
                      _arrays.for_library(out, "out"), lse, d_v, softmax_scale, causal, _arrays.stream_of(q))
    if check:
        check_status(workspace)
    return out, lse


def check_status(workspace):
    """Raises ValueError if the last decode into `workspace` met a bad cache_seqlens or block_table
    value on the device (that sequence's out and lse are NaN). Synchronizes the current stream first.
    On the CPU such values are refused before the decode starts, so this never raises there."""
    with _arrays.device_guard(workspace):
        _C.check_status(workspace, _arrays.stream_of(workspace))
