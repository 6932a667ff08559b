"""The Gemma / CodeGemma decoder in one file, top to bottom: config, flavors, RMSNorm, RoPE,
document-masked attention, GeGLU MLP, block, model, chunked loss.

Architecture (from the Gemma reference implementations):
- RMSNorm computed in fp32, weight initialised to zero and applied as ``(1 + weight)``.
- GeGLU MLP: ``down(gelu_tanh(gate(x)) * up(x))``.
- RoPE, theta 10000, rotating the two halves of each head (not interleaved pairs).
- Multi-query / grouped-query attention (``n_kv_heads`` < ``n_heads``).
- Embeddings scaled by sqrt(d_model), the factor rounded to the activation dtype first;
  the output projection is the embedding matrix (tied).
- Optional Gemma-2 soft-capping ``tanh(s / cap) * cap`` of attention scores and final logits.

Training packs several documents into one row, so ``forward`` takes ``doc_ids`` (B, T): a token
attends only to earlier tokens of its own document, and RoPE positions restart at 0 at every
document start. ``attention()`` has interchangeable backends that compute the same function;
tests force each one and compare them.

Generation (``generate``) is greedy with a KV cache (``KVCache``): the prompt is one forward
pass, then one token per step attends to the cached keys and values of every layer.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace

import torch
import torch.nn as nn
import torch.nn.functional as F


@dataclass
class GemmaConfig:
    vocab_size: int | None = None  # None = take it from the data's tokenizer (small flavors)
    d_model: int = 2048            # residual stream width
    n_layers: int = 18             # transformer blocks
    n_heads: int = 8               # query heads
    n_kv_heads: int = 1            # key/value heads; 1 = multi-query, n_heads = full multi-head
    head_dim: int = 256            # per head; Gemma decouples it from d_model / n_heads
    ffn_hidden: int = 16384        # GeGLU hidden width (gate and up each have this many units)
    rope_theta: float = 10000.0    # RoPE base frequency
    norm_eps: float = 1e-6         # RMSNorm epsilon, as in Gemma
    attn_softcap: float | None = None   # Gemma-2 style cap on attention scores; None = off
    final_softcap: float | None = None  # cap on output logits; None = off
    attention: str = "auto"        # backend: auto | segments | sdpa_mask | flex | eager
    loss_chunk: int = 1024         # token rows whose logits exist at once in the loss
    init_std: float = 0.02         # init std, embedding and linears (HF Gemma initializer_range)


# Named sizes, torchtitan style. The two CodeGemma shapes are the published Gemma 2B / 7B ones;
# the small ones are for CI, laptops and quick ablations and get their vocabulary from the data.
FLAVORS: dict[str, GemmaConfig] = {
    # ~1M params with a 512-token vocabulary: a CPU training step takes tens of milliseconds
    "debug": GemmaConfig(d_model=128, n_layers=4, n_heads=4, n_kv_heads=1, head_dim=32,
                         ffn_hidden=512),
    # ~13M params without the embedding
    "tiny": GemmaConfig(d_model=384, n_layers=6, n_heads=6, n_kv_heads=1, head_dim=64,
                        ffn_hidden=1536),
    # ~104M params without the embedding, GPT-2-small-like
    "small": GemmaConfig(d_model=768, n_layers=12, n_heads=12, n_kv_heads=4, head_dim=64,
                         ffn_hidden=3072),
    "codegemma-2b": GemmaConfig(vocab_size=256000, d_model=2048, n_layers=18, n_heads=8,
                                n_kv_heads=1, head_dim=256, ffn_hidden=16384),
    "codegemma-7b": GemmaConfig(vocab_size=256000, d_model=3072, n_layers=28, n_heads=16,
                                n_kv_heads=16, head_dim=256, ffn_hidden=24576),
}


def config_for(flavor: str, **overrides) -> GemmaConfig:
    """The flavor's config with ``overrides`` applied (e.g. ``vocab_size`` from the manifest)."""
    if flavor not in FLAVORS:
        raise KeyError(f"unknown flavor {flavor!r}; choose from {sorted(FLAVORS)}")
    config = replace(FLAVORS[flavor], **overrides)
    if config.vocab_size is None:
        raise ValueError(f"flavor {flavor!r} needs vocab_size (take it from the data manifest)")
    return config


