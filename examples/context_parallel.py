"""Multi-GPU MLA decode with openmla: context parallelism (each sequence's keys split over the GPUs) and
tensor parallelism (the heads split over the GPUs), one process per GPU, started with torchrun.

    torchrun --nproc_per_node 2 examples/context_parallel.py            # CP and TP against one GPU
    torchrun --nproc_per_node 2 examples/context_parallel.py --cpu      # the same on CPU processes (gloo)
    NCCL_NVLS_ENABLE=0 torchrun --nproc_per_node 2 examples/context_parallel.py --bench --out cp.jsonl

Context parallelism: every rank holds all the queries and the pages of its share of each sequence;
openmla.distributed.plan gives the rank its block table, lengths and plan once per step, and
openmla.distributed.decode decodes the share, all-gathers (out, lse) and merges them, per layer.

Tensor parallelism needs no merge: MLA's latent cache is one KV head that every query head reads, so
each rank keeps the whole cache, decodes its slice of the heads, and feeds its heads' out straight into
its shard of W_UV and o_proj (a row-parallel o_proj then all-reduces). It saves compute, not cache.

--bench, for each b, s_k and h_q: the time of one layer's decode on one GPU (rank 0, whole cache) and of
one context-parallel layer on all the ranks (each rank holding only its pages), the time of the
all-gather alone (the communication share) and of the merge, all as CUDA-graph replays; and the
longest context that one model's latent cache (--layers) leaves room for on 1 and on W GPUs.
"""

import argparse
import json
import math
import os
import statistics

import torch
import torch.distributed as dist

import openmla
from openmla import distributed

D_QK, D_V, PAGE = 576, 512, 64


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cpu", action="store_true", help="check on CPU processes over gloo (no GPU needed)")
    p.add_argument("--bench", action="store_true", help="time 1 GPU against all the ranks (CUDA, NCCL)")
    p.add_argument("--b", default="1,2,4,8", help="bench: batch sizes")
    p.add_argument("--s_k", default="131072,262144,524288,1048576", help="bench: tokens per sequence")
    p.add_argument("--h_q", default="128,16", help="bench: query heads")
    p.add_argument("--replays", type=int, default=20, help="bench: graph replays per timing")
    p.add_argument("--repeats", type=int, default=5, help="bench: timings per case (median reported)")
    p.add_argument("--layers", type=int, default=61, help="bench: layers of latent cache for the longest context")
    p.add_argument("--out", help="bench: append one JSON line per case to this file (rank 0)")
    return p.parse_args()


def log(*values):
    if dist.get_rank() == 0:
        print(*values, flush=True)


