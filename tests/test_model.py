"""The LabelCoRank model: label selection by hand and against a per-document reference, the
ablation flags, gradient paths, padding, overfitting a toy set, save/load, the oracle rerank."""

from __future__ import annotations

import itertools
import math
import random

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from lcr.config import train_params
from lcr.models.encoder import check_encoder, load_encoder
from lcr.errors import LcrError
from lcr.models.factory import build_model, load_model
from lcr.models.labelcorank import (LabelCoRank, LabelCoRankConfig, LabelInteraction, LabelTextAttention, RobertaBaseline, cooc_csr,
                       cooc_row_sums, cooc_transposed, focal_bce, oracle_rerank, select_labels, swap_gold_with_wrong,
                       top_labels)
from lcr.models.variants import MODEL_VARIANTS
from lcr.models.base import bce

K = 8
PAD = K
# A hand-made, deliberately asymmetric co-occurrence matrix: row l = m_l (eq. 9 sums rows).
M = np.array([
    [10, 3, 4, 0, 1, 0, 0, 0],  # m_0
    [3, 6, 0, 0, 0, 0, 0, 0],  # m_1
    [4, 0, 6, 2, 0, 0, 0, 5],  # m_2
    [2, 2, 2, 5, 0, 2, 0, 0],  # m_3: labels 0, 1, 2, 5 tie
    [1, 0, 0, 0, 2, 0, 0, 0],  # m_4
    [0, 0, 0, 1, 0, 3, 0, 0],  # m_5
    [0, 0, 0, 0, 0, 0, 2, 1],  # m_6: only label 7 co-occurs
    [0, 0, 9, 0, 0, 0, 0, 4],  # m_7
], dtype=np.float64)
FREQ_RANK = torch.tensor([3, 0, 5, 1, 2, 4, 6, 7])  # label 1 is the most frequent, then 3, 4, 0...


def _cooc_t(matrix=M) -> torch.Tensor:
    indices, values = cooc_transposed(sp.csr_matrix(matrix), matrix.shape[0])
    return torch.sparse_coo_tensor(indices, values, matrix.shape, check_invariants=True)


def _select(probs, gamma=4, alpha=0.3, **flags):
    return select_labels(torch.tensor(probs, dtype=torch.float32), gamma=gamma, alpha=alpha,
                         cooc_t=_cooc_t(), freq_rank=FREQ_RANK, **flags)


# --------------------------------------------------------------------------------------------
# Selection by hand


PROBS = [
    [0.9, 0.1, 0.5, 0.05, 0.0, 0.2, 0.1, 0.0],  # S2 = {0, 2}; M_hat = m_0 + m_2
    [0.9, 0.8, 0.7, 0.6, 0.5, 0.0, 0.0, 0.0],  # 5 labels pass: capped at gamma = 4
    [0.1, 0.1, 0.2, 0.0, 0.0, 0.0, 0.0, 0.0],  # nothing passes: all PAD
    [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.8, 0.0],  # S2 = {6}; only 7 co-occurs: 2 PAD
    [0.0, 0.0, 0.0, 0.4, 0.0, 0.0, 0.0, 0.0],  # S2 = {3}; 0, 1, 2, 5 tie for 3 slots
    [0.5, 0.5, 0.5, 0.5, 0.5, 0.0, 0.0, 0.0],  # 5 tied scores for 4 slots
]


def test_selection_threshold_expansion_padding_and_frequency_order():
    labels, mask = _select(PROBS, use_rank=False)
    # In selection order: S2 by score, then S3 by M_hat (ties: lower label index first).
    # doc 0: M_hat = [14, 3, 10, 2, 1, 0, 0, 5]; S2 = {0, 2} excluded; 7 (5) and 1 (3) fill.
    assert labels.tolist() == [
        [0, 2, 7, 1],
        [0, 1, 2, 3],
        [PAD, PAD, PAD, PAD],
        [6, 7, PAD, PAD],
        [3, 0, 1, 2],
        [0, 1, 2, 3],
    ]
    assert mask.tolist() == [[True] * 4, [True] * 4, [False] * 4, [True, True, False, False],
                             [True] * 4, [True] * 4]

    ranked, ranked_mask = _select(PROBS)  # eq. 11: most frequent first (FREQ_RANK), PAD last
    assert ranked.tolist() == [
        [1, 0, 2, 7],
        [1, 3, 0, 2],
        [PAD, PAD, PAD, PAD],
        [6, 7, PAD, PAD],
        [1, 3, 0, 2],
        [1, 3, 0, 2],
    ]
    assert torch.equal(ranked_mask, mask)


def test_selection_exclusion_threshold_and_positive_cooccurrence_only():
    # S2 = {2, 4}: M_hat = m_2 + m_4 = [5, 0, 6, 2, 2, 0, 0, 5]. 2 and 4 are excluded although 2
    # scores highest; 0 and 7 tie (lower index first), then 3; 1, 5, 6 have M_hat = 0: PAD.
    probs = [[0.0, 0.0, 0.31, 0.0, 0.3, 0.0, 0.0, 0.0]]
    labels, mask = _select(probs, gamma=6, use_rank=False)
    assert labels.tolist() == [[2, 4, 0, 7, 3, PAD]]
    assert mask.tolist() == [[True] * 5 + [False]]
    # alpha is inclusive; a higher alpha leaves S2 = {2}, and 4 (m_2,4 = 0) is gone.
    labels, mask = _select(probs, gamma=6, alpha=0.305, use_rank=False)
    assert labels.tolist() == [[2, 7, 0, 3, PAD, PAD]]
    assert mask.tolist() == [[True] * 4 + [False] * 2]


def test_topk_mode_and_no_cooc_take_the_top_gamma_of_s1():
    for flags in ({"selection": "topk"}, {"use_cooc": False}):
        labels, mask = _select(PROBS, use_rank=False, **flags)
        expected = [sorted(range(K), key=lambda l: (-p[l], l))[:4] for p in PROBS]
        assert labels.tolist() == expected  # no threshold, nothing added from co-occurrence
        assert bool(mask.all())


def test_fill_to_gamma_fills_the_free_slots_with_the_best_remaining_labels_of_s1():
    labels, mask = _select(PROBS, use_rank=False, fill_to_gamma=True)
    # Full rows are untouched; doc 2 (nothing passes alpha) gets S1's top 4 (2, then 0 and 1 tie,
    # then 3); doc 3 (S2 = {6}, S3 = {7}) gets S1's best two others, 0 and 1 (all tie at 0).
    assert labels.tolist() == [
        [0, 2, 7, 1],
        [0, 1, 2, 3],
        [2, 0, 1, 3],
        [6, 7, 0, 1],
        [3, 0, 1, 2],
        [0, 1, 2, 3],
    ]
    assert bool(mask.all())
    # The filled labels are ranked by frequency like the others.
    ranked, _ = _select(PROBS, fill_to_gamma=True)
    assert ranked[3].tolist() == [1, 0, 6, 7]


def test_selection_accepts_csr_and_needs_its_statistics():
    csr = torch.tensor(M).t().to_sparse_csr()
    probs = torch.tensor(PROBS, dtype=torch.float32)
    a = select_labels(probs, gamma=4, cooc_t=csr, freq_rank=FREQ_RANK)
    b = select_labels(probs, gamma=4, cooc_t=_cooc_t(), freq_rank=FREQ_RANK)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    with pytest.raises(LcrError):
        select_labels(probs, gamma=4, cooc_t=None, freq_rank=FREQ_RANK)
    with pytest.raises(LcrError):
        select_labels(probs, gamma=4, cooc_t=_cooc_t(), freq_rank=None)


def _reference(probs: list[float], matrix: np.ndarray, gamma: int, alpha: float, freq_rank: list[int],
               selection: str, use_cooc: bool, use_rank: bool,
               fill_to_gamma: bool = False) -> tuple[list[int], list[bool]]:
    """The selection written out for one document, the obvious way."""
    k = len(probs)
    by_score = sorted(range(k), key=lambda label: (-probs[label], label))
    if selection == "topk" or not use_cooc:
        s4 = by_score[:gamma]
    else:
        # S1 is float32, and so is the comparison: 0.9 in float32 passes alpha = 0.9.
        s2 = [label for label in by_score if probs[label] >= np.float32(alpha)][:gamma]
        m_hat = [sum(matrix[l, j] for l in s2) for j in range(k)]
        s3 = sorted((j for j in range(k) if j not in s2 and m_hat[j] > 0), key=lambda j: (-m_hat[j], j))
        s4 = s2 + s3[: gamma - len(s2)]
        if fill_to_gamma:
            s4 += [label for label in by_score if label not in s4][: gamma - len(s4)]
    if use_rank:
        s4 = sorted(s4, key=lambda label: (freq_rank[label], label))
    pad = gamma - len(s4)
    return s4 + [k] * pad, [True] * len(s4) + [False] * pad


def test_vectorised_selection_equals_a_per_document_reference():
    rng = np.random.default_rng(0)
    for trial in range(60):
        k = int(rng.integers(3, 40))
        gamma = int(rng.integers(1, k + 1))
        batch = int(rng.integers(1, 6))
        # Rounded scores make ties common; sparse integer counts, some rows empty, asymmetric.
        probs = torch.from_numpy(np.round(rng.random((batch, k)) ** 3, 1).astype(np.float32))
        matrix = rng.integers(0, 4, size=(k, k)) * (rng.random((k, k)) < 0.3)
        matrix[rng.random(k) < 0.2] = 0
        matrix = matrix.astype(np.float64)
        freq_rank = rng.permutation(k) if trial % 2 else rng.integers(0, 3, size=k)  # with ties too
        alpha = float(rng.choice([0.0, 0.1, 0.3, 0.5, 0.9]))
        indices, values = cooc_transposed(sp.coo_matrix(matrix), k)
        cooc_t = torch.sparse_coo_tensor(indices, values, (k, k), check_invariants=True)
        for selection in ("threshold", "topk"):
            for use_cooc in (True, False):
                for use_rank, fill in itertools.product((True, False), (True, False)):
                    labels, mask = select_labels(probs, gamma=gamma, alpha=alpha, cooc_t=cooc_t,
                                                 freq_rank=torch.as_tensor(freq_rank), selection=selection,
                                                 use_cooc=use_cooc, use_rank=use_rank, fill_to_gamma=fill)
                    for row in range(batch):
                        expected = _reference(probs[row].tolist(), matrix, gamma, alpha, list(freq_rank),
                                              selection, use_cooc, use_rank, fill)
                        got = (labels[row].tolist(), mask[row].tolist())
                        assert got == expected, (trial, selection, use_cooc, use_rank, fill, row)


