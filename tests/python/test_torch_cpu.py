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


def test_decode_float32_on_cpu():
    """fp32 is the CPU backend's extra dtype (exact float models): out within fp32 rounding of the
    float64 reference (|diff| <= 1e-5 + 1e-5 |ref|, lse 1e-5: the sums are fp32 as in bf16)."""
    q, k_cache, block_table, cache_seqlens = tensors(make_case(3, 2, 8, 2, [0, 70, 150]), torch.float32)
    out, lse = openmla.decode(q, k_cache, block_table, cache_seqlens, d_v=32, causal=True)
    assert out.dtype == torch.float32
    ref_out, ref_lse = ref(q, k_cache, block_table, cache_seqlens, 32, True)
    np.testing.assert_allclose(out.numpy(), ref_out, rtol=1e-5, atol=1e-5)
    finite = np.isfinite(ref_lse)
    np.testing.assert_allclose(lse.numpy()[finite], ref_lse[finite], rtol=1e-5, atol=1e-5)
    assert (lse.numpy()[~finite] == np.inf).all()


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
    with pytest.raises(TypeError, match=r"q: expected dtype bfloat16 or float16 \(float32 too on the CPU\), given "
                                        r"uint16"):
        openmla.decode(q.view(torch.uint16), k_cache, block_table, cache_seqlens, d_v=32)


def test_opcheck():
    """Schema, fake implementation and functionalization of the registered ops."""
    q, k_cache, block_table, cache_seqlens = tensors(make_case(2, 1, 4, 1, [10, 90]), torch.float16)
    plan = openmla.plan(cache_seqlens, h_q=4)
    torch.library.opcheck(torch.ops.openmla.plan_.default, (cache_seqlens, torch.empty_like(plan[0]), 1, 4, 1, 0))
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


def test_int64_indices_name_int32():
    """The commonest torch mistake: torch.tensor([...]) makes int64."""
    q, k_cache, block_table, cache_seqlens = tensors(make_case(2, 1, 4, 1, [10, 20]), torch.float16)
    with pytest.raises(TypeError, match="^openmla: block_table: expected dtype int32, given int64$"):
        openmla.decode(q, k_cache, block_table.long(), cache_seqlens, d_v=32)
    with pytest.raises(TypeError, match="^openmla: cache_seqlens: expected dtype int32, given int64$"):
        openmla.decode(q, k_cache, block_table, cache_seqlens.long(), d_v=32)
    with pytest.raises(TypeError, match="^openmla: cache_seqlens: expected dtype int32, given int64$"):
        openmla.plan(cache_seqlens.long(), h_q=4)


def test_plan_of_another_batch():
    """The library's message, although the torch op takes the plan buffer without num_splits."""
    q, k_cache, block_table, cache_seqlens = tensors(make_case(2, 1, 4, 1, [10, 20]), torch.float16)
    plan = openmla.plan(torch.tensor([5, 5, 5], dtype=torch.int32), h_q=4)
    with pytest.raises(ValueError, match="^openmla: plan.config.batch: expected the decode's batch = 2, given a "
                                         "plan made for 3$"):
        openmla.decode(q, k_cache, block_table, cache_seqlens, d_v=32, plan=plan)
    with pytest.raises(ValueError, match=r"^openmla: num_splits: expected int32 \[b \+ 1\], given shape \(1, 3\)$"):
        openmla.decode(q, k_cache, block_table, cache_seqlens, d_v=32,
                       plan=(plan.tile_scheduler_metadata, plan.num_splits[None, :3]))


def test_scalar_and_plan_types():
    q, k_cache, block_table, cache_seqlens = tensors(make_case(2, 1, 4, 1, [10, 20]), torch.float16)
    with pytest.raises(TypeError, match="^openmla: d_v: expected an int, given float 32.0$"):
        openmla.decode(q, k_cache, block_table, cache_seqlens, d_v=32.0)
    plan = tuple(openmla.plan(cache_seqlens, h_q=4))
    out, lse = openmla.decode(q, k_cache, block_table, cache_seqlens, d_v=32, plan=plan)
    assert_close(out.float().numpy(), lse.numpy(), *ref(q, k_cache, block_table, cache_seqlens, 32))


def test_page_size_zero_same_message_as_numpy():
    """An empty torch tensor has a null data pointer: the shape is still what gets reported."""
    q, k_cache, block_table, cache_seqlens = tensors(make_case(2, 1, 4, 1, [10, 20]), torch.float16)
    with pytest.raises(ValueError, match=r"k_cache.size\(1\) \(page_size\): expected >= 1, given 0"):
        openmla.decode(q, k_cache[:, :0], block_table, cache_seqlens, d_v=32)


