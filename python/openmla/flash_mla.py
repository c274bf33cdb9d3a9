"""FlashMLA's call patterns: `from openmla import get_mla_metadata, flash_mla_with_kvcache` in place of
`from flash_mla import ...`, with FlashMLA's arguments and shapes. Both of FlashMLA's metadata forms work:

    # tuple form (FlashMLA before 2026; vLLM and TensorRT-LLM call it)
    tile_scheduler_metadata, num_splits = get_mla_metadata(cache_seqlens, s_q * h_q // h_kv, h_kv)
    out, lse = flash_mla_with_kvcache(q, k_cache, block_table, cache_seqlens, d_v,
                                      tile_scheduler_metadata, num_splits, causal=True)

    # argument-less form (FlashMLA since January 2026)
    sched_meta, _ = get_mla_metadata()
    out, lse = flash_mla_with_kvcache(q, k_cache, block_table, cache_seqlens, d_v, sched_meta, None,
                                      causal=True)

    # FlashMLA's FP8 cache (DeepSeek-V3.2's 656-byte tokens, docs/fp8.md), here in dense decode too
    out, lse = flash_mla_with_kvcache(q, k_cache_656, block_table, cache_seqlens, 512,
                                      tile_scheduler_metadata, num_splits, is_fp8_kvcache=True)

FlashMLA keyword arguments for features openmla does not serve yet (sparse attention, attention sinks,
extra caches) raise NotImplementedError when given a value other than their default.
"""

import dataclasses

from . import _args, _arrays
from ._decode import decode
from ._plan import Plan, num_splits_view, plan


def _cache_format(is_fp8_kvcache):
    """The cache format FlashMLA's is_fp8_kvcache names: its 656-byte FP8 tokens, or a 16-bit cache."""
    return "fp8_656" if _args.flag(is_fp8_kvcache, "is_fp8_kvcache") else "plain"


def _refuse_unserved(**arguments):
    """NotImplementedError for a FlashMLA argument that is set: every default is False or None."""
    for name, value in arguments.items():
        if value is not None and value is not False:
            given = type(value).__name__ if hasattr(value, "shape") else repr(value)
            raise NotImplementedError(f"openmla: {name}: not supported yet (expected the default, None; "
                                      f"given {given})")


@dataclasses.dataclass(frozen=True)
class SchedConfig:
    """The shapes and flags of the first flash_mla_with_kvcache call on a FlashMLASchedMeta."""

    b: int
    s_q: int
    h_q: int
    page_size: int
    h_kv: int
    causal: bool
    device: tuple  # ("cpu", 0) or ("cuda", ordinal)


# Where each SchedConfig field comes from, as the consistency errors name it.
_CONFIG_SOURCES = {"b": "q.size(0) (b)", "s_q": "q.size(1) (s_q)", "h_q": "q.size(2) (h_q)",
                   "page_size": "k_cache.size(1) (page_size)", "h_kv": "k_cache.size(2) (h_kv)",
                   "causal": "causal", "device": "q.device"}


class FlashMLASchedMeta:
    """The schedule handle that the argument-less get_mla_metadata() returns, empty at first.

    The first flash_mla_with_kvcache call that receives it makes the plan from that call's
    cache_seqlens (on the current stream, so inside a CUDA graph when that call is captured) and
    records its shapes in `config`. Later calls reuse the plan, as in FlashMLA: they must have the same
    b, s_q, h_q, page size, h_kv, causal flag and device (ValueError otherwise), and lengths with the
    same 64-key tile counts (decode refuses a plan that does not fit them). Make one per decoding step.
    """

    def __init__(self):
        self.config = None  # SchedConfig of the first call
        self.plan = None  # Plan made by the first call


def get_mla_metadata(cache_seqlens=None, num_q_tokens_per_head_k=None, num_heads_k=None, num_heads_q=None,
                     is_fp8_kvcache=False, topk=None):
    """FlashMLA's get_mla_metadata, in both forms.

    get_mla_metadata(cache_seqlens, s_q * h_q // h_kv, h_kv): cache_seqlens int32 [b]. Returns
        (tile_scheduler_metadata int32 [num_parts, words_per_part], num_splits int32 [b + 1]), a Plan,
        to pass unchanged to every flash_mla_with_kvcache call of the step. num_heads_q is accepted:
        the query rows per KV head already fix the schedule.
    get_mla_metadata(): returns (FlashMLASchedMeta(), None), filled by the first flash_mla_with_kvcache
        call that receives it.
    is_fp8_kvcache balances the schedule for FlashMLA's FP8 tokens (a plan serves either cache: the
    format only sets what each piece of a sequence is charged); topk (sparse attention) raises
    NotImplementedError: not supported yet.
    """
    cache_format = _cache_format(is_fp8_kvcache)
    _refuse_unserved(topk=topk)
    if cache_seqlens is None:
        for name, value in (("num_q_tokens_per_head_k", num_q_tokens_per_head_k), ("num_heads_k", num_heads_k),
                            ("num_heads_q", num_heads_q)):
            if value is not None:
                raise TypeError(f"openmla: cache_seqlens: expected an int32 [b] array with {name} (the tuple "
                                f"form), or no arguments at all (the FlashMLASchedMeta form), given None")
        return FlashMLASchedMeta(), None
    rows = _args.integer(num_q_tokens_per_head_k, "num_q_tokens_per_head_k")
    h_kv = _args.integer(num_heads_k, "num_heads_k")
    if num_heads_q is not None:
        _args.integer(num_heads_q, "num_heads_q")
    return plan(cache_seqlens, s_q=1, h_q=rows * h_kv, h_kv=h_kv, cache_format=cache_format)


