"""openmla.merge on CuPy arrays: outputs in CuPy, on CuPy's current stream, equal to the CPU backend."""

import numpy as np
import pytest

import openmla
from cuda_backend import import_cupy, require_cuda_backend
from test_merge import random_parts

cupy = import_cupy("CuPy merge")
require_cuda_backend()


@pytest.mark.parametrize("dtype", [np.float16, np.float32])
def test_merge_on_current_stream(dtype):
    out_parts, lse_parts = random_parts(3, 2, 2, 16, 512, seed=3)
    lse_parts[1, 0, 3, 1] = np.inf
    want_out, want_lse = openmla.merge(out_parts.astype(dtype), lse_parts)
    stream = cupy.cuda.Stream(non_blocking=True)
    with stream:
        out, lse = openmla.merge(cupy.asarray(out_parts.astype(dtype)), cupy.asarray(lse_parts))
    stream.synchronize()
    assert isinstance(out, cupy.ndarray) and out.dtype == dtype and isinstance(lse, cupy.ndarray)
    np.testing.assert_allclose(cupy.asnumpy(lse), want_lse, rtol=1e-6, atol=1e-6)
    tolerance = 2**-10 if dtype == np.float16 else 1e-5
    np.testing.assert_allclose(cupy.asnumpy(out).astype(np.float32), want_out.astype(np.float32), rtol=tolerance,
                               atol=1e-6)
