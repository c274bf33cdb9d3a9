"""Generation with a Hugging Face DeepSeek-V3 model on openmla against transformers' own attention.

Builds a random-weight DeepseekV3ForCausalLM with DeepSeek-V3's attention dimensions (128 heads,
q_lora_rank 1536, kv_lora_rank 512, qk_rope 64, qk_nope 128, v_head 128; hidden 7168), a few layers and
a small dense MLP, prefills a batch of prompts and decodes, and prints for transformers' eager and sdpa
attention (with their own cache) and for openmla (openmla.hf.patch): decode tokens/s, prefill seconds,
KV-cache bytes per token, the share of the time spent in attention, peak GPU memory, and agreement with
the tokens of the first implementation run (--impls, eager by default). One JSON line per run, then a
Markdown table.

    python examples/generate.py --device cuda --dtype bfloat16 --batch 16 --context 1024
    python examples/generate.py --batch 64 --context 8192 --impls sdpa,openmla --prefill-chunk 1024
    python examples/generate.py --tiny        # a tiny fp32 CPU model: openmla must give eager's tokens

Timing: one generate() run, a logits processor (StepClock) synchronizing the device after each forward;
prefill = call to the first step, decode = first step to the last (new_tokens - 1 forwards), after a
warm-up run of the same shapes. A second run, synchronizing around every attention call, gives the
attention share of the whole run.

Memory, bf16, 4 layers, on a 141 GB H200 (estimates; N = batch x context prompt tokens):
- weights ~1.5 GB. The cache is small: transformers that caches the latent (5.24 does) keeps 576 values
  per token and layer, like openmla (1,152 bytes: 2.4 GB at 64 x 8K). Versions that cached the
  decompressed keys and values (128 x (192 + 128) values, 81,920 bytes) need 173 GB there: no fit.
- The prefill limits, one forward over the N tokens: sdpa, and openmla's prefill (SDPA on decompressed
  keys and values), hold ~320 KB per prompt token in an attention layer (queries, kv_b_proj's output,
  keys, outputs): ~40 GB at 16 x 8K, ~170 GB at 64 x 8K, which needs --prefill-chunk 1024 (prompt in
  chunks of 1024 tokens per sequence: ~75 GB for sdpa, which decompresses the whole cache per chunk,
  ~55 GB for openmla, whose later chunks decode over the latent cache with s_q = 1024).
- eager also materializes the scores [b, 128, context, context], ~10 bytes each around the softmax:
  64 x 1K and 1 x 8K (~90 GB) fit, 16 x 8K (1.4 TB) and 64 x 8K do not: run those with --impls
  sdpa,openmla.
- Decode: eager and sdpa decompress the whole cache into keys and values at every step (112 KB per
  cached token, one layer at a time: 60 GB at 64 x 8K); openmla decodes over the latent.

Exits 1 when an fp32 run's openmla tokens differ from the reference's (bf16 runs may part where two
logits nearly tie; first_step_differing says where).
"""

import argparse
import functools
import json
import time

import torch
import transformers

import openmla.hf

V3_ATTENTION = dict(hidden_size=7168, num_attention_heads=128, q_lora_rank=1536, kv_lora_rank=512,
                    qk_rope_head_dim=64, qk_nope_head_dim=128, v_head_dim=128)
TINY_ATTENTION = dict(hidden_size=64, num_attention_heads=4, q_lora_rank=32, kv_lora_rank=32, qk_rope_head_dim=16,
                      qk_nope_head_dim=16, v_head_dim=16)
IMPLS = ("eager", "sdpa", "openmla")


def build_model(args):
    dims = TINY_ATTENTION if args.tiny else V3_ATTENTION
    config = transformers.DeepseekV3Config(
        vocab_size=args.vocab, intermediate_size=args.mlp, num_hidden_layers=args.layers,
        num_key_value_heads=dims["num_attention_heads"], first_k_dense_replace=args.layers, n_group=1, topk_group=1,
        max_position_embeddings=args.context + args.new_tokens, pad_token_id=0, eos_token_id=None,
        bos_token_id=None, **dims)
    torch.manual_seed(0)
    with torch.device(args.device):
        model = transformers.DeepseekV3ForCausalLM(config)
    return model.to(getattr(torch, args.dtype)).eval()


