"""PyTorch CUDA tensors: results on the caller's stream, checked mode, torch.compile and a CUDA graph
of a whole decoding step replayed with new lengths. DeepSeek shapes: d_qk 576, d_v 512, page 64."""

import os

import pytest

torch = pytest.importorskip("torch", reason="PyTorch is not installed: torch GPU tests skipped")
if not torch.cuda.is_available():
    pytest.skip("no CUDA device: torch GPU tests skipped", allow_module_level=True)

import openmla  # noqa: E402
from cuda_backend import require_cuda_backend  # noqa: E402
from mla_reference import assert_close, make_case, reference  # noqa: E402

require_cuda_backend()

D_QK, D_V, PAGE = 576, 512, 64


def cuda_case(b, s_q, h_q, seqlens, dtype=torch.bfloat16, extra_pages=1, seed=0):
    case = make_case(b, s_q, h_q, 1, seqlens, d_qk=D_QK, page_size=PAGE, extra_pages=extra_pages, seed=seed)
    return (torch.from_numpy(case["q"]).to("cuda", dtype), torch.from_numpy(case["k_cache"]).to("cuda", dtype),
            torch.from_numpy(case["block_table"]).cuda(), torch.from_numpy(case["cache_seqlens"]).cuda())


def check(out, lse, q, k_cache, block_table, cache_seqlens, causal=False):
    ref_out, ref_lse = reference(q.float().cpu().numpy(), k_cache.float().cpu().numpy(),
                                 block_table.cpu().numpy(), cache_seqlens.cpu().numpy(), D_V, causal=causal)
    assert_close(out.float().cpu().numpy(), lse.cpu().numpy(), ref_out, ref_lse)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
@pytest.mark.parametrize("b, s_q, h_q, seqlens, causal",
                         [(2, 1, 16, [20, 4096], False), (3, 2, 128, [0, 140, 1000], True), (1, 4, 16, [3], True)])
def test_decode_on_side_stream(dtype, b, s_q, h_q, seqlens, causal):
    q, k_cache, block_table, cache_seqlens = cuda_case(b, s_q, h_q, seqlens, dtype)
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        out, lse = openmla.decode(q, k_cache, block_table, cache_seqlens, d_v=D_V, causal=causal)
    stream.synchronize()
    assert out.device == q.device and out.dtype == dtype
    check(out, lse, q, k_cache, block_table, cache_seqlens, causal)


