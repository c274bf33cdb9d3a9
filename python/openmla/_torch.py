"""PyTorch integration: the library calls as torch.library custom ops with fake implementations, so
that torch.compile(fullgraph=True) traces them and CUDA graphs capture them. Loaded only when torch is
importable; `torch` is None otherwise."""

import contextlib
from typing import Optional

from . import _C, _sizes

try:
    import torch
except ImportError:
    torch = None


def is_tensor(x):
    return torch is not None and isinstance(x, torch.Tensor)


def device_guard(t):
    """Makes t's CUDA device current for the duration; nothing for CPU tensors."""
    return torch.cuda.device(t.device) if t.is_cuda else contextlib.nullcontext()


def current_stream(t):
    """The caller's current stream on t's device, as an int (0 for CPU tensors)."""
    return torch.cuda.current_stream(t.device).cuda_stream if t.is_cuda else 0


def is_tracing(t):
    """Whether t is seen while tracing (torch.compile, torch.export, a FakeTensorMode): it has a shape and
    a device but no data."""
    return torch.compiler.is_compiling() or _is_fake(t)


def check_has_data(t, name):
    """Refuses a meta tensor outside tracing: it has no data, and the op's fake implementation would
    return outputs that were never written. While tracing, the tensors are fake ones and trace as
    intended."""
    if t.device.type != "meta" or is_tracing(t):
        return
    raise ValueError(f"openmla: {name}: expected a CPU or CUDA tensor, given a meta tensor (it holds no "
                     f"data; trace with torch.compile or FakeTensorMode instead)")


def _is_fake(t):
    try:
        from torch._subclasses.fake_tensor import FakeTensor
    except ImportError:
        return False
    return isinstance(t, FakeTensor)


def records_grad(*tensors):
    """Whether autograd would record a call on these tensors."""
    return torch.is_grad_enabled() and any(t.requires_grad for t in tensors)


NO_BACKWARD = ("openmla: decode has no backward: it is an inference kernel, and q and k_cache get no "
               "gradient through out and lse; call it under torch.no_grad() or torch.inference_mode(), or "
               "pass detached inputs")


if torch is not None:
    torch.compiler.assume_constant_result(_sizes.plan_geometry)
    torch.compiler.assume_constant_result(_sizes.workspace_bytes)

    @torch.library.custom_op("openmla::plan_", mutates_args=("tile_scheduler_metadata",))
    def plan_(cache_seqlens: torch.Tensor, tile_scheduler_metadata: torch.Tensor, s_q: int, h_q: int, h_kv: int,
              cache_format: int) -> None:
        """Writes the schedule for cache_seqlens [b] int32 into tile_scheduler_metadata
        [num_parts, words_per_part] int32, on the current stream, balanced for decodes of s_q, h_q, h_kv
        and cache_format (the library's CacheFormat value)."""
        with device_guard(cache_seqlens):
            _C.plan(cache_seqlens.detach(), tile_scheduler_metadata.detach(), current_stream(cache_seqlens), s_q,
                    h_q, h_kv, cache_format)

    @plan_.register_fake
    def _(cache_seqlens, tile_scheduler_metadata, s_q, h_q, h_kv, cache_format):
        return None

    @torch.library.custom_op("openmla::decode_", mutates_args=("workspace", "out", "lse"))
    def decode_(
        q: torch.Tensor,
        k_cache: torch.Tensor,
        block_table: torch.Tensor,
        cache_seqlens: torch.Tensor,
        tile_scheduler_metadata: torch.Tensor,
        workspace: torch.Tensor,
        out: torch.Tensor,
        lse: torch.Tensor,
        d_v: int,
        softmax_scale: Optional[float],
        causal: bool,
        k_scale: Optional[torch.Tensor] = None,
        cache_format: int = 0,
    ) -> None:
        """openmla.decode on tensors: writes out [b, s_q, h_q, d_v] and lse [b, h_q, s_q] float32.
        k_scale and cache_format (the library's CacheFormat value) describe an FP8 cache (docs/fp8.md).

        num_splits is taken here as the view into tile_scheduler_metadata that openmla.plan returns:
        the op sees only the plan buffer, so copies of its inputs (torch.library.opcheck,
        functionalization) still pass the library's check that the two belong together."""
        from ._fp8 import for_library  # here: _fp8 imports this module
        from ._plan import num_splits_view  # here: _plan imports this module

        num_splits = num_splits_view(tile_scheduler_metadata.detach(), q.shape[0])  # [b + 1]
        cache, e4m3 = for_library(k_cache.detach())
        arrays = [t.detach() for t in (q, cache, block_table, cache_seqlens, tile_scheduler_metadata,
                                       num_splits, workspace, out, lse)]
        scale = None if k_scale is None else k_scale.detach()
        with device_guard(q):
            _C.decode(*arrays, d_v, softmax_scale, causal, cache_format, scale, e4m3, current_stream(q))

    @decode_.register_fake
    def _(q, k_cache, block_table, cache_seqlens, tile_scheduler_metadata, workspace, out, lse,
          d_v, softmax_scale, causal, k_scale=None, cache_format=0):
        return None

    @torch.library.custom_op("openmla::no_backward", mutates_args=())
    def no_backward(grad_out: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """The gradient of decode's input x (q or k_cache): there is none, so this raises when autograd
        runs it. An op rather than a plain raise, so that torch.compile can trace a backward through
        decode and the error comes when the backward runs, as in eager mode."""
        raise NotImplementedError(NO_BACKWARD)

    @no_backward.register_fake
    def _(grad_out, x):
        return torch.empty_like(x)

    class DecodeWithoutBackward(torch.autograd.Function):
        """decode_ as autograd sees it when q or k_cache requires grad. The op mutates out and lse, so
        torch.library cannot hold an autograd formula for it (register_autograd takes functional ops
        only); this Function is its autograd registration: the forward runs the op and marks out and
        lse as its results, so that they carry a grad_fn, and the backward raises NotImplementedError
        instead of letting q and k_cache silently get no gradient."""

        @staticmethod
        def forward(ctx, q, k_cache, block_table, cache_seqlens, tile_scheduler_metadata, workspace, out, lse,
                    d_v, softmax_scale, causal, k_scale, cache_format):
            decode_(q, k_cache, block_table, cache_seqlens, tile_scheduler_metadata, workspace, out, lse, d_v,
                    softmax_scale, causal, k_scale, cache_format)
            ctx.mark_dirty(out, lse)
            ctx.save_for_backward(q, k_cache)
            return out, lse

        @staticmethod
        def backward(ctx, grad_out, grad_lse):
            q, k_cache = ctx.saved_tensors
            grads = [no_backward(grad_out, x) if needed else None
                     for x, needed in zip((q, k_cache), ctx.needs_input_grad)]
            return (*grads, None, None, None, None, None, None, None, None, None, None, None)