def sync(device):
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def cache_bytes(cache):
    """Bytes of the tensors transformers' cache object holds (its layers' keys and values)."""
    tensors = []
    for layer in getattr(cache, "layers", []):
        tensors += [getattr(layer, "keys", None), getattr(layer, "values", None)]
    tensors += list(getattr(cache, "key_cache", [])) + list(getattr(cache, "value_cache", []))
    return sum(t.numel() * t.element_size() for t in tensors if isinstance(t, torch.Tensor))


class StepClock(transformers.LogitsProcessor):
    """Timestamps of one generate() run: start() just before it, then, as its last logits processor, one
    per generated token (after each forward), each taken after `synchronize()` (the device's work is
    done). generate() itself waits for the device at each step (its stopping check; transformers 5.24
    defers it only on mps), so this removes no overlap of host and device."""

    def __init__(self, synchronize, now=time.perf_counter):
        self.synchronize, self.now, self.times = synchronize, now, []

    def start(self):
        self.synchronize()
        self.times = [self.now()]

    def __call__(self, input_ids, scores):
        self.synchronize()
        self.times.append(self.now())
        return scores

    @property
    def steps(self):
        return max(len(self.times) - 1, 0)

    def intervals(self):
        """(prefill, decode) seconds: start to the first step, the first step to the last. RuntimeError
        unless start() was called, two steps at least were recorded and both intervals are positive."""
        if self.steps < 2:
            raise RuntimeError(f"StepClock: expected start() and 2 steps or more, given {self.steps} steps")
        prefill, decode = self.times[1] - self.times[0], self.times[-1] - self.times[1]
        if not (prefill > 0 and decode > 0):
            raise RuntimeError(f"StepClock: expected positive prefill and decode intervals, given {prefill!r} s "
                               f"and {decode!r} s")
        return prefill, decode


def generate(model, ids, new_tokens, prefill_chunk=None, processors=()):
    return model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=new_tokens,
                          min_new_tokens=new_tokens, do_sample=False, return_dict_in_generate=True,
                          prefill_chunk_size=prefill_chunk,
                          logits_processor=transformers.LogitsProcessorList(processors))


def timed_generate(model, ids, new_tokens, synchronize, prefill_chunk=None):
    """One generate() run of new_tokens >= 2 tokens: (its output, prefill seconds, decode seconds of the
    new_tokens - 1 decode steps). RuntimeError when generate() did not take one step per new token."""
    clock = StepClock(synchronize)
    clock.start()
    out = generate(model, ids, new_tokens, prefill_chunk, [clock])
    if clock.steps != new_tokens:
        raise RuntimeError(f"timed_generate: expected {new_tokens} steps, given {clock.steps}")
    prefill, decode = clock.intervals()
    return out, prefill, decode


class AttentionTimer:
    """Wall time spent inside the decoder layers' self_attn modules (synchronizing around each call)."""

    def __init__(self, model, device):
        self.device, self.seconds, self.handles = device, 0.0, []
        for layer in model.model.layers:
            self.handles.append(layer.self_attn.register_forward_pre_hook(self._start))
            self.handles.append(layer.self_attn.register_forward_hook(self._stop))

    def _start(self, module, args):
        sync(self.device)
        self.started = time.perf_counter()

    def _stop(self, module, args, output):
        sync(self.device)
        self.seconds += time.perf_counter() - self.started

    def remove(self):
        for handle in self.handles:
            handle.remove()


def significant(x, digits=4):
    return float(f"{x:.{digits}g}")