def test_flash_mla_pattern():
    from openmla import flash_mla_with_kvcache, get_mla_metadata

    b, s_q, h_q, h_kv = 4, 2, 64, 1
    q, k_cache, block_table, cache_seqlens = cuda_case(b, s_q, h_q, [10, 300, 2000, 64])
    tile_scheduler_metadata, num_splits = get_mla_metadata(cache_seqlens, s_q * h_q // h_kv, h_kv)
    for _ in range(2):
        out, lse = flash_mla_with_kvcache(q, k_cache, block_table, cache_seqlens, D_V, tile_scheduler_metadata,
                                          num_splits, causal=True)
    check(out, lse, q, k_cache, block_table, cache_seqlens, causal=True)


def test_plan_is_balanced_for_the_decodes_shapes_and_cache():
    """What a Python plan charges each piece (its header's fourth word; on these lengths, one of which has no
    tile, the line's fixed units) is what the C++ API charges for the same shapes and cache format: on the
    Hopper kernel 4 tiles at 16 query rows per KV head, 8 at 128 and 6 on an FP8 cache of 16 rows; on the
    portable kernel 2. A plan made from cache_seqlens alone once charged the Hopper kernel's 4 at 128 rows."""
    from openmla import get_mla_metadata

    cache_seqlens = torch.tensor([1000, 0, 70], dtype=torch.int32, device="cuda")  # [b]
    hopper = torch.cuda.get_device_capability() == (9, 0) and os.environ.get("OPENMLA_FORCE_PORTABLE") != "1"

    def charge(made):
        return int(made[0].reshape(-1)[3])

    assert charge(openmla.plan(cache_seqlens, h_q=16)) == (4 if hopper else 2)
    assert charge(openmla.plan(cache_seqlens, h_q=128)) == (8 if hopper else 2)
    assert charge(openmla.plan(cache_seqlens, s_q=2, h_q=128, h_kv=2)) == (8 if hopper else 2)
    assert charge(openmla.plan(cache_seqlens, h_q=16, cache_format="fp8_per_tensor")) == (6 if hopper else 2)
    assert charge(get_mla_metadata(cache_seqlens, 16, 1, is_fp8_kvcache=True)) == (6 if hopper else 2)
    assert charge(get_mla_metadata(cache_seqlens, 128, 1)) == (8 if hopper else 2)


def test_checked_mode_raises_on_device_offence():
    q, k_cache, block_table, cache_seqlens = cuda_case(2, 1, 16, [100, 200])
    block_table[1, 1] = k_cache.shape[0] + 5
    with pytest.raises(ValueError, match=r"device check, sequence 1"):
        openmla.decode(q, k_cache, block_table, cache_seqlens, d_v=D_V, check=True)


def test_host_errors():
    q, k_cache, block_table, cache_seqlens = cuda_case(2, 1, 16, [100, 200])
    with pytest.raises(ValueError, match="block_table: expected device cuda:0, given cpu"):
        openmla.decode(q, k_cache, block_table.cpu(), cache_seqlens, d_v=D_V)
    with pytest.raises(ValueError, match="q: expected dtype bf16 or fp16, given fp32"):  # fp32 is CPU-only
        openmla.decode(q.float(), k_cache.float(), block_table, cache_seqlens, d_v=D_V)


def test_compile_fullgraph():
    q, k_cache, block_table, cache_seqlens = cuda_case(2, 1, 16, [500, 1300])

    def step(q, k_cache, block_table, cache_seqlens):
        plan = openmla.plan(cache_seqlens, h_q=16)
        first, _ = openmla.decode(q, k_cache, block_table, cache_seqlens, d_v=D_V, plan=plan)
        out, lse = openmla.decode(q, k_cache, block_table, cache_seqlens, d_v=D_V, plan=plan)
        return first + out, lse

    compiled = torch.compile(step, fullgraph=True, dynamic=False)
    got_sum, got_lse = compiled(q, k_cache, block_table, cache_seqlens)
    want_sum, want_lse = step(q, k_cache, block_table, cache_seqlens)
    assert torch.equal(got_sum, want_sum) and torch.equal(got_lse, want_lse)


def capture(step):
    """A CUDA graph of step() after one warm-up run on a side stream; returns (graph, step's result)."""
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        step()
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        result = step()
    return graph, result


def test_cuda_graph_step_replayed_with_new_lengths():
    """plan + three layers captured once; replays with new lengths match the reference."""
    b, h_q, layers = 3, 16, 3
    q, k_cache, block_table, seqlens = cuda_case(b, 1, h_q, [1200, 1200, 1200])  # pages for 1200 keys
    k_caches = [k_cache * (i + 1) for i in range(layers)]  # [num_blocks, page, 1, d_qk] each
    plan = openmla.plan(seqlens, h_q=h_q)
    schedule = torch.empty_like(plan.tile_scheduler_metadata)  # [num_parts, words_per_part]
    workspace = torch.empty(openmla.workspace_size(q, plan, d_v=D_V), dtype=torch.uint8, device="cuda")
    outs = [torch.empty(b, 1, h_q, D_V, dtype=q.dtype, device="cuda") for _ in range(layers)]
    lses = [torch.empty(b, h_q, 1, device="cuda") for _ in range(layers)]

    def step():
        step_plan = openmla.plan(seqlens, h_q=h_q, out=schedule)
        for k, out, lse in zip(k_caches, outs, lses):
            openmla.decode(q, k, block_table, seqlens, d_v=D_V, plan=step_plan, workspace=workspace, out=out,
                           lse=lse)

    graph, _ = capture(step)
    for lengths in ([1, 900, 64], [0, 0, 0], [1100, 5, 700]):
        seqlens.copy_(torch.tensor(lengths, dtype=torch.int32))
        graph.replay()
        torch.cuda.synchronize()
        for k, out, lse in zip(k_caches, outs, lses):
            check(out, lse, q, k, block_table, seqlens)


def test_empty_batch_eager_and_in_cuda_graph():
    q, k_cache, block_table, seqlens = cuda_case(2, 1, 16, [100, 300])
    q, block_table, seqlens = q[:0], block_table[:0], seqlens[:0]  # b = 0
    plan = openmla.plan(seqlens, h_q=16)
    out, lse = openmla.decode(q, k_cache, block_table, seqlens, d_v=D_V, plan=plan)
    torch.cuda.synchronize()
    assert out.shape == (0, 1, 16, D_V) and lse.shape == (0, 16, 1)
    schedule = torch.empty_like(plan.tile_scheduler_metadata)
    # Garbage in the status word too: an empty decode must leave the status ok.
    workspace = torch.full((openmla.workspace_size(q, plan, d_v=D_V),), 0x13, dtype=torch.uint8, device="cuda")
    out = torch.empty(0, 1, 16, D_V, dtype=q.dtype, device="cuda")  # [b, s_q, h_q, d_v]
    lse = torch.empty(0, 16, 1, device="cuda")  # [b, h_q, s_q]

    def step():
        step_plan = openmla.plan(seqlens, h_q=16, out=schedule)
        openmla.decode(q, k_cache, block_table, seqlens, d_v=D_V, plan=step_plan, workspace=workspace, out=out,
                       lse=lse)
        metadata = openmla.get_mla_metadata(seqlens, 16, 1)
        return openmla.flash_mla_with_kvcache(q, k_cache, block_table, seqlens, D_V, *metadata)

    graph, (flash_out, flash_lse) = capture(step)
    graph.replay()
    torch.cuda.synchronize()
    assert flash_out.shape == (0, 1, 16, D_V) and flash_lse.shape == (0, 16, 1)
    openmla.check_status(workspace)


def test_flash_mla_sched_meta_form():
    """FlashMLA's current pattern: get_mla_metadata() once, the first call fills it, later layers reuse it."""
    from openmla import flash_mla_with_kvcache, get_mla_metadata

    b, s_q, h_q = 4, 2, 64
    q, k_cache, block_table, cache_seqlens = cuda_case(b, s_q, h_q, [10, 300, 2000, 64])
    sched_meta, num_splits = get_mla_metadata()
    assert num_splits is None
    for layer in range(3):
        k_layer = k_cache * (layer + 1)
        out, lse = flash_mla_with_kvcache(q, k_layer, block_table, cache_seqlens, D_V, sched_meta, num_splits,
                                          causal=True)
        check(out, lse, q, k_layer, block_table, cache_seqlens, causal=True)
    with pytest.raises(ValueError, match=r"causal: expected True, as in the first call"):
        flash_mla_with_kvcache(q, k_cache, block_table, cache_seqlens, D_V, sched_meta, None, causal=False)


@pytest.mark.parametrize("form", ["tuple", "sched_meta"])
def test_flash_mla_forms_in_cuda_graph(form):
    """A whole step (metadata + three layers) in FlashMLA's call pattern, captured once and replayed with
    new lengths: the schedule is made inside the graph in both forms."""
    from openmla import flash_mla_with_kvcache, get_mla_metadata

    b, s_q, h_q, layers = 3, 2, 16, 3
    q, k_cache, block_table, seqlens = cuda_case(b, s_q, h_q, [1200, 1200, 1200])
    k_caches = [k_cache * (i + 1) for i in range(layers)]

    def step():
        metadata = get_mla_metadata(seqlens, s_q * h_q, 1) if form == "tuple" else get_mla_metadata()
        return [flash_mla_with_kvcache(q, k, block_table, seqlens, D_V, *metadata, causal=True) for k in k_caches]

    graph, results = capture(step)
    for lengths in ([1, 900, 64], [0, 2, 0], [1100, 5, 700]):
        seqlens.copy_(torch.tensor(lengths, dtype=torch.int32))
        graph.replay()
        torch.cuda.synchronize()
        for k, (out, lse) in zip(k_caches, results):
            check(out, lse, q, k, block_table, seqlens, causal=True)


def test_grad_inputs_on_cuda():
    q, k_cache, block_table, cache_seqlens = cuda_case(2, 1, 16, [100, 700])
    q.requires_grad_()
    out, lse = openmla.decode(q, k_cache, block_table, cache_seqlens, d_v=D_V)
    assert out.requires_grad
    check(out.detach(), lse.detach(), q.detach(), k_cache, block_table, cache_seqlens)
    with pytest.raises(NotImplementedError, match="^openmla: decode has no backward"):
        out.float().sum().backward()