# ---------------------------------------------------------------------------------------------
# Norm


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float):
        super().__init__()
        self.eps = eps
        # zero init + (1 + weight): the norm starts as the identity scale, and weight decay pulls
        # it back towards that instead of towards zero
        self.weight = nn.Parameter(torch.zeros(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # fp32 even under bf16 autocast: the mean of squares loses too much in bf16
        xf = x.float()
        xf = xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + self.eps)
        return (xf * (1.0 + self.weight.float())).type_as(x)


# ---------------------------------------------------------------------------------------------
# Positions and RoPE


def document_runs(doc_ids: torch.Tensor) -> torch.Tensor:
    """Renumber (B, T) document ids as 0, 1, 2... per contiguous run, so equal ids always mean
    one contiguous document (the form ``attention()`` expects)."""
    change = (doc_ids[:, 1:] != doc_ids[:, :-1]).long()
    return torch.cat([torch.zeros_like(doc_ids[:, :1]), change.cumsum(1)], dim=1)


def document_positions(doc_ids: torch.Tensor) -> torch.Tensor:
    """(B, T) position of each token inside its document: 0 at every document start."""
    B, T = doc_ids.shape
    t = torch.arange(T, device=doc_ids.device).expand(B, T)
    start = torch.ones_like(doc_ids, dtype=torch.bool)
    start[:, 1:] = doc_ids[:, 1:] != doc_ids[:, :-1]
    # index of the latest document start at or before each token
    last_start = torch.where(start, t, torch.zeros_like(t)).cummax(dim=1).values
    return t - last_start


def rope_angles(pos: torch.Tensor, head_dim: int,
                theta: float) -> tuple[torch.Tensor, torch.Tensor]:
    """cos, sin of shape (B, 1, T, head_dim / 2) for integer positions (B, T), in fp32."""
    inv_freq = theta ** -(torch.arange(0, head_dim, 2, device=pos.device).float() / head_dim)
    angles = pos.float()[:, None, :, None] * inv_freq  # (B, 1, T, hs/2)
    return angles.cos(), angles.sin()


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate (B, nh, T, hs): dims i and i + hs/2 form a pair (Gemma's halves layout)."""
    x1, x2 = x.float().chunk(2, dim=-1)  # (B, nh, T, hs/2) each
    out = torch.cat([x1 * cos - x2 * sin, x2 * cos + x1 * sin], dim=-1)
    return out.type_as(x)


# ---------------------------------------------------------------------------------------------
# Attention

BACKENDS = ("auto", "segments", "sdpa_mask", "flex", "eager")


def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
              doc_ids: torch.Tensor | None = None, backend: str = "auto",
              softcap: float | None = None) -> torch.Tensor:
    """Causal attention restricted to each document. Every backend computes the same function.

    q: (B, nh, T, hs); k, v: (B, nkv, T, hs) with nh a multiple of nkv.
    doc_ids: (B, T) ints where each document is one contiguous run of equal ids (see
    ``document_runs``); None means the whole row is one document. A negative id marks
    padding: no real token attends to it (another id); ``segments`` gives it zeros without
    computing it, the other backends let padding attend to padding (its loss is masked).

    - ``segments``: cut each row at document boundaries and run fused causal SDPA per piece.
      No mask tensor, no wasted cross-document FLOPs; the CPU default.
    - ``sdpa_mask``: one SDPA call with a dense (B, 1, T, T) boolean mask.
    - ``flex``: FlexAttention with a block-sparse mask, compiled; the CUDA default (its
      backward is not implemented on CPU in torch 2.13).
    - ``eager``: plain softmax(q k^T) v, the reference the others are tested against.
    - ``auto``: flex on CUDA, segments elsewhere.

    Soft-capping changes the scores before the softmax, which fused SDPA cannot do, so with
    ``softcap`` set the segments and sdpa_mask backends fall back to eager.
    """
    if backend == "auto":
        backend = "flex" if q.device.type == "cuda" else "segments"
    if softcap is not None and backend in ("segments", "sdpa_mask"):
        backend = "eager"
    if backend == "segments":
        return _attention_segments(q, k, v, doc_ids)
    if backend == "sdpa_mask":
        mask = None if doc_ids is None else _document_mask(doc_ids)[:, None]  # (B, 1, T, T)
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=mask is None,
                                              enable_gqa=True)
    if backend == "flex":
        return _attention_flex(q, k, v, doc_ids, softcap)
    if backend == "eager":
        mask = (_causal_mask(q.shape[2], k.shape[2], q.device) if doc_ids is None
                else _document_mask(doc_ids)[:, None])  # (T, T) or (B, 1, T, T)
        return _attention_eager(q, k, v, mask, softcap)
    raise ValueError(f"unknown attention backend {backend!r}; choose from {BACKENDS}")