def test_cooc_row_sums_gather_and_sparse_product_equal_dense_row_sums():
    rng = np.random.default_rng(1)
    for _ in range(20):
        k = int(rng.integers(2, 30))
        slots = int(rng.integers(1, k + 1))
        batch = int(rng.integers(1, 5))
        matrix = (rng.integers(0, 50, size=(k, k)) * (rng.random((k, k)) < 0.4)).astype(np.float64)
        matrix[rng.random(k) < 0.2] = 0  # empty rows
        indices, values = cooc_transposed(sp.coo_matrix(matrix), k)
        csr = cooc_csr(torch.sparse_coo_tensor(indices, values, (k, k), check_invariants=True))
        labels = torch.stack([torch.randperm(k, generator=torch.Generator().manual_seed(int(rng.integers(1 << 30))))[:slots]
                              for _ in range(batch)])  # (B, slots), distinct per row
        keep = torch.from_numpy(rng.random((batch, slots)) < 0.6)
        expected = np.stack([matrix[labels[row][keep[row]].numpy()].sum(axis=0) for row in range(batch)])
        for gather in (True, False, None):
            got = cooc_row_sums(csr, labels, keep, gather=gather)
            assert got.dtype == torch.float64 and got.shape == (batch, k)
            np.testing.assert_array_equal(got.numpy(), expected)


