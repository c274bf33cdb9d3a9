"""The caller's framework: which one an array belongs to, allocating like it, its device and stream.
NumPy and CuPy arrays and torch tensors are supported; outputs come back in the framework of q."""

import contextlib

from . import _torch


def framework(x, name):
    """"torch", "numpy" or "cupy"; TypeError for anything else."""
    if _torch.is_tensor(x):
        return "torch"
    module = type(x).__module__.partition(".")[0]
    if module in ("numpy", "cupy") and type(x).__name__ == "ndarray":
        return module
    raise TypeError(f"openmla: {name}: expected a numpy.ndarray, torch.Tensor or cupy.ndarray, "
                    f"given {type(x).__module__}.{type(x).__name__}")


def _is_cupy(x):
    return type(x).__module__.startswith("cupy")


def check_same_framework(kind, x, name, like="q"):
    given = framework(x, name)
    if given != kind:
        raise TypeError(f"openmla: {name}: expected a {kind} array like {like}, given a {given} array")


def device_of(x):
    """(device type, ordinal) as the library names them: ("cpu", 0) or ("cuda", n)."""
    if _torch.is_tensor(x):
        return ("cuda", x.device.index) if x.is_cuda else ("cpu", 0)
    if _is_cupy(x):
        return ("cuda", x.device.id)
    return ("cpu", 0)


def empty(like, shape, dtype=None):
    """An uninitialized array of `like`'s framework and device; dtype a NumPy name, None for like's."""
    if _torch.is_tensor(like):
        torch = _torch.torch
        return torch.empty(shape, dtype=like.dtype if dtype is None else getattr(torch, dtype),
                           device=like.device)
    if _is_cupy(like):
        import cupy

        with like.device:
            return cupy.empty(shape, dtype=like.dtype if dtype is None else dtype)
    import numpy

    return numpy.empty(shape, dtype=like.dtype if dtype is None else dtype)


def rank_checked(x, name, rank, dims):
    """x's shape as a tuple; ValueError unless x has `rank` dims (`dims` names them, e.g. "[b, s_q, h_q, d_qk]")."""
    if len(x.shape) != rank:
        raise ValueError(f"openmla: {name}: expected rank {rank} {dims}, given rank {len(x.shape)}")
    return tuple(x.shape)


DECODE_DTYPES = "bfloat16 or float16 (float32 too on the CPU)"  # decode's q, k_cache and out
FLOAT_DTYPES = "bfloat16, float16 or float32"  # merge's out_parts and out


def check_dtype(x, name, dtypes=DECODE_DTYPES):
    """Refuses uint16, the dtype that carries NumPy bfloat16 into the bindings, so that a genuine
    uint16 array is never read as bfloat16; `dtypes` names what the argument accepts."""
    if _torch.is_tensor(x):
        is_uint16 = x.dtype == getattr(_torch.torch, "uint16", None)
    else:
        is_uint16 = str(x.dtype) == "uint16"
    if is_uint16:
        raise TypeError(f"openmla: {name}: expected dtype {dtypes}, given uint16")


def check_writable(x, name):
    """A read-only NumPy array cannot be an output (torch and CuPy arrays are always writable)."""
    flags = getattr(x, "flags", None)
    if flags is not None and not getattr(flags, "writeable", True):
        raise ValueError(f"openmla: {name}: expected a writable array, given a read-only one")


def for_library(x, name, dtypes=DECODE_DTYPES):
    """x as the bindings read it: NumPy/CuPy bfloat16 (ml_dtypes) travels as uint16, which DLPack can
    export; `dtypes` as in check_dtype."""
    check_dtype(x, name, dtypes)
    return x.view("uint16") if str(x.dtype) == "bfloat16" else x


def stream_of(x):
    """The caller's current stream on x's device as an int; 0 for CPU arrays."""
    if _torch.is_tensor(x):
        return _torch.current_stream(x)
    if _is_cupy(x):
        import cupy

        with x.device:
            return cupy.cuda.get_current_stream().ptr
    return 0


def device_guard(x):
    """Makes x's CUDA device current for the duration; nothing for CPU arrays."""
    if _torch.is_tensor(x):
        return _torch.device_guard(x)
    if _is_cupy(x):
        return x.device
    return contextlib.nullcontext()
