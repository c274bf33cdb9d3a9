"""The CPU backend through NumPy arrays: results against the float64 reference, plan reuse, the
FlashMLA call pattern."""

import numpy as np
import pytest

import openmla
from mla_reference import assert_close, make_case, reference

DTYPES = ["float16", "bfloat16"]


def as_dtype(x, dtype):
    if dtype == "bfloat16":
        ml_dtypes = pytest.importorskip("ml_dtypes", reason="ml_dtypes not installed: no NumPy bfloat16")
        return x.astype(ml_dtypes.bfloat16)
    return x.astype(dtype)


def run_and_check(case, dtype, d_v, **kwargs):
    q = as_dtype(case["q"], dtype)  # [b, s_q, h_q, d_qk]
    k_cache = as_dtype(case["k_cache"], dtype)  # [num_blocks, page_size, h_kv, d_qk]
    out, lse = openmla.decode(q, k_cache, case["block_table"], case["cache_seqlens"], d_v=d_v, **kwargs)
    assert isinstance(out, np.ndarray) and out.dtype == q.dtype and out.shape == q.shape[:3] + (d_v,)
    assert lse.dtype == np.float32 and lse.shape == (q.shape[0], q.shape[2], q.shape[1])
    ref_out, ref_lse = reference(q, k_cache, case["block_table"], case["cache_seqlens"], d_v,
                                 kwargs.get("softmax_scale"), kwargs.get("causal", False))
    assert_close(out, lse, ref_out, ref_lse)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    "b, s_q, h_q, h_kv, seqlens, causal",
    [
        (1, 1, 1, 1, [20], False),
        (2, 1, 16, 1, [20, 140], False),
        (3, 2, 9, 3, [140, 0, 33], True),
        (2, 4, 4, 2, [3, 70], True),
        (6, 1, 8, 8, [1, 64, 65, 200, 0, 17], False),
        (2, 2, 6, 1, [5, 300], False),
    ],
)
def test_decode_matches_reference(dtype, b, s_q, h_q, h_kv, seqlens, causal):
    run_and_check(make_case(b, s_q, h_q, h_kv, seqlens), dtype, d_v=48, causal=causal)


@pytest.mark.parametrize("dtype", DTYPES)
def test_deepseek_shapes(dtype):
    case = make_case(2, 2, 16, 1, [100, 257], d_qk=576, page_size=64)
    run_and_check(case, dtype, d_v=512, causal=True)


def test_softmax_scale_and_page_size():
    run_and_check(make_case(2, 1, 4, 1, [50, 90], page_size=7), "float16", d_v=64, softmax_scale=0.3)


def test_zero_length_rows_give_zero_and_inf():
    case = make_case(2, 3, 2, 1, [0, 2])
    q = case["q"].astype(np.float16)
    out, lse = openmla.decode(q, case["k_cache"].astype(np.float16), case["block_table"],
                              case["cache_seqlens"], d_v=32, causal=True)
    assert (out[0] == 0).all() and (lse[0] == np.inf).all()
    assert (lse[1, :, 0] == np.inf).all() and np.isfinite(lse[1, :, 1:]).all()


@pytest.mark.parametrize("num_parts", [1, 3, 7])
def test_plan_shared_by_layers(num_parts):
    """One plan and workspace per step; every layer writes into caller-owned out and lse."""
    case = make_case(3, 1, 8, 1, [40, 0, 150], d_qk=64)
    plan = openmla.plan(case["cache_seqlens"], h_q=8, num_parts=num_parts)
    assert plan.tile_scheduler_metadata.shape[0] == num_parts
    assert plan.num_splits.shape == (4,) and plan.num_splits[0] == 0
    q = case["q"].astype(np.float16)  # [b, s_q, h_q, d_qk]
    workspace = np.empty(openmla.workspace_size(q, plan, d_v=32), np.uint8)
    out = np.empty((3, 1, 8, 32), np.float16)  # [b, s_q, h_q, d_v]
    lse = np.empty((3, 8, 1), np.float32)  # [b, h_q, s_q]
    for layer in range(3):
        k_cache = (case["k_cache"] * (layer + 1)).astype(np.float16)
        result = openmla.decode(q, k_cache, case["block_table"], case["cache_seqlens"], d_v=32, plan=plan,
                                workspace=workspace, out=out, lse=lse, check=True)
        assert result[0] is out and result[1] is lse
        assert_close(out, lse, *reference(q, k_cache, case["block_table"], case["cache_seqlens"], 32))