# --------------------------------------------------------------------------------------------
# The model on a tiny encoder


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A tiny random RoBERTa (dropout off, so outputs are deterministic) and its tokenizer."""
    import json

    from tests.tiny_encoder import make_tiny_encoder

    folder = make_tiny_encoder(tmp_path_factory.mktemp("tiny") / "encoder")
    config_path = f"{folder}/config.json"
    with open(config_path) as handle:
        config = json.load(handle)
    config.update(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    with open(config_path, "w") as handle:
        json.dump(config, handle)
    return folder


TEXTS = ["wheat corn harvest tonnes grain", "crude oil prices fell on monday",
         "bank interest rate and the dollar", "a tanker strike at the port"]


def _batch(folder, texts=TEXTS):
    _, tokenizer = load_encoder(folder)
    enc = tokenizer(texts, padding=True, return_tensors="pt")
    return enc["input_ids"], enc["attention_mask"]


def _model(folder, variant="labelcorank", seed=0, **config) -> torch.nn.Module:
    torch.manual_seed(seed)
    encoder, _ = load_encoder(folder)
    settings = dict(num_labels=K, gamma=4, num_heads=2, dropout=0.0)
    settings.update(config)
    model = build_model(variant, LabelCoRankConfig(**settings), encoder, sp.csr_matrix(M), FREQ_RANK)
    if variant != "roberta":
        # Push S1 so that S2 is small and varies: label l gets logit (l % 3) * 2 - 3, nudged by the
        # text; co-occurrence then has room to add labels.
        with torch.no_grad():
            model.classifier1.bias.copy_(torch.tensor([(l % 3) * 2.0 - 3.0 for l in range(K)]))
    return model.eval()


def _label_sets(labels, mask):
    return [sorted(row[m].tolist()) for row, m in zip(labels, mask)]


def test_forward_shapes_and_losses(tiny):
    ids, attn = _batch(tiny)
    model = _model(tiny)
    gold = torch.zeros(len(TEXTS), K)
    gold[:, 1] = 1
    out = model(ids, attn, labels=gold)
    assert out.logits.shape == out.logits1.shape == out.logits2.shape == (len(TEXTS), K)
    assert torch.equal(out.logits, out.logits2)
    assert out.selected.shape == out.selected_mask.shape == (len(TEXTS), 4)
    assert out.selected.dtype == torch.long and out.selected_mask.dtype == torch.bool
    expected = 0.3 * out.loss1 + 0.7 * out.loss2
    assert torch.allclose(out.loss, expected)
    assert model.cooc_t.is_sparse and model.cooc_t.shape == (K, K)
    # The model's selection is select_labels on its own S1.
    labels, mask = select_labels(torch.sigmoid(out.logits1), gamma=4, cooc_t=_cooc_t(), freq_rank=FREQ_RANK)
    assert torch.equal(labels, out.selected) and torch.equal(mask, out.selected_mask)


def test_cached_cooccurrence_follows_loaded_weights(tiny):
    model = _model(tiny)
    before = model.cooc_matrix()
    assert model.cooc_matrix() is before  # built once, reused
    state = model.state_dict()
    state["cooc_values"] = state["cooc_values"] * 3
    model.load_state_dict(state)
    assert torch.equal(model.cooc_matrix().to_dense(), before.to_dense() * 3)


def test_ablation_flags_change_what_they_name(tiny):
    ids, attn = _batch(tiny)
    full = _model(tiny)
    state = full.state_dict()
    out = full(ids, attn)
    variants = {}
    for name in ("no_cooc", "no_rank", "no_pos", "no_rerank"):
        model = _model(tiny, name)
        model.load_state_dict({k: v for k, v in state.items() if k in model.state_dict()})
        variants[name] = (model, model(ids, attn))
    flags = {name: (m.config.use_cooc, m.config.use_rank, m.config.use_pos) for name, (m, _) in variants.items()}
    assert flags == {"no_cooc": (False, True, True), "no_rank": (True, False, True),
                     "no_pos": (True, True, False), "no_rerank": (False, False, False)}
    assert torch.equal(variants["no_cooc"][1].logits1, out.logits1)  # same weights, same S1

    # no_rank: the same label sets, in selection order instead of frequency order.
    no_rank = variants["no_rank"][1]
    assert _label_sets(no_rank.selected, no_rank.selected_mask) == _label_sets(out.selected, out.selected_mask)
    assert not torch.equal(no_rank.selected, out.selected)
    rank_of = FREQ_RANK[out.selected.clamp(max=K - 1)].masked_fill(~out.selected_mask, K)
    assert bool((rank_of[:, 1:] >= rank_of[:, :-1]).all())

    # no_cooc: S = the top-gamma of S1 (in frequency order), no expansion and no PAD.
    no_cooc = variants["no_cooc"][1]
    top = torch.sort(out.logits1, dim=1, descending=True, stable=True).indices[:, :4]
    assert _label_sets(no_cooc.selected, no_cooc.selected_mask) == [sorted(r) for r in top.tolist()]
    assert bool(no_cooc.selected_mask.all())
    assert _label_sets(no_cooc.selected, no_cooc.selected_mask) != _label_sets(out.selected, out.selected_mask)

    # no_pos: same S, no position table; the full model does use its position table.
    no_pos_model, no_pos = variants["no_pos"]
    assert no_pos_model.position_embedding is None and "position_embedding.weight" not in no_pos_model.state_dict()
    assert torch.equal(no_pos.selected, out.selected)
    with torch.no_grad():
        full.position_embedding.weight.zero_()
        zeroed = full(ids, attn)
    assert torch.allclose(zeroed.logits2, no_pos.logits2, atol=1e-6)  # M_pos = 0 is exactly no_pos
    assert not torch.allclose(out.logits2, no_pos.logits2)

    # no_rerank: all three off.
    no_rerank = variants["no_rerank"][1]
    assert torch.equal(no_rerank.selected, top)


def test_gradients_reach_the_encoder_through_each_loss_and_not_through_selection(tiny):
    ids, attn = _batch(tiny)
    model = _model(tiny).train()
    gold = torch.zeros(len(TEXTS), K)
    gold[torch.arange(len(TEXTS)), torch.arange(len(TEXTS))] = 1
    encoder_weight = model.encoder.embeddings.word_embeddings.weight

    def grads(loss_name):
        model.zero_grad(set_to_none=True)
        getattr(model(ids, attn, labels=gold), loss_name).backward()
        return {name: p.grad for name, p in model.named_parameters()}

    g1 = grads("loss1")
    assert encoder_weight.grad is not None and encoder_weight.grad.abs().sum() > 0
    assert g1["classifier1.weight"] is not None
    for name in ("label_embedding.weight", "attention.query.weight", "classifier2.weight"):
        assert g1[name] is None, name  # L1 does not touch the second branch

    g2 = grads("loss2")
    assert encoder_weight.grad is not None and encoder_weight.grad.abs().sum() > 0
    assert g2["label_embedding.weight"] is not None and g2["attention.key.weight"] is not None
    # Selection is a discrete, detached choice: nothing of L2 reaches W1/W2 through S.
    assert g2["classifier1.weight"] is None and g2["pool.weight"] is None
    # PAD's embedding row gets no gradient (its queries are zeroed).
    assert float(g2["label_embedding.weight"][PAD].abs().sum()) == 0.0


def test_padding_tokens_are_masked_by_the_attention_mask(tiny):
    ids, attn = _batch(tiny)
    assert bool((attn == 0).any())
    model = _model(tiny)
    out = model(ids, attn)
    changed = ids.clone()
    torch.manual_seed(1)
    noise = torch.randint(5, int(ids.max()) + 1, ids.shape)
    changed[attn == 0] = noise[attn == 0]  # padding ids replaced by real tokens, still masked
    again = model(changed, attn)
    assert torch.allclose(out.logits2, again.logits2, atol=1e-6)
    assert torch.allclose(out.logits1, again.logits1, atol=1e-6)
    # Unmasking them does change the result: the mask, not the token id, decides.
    assert not torch.allclose(out.logits2, model(changed, torch.ones_like(attn)).logits2, atol=1e-6)


def test_no_nan_without_labels_or_tokens(tiny):
    ids, attn = _batch(tiny)
    model = _model(tiny).train()
    with torch.no_grad():
        model.classifier1.bias.fill_(-30.0)  # nothing reaches alpha: S is all PAD
    gold = torch.zeros(len(TEXTS), K)
    out = model(ids, attn, labels=gold)
    assert not bool(out.selected_mask.any()) and bool((out.selected == PAD).all())
    # f_cat = 0, so Y is W5's bias alone.
    assert torch.allclose(out.logits2, model.classifier2.bias.expand_as(out.logits2))
    out.loss.backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)

    attention = LabelTextAttention(8, 2)
    result = attention(torch.randn(2, 3, 8), torch.randn(2, 5, 8), torch.zeros(2, 5, dtype=torch.bool))
    assert bool(torch.isfinite(result).all())


def test_tiny_model_overfits_32_documents(tiny):
    words = {0: "wheat corn grain", 1: "crude oil barrel", 2: "bank dollar rate",
             3: "tanker port cargo", 4: "harvest farmers tonnes", 5: "opec refinery prices"}
    rng = random.Random(0)
    texts, gold = [], torch.zeros(32, 6)
    for i in range(32):
        chosen = rng.sample(range(6), rng.choice([1, 2]))
        texts.append(f"report {i} " + " ".join(words[c] for c in chosen))
        gold[i, chosen] = 1
    ids, attn = _batch(tiny, texts)
    torch.manual_seed(0)
    encoder, _ = load_encoder(tiny)
    cooc = (gold.t() @ gold).numpy()
    freq_rank = torch.argsort(torch.argsort(-gold.sum(0), stable=True))
    model = build_model("labelcorank", LabelCoRankConfig(num_labels=6, gamma=3, num_heads=2, dropout=0.0),
                        encoder, sp.csr_matrix(cooc), freq_rank)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    for step in range(300):
        out = model(ids, attn, labels=gold)
        optimizer.zero_grad()
        out.loss.backward()
        optimizer.step()
        if step % 10 == 9:
            with torch.no_grad():
                top1 = model.eval()(ids, attn).logits.argmax(1)
            model.train()
            if float(gold[torch.arange(32), top1].mean()) == 1.0:
                break
    assert float(gold[torch.arange(32), top1].mean()) == 1.0, f"train P@1 after {step + 1} steps"


def test_low_rank_classifier_and_save_load_round_trip(tiny, tmp_path):
    ids, attn = _batch(tiny)
    for variant, extra in (("labelcorank", {"classifier_rank": 3}), ("no_pos", {}), ("roberta", {})):
        model = _model(tiny, variant, **extra)
        if extra:
            a, b = model.classifier2
            assert a.weight.shape == (3, 4 * 32) and b.weight.shape == (K, 3)
        out = model(ids, attn, labels=torch.ones(len(TEXTS), K))
        out.loss.backward()
        model.save_pretrained(tmp_path / variant)
        assert sorted(p.name for p in (tmp_path / variant).iterdir()) == ["config.json", "model.safetensors"]
        for encoder in (None, model.encoder_for_loading()):
            loaded = load_model(tmp_path / variant, encoder).eval()
            assert type(loaded) is type(model) and loaded.config == model.config
            again = loaded(ids, attn)
            assert torch.equal(again.logits, out.logits)
            if variant != "roberta":
                assert torch.equal(again.selected, out.selected)
                assert torch.equal(loaded.freq_rank, model.freq_rank)
    assert isinstance(load_model(tmp_path / "roberta"), RobertaBaseline)
    with pytest.raises(LcrError, match="not a saved lcr model"):
        load_model(tmp_path / "missing")


def test_baseline_is_the_first_branch(tiny):
    ids, attn = _batch(tiny)
    model = _model(tiny, "roberta")
    out = model(ids, attn, labels=torch.zeros(len(TEXTS), K))
    assert out.logits.shape == (len(TEXTS), K) and out.logits2 is None and out.loss1 is None
    assert torch.allclose(out.loss, torch.nn.functional.binary_cross_entropy_with_logits(
        out.logits, torch.zeros_like(out.logits)))
    full = _model(tiny)
    full.load_state_dict({**full.state_dict(), **model.state_dict()})
    assert torch.allclose(full(ids, attn).logits1, out.logits)


def test_build_model_checks_and_train_params_form(tiny):
    encoder, _ = load_encoder(tiny)
    config = LabelCoRankConfig(num_labels=K, gamma=4, num_heads=2)
    with pytest.raises(LcrError, match="valid variants: " + ", ".join(MODEL_VARIANTS)):
        build_model("nope", config, encoder, M, FREQ_RANK)
    with pytest.raises(LcrError, match="gamma = 9 is larger than the number of labels K = 8"):
        build_model("labelcorank", LabelCoRankConfig(num_labels=K, gamma=9, num_heads=2), encoder, M, FREQ_RANK)
    with pytest.raises(LcrError, match="co-occurrence"):
        build_model("labelcorank", config, encoder, None, FREQ_RANK)
    with pytest.raises(LcrError, match="num_heads"):
        build_model("labelcorank", LabelCoRankConfig(num_labels=K, gamma=4, num_heads=5), encoder, M, FREQ_RANK)
    with pytest.raises(LcrError, match=r"\(8, 8\)"):
        build_model("labelcorank", config, encoder, M[:4], FREQ_RANK)
    assert isinstance(build_model("no_cooc", config, encoder, None, FREQ_RANK), LabelCoRank)

    params = train_params({"variant": "no_rank", "gamma": 5, "num_heads": 2, "beta": 0.25, "selection": "topk"})
    model = build_model(params, encoder, cooc=sp.csr_matrix(M), freq_rank=FREQ_RANK.numpy())
    assert model.variant == "no_rank" and model.config.num_labels == K
    assert (model.config.gamma, model.config.beta, model.config.selection, model.config.use_rank) == (5, 0.25, "topk", False)


def test_oracle_rerank_by_hand():
    topk = np.array([[5, 3, 9, 1, 0], [2, 4, 6, 8, 7], [1, 2, 3, 4, 5]])
    gold_lists = [{9, 1}, {7}, {3, 1}]
    dense = np.zeros((3, 10), dtype=np.int8)
    for i, labels in enumerate(gold_lists):
        dense[i, list(labels)] = 1
    expected_m4 = [[9, 1, 5, 3, 0], [2, 4, 6, 8, 7], [1, 3, 2, 4, 5]]
    expected_m3 = [[9, 5, 3, 1, 0], [2, 4, 6, 8, 7], [1, 3, 2, 4, 5]]
    for gold in (dense, sp.csr_matrix(dense), torch.from_numpy(dense), gold_lists):
        assert oracle_rerank(topk, gold, m=4).tolist() == expected_m4
        assert oracle_rerank(topk, gold, m=3).tolist() == expected_m3
    result = oracle_rerank(torch.from_numpy(topk), torch.from_numpy(dense))  # m = 10 > k: all of it
    assert isinstance(result, torch.Tensor) and result.tolist() == [[9, 1, 5, 3, 0], [7, 2, 4, 6, 8],
                                                                    [1, 3, 2, 4, 5]]
    with pytest.raises(LcrError):
        oracle_rerank(topk, dense[:2])


def test_top_labels_through_column_blocks_equal_a_full_sort():
    generator = torch.Generator().manual_seed(0)
    for num, k in [(17_963, 10), (64 * 40, 10), (64 * 40 + 1, 10), (64 * 40 - 1, 10), (90, 5), (300, 1)]:
        logits = torch.randn(7, num, generator=generator) * 3  # (B, K)
        logits[0] = torch.round(logits[0])  # many ties
        logits[1, -1] = 99.0  # the best label after the last full block
        logits[2, :5] = logits[2, 64:69] = 50.0  # the best values in two blocks, equal
        logits[3] = float("-inf")
        logits[3, 3] = 1.0
        logits[4] = 1e4 * torch.arange(num, dtype=torch.float32)  # all sigmoids round to 1.0
        scores, idx = top_labels(logits, k)
        values = torch.sort(logits, dim=1, descending=True, stable=True).values[:, :k]  # (B, k)
        assert torch.equal(logits.gather(1, idx), values), (num, k)  # the k best values, best first
        assert torch.equal(scores, torch.sigmoid(values))
        assert all(len(set(row)) == k for row in idx.tolist())  # k distinct labels
        assert idx[1, 0] == num - 1 and idx[4].tolist() == list(range(num - 1, num - 1 - k, -1))
        ties = logits[0] == values[0, -1]
        assert set(idx[0].tolist()) >= set(torch.nonzero(logits[0] > values[0, -1]).flatten().tolist())
        assert ties[idx[0]].sum() == k - (logits[0] > values[0, -1]).sum()


def test_encoder_paths(tmp_path):
    with pytest.raises(LcrError, match="does not exist"):
        check_encoder(str(tmp_path / "nowhere"))
    with pytest.raises(LcrError, match="does not exist"):
        load_encoder("./no/such/encoder")
    with pytest.raises(LcrError, match="no config.json"):
        load_encoder(str(tmp_path))
    model, tokenizer = load_encoder(None)  # the bundled all-MiniLM-L6-v2
    assert model.config.hidden_size == 384
    enc = tokenizer(["label co-occurrence reranking"], return_tensors="pt")
    assert model(**enc).last_hidden_state.shape[-1] == 384


# --------------------------------------------------------------------------------------------
# The training recipe's model parts: pooling, head initialisation, the first-stage warm-up


def test_mean_pooling_ignores_padding(tiny):
    from lcr.models.labelcorank import pool_tokens

    hidden = torch.randn(2, 5, 3)
    mask = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]])
    changed = hidden.clone()
    changed[0, 3:] = 1e6  # what stands on padding must not matter
    pooled = pool_tokens(changed, mask, "mean")
    assert torch.allclose(pooled[0], hidden[0, :3].mean(dim=0))
    assert torch.allclose(pooled[1], hidden[1].mean(dim=0))
    assert torch.equal(pool_tokens(hidden, mask, "cls"), hidden[:, 0])

    # Through the whole model: padding a batch does not change a document's first prediction.
    model = _model(tiny, "roberta", pooling="mean")
    ids, attention = _batch(tiny, [TEXTS[0]])
    alone = model(ids, attention).logits1
    ids2, attention2 = _batch(tiny, [TEXTS[0], TEXTS[0] + " and many more words to pad the first one"])
    assert attention2[0].sum() < attention2.shape[1]  # the first row is padded now
    assert torch.allclose(model(ids2, attention2).logits1[0], alone[0], atol=1e-5)


def test_bias_starts_at_the_label_log_odds_and_w1_at_the_pooler(tiny):
    from lcr.models.labelcorank import init_heads

    freq = np.array([30, 1, 7, 50, 2, 9, 12, 99])
    for variant in ("labelcorank", "roberta"):
        model = _model(tiny, variant)
        done = init_heads(model, label_freq=freq, n_docs=100, from_pooler=True)
        assert done["pooler"] is True
        assert torch.allclose(torch.sigmoid(model.classifier1.bias.double()), torch.tensor(freq / 100.0), atol=1e-6)
        if variant == "labelcorank":
            assert done["bias"] == ["classifier1", "classifier2"]
            assert torch.allclose(torch.sigmoid(model.classifier2.bias.double()), torch.tensor(freq / 100.0),
                                  atol=1e-6)
        assert torch.equal(model.pool.weight, model.encoder.pooler.dense.weight)
        assert torch.equal(model.pool.bias, model.encoder.pooler.dense.bias)
    low_rank = _model(tiny, classifier_rank=3)
    init_heads(low_rank, label_freq=freq, n_docs=100)
    assert torch.allclose(torch.sigmoid(low_rank.classifier2[-1].bias.double()), torch.tensor(freq / 100.0),
                          atol=1e-6)
    # never seen / always seen: finite
    model = _model(tiny)
    init_heads(model, label_freq=np.array([0, 100, 5, 5, 5, 5, 5, 5]), n_docs=100)
    assert torch.isfinite(model.classifier1.bias).all()


def test_first_stage_only_leaves_the_reranking_branch_without_gradient(tiny):
    model = _model(tiny).train()
    ids, attention = _batch(tiny)
    labels = torch.zeros(len(TEXTS), K)
    labels[:, 1] = 1
    out = model(ids, attention, labels=labels, first_stage_only=True)
    assert out.loss2 is None and out.selected is None
    assert torch.equal(out.loss, out.loss1)
    out.loss.backward()
    assert model.classifier1.weight.grad is not None and model.classifier1.weight.grad.abs().sum() > 0
    for name in ("classifier2", "label_embedding", "position_embedding", "ffn_in", "ffn_out", "attention"):
        for parameter in getattr(model, name).parameters():
            assert parameter.grad is None, name


def test_residual_final_prediction_starts_at_the_first(tiny):
    model = _model(tiny, residual=True)
    ids, attention = _batch(tiny)
    out = model(ids, attention)
    assert torch.allclose(out.logits2, out.logits1)  # W5 = 0, b5 = 0: Y starts as S1
    from lcr.models.labelcorank import init_heads

    init_heads(model, label_freq=np.arange(1, K + 1), n_docs=20)
    assert torch.equal(model.classifier2.bias, torch.zeros(K))  # the prior is already in S1
    labels = torch.zeros(len(TEXTS), K)
    labels[:, 2] = 1
    model.train()
    model(ids, attention, labels=labels).loss2.backward()
    assert model.classifier2.weight.grad.abs().sum() > 0  # and it learns from there


def test_per_label_head_rescores_only_the_labels_of_s(tiny):
    model = _model(tiny, final_head="per_label")
    ids, attention = _batch(tiny)
    out = model(ids, attention)
    assert torch.allclose(out.logits2, out.logits1)  # starts as S1
    assert not hasattr(model, "classifier2")
    with torch.no_grad():
        model.label_offset.weight.fill_(1.0)  # +1 on every label of S
    out = model(ids, attention)
    in_s = torch.zeros(len(TEXTS), K + 1, dtype=torch.bool).scatter(1, out.selected, out.selected_mask)[:, :K]
    assert in_s.any() and (~in_s).any()
    assert torch.allclose(out.logits2[in_s], out.logits1[in_s] + 1.0)
    assert torch.allclose(out.logits2[~in_s], out.logits1[~in_s])
    labels = torch.zeros(len(TEXTS), K)
    labels[:, 2] = 1
    model.train()
    model(ids, attention, labels=labels).loss2.backward()
    assert model.label_scorer.weight.grad.abs().sum() > 0 and model.shared_scorer.weight.grad.abs().sum() > 0


def test_per_label_alone_head_scores_the_labels_of_s_on_its_own(tiny):
    from lcr.models.labelcorank import init_heads

    model = _model(tiny, final_head="per_label_alone")
    freq = np.arange(1, K + 1)
    assert "label_offset" in init_heads(model, label_freq=freq, n_docs=20)["bias"]
    ids, attention = _batch(tiny)
    out = model(ids, attention)
    in_s = torch.zeros(len(TEXTS), K + 1, dtype=torch.bool).scatter(1, out.selected, out.selected_mask)[:, :K]
    assert in_s.any() and (~in_s).any()
    # u = w = 0: each label of S starts at its prior, whatever S1 says of it; the others keep S1's logit
    prior = torch.as_tensor(freq / 20, dtype=out.logits2.dtype).expand(len(TEXTS), K)
    assert torch.allclose(torch.sigmoid(out.logits2[in_s]), prior[in_s], atol=1e-6)
    assert not torch.allclose(out.logits2[in_s], out.logits1[in_s])
    assert torch.allclose(out.logits2[~in_s], out.logits1[~in_s])
    # L2 reaches S1's logits only through the labels outside S, the scorer through those of S
    labels = torch.zeros(len(TEXTS), K)
    labels[:, 2] = 1
    model.train()
    out = model(ids, attention, labels=labels)
    first_grad = torch.autograd.grad(out.loss2, out.logits1, retain_graph=True)[0]
    in_s = torch.zeros(len(TEXTS), K + 1, dtype=torch.bool).scatter(1, out.selected, out.selected_mask)[:, :K]
    assert torch.all(first_grad[in_s] == 0) and first_grad[~in_s].abs().sum() > 0
    out.loss2.backward()
    assert model.label_scorer.weight.grad.abs().sum() > 0 and model.shared_scorer.weight.grad.abs().sum() > 0
    with pytest.raises(LcrError, match=r"final_head = 'alone' is not a valid one of 'dense', 'per_label'"):
        train_params({"final_head": "alone"})


@pytest.mark.parametrize("head", [{"final_head": "per_label"}, {"final_head": "dense", "residual": True}])
def test_first_temperature_divides_the_s1_logits_that_the_final_prediction_adds(tiny, head):
    ids, attention = _batch(tiny)
    labels = torch.zeros(len(TEXTS), K)
    labels[:, 2] = 1
    outs = {}
    for temperature in (1.0, 4.0):
        torch.manual_seed(0)
        model = _model(tiny, first_temperature=temperature, dropout=0.0, **head).eval()
        outs[temperature] = model(ids, attention, labels=labels)
    plain, tempered = outs[1.0], outs[4.0]
    # the reranking stage starts at zero: the final logits are S1's, divided by T
    assert torch.allclose(plain.logits2, plain.logits1)
    assert torch.allclose(tempered.logits2, tempered.logits1 / 4.0)
    # S1, S and L1 are untouched; L2 scores the tempered logits
    assert torch.equal(tempered.logits1, plain.logits1) and torch.equal(tempered.loss1, plain.loss1)
    assert torch.equal(tempered.selected, plain.selected)
    assert not torch.allclose(tempered.loss2, plain.loss2)
    # with a correction: z1 / T + change, the same change as at T = 1
    torch.manual_seed(0)
    model = _model(tiny, first_temperature=4.0, dropout=0.0, **head).eval()
    with torch.no_grad():
        for parameter in model.parameters():
            if parameter.dim() and parameter.abs().sum() == 0:
                parameter.add_(0.01)
    out = model(ids, attention)
    model.config = model.config.model_copy(update={"first_temperature": 1.0})
    change = model(ids, attention).logits2 - out.logits1
    assert torch.allclose(out.logits2, out.logits1 / 4.0 + change, atol=1e-6)
    with pytest.raises(LcrError, match="first_temperature must be above 0"):
        train_params({"first_temperature": 0.0})
    with pytest.raises(LcrError, match="first_temperature must be above 0"):
        LabelCoRankConfig(num_labels=K, first_temperature=-1.0).validate()


@pytest.mark.parametrize("head", [{"final_head": "per_label"}, {"final_head": "dense", "residual": True}])
def test_detach_first_keeps_l2_out_of_the_first_prediction(tiny, head):
    labels = torch.zeros(len(TEXTS), K)
    labels[:, 2] = 1
    ids, attention = _batch(tiny)
    grads = {}
    for detach in (False, True):
        torch.manual_seed(0)
        model = _model(tiny, detach_first=detach, dropout=0.0, **head).train()
        with torch.no_grad():  # a reranking stage that already changes something
            for parameter in model.parameters():
                if parameter.dim() and parameter.abs().sum() == 0:
                    parameter.add_(0.01)
        model(ids, attention, labels=labels).loss2.backward()
        grads[detach] = model.classifier1.weight.grad
    assert grads[False] is not None and grads[False].abs().sum() > 0  # L2 trains S1's head ...
    assert grads[True] is None or grads[True].abs().sum() == 0  # ... unless detached


def test_summary_tokens_feed_the_first_prediction_and_the_attention(tiny, tmp_path):
    from lcr.models.summary import SummaryTokens

    ids, attn = _batch(tiny)
    encoder, tokenizer = load_encoder(tiny)
    # n = 1 builds exactly the paper's layers, with the same random numbers as before the option.
    plain, one = _model(tiny), _model(tiny, summary_tokens=1)
    assert one.summary is None and all(torch.equal(a, b) for a, b in zip(plain.state_dict().values(),
                                                                          one.state_dict().values()))
    for variant in ("labelcorank", "roberta"):
        torch.manual_seed(0)
        model = build_model(variant, LabelCoRankConfig(num_labels=K, gamma=4, num_heads=2, dropout=0.0,
                                                       summary_tokens=3),
                            load_encoder(tiny)[0], sp.csr_matrix(M), FREQ_RANK, tokenizer=tokenizer).eval()
        assert isinstance(model.summary, SummaryTokens) and model.summary.extra.shape == (2, 32)
        assert model.classifier1.weight.shape == (K, 3 * 32)  # W2 reads the 3 pooled summary states
        cls = model.encoder.get_input_embeddings().weight[tokenizer.cls_token_id]
        assert (model.summary.extra - cls).abs().max() < 0.2  # started from [CLS] (plus noise)
        hidden, mask, logits1 = model.first_prediction(ids, attn)
        assert hidden.shape[1] == ids.shape[1] + 2 and mask.shape == hidden.shape[:2]
        assert torch.equal(mask[:, 1:3], torch.ones(len(TEXTS), 2, dtype=mask.dtype))  # real tokens
        assert torch.equal(mask[:, 3:], attn[:, 1:])  # the text keeps its padding mask
        # eq. 2 on each summary state with one W1, then W2 over the three side by side
        pooled = torch.tanh(model.pool(hidden[:, :3])).flatten(1)
        assert torch.allclose(logits1, model.classifier1(pooled), atol=1e-6)
        out = model(ids, attn, labels=torch.ones(len(TEXTS), K))
        out.loss.backward()
        assert model.summary.extra.grad is not None and model.summary.extra.grad.abs().sum() > 0
        model.zero_grad()
        model.save_pretrained(tmp_path / variant)
        again = load_model(tmp_path / variant).eval()
        assert torch.equal(again(ids, attn).logits, model(ids, attn).logits)
    # The summary states are pooled, so mean pooling cannot use them: refused, naming both.
    with pytest.raises(LcrError, match="summary_tokens"):
        LabelCoRankConfig(num_labels=K, summary_tokens=2, pooling="mean").validate()
    with pytest.raises(LcrError, match="summary_tokens = 2 needs pooling cls"):
        train_params({"summary_tokens": 2, "pooling": "mean"})
    with pytest.raises(LcrError, match="summary_tokens must be at least 1"):
        train_params({"summary_tokens": 0})


def test_query_confidence_adds_s1_confidence_to_each_label_feature(tiny):
    ids, attn = _batch(tiny)
    # off (the default) builds exactly the paper's layers, with the same random numbers
    plain, off = _model(tiny), _model(tiny, query_confidence=False)
    assert off.confidence_embedding is None and all(
        torch.equal(a, b) for a, b in zip(plain.state_dict().values(), off.state_dict().values()))
    model = _model(tiny, query_confidence=True)
    seen = {}
    model.ffn_in.register_forward_hook(lambda module, args, output: seen.setdefault("F", args[0]))
    out = model(ids, attn)
    # F = M_f[S] + M_pos + S1[S] c, with S1 = 0 on PAD
    s1 = torch.cat([torch.sigmoid(out.logits1), torch.zeros(len(TEXTS), 1)], dim=1).gather(1, out.selected)
    expected = (model.label_embedding(out.selected) + model.position_embedding.weight
                + s1[:, :, None] * model.confidence_embedding)
    assert torch.allclose(seen["F"], expected, atol=1e-6)
    assert (s1 > 0).any() and (s1 < 1).all()
    model.train()
    labels = torch.zeros(len(TEXTS), K)
    labels[:, 2] = 1
    model(ids, attn, labels=labels).loss2.backward()
    assert model.confidence_embedding.grad is not None and model.confidence_embedding.grad.abs().sum() > 0


def test_pairwise_rank_loss_equals_a_hand_computation_and_trains_the_reranker(tiny):
    from lcr.models.labelcorank import pairwise_rank_loss

    # two documents, K = 4 (PAD = 4), S of length 3
    logits = torch.tensor([[2.0, 0.0, -1.0, 1.0], [0.5, 0.5, 0.5, 0.5]])
    labels = torch.tensor([[1.0, 0.0, 1.0, 0.0], [0.0, 0.0, 0.0, 1.0]])
    selected = torch.tensor([[0, 2, 3], [3, 4, 4]])  # doc 2: one label, then PAD
    mask = torch.tensor([[True, True, True], [True, False, False]])
    # doc 1: gold {0, 2} vs other {3}: pairs (0, 3), (2, 3); doc 2: no non-gold label in S, no pair
    softplus = lambda x: math.log1p(math.exp(x))  # noqa: E731
    expected = (softplus(1.0 - 2.0) + softplus(1.0 - (-1.0))) / 2
    assert abs(pairwise_rank_loss(logits, labels, selected, mask).item() - expected) < 1e-6
    none = pairwise_rank_loss(logits, torch.zeros_like(labels), selected, mask)  # no gold at all
    assert none.item() == 0.0

    ids, attn = _batch(tiny)
    labels = torch.zeros(len(TEXTS), K)
    labels[:, 2] = 1
    plain, ranked = _model(tiny).train(), _model(tiny, rank_loss_weight=0.5).train()
    a, b = plain(ids, attn, labels=labels), ranked(ids, attn, labels=labels)
    term = pairwise_rank_loss(b.logits2, labels, b.selected, b.selected_mask)
    assert term.item() > 0 and torch.allclose(b.loss2, a.loss2 + 0.5 * term)
    with pytest.raises(LcrError, match="rank_loss_weight must be at least 0"):
        train_params({"rank_loss_weight": -1})


def test_focal_bce_equals_a_hand_computation_and_bce_at_zero():
    logits = torch.tensor([[2.0, -1.0, 0.0], [-3.0, 0.5, 4.0]])
    labels = torch.tensor([[1.0, 0.0, 1.0], [0.0, 1.0, 0.0]])
    expected = 0.0
    for z, y in zip(logits.flatten().tolist(), labels.flatten().tolist()):
        p_true = 1 / (1 + math.exp(-z)) if y else 1 / (1 + math.exp(z))
        expected += (1 - p_true) ** 2 * -math.log(p_true)
    assert focal_bce(logits, labels, 2.0).item() == pytest.approx(expected / 6, rel=1e-6)
    assert torch.equal(focal_bce(logits, labels, 0.0), bce(logits, labels))
    # a sure, right label weighs less than under BCE; a wrong one nearly as much
    sure = focal_bce(torch.tensor([[6.0]]), torch.tensor([[1.0]]), 2.0) / bce(torch.tensor([[6.0]]), torch.tensor([[1.0]]))
    wrong = focal_bce(torch.tensor([[-6.0]]), torch.tensor([[1.0]]), 2.0) / bce(torch.tensor([[-6.0]]), torch.tensor([[1.0]]))
    assert sure.item() < 1e-4 and wrong.item() > 0.99


def test_rerank_focal_changes_l2_alone(tiny):
    ids, attn = _batch(tiny)
    labels = torch.zeros(len(TEXTS), K)
    labels[:, 2] = 1
    plain, focal = _model(tiny).eval(), _model(tiny, rerank_focal=2.0).eval()
    a, b = plain(ids, attn, labels=labels), focal(ids, attn, labels=labels)
    assert torch.equal(a.logits2, b.logits2) and torch.equal(a.loss1, b.loss1)
    assert torch.allclose(b.loss2, focal_bce(b.logits2, labels, 2.0)) and b.loss2 < a.loss2
    with pytest.raises(LcrError, match="rerank_focal must be at least 0"):
        train_params({"rerank_focal": -1})
    with pytest.raises(LcrError, match="rerank_focal must be at least 0"):
        LabelCoRankConfig(num_labels=K, rerank_focal=-0.5).validate()


def _perturbed_first_prediction(tiny, **setting):
    """A per-label model with a training-only perturbation of S1 (``setting``) beside one without:
    checks that it changes nothing in evaluation and leaves S1 and L1 clean in training, and returns
    the perturbed model's training output and the model."""
    ids, attn = _batch(tiny)
    labels = torch.zeros(len(TEXTS), K)
    labels[:, 2] = 1
    plain, perturbed = _model(tiny, final_head="per_label"), _model(tiny, final_head="per_label", **setting)
    a, b = plain.eval()(ids, attn, labels=labels), perturbed.eval()(ids, attn, labels=labels)
    assert torch.equal(a.logits2, b.logits2) and torch.equal(a.selected, b.selected)
    a, b = plain.train()(ids, attn, labels=labels), perturbed.train()(ids, attn, labels=labels)
    assert torch.equal(a.logits1, b.logits1) and torch.equal(a.loss1, b.loss1)
    # the per-label head starts at zero, so the final logits are exactly the perturbed S1
    assert torch.equal(a.logits2, a.logits1)
    return b, perturbed


