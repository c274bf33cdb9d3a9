"""FlashMLA's two call patterns on the CPU backend, with NumPy arrays and (when installed) torch tensors:
the tuple form get_mla_metadata(cache_seqlens, s_q * h_q // h_kv, h_kv) and the argument-less form
get_mla_metadata() -> (FlashMLASchedMeta, None) with its consistency checks, and FlashMLA's arguments
that openmla does not serve yet."""

import numpy as np
import pytest

import openmla
from mla_reference import assert_close, make_case, reference
from openmla import FlashMLASchedMeta, flash_mla_with_kvcache, get_mla_metadata

D_V = 32


def numpy_case(b=2, s_q=2, h_q=8, h_kv=1, seqlens=(33, 90), page_size=16, seed=0):
    case = make_case(b, s_q, h_q, h_kv, list(seqlens), page_size=page_size, seed=seed)
    return (case["q"].astype(np.float16), case["k_cache"].astype(np.float16), case["block_table"],
            case["cache_seqlens"])


def torch_case(**kwargs):
    torch = pytest.importorskip("torch", reason="PyTorch is not installed: torch FlashMLA tests skipped")
    return tuple(torch.from_numpy(x) for x in numpy_case(**kwargs))


def to_numpy(x):
    return x.float().numpy() if hasattr(x, "numpy") and not isinstance(x, np.ndarray) else np.asarray(x, np.float64)


def check(out, lse, q, k_cache, block_table, cache_seqlens, causal):
    ref_out, ref_lse = reference(to_numpy(q), to_numpy(k_cache), np.asarray(block_table), np.asarray(cache_seqlens),
                                 D_V, causal=causal)
    assert_close(to_numpy(out), to_numpy(lse), ref_out, ref_lse)


@pytest.fixture(params=["numpy", "torch"])
def make(request):
    return numpy_case if request.param == "numpy" else torch_case