def test_flash_mla_call_pattern():
    from openmla import flash_mla_with_kvcache, get_mla_metadata

    b, s_q, h_q, h_kv, d_v = 2, 2, 8, 1, 32
    case = make_case(b, s_q, h_q, h_kv, [33, 90])
    q = case["q"].astype(np.float16)
    k_cache = case["k_cache"].astype(np.float16)
    tile_scheduler_metadata, num_splits = get_mla_metadata(case["cache_seqlens"], s_q * h_q // h_kv, h_kv)
    out, lse = flash_mla_with_kvcache(q, k_cache, case["block_table"], case["cache_seqlens"], d_v,
                                      tile_scheduler_metadata, num_splits, causal=True)
    assert out.shape == (b, s_q, h_q, d_v) and lse.shape == (b, h_q, s_q)
    assert_close(out, lse, *reference(q, k_cache, case["block_table"], case["cache_seqlens"], d_v,
                                      causal=True))


def test_strided_and_read_only_inputs():
    case = make_case(2, 1, 4, 1, [30, 60])
    wide = np.concatenate([case["q"], case["q"]], axis=2).astype(np.float16)  # [b, s_q, 2 h_q, d_qk]
    q = wide[:, :, ::2]  # [b, s_q, h_q, d_qk], head stride 2 d_qk
    k_cache = case["k_cache"].astype(np.float16)
    for array in (wide, k_cache, case["block_table"], case["cache_seqlens"]):
        array.flags.writeable = False
    out, lse = openmla.decode(q, k_cache, case["block_table"], case["cache_seqlens"], d_v=16)
    assert_close(out, lse, *reference(q, k_cache, case["block_table"], case["cache_seqlens"], 16))


def test_version():
    assert openmla.__version__.count(".") == 2


def test_plan_serves_other_head_counts_page_sizes_and_d_v():
    """The plan reuse rule: a plan made for h_q = 16, s_q = 1 (these only chose num_parts) serves a decode
    with h_q = 128, s_q = 2, h_kv = 2, page size 32 and another d_v; the workspace follows the decode."""
    lengths = [100, 31, 250]
    plan = openmla.plan(np.array(lengths, np.int32), s_q=1, h_q=16, h_kv=1, num_parts=4)
    case = make_case(3, 2, 128, 2, lengths, d_qk=64, page_size=32)
    q = case["q"].astype(np.float16)  # [b, s_q, h_q, d_qk]
    small = openmla.workspace_size(q[:, :1, :16], plan, d_v=48)
    need = openmla.workspace_size(q, plan, d_v=48)
    assert need > small
    with pytest.raises(ValueError, match=rf"^openmla: workspace: expected >= {need} bytes"):
        openmla.decode(q, case["k_cache"].astype(np.float16), case["block_table"], case["cache_seqlens"],
                       d_v=48, plan=plan, workspace=np.empty(small, np.uint8))
    run_and_check(case, "float16", d_v=48, plan=plan, workspace=np.empty(need, np.uint8), causal=True)


def test_stale_plan_is_refused():
    """A plan made for other lengths (other 64-key tile counts) is refused before anything is written;
    lengths with the same tile counts are fine."""
    plan = openmla.plan(np.array([100, 31], np.int32), h_q=16)
    case = make_case(2, 1, 16, 1, [256, 31])
    q = case["q"].astype(np.float16)
    k_cache = case["k_cache"].astype(np.float16)
    out = np.full((2, 1, 16, 32), 7, np.float16)  # [b, s_q, h_q, d_v]
    with pytest.raises(ValueError, match="^openmla: plan"):
        openmla.decode(q, k_cache, case["block_table"], case["cache_seqlens"], d_v=32, plan=plan, out=out)
    assert (out == 7).all()
    same_tiles = np.array([120, 1], np.int32)  # 2 and 1 tiles, as 100 and 31
    got = openmla.decode(q, k_cache, case["block_table"], same_tiles, d_v=32, plan=plan)
    assert_close(*got, *reference(q, k_cache, case["block_table"], same_tiles, 32))


def test_empty_batch():
    """b = 0 (an engine's empty step): plan and decode return empty outputs."""
    case = make_case(2, 2, 4, 1, [30, 60])
    q = case["q"][:0].astype(np.float16)  # [0, s_q, h_q, d_qk]
    k_cache = case["k_cache"].astype(np.float16)
    lengths = case["cache_seqlens"][:0]
    plan = openmla.plan(lengths, s_q=2, h_q=4)
    assert plan.num_splits.shape == (1,)  # [b + 1]
    out, lse = openmla.decode(q, k_cache, case["block_table"][:0], lengths, d_v=32, plan=plan)
    assert out.shape == (0, 2, 4, 32) and out.dtype == np.float16 and lse.shape == (0, 4, 2)
    out, lse = openmla.decode(q, k_cache, case["block_table"][:0], lengths, d_v=32)
    assert out.shape == (0, 2, 4, 32)
    tile_scheduler_metadata, num_splits = openmla.get_mla_metadata(lengths, 8, 1)
    out, lse = openmla.flash_mla_with_kvcache(q, k_cache, case["block_table"][:0], lengths, 32,
                                              tile_scheduler_metadata, num_splits)
    assert out.shape == (0, 2, 4, 32) and lse.shape == (0, 4, 2)


def test_build_queries():
    assert isinstance(openmla.cuda_built(), bool)
    assert openmla.cuda_device_count() >= 0
    assert openmla.cuda_available() == (openmla.cuda_built() and openmla.cuda_device_count() > 0)
    if not openmla.cuda_built():
        assert openmla.cuda_device_count() == 0