def test_rerank_noise_perturbs_what_the_reranking_stage_starts_from_in_training_only(tiny):
    b, noisy = _perturbed_first_prediction(tiny, rerank_noise=2.0)
    noise = (b.logits2 - b.logits1).detach()  # (B, K)
    assert 1.0 < noise.std().item() < 3.0 and noise.abs().min() > 0
    selected, mask = noisy.select(b.logits2)
    assert torch.equal(selected, b.selected) and torch.equal(mask, b.selected_mask)
    b.loss.backward()
    assert noisy.label_scorer.weight.grad.abs().sum() > 0
    with pytest.raises(LcrError, match="rerank_noise must be at least 0"):
        train_params({"rerank_noise": -0.5})
    with pytest.raises(LcrError, match="rerank_noise must be at least 0"):
        LabelCoRankConfig(num_labels=K, rerank_noise=-0.5).validate()


def test_swap_gold_with_wrong_swaps_a_gold_label_with_a_lower_ranked_wrong_one():
    first = torch.tensor([[5.0, 1.0, 0.0, -1.0, -2.0],   # gold 0; wrong labels 1, 2 among the top 3
                          [4.0, 3.0, -1.0, -2.0, -3.0],  # gold 1; label 0 ranks above it, so only 2 is drawn
                          [0.0, 1.0, 2.0, 3.0, 4.0],     # no gold label: left alone
                          [1.0, 0.0, 9.0, -1.0, -2.0]],  # gold 0, 2; no wrong label below either in the top 2
                         requires_grad=True)
    labels = torch.tensor([[1.0, 0, 0, 0, 0], [0, 1.0, 0, 0, 0], [0, 0, 0, 0, 0], [1.0, 0, 1.0, 0, 0]])
    seen = set()
    for seed in range(20):
        torch.manual_seed(seed)
        out = swap_gold_with_wrong(first, labels, 3, 1.0)
        seen.add(tuple(out[0].tolist()))
        assert torch.equal(out[1], torch.tensor([4.0, -1.0, 3.0, -2.0, -3.0]))
        assert torch.equal(out[2], first[2]) and torch.equal(swap_gold_with_wrong(first, labels, 2, 1.0)[3], first[3])
    # the wrong label is drawn among S1's top 3 below the gold one: label 1 or label 2, never 3 or 4
    assert seen == {(1.0, 5.0, 0.0, -1.0, -2.0), (0.0, 1.0, 5.0, -1.0, -2.0)}
    # the swapped pair carries no gradient; every other logit is S1's own
    torch.manual_seed(0)
    out = swap_gold_with_wrong(first, labels, 3, 1.0)
    weights = torch.arange(1.0, 6.0)
    (out * weights).sum().backward()
    moved = out != first  # (4, 5) two entries in each swapped row
    assert moved.sum(1).tolist() == [2, 2, 0, 2]
    assert torch.equal(first.grad, torch.where(moved, 0.0, weights.expand(4, 5)))
    # p = 0 swaps nothing
    assert torch.equal(swap_gold_with_wrong(first, labels, 3, 0.0), first)


