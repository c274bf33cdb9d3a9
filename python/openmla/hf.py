"""openmla.hf: Hugging Face DeepSeek-V2/V3 models running their attention on openmla.

    model = transformers.AutoModelForCausalLM.from_pretrained(...)   # DeepseekV3ForCausalLM / DeepseekV2ForCausalLM
    openmla.hf.patch(model)        # every MLA layer now prefills with SDPA and decodes with openmla
    model.generate(**inputs)       # unchanged: batches with left padding, greedy or sampling
    openmla.hf.unpatch(model)      # back to the model's own attention

The latents live in an openmla.nn.PagedLatentCache (kv_lora_rank + qk_rope_head_dim values per token and
layer, 576 for DeepSeek); padding tokens never enter it. transformers' own cache object only counts the
tokens (one [b, 1, T, 1] key and value tensor, in layer 0): it is how generate() knows the positions.
Beam search is not supported (the paged cache does not follow the beams' reordering).
"""

import inspect
import weakref

import torch

from ._C import cuda_available
from .nn.attention import MLAAttention
from .nn.cache import PagedLatentCache

_MODELS = ("DeepseekV3ForCausalLM", "DeepseekV2ForCausalLM", "DeepseekV3Model", "DeepseekV2Model")
_ATTENTIONS = ("DeepseekV3Attention", "DeepseekV2Attention")
_CUDA_DIMS = (512, 64)  # kv_lora_rank and qk_rope_head_dim the CUDA kernels serve (d_v = 512, d_qk = 576)
_PAGE_SIZE = 64


def _check_dtype(dtype, device):
    """The dtypes openmla's decode has on the device: bf16 / fp16, and fp32 on the CPU."""
    allowed = (torch.bfloat16, torch.float16) + ((torch.float32,) if device.type == "cpu" else ())
    if dtype not in allowed:
        names = " or ".join(str(d).removeprefix("torch.") for d in allowed)
        raise TypeError(f"openmla.hf: model dtype: expected {names} on {device.type}, given "
                        f"{str(dtype).removeprefix('torch.')}")


def _check_model(model):
    """The model's decoder layers; TypeError / ValueError for what openmla cannot run."""
    name = type(model).__name__
    if name not in _MODELS:
        raise TypeError(f"openmla.hf: model: expected a transformers {' / '.join(_MODELS[:2])}, given {name}")
    base = model.model if hasattr(model, "model") else model
    layers = list(base.layers)
    for i, layer in enumerate(layers):
        attention = type(layer.self_attn).__name__
        if attention not in _ATTENTIONS:
            raise TypeError(f"openmla.hf: model.layers[{i}].self_attn: expected {' or '.join(_ATTENTIONS)}, given "
                            f"{attention}")
    parameter = next(model.parameters())
    _check_dtype(parameter.dtype, parameter.device)
    if parameter.device.type == "cuda":
        if not cuda_available():
            raise ValueError("openmla.hf: model device: expected cpu (this openmla has no usable CUDA backend), "
                             "given cuda")
        attention = layers[0].self_attn
        if (attention.kv_lora_rank, attention.qk_rope_head_dim) != _CUDA_DIMS:
            raise ValueError(f"openmla.hf: kv_lora_rank, qk_rope_head_dim: expected {_CUDA_DIMS} on CUDA, given "
                             f"{(attention.kv_lora_rank, attention.qk_rope_head_dim)}")
    return base, layers