def _causal_mask(T: int, S: int, device) -> torch.Tensor:
    """(T, S) bool for T queries that are the last T of S keys: query i sees keys <= S-T+i."""
    return torch.ones(T, S, dtype=torch.bool, device=device).tril(diagonal=S - T)


def _document_mask(doc_ids: torch.Tensor) -> torch.Tensor:
    """(B, T, T) bool: query i may see key j iff j <= i and both are in the same document."""
    T = doc_ids.shape[1]
    causal = torch.ones(T, T, dtype=torch.bool, device=doc_ids.device).tril()
    return causal & (doc_ids[:, :, None] == doc_ids[:, None, :])


def _attention_segments(q, k, v, doc_ids):
    if doc_ids is None:
        return F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True)
    B, T = doc_ids.shape
    # one host sync for the whole batch: (row, position, id) of every document start after 0
    rows, cols = (doc_ids[:, 1:] != doc_ids[:, :-1]).nonzero(as_tuple=True)
    ids = torch.cat([doc_ids[:, 0], doc_ids[rows, cols + 1]]).tolist()
    bounds = [[(0, ids[b])] for b in range(B)]
    for b, c, d in zip(rows.tolist(), cols.tolist(), ids[B:]):
        bounds[b].append((c + 1, d))
    out = []
    for b in range(B):
        starts = bounds[b] + [(T, None)]
        # padding (a negative id) attends to nothing: zeros, and no compute spent on it
        pieces = [F.scaled_dot_product_attention(q[b:b + 1, :, s:e], k[b:b + 1, :, s:e],
                                                 v[b:b + 1, :, s:e], is_causal=True,
                                                 enable_gqa=True) if d >= 0
                  else q.new_zeros(1, q.shape[1], e - s, v.shape[-1])
                  for (s, d), (e, _) in zip(starts[:-1], starts[1:])]
        out.append(torch.cat(pieces, dim=2))  # (1, nh, T, hs)
    return torch.cat(out, dim=0)


def _attention_eager(q, k, v, mask, softcap):
    """mask: bool, broadcastable to (B, nh, T, S), True = may attend."""
    n_rep = q.shape[1] // k.shape[1]
    k = k.repeat_interleave(n_rep, dim=1)  # (B, nh, S, hs): each kv head serves n_rep q heads
    v = v.repeat_interleave(n_rep, dim=1)
    att = (q @ k.transpose(-2, -1)).float() * (q.shape[-1] ** -0.5)  # (B, nh, T, S)
    if softcap is not None:
        att = torch.tanh(att / softcap) * softcap
    att = att.masked_fill(~mask, float("-inf")).softmax(dim=-1)
    return att.type_as(v) @ v


def _attention_cached(q, k, v, softcap):
    """Causal attention of T new queries over S >= T keys, the first S - T from the cache."""
    T, S = q.shape[2], k.shape[2]
    mask = _causal_mask(T, S, q.device)
    if softcap is not None:
        return _attention_eager(q, k, v, mask, softcap)
    # one new token sees every cached key: no mask at all keeps SDPA on its fastest path
    return F.scaled_dot_product_attention(q, k, v, attn_mask=None if T == 1 else mask,
                                          enable_gqa=True)