def test_rerank_swap_acts_in_training_only_and_leaves_s1_and_l1_clean(tiny):
    b, _ = _perturbed_first_prediction(tiny, rerank_swap=1.0)
    # the final logits are the swapped S1: label 2 moved down in every document that had a wrong
    # label below it, and only two columns changed per row
    changed = (b.logits2 != b.logits1).sum(1)  # (B,)
    assert set(changed.tolist()) <= {0, 2} and changed.sum() > 0
    moved = changed == 2
    assert (b.logits2[moved, 2] < b.logits1[moved, 2]).all()
    assert torch.equal(b.logits2.detach().sort(1).values, b.logits1.detach().sort(1).values)
    with pytest.raises(LcrError, match=r"rerank_swap must be in \[0, 1\]"):
        train_params({"rerank_swap": 1.5})
    with pytest.raises(LcrError, match=r"rerank_swap must be in \[0, 1\]"):
        LabelCoRankConfig(num_labels=K, rerank_swap=-0.1).validate()


def test_final_blend_ranks_with_a_mix_of_the_two_predictions_and_leaves_the_losses_alone(tiny):
    ids, attn = _batch(tiny)
    labels = torch.zeros(len(TEXTS), K)
    labels[:, 2] = 1
    plain, blended = _model(tiny), _model(tiny, final_blend=0.25)  # same seed: the same weights
    for mode in ("eval", "train"):
        torch.manual_seed(0)
        a = getattr(plain, mode)()(ids, attn, labels=labels)
        torch.manual_seed(0)
        b = getattr(blended, mode)()(ids, attn, labels=labels)
        assert torch.equal(a.logits, a.logits2)  # w = 0: the paper's Y
        assert torch.equal(a.logits1, b.logits1) and torch.equal(a.logits2, b.logits2)
        assert torch.equal(a.loss, b.loss)  # training does not depend on w
        assert torch.allclose(b.logits, 0.75 * b.logits2 + 0.25 * b.logits1, atol=1e-6)
        assert not torch.allclose(b.logits, b.logits2)
    whole = _model(tiny, final_blend=1.0).eval()(ids, attn)
    assert torch.allclose(whole.logits, whole.logits1)  # w = 1: S1 alone
    further = _model(tiny, final_blend=-1.0).eval()(ids, attn)  # w < 0: the correction of S1 doubled
    assert not torch.allclose(further.logits2, further.logits1)
    assert torch.allclose(further.logits, further.logits1 + 2.0 * (further.logits2 - further.logits1), atol=1e-5)
    for bad in (1.5, 1.0001):
        with pytest.raises(LcrError, match="final_blend must be at most 1"):
            train_params({"final_blend": bad})
        with pytest.raises(LcrError, match="final_blend must be at most 1"):
            LabelCoRankConfig(num_labels=K, final_blend=bad).validate()


def test_label_interaction_lets_each_label_of_s_read_the_others_and_never_the_padding():
    torch.manual_seed(0)
    block = LabelInteraction(dim=8, num_heads=2, ffn_dim=16, dropout=0.0, layers=2).eval()
    x = torch.randn(3, 5, 8)  # (B, gamma, delta)
    mask = torch.tensor([[True, True, True, False, False], [True, False, False, False, False], [False] * 5])
    out = block(x, mask)
    assert torch.isfinite(out).all() and (out[~mask] == 0).all()  # PAD slots (and a row without labels) are zero
    moved = x.clone()
    moved[0, 2] += torch.randn(8)  # another real label of document 0 (not a constant: LayerNorm removes that)
    assert not torch.allclose(block(moved, mask)[0, 0], out[0, 0])  # slot 0 reads slot 2
    padded = x.clone()
    padded[0, 3:] = torch.randn(2, 8) * 10  # what sits in PAD slots
    padded[1, 1:] = torch.randn(4, 8) * 10
    assert torch.allclose(block(padded, mask)[mask], out[mask], atol=1e-6)  # no real slot reads PAD
    assert torch.allclose(block(x[1:2], mask[1:2]), out[1:2], atol=1e-6)  # documents do not meet


