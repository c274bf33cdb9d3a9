"""openmla.distributed's split as pure functions (NumPy, no process group): every page of a sequence in
exactly one rank's contiguous range, balanced, the last s_q keys on the last rank; and every rank's share
decoded in one process and merged equals one decode over the whole (causal s_q > 1 included)."""

import numpy as np
import pytest

import openmla
from mla_reference import assert_close, make_case, reference
from openmla import distributed

LENGTHS = [0, 1, 2, 3, 15, 16, 17, 31, 33, 64, 100, 257, 1000]


@pytest.mark.parametrize("page_size", [1, 7, 16, 64])
@pytest.mark.parametrize("world_size", [1, 2, 3, 5, 8])
@pytest.mark.parametrize("s_q, causal", [(1, False), (4, False), (1, True), (2, True), (5, True), (70, True)])
def test_ranges_partition_the_pages(page_size, world_size, s_q, causal):
    s_k = np.array(LENGTHS, np.int32)
    pages = -(-s_k // page_size)
    bounds = distributed.page_bounds(s_k, world_size, page_size, s_q=s_q, causal=causal)
    assert bounds.dtype == np.int32 and bounds.shape == (world_size + 1, len(LENGTHS))
    assert (bounds[0] == 0).all() and (bounds[-1] == pages).all() and (np.diff(bounds, axis=0) >= 0).all()
    counts = np.diff(bounds, axis=0)  # [W, b]
    width = distributed.share_width(int(pages.max()), world_size, page_size, s_q=s_q, causal=causal)
    assert (counts <= width).all()
    first_of_last = bounds[world_size - 1].astype(np.int64) * page_size  # first key of the last rank
    if causal and s_q > 1:
        # The last rank holds the last s_q keys; the others only keys every query row sees.
        assert (first_of_last <= np.maximum(s_k - s_q, 0)).all()
    else:
        assert (counts.max(axis=0) - counts.min(axis=0) <= 1).all(), "balanced to within a page"


@pytest.mark.parametrize("world_size", [1, 2, 3, 4])
def test_shares_hold_the_rank_pages_and_keys(world_size):
    case = make_case(len(LENGTHS), 1, 1, 1, LENGTHS, page_size=16)
    table, s_k = case["block_table"], case["cache_seqlens"]
    bounds = distributed.page_bounds(s_k, world_size, 16, s_q=3, causal=True)
    total = np.zeros_like(s_k)
    for rank in range(world_size):
        share_table, lengths = distributed.split(table, s_k, world_size, rank, 16, s_q=3, causal=True)
        assert share_table.dtype == np.int32 and lengths.dtype == np.int32 and share_table.flags.c_contiguous
        for i in range(len(LENGTHS)):
            start, end = bounds[rank, i], bounds[rank + 1, i]
            assert (share_table[i, : end - start] == table[i, start:end]).all()
            assert lengths[i] == max(0, min(int(s_k[i]) - start * 16, (end - start) * 16))
        total += lengths
    assert (total == s_k).all()


def test_torch_and_numpy_split_agree():
    torch = pytest.importorskip("torch", reason="PyTorch is not installed: torch split test skipped")
    case = make_case(len(LENGTHS), 1, 1, 1, LENGTHS, page_size=16)
    for rank in range(3):
        want = distributed.split(case["block_table"], case["cache_seqlens"], 3, rank, 16, s_q=4, causal=True)
        got = distributed.split(torch.from_numpy(case["block_table"]), torch.from_numpy(case["cache_seqlens"]), 3,
                                rank, 16, s_q=4, causal=True)
        for w, g in zip(want, got):
            assert g.dtype == torch.int32 and np.array_equal(g.numpy(), w)


def decode_every_share(case, world_size, s_q, causal, dtype, d_v):
    """Each rank's share decoded on the CPU (as its own process would), stacked and merged."""
    q = case["q"].astype(dtype)
    k_cache = case["k_cache"].astype(dtype)
    page_size, h_q, h_kv = k_cache.shape[1], q.shape[2], k_cache.shape[2]
    outs, lses = [], []
    for rank in range(world_size):
        step = distributed.plan(case["block_table"], case["cache_seqlens"], h_q=h_q, s_q=s_q, h_kv=h_kv,
                                page_size=page_size, causal=causal, rank=rank, world_size=world_size)
        assert step.causal == (causal and rank == world_size - 1)
        out, lse = distributed.decode_share(q, k_cache, step, d_v=d_v)
        outs.append(out)
        lses.append(lse)
    return q, k_cache, openmla.merge(np.stack(outs), np.stack(lses))


@pytest.mark.parametrize("world_size", [1, 2, 3, 4])
@pytest.mark.parametrize("s_q, causal", [(1, False), (2, True), (4, True), (3, False)])
@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_every_share_merged_equals_one_decode(world_size, s_q, causal, dtype):
    if dtype == "bfloat16":
        dtype = pytest.importorskip("ml_dtypes", reason="ml_dtypes not installed: no NumPy bfloat16").bfloat16
    lengths = [0, 1, 3, 16, 17, 50, 130, 300]
    case = make_case(len(lengths), s_q, 4, 2, lengths, d_qk=48, page_size=16)
    q, k_cache, (out, lse) = decode_every_share(case, world_size, s_q, causal, dtype, d_v=32)
    ref_out, ref_lse = reference(q, k_cache, case["block_table"], case["cache_seqlens"], 32, causal=causal)
    assert_close(out, lse, ref_out, ref_lse)
    whole_out, whole_lse = openmla.decode(q, k_cache, case["block_table"], case["cache_seqlens"], d_v=32,
                                          causal=causal)
    assert_close(out, lse, np.asarray(whole_out, np.float64), np.asarray(whole_lse, np.float64))


def test_bounds_given_by_the_engine():
    """Fixed ranges that keep the tail rule (here: rank 0 holds the first page, rank 1 the rest)."""
    case = make_case(3, 2, 4, 1, [40, 90, 17], d_qk=48, page_size=16)
    pages = -(-case["cache_seqlens"] // 16)
    bounds = np.stack([np.zeros_like(pages), np.minimum(pages - 1, 1), pages]).astype(np.int32)
    q, k_cache = case["q"].astype(np.float16), case["k_cache"].astype(np.float16)
    outs, lses = [], []
    for rank in range(2):
        step = distributed.plan(case["block_table"], case["cache_seqlens"], h_q=4, s_q=2, page_size=16, causal=True,
                                bounds=bounds, rank=rank, world_size=2)
        out, lse = distributed.decode_share(q, k_cache, step, d_v=32)
        outs.append(out)
        lses.append(lse)
    out, lse = openmla.merge(outs, lses)
    assert_close(out, lse, *reference(q, k_cache, case["block_table"], case["cache_seqlens"], 32, causal=True))


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda s: distributed.page_bounds(s, 0, 16), "world_size: expected an int >= 1, given 0"),
        (lambda s: distributed.page_bounds(s, 2, 0), "page_size: expected an int >= 1, given 0"),
        (lambda s: distributed.page_bounds(s, 2, 16, s_q=0), "s_q: expected an int >= 1, given 0"),
        (lambda s: distributed.share(np.zeros((2, 4), np.int32), s, distributed.page_bounds(s, 2, 16), 2, 16),
         r"rank: expected an int in \[0, 2\), given 2"),
        (lambda s: distributed.plan(np.zeros((2, 4), np.int32), s, h_q=1, page_size=16, rank=0, world_size=2,
                                    bounds=np.zeros((2, 2), np.int32)),
         r"bounds: expected shape \(3, 2\) \[world_size \+ 1, b\], given \(2, 2\)"),
        (lambda s: distributed.plan(np.zeros((2, 4), np.int32), s, h_q=1, page_size=16, rank=0, world_size=2,
                                    cache_format="fp8"),
         "cache_format: expected one of plain, fp8_per_tensor, fp8_656, given 'fp8'"),
    ],
)
def test_errors(call, message):
    with pytest.raises(ValueError, match=message):
        call(np.array([10, 40], np.int32))
