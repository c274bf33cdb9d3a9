"""openmla.write_cache on torch tensors: CPU (the op openmla::write_cache_, opcheck, torch.compile with
fullgraph, the call openmla.nn makes) and, when a GPU is present, CUDA (bitwise equality with the CPU
backend, the caller's stream, an out-of-range slot reported in the status array with its token and
never written, a CUDA graph, tokens = 0)."""

import pytest

torch = pytest.importorskip("torch", reason="PyTorch is not installed: torch write_cache tests skipped")

import openmla  # noqa: E402

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device: torch CUDA write_cache "
                                                                       "test skipped")
CANARY = -12345  # as int16 bits


def make_write(tokens, d_v=512, d_rope=64, num_blocks=4, page_size=64, dtype=torch.bfloat16, device="cpu", seed=0):
    """Random kv_c [tokens, d_v] and k_pe [tokens, d_rope] bits, a canary cache [num_blocks, page_size,
    1, d_v + d_rope] and distinct random slots [tokens] int64."""
    g = torch.Generator().manual_seed(seed)
    kv_c = torch.randint(-2**15, 2**15, (tokens, d_v), generator=g, dtype=torch.int16).view(dtype)
    k_pe = torch.randint(-2**15, 2**15, (tokens, d_rope), generator=g, dtype=torch.int16).view(dtype)
    k_cache = torch.full((num_blocks, page_size, 1, d_v + d_rope), CANARY, dtype=torch.int16).view(dtype)
    slots = torch.randperm(num_blocks * page_size, generator=g)[:tokens]
    return kv_c.to(device), k_pe.to(device), k_cache.to(device), slots.to(device)