@pytest.mark.parametrize("head", ["per_label", "dense"])
def test_label_interaction_layers_build_last_train_and_round_trip(tiny, tmp_path, head):
    ids, attn = _batch(tiny)
    labels = torch.zeros(len(TEXTS), K)
    labels[:, 2] = 1
    plain = _model(tiny, final_head=head)
    assert plain.interaction is None and not any(k.startswith("interaction.") for k in plain.state_dict())
    model = _model(tiny, final_head=head, label_interaction_layers=1)
    assert len(model.interaction.blocks) == 1
    # built last: every other layer drew the same random numbers as without it
    theirs = plain.state_dict()
    for name, value in model.state_dict().items():
        if not name.startswith("interaction."):
            assert torch.equal(value, theirs[name]), name
    if head == "per_label":  # the scorer starts at zero: Y = S1, whatever the interaction says
        with torch.no_grad():
            model.label_offset.weight.fill_(0.5)
            model.label_scorer.weight.normal_()
    model.train()
    model(ids, attn, labels=labels).loss.backward()
    assert model.interaction.blocks[0]["qkv"].weight.grad.abs().sum() > 0
    model.eval()
    out = model(ids, attn)
    model.save_pretrained(tmp_path / head)
    loaded = load_model(tmp_path / head).eval()
    assert loaded.config.label_interaction_layers == 1
    assert torch.equal(loaded(ids, attn).logits, out.logits)
    with pytest.raises(LcrError, match="label_interaction_layers must be at least 0"):
        train_params({"label_interaction_layers": -1})
    with pytest.raises(LcrError, match="label_interaction_layers must be at least 0"):
        LabelCoRankConfig(num_labels=K, label_interaction_layers=-1).validate()


def test_first_logits_replace_what_the_reranking_stage_starts_from_and_leave_l1_alone(tiny):
    """Cross-fitting hands the model out-of-fold S1 logits: S is selected from them and the
    per-label head corrects them; L1 still scores the model's own S1."""
    from lcr.models.base import bce

    ids, attn = _batch(tiny)
    labels = torch.zeros(len(TEXTS), K)
    labels[:, 2] = 1
    model = _model(tiny, final_head="per_label")
    with torch.no_grad():
        model.label_offset.weight.fill_(1.0)  # +1 on every label of S
    own = model(ids, attn, labels=labels)
    other = torch.linspace(-4.0, 4.0, K).flip(0).expand(len(TEXTS), K).clone()  # (B, K) labels 0, 1, ... first
    out = model(ids, attn, labels=labels, first_logits=other)
    expected, _ = model.select(other)
    assert torch.equal(out.selected, expected) and not torch.equal(out.selected, own.selected)
    in_s = torch.zeros(len(TEXTS), K + 1, dtype=torch.bool).scatter(1, out.selected, out.selected_mask)[:, :K]
    assert torch.allclose(out.logits2, other + in_s.float())  # the correction is made to the logits handed in
    assert torch.equal(out.logits1, own.logits1) and torch.equal(out.loss1, bce(own.logits1, labels))
    model.train()
    model(ids, attn, labels=labels, first_logits=other.requires_grad_()).loss.backward()
    assert other.grad is None  # nothing flows back into them


NAMES = ["grain", "wheat", "crude oil", "oil", "money supply", "interest rates", "trade", "shipping"]  # K = 8


def test_label_init_names_starts_the_label_embedding_from_the_encoders_reading_of_each_name(tiny, tmp_path):
    from lcr.models.encoder import embed_texts

    encoder, tokenizer = load_encoder(tiny)
    config = LabelCoRankConfig(num_labels=K, gamma=4, num_heads=2, dropout=0.0, label_init="names")
    torch.manual_seed(0)
    named = build_model("labelcorank", config, encoder, sp.csr_matrix(M), FREQ_RANK, tokenizer=tokenizer,
                        label_texts=NAMES)
    # by hand: the mean of each name's output states, centred over the labels, at the init's std
    enc = tokenizer(NAMES, padding=True, return_tensors="pt")
    with torch.no_grad():
        states = encoder.eval()(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"]).last_hidden_state
    weights = enc["attention_mask"][..., None].float()  # (K, L, 1)
    vectors = (states * weights).sum(1) / weights.sum(1)  # (K, delta)
    assert torch.allclose(embed_texts(encoder, tokenizer, NAMES, 16), vectors, atol=1e-6)
    centred = vectors - vectors.mean(0)
    expected = centred * (encoder.config.initializer_range / centred.std())
    rows = named.label_embedding.weight
    assert torch.allclose(rows[:K], expected, atol=1e-6)
    assert abs(rows[:K].std().item() - encoder.config.initializer_range) < 1e-6
    assert rows[K].abs().sum() == 0  # PAD
    # everything else is what the paper's random init builds from the same seed
    torch.manual_seed(0)
    plain = build_model("labelcorank", config.model_copy(update={"label_init": "random"}), load_encoder(tiny)[0],
                        sp.csr_matrix(M), FREQ_RANK)
    named_state, plain_state = named.state_dict(), plain.state_dict()
    assert set(named_state) == set(plain_state)
    for name, value in plain_state.items():
        same = torch.equal(named_state[name], value)
        assert same == (name != "label_embedding.weight"), name
    with pytest.raises(LcrError, match="label_init names starts its label embedding from a text per label"):
        build_model("labelcorank", config, load_encoder(tiny)[0], sp.csr_matrix(M), FREQ_RANK, tokenizer=tokenizer)
    with pytest.raises(LcrError, match="label_init names: 3 label texts for K = 8"):
        named.init_labels_from_texts(tokenizer, NAMES[:3])
    with pytest.raises(LcrError, match=r"label_init = 'words' is not a valid one of 'random', 'names'"):
        train_params({"label_init": "words"})
    # a saved model loads its trained M_f and needs no texts
    named.save_pretrained(tmp_path / "named")
    loaded = load_model(tmp_path / "named")
    assert loaded.config.label_init == "names" and torch.equal(loaded.label_embedding.weight, rows)


@pytest.mark.parametrize("head", ["per_label", "dense"])
def test_label_attention_encoder_reads_s_as_tokens_of_a_second_encoder_pass(tiny, tmp_path, head):
    """``label_attention: encoder``: the label queries F_hat are inserted after [CLS] in a second
    pass of the encoder over the text, and each label's feature is its own output state."""
    import torch.nn.functional as F

    ids, attn = _batch(tiny)
    labels = torch.zeros(len(TEXTS), K)
    labels[:, 2] = 1
    model = _model(tiny, final_head=head, label_attention="encoder", gamma=7)
    assert model.attention is None and not any(k.startswith("attention.") for k in model.state_dict())
    if head == "per_label":  # the scorer starts at zero (Y = S1): give it something to say
        with torch.no_grad():
            model.label_scorer.weight.normal_()
            model.shared_scorer.weight.normal_()
    out = model(ids, attn)
    selected, mask = out.selected, out.selected_mask
    assert not mask.all()  # some document's S has PAD slots

    # By hand: [CLS], the gamma queries, the rest of the text; PAD queries masked as keys.
    with torch.no_grad():
        queries = model.ffn_out(F.relu(model.ffn_in(model.label_embedding(selected) + model.position_embedding.weight)))
        words = model.encoder.get_input_embeddings()(ids)
        embeds = torch.cat([words[:, :1], queries, words[:, 1:]], dim=1)
        both = torch.cat([attn[:, :1], mask.long(), attn[:, 1:]], dim=1)
        states = model.encoder(inputs_embeds=embeds, attention_mask=both).last_hidden_state
        attended = states[:, 1:8].masked_fill(~mask[:, :, None], 0.0)  # gamma = 7
        if head == "per_label":
            change = (attended * (model.label_scorer(selected) + model.shared_scorer.weight)).sum(-1)
            change = (change + model.label_offset(selected).squeeze(-1)) * mask
            expected = out.logits1 + torch.zeros(len(TEXTS), K + 1).scatter_add(1, selected, change)[:, :K]
        else:
            expected = model.classifier2(attended.flatten(1))
    assert torch.allclose(out.logits2, expected, atol=1e-5)

    # A PAD slot's query is read by no token: whatever sits in the PAD row, the scores stay.
    with torch.no_grad():
        model.label_embedding.weight[PAD] = torch.randn(32) * 5
    assert torch.allclose(model(ids, attn).logits2, out.logits2, atol=1e-5)

    # L2 trains the label embedding and the encoder through the second pass.
    model.train()
    model.zero_grad()
    loss2 = model(ids, attn, labels=labels).loss2
    loss2.backward()
    assert model.label_embedding.weight.grad[:K].abs().sum() > 0
    assert model.encoder.get_input_embeddings().weight.grad.abs().sum() > 0

    model.eval()
    model.save_pretrained(tmp_path / head)
    loaded = load_model(tmp_path / head).eval()
    assert loaded.config.label_attention == "encoder" and loaded.attention is None
    assert torch.equal(loaded(ids, attn).logits, model(ids, attn).logits)


def test_label_attention_settings_are_validated():
    with pytest.raises(LcrError, match="label_attention 'encoder' needs summary_tokens 1"):
        LabelCoRankConfig(num_labels=K, label_attention="encoder", summary_tokens=2).validate()
    with pytest.raises(LcrError, match="label_attention 'encoder' needs summary_tokens 1.*summary_tokens is 2"):
        train_params({"label_attention": "encoder", "summary_tokens": 2})
    with pytest.raises(LcrError, match="label_attention"):
        train_params({"label_attention": "cross"})
    assert train_params({"label_attention": "encoder"}).label_attention == "encoder"


def test_encode_with_inserted_cuts_the_text_to_the_position_table_and_marks_the_segment():
    """The inserted embeddings sit at 1..m; text past the position limit is cut from the end;
    with ``segment`` they get that token type where the encoder has one (BERT), not RoBERTa."""
    from transformers import BertConfig, BertModel

    from lcr.models.summary import encode_with_inserted

    torch.manual_seed(0)
    bert = BertModel(BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                                intermediate_size=32, max_position_embeddings=12, type_vocab_size=2,
                                hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)).eval()
    ids = torch.randint(5, 50, (2, 10))
    attn = torch.ones(2, 10, dtype=torch.long)
    inserted = torch.randn(2, 3, 16)
    keep = torch.tensor([[1, 1, 0], [1, 1, 1]])
    with torch.no_grad():
        hidden, mask = encode_with_inserted(bert, ids, attn, inserted, keep, limit=12, segment=1)
        assert hidden.shape == (2, 12, 16) and mask[:, 1:4].tolist() == keep.tolist()  # 10 + 3 > 12: 1 cut
        words = bert.get_input_embeddings()(ids[:, :9])
        types = torch.zeros(2, 12, dtype=torch.long)
        types[:, 1:4] = 1
        by_hand = bert(inputs_embeds=torch.cat([words[:, :1], inserted, words[:, 1:]], 1), attention_mask=mask,
                       token_type_ids=types).last_hidden_state
        assert torch.allclose(hidden, by_hand, atol=1e-6)
        plain, _ = encode_with_inserted(bert, ids, attn, inserted, keep, limit=12)  # segment 0: the text's own
        assert not torch.allclose(plain, hidden, atol=1e-4)


