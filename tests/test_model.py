"""The Gemma model: published sizes, Gemma's layer conventions, document-masked attention
across backends, and the chunked loss."""
import math

import pytest
import torch
import torch.nn.functional as F

from fimpack.model.gemma import (FLAVORS, Gemma, RMSNorm, apply_rope, attention,
                                 chunked_cross_entropy, config_for, document_positions,
                                 document_runs, rope_angles)

EXACT = ["segments", "sdpa_mask", "eager"]  # the backends that run forward and backward on CPU


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


def tiny_config(**overrides):
    # debug flavor shapes, shrunk; 4 query heads over 2 kv heads exercises grouped-query
    base = dict(vocab_size=97, d_model=32, n_layers=2, n_heads=4, n_kv_heads=2, head_dim=8,
                ffn_hidden=64)
    return config_for("debug", **{**base, **overrides})


def random_doc_ids(B, T, gen, max_docs=5):
    """(B, T) contiguous, increasing document ids with random boundaries per row."""
    rows = []
    for _ in range(B):
        n_cuts = int(torch.randint(0, max_docs, (1,), generator=gen))
        cuts = torch.randperm(T - 1, generator=gen)[:n_cuts] + 1
        start = torch.zeros(T, dtype=torch.long)
        start[cuts] = 1
        rows.append(start.cumsum(0))
    return torch.stack(rows) + 7  # ids need not start at 0


# ---------------------------------------------------------------------------------------------
# sizes


def build_meta(flavor, **overrides):
    with torch.device("meta"):
        return Gemma(config_for(flavor, **overrides))


def test_codegemma_param_counts_match_the_published_models():
    two_b, seven_b = build_meta("codegemma-2b"), build_meta("codegemma-7b")
    # embedding 256000 x d, tied; q/k/v/o, gate/up/down, two norms per layer, final norm
    assert two_b.num_params() == 2_506_172_416
    assert two_b.num_params(embedding=False) == 2_506_172_416 - 256000 * 2048
    assert seven_b.num_params() == 8_537_680_896
    assert seven_b.num_params(embedding=False) == 8_537_680_896 - 256000 * 3072
    assert 2.4e9 < two_b.num_params() < 2.6e9  # "Gemma 2B" has 2.5B with embeddings
    assert 8.4e9 < seven_b.num_params() < 8.6e9  # "Gemma 7B" has 8.5B with embeddings
    # 2B is multi-query: one 256-wide k and v head per layer
    assert tuple(two_b.blocks[0].attn.k_proj.weight.shape) == (256, 2048)
    assert tuple(seven_b.blocks[0].attn.k_proj.weight.shape) == (16 * 256, 3072)


def test_small_flavor_sizes_and_vocab_from_data():
    assert 0.8e6 < build_meta("debug", vocab_size=512).num_params() < 1.2e6
    assert 10e6 < build_meta("tiny", vocab_size=512).num_params(embedding=False) < 20e6
    assert 90e6 < build_meta("small", vocab_size=512).num_params(embedding=False) < 115e6
    wide = build_meta("debug", vocab_size=1000)
    assert wide.embed.weight.shape[0] == 1000
    with pytest.raises(ValueError, match="vocab_size"):
        config_for("debug")  # small flavors refuse to guess a vocabulary


def test_output_projection_is_the_embedding():
    torch.manual_seed(0)
    model = Gemma(tiny_config())
    names = [n for n, _ in model.named_parameters()]
    assert sum("embed" in n for n in names) == 1  # no separate lm_head
    idx = torch.randint(0, 97, (2, 9))
    loss = model(idx, targets=idx)
    loss.backward()
    assert model.embed.weight.grad.abs().sum() > 0


# ---------------------------------------------------------------------------------------------
# Gemma conventions


def test_rmsnorm_starts_as_identity_scale_and_uses_one_plus_weight():
    norm = RMSNorm(6, eps=1e-6)
    assert torch.equal(norm.weight, torch.zeros(6))
    x = torch.randn(3, 6)
    rms = x.pow(2).mean(-1, keepdim=True).add(1e-6).sqrt()
    torch.testing.assert_close(norm(x), x / rms)
    with torch.no_grad():
        norm.weight.fill_(0.5)
    torch.testing.assert_close(norm(x), 1.5 * x / rms)