class KVCache:
    """Keys and values of every layer for generation, each (B, nkv, length, hs), grown by
    ``torch.cat`` as tokens are appended (fine for the short generations of evaluation).
    A cached sequence is one document: positions continue from ``length``."""

    def __init__(self, n_layers: int):
        self.keys: list[torch.Tensor | None] = [None] * n_layers
        self.values: list[torch.Tensor | None] = [None] * n_layers
        self.length = 0  # tokens cached so far

    def update(self, layer: int, k: torch.Tensor,
               v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Append this step's (B, nkv, T, hs) keys and values; all of them so far."""
        if self.keys[layer] is not None:
            k = torch.cat([self.keys[layer], k], dim=2)
            v = torch.cat([self.values[layer], v], dim=2)
        self.keys[layer], self.values[layer] = k, v
        return k, v


_flex_cache: dict = {}  # "fn": compiled flex_attention; "mask": (doc_ids, key, block mask)


def _attention_flex(q, k, v, doc_ids, softcap):
    # imported lazily: flex only pays off on GPU, and compiling it takes ~20 s
    from torch.nn.attention.flex_attention import create_block_mask, flex_attention

    B, _, T, _ = q.shape
    if doc_ids is None:
        def mask_mod(b, h, qi, ki):
            return qi >= ki
    else:
        def mask_mod(b, h, qi, ki):
            return (qi >= ki) & (doc_ids[b, qi] == doc_ids[b, ki])
    score_mod = None
    if softcap is not None:
        def score_mod(score, b, h, qi, ki):
            return torch.tanh(score / softcap) * softcap

    if torch.compiler.is_compiling():
        # inside a compiled model the outer graph compiles flex and owns the mask
        block_mask = create_block_mask(mask_mod, B, None, T, T, device=q.device)
        return flex_attention(q, k, v, score_mod=score_mod, block_mask=block_mask,
                              enable_gqa=True)
    if "fn" not in _flex_cache:
        _flex_cache["fn"] = torch.compile(flex_attention, dynamic=False)
    # The model hands the same doc_ids tensor to every layer: build the block mask once per
    # forward (an identity check, not a value check) instead of once per layer.
    key = (B, T, q.device)
    cached = _flex_cache.get("mask")
    if cached is None or cached[0] is not doc_ids or cached[1] != key:
        cached = (doc_ids, key, create_block_mask(mask_mod, B, None, T, T, device=q.device))
        _flex_cache["mask"] = cached
    return _flex_cache["fn"](q, k, v, score_mod=score_mod, block_mask=cached[2],
                             enable_gqa=True)


class Attention(nn.Module):
    def __init__(self, config: GemmaConfig, layer: int = 0):
        super().__init__()
        self.config = config
        self.layer = layer  # index into a KVCache
        hs, nh, nkv = config.head_dim, config.n_heads, config.n_kv_heads
        assert nh % nkv == 0, "n_heads must be a multiple of n_kv_heads"
        self.q_proj = nn.Linear(config.d_model, nh * hs, bias=False)
        self.k_proj = nn.Linear(config.d_model, nkv * hs, bias=False)
        self.v_proj = nn.Linear(config.d_model, nkv * hs, bias=False)
        self.o_proj = nn.Linear(nh * hs, config.d_model, bias=False)

    def forward(self, x, cos, sin, doc_ids, cache: KVCache | None = None):
        B, T, _ = x.shape
        c = self.config
        q = self.q_proj(x).view(B, T, c.n_heads, c.head_dim).transpose(1, 2)     # (B, nh, T, hs)
        k = self.k_proj(x).view(B, T, c.n_kv_heads, c.head_dim).transpose(1, 2)  # (B, nkv, T, hs)
        v = self.v_proj(x).view(B, T, c.n_kv_heads, c.head_dim).transpose(1, 2)  # (B, nkv, T, hs)
        q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        if cache is None:
            y = attention(q, k, v, doc_ids, c.attention, c.attn_softcap)         # (B, nh, T, hs)
        else:
            k, v = cache.update(self.layer, k, v)                                # (B, nkv, S, hs)
            y = _attention_cached(q, k, v, c.attn_softcap)
        return self.o_proj(y.transpose(1, 2).reshape(B, T, c.n_heads * c.head_dim))


# ---------------------------------------------------------------------------------------------
# MLP and block


class MLP(nn.Module):
    def __init__(self, config: GemmaConfig):
        super().__init__()
        self.gate_proj = nn.Linear(config.d_model, config.ffn_hidden, bias=False)
        self.up_proj = nn.Linear(config.d_model, config.ffn_hidden, bias=False)
        self.down_proj = nn.Linear(config.ffn_hidden, config.d_model, bias=False)

    def forward(self, x):
        return self.down_proj(F.gelu(self.gate_proj(x), approximate="tanh") * self.up_proj(x))


class Block(nn.Module):
    def __init__(self, config: GemmaConfig, layer: int = 0):
        super().__init__()
        self.attn_norm = RMSNorm(config.d_model, config.norm_eps)
        self.attn = Attention(config, layer)
        self.mlp_norm = RMSNorm(config.d_model, config.norm_eps)
        self.mlp = MLP(config)

    def forward(self, x, cos, sin, doc_ids, cache=None):
        x = x + self.attn(self.attn_norm(x), cos, sin, doc_ids, cache)
        return x + self.mlp(self.mlp_norm(x))


# ---------------------------------------------------------------------------------------------
# Model


class Gemma(nn.Module):
    def __init__(self, config: GemmaConfig):
        super().__init__()
        assert config.vocab_size is not None, "set vocab_size (config_for(flavor, vocab_size=...))"
        assert config.head_dim % 2 == 0, "RoPE rotates pairs of dims"
        self.config = config
        self.embed = nn.Embedding(config.vocab_size, config.d_model)
        self.blocks = nn.ModuleList(Block(config, i) for i in range(config.n_layers))
        self.final_norm = RMSNorm(config.d_model, config.norm_eps)
        self.init_weights()

    def init_weights(self):
        std = self.config.init_std
        for name, p in self.named_parameters():
            if name.endswith("norm.weight"):
                nn.init.zeros_(p)
            elif name.endswith(("o_proj.weight", "down_proj.weight")):
                # GPT-2: layers that write into the residual stream shrink with depth
                nn.init.normal_(p, std=std / math.sqrt(2 * self.config.n_layers))
            else:
                nn.init.normal_(p, std=std)

    def num_params(self, embedding: bool = True) -> int:
        n = sum(p.numel() for p in self.parameters())
        return n if embedding else n - self.embed.weight.numel()

    def forward(self, idx: torch.Tensor, doc_ids: torch.Tensor | None = None,
                targets: torch.Tensor | None = None) -> torch.Tensor:
        """idx (B, T) token ids; doc_ids (B, T) document of each token (None = one document
        per row); targets (B, T) with -100 = ignore.

        Returns the mean cross-entropy when targets are given (logits are never materialised
        for the whole batch), else the logits (B, T, vocab) in fp32.
        """
        x = self.hidden_states(idx, doc_ids)
        if targets is not None:
            return chunked_cross_entropy(x, self.embed.weight, targets, self.config.loss_chunk,
                                         self.config.final_softcap)
        return self.logits(x)

    def hidden_states(self, idx: torch.Tensor, doc_ids: torch.Tensor | None = None,
                      cache: KVCache | None = None) -> torch.Tensor:
        """(B, T, d) final-normed hidden states. With ``cache`` (no doc_ids), idx continues the
        cached tokens: positions start at ``cache.length``, keys and values are appended."""
        B, T = idx.shape
        if cache is not None:
            assert doc_ids is None, "a cached sequence is one document"
            pos = (cache.length + torch.arange(T, device=idx.device)).expand(B, T)
        elif doc_ids is None:
            pos = torch.arange(T, device=idx.device).expand(B, T)
        else:
            doc_ids = document_runs(doc_ids)
            pos = document_positions(doc_ids)
        cos, sin = rope_angles(pos, self.config.head_dim, self.config.rope_theta)

        x = self.embed(idx)  # (B, T, d)
        # Gemma rounds the normaliser to the activation dtype, so bf16 weights match it exactly
        x = x * torch.tensor(self.config.d_model ** 0.5, dtype=x.dtype)
        for block in self.blocks:
            x = block(x, cos, sin, doc_ids, cache)
        if cache is not None:
            cache.length += T
        return self.final_norm(x)

    def logits(self, h: torch.Tensor) -> torch.Tensor:
        """fp32 logits (..., vocab) of hidden states (..., d): the tied output projection."""
        return _logits(h, self.embed.weight, self.config.final_softcap)

    @torch.no_grad()
    def generate(self, prompt: list[int], max_new_tokens: int,
                 stop_ids: tuple[int, ...] | set[int] = ()) -> tuple[list[int], str]:
        """Greedy decoding of one sequence with a KV cache.

        Returns (new token ids, why it stopped): "stop" when the next token would have been one
        of ``stop_ids`` (that token is not returned), "length" after ``max_new_tokens``.
        """
        device = self.embed.weight.device
        cache = KVCache(self.config.n_layers)
        x = torch.tensor([prompt], dtype=torch.long, device=device)  # (1, P)
        out: list[int] = []
        stop = set(int(i) for i in stop_ids)
        for _ in range(max_new_tokens):
            h = self.hidden_states(x, cache=cache)[:, -1]  # (1, d): only the last position
            token = int(self.logits(h).argmax(dim=-1))
            if token in stop:
                return out, "stop"
            out.append(token)
            x = torch.tensor([[token]], dtype=torch.long, device=device)
        return out, "length"


# ---------------------------------------------------------------------------------------------
# Loss


def _logits(h: torch.Tensor, weight: torch.Tensor, softcap: float | None) -> torch.Tensor:
    logits = F.linear(h, weight).float()  # (..., vocab), tied output projection
    if softcap is not None:
        logits = torch.tanh(logits / softcap) * softcap
    return logits


class _ChunkedCrossEntropy(torch.autograd.Function):
    """Sum of cross-entropies of ``h @ weight.T``, one chunk of rows at a time, with the
    gradients computed in the same pass (the loss is a leaf of the graph: nothing after it
    needs the logits). Per chunk: logits, softmax - one_hot, then grad_h = g @ W and
    grad_W += g^T h; the chunk's logits are freed before the next. Three matmuls per chunk,
    as plain cross-entropy's forward and backward have, where recomputing the logits under
    activation checkpointing would cost a fourth."""

    @staticmethod
    def forward(ctx, h, weight, targets, chunk, softcap, need_grad):
        # h (N, d); weight (V, d); targets (N,), -100 = ignore
        total = torch.zeros((), dtype=torch.float32, device=h.device)
        grad_h = torch.empty_like(h) if need_grad else None
        grad_w = torch.zeros_like(weight, dtype=torch.float32) if need_grad else None
        for s in range(0, h.shape[0], chunk):
            hc, tc = h[s:s + chunk], targets[s:s + chunk]
            z = F.linear(hc, weight).float()  # (n, V) logits of this chunk only
            if softcap is not None:
                capped = torch.tanh(z / softcap)
                z = capped * softcap
            valid = tc != -100
            tc = tc.clamp(min=0)
            picked = z.gather(1, tc[:, None]).squeeze(1)  # (n,) logit of each target
            # softmax in place, in as few passes over (n, V) as possible: max, exp(z - max),
            # sum, then one scaling that also zeroes the ignored rows
            top = z.amax(dim=-1)
            e = z.sub_(top[:, None]).exp_()
            norm = e.sum(dim=-1)
            total += ((top + norm.log() - picked) * valid).sum()  # logsumexp - target logit
            if not need_grad:
                continue
            g = e.mul_((valid / norm)[:, None])  # d loss / d logits = softmax ...
            rows = torch.arange(len(tc), device=g.device)
            g[rows, tc] -= valid.to(g.dtype)     # ... minus the one-hot of the target
            if softcap is not None:
                g *= 1.0 - capped * capped  # through tanh(z / cap) * cap
            g = g.to(weight.dtype)
            grad_h[s:s + chunk] = g @ weight
            grad_w += g.t() @ hc
        ctx.save_for_backward(grad_h, grad_w)
        return total

    @staticmethod
    def backward(ctx, grad_total):
        grad_h, grad_w = ctx.saved_tensors
        if grad_h is None:
            raise RuntimeError("chunked_cross_entropy ran without gradients (no_grad inputs)")
        return (grad_h * grad_total.to(grad_h.dtype), (grad_w * grad_total).to(grad_w.dtype),
                None, None, None, None)


def chunked_cross_entropy(h: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor,
                          chunk: int = 1024, softcap: float | None = None) -> torch.Tensor:
    """Mean cross-entropy of ``h @ weight.T`` against ``targets`` (-100 = ignore), ``chunk``
    token rows at a time.

    h: (B, T, d) final hidden states; weight: (vocab, d); targets: (B, T).
    With a 256k vocabulary, fp32 logits cost 1 MB per token: 8 rows of 2048 tokens would be
    16 GB. Here one chunk's logits exist at a time, in the forward and the backward: the
    gradients with respect to ``h`` and ``weight`` are computed chunk by chunk during the
    forward and kept (the size of ``h`` and ``weight``), and the backward only scales them.
    So the loss must be used as is (times a scalar, summed with others), never differentiated
    twice.
    """
    h = h.reshape(-1, h.shape[-1])  # (B*T, d)
    targets = targets.reshape(-1)   # (B*T,)
    need_grad = torch.is_grad_enabled() and (h.requires_grad or weight.requires_grad)
    total = _ChunkedCrossEntropy.apply(h, weight, targets, chunk, softcap, need_grad)
    count = (targets != -100).sum().clamp(min=1)
    return total / count


def token_losses(h: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor,
                 chunk: int = 1024, softcap: float | None = None) -> torch.Tensor:
    """Per-token cross-entropy (B, T) in fp32, no gradients, 0 where targets are -100
    (for evaluation: losses summed by document, by kind of text...)."""
    B, T = targets.shape
    h, flat = h.reshape(-1, h.shape[-1]), targets.reshape(-1)
    out = torch.zeros(flat.shape, dtype=torch.float32, device=h.device)
    with torch.no_grad():
        for s in range(0, h.shape[0], chunk):
            out[s:s + chunk] = F.cross_entropy(_logits(h[s:s + chunk], weight, softcap),
                                               flat[s:s + chunk], ignore_index=-100,
                                               reduction="none")
    return out.view(B, T)