class _Session:
    """One model's openmla state: the paged cache of the generation under way and the current step."""

    def __init__(self, num_layers, attention):
        self.num_layers = num_layers
        self.num_heads = attention.num_heads
        self.d_latent = attention.kv_lora_rank
        self.d_rope = attention.qk_rope_head_dim
        self.mask = None  # [b, T] 2D attention mask of the forward under way, or None
        self.pending = False  # a forward began and its first attention layer has not run yet
        self.cache = None  # PagedLatentCache of the generation under way, or None (forward without cache)
        self.valid = None  # [b, s] bool, real tokens of a forward without cache
        self.paged = None  # PagedLatentCache, kept between generations of the same shape
        self.hf_cache = None  # weakref to transformers' cache object of the generation under way

    def begin_forward(self, mask):
        if mask is not None and mask.dim() != 2:
            raise NotImplementedError(f"openmla.hf: attention_mask: expected a 2D [batch, tokens] mask or None, "
                                      f"given {mask.dim()}D (a static or compiled cache, or a custom mask)")
        self.mask = mask
        self.pending = True

    def begin_step(self, hidden_states, hf_cache):
        """At the first attention layer of a forward: which tokens are real, and where they go."""
        self.pending = False
        b, s = hidden_states.shape[:2]
        _check_dtype(hidden_states.dtype, hidden_states.device)
        if self.mask is None:
            valid = torch.ones(b, s, dtype=torch.bool, device=hidden_states.device)  # [b, s]
        else:
            valid = self.mask[:, -s:].to(hidden_states.device, torch.bool)  # [b, s]
        if hf_cache is None:
            self.cache, self.valid = None, valid
            return
        past = hf_cache.get_seq_length()
        if past == 0:
            self._new_generation(b, hidden_states, hf_cache)
        elif self.hf_cache is None or self.hf_cache() is not hf_cache:
            raise ValueError(f"openmla.hf: cache: expected an empty cache or the one of this patched model's "
                             f"generation under way, given one holding {past} tokens that openmla did not place "
                             f"(filled before openmla.hf.patch or by another model)")
        self.cache = self.paged
        self.paged.begin_step(valid)

    def _new_generation(self, b, hidden_states, hf_cache):
        paged = self.paged
        if (paged is None or paged.batch != b or paged.pool.dtype != hidden_states.dtype
                or paged.pool.device != hidden_states.device):
            self.paged = PagedLatentCache(self.num_layers, b, dtype=hidden_states.dtype, device=hidden_states.device,
                                          num_pages=b * -(-hidden_states.shape[1] // _PAGE_SIZE) + b,
                                          page_size=_PAGE_SIZE, d_latent=self.d_latent, d_rope=self.d_rope,
                                          num_heads=self.num_heads)
        else:
            paged.reset()
        self.hf_cache = weakref.ref(hf_cache)


def _cache_argument(kwargs):
    """transformers' cache object, under the name the installed version passes it."""
    for name in ("cache", "past_key_values", "past_key_value"):
        if kwargs.get(name) is not None:
            return kwargs[name]
    return None


def _rope_of(position_embeddings, d_rope):
    """The model's RoPE as (cos, sin) float32 [b, s, d_rope / 2]: DeepSeek-V3's (cos, sin) [b, s, d_rope]
    hold each pair's angle twice (cat(freqs, freqs)); DeepSeek-V2's are complex [b, s, d_rope / 2]."""
    if position_embeddings is None:
        raise NotImplementedError("openmla.hf: position_embeddings: expected the model's RoPE from its decoder "
                                  "layer (transformers with DeepseekV3Attention.forward(hidden_states, "
                                  "position_embeddings, ...)), given none: this transformers version is not supported")
    if isinstance(position_embeddings, torch.Tensor) and position_embeddings.is_complex():
        return position_embeddings.real.float(), position_embeddings.imag.float()
    cos, sin = position_embeddings
    return cos[..., : d_rope // 2].float(), sin[..., : d_rope // 2].float()


class _PatchedAttention(MLAAttention):
    """A decoder layer's self_attn after patch: transformers' call signature, openmla's MLAAttention inside
    (the projections are the original module's, under the same names)."""

    def forward(self, hidden_states, position_embeddings=None, attention_mask=None, *args, **kwargs):
        session = self._openmla_session
        hf_cache = _cache_argument(kwargs)
        if session.pending:
            session.begin_step(hidden_states, hf_cache)
        rope = _rope_of(position_embeddings, self.qk_rope_head_dim)
        if session.cache is None:
            out = super().forward(hidden_states, rope, valid=session.valid)  # [b, s, hidden]
        else:
            out = super().forward(hidden_states, rope, cache=session.cache, layer=self.layer_idx)  # [b, s, hidden]
        if hf_cache is not None and self.layer_idx == 0:
            # transformers' cache counts the tokens (generate() derives positions from it); the latents are ours.
            count = hidden_states.new_zeros(hidden_states.shape[0], 1, hidden_states.shape[1], 1)  # [b, 1, s, 1]
            hf_cache.update(count, count, 0)
        return out, None


class _Patch:
    """What unpatch needs: the original attention modules and the forward hook."""

    def __init__(self, originals, hook, session):
        self.originals = originals
        self.hook = hook
        self.session = session


def patch(model):
    """Runs every MLA attention of a loaded transformers DeepseekV3ForCausalLM / DeepseekV2ForCausalLM (or
    its base model) on openmla; model.generate() and model(...) work unchanged. The weights are shared,
    not copied. Raises TypeError / ValueError for a model openmla cannot run: another attention class,
    a dtype the backend lacks (CUDA: bf16 or fp16; CPU: also fp32), CUDA without kv_lora_rank 512 and
    qk_rope_head_dim 64. Returns the model."""
    if getattr(model, "_openmla_patch", None) is not None:
        raise ValueError("openmla.hf: model: expected a model that is not patched yet, given a patched one")
    base, layers = _check_model(model)
    session = _Session(len(layers), layers[0].self_attn)
    originals = []
    for i, layer in enumerate(layers):
        original = layer.self_attn
        patched = _PatchedAttention.from_hf(original)
        patched.layer_idx = i
        patched.config = original.config
        patched._openmla_session = session
        originals.append(original)
        layer.self_attn = patched
    mask_position = list(inspect.signature(base.forward).parameters).index("attention_mask")

    def begin_forward(module, args, kwargs):
        mask = kwargs["attention_mask"] if "attention_mask" in kwargs else (
            args[mask_position] if len(args) > mask_position else None)
        session.begin_forward(mask)

    hook = base.register_forward_pre_hook(begin_forward, with_kwargs=True)
    model._openmla_patch = _Patch(originals, hook, session)
    return model


def unpatch(model):
    """Gives the model back its own attention modules (the weights were never copied). Returns the model."""
    record = getattr(model, "_openmla_patch", None)
    if record is None:
        raise ValueError("openmla.hf: model: expected a model patched by openmla.hf.patch, given an unpatched one")
    base = model.model if hasattr(model, "model") else model
    for layer, original in zip(base.layers, record.originals):
        layer.self_attn = original
    record.hook.remove()
    del model._openmla_patch
    return model
