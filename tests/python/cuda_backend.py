"""What the GPU test files need: whether this build and machine can run openmla on CUDA."""

import pytest

import openmla


def require_cuda_backend():
    """Skips the calling test module unless openmla was built with its CUDA backend and sees a device."""
    if not openmla.cuda_built():
        pytest.skip("openmla was built without the CUDA backend", allow_module_level=True)
    if openmla.cuda_device_count() == 0:
        pytest.skip("openmla sees no CUDA device", allow_module_level=True)