def flash_mla_with_kvcache(q, k_cache, block_table, cache_seqlens, head_dim_v, tile_scheduler_metadata,
                           num_splits=None, softmax_scale=None, causal=False, is_fp8_kvcache=False, indices=None,
                           attn_sink=None, extra_k_cache=None, extra_indices_in_kvcache=None, topk_length=None,
                           extra_topk_length=None):
    """FlashMLA's flash_mla_with_kvcache.

    q: [b, s_q, h_q, d] bf16/fp16; k_cache: [num_blocks, page_size, h_kv, d]; block_table:
    int32 [b, max_blocks_per_seq]; cache_seqlens: int32 [b]; head_dim_v: d_v (v = k_cache[..., :d_v]);
    tile_scheduler_metadata, num_splits: the pair from get_mla_metadata(cache_seqlens, ...), or the
    FlashMLASchedMeta from get_mla_metadata() and None. num_splits may also be None with the tuple
    form's tile_scheduler_metadata (as code written for FlashMLA's current API passes it): it is then
    found inside that plan buffer.
    is_fp8_kvcache=True: k_cache holds FlashMLA's FP8 tokens, [num_blocks, page_size, h_kv, 656] uint8 or
    float8_e4m3fn (512 e4m3 values, 4 float32 scales, 64 RoPE values in q's dtype; docs/fp8.md), d 576.
    Returns (out [b, s_q, h_q, head_dim_v] q's dtype, lse float32 [b, h_q, s_q]).
    indices, attn_sink, extra_k_cache, extra_indices_in_kvcache, topk_length and extra_topk_length raise
    NotImplementedError: not supported yet.
    """
    cache_format = _cache_format(is_fp8_kvcache)
    _refuse_unserved(indices=indices, attn_sink=attn_sink,
                     extra_k_cache=extra_k_cache, extra_indices_in_kvcache=extra_indices_in_kvcache,
                     topk_length=topk_length, extra_topk_length=extra_topk_length)
    if isinstance(tile_scheduler_metadata, FlashMLASchedMeta):
        if num_splits is not None:
            raise ValueError(f"openmla: num_splits: expected None with a FlashMLASchedMeta, given "
                             f"{type(num_splits).__name__}")
        return _with_sched_meta(tile_scheduler_metadata, q, k_cache, block_table, cache_seqlens, head_dim_v,
                                softmax_scale, causal, cache_format)
    if num_splits is None:  # FlashMLA's current placeholder, with a plan from the tuple form
        _arrays.framework(tile_scheduler_metadata, "tile_scheduler_metadata")
        batch = _arrays.rank_checked(q, "q", 4, "[b, s_q, h_q, d_qk]")[0]
        num_splits = num_splits_view(tile_scheduler_metadata, batch)
    return decode(q, k_cache, block_table, cache_seqlens, d_v=head_dim_v, softmax_scale=softmax_scale,
                  causal=causal, plan=Plan(tile_scheduler_metadata, num_splits), cache_format=cache_format)


def _with_sched_meta(sched_meta, q, k_cache, block_table, cache_seqlens, head_dim_v, softmax_scale, causal,
                     cache_format):
    """The argument-less form: the first call makes and records the plan, later calls are checked
    against it and reuse it."""
    _arrays.framework(q, "q")
    _arrays.framework(k_cache, "k_cache")
    b, s_q, h_q, _ = _arrays.rank_checked(q, "q", 4, "[b, s_q, h_q, d_qk]")
    _, page_size, h_kv, _ = _arrays.rank_checked(k_cache, "k_cache", 4, "[num_blocks, page_size, h_kv, d_qk]")
    config = SchedConfig(b=b, s_q=s_q, h_q=h_q, page_size=page_size, h_kv=h_kv,
                         causal=_args.flag(causal, "causal"), device=_arrays.device_of(q))
    if sched_meta.config is None:
        made = plan(cache_seqlens, s_q=s_q, h_q=h_q, h_kv=h_kv, cache_format=cache_format)
        result = decode(q, k_cache, block_table, cache_seqlens, d_v=head_dim_v, softmax_scale=softmax_scale,
                        causal=causal, plan=made, cache_format=cache_format)
        sched_meta.config, sched_meta.plan = config, made
        return result
    for field in dataclasses.fields(SchedConfig):
        first, given = getattr(sched_meta.config, field.name), getattr(config, field.name)
        if first != given:
            raise ValueError(f"openmla: {_CONFIG_SOURCES[field.name]}: expected {first}, as in the first call "
                             f"with this FlashMLASchedMeta, given {given} (get_mla_metadata() makes a new one)")
    return decode(q, k_cache, block_table, cache_seqlens, d_v=head_dim_v, softmax_scale=softmax_scale,
                  causal=causal, plan=sched_meta.plan, cache_format=cache_format)
