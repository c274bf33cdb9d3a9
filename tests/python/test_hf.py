"""openmla.hf on the CPU in fp32: patched DeepSeek-V2/V3 models give the unpatched eager model's logits and
exactly its tokens (greedy and seeded sampling) for a left-padded batch of prompts."""

import pytest

torch = pytest.importorskip("torch", reason="PyTorch is not installed: openmla.hf tests skipped")
pytest.importorskip("transformers", reason="transformers is not installed: openmla.hf tests skipped")

import openmla.hf  # noqa: E402
from hf_models import CONFIGS, left_padded_batch, make_model  # noqa: E402

# fp32 logits (scale ~1): SDPA and the absorbed decode sum in other orders than eager attention.
ATOL, RTOL = 1e-5, 1e-5
NEW_TOKENS = 32


def real_logits(logits, mask):
    """The logits of real (not padding) positions: [tokens, vocab]."""
    return logits[mask.bool()]


@pytest.mark.parametrize("name", list(CONFIGS))
def test_logits_and_greedy_tokens_match_eager(name):
    model = make_model(name)
    ids, mask = left_padded_batch()
    with torch.no_grad():
        expected_logits = model(input_ids=ids, attention_mask=mask).logits  # [b, T, vocab]
        expected = model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=NEW_TOKENS, do_sample=False)
        openmla.hf.patch(model)
        logits = model(input_ids=ids, attention_mask=mask).logits  # [b, T, vocab]
        tokens = model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=NEW_TOKENS, do_sample=False)
    torch.testing.assert_close(real_logits(logits, mask), real_logits(expected_logits, mask), atol=ATOL, rtol=RTOL)
    assert tokens.shape == (3, ids.shape[1] + NEW_TOKENS)
    assert torch.equal(tokens, expected)
    session = model._openmla_patch.session
    assert session.paged.lengths == (mask.sum(1) + NEW_TOKENS - 1).tolist()  # padding never entered the cache


def test_sampling_and_a_second_generation_match_eager():
    model = make_model("v3")
    ids, mask = left_padded_batch(lengths=(7, 3))
    sample = dict(max_new_tokens=NEW_TOKENS, do_sample=True, temperature=1.0, top_k=0, top_p=1.0)
    with torch.no_grad():
        torch.manual_seed(5)
        expected = model.generate(input_ids=ids, attention_mask=mask, **sample)
        expected_greedy = model.generate(input_ids=ids[:1], max_new_tokens=8, do_sample=False)
        openmla.hf.patch(model)
        torch.manual_seed(5)
        tokens = model.generate(input_ids=ids, attention_mask=mask, **sample)
        greedy = model.generate(input_ids=ids[:1], max_new_tokens=8, do_sample=False)  # another batch, no mask
    assert torch.equal(tokens, expected)
    assert torch.equal(greedy, expected_greedy)


def test_patch_shares_weights_and_unpatch_restores():
    model = make_model("v2-no-q-lora")
    original = model.model.layers[1].self_attn
    keys = set(model.state_dict())
    openmla.hf.patch(model)
    patched = model.model.layers[1].self_attn
    assert patched is not original and set(model.state_dict()) == keys
    assert patched.q_proj.weight is original.q_proj.weight
    with pytest.raises(ValueError, match="expected a model that is not patched yet"):
        openmla.hf.patch(model)
    openmla.hf.unpatch(model)
    assert model.model.layers[1].self_attn is original
    with pytest.raises(ValueError, match="expected a model patched by openmla.hf.patch"):
        openmla.hf.unpatch(model)


def test_unsupported_models_are_refused_at_patch_time():
    model = make_model("v3").double()
    with pytest.raises(TypeError, match="model dtype: expected bfloat16 or float16 or float32 on cpu, given float64"):
        openmla.hf.patch(model)
    model = make_model("v3")
    model.model.layers[1].self_attn = torch.nn.Identity()
    with pytest.raises(TypeError, match=r"model.layers\[1\].self_attn: expected DeepseekV3Attention or "
                                        r"DeepseekV2Attention, given Identity"):
        openmla.hf.patch(model)
    with pytest.raises(TypeError, match="model: expected a transformers DeepseekV3ForCausalLM"):
        openmla.hf.patch(torch.nn.Linear(2, 2))


def test_a_cache_filled_before_patch_is_refused():
    model = make_model("v3")
    ids, mask = left_padded_batch(lengths=(4, 4))
    with torch.no_grad():
        cache = model(input_ids=ids, attention_mask=mask, use_cache=True).past_key_values
        openmla.hf.patch(model)
        with pytest.raises(ValueError, match="given one holding 4 tokens that openmla did not place"):
            model(input_ids=ids[:, -1:], attention_mask=torch.ones(2, 5, dtype=torch.long), past_key_values=cache)
