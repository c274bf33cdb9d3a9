"""openmla.write_cache through NumPy (CPU backend): each token's [kv_c, k_pe] lands bit for bit in its
slot's row and nothing else changes; negative slots are skipped; strided views; zero tokens; the
errors (nothing written); the status array helpers."""

import numpy as np
import pytest

import openmla

CANARY = 0xCAFE


def make_write(tokens, d_v=32, d_rope=8, num_blocks=3, page_size=4, seed=0, dtype=np.float16):
    """kv_c [tokens, d_v], k_pe [tokens, d_rope] of random bits (NaN patterns included), a canary-filled
    cache [num_blocks, page_size, 1, d_v + d_rope] and distinct random slots [tokens] int64."""
    rng = np.random.default_rng(seed)
    kv_c = rng.integers(0, 2**16, (tokens, d_v), dtype=np.uint16).view(dtype)
    k_pe = rng.integers(0, 2**16, (tokens, d_rope), dtype=np.uint16).view(dtype)
    k_cache = np.full((num_blocks, page_size, 1, d_v + d_rope), CANARY, np.uint16).view(dtype)
    slots = rng.permutation(num_blocks * page_size)[:tokens].astype(np.int64)
    return kv_c, k_pe, k_cache, slots


def expected(kv_c, k_pe, k_cache, slots):
    """The cache a write must leave, as uint16 bits."""
    want = k_cache.view(np.uint16).copy()
    page_size = k_cache.shape[1]
    for t, s in enumerate(slots):
        if 0 <= s < k_cache.shape[0] * page_size:
            want[s // page_size, s % page_size, 0] = np.concatenate([kv_c[t].view(np.uint16), k_pe[t].view(np.uint16)])
    return want


def test_writes_each_token_into_its_slot_and_nothing_else():
    kv_c, k_pe, k_cache, slots = make_write(7)
    want = expected(kv_c, k_pe, k_cache, slots)
    assert openmla.write_cache(kv_c, k_pe, k_cache, slots) is None
    assert np.array_equal(k_cache.view(np.uint16), want)


def test_deepseek_rows_in_bfloat16():
    bf16 = pytest.importorskip("ml_dtypes", reason="ml_dtypes not installed: no NumPy bfloat16").bfloat16
    kv_c, k_pe, k_cache, slots = make_write(40, d_v=512, d_rope=64, num_blocks=2, page_size=64, dtype=bf16)
    want = expected(kv_c, k_pe, k_cache, slots)
    openmla.write_cache(kv_c, k_pe, k_cache, slots)
    assert np.array_equal(k_cache.view(np.uint16), want)


def test_negative_slots_are_skipped():
    kv_c, k_pe, k_cache, _ = make_write(5)
    slots = np.array([-1, 6, -100, 0, -(2**63)], np.int64)
    before = k_cache.view(np.uint16).copy()
    openmla.write_cache(kv_c, k_pe, k_cache, slots)
    changed = (k_cache.view(np.uint16) != before).any(axis=(2, 3)).reshape(-1)  # [slots]
    assert set(np.flatnonzero(changed)) == {6, 0}
    assert np.array_equal(k_cache.view(np.uint16), expected(kv_c, k_pe, k_cache, slots))


def test_strided_views():
    """kv_c and k_pe as column slices of one [tokens, d_v + d_rope] projection, slot_mapping strided."""
    kv_c, k_pe, k_cache, slots = make_write(6)
    joined = np.concatenate([kv_c, k_pe], axis=1)
    wide_slots = np.repeat(slots, 2)[::2]
    want = expected(kv_c, k_pe, k_cache, slots)
    openmla.write_cache(joined[:, :32], joined[:, 32:], k_cache, wide_slots)
    assert np.array_equal(k_cache.view(np.uint16), want)


def test_zero_tokens():
    kv_c, k_pe, k_cache, slots = make_write(0)
    before = k_cache.copy()
    openmla.write_cache(kv_c, k_pe, k_cache, slots)
    assert np.array_equal(k_cache.view(np.uint16), before.view(np.uint16))


def test_slot_past_the_cache_raises_naming_the_token_and_writes_nothing():
    kv_c, k_pe, k_cache, slots = make_write(4)
    slots[2] = 12  # num_blocks * page_size
    before = k_cache.view(np.uint16).copy()
    with pytest.raises(ValueError, match=r"^openmla: slot_mapping\[2\]: expected a slot below num_blocks \* "
                                         r"page_size = 12, or a negative one \(skip\), given 12$"):
        openmla.write_cache(kv_c, k_pe, k_cache, slots)
    assert np.array_equal(k_cache.view(np.uint16), before)


@pytest.mark.parametrize(
    "change, error, message",
    [
        (lambda a: {"slot_mapping": a["slot_mapping"].astype(np.int32)}, ValueError,
         "openmla: slot_mapping: expected dtype int64, given int32"),
        (lambda a: {"kv_c": a["kv_c"].astype(np.float32)}, ValueError,
         "openmla: kv_c: expected dtype fp16, given fp32"),
        (lambda a: {"k_pe": a["k_pe"].astype(np.float64)}, TypeError,
         r"openmla: k_pe: expected dtype bfloat16 or float16 \(float32 too on the CPU\), given float64"),
        (lambda a: {"k_pe": a["k_pe"][:, :7]}, ValueError,
         r"openmla: k_cache.size\(3\): expected 39 \(kv_c.size\(1\) \+ k_pe.size\(1\)\), given 40"),
        (lambda a: {"k_cache": a["k_cache"].reshape(3, 4, 40)}, ValueError,
         r"openmla: k_cache: expected rank 4 \[num_blocks, page_size, h_kv, d_qk\], given rank 3"),
        (lambda a: {"slot_mapping": a["slot_mapping"][:3]}, ValueError,
         r"openmla: slot_mapping.size\(0\): expected 4 \(tokens from kv_c\), given 3"),
        (lambda a: {"kv_c": a["kv_c"].tolist()}, TypeError,
         "openmla: kv_c: expected a numpy.ndarray, torch.Tensor or cupy.ndarray"),
        (lambda a: {"kv_c": a["k_cache"][0, :4, 0, :32]}, ValueError,
         "openmla: k_cache: expected memory that no input or other output shares, given memory overlapping kv_c"),
    ],
)
def test_errors_write_nothing(change, error, message):
    kv_c, k_pe, k_cache, slots = make_write(4)
    args = {"kv_c": kv_c, "k_pe": k_pe, "k_cache": k_cache, "slot_mapping": slots}
    args.update(change(args))
    before = k_cache.view(np.uint16).copy()
    with pytest.raises(error, match=f"^{message}"):
        openmla.write_cache(args["kv_c"], args["k_pe"], args["k_cache"], args["slot_mapping"])
    assert np.array_equal(k_cache.view(np.uint16), before)


def test_read_only_cache_is_refused():
    kv_c, k_pe, k_cache, slots = make_write(2)
    k_cache.flags.writeable = False
    with pytest.raises(ValueError, match="^openmla: k_cache: expected a writable array, given a read-only one$"):
        openmla.write_cache(kv_c, k_pe, k_cache, slots)


def test_status_array_is_ok_and_left_alone_on_the_cpu():
    kv_c, k_pe, k_cache, slots = make_write(3)
    status = openmla.write_cache_status(k_cache)
    assert isinstance(status, np.ndarray) and status.dtype == np.uint8
    before = status.copy()
    openmla.write_cache(kv_c, k_pe, k_cache, slots, status=status)
    assert np.array_equal(status, before)
    openmla.check_status(status)
    openmla.reset_status(status)
    openmla.check_status(status)


def test_status_array_too_small():
    kv_c, k_pe, k_cache, slots = make_write(3)
    with pytest.raises(ValueError, match=r"^openmla: status: expected >= 259 bytes \(openmla.write_cache_status\), "
                                         r"given 2 bytes$"):
        openmla.write_cache(kv_c, k_pe, k_cache, slots, status=np.zeros(2, np.uint8))
