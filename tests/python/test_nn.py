"""openmla.nn on the CPU: RoPE and softmax scale as Hugging Face's DeepSeek defines them, one MLAAttention
layer against transformers' own (prefill and decode over a PagedLatentCache), and the cache's bookkeeping."""

import math

import pytest

torch = pytest.importorskip("torch", reason="PyTorch is not installed: openmla.nn tests skipped")
pytest.importorskip("transformers", reason="transformers is not installed: openmla.nn tests skipped")

from hf_models import YARN, make_model  # noqa: E402
from openmla.nn import MLAAttention, PagedLatentCache, RotaryEmbedding, softmax_scale  # noqa: E402

# fp32 layer outputs: the absorbed form reassociates the products (q W_UK) c vs q (W_UK c) and SDPA
# sums in another order than eager attention, so a few fp32 ulps of the outputs' scale (~0.1) differ.
ATOL, RTOL = 2e-6, 1e-5


def test_yarn_rope_and_scale_match_transformers():
    model = make_model("v3-yarn-no-interleave")
    hf_rope = model.model.rotary_emb
    rope = RotaryEmbedding(16, base=10000.0, scaling=YARN)
    torch.testing.assert_close(rope.inv_freq, hf_rope.inv_freq, atol=0, rtol=1e-6)
    assert rope.attention_scaling == pytest.approx(hf_rope.attention_scaling)
    attention = model.model.layers[0].self_attn
    assert softmax_scale(32, YARN) == pytest.approx(attention.scaling, rel=1e-12)
    assert softmax_scale(32, YARN) != pytest.approx(1 / math.sqrt(32))  # the YaRN correction is there


@pytest.mark.parametrize("name", ["v3", "v3-yarn-no-interleave", "v2-no-q-lora", "v2-yarn"])
def test_layer_prefill_and_decode_match_the_hf_layer(name):
    """Prefill 5 tokens, then decode 1, 1 and 3 (causal MTP) over the paged cache: each output equals the
    transformers layer run on the whole sequence at once (no cache), position by position."""
    model = make_model(name)
    hf_attention = model.model.layers[0].self_attn
    layer = MLAAttention.from_hf(hf_attention)
    assert layer.kv_b_proj.weight.data_ptr() == hf_attention.kv_b_proj.weight.data_ptr()  # shared, not copied
    b, total = 2, 10
    x = torch.randn(b, total, 64) * 0.5  # [b, total, hidden]
    positions = torch.arange(total).expand(b, total)  # [b, total]
    hf_rope = model.model.rotary_emb(x, positions)
    with torch.no_grad():
        mask = torch.full((total, total), float("-inf")).triu(1)[None, None]  # [1, 1, total, total]
        expected, _ = hf_attention(hidden_states=x, position_embeddings=hf_rope, attention_mask=mask)
        rope = RotaryEmbedding(16, scaling=model.config.rope_parameters if "yarn" in name else None)
        cache = PagedLatentCache(1, b, dtype=torch.float32, device="cpu", num_pages=1, page_size=4, d_latent=32,
                                 d_rope=16, num_heads=4)
        start = 0
        for s in (5, 1, 1, 3):
            cache.begin_step(torch.ones(b, s, dtype=torch.bool))
            out = layer(x[:, start : start + s], rope(positions[:, start : start + s]), cache=cache)
            torch.testing.assert_close(out, expected[:, start : start + s], atol=ATOL, rtol=RTOL)
            start += s
        assert cache.lengths == [total, total]


def test_cache_places_tokens_skips_padding_and_frees_pages():
    cache = PagedLatentCache(2, 2, dtype=torch.float32, device="cpu", num_pages=2, page_size=4, d_latent=8,
                             d_rope=4, num_heads=2)
    valid = torch.tensor([[False, False, True, True, True, True, True], [True] * 7])  # [2, 7]
    step = cache.begin_step(valid)
    assert step.prefill and cache.lengths == [5, 7]
    slots = step.slot_mapping.view(2, 7)
    assert (slots[0, :2] == -1).all() and (slots >= 0).sum() == 12
    assert len(set(slots[slots >= 0].tolist())) == 12  # every real token has its own slot
    assert cache.pool.shape[1] == 4  # grown from 2 pages: 2 + 2 pages needed
    kv_c = torch.arange(14 * 8, dtype=torch.float32).view(2, 7, 8)  # [b, s, d_latent]
    k_pe = -torch.arange(14 * 4, dtype=torch.float32).view(2, 7, 4)  # [b, s, d_rope]
    cache.write(1, kv_c, k_pe)
    flat = cache.k_cache(1).view(-1, 12)  # [slots, d_qk]
    torch.testing.assert_close(flat[slots[1, 6]], torch.cat([kv_c[1, 6], k_pe[1, 6]]))
    step = cache.begin_step(torch.tensor([[True], [True]]))
    assert not step.prefill and step.cache_seqlens.tolist() == [6, 8] and step.plan is not None
    with pytest.raises(ValueError, match=r"valid\[0\]: expected all or none of the 2 new tokens"):
        cache.begin_step(torch.tensor([[True, False], [True, True]]))
    cache.free([1])
    assert cache.lengths == [6, 0]
    step = cache.begin_step(torch.tensor([[True], [False]]))  # a freed sequence gets no slot
    assert step.cache_seqlens.tolist() == [7, 0] and step.slot_mapping.tolist()[1] == -1
    torch.testing.assert_close(cache.k_cache(1).view(-1, 12)[slots[0, 2]], torch.cat([kv_c[0, 2], k_pe[0, 2]]))
    assert cache.bytes_per_token == 2 * 12 * 4
