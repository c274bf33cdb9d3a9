"""What the GPU test files need: whether this build and machine can run openmla on CUDA."""

import pytest

from openmla import _sizes


def require_cuda_backend():
    """Skips the calling test module unless openmla was built with its CUDA backend."""
    try:
        _sizes.plan_geometry(1, 1, 1, 1, 1, "cuda", 0)
    except ValueError as error:
        pytest.skip(f"openmla was built without the CUDA backend ({error})", allow_module_level=True)