def check(device):
    """CP and TP on a small causal MTP step (s_q = 2, h_q = 128) against one decode of the whole."""
    rank, world = dist.get_rank(), dist.get_world_size()
    gen = torch.Generator().manual_seed(0)  # the same problem on every rank
    b, s_q, h_q = 4, 2, 128
    lengths = torch.tensor([0, 100, 5000, 20000], dtype=torch.int32)
    pages = [math.ceil(int(n) / PAGE) for n in lengths]
    block_table = torch.zeros(b, max(pages), dtype=torch.int32)
    order = torch.randperm(sum(pages), generator=gen, dtype=torch.int32)
    first = 0
    for i, count in enumerate(pages):
        block_table[i, :count] = order[first : first + count]
        first += count
    q = (torch.randn(b, s_q, h_q, D_QK, generator=gen) * 0.1).to(device, torch.bfloat16)  # [b, s_q, h_q, d_qk]
    k_cache = (torch.randn(sum(pages), PAGE, 1, D_QK, generator=gen) * 0.1).to(device, torch.bfloat16)
    block_table, lengths = block_table.to(device), lengths.to(device)
    whole_out, whole_lse = openmla.decode(q, k_cache, block_table, lengths, causal=True)

    # Context parallel: each rank decodes its pages (here the cache is replicated; a rank reads only its own).
    step = distributed.plan(block_table, lengths, h_q=h_q, s_q=s_q, page_size=PAGE, causal=True)
    out, lse = distributed.decode(q, k_cache, step)
    cp_ok = close(out, lse, whole_out, whole_lse)

    # Tensor parallel: rank r decodes heads [r * h_q / W, (r + 1) * h_q / W) against the whole cache and
    # keeps them: its shard of W_UV and o_proj reads out[:, :, its heads] (h_q must divide by W).
    heads = slice(rank * h_q // world, (rank + 1) * h_q // world)
    local_out, local_lse = openmla.decode(q[:, :, heads], k_cache, block_table, lengths, causal=True)
    tp_ok = close(local_out, local_lse, whole_out[:, :, heads], whole_lse[:, heads])

    # Every rank checked its own result; rank 0 reports whether all of them agree.
    flags = torch.tensor([cp_ok, tp_ok], dtype=torch.int32, device=device)
    dist.all_reduce(flags, op=dist.ReduceOp.MIN)
    cp_ok, tp_ok = bool(flags[0]), bool(flags[1])
    log(f"{world} ranks, b={b} s_q={s_q} h_q={h_q} causal, lengths {lengths.tolist()}")
    log(f"context parallel (keys split, all-gather + merge): {'OK' if cp_ok else 'MISMATCH'} against one decode")
    log(f"tensor parallel (heads split, no merge):           {'OK' if tp_ok else 'MISMATCH'} against one decode")
    return cp_ok and tp_ok


def close(out, lse, want_out, want_lse):
    """Within openmla's test tolerances of another bf16 result: |out - want| <= 1e-3 + |want| / 64 and
    |lse - want| <= 1e-5 + 2e-4 |want|, +inf in the same rows."""
    return torch.allclose(out.float(), want_out.float(), rtol=1 / 64, atol=1e-3) and torch.allclose(
        lse, want_lse, rtol=2e-4, atol=1e-5)


def graph_time_us(fn, replays, repeats, together=True):
    """Median time of one call of fn, captured once in a CUDA graph and replayed; `together`: every
    rank starts each timing at a barrier (False for rank 0's one-GPU timing)."""
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        fn()  # warm-up outside the capture
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        fn()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    times = []
    for _ in range(repeats):
        if together:
            dist.barrier()
        torch.cuda.synchronize()
        start.record()
        for _ in range(replays):
            graph.replay()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end) * 1000 / replays)
    return statistics.median(times)


def random_cache(pages, device):
    """[pages, PAGE, 1, D_QK] bf16 ~ N(0, 0.1^2), filled in place."""
    return torch.empty(pages, PAGE, 1, D_QK, dtype=torch.bfloat16, device=device).normal_(0, 0.1)


