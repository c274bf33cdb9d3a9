"""openmla.nn.PagedLatentCache: the paged latent caches of a model's MLA layers, and each step's metadata."""

import dataclasses
from typing import Any, Optional

import torch

from .._cache import write_cache
from .._decode import workspace_size
from .._plan import plan as make_plan


@dataclasses.dataclass
class Step:
    """What every layer of one forward step shares (made by PagedLatentCache.begin_step)."""

    prefill: bool  # no sequence had anything cached: attention over the new tokens alone
    valid: torch.Tensor  # [b, s] bool, the new tokens that are real (not padding)
    slot_mapping: torch.Tensor  # [b * s] int64, cache slot of each new token (page * page_size + offset), -1: none
    block_table: torch.Tensor  # [b, max_blocks] int32, pages of each sequence
    cache_seqlens: torch.Tensor  # [b] int32, cached tokens of each sequence, this step's included
    plan: Any  # openmla.Plan of cache_seqlens (decode steps), shared by all layers
    workspace: Optional[torch.Tensor] = None  # [bytes] uint8, decode's workspace, made by the first layer

    def workspace_for(self, q, d_v):
        """The step's decode workspace, made on first use for q [b, s, h, d_qk] (every layer has q's shape)."""
        if self.workspace is None:
            self.workspace = torch.empty(workspace_size(q, self.plan, d_v=d_v), dtype=torch.uint8, device=q.device)
        return self.workspace


class PagedLatentCache:
    """The latent caches of `num_layers` MLA layers for a batch of `batch` sequences.

    Every layer's cache is [num_pages, page_size, 1, d_latent + d_rope] (openmla.decode's k_cache: the
    normalized latent c_kv, then the rotated k_pe), all views of one pool; a sequence's pages come from
    a free list and serve all layers (one block table). The pool grows (doubles) when a step needs more
    pages than are free; begin_step and free keep the bookkeeping on the host.

    Per step: begin_step(valid) places the new tokens, makes the block table, lengths and one plan for
    all layers; each layer then calls write(layer, kv_c, k_pe) and decodes over k_cache(layer).
    """

    def __init__(self, num_layers, batch, *, dtype, device, num_pages=None, page_size=64, d_latent=512,
                 d_rope=64, num_heads=128):
        if num_pages is None:
            num_pages = max(batch, 1)
        self.num_layers = num_layers
        self.batch = batch
        self.page_size = page_size
        self.d_latent = d_latent
        self.d_rope = d_rope
        self.num_heads = num_heads  # query heads of the decode calls (chooses the plan's parts)
        self.pool = torch.empty(num_layers, num_pages, page_size, 1, d_latent + d_rope, dtype=dtype,
                                device=device)  # [layers, num_pages, page_size, 1, d_qk]
        self._free_pages = list(range(num_pages - 1, -1, -1))  # a stack: the lowest page on top
        self._pages = [[] for _ in range(batch)]  # pages of each sequence, in order
        self.lengths = [0] * batch  # cached tokens of each sequence
        self.step = None

    @property
    def bytes_per_token(self):
        """Cache bytes one token takes over all layers."""
        return self.num_layers * (self.d_latent + self.d_rope) * self.pool.element_size()

    @property
    def nbytes(self):
        """Bytes of the pool (every page, used or free)."""
        return self.pool.numel() * self.pool.element_size()

    def k_cache(self, layer):
        """Layer `layer`'s cache: [num_pages, page_size, 1, d_latent + d_rope]."""
        return self.pool[layer]

    def begin_step(self, valid):
        """Places a step's new tokens: valid [b, s] bool marks the real ones (padding gets no slot). In a
        step where some sequence has tokens cached (decode), a sequence's new tokens are all real or
        all padding (a finished sequence). Returns the Step, also kept as self.step."""
        b, s = valid.shape
        if b != self.batch:
            raise ValueError(f"openmla: valid: expected [batch = {self.batch}, s], given shape {tuple(valid.shape)}")
        valid_host = valid.to("cpu", torch.bool)  # [b, s]
        new_tokens = valid_host.sum(dim=1).tolist()  # [b]
        prefill = not any(self.lengths)
        if not prefill:
            for i, n in enumerate(new_tokens):
                if n not in (0, s):
                    raise ValueError(f"openmla: valid[{i}]: expected all or none of the {s} new tokens of a decode "
                                     f"step (padding only before a sequence's first cached token), given {n}")
        self._reserve([self.lengths[i] + n for i, n in enumerate(new_tokens)])
        slots = torch.full((b, s), -1, dtype=torch.int64)  # [b, s]
        for i in range(b):
            positions = torch.arange(self.lengths[i], self.lengths[i] + new_tokens[i])  # [n]
            pages = torch.tensor(self._pages[i], dtype=torch.int64)  # [pages of sequence i]
            if len(positions):
                page_of = pages[positions // self.page_size]  # [n]
                slots[i, valid_host[i]] = page_of * self.page_size + positions % self.page_size
            self.lengths[i] += new_tokens[i]
        max_blocks = max(1, max(len(p) for p in self._pages))
        block_table = torch.zeros(b, max_blocks, dtype=torch.int32)  # [b, max_blocks]
        for i, pages in enumerate(self._pages):
            block_table[i, : len(pages)] = torch.tensor(pages, dtype=torch.int32)
        device = self.pool.device
        cache_seqlens = torch.tensor(self.lengths, dtype=torch.int32, device=device)  # [b]
        self.step = Step(prefill=prefill, valid=valid.to(device, torch.bool),
                         slot_mapping=slots.reshape(-1).to(device), block_table=block_table.to(device),
                         cache_seqlens=cache_seqlens,
                         plan=None if prefill else make_plan(cache_seqlens, s_q=s, h_q=self.num_heads, h_kv=1))
        return self.step

    def write(self, layer, kv_c, k_pe):
        """Writes the step's new tokens into layer `layer`: kv_c [b, s, d_latent], k_pe [b, s, d_rope] at the
        step's slot_mapping (padding skipped)."""
        k_cache = self.k_cache(layer)  # [num_pages, page_size, 1, d_qk]
        slots = self.step.slot_mapping  # [b * s]
        kv_c = kv_c.reshape(-1, self.d_latent)  # [b * s, d_latent]
        k_pe = k_pe.reshape(-1, self.d_rope)  # [b * s, d_rope]
        write_cache(kv_c.to(k_cache.dtype), k_pe.to(k_cache.dtype), k_cache, slots)

    def free(self, sequences):
        """Frees the pages of the given sequences (finished ones): their lengths become 0 and their pages
        return to the pool. Later steps may give them new tokens (a new sequence in that row)."""
        for i in sequences:
            self._free_pages.extend(reversed(self._pages[i]))
            self._pages[i] = []
            self.lengths[i] = 0

    def reset(self):
        """Frees every sequence."""
        self.free(range(self.batch))
        self.step = None

    def _reserve(self, lengths):
        """Gives each sequence the pages its new length needs, growing the pool when too few are free."""
        need = [max(0, -(-n // self.page_size) - len(p)) for n, p in zip(lengths, self._pages)]
        missing = sum(need) - len(self._free_pages)
        if missing > 0:
            self._grow(missing)
        for i, n in enumerate(need):
            for _ in range(n):
                self._pages[i].append(self._free_pages.pop())

    def _grow(self, missing):
        old = self.pool.shape[1]
        added = max(missing, old)
        pool = self.pool.new_empty(self.num_layers, old + added, *self.pool.shape[2:])  # [layers, pages, ...]
        pool[:, :old] = self.pool
        self.pool = pool
        self._free_pages[:0] = range(old + added - 1, old - 1, -1)