def expected(kv_c, k_pe, k_cache, slots):
    """The cache a write must leave, as int16 bits on the CPU."""
    want = k_cache.cpu().view(torch.int16).clone()
    page_size = k_cache.shape[1]
    rows = torch.cat([kv_c.cpu().view(torch.int16), k_pe.cpu().view(torch.int16)], dim=1)
    for t, s in enumerate(slots.cpu().tolist()):
        if 0 <= s < k_cache.shape[0] * page_size:
            want[s // page_size, s % page_size, 0] = rows[t]
    return want


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_cpu_tensors(dtype):
    kv_c, k_pe, k_cache, slots = make_write(50, dtype=dtype)
    slots[3] = -1
    want = expected(kv_c, k_pe, k_cache, slots)
    openmla.write_cache(kv_c, k_pe, k_cache, slots)
    assert torch.equal(k_cache.view(torch.int16), want)


def test_cpu_float32():
    """fp32 caches on the CPU (decode has them there too): rows copied exactly, padding skipped."""
    kv_c, k_pe = torch.randn(3, 8), torch.randn(3, 4)  # [tokens, d_v], [tokens, d_rope]
    k_cache = torch.zeros(2, 4, 1, 12)  # [num_blocks, page_size, 1, d_qk]
    openmla.write_cache(kv_c, k_pe, k_cache, torch.tensor([5, -1, 0]))
    flat = k_cache.view(8, 12)
    assert torch.equal(flat[5], torch.cat([kv_c[0], k_pe[0]])) and torch.equal(flat[0], torch.cat([kv_c[2], k_pe[2]]))
    assert flat.count_nonzero(dim=1).tolist() == [12, 0, 0, 0, 0, 12, 0, 0]


def test_the_call_of_openmla_nn():
    """kv_c and k_pe as slices of one projection output, a [num_blocks, page_size, 1, 576] cache."""
    latent = torch.randn(9, 576, dtype=torch.bfloat16)
    k_cache = torch.zeros(2, 16, 1, 576, dtype=torch.bfloat16)
    slot_mapping = torch.tensor([0, 1, 2, 17, 18, -1, 30, 31, 5])
    kv_c, k_pe = latent[:, :512], latent[:, 512:]
    openmla.write_cache(kv_c, k_pe, k_cache, slot_mapping)
    flat = k_cache.view(32, 576)
    for t, s in enumerate(slot_mapping.tolist()):
        if s >= 0:
            assert torch.equal(flat[s], latent[t])
    untouched = [s for s in range(32) if s not in slot_mapping.tolist()]
    assert (flat[untouched] == 0).all()


def test_opcheck():
    kv_c, k_pe, k_cache, slots = make_write(6, d_v=32, d_rope=8, num_blocks=2, page_size=4)
    torch.library.opcheck(torch.ops.openmla.write_cache_.default, (kv_c, k_pe, slots, k_cache, None))
    status = openmla.write_cache_status(k_cache)
    torch.library.opcheck(torch.ops.openmla.write_cache_.default, (kv_c, k_pe, slots, k_cache, status))


def test_compile_fullgraph():
    _, _, k_cache, slots = make_write(8, d_v=32, d_rope=8, num_blocks=3, page_size=4)
    kv_c, k_pe = torch.randn(8, 32, dtype=torch.bfloat16), torch.randn(8, 8, dtype=torch.bfloat16)
    status = openmla.write_cache_status(k_cache)

    def step(latent, rope, cache, slot_mapping):
        openmla.write_cache(latent * 2, rope, cache, slot_mapping, status=status)
        return cache.float().sum()

    eager_cache = k_cache.clone()
    want = step(kv_c, k_pe, eager_cache, slots)
    got = torch.compile(step, fullgraph=True, backend="aot_eager", dynamic=False)(kv_c, k_pe, k_cache, slots)
    assert torch.equal(k_cache.view(torch.int16), eager_cache.view(torch.int16))
    assert torch.equal(got, want)


def test_errors():
    kv_c, k_pe, k_cache, slots = make_write(4, d_v=32, d_rope=8, num_blocks=2, page_size=4)
    before = k_cache.clone()
    with pytest.raises(ValueError, match="^openmla: slot_mapping: expected dtype int64, given int32$"):
        openmla.write_cache(kv_c, k_pe, k_cache, slots.int())
    with pytest.raises(TypeError, match="^openmla: slot_mapping: expected a torch array like k_cache, given a numpy "
                                        "array$"):
        openmla.write_cache(kv_c, k_pe, k_cache, slots.numpy())
    with pytest.raises(TypeError, match=r"^openmla: kv_c: expected dtype bfloat16 or float16 \(float32 too on the "
                                        r"CPU\), given uint16$"):
        openmla.write_cache(kv_c.view(torch.uint16), k_pe, k_cache, slots)
    with pytest.raises(ValueError, match=r"^openmla: slot_mapping\[1\]: expected a slot below num_blocks \* "
                                         r"page_size = 8"):
        openmla.write_cache(kv_c, k_pe, k_cache, torch.tensor([0, 8, 1, 2]))
    with pytest.raises(ValueError, match="^openmla: kv_c: expected a CPU or CUDA tensor, given a meta tensor"):
        openmla.write_cache(kv_c.to("meta"), k_pe, k_cache, slots)
    assert torch.equal(k_cache.view(torch.int16), before.view(torch.int16))


@needs_cuda
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
@pytest.mark.parametrize("d_v, d_rope, pad", [(512, 64, 0), (512, 64, 3), (24, 5, 0)])
def test_cuda_equals_cpu_bitwise_on_a_side_stream(dtype, d_v, d_rope, pad):
    """pad > 0 makes kv_c's rows and the cache pages misaligned for 16-byte chunks (the 1-element path),
    as do odd d_v and d_rope."""
    kv_c, k_pe, k_cache, slots = make_write(300, d_v=d_v, d_rope=d_rope, num_blocks=8, page_size=64, dtype=dtype,
                                            seed=4)
    slots[::7] = -1
    want = k_cache.clone()
    openmla.write_cache(kv_c, k_pe, want, slots)
    wide = torch.zeros(300, d_v + pad, dtype=dtype, device="cuda")
    wide.view(torch.int16)[:, :d_v] = kv_c.view(torch.int16).cuda()  # bits, NaN payloads included
    pages = torch.full((8, 64 * (d_v + d_rope) + pad), CANARY, dtype=torch.int16, device="cuda").view(dtype)
    cache = pages[:, :64 * (d_v + d_rope)].view(8, 64, 1, d_v + d_rope)
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        openmla.write_cache(wide[:, :d_v], k_pe.cuda(), cache, slots.cuda())
    stream.synchronize()
    assert torch.equal(cache.cpu().view(torch.int16), want.view(torch.int16))
    assert (pages[:, 64 * (d_v + d_rope):].view(torch.int16) == CANARY).all()


@needs_cuda
def test_cuda_slot_past_the_cache_is_reported_and_never_written():
    """The cache sits between canary pages of one allocation: a slot past it must not reach them."""
    kv_c, k_pe, _, slots = make_write(64, num_blocks=2, page_size=64, device="cuda", seed=6)
    block = torch.full((4, 64, 1, 576), CANARY, dtype=torch.int16, device="cuda").view(torch.bfloat16)
    cache = block[1:3]  # pages 0 and 3 of the block are the guards
    slots[40] = 128  # the first slot past the cache: page 3's first row if it were written
    slots[9] = 2**40
    slots[50] = 129
    status = openmla.write_cache_status(cache)
    openmla.check_status(status)
    openmla.write_cache(kv_c, k_pe, cache, slots, status=status)
    with pytest.raises(ValueError, match=r"^openmla: slot_mapping \(write_cache device check, token 9\)"):
        openmla.check_status(status)
    good = slots.clone()
    good[[9, 40, 50]] = -1
    canary = torch.full((2, 64, 1, 576), CANARY, dtype=torch.int16).view(torch.bfloat16)
    assert torch.equal(cache.cpu().view(torch.int16), expected(kv_c, k_pe, canary, good))
    assert (block[0].view(torch.int16) == CANARY).all() and (block[3].view(torch.int16) == CANARY).all()
    # Sticky until reset: a later clean write leaves the record.
    openmla.write_cache(kv_c, k_pe, cache, good, status=status)
    with pytest.raises(ValueError, match="token 9"):
        openmla.check_status(status)
    openmla.reset_status(status)
    openmla.check_status(status)


@needs_cuda
def test_cuda_graph_replays_with_new_rows_and_slots():
    kv_c, k_pe, k_cache, slots = make_write(128, device="cuda", seed=8)
    status = openmla.write_cache_status(k_cache)
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        openmla.write_cache(kv_c, k_pe, k_cache, slots, status=status)  # warm-up before capture
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        openmla.write_cache(kv_c, k_pe, k_cache, slots, status=status)
    new_kv_c, new_k_pe, _, new_slots = make_write(128, device="cuda", seed=9)
    new_slots[5] = -1
    kv_c.copy_(new_kv_c)
    k_pe.copy_(new_k_pe)
    slots.copy_(new_slots)
    want = expected(kv_c, k_pe, k_cache, slots)
    graph.replay()
    torch.cuda.synchronize()
    assert torch.equal(k_cache.cpu().view(torch.int16), want)
    openmla.check_status(status)


@needs_cuda
def test_cuda_zero_tokens():
    kv_c, k_pe, k_cache, slots = make_write(0, device="cuda")
    before = k_cache.clone()
    openmla.write_cache(kv_c, k_pe, k_cache, slots)
    torch.cuda.synchronize()
    assert torch.equal(k_cache.view(torch.int16), before.view(torch.int16))
