"""openmla.merge on torch tensors: CPU (the op openmla::merge_, opcheck, torch.compile) and, when a GPU
is present, CUDA (the caller's stream, a CUDA graph, agreement with the CPU backend)."""

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="PyTorch is not installed: torch merge tests skipped")

import openmla  # noqa: E402
from mla_reference import assert_close, make_case, reference  # noqa: E402
from test_merge import formula, random_parts  # noqa: E402

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device: torch CUDA merge test skipped")


def special_parts(dtype, device, d_v=512):
    """Random parts with a row no part saw, a +inf and a -inf part, a NaN lse and a NaN out element."""
    out_parts, lse_parts = random_parts(4, 3, 2, 8, d_v, seed=5)
    lse_parts[1, 0, 0, 0] = np.inf
    lse_parts[2, 0, 1, 1] = -np.inf
    lse_parts[:, 1, 2, 0] = np.inf
    out_parts[:, 1, 0, 2] = np.nan
    lse_parts[3, 2, 4, 1] = np.nan
    out_parts[0, 2, 0, 3, -1] = np.nan
    return torch.from_numpy(out_parts).to(device, dtype), torch.from_numpy(lse_parts).to(device)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16, torch.float32])
def test_cpu_tensors(dtype):
    out_parts, lse_parts = special_parts(dtype, "cpu", d_v=40)
    out, lse = openmla.merge(out_parts, lse_parts)
    assert isinstance(out, torch.Tensor) and out.dtype == dtype and lse.dtype == torch.float32
    want_out, want_lse = formula(out_parts.float().numpy(), lse_parts.numpy())
    got = out.float().numpy()
    assert np.array_equal(np.isnan(got), np.isnan(want_out)) and np.array_equal(np.isnan(lse.numpy()), np.isnan(want_lse))
    finite = ~np.isnan(want_out)
    assert np.allclose(got[finite], want_out[finite], rtol=2**-7, atol=1e-6)
    assert lse[1, 2, 0] == float("inf") and (out[1, 0, 2] == 0).all()


def test_list_of_parts_and_fp32_out():
    out_parts, lse_parts = special_parts(torch.bfloat16, "cpu", d_v=16)
    out = torch.empty(3, 2, 8, 16)
    openmla.merge(list(out_parts), list(lse_parts), out=out)
    want, _ = openmla.merge(out_parts, lse_parts, out=torch.empty(3, 2, 8, 16))
    assert torch.equal(out.nan_to_num(7.0), want.nan_to_num(7.0))


def test_opcheck():
    out_parts, lse_parts = random_parts(3, 2, 2, 4, 8)
    args = (torch.from_numpy(out_parts).bfloat16(), torch.from_numpy(lse_parts), torch.empty(2, 2, 4, 8),
            torch.empty(2, 4, 2))
    torch.library.opcheck(torch.ops.openmla.merge_.default, args)


def test_compile_fullgraph():
    out_parts, lse_parts = (torch.from_numpy(x) for x in random_parts(2, 2, 1, 4, 8))

    def step(parts, lses):
        out, lse = openmla.merge(parts * 2, lses)
        return out.sum(), lse

    expected = step(out_parts, lse_parts)
    got = torch.compile(step, fullgraph=True, backend="aot_eager", dynamic=False)(out_parts, lse_parts)
    assert torch.equal(got[0], expected[0]) and torch.equal(got[1], expected[1])


def test_errors():
    out_parts, lse_parts = (torch.from_numpy(x) for x in random_parts(2, 2, 1, 4, 8))
    with pytest.raises(ValueError, match=r"lse_parts.size\(0\): expected 2 \(n from out_parts\), given 1"):
        openmla.merge(out_parts, lse_parts[:1])
    with pytest.raises(TypeError, match="lse_parts: expected a torch array like q, given a numpy array"):
        openmla.merge(out_parts, lse_parts.numpy())
    with pytest.raises(TypeError, match="out_parts: expected dtype bfloat16, float16 or float32, given uint16"):
        openmla.merge(out_parts.half().view(torch.uint16), lse_parts)


@needs_cuda
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16, torch.float32])
@pytest.mark.parametrize("d_v", [512, 33])
def test_cuda_on_side_stream_agrees_with_cpu(dtype, d_v):
    out_parts, lse_parts = special_parts(dtype, "cuda", d_v)
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        out, lse = openmla.merge(out_parts, lse_parts)
    stream.synchronize()
    want_out, want_lse = openmla.merge(out_parts.cpu(), lse_parts.cpu())
    assert out.device == out_parts.device
    assert torch.equal(torch.isnan(lse.cpu()), torch.isnan(want_lse)) and torch.equal(lse.cpu().isinf(), want_lse.isinf())
    torch.testing.assert_close(lse.cpu(), want_lse, rtol=1e-6, atol=1e-6, equal_nan=True)
    torch.testing.assert_close(out.cpu().float(), want_out.float(), rtol=2**-7 if dtype != torch.float32 else 1e-5,
                               atol=1e-6, equal_nan=True)


@needs_cuda
def test_cuda_union_of_context_parallel_shares():
    from openmla import distributed

    case = make_case(4, 2, 128, 1, [0, 300, 1000, 4097], d_qk=576, page_size=64)
    q = torch.from_numpy(case["q"]).cuda().bfloat16()
    k_cache = torch.from_numpy(case["k_cache"]).cuda().bfloat16()
    table, lengths = torch.from_numpy(case["block_table"]).cuda(), torch.from_numpy(case["cache_seqlens"]).cuda()
    outs, lses = [], []
    for rank in range(3):
        step = distributed.plan(table, lengths, h_q=128, s_q=2, page_size=64, causal=True, rank=rank, world_size=3)
        out, lse = distributed.decode_share(q, k_cache, step)
        outs.append(out)
        lses.append(lse)
    out, lse = openmla.merge(outs, lses)
    ref = reference(q.float().cpu().numpy(), k_cache.float().cpu().numpy(), case["block_table"], case["cache_seqlens"],
                    512, causal=True)
    assert_close(out.float().cpu().numpy(), lse.cpu().numpy(), *ref)


@needs_cuda
def test_cuda_graph_replays_with_new_parts():
    out_parts, lse_parts = special_parts(torch.bfloat16, "cuda")
    out, lse = torch.empty(3, 2, 8, 512, dtype=torch.bfloat16, device="cuda"), torch.empty(3, 8, 2, device="cuda")
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        openmla.merge(out_parts, lse_parts, out=out, lse=lse)  # warm-up before capture
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        openmla.merge(out_parts, lse_parts, out=out, lse=lse)
    new_parts, new_lse = (torch.from_numpy(x).cuda() for x in random_parts(4, 3, 2, 8, 512, seed=9))
    out_parts.copy_(new_parts)
    lse_parts.copy_(new_lse)
    graph.replay()
    torch.cuda.synchronize()
    want_out, want_lse = openmla.merge(out_parts.cpu(), lse_parts.cpu())
    torch.testing.assert_close(lse.cpu(), want_lse, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(out.cpu().float(), want_out.float(), rtol=2**-7, atol=1e-6)