def bench_case(b, s_k, h_q, args, device):
    rank, world = dist.get_rank(), dist.get_world_size()
    pages = math.ceil(s_k / PAGE)
    lengths = torch.full((b,), s_k, dtype=torch.int32, device=device)
    q = torch.empty(b, 1, h_q, D_QK, dtype=torch.bfloat16, device=device).normal_(0, 0.1)  # values: timing only
    row = {"b": b, "s_k": s_k, "h_q": h_q, "s_q": 1, "world": world, "gpu": torch.cuda.get_device_name(device)}

    if rank == 0:  # one GPU holding the whole cache
        k_cache = random_cache(b * pages, device)
        block_table = torch.randperm(b * pages, dtype=torch.int32, device=device).view(b, pages)
        plan = openmla.plan(lengths, h_q=h_q)
        workspace = torch.empty(openmla.workspace_size(q, plan), dtype=torch.uint8, device=device)
        out = torch.empty(b, 1, h_q, D_V, dtype=torch.bfloat16, device=device)
        lse = torch.empty(b, h_q, 1, device=device)
        row["one_gpu_us"] = graph_time_us(
            lambda: openmla.decode(q, k_cache, block_table, lengths, plan=plan, workspace=workspace, out=out, lse=lse),
            args.replays, args.repeats, together=False)
        del k_cache
    dist.barrier()  # the other ranks wait for rank 0's one-GPU timing
    torch.cuda.empty_cache()

    # Context parallel: this rank allocates only the pages of its range and numbers them 0 .. count - 1.
    bounds = distributed.page_bounds(lengths, world, PAGE)  # [W + 1, b]
    counts = (bounds[rank + 1] - bounds[rank]).tolist()
    k_cache = random_cache(max(sum(counts), 1), device)
    block_table = torch.zeros(b, pages, dtype=torch.int32, device=device)  # entries outside the range: never read
    local = torch.randperm(max(sum(counts), 1), dtype=torch.int32, device=device)
    first = 0
    for i, count in enumerate(counts):
        start = int(bounds[rank, i])
        block_table[i, start : start + count] = local[first : first + count]
        first += count
    step = distributed.plan(block_table, lengths, h_q=h_q, page_size=PAGE, bounds=bounds)
    workspace = torch.empty(openmla.workspace_size(q, step.plan), dtype=torch.uint8, device=device)
    gathered = distributed.gather_buffer(q, world)
    out = torch.empty(b, 1, h_q, D_V, dtype=torch.bfloat16, device=device)
    lse = torch.empty(b, h_q, 1, device=device)
    out_parts, lse_parts = distributed.gathered_parts(gathered, q)
    row["cp_us"] = graph_time_us(lambda: distributed.decode(q, k_cache, step, workspace=workspace, gathered=gathered,
                                                            out=out, lse=lse), args.replays, args.repeats)
    row["cp_decode_us"] = graph_time_us(lambda: distributed.decode_share(
        q, k_cache, step, workspace=workspace, out=out_parts[rank], lse=lse_parts[rank]), args.replays, args.repeats)
    row["all_gather_us"] = graph_time_us(lambda: dist.all_gather_into_tensor(gathered.view(-1), gathered[rank]),
                                         args.replays, args.repeats)
    row["merge_us"] = graph_time_us(lambda: openmla.merge(out_parts, lse_parts, out=out, lse=lse), args.replays,
                                    args.repeats)
    row["cache_gib_per_gpu"] = sum(counts) * PAGE * D_QK * 2 / 2**30
    del k_cache
    torch.cuda.empty_cache()
    return row


def bench(args, device):
    world = dist.get_world_size()
    free, total = torch.cuda.mem_get_info(device)
    log(f"{world} x {torch.cuda.get_device_name(device)}, NCCL_NVLS_ENABLE={os.environ.get('NCCL_NVLS_ENABLE')}; "
        "CUDA-graph replays, median; times per layer and decoding step")
    log("| b | s_k | h_q | 1 GPU us | CP us | speedup | CP decode us | all-gather us (share) | merge us | "
        "cache GiB/GPU |")
    log("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for h_q in map(int, args.h_q.split(",")):
        for s_k in map(int, args.s_k.split(",")):
            for b in map(int, args.b.split(",")):
                row = bench_case(b, s_k, h_q, args, device)
                if dist.get_rank() == 0:
                    row["speedup"] = row["one_gpu_us"] / row["cp_us"]
                    row["comm_share"] = row["all_gather_us"] / row["cp_us"]
                    log(f"| {b} | {s_k} | {h_q} | {row['one_gpu_us']:.1f} | {row['cp_us']:.1f} | "
                        f"{row['speedup']:.2f}x | {row['cp_decode_us']:.1f} | {row['all_gather_us']:.1f} "
                        f"({100 * row['comm_share']:.0f}%) | {row['merge_us']:.1f} | {row['cache_gib_per_gpu']:.2f} |")
                    if args.out:
                        with open(args.out, "a") as f:
                            f.write(json.dumps(row) + "\n")
    # One token of latent cache is D_QK bf16 values per layer; 90% of the memory free at the start is usable.
    tokens = 0.9 * free / (args.layers * D_QK * 2)
    log(f"longest context for {args.layers} layers of latent cache (b = 1, 90% of {free / 2**30:.0f} GiB free of "
        f"{total / 2**30:.0f} GiB): {tokens / 1e6:.2f}M tokens on 1 GPU, {world * tokens / 1e6:.2f}M on {world}")


def main():
    args = parse_args()
    backend = "gloo" if args.cpu else "nccl"
    dist.init_process_group(backend)
    if args.cpu:
        device = torch.device("cpu")
    else:
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
        torch.cuda.set_device(device)
    try:
        if args.bench:
            bench(args, device)
        elif not check(device):
            raise SystemExit(1)
    finally:
        dist.destroy_process_group()


if __name__ == "__main__":
    main()