def run(model, ids, args, impl):
    """A warm-up run, a timed run (prefill and decode), then a run synchronized around each attention
    call for the attention share. Returns the new tokens [b, new_tokens] and the row of figures."""
    synchronize = functools.partial(sync, args.device)
    generate(model, ids, 2, args.prefill_chunk)  # warm-up: the same shapes, the caches' first allocation
    if args.device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    out, prefill, decode = timed_generate(model, ids, args.new_tokens, synchronize, args.prefill_chunk)
    peak = torch.cuda.max_memory_allocated() / 1e9 if args.device.startswith("cuda") else None
    timer = AttentionTimer(model, args.device)
    synchronize()
    start = time.perf_counter()
    generate(model, ids, args.new_tokens, args.prefill_chunk)
    synchronize()
    timed = time.perf_counter() - start
    timer.remove()
    batch, context = ids.shape
    cached = batch * (context + args.new_tokens - 1)  # tokens in the cache at the end
    kv_bytes = cache_bytes(out.cache if "cache" in out else out.past_key_values)
    if impl == "openmla":
        kv_bytes += model._openmla_patch.session.paged.bytes_per_token * cached
    return out.sequences[:, context:], {
        "impl": impl, "batch": batch, "context": context, "new_tokens": args.new_tokens, "layers": args.layers,
        "device": args.device, "dtype": args.dtype, "prefill_chunk": args.prefill_chunk,
        "transformers": transformers.__version__, "prefill_s": significant(prefill),
        "decode_tokens_per_s": significant(batch * (args.new_tokens - 1) / decode),
        "kv_bytes_per_token": round(kv_bytes / cached / args.layers, 1),
        "attention_share": round(timer.seconds / timed, 3),
        "peak_memory_gb": None if peak is None else round(peak, 1)}


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--context", type=int, default=1024, help="prompt tokens per sequence")
    parser.add_argument("--new-tokens", type=int, default=64, help="tokens generated per sequence (>= 2)")
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--mlp", type=int, default=1024, help="dense MLP width")
    parser.add_argument("--vocab", type=int, default=1024)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--dtype", default=None, choices=["bfloat16", "float16", "float32"],
                        help="default: bfloat16 on CUDA, float32 on the CPU")
    parser.add_argument("--impls", default=",".join(IMPLS),
                        help="comma-separated, run in this order; the first is the tokens' reference")
    parser.add_argument("--prefill-chunk", type=int, default=None,
                        help="prefill the prompt in chunks of this many tokens per sequence (memory)")
    parser.add_argument("--tiny", action="store_true", help="tiny fp32 CPU model, batch 2, context 16, 8 new tokens")
    args = parser.parse_args(argv)
    if args.tiny:
        args.batch, args.context, args.new_tokens, args.layers, args.mlp, args.vocab = 2, 16, 8, 2, 128, 256
        args.device, args.dtype = "cpu", "float32"
    args.dtype = args.dtype or ("bfloat16" if args.device.startswith("cuda") else "float32")
    args.impls = args.impls.split(",")
    unknown = [impl for impl in args.impls if impl not in IMPLS]
    if unknown or not args.impls or len(set(args.impls)) != len(args.impls):
        parser.error(f"--impls: expected distinct names among {', '.join(IMPLS)}, given {','.join(args.impls)}")
    if args.new_tokens < 2:
        parser.error(f"--new-tokens: expected 2 or more (decode is timed from the first step to the last), "
                     f"given {args.new_tokens}")
    return args


def main(argv=None):
    """Runs the comparison, prints the rows and the table, and returns the rows."""
    args = parse_args(argv)
    model = build_model(args)
    ids = torch.randint(1, args.vocab, (args.batch, args.context), device=args.device)  # [b, context]
    rows, tokens = [], {}
    with torch.no_grad():
        for impl in args.impls:
            model.config._attn_implementation = "eager" if impl == "openmla" else impl
            if impl == "openmla":
                openmla.hf.patch(model)
            tokens[impl], row = run(model, ids, args, impl)
            if impl == "openmla":
                openmla.hf.unpatch(model)
            rows.append(row)
            if args.device.startswith("cuda"):
                torch.cuda.empty_cache()
    reference = args.impls[0]
    for row in rows:
        same = tokens[row["impl"]] == tokens[reference]  # [b, new_tokens]
        differs = (~same).any(dim=0).nonzero()
        row["reference"] = reference
        row["same_tokens_as_reference"] = round(same.float().mean().item(), 4)
        row["first_step_differing"] = int(differs[0]) if len(differs) else None
        print(json.dumps(row))
    print(f"\n| attention | batch | context | decode tok/s | prefill s | KV bytes/token/layer | attention share "
          f"| peak GB | same tokens as {reference} | first step differing |\n|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['impl']} | {r['batch']} | {r['context']} | {r['decode_tokens_per_s']} | {r['prefill_s']} | "
              f"{r['kv_bytes_per_token']} | {r['attention_share']:.0%} | {r['peak_memory_gb']} | "
              f"{r['same_tokens_as_reference']:.0%} | {r['first_step_differing']} |")
    openmla_row = next((r for r in rows if r["impl"] == "openmla"), None)
    if args.dtype == "float32" and openmla_row is not None and openmla_row["first_step_differing"] is not None:
        raise SystemExit(f"generate.py: openmla's fp32 tokens differ from {reference}'s")
    return rows


if __name__ == "__main__":
    main()