def test_tuple_form(make):
    q, k_cache, block_table, cache_seqlens = make()
    tile_scheduler_metadata, num_splits = get_mla_metadata(cache_seqlens, 2 * 8 // 1, 1)
    for causal in (False, True):
        out, lse = flash_mla_with_kvcache(q, k_cache, block_table, cache_seqlens, D_V, tile_scheduler_metadata,
                                          num_splits, causal=causal)
        check(out, lse, q, k_cache, block_table, cache_seqlens, causal)


def test_tuple_form_with_later_keywords(make):
    """FlashMLA's 2025 signature: num_heads_q, and is_fp8_kvcache / topk at their defaults."""
    q, k_cache, block_table, cache_seqlens = make()
    metadata = get_mla_metadata(cache_seqlens, 16, 1, num_heads_q=8, is_fp8_kvcache=False, topk=None)
    out, lse = flash_mla_with_kvcache(q, k_cache, block_table, cache_seqlens, D_V, *metadata, is_fp8_kvcache=False)
    check(out, lse, q, k_cache, block_table, cache_seqlens, False)


def test_sched_meta_form_fills_on_first_use(make):
    q, k_cache, block_table, cache_seqlens = make()
    sched_meta, placeholder = get_mla_metadata()
    assert isinstance(sched_meta, FlashMLASchedMeta) and placeholder is None
    assert sched_meta.plan is None and sched_meta.config is None
    out, lse = flash_mla_with_kvcache(q, k_cache, block_table, cache_seqlens, D_V, sched_meta, None, causal=True)
    check(out, lse, q, k_cache, block_table, cache_seqlens, True)
    first_plan = sched_meta.plan
    assert first_plan is not None and sched_meta.config.b == 2 and sched_meta.config.causal
    for layer in range(1, 3):  # later layers reuse the plan
        k_layer = k_cache * (layer + 1)
        out, lse = flash_mla_with_kvcache(q, k_layer, block_table, cache_seqlens, D_V, sched_meta, None,
                                          causal=True)
        assert sched_meta.plan is first_plan
        check(out, lse, q, k_layer, block_table, cache_seqlens, True)


def test_sched_meta_form_by_keyword(make):
    """Every argument by FlashMLA's keyword names."""
    q, k_cache, block_table, cache_seqlens = make()
    sched_meta, num_splits = get_mla_metadata()
    out, lse = flash_mla_with_kvcache(q=q, k_cache=k_cache, block_table=block_table, cache_seqlens=cache_seqlens,
                                      head_dim_v=D_V, tile_scheduler_metadata=sched_meta, num_splits=num_splits,
                                      softmax_scale=0.2)
    ref_out, ref_lse = reference(to_numpy(q), to_numpy(k_cache), np.asarray(block_table), np.asarray(cache_seqlens),
                                 D_V, softmax_scale=0.2)
    assert_close(to_numpy(out), to_numpy(lse), ref_out, ref_lse)


@pytest.mark.parametrize(
    "change, message",
    [
        (dict(b=3, seqlens=(33, 90, 7)), r"q.size\(0\) \(b\): expected 2, as in the first call with this "
                                         r"FlashMLASchedMeta, given 3"),
        (dict(s_q=1), r"q.size\(1\) \(s_q\): expected 2, as in the first call .* given 1"),
        (dict(h_q=16), r"q.size\(2\) \(h_q\): expected 8, as in the first call .* given 16"),
        (dict(h_kv=2), r"k_cache.size\(2\) \(h_kv\): expected 1, as in the first call .* given 2"),
        (dict(page_size=32), r"k_cache.size\(1\) \(page_size\): expected 16, as in the first call .* given 32"),
        (dict(causal=True), r"causal: expected False, as in the first call .* given True"),
    ],
)
def test_sched_meta_form_checks_later_calls(make, change, message):
    sched_meta, _ = get_mla_metadata()
    flash_mla_with_kvcache(*make(), D_V, sched_meta, None)
    change = dict(change)
    causal = change.pop("causal", False)
    q, k_cache, block_table, cache_seqlens = make(**change)
    with pytest.raises(ValueError, match="^openmla: " + message):
        flash_mla_with_kvcache(q, k_cache, block_table, cache_seqlens, D_V, sched_meta, None, causal=causal)


def test_sched_meta_form_refuses_other_lengths(make):
    """A FlashMLASchedMeta serves one step's lengths: lengths with other tile counts are refused by decode."""
    sched_meta, _ = get_mla_metadata()
    q, k_cache, block_table, cache_seqlens = make(seqlens=(33, 200))
    flash_mla_with_kvcache(q, k_cache, block_table, cache_seqlens, D_V, sched_meta, None)
    other = cache_seqlens.copy() if isinstance(cache_seqlens, np.ndarray) else cache_seqlens.clone()
    other[1] = 100  # 4 tiles of 64 keys -> 2
    with pytest.raises(ValueError, match="^openmla: plan"):
        flash_mla_with_kvcache(q, k_cache, block_table, other, D_V, sched_meta, None)


def test_failed_first_call_leaves_sched_meta_empty(make):
    q, k_cache, block_table, cache_seqlens = make()
    sched_meta, _ = get_mla_metadata()
    with pytest.raises(ValueError, match="d_v"):
        flash_mla_with_kvcache(q, k_cache, block_table, cache_seqlens, 10**6, sched_meta, None)
    assert sched_meta.config is None and sched_meta.plan is None
    out, lse = flash_mla_with_kvcache(q, k_cache, block_table, cache_seqlens, D_V, sched_meta, None)
    check(out, lse, q, k_cache, block_table, cache_seqlens, False)


def test_tuple_form_metadata_with_none_placeholder(make):
    """Code written for FlashMLA's current API passes None for num_splits whatever get_mla_metadata got;
    with the tuple form's plan buffer, num_splits is found inside it."""
    q, k_cache, block_table, cache_seqlens = make()
    tile_scheduler_metadata, _ = get_mla_metadata(cache_seqlens, 16, 1)
    out, lse = flash_mla_with_kvcache(q, k_cache, block_table, cache_seqlens, D_V, tile_scheduler_metadata, None)
    check(out, lse, q, k_cache, block_table, cache_seqlens, False)
    foreign = np.zeros((132, 8), np.int32)  # FlashMLA's own metadata: [num_sm_parts, 8]
    if not isinstance(q, np.ndarray):
        foreign = pytest.importorskip("torch").from_numpy(foreign)
    with pytest.raises(ValueError, match="^openmla: plan"):
        flash_mla_with_kvcache(q, k_cache, block_table, cache_seqlens, D_V, foreign, None)


def test_mixed_forms_are_refused(make):
    q, k_cache, block_table, cache_seqlens = make()
    tile_scheduler_metadata, num_splits = get_mla_metadata(cache_seqlens, 16, 1)
    sched_meta, _ = get_mla_metadata()
    with pytest.raises(ValueError, match="^openmla: num_splits: expected None with a FlashMLASchedMeta"):
        flash_mla_with_kvcache(q, k_cache, block_table, cache_seqlens, D_V, sched_meta, num_splits)
    with pytest.raises(TypeError, match="^openmla: cache_seqlens: expected an int32 .b. array with num_heads_k"):
        get_mla_metadata(num_heads_k=1)


UNSERVED = [
    ("indices", np.zeros((2, 2, 64), np.int32)),
    ("attn_sink", np.zeros(8, np.float32)),
    ("extra_k_cache", np.zeros((4, 16, 1, 64), np.float16)),
    ("extra_indices_in_kvcache", np.zeros((2, 2, 64), np.int32)),
    ("topk_length", np.zeros(2, np.int32)),
    ("extra_topk_length", np.zeros(2, np.int32)),
]


@pytest.mark.parametrize("name, value", UNSERVED)
@pytest.mark.parametrize("form", ["tuple", "sched_meta"])
def test_unserved_decode_arguments(name, value, form):
    q, k_cache, block_table, cache_seqlens = numpy_case()
    metadata = get_mla_metadata(cache_seqlens, 16, 1) if form == "tuple" else get_mla_metadata()
    with pytest.raises(NotImplementedError, match=f"^openmla: {name}: not supported yet"):
        flash_mla_with_kvcache(q, k_cache, block_table, cache_seqlens, D_V, *metadata, **{name: value})
    if form == "sched_meta":
        assert metadata[0].config is None


@pytest.mark.parametrize("name, value", [("topk", 2048)])
def test_unserved_metadata_arguments(name, value):
    cache_seqlens = np.array([33, 90], np.int32)
    with pytest.raises(NotImplementedError, match=f"^openmla: {name}: not supported yet"):
        get_mla_metadata(cache_seqlens, 16, 1, **{name: value})
    with pytest.raises(NotImplementedError, match=f"^openmla: {name}: not supported yet"):
        get_mla_metadata(**{name: value})


def test_exported_names():
    assert openmla.FlashMLASchedMeta is FlashMLASchedMeta
    assert {"FlashMLASchedMeta", "get_mla_metadata", "flash_mla_with_kvcache"} <= set(openmla.__all__)
