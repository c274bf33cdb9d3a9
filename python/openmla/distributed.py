"""openmla.distributed: context-parallel MLA decode on torch.distributed, one process per GPU.

Context parallelism (CP) spreads each sequence's cached keys over the ranks of a process group. Every
rank holds all the queries, decodes the keys of its share, and an all-gather of the partial (out, lse)
followed by openmla.merge gives every rank the exact attention over all the keys:

    step = openmla.distributed.plan(block_table, cache_seqlens, h_q=h_q, s_q=s_q, page_size=64,
                                    causal=True)       # once per decoding step, shared by every layer
    for layer in layers:
        out, lse = openmla.distributed.decode(q, k_cache, step, d_v=512)

The split. Rank r holds the pages [bounds[r], bounds[r + 1]) of each sequence (page_bounds): contiguous
ranges, balanced to within a page, and the last rank's range holds the sequence's last s_q keys.
split() gives a rank its block table (its pages first) and its lengths; these are pure functions of
the arrays (NumPy, torch or CuPy, on any device, no host synchronization), testable without GPUs.

The causal rule (s_q > 1, causal=True): query row i sees keys 0 .. s_k - s_q + i. The ranges of ranks
0 .. W-2 end at or before the page that holds key s_k - s_q, so all their keys come before it and
every row sees all of them: those ranks decode with causal=False. The last rank holds the last L keys
(L >= s_q, or all of them when s_k < s_q) and decodes with causal=True: its row i then sees its keys
0 .. L - s_q + i, which are the sequence's keys s_k - L .. s_k - s_q + i, exactly the row's visible
keys in that share. Only the last rank masks.

Where the pages live. A rank reads only the block-table entries of its own range, as page indices into
its own k_cache. A cache replicated on every rank works as is. An engine that stores each page on one
rank must put it where the bounds say; page_bounds' balanced ranges move as sequences grow, so such
an engine passes its own bounds (plan(..., bounds=...)) that keep the rule above: bounds[0] = 0,
non-decreasing, bounds[W] = the sequence's page count, and the last range holding the last s_q keys.

Tensor parallelism (heads split over ranks) needs nothing from this module: each rank decodes its
heads' slice of q against the whole latent cache (MLA shares one KV head between all query heads) and
owns those heads' outputs; see examples/context_parallel.py.
"""

from typing import Any, NamedTuple

from . import _arrays, _torch
from ._decode import decode as _decode
from ._merge import merge as _merge
from ._plan import Plan, plan as _plan


def _dist():
    if _torch.torch is None:
        raise ImportError("openmla.distributed needs PyTorch (torch.distributed) for its collective calls")
    return _torch.torch.distributed


class _Ops:
    """The few integer array operations of the split, for torch tensors and NumPy / CuPy arrays."""

    def __init__(self, like):
        self.torch = _torch.is_tensor(like)
        self.xp = None if self.torch else __import__(type(like).__module__.partition(".")[0])
        self.like = like

    def int64(self, x):
        return x.long() if self.torch else x.astype("int64")

    def int32(self, x):
        return x.int().contiguous() if self.torch else self.xp.ascontiguousarray(x.astype("int32"))

    def floor_at_zero(self, x):
        return x.clamp(min=0) if self.torch else self.xp.maximum(x, 0)

    def minimum(self, a, b):
        return _torch.torch.minimum(a, b) if self.torch else self.xp.minimum(a, b)

    def stack(self, arrays):
        return _torch.torch.stack(arrays) if self.torch else self.xp.stack(arrays)

    def columns(self, start, width, last):
        """[b, width] int64: start[i] + j, capped at `last`."""
        if self.torch:
            offsets = _torch.torch.arange(width, device=self.like.device)
            return (start[:, None] + offsets[None, :]).clamp(max=last)
        return self.xp.minimum(start[:, None] + self.xp.arange(width)[None, :], last)

    def gather_columns(self, table, columns):
        if self.torch:
            return _torch.torch.gather(table, 1, columns)
        return self.xp.take_along_axis(table, columns, axis=1)


def _check_split_args(world_size, page_size, s_q):
    for name, value in (("world_size", world_size), ("page_size", page_size), ("s_q", s_q)):
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"openmla: {name}: expected an int >= 1, given {value!r}")