def test_label_attention_encoder_readers_read_the_text_that_does_not_read_them(tiny, tmp_path):
    """``label_attention: encoder_readers``: S's queries are appended after the text and read it
    at every layer; the text does not read them, so S1 is the plain pass's, from the same pass."""
    ids, attn = _batch(tiny)
    labels = torch.zeros(len(TEXTS), K)
    labels[:, 2] = 1
    plain = _model(tiny, final_head="per_label", gamma=7)
    model = _model(tiny, final_head="per_label", label_attention="encoder_readers", gamma=7)
    assert model.attention is None
    with torch.no_grad():
        for m in (plain, model):
            m.label_scorer.weight.normal_()
            m.shared_scorer.weight.normal_()
        model.load_state_dict({k: v for k, v in plain.state_dict().items() if not k.startswith("attention.")})
    out = model(ids, attn)
    assert torch.allclose(out.logits1, plain(ids, attn).logits1, atol=1e-5)  # the text never read the readers
    assert torch.equal(out.selected, plain(ids, attn).selected) and not out.selected_mask.all()
    assert not torch.allclose(out.logits2, plain(ids, attn).logits2, atol=1e-3)  # another step 4

    with torch.no_grad():  # the readers' inputs move the readers' states, not the text's
        model.label_embedding.weight[:K] += torch.randn(K, 32)
    moved = model(ids, attn)
    assert torch.allclose(moved.logits1, out.logits1, atol=1e-5) and not torch.allclose(moved.logits2, out.logits2)
    with torch.no_grad():  # a PAD reader is read by no one
        model.label_embedding.weight[PAD] = torch.randn(32) * 5
    assert torch.allclose(model(ids, attn).logits2, moved.logits2, atol=1e-5)

    model.train()
    model.zero_grad()
    result = model(ids, attn, labels=labels)
    result.loss1.backward(retain_graph=True)  # L1 trains the encoder through the readers' pass
    assert model.encoder.get_input_embeddings().weight.grad.abs().sum() > 0
    assert model.label_embedding.weight.grad is None or model.label_embedding.weight.grad.abs().sum() == 0
    result.loss2.backward()
    assert model.label_embedding.weight.grad[:K].abs().sum() > 0
    model.eval()
    model.save_pretrained(tmp_path / "readers")
    loaded = load_model(tmp_path / "readers").eval()
    assert loaded.config.label_attention == "encoder_readers"
    assert torch.equal(loaded(ids, attn).logits, model(ids, attn).logits)
    with pytest.raises(LcrError, match="label_attention 'encoder_readers' needs summary_tokens 1"):
        train_params({"label_attention": "encoder_readers", "summary_tokens": 3})


def test_reader_weights_own_start_as_the_shared_readers_and_then_learn_apart(tiny, tmp_path):
    """``reader_weights: own``: the readers run through a copy of the encoder (less its word
    embeddings and pooler) that starts equal to it, so the model starts as the shared-weights one;
    L2 then trains the copy and, through the cached keys and values, the text's encoder."""
    ids, attn = _batch(tiny)
    labels = torch.zeros(len(TEXTS), K)
    labels[:, 2] = 1
    shared = _model(tiny, final_head="per_label", label_attention="encoder_readers", gamma=7)
    own = _model(tiny, final_head="per_label", label_attention="encoder_readers", reader_weights="own", gamma=7)
    copy = own.reader_encoder
    assert copy is not None and shared.reader_encoder is None
    encoder_weights = {id(p) for p in own.encoder.parameters()}
    assert not any(id(p) in encoder_weights for p in copy.parameters())  # weights of its own
    assert copy.get_input_embeddings().weight.shape[0] == 1 and getattr(copy, "pooler", None) is None
    assert own.encoder.get_input_embeddings().weight.shape[0] > 1  # the encoder keeps its vocabulary
    with torch.no_grad():
        for m in (shared, own):
            m.label_scorer.weight.normal_(generator=torch.Generator().manual_seed(3))
            m.shared_scorer.weight.normal_(generator=torch.Generator().manual_seed(4))
    start = own(ids, attn)
    assert torch.allclose(start.logits2, shared(ids, attn).logits2, atol=1e-5)  # same readers at the start

    own.train()
    own.zero_grad()
    own(ids, attn, labels=labels).loss2.backward()
    assert copy.encoder.layer[0].attention.self.query.weight.grad.abs().sum() > 0  # the readers' own queries learn
    assert own.encoder.encoder.layer[0].attention.self.key.weight.grad.abs().sum() > 0  # the text's keys too
    with torch.no_grad():  # the copy moved: the final prediction changes, S1 does not
        for p in copy.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    _moved_readers_change_only_the_final_prediction(own, ids, attn, start, tmp_path / "own", "reader_weights")
    with pytest.raises(LcrError, match="reader_weights 'own' needs label_attention 'encoder_readers'"):
        train_params({"reader_weights": "own"})


def _moved_readers_change_only_the_final_prediction(model, ids, attn, start, folder, setting):
    """After the readers' weights moved: S1 is as at ``start``, the final prediction is not, and the
    model saved to ``folder`` loads with ``setting`` 'own' and predicts the same."""
    model.eval()
    moved = model(ids, attn)
    assert torch.allclose(moved.logits1, start.logits1, atol=1e-6)
    assert not torch.allclose(moved.logits2, start.logits2, atol=1e-4)
    model.save_pretrained(folder)
    loaded = load_model(folder).eval()
    assert getattr(loaded.config, setting) == "own"
    assert torch.equal(loaded(ids, attn).logits, moved.logits)


def test_reader_keys_own_start_as_the_encoders_keys_and_then_learn_apart(tiny, tmp_path):
    """``reader_keys: own``: the readers' copy projects each layer's text states with its own key and
    value weights. They start equal to the encoder's, so the model starts as the one that reads the
    encoder's cached keys and values; then L2 trains the copy's projections, and no longer the
    encoder's projections of its last layer (which now only give S1)."""
    ids, attn = _batch(tiny)
    labels = torch.zeros(len(TEXTS), K)
    labels[:, 2] = 1
    setting = dict(final_head="per_label", label_attention="encoder_readers", reader_weights="own", gamma=7,
                   detach_first=True)
    cached = _model(tiny, **setting)
    own = _model(tiny, **setting, reader_keys="own")
    with torch.no_grad():
        for m in (cached, own):
            m.label_scorer.weight.normal_(generator=torch.Generator().manual_seed(3))
            m.shared_scorer.weight.normal_(generator=torch.Generator().manual_seed(4))
    start = own(ids, attn)
    assert torch.allclose(start.logits2, cached(ids, attn).logits2, atol=1e-5)  # same keys and values at the start

    last = lambda m: m.encoder.layer[-1].attention.self  # noqa: E731 (the last layer's projections)
    for m in (cached, own):
        m.train()
        m.zero_grad()
        m(ids, attn, labels=labels).loss2.backward()
    assert last(cached.encoder).key.weight.grad.abs().sum() > 0  # the encoder's keys serve the readers
    grad = last(own.encoder).key.weight.grad
    assert grad is None or grad.abs().sum() == 0  # ... or no longer: S1 alone uses them
    assert last(own.reader_encoder).key.weight.grad.abs().sum() > 0  # the readers' own keys learn
    assert last(own.reader_encoder).value.weight.grad.abs().sum() > 0
    assert own.encoder.encoder.layer[0].attention.self.key.weight.grad.abs().sum() > 0  # the text's states still learn
    with torch.no_grad():  # the copy's keys move: the final prediction changes, S1 does not
        last(own.reader_encoder).key.weight.add_(torch.randn_like(last(own.reader_encoder).key.weight))
    _moved_readers_change_only_the_final_prediction(own, ids, attn, start, tmp_path / "own", "reader_keys")
    with pytest.raises(LcrError, match="reader_keys 'own' .* needs reader_weights 'own'; reader_weights is 'shared'"):
        train_params({"reader_keys": "own", "label_attention": "encoder_readers"})


def test_reader_text_grad_false_keeps_l2_out_of_the_encoder_but_not_out_of_the_readers(tiny):
    """``reader_text_grad: false``: the readers project detached text states, so with S1's logits
    also detached (detach_first) L2 leaves every encoder weight without a gradient, while the
    readers' own weights learn; the predictions are those of the model that reads them attached."""
    ids, attn = _batch(tiny)
    labels = torch.zeros(len(TEXTS), K)
    labels[:, 2] = 1
    setting = dict(final_head="per_label", label_attention="encoder_readers", reader_weights="own", gamma=7,
                   detach_first=True, reader_keys="own")
    attached, detached = _model(tiny, **setting), _model(tiny, **setting, reader_text_grad=False)
    with torch.no_grad():
        for m in (attached, detached):
            m.label_scorer.weight.normal_(generator=torch.Generator().manual_seed(3))
    assert torch.equal(attached(ids, attn).logits2, detached(ids, attn).logits2)  # the same forward pass
    for m in (attached, detached):
        m.train()
        m.zero_grad()
        m(ids, attn, labels=labels).loss2.backward()
    moved = lambda params: [n for n, p in params if p.grad is not None and p.grad.abs().sum() > 0]  # noqa: E731
    assert moved(attached.encoder.named_parameters())  # L2 trains the encoder through the readers' reading
    assert moved(detached.encoder.named_parameters()) == []  # ... or not at all
    assert moved(detached.reader_encoder.named_parameters()) == moved(attached.reader_encoder.named_parameters()) != []
    with pytest.raises(LcrError, match="reader_text_grad false .* needs reader_keys 'own'; reader_keys is 'encoder'"):
        train_params({"reader_text_grad": False, "label_attention": "encoder_readers", "reader_weights": "own"})


