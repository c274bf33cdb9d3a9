"""PyTorch CPU tensors: decode, the FlashMLA pattern, the torch.library ops and torch.compile."""

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="PyTorch is not installed: torch CPU tests skipped")

import openmla  # noqa: E402
from mla_reference import assert_close, make_case, reference  # noqa: E402


def tensors(case, dtype):
    """The case as torch CPU tensors, q and k_cache rounded to dtype."""
    return (torch.from_numpy(case["q"]).to(dtype), torch.from_numpy(case["k_cache"]).to(dtype),
            torch.from_numpy(case["block_table"]), torch.from_numpy(case["cache_seqlens"]))


def ref(q, k_cache, block_table, cache_seqlens, d_v, causal=False):
    return reference(q.float().numpy(), k_cache.float().numpy(), block_table.numpy(), cache_seqlens.numpy(),
                     d_v, causal=causal)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_decode(dtype):
    q, k_cache, block_table, cache_seqlens = tensors(make_case(3, 2, 8, 2, [0, 70, 150]), dtype)
    out, lse = openmla.decode(q, k_cache, block_table, cache_seqlens, d_v=32, causal=True)
    assert isinstance(out, torch.Tensor) and out.dtype == dtype and lse.dtype == torch.float32
    assert_close(out.float().numpy(), lse.numpy(), *ref(q, k_cache, block_table, cache_seqlens, 32, True))


def test_flash_mla_pattern():
    from openmla import flash_mla_with_kvcache, get_mla_metadata

    q, k_cache, block_table, cache_seqlens = tensors(make_case(2, 1, 16, 1, [33, 200]), torch.bfloat16)
    metadata, num_splits = get_mla_metadata(cache_seqlens, 1 * 16 // 1, 1)
    assert metadata.dtype == torch.int32 and num_splits.shape == (3,)
    out, lse = flash_mla_with_kvcache(q, k_cache, block_table, cache_seqlens, 32, metadata, num_splits)
    assert_close(out.float().numpy(), lse.numpy(), *ref(q, k_cache, block_table, cache_seqlens, 32))


def test_errors_are_value_and_type_errors():
    q, k_cache, block_table, cache_seqlens = tensors(make_case(2, 1, 4, 1, [10, 20]), torch.float16)
    with pytest.raises(ValueError, match="k_cache: expected dtype fp16, given bf16"):
        openmla.decode(q, k_cache.bfloat16(), block_table, cache_seqlens, d_v=32)
    with pytest.raises(TypeError, match="k_cache: expected a torch array like q, given a numpy array"):
        openmla.decode(q, k_cache.numpy(), block_table, cache_seqlens, d_v=32)
    with pytest.raises(TypeError, match="q: expected dtype bfloat16, float16, float32 or int32, given uint16"):
        openmla.decode(q.view(torch.uint16), k_cache, block_table, cache_seqlens, d_v=32)


def test_opcheck():
    """Schema, fake implementation and functionalization of the registered ops."""
    q, k_cache, block_table, cache_seqlens = tensors(make_case(2, 1, 4, 1, [10, 90]), torch.float16)
    plan = openmla.plan(cache_seqlens, h_q=4)
    torch.library.opcheck(torch.ops.openmla.plan_.default, (cache_seqlens, torch.empty_like(plan[0])))
    workspace = torch.empty(openmla.workspace_size(q, plan, d_v=32), dtype=torch.uint8)
    out = torch.empty(2, 1, 4, 32, dtype=torch.float16)  # [b, s_q, h_q, d_v]
    lse = torch.empty(2, 4, 1)  # [b, h_q, s_q]
    torch.library.opcheck(torch.ops.openmla.decode_.default,
                          (q, k_cache, block_table, cache_seqlens, plan[0], workspace, out, lse, 32, None, False))


def test_compile_fullgraph():
    """plan + decode of two layers in one graph, against eager."""
    q, k_cache, block_table, cache_seqlens = tensors(make_case(2, 1, 8, 1, [40, 130]), torch.bfloat16)

    def step(q, k_cache, block_table, cache_seqlens):
        plan = openmla.plan(cache_seqlens, h_q=8)
        first, _ = openmla.decode(q, k_cache, block_table, cache_seqlens, d_v=32, plan=plan)
        return openmla.decode(q * 2, k_cache, block_table, cache_seqlens, d_v=32, plan=plan)[0] + first

    compiled = torch.compile(step, fullgraph=True, backend="aot_eager", dynamic=False)
    expected = step(q, k_cache, block_table, cache_seqlens)
    assert torch.equal(compiled(q, k_cache, block_table, cache_seqlens), expected)
    assert np.isfinite(expected.float().numpy()).all()
