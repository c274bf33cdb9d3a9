"""openmla.write_cache on CuPy arrays: on CuPy's current stream, bitwise equal to the CPU backend (plain and
656-byte FP8 caches), and an out-of-range slot recorded in a CuPy status array."""

import numpy as np
import pytest

import openmla
from cuda_backend import import_cupy, require_cuda_backend
from test_write_cache import expected, make_write

cupy = import_cupy("CuPy write_cache")
require_cuda_backend()


@pytest.mark.parametrize("d_v, d_rope", [(512, 64), (24, 5)])
def test_write_on_current_stream(d_v, d_rope):
    kv_c, k_pe, k_cache, slots = make_write(100, d_v=d_v, d_rope=d_rope, num_blocks=4, page_size=64, seed=2)
    slots[::9] = -1
    want = expected(kv_c, k_pe, k_cache, slots)
    cache = cupy.asarray(k_cache)
    stream = cupy.cuda.Stream(non_blocking=True)
    with stream:
        openmla.write_cache(cupy.asarray(kv_c), cupy.asarray(k_pe), cache, cupy.asarray(slots))
    stream.synchronize()
    assert np.array_equal(cupy.asnumpy(cache).view(np.uint16), want)


def test_slot_past_the_cache_is_recorded():
    kv_c, k_pe, k_cache, slots = make_write(8, seed=3)
    slots[5] = 12
    cache = cupy.asarray(k_cache)
    status = openmla.write_cache_status(cache)
    assert isinstance(status, cupy.ndarray)
    openmla.write_cache(cupy.asarray(kv_c), cupy.asarray(k_pe), cache, cupy.asarray(slots), status=status)
    with pytest.raises(ValueError, match=r"token 5\)"):
        openmla.check_status(status)
    good = slots.copy()
    good[5] = -1
    assert np.array_equal(cupy.asnumpy(cache).view(np.uint16), expected(kv_c, k_pe, k_cache, good))


def test_fp8_656_equals_the_cpu():
    """FlashMLA's 656-byte tokens into a CuPy uint8 cache (CuPy has no float8 dtype: a per-tensor cache,
    float8_e4m3fn, cannot be a CuPy array), float16 rows (CuPy has no bfloat16)."""
    from test_write_cache_fp8 import rows

    kv_c, k_pe = rows(100, np.float16, seed=5)
    slots = np.random.default_rng(5).permutation(4 * 64)[:100].astype(np.int64)
    slots[::9] = -1
    want = np.zeros((4, 64, 1, 656), np.uint8)
    openmla.write_cache(kv_c, k_pe, want, slots)
    cache = cupy.zeros((4, 64, 1, 656), cupy.uint8)
    openmla.write_cache(cupy.asarray(kv_c), cupy.asarray(k_pe), cache, cupy.asarray(slots))
    assert np.array_equal(cupy.asnumpy(cache), want)
