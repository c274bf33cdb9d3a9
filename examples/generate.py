"""Generation with a Hugging Face DeepSeek-V3 model on openmla against transformers' own attention.

Builds a random-weight DeepseekV3ForCausalLM with DeepSeek-V3's attention dimensions (128 heads,
q_lora_rank 1536, kv_lora_rank 512, qk_rope 64, qk_nope 128, v_head 128; hidden 7168), a few layers and
a small dense MLP, prefills a batch of prompts and decodes, and prints for transformers' eager and sdpa
attention (with their own cache) and for openmla (openmla.hf.patch): decode tokens/s, prefill seconds,
KV-cache bytes per token, the share of the time spent in attention, and agreement with eager's tokens.
One JSON line per run, then a Markdown table.

    python examples/generate.py --device cuda --dtype bfloat16 --batch 16 --context 1024
    python examples/generate.py --tiny        # a tiny fp32 CPU model: openmla must give eager's tokens

Exits 1 when an fp32 run's tokens differ from eager's (bf16 runs may part where two logits nearly tie).
"""

import argparse
import json
import time

import torch
import transformers

import openmla.hf

V3_ATTENTION = dict(hidden_size=7168, num_attention_heads=128, q_lora_rank=1536, kv_lora_rank=512,
                    qk_rope_head_dim=64, qk_nope_head_dim=128, v_head_dim=128)
TINY_ATTENTION = dict(hidden_size=64, num_attention_heads=4, q_lora_rank=32, kv_lora_rank=32, qk_rope_head_dim=16,
                      qk_nope_head_dim=16, v_head_dim=16)


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


def generate(model, ids, new_tokens):
    return model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=new_tokens,
                          min_new_tokens=new_tokens, do_sample=False, return_dict_in_generate=True)


def run(model, ids, args, impl):
    """Prefill alone, then prefill and decode; a third, synchronized run measures the attention share."""
    generate(model, ids[:, :8], 2)  # warm-up
    sync(args.device)
    start = time.perf_counter()
    generate(model, ids, 1)
    sync(args.device)
    prefill = time.perf_counter() - start
    start = time.perf_counter()
    out = generate(model, ids, args.new_tokens)
    sync(args.device)
    total = time.perf_counter() - start
    timer = AttentionTimer(model, args.device)
    start = time.perf_counter()
    generate(model, ids, args.new_tokens)
    timed = time.perf_counter() - start
    timer.remove()
    batch, context = ids.shape
    cached = batch * (context + args.new_tokens - 1)  # tokens in the cache at the end
    kv_bytes = cache_bytes(out.past_key_values if hasattr(out, "past_key_values") else out.cache)
    if impl == "openmla":
        kv_bytes += model._openmla_patch.session.paged.bytes_per_token * cached
    return out.sequences[:, context:], {
        "impl": impl, "batch": batch, "context": context, "new_tokens": args.new_tokens, "layers": args.layers,
        "device": args.device, "dtype": args.dtype, "prefill_s": round(prefill, 4),
        "decode_tokens_per_s": round(batch * (args.new_tokens - 1) / max(total - prefill, 1e-9), 1),
        "kv_bytes_per_token": round(kv_bytes / cached / args.layers, 1),
        "attention_share": round(timer.seconds / timed, 3)}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--context", type=int, default=1024, help="prompt tokens per sequence")
    parser.add_argument("--new-tokens", type=int, default=64)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--mlp", type=int, default=1024, help="dense MLP width")
    parser.add_argument("--vocab", type=int, default=1024)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--dtype", default=None, choices=["bfloat16", "float16", "float32"],
                        help="default: bfloat16 on CUDA, float32 on the CPU")
    parser.add_argument("--tiny", action="store_true", help="tiny fp32 CPU model, batch 2, context 16, 8 new tokens")
    args = parser.parse_args()
    if args.tiny:
        args.batch, args.context, args.new_tokens, args.layers, args.mlp, args.vocab = 2, 16, 8, 2, 128, 256
        args.device, args.dtype = "cpu", "float32"
    args.dtype = args.dtype or ("bfloat16" if args.device.startswith("cuda") else "float32")

    model = build_model(args)
    ids = torch.randint(1, args.vocab, (args.batch, args.context), device=args.device)  # [b, context]
    rows, tokens = [], {}
    with torch.no_grad():
        for impl in ("eager", "sdpa", "openmla"):
            model.config._attn_implementation = "eager" if impl == "openmla" else impl
            if impl == "openmla":
                openmla.hf.patch(model)
            tokens[impl], row = run(model, ids, args, impl)
            rows.append(row)
    openmla.hf.unpatch(model)
    for row in rows:
        same = tokens[row["impl"]] == tokens["eager"]  # [b, new_tokens]
        differs = (~same).any(dim=0).nonzero()
        row["same_tokens_as_eager"] = round(same.float().mean().item(), 4)
        row["first_step_differing"] = int(differs[0]) if len(differs) else None
        print(json.dumps(row))
    print("\n| attention | batch | context | decode tok/s | prefill s | KV bytes/token/layer | attention share "
          "| same tokens as eager |\n|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['impl']} | {r['batch']} | {r['context']} | {r['decode_tokens_per_s']} | {r['prefill_s']} | "
              f"{r['kv_bytes_per_token']} | {r['attention_share']:.0%} | {r['same_tokens_as_eager']:.0%} |")
    if args.dtype == "float32" and rows[-1]["first_step_differing"] is not None:
        raise SystemExit("generate.py: openmla's fp32 tokens differ from eager's")


if __name__ == "__main__":
    main()
