"""openmla.distributed.decode across real processes (torch.multiprocessing spawn): two CPU processes
over gloo, and two GPUs over NCCL (only where two GPUs are present), each against one decode over the
whole cache, eager and (NCCL) captured in a CUDA graph."""

import os
import time

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="PyTorch is not installed: torch.distributed tests skipped")
dist = pytest.importorskip("torch.distributed", reason="torch.distributed is not available")

import openmla  # noqa: E402
from mla_reference import assert_close, make_case, reference  # noqa: E402
from openmla import distributed  # noqa: E402

WORLD = 2
TIMEOUT_S = 180  # a rank that has not finished by then is taken as hung: the test fails instead of waiting


def case_on(device, dtype):
    """The same problem on every rank: 4 sequences, causal s_q = 2, h_q = 16, DeepSeek widths."""
    case = make_case(4, 2, 16, 1, [0, 70, 1000, 2049], d_qk=576, page_size=64, seed=7)
    q = torch.from_numpy(case["q"]).to(device, dtype)
    k_cache = torch.from_numpy(case["k_cache"]).to(device, dtype)
    return case, q, k_cache, torch.from_numpy(case["block_table"]).to(device), \
        torch.from_numpy(case["cache_seqlens"]).to(device)


def replay_matches_eager(q, k_cache, step, out, lse):
    """Captures distributed.decode (its all-gather included) in a CUDA graph with preallocated buffers,
    replays it once and asserts that it gives the eager result. The graph is released on return: a
    process group must outlive every graph that captured its communicator, so destroying the group
    while this graph was still alive would be undefined (and can hang)."""
    workspace = torch.empty(openmla.workspace_size(q, step.plan), dtype=torch.uint8, device=q.device)
    gathered = distributed.gather_buffer(q, WORLD)
    out_g, lse_g = torch.empty_like(out), torch.empty_like(lse)
    kwargs = dict(workspace=workspace, gathered=gathered, out=out_g, lse=lse_g)
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        distributed.decode(q, k_cache, step, **kwargs)  # warm-up before capture
    torch.cuda.current_stream().wait_stream(side)
    cuda_graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(cuda_graph):
        distributed.decode(q, k_cache, step, **kwargs)
    out_g.zero_()
    cuda_graph.replay()
    torch.cuda.synchronize()
    assert torch.equal(out_g, out) and torch.equal(lse_g, lse), "graph replay differs from eager"
    del cuda_graph
    torch.cuda.synchronize()


def worker(rank, backend, rendezvous, graph):
    device = torch.device("cuda", rank) if backend == "nccl" else torch.device("cpu")
    if backend == "nccl":
        torch.cuda.set_device(device)
    dist.init_process_group(backend, init_method=f"file://{rendezvous}", rank=rank, world_size=WORLD)
    try:
        case, q, k_cache, block_table, cache_seqlens = case_on(device, torch.bfloat16)
        step = distributed.plan(block_table, cache_seqlens, h_q=16, s_q=2, page_size=64, causal=True)
        assert step.rank == rank and step.world_size == WORLD and step.causal == (rank == WORLD - 1)
        out, lse = distributed.decode(q, k_cache, step)
        if graph:
            replay_matches_eager(q, k_cache, step, out, lse)
        whole_out, whole_lse = openmla.decode(q, k_cache, block_table, cache_seqlens, causal=True)
        assert_close(out.float().cpu().numpy(), lse.cpu().numpy(), whole_out.float().cpu().numpy().astype(np.float64),
                     whole_lse.cpu().numpy().astype(np.float64))
        ref = reference(q.float().cpu().numpy(), k_cache.float().cpu().numpy(), case["block_table"],
                        case["cache_seqlens"], 512, causal=True)
        assert_close(out.float().cpu().numpy(), lse.cpu().numpy(), *ref)
    finally:
        dist.destroy_process_group()


def spawn(backend, tmp_path, graph=False):
    context = torch.multiprocessing.spawn(worker, args=(backend, str(tmp_path / "rendezvous"), graph), nprocs=WORLD,
                                          join=False)
    deadline = time.monotonic() + TIMEOUT_S
    while not context.join(timeout=max(0.0, deadline - time.monotonic())):
        if time.monotonic() >= deadline:
            for process in context.processes:
                process.terminate()
            pytest.fail(f"the {backend} ranks did not finish within {TIMEOUT_S} s")


def test_two_cpu_processes_over_gloo(tmp_path):
    if not dist.is_gloo_available():
        pytest.skip("torch.distributed was built without gloo: CPU context-parallel test skipped")
    spawn("gloo", tmp_path)


def require_two_gpus():
    if not torch.cuda.is_available() or torch.cuda.device_count() < WORLD:
        pytest.skip(f"needs {WORLD} CUDA devices, found "
                    f"{torch.cuda.device_count() if torch.cuda.is_available() else 0}: NCCL test skipped")
    if not dist.is_nccl_available():
        pytest.skip("torch.distributed was built without NCCL: NCCL test skipped")
    from cuda_backend import require_cuda_backend

    require_cuda_backend()
    os.environ["NCCL_NVLS_ENABLE"] = "0"  # NVLink multicast off, as on the lent machines


def test_two_gpus_over_nccl(tmp_path):
    require_two_gpus()
    spawn("nccl", tmp_path)


def test_two_gpus_over_nccl_in_a_cuda_graph(tmp_path):
    require_two_gpus()
    spawn("nccl", tmp_path, graph=True)
