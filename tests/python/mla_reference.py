"""Test data and the float64 ground truth (docs/semantics.md, docs/design.md), shared by the pytest files."""

import math

import numpy as np

POISON = 2147480000  # block-table entries past a sequence's pages: never read


def make_case(b, s_q, h_q, h_kv, seqlens, d_qk=64, page_size=16, extra_pages=1, seed=0):
    """float32 q and cache (N(0, 0.1^2) clamped to +-1), a permuted block table with poisoned tails and
    NaN in every unused cache slot. Returns dict of numpy arrays:
    q [b, s_q, h_q, d_qk], k_cache [num_blocks, page_size, h_kv, d_qk], block_table [b, max_blocks]
    int32, cache_seqlens [b] int32."""
    rng = np.random.default_rng(seed)
    seqlens = np.asarray(seqlens, dtype=np.int32)  # [b]
    pages = [math.ceil(int(s) / page_size) for s in seqlens]
    max_blocks = max(max(pages), 1) + extra_pages
    num_blocks = sum(pages) + 3
    q = np.clip(rng.normal(0, 0.1, (b, s_q, h_q, d_qk)), -1, 1).astype(np.float32)
    k_cache = np.full((num_blocks, page_size, h_kv, d_qk), np.nan, np.float32)
    block_table = np.full((b, max_blocks), POISON, np.int32)
    order = rng.permutation(num_blocks)
    used = 0
    for i, s_k in enumerate(seqlens):
        block_table[i, : pages[i]] = order[used : used + pages[i]]
        used += pages[i]
        for j in range(pages[i]):
            valid = min(page_size, int(s_k) - j * page_size)
            k_cache[block_table[i, j], :valid] = np.clip(rng.normal(0, 0.1, (valid, h_kv, d_qk)), -1, 1)
    return {"q": q, "k_cache": k_cache, "block_table": block_table, "cache_seqlens": seqlens}


def reference(q, k_cache, block_table, cache_seqlens, d_v, softmax_scale=None, causal=False):
    """float64 MLA decode. All inputs numpy; q and k_cache already rounded to the tested dtype.
    Returns out [b, s_q, h_q, d_v] and lse [b, h_q, s_q] (+inf for a row that sees no key)."""
    q = np.asarray(q, np.float64)
    k_cache = np.asarray(k_cache, np.float64)
    b, s_q, h_q, d_qk = q.shape
    page_size, h_kv = k_cache.shape[1], k_cache.shape[2]
    group = h_q // h_kv
    scale = 1.0 / math.sqrt(d_qk) if softmax_scale is None else softmax_scale
    out = np.zeros((b, s_q, h_q, d_v))
    lse = np.full((b, h_q, s_q), np.inf)
    for i in range(b):
        s_k = int(cache_seqlens[i])
        pages = block_table[i, : math.ceil(s_k / page_size)]
        keys = k_cache[pages].reshape(-1, h_kv, d_qk)[:s_k]  # [s_k, h_kv, d_qk]
        visible = np.full((s_q, s_k), True)
        if causal:
            visible = np.arange(s_k)[None, :] <= (s_k - s_q + np.arange(s_q))[:, None]  # [s_q, s_k]
        for h in range(h_q):
            k = keys[:, h // group]  # [s_k, d_qk]
            scores = np.where(visible, q[i, :, h] @ k.T * scale, -np.inf)  # [s_q, s_k]
            for r in range(s_q):
                if not visible[r].any():
                    continue
                m = scores[r].max()
                p = np.exp(scores[r] - m)
                lse[i, h, r] = m + math.log(p.sum())
                out[i, r, h] = p @ k[:, :d_v] / p.sum()
    return out, lse


def assert_close(out, lse, ref_out, ref_lse):
    """The tolerances of docs/design.md (bf16 inputs; fp16 is more precise and held to the same bounds)."""
    out = np.asarray(out, np.float64)
    lse = np.asarray(lse, np.float64)
    assert not np.isnan(out).any() and not np.isnan(lse).any(), "NaN in the result"
    err = np.abs(out - ref_out)
    bound = 1e-3 + np.abs(ref_out) / 64
    assert (err <= bound).all(), f"out: max excess {np.max(err - bound)}"
    norm = np.linalg.norm(ref_out)
    if norm > 0:
        assert np.linalg.norm(out - ref_out) / norm <= 5e-3
    assert np.array_equal(np.isinf(lse), np.isinf(ref_lse)), "lse: +inf not exactly where the reference has it"
    finite = np.isfinite(ref_lse)
    assert (np.abs(lse[finite] - ref_lse[finite]) <= 1e-5 + 2e-4 * np.abs(ref_lse[finite])).all()
    assert (lse[~finite] == np.inf).all()