def page_bounds(cache_seqlens, world_size, page_size, *, s_q=1, causal=False):
    """The page range of each rank: int32 [world_size + 1, b], rank r holding the pages
    [bounds[r], bounds[r + 1]) of sequence i (bounds[0] = 0, bounds[world_size] = its page count).

    Balanced: the last rank starts at floor(pages * (W - 1) / W) and rank r < W - 1 at
    floor(r * start_last / (W - 1)), so no range is more than a page longer than another. With causal
    and s_q > 1 the last rank starts no later than the page of key s_k - s_q, so that it holds the
    last s_q keys. cache_seqlens: int32 [b], any framework and device (negative lengths count as 0).
    """
    _check_split_args(world_size, page_size, s_q)
    ops = _Ops(cache_seqlens)
    s_k = ops.floor_at_zero(ops.int64(cache_seqlens))  # [b]
    pages = (s_k + (page_size - 1)) // page_size  # [b]
    last = pages * (world_size - 1) // world_size  # [b] first page of the last rank
    if causal and s_q > 1:
        last = ops.minimum(last, ops.floor_at_zero(s_k - s_q) // page_size)
    starts = [last * r // (world_size - 1) for r in range(world_size - 1)]
    return ops.int32(ops.stack(starts + [last, pages]))  # [W + 1, b]


def share_width(max_blocks_per_seq, world_size, page_size, *, s_q=1, causal=False):
    """Block-table columns that any rank's range from page_bounds can need: the ranges of ranks
    0 .. W-2 have at most ceil(pages / W) pages, the last one at most that or, with causal and s_q > 1,
    the 1 + ceil((s_q - 1) / page_size) pages that hold the last s_q keys."""
    _check_split_args(world_size, page_size, s_q)
    width = -(-max_blocks_per_seq // world_size)
    if causal and s_q > 1:
        width = max(width, 1 + -(-(s_q - 1) // page_size))
    return min(max_blocks_per_seq, width)


def share(block_table, cache_seqlens, bounds, rank, page_size, *, width=None):
    """Rank `rank`'s block table and lengths for the page ranges `bounds` ([W + 1, b], page_bounds).

    block_table: int32 [b, max_blocks_per_seq]; cache_seqlens: int32 [b]. Returns (block_table int32
    [b, width] whose row i starts with the rank's pages of sequence i, cache_seqlens int32 [b] = the
    number of keys in those pages). Entries past a rank's pages are copies of other columns (or the
    table's tail) and are never read. width: columns of the result (default max_blocks_per_seq).
    """
    if not isinstance(rank, int) or not 0 <= rank < bounds.shape[0] - 1:
        raise ValueError(f"openmla: rank: expected an int in [0, {bounds.shape[0] - 1}), given {rank!r}")
    ops = _Ops(block_table)
    max_blocks = block_table.shape[1]
    width = max_blocks if width is None else min(width, max_blocks)
    start = ops.int64(bounds[rank])  # [b]
    end = ops.int64(bounds[rank + 1])  # [b]
    s_k = ops.floor_at_zero(ops.int64(cache_seqlens))  # [b]
    lengths = ops.minimum(ops.floor_at_zero(s_k - start * page_size), (end - start) * page_size)  # [b]
    table = ops.gather_columns(block_table, ops.columns(start, width, max(max_blocks - 1, 0)))  # [b, width]
    return ops.int32(table), ops.int32(lengths)


def split(block_table, cache_seqlens, world_size, rank, page_size, *, s_q=1, causal=False):
    """Rank `rank`'s (block_table [b, share_width(...)] int32, cache_seqlens [b] int32) under the
    balanced split of page_bounds. Decode it with causal=share_is_causal(rank, world_size, causal)."""
    bounds = page_bounds(cache_seqlens, world_size, page_size, s_q=s_q, causal=causal)
    width = share_width(block_table.shape[1], world_size, page_size, s_q=s_q, causal=causal)
    return share(block_table, cache_seqlens, bounds, rank, page_size, width=width)


def share_is_causal(rank, world_size, causal):
    """Only the last rank masks; the other ranks' keys are visible to every query row."""
    return bool(causal) and rank == world_size - 1


class Step(NamedTuple):
    """One rank's share of a decoding step, made by plan() and shared by every layer."""

    block_table: Any  # [b, width] int32, the rank's pages first
    cache_seqlens: Any  # [b] int32, the rank's keys of each sequence
    plan: Plan  # the split-KV schedule of the rank's lengths
    causal: bool  # whether this rank masks (only the last rank, for a causal step)
    rank: int
    world_size: int
    group: Any  # the torch.distributed process group (None: the default group)


def plan(block_table, cache_seqlens, *, h_q, s_q=1, h_kv=1, page_size, causal=False, num_parts=0, bounds=None,
         group=None, rank=None, world_size=None, out=None, cache_format="plain"):
    """This rank's share of a decoding step: its block table, lengths and split-KV plan.

    block_table: int32 [b, max_blocks_per_seq] and cache_seqlens: int32 [b], the whole sequences, on
    this rank's device. page_size: tokens per page of k_cache. bounds: optional int32 [W + 1, b] page
    ranges (default page_bounds). rank, world_size: default the rank and size of `group` in
    torch.distributed; give both to plan a share without a process group (e.g. to run every share in
    one process). out: optional plan buffer, and cache_format the cache the shares read, as in
    openmla.plan. No host synchronization: a step can be captured in a CUDA graph.
    """
    if rank is None or world_size is None:
        dist = _dist()
        rank, world_size = dist.get_rank(group), dist.get_world_size(group)
    if bounds is None:
        table, lengths = split(block_table, cache_seqlens, world_size, rank, page_size, s_q=s_q, causal=causal)
    else:
        if tuple(bounds.shape) != (world_size + 1, block_table.shape[0]):
            raise ValueError(f"openmla: bounds: expected shape ({world_size + 1}, {block_table.shape[0]}) "
                             f"[world_size + 1, b], given {tuple(bounds.shape)}")
        table, lengths = share(block_table, cache_seqlens, bounds, rank, page_size)
    schedule = _plan(lengths, s_q=s_q, h_q=h_q, h_kv=h_kv, num_parts=num_parts, out=out, cache_format=cache_format)
    return Step(table, lengths, schedule, share_is_causal(rank, world_size, causal), rank, world_size, group)


def decode_share(q, k_cache, step, *, d_v=512, softmax_scale=None, workspace=None, out=None, lse=None):
    """This rank's partial result: openmla.decode of q over the keys of its share (no communication).
    Returns (out [b, s_q, h_q, d_v], lse [b, h_q, s_q]); rows that see none of the share's keys get
    out 0 and lse +inf, which merge ignores."""
    return _decode(q, k_cache, step.block_table, step.cache_seqlens, d_v=d_v, softmax_scale=softmax_scale,
                   causal=step.causal, plan=step.plan, workspace=workspace, out=out, lse=lse)


def _slot_bytes(b, s_q, h_q, d_v, element_size):
    """Bytes of one rank's slot of the gather buffer: out, then lse, each padded to 16 bytes (so that
    both views are aligned for the merge kernel's 4-column loads)."""
    pad = lambda n: -(-n // 16) * 16  # noqa: E731
    return pad(b * s_q * h_q * d_v * element_size), pad(b * h_q * s_q * 4)


def gather_buffer(q, world_size, *, d_v=512):
    """An uninitialized uint8 tensor [world_size, slot] on q's device that holds every rank's (out,
    lse) during decode; pass it as decode(..., gathered=...) to allocate nothing per call (CUDA graphs)."""
    b, s_q, h_q, _ = q.shape
    out_bytes, lse_bytes = _slot_bytes(b, s_q, h_q, d_v, q.element_size())
    return _torch.torch.empty((world_size, out_bytes + lse_bytes), dtype=_torch.torch.uint8, device=q.device)


def gathered_parts(gathered, q, *, d_v=512):
    """The views of a gather buffer that merge reads: out_parts [W, b, s_q, h_q, d_v] in q's dtype and
    lse_parts [W, b, h_q, s_q] float32; rank r's slot holds its decode_share result."""
    torch = _torch.torch
    b, s_q, h_q, _ = q.shape
    out_bytes, lse_bytes = _slot_bytes(b, s_q, h_q, d_v, q.element_size())
    if (gathered.dtype != torch.uint8 or gathered.dim() != 2 or gathered.shape[1] != out_bytes + lse_bytes
            or not gathered.is_contiguous()):
        raise ValueError(f"openmla: gathered: expected a contiguous uint8 tensor [world_size, {out_bytes + lse_bytes}] "
                         f"(gather_buffer), given {gathered.dtype} {tuple(gathered.shape)}")
    rows = b * s_q * h_q
    out_parts = gathered[:, : rows * d_v * q.element_size()].view(q.dtype).unflatten(1, (b, s_q, h_q, d_v))
    lse_parts = gathered[:, out_bytes : out_bytes + rows * 4].view(torch.float32).unflatten(1, (b, h_q, s_q))
    return out_parts, lse_parts


def decode(q, k_cache, step, *, d_v=512, softmax_scale=None, workspace=None, gathered=None, out=None, lse=None):
    """Context-parallel MLA decode: every rank of step.group calls it with the same q and gets the
    attention of q over every rank's keys.

    q: [b, s_q, h_q, d_qk] torch tensor on this rank's GPU (the same values on every rank); k_cache:
    this rank's cache, [num_blocks, page_size, h_kv, d_qk]; step: this rank's plan(). The rank decodes
    its share into its slot of `gathered` (gather_buffer), one all_gather_into_tensor (in place) gives
    every rank all the slots, and openmla.merge writes out [b, s_q, h_q, d_v] and lse [b, h_q, s_q].
    Everything runs on the current stream: with workspace, gathered, out and lse given, nothing is
    allocated and the call can be captured in a CUDA graph.
    """
    dist = _dist()
    if not _torch.is_tensor(q):
        raise TypeError(f"openmla: q: expected a torch.Tensor, given {type(q).__module__}.{type(q).__name__}")
    if gathered is None:
        gathered = gather_buffer(q, step.world_size, d_v=d_v)
    _arrays.check_same_framework("torch", gathered, "gathered")
    if gathered.shape[0] != step.world_size:
        raise ValueError(f"openmla: gathered: expected {step.world_size} slots (world_size), given {gathered.shape[0]}")
    out_parts, lse_parts = gathered_parts(gathered, q, d_v=d_v)
    decode_share(q, k_cache, step, d_v=d_v, softmax_scale=softmax_scale, workspace=workspace,
                 out=out_parts[step.rank], lse=lse_parts[step.rank])
    # The flat output is the concatenation of the slots: the one form every backend takes (gloo too).
    dist.all_gather_into_tensor(gathered.view(-1), gathered[step.rank], group=step.group)
    return _merge(out_parts, lse_parts, out=out, lse=lse)