def test_rmsnorm_computes_in_fp32_for_bf16_inputs():
    norm = RMSNorm(64, eps=1e-6)
    x = (torch.randn(4, 64) * 300).to(torch.bfloat16)
    out = norm(x)
    assert out.dtype == torch.bfloat16
    expected = x.float() * torch.rsqrt(x.float().pow(2).mean(-1, keepdim=True) + 1e-6)
    assert torch.equal(out, expected.to(torch.bfloat16))


def test_rope_rotates_halves_not_interleaved_pairs():
    hs, T = 8, 5
    x = torch.randn(1, 1, T, hs)
    cos, sin = rope_angles(torch.arange(T)[None], hs, 10000.0)
    out = apply_rope(x, cos, sin)
    # Gemma's reference: complex number (x[i], x[i + hs/2]) times exp(i * pos * theta^(-2i/hs))
    z = torch.complex(x[..., :hs // 2], x[..., hs // 2:])
    freq = 10000.0 ** (-torch.arange(0, hs, 2).float() / hs)
    rot = z * torch.polar(torch.ones(T, hs // 2), torch.arange(T)[:, None].float() * freq)
    torch.testing.assert_close(out, torch.cat([rot.real, rot.imag], dim=-1))


def test_rope_scores_depend_only_on_relative_position():
    hs = 16
    q, k = torch.randn(1, 1, 1, hs), torch.randn(1, 1, 1, hs)

    def score(pq, pk):
        cq, sq = rope_angles(torch.tensor([[pq]]), hs, 10000.0)
        ck, sk = rope_angles(torch.tensor([[pk]]), hs, 10000.0)
        return (apply_rope(q, cq, sq) * apply_rope(k, ck, sk)).sum()

    torch.testing.assert_close(score(7, 3), score(104, 100))
    assert not torch.allclose(score(7, 3), score(7, 4))


def test_mlp_is_geglu_with_tanh_gelu():
    torch.manual_seed(0)
    mlp = Gemma(tiny_config()).blocks[0].mlp
    x = torch.randn(3, 32) * 50  # gate values of a few units, where tanh and erf GELU differ
    gate, up = x @ mlp.gate_proj.weight.T, x @ mlp.up_proj.weight.T
    tanh_gelu = 0.5 * gate * (1 + torch.tanh(math.sqrt(2 / math.pi) * (gate + 0.044715 * gate**3)))
    torch.testing.assert_close(mlp(x), (tanh_gelu * up) @ mlp.down_proj.weight.T)


def test_positions_restart_at_every_document():
    doc_ids = torch.tensor([[4, 4, 4, 9, 9, 2, 2, 2, 2], [0, 0, 0, 0, 0, 0, 0, 0, 0]])
    assert document_positions(doc_ids).tolist() == [[0, 1, 2, 0, 1, 0, 1, 2, 3],
                                                    list(range(9))]
    # equal ids in separate runs are separate documents
    assert document_runs(torch.tensor([[5, 5, 6, 5, 5]])).tolist() == [[0, 0, 1, 2, 2]]


def test_embeddings_are_scaled_by_sqrt_d_model():
    torch.manual_seed(0)
    model = Gemma(tiny_config(n_layers=0))  # embed -> final norm -> tied projection
    idx = torch.randint(0, 97, (1, 4))
    seen = {}
    model.final_norm.register_forward_hook(lambda m, inp, out: seen.update(x=inp[0]))
    model(idx)
    torch.testing.assert_close(seen["x"], model.embed(idx) * math.sqrt(32))


# ---------------------------------------------------------------------------------------------
# attention backends


@pytest.mark.parametrize("seed", range(4))
def test_attention_backends_agree_forward_and_backward(seed):
    gen = torch.Generator().manual_seed(seed)
    B, T, nh, nkv, hs = 3, 29, 4, 2, 8
    q0 = torch.randn(B, nh, T, hs, generator=gen)
    k0 = torch.randn(B, nkv, T, hs, generator=gen)
    v0 = torch.randn(B, nkv, T, hs, generator=gen)
    upstream = torch.randn(B, nh, T, hs, generator=gen)
    doc_ids = random_doc_ids(B, T, gen)
    results = {}
    for backend in EXACT:
        q, k, v = (t.clone().requires_grad_() for t in (q0, k0, v0))
        out = attention(q, k, v, doc_ids, backend)
        (out * upstream).sum().backward()
        results[backend] = (out, q.grad, k.grad, v.grad)
    for backend in ("segments", "sdpa_mask"):
        for got, want in zip(results[backend], results["eager"]):
            torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)


def test_attention_without_doc_ids_is_plain_causal():
    gen = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(2, 2, 11, 8, generator=gen) for _ in range(3))
    want = F.scaled_dot_product_attention(q, k, v, is_causal=True)
    one_doc = torch.zeros(2, 11, dtype=torch.long)
    for backend in EXACT:
        torch.testing.assert_close(attention(q, k, v, None, backend), want)
        torch.testing.assert_close(attention(q, k, v, one_doc, backend), want)


def test_attention_never_looks_into_another_document():
    gen = torch.Generator().manual_seed(1)
    T = 16
    doc_ids = torch.tensor([[0] * 5 + [1] * 6 + [2] * 5])
    q, k, v = (torch.randn(1, 2, T, 8, generator=gen) for _ in range(3))
    k2, v2 = k.clone(), v.clone()
    k2[:, :, 5:11] += 10.0  # change only document 1's keys and values
    v2[:, :, 5:11] -= 3.0
    for backend in EXACT:
        before, after = attention(q, k, v, doc_ids, backend), attention(q, k2, v2, doc_ids, backend)
        torch.testing.assert_close(before[:, :, :5], after[:, :, :5], atol=0, rtol=0)
        torch.testing.assert_close(before[:, :, 11:], after[:, :, 11:], atol=0, rtol=0)
        assert not torch.allclose(before[:, :, 5:11], after[:, :, 5:11])


def test_softcap_falls_back_to_eager_and_changes_the_result():
    gen = torch.Generator().manual_seed(2)
    q, k, v = (torch.randn(2, 2, 12, 8, generator=gen) * 4 for _ in range(3))
    doc_ids = random_doc_ids(2, 12, gen)
    capped = attention(q, k, v, doc_ids, "eager", softcap=2.0)
    for backend in ("segments", "sdpa_mask"):
        torch.testing.assert_close(attention(q, k, v, doc_ids, backend, softcap=2.0), capped)
    assert not torch.allclose(capped, attention(q, k, v, doc_ids, "eager"), atol=1e-3)


@pytest.mark.parametrize("softcaps", [(None, None), (50.0, 30.0)])
def test_model_backends_agree_on_loss_logits_and_gradients(softcaps):
    gen = torch.Generator().manual_seed(3)
    B, T = 2, 24
    idx = torch.randint(0, 97, (B, T), generator=gen)
    targets = torch.randint(0, 97, (B, T), generator=gen)
    doc_ids = random_doc_ids(B, T, gen)
    results = {}
    for backend in EXACT:
        torch.manual_seed(0)
        model = Gemma(tiny_config(attention=backend, attn_softcap=softcaps[0],
                                  final_softcap=softcaps[1]))
        loss = model(idx, doc_ids, targets)
        loss.backward()
        grads = torch.cat([p.grad.flatten() for p in model.parameters()])
        results[backend] = (loss, model(idx, doc_ids), grads)
    for backend in ("segments", "sdpa_mask"):
        for got, want in zip(results[backend], results["eager"]):
            torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("backend", EXACT)
def test_a_reused_doc_id_after_another_document_starts_a_new_document(backend):
    torch.manual_seed(0)
    model = Gemma(tiny_config(attention=backend)).eval()
    idx = torch.randint(0, 97, (1, 9))
    with torch.no_grad():
        reused = model(idx, torch.tensor([[5, 5, 5, 6, 6, 5, 5, 5, 5]]))
        distinct = model(idx, torch.tensor([[0, 0, 0, 1, 1, 2, 2, 2, 2]]))
    torch.testing.assert_close(reused, distinct, atol=1e-6, rtol=1e-6)


@pytest.mark.parametrize("backend", EXACT)
def test_packed_document_gives_the_same_logits_as_alone(backend):
    """Masking plus restarted positions: a document's logits don't depend on its neighbours."""
    torch.manual_seed(0)
    model = Gemma(tiny_config(attention=backend)).eval()
    gen = torch.Generator().manual_seed(4)
    a, b, c = (torch.randint(0, 97, (1, n), generator=gen) for n in (7, 10, 5))
    packed = torch.cat([a, b, c], dim=1)
    doc_ids = torch.tensor([[0] * 7 + [1] * 10 + [2] * 5])
    with torch.no_grad():
        logits = model(packed, doc_ids)
        alone = model(b)
        other = torch.cat([torch.randint(0, 97, (1, 7), generator=gen), b, c], dim=1)
        logits_other = model(other, doc_ids)
    torch.testing.assert_close(logits[:, 7:17], alone, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(logits_other[:, 7:], logits[:, 7:], atol=1e-5, rtol=1e-5)
    # without doc_ids the same row is one document, and b's logits do change
    with torch.no_grad():
        assert not torch.allclose(model(packed)[:, 7:17], alone, atol=1e-3)


@pytest.mark.filterwarnings("ignore:`torch.jit.script_method` is deprecated:DeprecationWarning")
def test_flex_backend_forward_matches_eager_on_cpu():
    """FlexAttention runs forward only on CPU (torch 2.13) and compiles for ~20 s."""
    pytest.importorskip("torch.nn.attention.flex_attention")
    gen = torch.Generator().manual_seed(5)
    q = torch.randn(2, 4, 32, 16, generator=gen)
    k, v = (torch.randn(2, 2, 32, 16, generator=gen) for _ in range(2))
    doc_ids = random_doc_ids(2, 32, gen)
    try:
        got = attention(q, k, v, doc_ids, "flex", softcap=3.0)
    except torch._dynamo.exc.BackendCompilerFailed as e:  # e.g. no C++ compiler on this machine
        pytest.skip(f"inductor cannot compile flex_attention here: {e}")
    torch.testing.assert_close(got, attention(q, k, v, doc_ids, "eager", softcap=3.0),
                               atol=1e-5, rtol=1e-5)


def test_unknown_backend_is_an_error():
    q = torch.randn(1, 1, 3, 4)
    with pytest.raises(ValueError, match="backend"):
        attention(q, q, q, None, "fast")


# ---------------------------------------------------------------------------------------------
# loss


@pytest.mark.parametrize("chunk", [1, 7, 16, 1000])
@pytest.mark.parametrize("softcap", [None, 5.0])
def test_chunked_loss_equals_full_cross_entropy(chunk, softcap):
    gen = torch.Generator().manual_seed(6)
    B, T, d, V = 2, 8, 12, 50
    h0 = torch.randn(B, T, d, generator=gen)
    w0 = torch.randn(V, d, generator=gen)
    targets = torch.randint(0, V, (B, T), generator=gen)
    targets[0, :3] = -100
    targets[1, 5] = -100

    h, w = h0.clone().requires_grad_(), w0.clone().requires_grad_()
    loss = chunked_cross_entropy(h, w, targets, chunk=chunk, softcap=softcap)
    loss.backward()

    h_ref, w_ref = h0.clone().requires_grad_(), w0.clone().requires_grad_()
    logits = h_ref @ w_ref.T
    if softcap is not None:
        logits = torch.tanh(logits / softcap) * softcap
    ref = F.cross_entropy(logits.reshape(-1, V), targets.reshape(-1), ignore_index=-100)
    ref.backward()
    torch.testing.assert_close(loss, ref)
    torch.testing.assert_close(h.grad, h_ref.grad)
    torch.testing.assert_close(w.grad, w_ref.grad)


def test_model_loss_is_cross_entropy_of_its_logits():
    torch.manual_seed(0)
    model = Gemma(tiny_config(loss_chunk=5))
    gen = torch.Generator().manual_seed(7)
    idx = torch.randint(0, 97, (2, 13), generator=gen)
    targets = torch.randint(0, 97, (2, 13), generator=gen)
    targets[:, 0] = -100
    doc_ids = random_doc_ids(2, 13, gen)
    with torch.no_grad():
        logits = model(idx, doc_ids)
        loss = model(idx, doc_ids, targets)
    assert logits.shape == (2, 13, 97)
    torch.testing.assert_close(loss, F.cross_entropy(logits.reshape(-1, 97), targets.reshape(-1),
                                                     ignore_index=-100))