def test_meta_tensors_are_refused_outside_tracing():
    q, k_cache, block_table, cache_seqlens = tensors(make_case(2, 1, 4, 1, [10, 20]), torch.float16)
    meta = [t.to("meta") for t in (q, k_cache, block_table, cache_seqlens)]
    message = "^openmla: q: expected a CPU or CUDA tensor, given a meta tensor"
    with pytest.raises(ValueError, match=message):
        openmla.decode(*meta, d_v=32)
    with pytest.raises(ValueError, match="^openmla: cache_seqlens: expected a CPU or CUDA tensor, given a meta"):
        openmla.plan(meta[3], h_q=4)
    out = torch.empty(2, 1, 4, 32, dtype=torch.float16, device="meta")  # [b, s_q, h_q, d_v]
    with pytest.raises(ValueError, match="^openmla: out: expected a CPU or CUDA tensor, given a meta tensor"):
        openmla.decode(q, k_cache, block_table, cache_seqlens, d_v=32, out=out)


def test_fake_tensors_still_trace():
    """Under FakeTensorMode (as torch.export and torch.compile trace) the op's fake implementation runs."""
    from torch._subclasses.fake_tensor import FakeTensorMode

    q, k_cache, block_table, cache_seqlens = tensors(make_case(2, 1, 4, 1, [10, 20]), torch.float16)
    with FakeTensorMode(allow_non_fake_inputs=True) as mode:
        fakes = [mode.from_tensor(t) for t in (q, k_cache, block_table, cache_seqlens)]
        out, lse = openmla.decode(*fakes, d_v=32)
    assert out.shape == (2, 1, 4, 32) and lse.shape == (2, 4, 1)


def test_grad_inputs_forward_works_backward_raises():
    q, k_cache, block_table, cache_seqlens = tensors(make_case(2, 1, 4, 1, [10, 70]), torch.float32)
    q = q.requires_grad_()
    out, lse = openmla.decode(q.half(), k_cache.half(), block_table, cache_seqlens, d_v=32)
    assert out.requires_grad and lse.requires_grad
    assert_close(out.detach().float().numpy(), lse.detach().numpy(),
                 *ref(q.detach().half(), k_cache.half(), block_table, cache_seqlens, 32))
    with pytest.raises(NotImplementedError, match="^openmla: decode has no backward"):
        (out.float().sum() + q.sum()).backward()
    with pytest.raises(NotImplementedError, match="^openmla: decode has no backward"):
        torch.autograd.grad(lse.sum(), q)


def test_grad_inputs_with_caller_outputs():
    """Caller-owned out and lse come back as the same tensors, now carrying the grad_fn."""
    q, k_cache, block_table, cache_seqlens = tensors(make_case(2, 1, 4, 1, [10, 70]), torch.float16)
    k_cache.requires_grad_()
    out = torch.empty(2, 1, 4, 32, dtype=torch.float16)  # [b, s_q, h_q, d_v]
    lse = torch.empty(2, 4, 1)  # [b, h_q, s_q]
    result = openmla.decode(q, k_cache, block_table, cache_seqlens, d_v=32, out=out, lse=lse)
    assert result[0] is out and result[1] is lse and out.requires_grad
    with pytest.raises(NotImplementedError, match="^openmla: decode has no backward"):
        out.float().sum().backward()


@pytest.mark.parametrize("context", [torch.no_grad, torch.inference_mode])
def test_grad_inputs_without_grad_mode(context):
    q, k_cache, block_table, cache_seqlens = tensors(make_case(2, 1, 4, 1, [10, 70]), torch.float16)
    q.requires_grad_()
    with context():
        out, lse = openmla.decode(q, k_cache, block_table, cache_seqlens, d_v=32)
    assert not out.requires_grad and not lse.requires_grad


def test_empty_batch():
    q, k_cache, block_table, cache_seqlens = tensors(make_case(2, 1, 4, 1, [10, 20]), torch.bfloat16)
    plan = openmla.plan(cache_seqlens[:0], h_q=4)
    assert plan.num_splits.shape == (1,)  # [b + 1]
    out, lse = openmla.decode(q[:0], k_cache, block_table[:0], cache_seqlens[:0], d_v=32, plan=plan)
    assert out.shape == (0, 1, 4, 32) and out.dtype == torch.bfloat16 and lse.shape == (0, 4, 1)
    out, lse = openmla.decode(q[:0], k_cache, block_table[:0], cache_seqlens[:0], d_v=32)
    assert out.shape == (0, 1, 4, 32)


def test_compile_with_grad_inputs():
    """torch.compile traces decode for inputs that require grad; the backward raises when it runs."""
    q, k_cache, block_table, cache_seqlens = tensors(make_case(2, 1, 8, 1, [40, 130]), torch.bfloat16)
    q.requires_grad_()

    def step(q, k_cache, block_table, cache_seqlens):
        out, lse = openmla.decode(q, k_cache, block_table, cache_seqlens, d_v=32)
        return out * 2, lse

    compiled = torch.compile(step, fullgraph=True, backend="aot_eager", dynamic=False)
    out, lse = compiled(q, k_cache, block_table, cache_seqlens)
    assert out.requires_grad and torch.equal(out, step(q, k_cache, block_table, cache_seqlens)[0])
    with pytest.raises(NotImplementedError, match="^openmla: decode has no backward"):
        out.float().sum().backward()
