"""What the GPU test files need: whether this build and machine can run openmla on CUDA, and CuPy."""

import pytest

import openmla


def require_cuda_backend():
    """Skips the calling test module unless openmla was built with its CUDA backend and sees a device."""
    if not openmla.cuda_built():
        pytest.skip("openmla was built without the CUDA backend", allow_module_level=True)
    if openmla.cuda_device_count() == 0:
        pytest.skip("openmla sees no CUDA device", allow_module_level=True)


def import_cupy(tests):
    """CuPy with a CUDA device, or a skip of the calling test module naming its `tests` (e.g. "CuPy GPU")."""
    cupy = pytest.importorskip("cupy", reason=f"CuPy is not installed: {tests} tests skipped")
    try:
        cupy.cuda.runtime.getDeviceCount()
    except cupy.cuda.runtime.CUDARuntimeError:
        pytest.skip(f"no CUDA device: {tests} tests skipped", allow_module_level=True)
    return cupy
