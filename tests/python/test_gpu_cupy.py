"""CuPy arrays on the GPU: outputs in CuPy, work on CuPy's current stream."""

import numpy as np
import pytest

import openmla
from cuda_backend import import_cupy, require_cuda_backend
from mla_reference import assert_close, make_case, reference

cupy = import_cupy("CuPy GPU")
require_cuda_backend()


@pytest.mark.parametrize("causal", [False, True])
def test_decode_on_current_stream(causal):
    case = make_case(3, 2, 16, 1, [0, 200, 1500], d_qk=576, page_size=64)
    q = cupy.asarray(case["q"].astype(np.float16))  # [b, s_q, h_q, d_qk]
    k_cache = cupy.asarray(case["k_cache"].astype(np.float16))
    block_table = cupy.asarray(case["block_table"])
    cache_seqlens = cupy.asarray(case["cache_seqlens"])
    with cupy.cuda.Stream(non_blocking=True) as stream:
        tile_scheduler_metadata, num_splits = openmla.get_mla_metadata(cache_seqlens, 2 * 16, 1)
        out, lse = openmla.flash_mla_with_kvcache(q, k_cache, block_table, cache_seqlens, 512,
                                                  tile_scheduler_metadata, num_splits, causal=causal)
        stream.synchronize()
    assert isinstance(out, cupy.ndarray) and out.dtype == np.float16 and lse.dtype == np.float32
    ref_out, ref_lse = reference(case["q"].astype(np.float16), case["k_cache"].astype(np.float16),
                                 case["block_table"], case["cache_seqlens"], 512, causal=causal)
    assert_close(cupy.asnumpy(out), cupy.asnumpy(lse), ref_out, ref_lse)


def test_checked_mode_and_errors():
    case = make_case(2, 1, 16, 1, [100, 200], d_qk=576, page_size=64)
    q = cupy.asarray(case["q"].astype(np.float16))
    k_cache = cupy.asarray(case["k_cache"].astype(np.float16))
    block_table = cupy.asarray(case["block_table"])
    cache_seqlens = cupy.asarray(np.array([100, 100000], np.int32))
    with pytest.raises(ValueError, match=r"device check, sequence 1"):
        openmla.decode(q, k_cache, block_table, cache_seqlens, check=True)
    with pytest.raises(TypeError, match="block_table: expected a cupy array like q, given a numpy array"):
        openmla.decode(q, k_cache, case["block_table"], cache_seqlens)


def test_empty_batch_and_sched_meta_form():
    case = make_case(2, 1, 16, 1, [100, 200], d_qk=576, page_size=64)
    q = cupy.asarray(case["q"].astype(np.float16))
    k_cache = cupy.asarray(case["k_cache"].astype(np.float16))
    block_table = cupy.asarray(case["block_table"])
    cache_seqlens = cupy.asarray(case["cache_seqlens"])
    out, lse = openmla.decode(q[:0], k_cache, block_table[:0], cache_seqlens[:0])
    assert isinstance(out, cupy.ndarray) and out.shape == (0, 1, 16, 512) and lse.shape == (0, 16, 1)
    sched_meta, _ = openmla.get_mla_metadata()
    out, lse = openmla.flash_mla_with_kvcache(q, k_cache, block_table, cache_seqlens, 512, sched_meta, None)
    ref_out, ref_lse = reference(case["q"].astype(np.float16), case["k_cache"].astype(np.float16),
                                 case["block_table"], case["cache_seqlens"], 512)
    assert_close(cupy.asnumpy(out), cupy.asnumpy(lse), ref_out, ref_lse)