def test_separate_stages_keeps_the_reranking_stage_out_of_the_first_stages_weights_and_random_numbers(tiny):
    """``separate_stages``: built at one seed, the first stage starts as the `roberta` variant's and
    building the reranking stage draws nothing from the global stream; in training its forward
    draws nothing from it either (its dropout draws from a stream of its own), L = L1 + L2, and
    every first-stage gradient is the plain fine-tune's while the reranking stage's layers learn."""
    ids, attn = _batch(tiny)
    labels = torch.zeros(len(TEXTS), K)
    labels[:, 2] = labels[0, 5] = 1

    def built(variant, **config):
        torch.manual_seed(5)
        encoder, _ = load_encoder(tiny)
        settings = LabelCoRankConfig(num_labels=K, gamma=7, num_heads=2, dropout=0.3, **config)
        return build_model(variant, settings, encoder, sp.csr_matrix(M), FREQ_RANK), torch.get_rng_state()

    plain, after_plain = built("roberta")
    stacked, after_stacked = built("labelcorank", separate_stages=True, final_head="per_label", fill_to_gamma=True,
                                   label_attention="encoder_readers", reader_weights="own", reader_keys="own")
    assert torch.equal(after_plain, after_stacked)
    own = dict(stacked.named_parameters())
    assert all(torch.equal(p, own[name]) for name, p in plain.named_parameters())
    with torch.no_grad():
        stacked.label_scorer.weight.normal_(generator=torch.Generator().manual_seed(3))  # L2 reaches every reader
    outputs, states = [], []
    for m in (plain, stacked):
        m.train()
        m.zero_grad()
        torch.manual_seed(9)
        outputs.append(m(ids, attn, labels=labels))
        states.append(torch.get_rng_state())
        outputs[-1].loss.backward()
    assert torch.equal(states[0], states[1])
    assert torch.equal(outputs[1].logits1, outputs[0].logits)
    assert torch.equal(outputs[1].loss, outputs[1].loss1 + outputs[1].loss2)
    for name, p in plain.named_parameters():
        assert (p.grad is None) == (own[name].grad is None), name
        assert p.grad is None or torch.equal(p.grad, own[name].grad), name
    moved = lambda params: [n for n, p in params if p.grad is not None and p.grad.abs().sum() > 0]  # noqa: E731
    assert moved(stacked.reader_encoder.named_parameters()) and moved(stacked.label_scorer.named_parameters())
    assert stacked.stage_stream[1] == 1  # one training forward counted; prediction counts none
    stacked.eval()
    stacked(ids, attn)
    assert stacked.stage_stream[1] == 1
    groups = stacked.clipping_groups()
    assert [len(g) for g in groups] == [len(list(plain.parameters())), len(own) - len(list(plain.parameters()))]
    with pytest.raises(LcrError, match="separate_stages keeps the reranking stage out .* label_attention is 'encoder'"):
        train_params({"separate_stages": True, "label_attention": "encoder"})
    with pytest.raises(LcrError, match="separate_stages .* reader_keys 'encoder'"):
        LabelCoRankConfig(num_labels=K, separate_stages=True, label_attention="encoder_readers",
                          reader_weights="own").validate()


def test_readers_own_keys_refuse_an_encoder_not_laid_out_like_bert():
    from lcr.models.summary import project_text_for_readers

    class Flat(torch.nn.Module):
        config = type("Config", (), {"model_type": "flat"})()

    with pytest.raises(LcrError, match="reader_keys 'own' needs a BERT-like encoder.*'flat'"):
        project_text_for_readers(Flat(), (torch.zeros(1, 3, 4),))


def two_layer_bert(implementation: str, seed: int):
    """A tiny random BERT (2 layers, hidden 16, 2 token types, no dropout) with the given attention."""
    from transformers import BertConfig, BertModel

    torch.manual_seed(seed)
    return BertModel(BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                                intermediate_size=32, max_position_embeddings=16, type_vocab_size=2,
                                hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
                                attn_implementation=implementation)).eval()


def encode_with_readers(encoder, input_ids, attention_mask, readers, readers_mask, *, limit, segment):
    """The text encoded once, then the readers run against its cached keys and values (as the model does)."""
    from lcr.models.summary import encode_text_for_readers, read_with_readers

    text, mask, cache = encode_text_for_readers(encoder, input_ids, attention_mask, limit=limit, room=readers.size(1))
    return text, read_with_readers(encoder, cache, mask, readers, readers_mask, segment=segment)


@pytest.mark.parametrize("implementation", ["sdpa", "eager"])
def test_readers_leave_the_text_as_a_plain_pass_and_read_it(implementation):
    bert = two_layer_bert(implementation, seed=0)
    ids = torch.randint(5, 50, (2, 9))
    attn = torch.ones(2, 9, dtype=torch.long)
    attn[1, 6:] = 0  # the second text is shorter
    readers = torch.randn(2, 3, 16)
    keep = torch.tensor([[True, True, False], [True, True, True]])
    with torch.no_grad():
        text, read = encode_with_readers(bert, ids, attn, readers, keep, limit=16, segment=1)
        alone = bert(input_ids=ids, attention_mask=attn).last_hidden_state
        assert read.shape == (2, 3, 16)
        assert torch.allclose(text[0], alone[0], atol=1e-5) and torch.allclose(text[1, :6], alone[1, :6], atol=1e-5)
        other_text = ids.clone()
        other_text[:, 3] = 7
        _, read_other = encode_with_readers(bert, other_text, attn, readers, keep, limit=16, segment=1)
        assert not torch.allclose(read_other[:, :2], read[:, :2], atol=1e-4)  # the readers read the text
        masked = readers.clone()
        masked[0, 2] = 100.0  # a masked reader: read by nobody
        text_m, read_m = encode_with_readers(bert, ids, attn, masked, keep, limit=16, segment=1)
        assert torch.allclose(read_m[0, :2], read[0, :2], atol=1e-5) and torch.allclose(text_m, text, atol=1e-5)
        cut, _ = encode_with_readers(bert, ids, attn, readers, keep, limit=10, segment=1)
        assert cut.shape == (2, 7, 16)  # 9 + 3 > 10: the text's end is cut


@pytest.mark.parametrize("implementation", ["sdpa", "eager"])
def test_readers_read_the_cached_text_as_in_one_joint_pass(implementation):
    """The text encoded once and the readers run against its cached keys and values give what one
    pass over text + readers gives with a 4-D mask that hides the readers from the text (built by
    hand here), values and gradients alike."""
    from lcr.models.summary import encode_text_for_readers, read_with_readers

    bert = two_layer_bert(implementation, seed=1)
    ids = torch.randint(5, 50, (2, 7))
    attn = torch.ones(2, 7, dtype=torch.long)
    attn[0, 5:] = 0
    readers = torch.randn(2, 3, 16, requires_grad=True)
    keep = torch.tensor([[True, False, True], [True, True, True]])
    direction = torch.randn(16)  # a LayerNorm output sums to a constant: score a direction instead

    # by hand: one pass over [text, readers]; a text query reads real text keys, a reader every real key
    embeds = torch.cat([bert.get_input_embeddings()(ids), readers], dim=1)  # (2, 10, 16)
    real = torch.cat([attn.bool(), keep], dim=1)  # (2, 10)
    is_text = torch.arange(10) < 7
    allowed = real[:, None, :] & (~is_text[:, None] | is_text[None, :])  # (2, 10, 10)
    mask = allowed[:, None] if implementation == "sdpa" else \
        torch.zeros(2, 1, 10, 10).masked_fill(~allowed[:, None], torch.finfo(torch.float32).min)
    types = torch.cat([torch.zeros(2, 7), torch.ones(2, 3)], dim=1).long()
    lengths = attn.sum(dim=1, keepdim=True)  # (2, 1): each text's readers sit right after its last token
    positions = torch.cat([torch.arange(7).expand(2, 7), lengths + torch.arange(3)], dim=1)  # (2, 10)
    joint = bert(inputs_embeds=embeds, attention_mask=mask, token_type_ids=types,
                 position_ids=positions).last_hidden_state
    joint_grads = torch.autograd.grad((joint[:, 7:][keep] * direction).sum(), [readers, bert.pooler.dense.weight,
                                      bert.embeddings.word_embeddings.weight], allow_unused=True)

    text, text_mask, cache = encode_text_for_readers(bert, ids, attn, limit=16, room=3)
    read = read_with_readers(bert, cache, text_mask, readers, keep, segment=1)
    assert torch.allclose(text[0, :5], joint[0, :5], atol=1e-5) and torch.allclose(text[1], joint[1, :7], atol=1e-5)
    assert torch.allclose(read[keep], joint[:, 7:][keep], atol=1e-5)
    grads = torch.autograd.grad((read[keep] * direction).sum(), [readers, bert.pooler.dense.weight,
                                bert.embeddings.word_embeddings.weight], allow_unused=True)
    assert torch.allclose(grads[0], joint_grads[0], atol=1e-5)
    assert grads[1] is None and joint_grads[1] is None  # the pooler is not on the path
    assert grads[2].abs().sum() > 0 and torch.allclose(grads[2], joint_grads[2], atol=1e-5)  # through the cached text
    # a document reads the same whatever its batch-mates: the short text alone, without their padding
    with torch.no_grad():
        _, short_mask, short_cache = encode_text_for_readers(bert, ids[:1, :5], attn[:1, :5], limit=16, room=3)
        alone = read_with_readers(bert, short_cache, short_mask, readers[:1], keep[:1], segment=1)
    assert torch.allclose(alone[0][keep[0]], read[0][keep[0]], atol=1e-5)


def test_readers_pass_the_cache_under_the_name_the_encoder_takes():
    """transformers 5.0 named the cache argument ``past_key_values``; later releases ``cache``."""
    class OlderBert(torch.nn.Module):  # an encoder whose forward names the cache the older way
        def __init__(self, bert):
            super().__init__()
            self.bert, self.config = bert, bert.config

        def get_input_embeddings(self):
            return self.bert.get_input_embeddings()

        def forward(self, input_ids=None, attention_mask=None, inputs_embeds=None, position_ids=None,
                    token_type_ids=None, past_key_values=None):
            return self.bert(input_ids=input_ids, attention_mask=attention_mask, inputs_embeds=inputs_embeds,
                             position_ids=position_ids, token_type_ids=token_type_ids, cache=past_key_values)

    bert = two_layer_bert("sdpa", seed=2)
    ids = torch.randint(5, 50, (2, 6))
    attn = torch.ones(2, 6, dtype=torch.long)
    readers, keep = torch.randn(2, 2, 16), torch.ones(2, 2, dtype=torch.bool)
    with torch.no_grad():
        expected = encode_with_readers(bert, ids, attn, readers, keep, limit=16, segment=1)
        older = encode_with_readers(OlderBert(bert), ids, attn, readers, keep, limit=16, segment=1)
    assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(older, expected))


def test_readers_refuse_an_encoder_that_keeps_no_keys_and_values():
    from transformers import DistilBertConfig, DistilBertModel

    from lcr.models.summary import encode_text_for_readers

    encoder = DistilBertModel(DistilBertConfig(vocab_size=50, dim=16, n_layers=1, n_heads=2, hidden_dim=32,
                                               max_position_embeddings=16))
    ids = torch.randint(5, 50, (2, 5))
    with pytest.raises(LcrError, match="encoder_readers' needs an encoder that keeps its keys and values.*distilbert"):
        encode_text_for_readers(encoder, ids, torch.ones_like(ids), limit=16, room=3)

    class NoCacheArgument(torch.nn.Module):  # a forward that takes no cache and no **kwargs
        config = encoder.config

        def forward(self, input_ids, attention_mask):
            return encoder(input_ids=input_ids, attention_mask=attention_mask)

    with pytest.raises(LcrError, match="encoder_readers' needs an encoder that keeps its keys and values.*distilbert"):
        encode_text_for_readers(NoCacheArgument(), ids, torch.ones_like(ids), limit=16, room=3)
