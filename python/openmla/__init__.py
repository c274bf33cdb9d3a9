"""openmla: Multi-head Latent Attention decoding over a paged latent KV cache.

    plan(cache_seqlens, *, s_q, h_q, h_kv,           the split-KV schedule of a step (once per step)
         cache_format)
    decode(q, k_cache, block_table, cache_seqlens,   out [b, s_q, h_q, d_v], lse [b, h_q, s_q]
           *, d_v, plan, workspace, out, lse, ...)
    workspace_size(q, plan, *, d_v)                  bytes of workspace for decode
    check_status(workspace)                          raise on a bad length / page index / plan seen on the GPU
                                                     (or on a bad slot, given write_cache's status)
    quantize_cache(k_cache, format, *, scale)        an FP8 cache (per-tensor scale or FlashMLA's 656-byte token)
    merge(out_parts, lse_parts, *, out, lse)         the attention over the union of disjoint key sets
    write_cache(kv_c, k_pe, k_cache, slot_mapping,   each new token's [kv_c, k_pe] into its cache slot
                *, status, k_scale, cache_format)    (quantized into an FP8 cache as quantize_cache does)
    write_cache_status(like), reset_status(status)   the device record of write_cache's bad slots
    openmla.distributed                              context-parallel decode over torch.distributed
    get_mla_metadata, flash_mla_with_kvcache         FlashMLA's call patterns (tuple and FlashMLASchedMeta)
    cuda_built(), cuda_device_count(), cuda_available()   what this build and machine can run

NumPy arrays (CPU), torch tensors (CPU, CUDA) and CuPy arrays go in without copies (DLPack) and
outputs come back in the caller's framework. With PyTorch installed, the calls are torch.library ops
(torch.ops.openmla.plan_, torch.ops.openmla.decode_, ...) that torch.compile and CUDA graphs can capture.
"""

from ._C import __version__, cuda_available, cuda_built, cuda_device_count
from ._cache import reset_status, write_cache, write_cache_status
from ._decode import check_status, decode, workspace_size
from ._fp8 import quantize_cache
from ._merge import merge
from ._plan import Plan, plan
from .flash_mla import FlashMLASchedMeta, flash_mla_with_kvcache, get_mla_metadata

__all__ = [
    "FlashMLASchedMeta",
    "Plan",
    "check_status",
    "cuda_available",
    "cuda_built",
    "cuda_device_count",
    "decode",
    "flash_mla_with_kvcache",
    "get_mla_metadata",
    "merge",
    "plan",
    "reset_status",
    "quantize_cache",
    "workspace_size",
    "write_cache",
    "write_cache_status",
    "__version__",
]
