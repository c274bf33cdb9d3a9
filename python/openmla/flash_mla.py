"""FlashMLA's call pattern: `from openmla import get_mla_metadata, flash_mla_with_kvcache` in place of
`from flash_mla import ...`, with FlashMLA's arguments and shapes."""

from ._decode import decode
from ._plan import Plan, plan


def get_mla_metadata(cache_seqlens, num_q_tokens_per_head_k, num_heads_k):
    """FlashMLA's get_mla_metadata(cache_seqlens, s_q * h_q // h_kv, h_kv).

    cache_seqlens: int32 [b]. Returns (tile_scheduler_metadata int32 [num_parts, words_per_part],
    num_splits int32 [b + 1]), to pass unchanged to every flash_mla_with_kvcache call of the step.
    The schedule depends only on the lengths, so it serves any s_q, h_q and page size later.
    """
    return plan(cache_seqlens, s_q=1, h_q=num_q_tokens_per_head_k * num_heads_k, h_kv=num_heads_k)


def flash_mla_with_kvcache(q, k_cache, block_table, cache_seqlens, head_dim_v, tile_scheduler_metadata,
                           num_splits, softmax_scale=None, causal=False):
    """FlashMLA's flash_mla_with_kvcache.

    q: [b, s_q, h_q, d] bf16/fp16; k_cache: [num_blocks, page_size, h_kv, d]; block_table:
    int32 [b, max_blocks_per_seq]; cache_seqlens: int32 [b]; head_dim_v: d_v (v = k_cache[..., :d_v]);
    tile_scheduler_metadata, num_splits: from get_mla_metadata.
    Returns (out [b, s_q, h_q, head_dim_v] q's dtype, lse float32 [b, h_q, s_q]).
    """
    return decode(q, k_cache, block_table, cache_seqlens, d_v=head_dim_v, softmax_scale=softmax_scale,
                  causal=causal, plan=Plan(tile_scheduler_metadata, num_splits))
