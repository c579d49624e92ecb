"""LabelCoRank (Yan, Liu, Zhang), the whole model in one file, plus the RoBERTa baseline.

The pipeline, with the paper's equation numbers (shapes: B documents, T tokens, K labels,
gamma = length of the label sequence, delta = encoder hidden size, eta = attention heads):

1. First prediction. H = encoder(T) (B x T x delta, eq. 1); P = tanh(h_cls W1 + b1) (eq. 2);
   S1 = sigmoid(P W2 + b2) over the K labels (eq. 3); L1 = BCE (eq. 4).
2. Label reranking (no gradient). S2 = labels with S1 >= alpha (at most gamma, best first);
   M_hat = sum of the co-occurrence rows m_l over S2 (eq. 9); S3 = the gamma - |S2| labels with
   the largest M_hat outside S2; S4 = S2 u S3 (eq. 10); S = S4 sorted by training frequency,
   most frequent first (eq. 11). Fewer than gamma labels: the rest is the PAD label K, masked.
3. Label features. F = M_f[S] + M_pos; F_hat = ReLU(Drop(F W3 + b3)) W4 + b4 (eq. 12).
4. Multi-head masked attention of the label queries F_hat over the tokens H (eqs. 13-14).
5. Final prediction. f_cat = concat of the gamma attention outputs (B x gamma*delta, eq. 5);
   Y = sigmoid(f_cat W5 + b5) (eq. 6); L2 = BCE (eq. 7); L = beta L1 + (1 - beta) L2 (eq. 8).

Extensions, each a config field that defaults to the paper: ``pooling="mean"`` (the mean of the
real tokens instead of h_cls in eq. 2, for checkpoints trained with mean pooling),
``residual=True`` (Y = sigmoid(z1 + f_cat W5 + b5), W5 and b5 starting at zero) and
``summary_tokens=n`` (BERTXML's n summary tokens for the first prediction: :class:`FirstPrediction`),
``final_head="per_label"`` (step 5 rescores each label of S from its own attention output with
a per-label vector, instead of the dense W5 over all labels, as a change of S1's logit; the other
labels keep S1's; ``"per_label_alone"``: that score is the label's logit itself).
``label_interaction_layers=n`` (n self-attention blocks among the labels of S between steps 4 and
5: :class:`LabelInteraction`). ``label_attention="encoder"`` (step 4 as a cross-encoder: the label
queries are tokens of a second encoder pass over the text, :func:`lcr.models.summary.encode_with_inserted`;
``"encoder_readers"``: they are appended after the text and read it at every layer, the text blind to
them: the text is encoded once, keeping each layer's keys and values, and the labels of S chosen
from that pass's S1 then read them, :func:`lcr.models.summary.read_with_readers`). ``forward(..., first_logits=...)`` lets training start steps 2 and 5
from out-of-fold first predictions (cross-fitting: :mod:`lcr.train.cross_fit`).
:func:`init_heads` starts W1 from the encoder's pooler and the label biases at the training
log-odds; ``forward(..., first_stage_only=True)`` runs step 1 alone (training's warm-up).
``separate_stages=True`` trains step 1 exactly as :class:`RobertaBaseline` would (L1 alone, its own
random numbers): steps 2-5 learn on top of it, reading it without a gradient.

Ablations (Table 6 of the paper) are flags on the same model: ``use_cooc`` (S = the top-gamma of
S1, no co-occurrence expansion), ``use_rank`` (keep S4 in selection order), ``use_pos`` (no
position embedding). ``selection="topk"`` reproduces the authors' public code, where S2 is the
top-gamma of S1 whatever the threshold, so the co-occurrence step never adds a label.

Also here: :class:`RobertaBaseline` (the paper's "RoBERTa" row: step 1 alone; the other
baselines are in :mod:`lcr.models.baselines`),
:func:`oracle_rerank` (Table 7's "RoBERTa*"). Building and loading any variant: :mod:`lcr.models.factory`;
the output record, the loss and safetensors saving that every model shares: :mod:`lcr.models.base`.
"""

from __future__ import annotations

import warnings
from contextlib import contextmanager, nullcontext
from copy import deepcopy

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from lcr.errors import LcrError
from lcr.models.hyperparams import LabelCoRankSettings, pick
from lcr.models.base import ModelOutput, SaveLoad, bce
from lcr.models.summary import (SummaryTokens, encode_text_for_readers, encode_text_states, encode_with_inserted,
                                max_tokens, project_text_for_readers, read_with_readers)

# torch calls its sparse CSR support "beta"; selection relies on it on purpose (see select_labels).
warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")




# --------------------------------------------------------------------------------------------
# Configuration and output

# How the label queries read the text (step 4): see LabelCoRankConfig.label_attention.
LABEL_ATTENTION = ("head", "encoder", "encoder_readers")
# Step 5's heads that score each label of S from its own attended feature (final_head).
PER_LABEL_HEADS = ("per_label", "per_label_alone")


class LabelCoRankConfig(LabelCoRankSettings):
    """Settings of :class:`LabelCoRank` (and, through ``num_labels``, of the baseline): the
    hyper-parameters of :class:`lcr.models.hyperparams.LabelCoRankSettings` (declared there once, and set
    from ``params.yaml`` through :class:`lcr.config.TrainParams`), plus what the data and the
    variant decide.

    Attributes:
        num_labels: K. The label embedding has K + 1 rows: row K is the PAD label.
        gamma: length of the label sequence S (paper: 35 MAG-CS, 30 PubMed, 20 AAPD).
        alpha: threshold on S1 that selects S2 (paper: 0.3).
        beta: weight of L1 in L = beta L1 + (1 - beta) L2 (paper: 0.3 MAG-CS/PubMed, 0.25 AAPD).
        num_heads: eta, heads of the label-to-token attention (not given in the paper; must
            divide the hidden size).
        dropout: the Drop of eq. 12.
        attention_dropout: dropout on the attention weights (the paper has none; the authors'
            code uses 0.3).
        ffn_dim: hidden width of the eq. 12 feed-forward block (None = delta; not in the paper).
        selection: ``threshold`` (the paper: S2 = S1 >= alpha) or ``topk`` (the authors' code:
            S2 = the top-gamma of S1).
        fill_to_gamma: with ``threshold`` selection, the slots of S that S2 and its co-occurring
            labels S3 leave empty are filled with S1's best remaining labels, in S1's order, so
            that S always holds gamma labels (an extension; the paper pads them). Without it, a
            document whose first prediction is wrong with confidence gets an S of the wrong
            label's neighbours, and one where no label reaches alpha gets an empty S, so the
            reranking stage never sees the gold label its first prediction ranked second.
        use_cooc: expand S2 with co-occurring labels (False = the "w/o co-occurrence" ablation:
            S = the top-gamma of S1).
        use_rank: sort S by training-set frequency (False = keep the selection order).
        use_pos: add the position embedding M_pos (False = none).
        classifier_rank: None = the paper's full W5 (gamma*delta x K); an int r factorises it as
            W5 ~ A (gamma*delta x r) B (r x K), an extension for very large K (not in the paper).
        pooling: how the first prediction summarises the tokens: ``cls`` (eq. 2: h_cls) or
            ``mean`` (the mean of the real tokens' states; for checkpoints trained with mean
            pooling, such as all-MiniLM-L6-v2, whose [CLS] state was never trained as a summary).
        residual: the final prediction adds the first one's logits, Y = sigmoid(z1 + f_cat W5 + b5)
            with W5 and b5 starting at zero, so the reranking stage starts from S1 and learns
            what to change (an extension; the paper's eq. 6 is Y = sigmoid(f_cat W5 + b5)).
        final_head: ``dense`` (eqs. 5-6: f_cat W5 over all K labels) or ``per_label`` (an
            extension: each label of S is rescored from its own attended feature a_j,
            z1[s_j] + a_j . (u[s_j] + w) + v[s_j], with label vectors u, v and a shared w that
            start at zero; labels outside S keep S1's logit). ``per_label`` is a reranker in the
            literal sense: it learns per label instead of per slot of S, has no gamma*delta x K
            W5, and starts from S1. ``per_label_alone`` (an extension): the same layers, but each
            label of S gets a_j . (u[s_j] + w) + v[s_j] itself as its logit instead of a change
            of S1's (v starts at the label log-odds, :func:`init_heads`; labels outside S keep
            S1's logit): on its training documents S1 is soon right, so a correction of it
            learns to change little, while a score of its own must tell the labels of S apart
            from the text; with ``final_blend`` the two predictions are then ranked as an ensemble.
        detach_first: where the final prediction adds S1's logits (``per_label``, or ``residual``
            with ``dense``), L2's gradient does not flow into them: S1 is trained by L1 alone,
            and the reranking stage learns what to change in a first prediction it cannot move
            (boosting rather than a second copy of the same head; an extension).
        summary_tokens: n summary states for the first prediction (1 = h_cls, eq. 2; n > 1:
            BERTXML's n - 1 extra [CLS]-like tokens, see :class:`FirstPrediction`; an extension).
        query_confidence: each label feature of step 3 also carries how sure the first
            prediction is of that label, F = M_f[S] + M_pos + S1[S] c with a learned vector c
            (an extension: F tells the queries which labels S holds and where, not which of
            them S1 doubts, which is what a reranker must know to move them).
        rank_loss_weight: L2 becomes BCE + w R, R a pairwise ranking loss over the labels of S,
            the mean of log(1 + exp(z_neg - z_pos)) over each document's (gold, non-gold) pairs
            in S (an extension: eq. 7's BCE scores each label on its own, while P@k and nDCG@k
            only ask that the gold labels of S outrank the others; 0 = off, the paper).
        rerank_noise: in training only, the first prediction that steps 2 and 5 start from is
            z1 + sigma eps, eps ~ N(0, 1) per document and label (L1 still scores the clean z1).
            An extension against a stacking trap: on its own training documents S1 is already
            right, so a reranking stage fit on them learns to change nothing; with sigma > 0 it
            is fit on a first prediction that errs, as S1 does on unseen text (0 = off, the paper).
        rerank_swap: p in [0, 1]: in training only, each document's first prediction that steps 2
            and 5 start from has, with probability p, one of its gold labels swap logits with a
            non-gold label that S1 ranks below it among its top gamma (both drawn uniformly), so
            that S1 seems to rank a wrong label where the gold one was and the gold one lower (an
            extension against the stacking trap, like ``rerank_noise``, but the error it makes is
            the one S1 makes on unseen text: a gold label out-ranked by a wrong one, while the other
            labels keep their logits; L1 still scores the clean z1, and the swapped pair's logits
            carry no gradient into S1; 0 = off, the paper).
        rerank_focal: g >= 0: L2 weights each label's BCE by (1 - p_t)^g, p_t the final
            prediction's probability of the label's true value (a focal loss; L1 stays BCE). An
            extension against the stacking trap (0 = BCE, the paper): on its own training
            documents S1 is right about nearly every label, so BCE's gradient is a sum over
            thousands of labels the stage must leave alone; with g > 0 those weigh next to
            nothing and the stage learns from the labels it still ranks wrongly or unsurely.
            Measured (README, issue #13's table): at g = 2 the stacked stage's gain over S1 fell
            from +0.35 to +0.02 nDCG@5; what it learns comes from the labels S1 gets right.
        first_temperature: T > 0: where the final prediction adds S1's logits (``per_label``, and
            ``residual`` with ``dense``; with ``per_label_alone``, the labels outside S), it adds
            z1 / T, in training and in prediction; S, L1 and S1's own ranking are untouched. An
            extension against the stacking trap (1 = off, the paper's and the code's): on its own
            training documents S1 is so sure (gold logits far above, the others far below) that
            L2's gradient on the labels of S vanishes and the reranking stage learns corrections
            too small to move a label on unseen text; with T > 1 the stage corrects a first
            prediction as unsure as S1 is on unseen text, and learns corrections on that scale.
            Measured on Reuters (README, issue #13), T = 2 did worse than T = 1: more top-1 labels
            right, fewer gold labels in the top 3 and top 5 than S1 itself had.
        label_init: how M_f (the label embedding of step 3) starts: ``random`` (the paper) or
            ``names``: row l is the encoder's own embedding of label l's text (the mean of its
            output states over the name's tokens, :func:`lcr.models.encoder.embed_texts`),
            centred over the labels and scaled to the random init's standard deviation, so that
            labels whose names mean similar things start with similar queries, and a tail label
            seen a few times in training starts from what the pretrained encoder knows of its
            name rather than from noise (an extension; see :meth:`LabelCoRank.init_labels_from_texts`).
        final_blend: w <= 1: what the model ranks with (``ModelOutput.logits``: prediction,
            evaluation, serving) is (1 - w) z2 + w z1, the final logits moved a share w back
            towards the first prediction's (w < 0: moved further away from it); the losses are
            untouched, so training is the same whatever w. An extension (0 = the paper's Y): an
            ensemble of the two heads that the model already has; with ``final_head: per_label``
            it scales the reranking stage's corrections by 1 - w, so that w < 0 enlarges
            corrections that a stage fit on training documents, where S1 is already right, learned
            too small (the stacking trap; ``python -m bench.bench_blend`` picks w on dev).
        label_interaction_layers: n >= 1 adds n pre-norm self-attention blocks over the gamma
            attended label features between steps 4 and 5 (:class:`LabelInteraction`), so that
            each label of S is rescored knowing which other labels S holds and what the text says
            about them: a listwise reranker (an extension; in the paper, and with 0, each label
            query reads the text alone and the labels of S meet only in W5).
        label_attention: how the label queries F_hat read the text (step 4): ``head`` (eqs.
            13-14, the paper: one multi-head attention of F_hat over the encoder's last states H)
            or ``encoder`` (an extension: the gamma queries are inserted as tokens after [CLS]
            in a second pass of the same encoder over the text, as a segment of their own, PAD
            slots masked, and each label's attended feature is its own output state; the labels
            of S and the text then read each other through every layer, as a cross-encoder
            reranker does, instead of the labels reading finished text states once). It costs a
            second encoder pass per document, in training and in prediction. ``encoder_readers``
            (an extension, cheaper): the gamma queries are appended after the text as readers that
            read the text (and each other) at every layer while the text does not read them, so
            the text's states are the plain pass's and give S1: the text is encoded once (keeping
            each layer's keys and values), S is chosen from its S1, and only the gamma readers then
            run through the layers against the cached text (:func:`lcr.models.summary.read_with_readers`).
        reader_weights: with ``encoder_readers``, which weights the readers run through:
            ``shared`` (the encoder's own layers, fine-tuned for S1 and for reading at once) or
            ``own`` (an extension: a copy of the encoder's layers, position and token-type
            embeddings, started from the same pretrained weights and fine-tuned at the encoder's
            rate, so that the reranking stage reads with weights of its own, a second model on the
            text's keys and values rather than the first stage's model asked again; the text's
            keys and values stay the encoder's, computed once). Costs the copy's parameters
            (about the encoder's, less its word embeddings), not another pass over the text.
        reader_keys: with ``reader_weights: own``, the keys and values of the text that the readers
            read at each layer: ``encoder`` (the encoder's own, cached by the text pass) or ``own``
            (an extension: the readers' copy projects the text's input states of each layer with
            its own key and value weights, :func:`lcr.models.summary.project_text_for_readers`, so
            that the text's self-attention, which gives S1, and the readers' view of the text no
            longer share one pair of projections). Costs two projections of the text per layer.
        reader_text_grad: with ``reader_keys: own``, whether L2 trains the encoder through the
            text states the readers project (True) or the readers read them detached (False, an
            extension): the encoder then learns from L1 and, through the S1 logits the final
            prediction corrects, from L2 at the logit level only, as the plain fine-tune's encoder
            does, while the readers learn to rerank on their own weights.
        separate_stages: train the two stages apart (an extension): step 1 learns from L1 alone,
            with exactly the random numbers (initial weights, dropout masks) and the gradient
            clipping of :class:`RobertaBaseline` at the same seed, so that its weights after each
            step equal the plain fine-tune's; steps 2-5 read S1 and the text's states without a
            gradient (as ``detach_first`` and ``reader_text_grad: false`` would), draw their own
            random numbers from a stream of their own (:func:`random_stream`, seeded from the
            global seed and counted per training forward in the ``stage_stream`` buffer, so that
            a resumed run draws what an uninterrupted one did), and L = L1 + L2 (beta is not used:
            the stages share no weight, and AdamW's step does not change when a gradient is
            scaled). The reranking stage is then a model stacked on the plain fine-tune, and what
            it adds over it is its own. Needs label queries that read the text with weights of
            their own (``label_attention: head``, or ``encoder_readers`` with ``reader_keys: own``).
    """

    num_labels: int
    use_cooc: bool = True
    use_rank: bool = True
    use_pos: bool = True

    @property
    def pad_label(self) -> int:
        """The PAD label index (K): an extra label embedding row, always masked out."""
        return self.num_labels

    def validate(self) -> "LabelCoRankConfig":
        """Reject impossible settings with an :class:`LcrError` naming the field."""
        checks = [
            (self.num_labels >= 1, "num_labels must be at least 1"),
            (self.gamma >= 1, "gamma must be at least 1"),
            (0.0 <= self.alpha <= 1.0, "alpha must be in [0, 1]"),
            (0.0 <= self.beta <= 1.0, "beta must be in [0, 1]"),
            (self.num_heads >= 1, "num_heads must be at least 1"),
            (0.0 <= self.dropout < 1.0 and 0.0 <= self.attention_dropout < 1.0, "dropouts must be in [0, 1)"),
            (self.selection in ("threshold", "topk"), "selection must be 'threshold' or 'topk'"),
            (self.classifier_rank is None or self.classifier_rank >= 1, "classifier_rank must be None or >= 1"),
            (self.ffn_dim is None or self.ffn_dim >= 1, "ffn_dim must be None or >= 1"),
            (self.pooling in ("cls", "mean"), "pooling must be 'cls' or 'mean'"),
            (self.summary_tokens >= 1, "summary_tokens must be at least 1"),
            (self.summary_tokens == 1 or self.pooling == "cls", "summary_tokens > 1 needs pooling 'cls'"),
            *self.second_stage_checks(),
            (self.label_attention in LABEL_ATTENTION, f"label_attention must be one of {', '.join(LABEL_ATTENTION)}"),
            *self.reading_checks(),
        ]
        for ok, message in checks:
            if not ok:
                raise LcrError(f"model config: {message}")
        return self

    @classmethod
    def from_params(cls, params, num_labels: int) -> "LabelCoRankConfig":
        """Build from a :class:`lcr.config.TrainParams`: its LabelCoRank settings by name, with
        ``pooling: auto`` resolved for the encoder."""
        return cls(num_labels=num_labels, **{**pick(params, LabelCoRankSettings), "pooling": params.resolved_pooling})


def pool_tokens(hidden: torch.Tensor, attention_mask: torch.Tensor, how: str) -> torch.Tensor:
    """The document summary that eq. 2 feeds to W1: h_cls, or the mean over the real tokens.

    Args:
        hidden: H (B x T x delta).
        attention_mask: 1 on real tokens, 0 on padding (B x T).
        how: ``cls`` or ``mean``.

    Returns:
        B x delta.
    """
    if how == "cls":
        return hidden[:, 0]  # (B, delta)
    mask = attention_mask.to(hidden.dtype)[:, :, None]  # (B, T, 1) padding contributes nothing
    return (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1.0)  # (B, delta)


def label_log_odds(freq, n_docs: int, eps: float = 1e-5) -> torch.Tensor:
    """log(p / (1 - p)) of each label's training-set frequency p = freq / n_docs (K,).

    A classifier whose bias starts here predicts the label prior from the first step instead of
    spending its first epoch learning that every label is rare. p is clipped to [eps, 1 - eps]
    so that a label never (or always) seen gets a large finite bias.
    """
    p = torch.as_tensor(np.asarray(freq, dtype=np.float64) / max(1, n_docs)).clamp(eps, 1 - eps)  # (K,)
    return torch.log(p) - torch.log1p(-p)  # (K,)


@torch.no_grad()
def init_heads(model: nn.Module, *, label_freq=None, n_docs: int | None = None, from_pooler: bool = False) -> dict:
    """Start a freshly built model's label layers from what is already known.

    * ``label_freq`` (K,) and ``n_docs``: the biases of W2 (and W5, or v of the
      ``per_label_alone`` head) become the labels' training-set log-odds (:func:`label_log_odds`).
    * ``from_pooler``: W1/b1 become the encoder checkpoint's own pooler (``encoder.pooler.dense``
      of BERT/RoBERTa checkpoints: tanh(h_cls W + b) is exactly eq. 2, and the authors' code
      feeds the encoder's ``pooler_output`` to W2); left random when the encoder has none.

    Models without these layers (the word-level baselines) are left as they are.

    Returns:
        What was initialised: ``{"bias": [layer names], "pooler": bool}``.
    """
    done = {"bias": [], "pooler": False}
    if label_freq is not None:
        bias = label_log_odds(label_freq, n_docs)
        offset = getattr(model, "label_offset", None)  # v of final_head per_label_alone (K + 1 rows, PAD last)
        if getattr(getattr(model, "config", None), "final_head", None) == "per_label_alone" \
                and isinstance(offset, nn.Embedding) and offset.num_embeddings == bias.numel() + 1:
            offset.weight[:-1, 0].copy_(bias.to(offset.weight))
            done["bias"].append("label_offset")
        residual = getattr(getattr(model, "config", None), "residual", False)
        for name in ("classifier1",) if residual else ("classifier1", "classifier2"):  # residual: S1 has the prior
            layer = getattr(model, name, None)
            if isinstance(layer, nn.Sequential):  # low-rank W5 = A B: the bias is B's
                layer = layer[-1]
            if isinstance(layer, nn.Linear) and layer.bias is not None and layer.bias.numel() == bias.numel():
                layer.bias.copy_(bias.to(layer.bias))
                done["bias"].append(name)
    pooler = getattr(getattr(getattr(model, "encoder", None), "pooler", None), "dense", None)
    pool = getattr(model, "pool", None)
    if from_pooler and isinstance(pooler, nn.Linear) and isinstance(pool, nn.Linear) \
            and pooler.weight.shape == pool.weight.shape:
        pool.weight.copy_(pooler.weight)
        pool.bias.copy_(pooler.bias)
        done["pooler"] = True
    return done


# --------------------------------------------------------------------------------------------
# Label statistics: co-occurrence matrix and frequency rank


def cooc_transposed(cooc, num_labels: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The co-occurrence matrix M as the COO parts of its transpose M^T.

    Eq. 9 sums *rows* of M over the labels of S2: M_hat = onehot(S2) M. A torch sparse matrix
    can only be the left factor of a product, so the model keeps M^T and computes
    M_hat^T = M^T onehot(S2)^T. Values are float64, so sums of counts stay exact (float32 is
    exact only up to 2^24) and ties are broken the same way on every device.

    Args:
        cooc: M (K x K, row i = m_i: how often each label occurs with label i) as a SciPy
            sparse matrix, a torch tensor (dense or sparse) or a NumPy array.
        num_labels: K.

    Returns:
        ``(indices, values)``: int64 (2 x nnz) and float64 (nnz,), coalesced, of M^T.

    Raises:
        LcrError: M is not K x K.
    """
    if hasattr(cooc, "tocoo"):  # SciPy sparse
        coo = cooc.tocoo()
        shape = coo.shape
        indices = torch.from_numpy(np.stack([coo.row, coo.col]).astype(np.int64))  # (2, nnz)
        values = torch.from_numpy(np.asarray(coo.data, dtype=np.float64))  # (nnz,)
        matrix = torch.sparse_coo_tensor(indices, values, shape, check_invariants=True)
    else:
        matrix = torch.as_tensor(cooc)
        shape = tuple(matrix.shape)
        matrix = matrix.to_sparse() if matrix.layout == torch.strided else matrix.to_sparse_coo()
    if tuple(shape) != (num_labels, num_labels):
        raise LcrError(f"the co-occurrence matrix is {tuple(shape)}, expected ({num_labels}, {num_labels})")
    transposed = matrix.t().coalesce()  # (K, K) sparse M^T; duplicates summed
    return transposed.indices().long(), transposed.values().double()


def as_freq_rank(freq_rank, num_labels: int) -> torch.Tensor:
    """Check and convert a frequency rank: ``freq_rank[l]`` = position of label l when labels
    are sorted by training-set frequency, 0 = most frequent. Returns a LongTensor (K,)."""
    if isinstance(freq_rank, torch.Tensor):
        rank = freq_rank.detach().cpu().long().reshape(-1)
    else:
        rank = torch.tensor(np.array(freq_rank, dtype=np.int64)).reshape(-1)
    if rank.numel() != num_labels:
        raise LcrError(f"freq_rank has {rank.numel()} entries, expected K = {num_labels}")
    return rank


# --------------------------------------------------------------------------------------------
# Label reranking (eqs. 9-11)


@torch.no_grad()
def _top_with_ties_by_index(values: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Top-k of each row, larger value first and, among equal values, lower index first.

    ``torch.topk`` leaves the order of ties open, and a stable sort of all K columns costs
    far more than the rest of selection at K = 17,963. Instead each value becomes one int64
    key whose high bits order the value (the IEEE bits of a non-negative float are monotone)
    and whose low bits hold the reversed column index, so one ``topk`` on exact integers is
    deterministic on every device. float64 values lose their lowest mantissa bits to the index
    (values equal to about 11 significant digits count as ties; counts below 2^35 stay exact);
    float32 values are exact. -inf (and every negative value) sorts below all non-negatives.

    Args:
        values: (B x K) float32 or float64, non-negative or -inf.
        k: how many per row.

    Returns:
        ``(top values, top indices)``, each (B x k).
    """
    batch, num = values.shape
    index_bits = max(1, (num - 1).bit_length())
    reverse_index = (num - 1) - torch.arange(num, device=values.device)  # (K,) lower index -> larger
    if values.dtype == torch.float32:
        bits = values.view(torch.int32).long() << index_bits  # (B, K) 31 value bits, then the index
    else:
        bits = (values.double().view(torch.int64) >> index_bits) << index_bits  # (B, K)
    key = torch.where(values >= 0, bits | reverse_index, torch.full_like(bits, -1))  # (B, K)
    idx = torch.topk(key, k, dim=1, sorted=True).indices  # (B, k)
    return values.gather(1, idx), idx


def cooc_csr(cooc_t: torch.Tensor) -> torch.Tensor:
    """M as a float64 sparse CSR matrix, from M^T in any torch sparse layout (or dense)."""
    matrix = cooc_t.t() if cooc_t.layout != torch.sparse_csr else cooc_t.to_sparse_coo().t()
    if matrix.layout == torch.strided:
        matrix = matrix.to_sparse()
    return matrix.coalesce().double().to_sparse_csr()


def cooc_row_sums(matrix: torch.Tensor, labels: torch.Tensor, keep: torch.Tensor, *,
                  gather: bool | None = None) -> torch.Tensor:
    """Eq. 9 for a batch: M_hat[b] = the sum of the rows m_l of M over the kept labels of row b.

    Only the rows of M named in the batch are read, never all of M. On CUDA this is the sparse x
    sparse product onehot(S2) M (cuSPARSE; every size known up front). On the CPU gathering
    the CSR rows and adding them with one ``index_add_`` is about 3x faster than torch's
    sparse x sparse product (bench/bench_selection.py); it needs the number of gathered
    entries, which on a GPU would cost a host sync, hence the split. Both are exact: float64
    sums of integer counts.

    Args:
        matrix: M (K x K), float64 sparse CSR (see :func:`cooc_csr`).
        labels: LongTensor (B x n): candidate labels per row.
        keep: BoolTensor (B x n): which of them count (S2).
        gather: force the row gather (True) or the sparse product (False); None = by device.

    Returns:
        float64 (B x K), dense.
    """
    batch, slots = labels.shape
    num_labels = matrix.size(0)
    if gather is None:
        gather = matrix.device.type == "cpu"
    if not gather:
        onehot = torch.sparse_csr_tensor(
            torch.arange(0, batch * slots + 1, slots, device=labels.device),  # (B + 1,) row pointers
            labels.reshape(-1), keep.reshape(-1).double(), size=(batch, num_labels),
            check_invariants=False)  # (B, K) weight 0 outside S2
        return torch.sparse.mm(onehot, matrix).to_dense()  # (B, K) @ (K, K) -> (B, K)
    crow, col, values = matrix.crow_indices(), matrix.col_indices(), matrix.values()  # (K + 1,), (nnz,), (nnz,)
    flat = labels.reshape(-1)  # (B n,)
    starts = crow[flat]  # (B n,) where each row m_l begins in col/values
    lengths = (crow[flat + 1] - starts) * keep.reshape(-1)  # (B n,) its length, 0 when not kept
    total = int(lengths.sum())  # entries to gather (the host is the device here: no sync)
    device = labels.device
    segment = torch.repeat_interleave(torch.arange(flat.numel(), device=device), lengths,
                                      output_size=total)  # (total,) which (row, slot) each entry serves
    # Entry j of the gathered list is col/values[starts[s] + (j - begin of segment s)].
    shift = starts - (torch.cumsum(lengths, 0) - lengths)  # (B n,)
    position = torch.arange(total, device=device) + shift[segment]  # (total,) into col/values
    target = (segment // slots) * num_labels + col[position]  # (total,) into the flat (B K) output
    out = torch.zeros(batch * num_labels, dtype=torch.float64, device=device)  # (B K,)
    out.index_add_(0, target, values[position])
    return out.view(batch, num_labels)  # (B, K)


def select_labels(probs: torch.Tensor, *, gamma: int, alpha: float = 0.3,
                  cooc_t: torch.Tensor | None = None, freq_rank: torch.Tensor | None = None,
                  selection: str = "threshold", use_cooc: bool = True,
                  use_rank: bool = True, cooc: torch.Tensor | None = None,
                  fill_to_gamma: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Select and order the label sequence S for each document (eqs. 9-11), fully batched.

    Everything runs on the device of ``probs``, without a loop over documents (and on CUDA
    without a host sync: see :func:`cooc_row_sums`).
    Ties are broken deterministically: among equal S1 scores or equal M_hat values the lower
    label index comes first, and so it does among equal frequency ranks.

    Args:
        probs: S1, the first prediction's probabilities (B x K).
        gamma: the length of S (gamma <= K).
        alpha: the threshold of S2 (``selection="threshold"``), inclusive, compared in float32.
        cooc_t: M^T as a torch sparse (COO or CSR) K x K matrix; needed when labels are expanded
            (unless ``cooc`` is given). Converted to CSR on each call: callers that select often
            pass ``cooc`` instead.
        cooc: M itself as a float64 sparse CSR matrix (see :func:`cooc_csr`), the fast path.
        freq_rank: LongTensor (K,), 0 = most frequent label; needed when ``use_rank``.
        selection: ``threshold``: S2 = {l: S1_l >= alpha}, at most gamma, best first;
            ``topk``: S2 = the top-gamma of S1 (the authors' code; nothing is added).
        use_cooc: False = S is the top-gamma of S1 (no expansion).
        use_rank: False = keep S4 in selection order (S2 by score, then S3 by M_hat).
        fill_to_gamma: with ``threshold`` selection and ``use_cooc``, fill the slots that S2 and
            S3 leave free with the best remaining labels of S1 (in S1's order), so that S holds
            gamma labels.

    Returns:
        ``(S, mask)``: LongTensor (B x gamma) of label indices, PAD (= K) where there is no
        label, and BoolTensor (B x gamma), True on real labels (always a prefix of the row).
    """
    batch, num_labels = probs.shape
    device = probs.device
    probs = probs.float()
    # Top-gamma of S1, best first, ties to the lower index.
    s1_top, top_idx = _top_with_ties_by_index(probs, gamma)  # (B, gamma), (B, gamma) candidates for S2
    if selection == "topk" or not use_cooc:
        # The authors' code / the no_cooc ablation: S2 is the whole top-gamma, S3 is empty.
        labels = top_idx  # (B, gamma)
        mask = torch.ones_like(top_idx, dtype=torch.bool)  # (B, gamma)
    else:
        if cooc is None and cooc_t is None:
            raise LcrError("label expansion needs the co-occurrence matrix")
        matrix = cooc if cooc is not None else cooc_csr(cooc_t)  # (K, K) M, sparse CSR
        in_s2 = s1_top >= alpha  # (B, gamma), a prefix of each row: S2
        size_s2 = in_s2.sum(dim=1)  # (B,) |S2| = V
        m_hat = cooc_row_sums(matrix, top_idx, in_s2)  # (B, K) eq. 9
        # S3 may not repeat S2; -inf also keeps S2 labels out of the "M_hat > 0" test below.
        is_s2 = torch.zeros(batch, num_labels, dtype=torch.bool, device=device)  # (B, K)
        is_s2.scatter_(1, top_idx, in_s2)  # (B, K)
        m_hat = m_hat.masked_fill(is_s2, float("-inf"))  # (B, K)
        m_top, s3_idx = _top_with_ties_by_index(m_hat, gamma)  # (B, gamma) candidates for S3, best first
        slot = torch.arange(gamma, device=device)  # (gamma,)
        # Only labels that do co-occur (M_hat > 0), and only the gamma - V that fit.
        in_s3 = (m_top > 0) & (slot[None, :] < (gamma - size_s2)[:, None])  # (B, gamma)
        cand = torch.cat([top_idx, s3_idx], dim=1)  # (B, 2 gamma)
        valid = torch.cat([in_s2, in_s3], dim=1)  # (B, 2 gamma)
        if fill_to_gamma:
            # The slots still free go to S1's best labels that S2 and S3 do not hold, in S1's order.
            taken = is_s2 | torch.zeros_like(is_s2).scatter_(1, s3_idx, in_s3)  # (B, K) S2 u S3
            free = ~taken.gather(1, top_idx)  # (B, gamma) top-gamma labels of S1 not in S yet
            room = gamma - size_s2 - in_s3.sum(dim=1)  # (B,) empty slots
            in_fill = free & (torch.cumsum(free, dim=1) <= room[:, None])  # (B, gamma)
            cand = torch.cat([cand, top_idx], dim=1)  # (B, 3 gamma)
            valid = torch.cat([valid, in_fill], dim=1)  # (B, 3 gamma)
        # S4 = S2 u S3 (u the fill) in selection order: move the valid candidates to the front,
        # keeping their order (a stable sort on "is invalid"). At most gamma are valid.
        front = torch.sort((~valid).to(torch.uint8), dim=1, stable=True).indices[:, :gamma]  # (B, gamma)
        labels = cand.gather(1, front)  # (B, gamma) S4
        mask = valid.gather(1, front)  # (B, gamma)
    if use_rank:
        if freq_rank is None:
            raise LcrError("frequency ranking needs freq_rank")
        # Eq. 11: most frequent first; equal ranks fall back to the label index; PAD goes last.
        key = freq_rank.to(device)[labels] * (num_labels + 1) + labels  # (B, gamma)
        key = key.masked_fill(~mask, torch.iinfo(torch.long).max)  # (B, gamma)
        order = torch.sort(key, dim=1, stable=True).indices  # (B, gamma)
        labels, mask = labels.gather(1, order), mask.gather(1, order)  # (B, gamma), (B, gamma)
    labels = labels.masked_fill(~mask, num_labels)  # (B, gamma) PAD = K where there is no label
    return labels, mask


# --------------------------------------------------------------------------------------------
# Modules


class LabelTextAttention(nn.Module):
    """Multi-head masked attention of label queries over tokens (eqs. 13-14).

    head_i = softmax(Q_i K_i^T / sqrt(d_k) + M) V_i with Q_i = F_hat W_i^Q, K_i = H W_i^K,
    V_i = H W_i^V, and the heads concatenated (eq. 13: no output projection W^O, as in the paper
    and in the authors' code).
    """

    def __init__(self, dim: int, num_heads: int, dropout: float = 0.0):
        super().__init__()
        if dim % num_heads:
            raise LcrError(f"num_heads = {num_heads} does not divide the hidden size {dim}")
        self.num_heads = num_heads
        self.dropout = dropout
        self.query = nn.Linear(dim, dim)  # all W_i^Q side by side
        self.key = nn.Linear(dim, dim)  # all W_i^K
        self.value = nn.Linear(dim, dim)  # all W_i^V

    def forward(self, queries: torch.Tensor, tokens: torch.Tensor, token_mask: torch.Tensor) -> torch.Tensor:
        """
        Args:
            queries: F_hat (B x gamma x delta).
            tokens: H (B x T x delta).
            token_mask: True on real tokens (B x T): the tokenizer's attention_mask, never a
                token id (the authors' code masks id 0, which for RoBERTa is ``<s>``).

        Returns:
            B x gamma x delta: each query's attended text features, heads concatenated.
        """
        batch, n_queries, dim = queries.shape
        n_tokens, heads = tokens.size(1), self.num_heads
        q = self.query(queries).view(batch, n_queries, heads, dim // heads).transpose(1, 2)  # (B, eta, gamma, d_k)
        k = self.key(tokens).view(batch, n_tokens, heads, dim // heads).transpose(1, 2)  # (B, eta, T, d_k)
        v = self.value(tokens).view(batch, n_tokens, heads, dim // heads).transpose(1, 2)  # (B, eta, T, d_k)
        # M of eq. 14 as a boolean mask. A row without any real token would softmax over nothing
        # (NaN); let it attend everywhere instead: finite, and such a document has no text anyway.
        keep = token_mask.bool()  # (B, T)
        keep = keep | ~keep.any(dim=1, keepdim=True)  # (B, T)
        out = F.scaled_dot_product_attention(
            q, k, v, attn_mask=keep[:, None, None, :],  # (B, 1, 1, T) broadcast over heads and queries
            dropout_p=self.dropout if self.training else 0.0)  # (B, eta, gamma, d_k)
        return out.transpose(1, 2).reshape(batch, n_queries, dim)  # (B, gamma, delta) concat heads


class LabelInteraction(nn.Module):
    """Self-attention among the labels of S (``label_interaction_layers``; not in the paper).

    n pre-norm blocks x = x + SA(LN(x)), x = x + FFN(LN(x)) over the gamma attended features,
    PAD slots masked as keys. Eqs. 13-14 let each label query read the text on its own; here the
    labels of S then read each other, so "wheat" can be scored up because "grain" is in S and the
    text backs both, which is the co-occurrence knowledge a reranker is meant to use.

    Args:
        dim: delta. num_heads: heads of each block (must divide delta).
        ffn_dim: the blocks' feed-forward width. dropout: on the attention and FFN outputs.
        layers: n >= 1.
    """

    def __init__(self, dim: int, num_heads: int, ffn_dim: int, dropout: float, layers: int):
        super().__init__()
        if dim % num_heads:
            raise LcrError(f"num_heads = {num_heads} does not divide the hidden size {dim}")
        self.num_heads = num_heads
        self.blocks = nn.ModuleList(nn.ModuleDict({
            "norm1": nn.LayerNorm(dim), "qkv": nn.Linear(dim, 3 * dim), "proj": nn.Linear(dim, dim),
            "norm2": nn.LayerNorm(dim), "ffn_in": nn.Linear(dim, ffn_dim), "ffn_out": nn.Linear(ffn_dim, dim),
        }) for _ in range(layers))
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """
        Args:
            x: the attended label features (B x gamma x delta).
            mask: True on the real labels of S (B x gamma).

        Returns:
            B x gamma x delta; PAD slots are zero.
        """
        batch, slots, dim = x.shape
        heads = self.num_heads
        # A row without any real label would softmax over nothing (NaN); let it attend everywhere
        # (its outputs are zeroed below, and no real slot reads them).
        keep = mask | ~mask.any(dim=1, keepdim=True)  # (B, gamma)
        for block in self.blocks:
            q, k, v = block["qkv"](block["norm1"](x)).view(batch, slots, 3, heads, dim // heads).unbind(2)  # 3 x (B, gamma, eta, d_k)
            attended = F.scaled_dot_product_attention(
                q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2),
                attn_mask=keep[:, None, None, :])  # (B, eta, gamma, d_k) each label reads the others
            x = x + self.drop(block["proj"](attended.transpose(1, 2).reshape(batch, slots, dim)))  # (B, gamma, delta)
            x = x + self.drop(block["ffn_out"](F.gelu(block["ffn_in"](block["norm2"](x)))))  # (B, gamma, delta)
        return x.masked_fill(~mask[:, :, None], 0.0)  # (B, gamma, delta) PAD contributes nothing


class FirstPrediction:
    """Step 1 of the pipeline (eqs. 1-3), shared by :class:`LabelCoRank` and :class:`RobertaBaseline`.

    With ``summary_tokens`` n > 1 (an extension, BERTXML's idea: :mod:`lcr.models.summary`)
    the encoder reads n - 1 learned [CLS]-like tokens after [CLS]; eq. 2 pools each of the n
    summary states with the same W1, and W2 reads the n results side by side (n delta -> K).
    n = 1 is the paper's h_cls and builds exactly the layers (and draws exactly the random
    numbers) it did before the option existed.
    """

    def build_first_prediction(self, config: LabelCoRankConfig, encoder: nn.Module) -> None:
        dim, n = encoder.config.hidden_size, config.summary_tokens
        self.summary = SummaryTokens(n, encoder) if n > 1 else None
        self.pool = nn.Linear(dim, dim)  # W1
        self.classifier1 = nn.Linear(n * dim, config.num_labels)  # W2

    def init_summary_from(self, cls_token_id: int) -> None:
        """Start the extra summary tokens from the [CLS] embedding (nothing to do for n = 1)."""
        if self.summary is not None:
            self.summary.init_from(self.encoder, cls_token_id)

    def first_prediction(self, input_ids: torch.Tensor,
                         attention_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """H, its mask and S1's logits.

        Returns:
            ``(hidden, mask, logits1)``: B x T' x delta, B x T' (T' = T + n - 1: the summary
            tokens are states the label attention can read too) and B x K.
        """
        if self.summary is None:
            hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state  # (B, T, delta) H
            return hidden, attention_mask, self.first_logits_of(hidden, attention_mask)  # ..., (B, K)
        n = self.summary.count
        hidden, attention_mask = self.summary(self.encoder, input_ids, attention_mask)  # (B, T + n - 1, delta), (B, T + n - 1)
        pooled = torch.tanh(self.pool(hidden[:, :n])).flatten(1)  # (B, n delta) eq. 2 on each summary state
        return hidden, attention_mask, self.classifier1(pooled)  # ..., (B, K)

    def first_logits_of(self, hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """S1's logits (B x K) from the text's states H (B x T x delta): eqs. 2-3, one summary state."""
        pooled = torch.tanh(self.pool(pool_tokens(hidden, attention_mask, self.config.pooling)))  # (B, delta) P
        return self.classifier1(pooled)  # (B, K)

    def first_stage_parameters(self) -> list[nn.Parameter]:
        """Step 1's parameters: the encoder, the summary tokens, W1 and W2."""
        parts = (self.encoder, self.summary, self.pool, self.classifier1)
        return [p for part in parts if part is not None for p in part.parameters()]


@contextmanager
def random_stream(seed: int, device: torch.device):
    """Inside the block, torch draws from the CPU stream (and, on CUDA, the device's) seeded with
    ``seed``; after it, the global streams are where they were before it.

    Only these two generators are seeded: ``torch.manual_seed`` would also reseed every other
    CUDA device, which the block would not restore.
    """
    cuda = device.type == "cuda"
    index = (device.index if device.index is not None else torch.cuda.current_device()) if cuda else None
    with torch.random.fork_rng(devices=[index] if cuda else [], device_type="cuda"):
        torch.default_generator.manual_seed(seed)
        if cuda:
            torch.cuda.default_generators[index].manual_seed(seed)
        yield


class LabelCoRank(FirstPrediction, SaveLoad, nn.Module):
    """LabelCoRank: first prediction, label reranking, label-to-text attention, final prediction.

    Args:
        config: the model settings (``num_labels``, ``gamma``, flags...).
        encoder: a Hugging Face encoder whose output has ``last_hidden_state`` (B x T x delta).
        cooc: the co-occurrence matrix M (K x K; see :func:`cooc_transposed`); needed when
            ``use_cooc`` with ``selection="threshold"``.
        freq_rank: label -> frequency rank (K,), 0 = most frequent; needed when ``use_rank``.
        variant: the name recorded by :meth:`save_pretrained`.
    """

    def __init__(self, config: LabelCoRankConfig, encoder: nn.Module, cooc=None, freq_rank=None,
                 variant: str = "labelcorank"):
        super().__init__()
        self.config = config.validate()
        self.variant = variant
        self.encoder = encoder
        num_labels, gamma = config.num_labels, config.gamma
        if gamma > num_labels:
            raise LcrError(f"gamma = {gamma} is larger than the number of labels K = {num_labels}")
        dim = encoder.config.hidden_size  # delta
        expands = config.use_cooc and config.selection == "threshold"
        if expands and cooc is None:
            raise LcrError(f"variant '{variant}' expands labels by co-occurrence: a co-occurrence matrix is needed")
        if config.use_rank and freq_rank is None:
            raise LcrError(f"variant '{variant}' sorts labels by frequency: freq_rank is needed")

        # Label statistics are buffers: they follow .to(device) and are saved with the weights.
        # M^T is kept as COO parts (a sparse buffer can't go into safetensors) and viewed as a
        # torch sparse matrix when used; a dense K x K (K = 17,963 on MAG-CS) is never built.
        if cooc is not None:
            indices, values = cooc_transposed(cooc, num_labels)
        else:
            indices, values = torch.zeros(2, 0, dtype=torch.long), torch.zeros(0, dtype=torch.float64)
        self.register_buffer("cooc_indices", indices)  # (2, nnz) of M^T
        self.register_buffer("cooc_values", values)  # (nnz,) float64
        rank = as_freq_rank(freq_rank, num_labels) if freq_rank is not None else torch.arange(num_labels)
        self.register_buffer("freq_rank", rank)  # (K,) 0 = most frequent

        # Step 1: P = tanh(h_cls W1 + b1) (eq. 2), S1 = sigmoid(P W2 + b2) (eq. 3).
        self.build_first_prediction(config, encoder)  # W1, W2 (and the summary tokens)
        if config.separate_stages:
            # Steps 2-5 draw from a stream of their own, here and in training (see reranking_stream),
            # so that step 1 and what comes after it draw what RobertaBaseline's would.
            stream_seed = torch.initial_seed() % 2**40
            self.register_buffer("stage_stream", torch.tensor([stream_seed, 0]))  # (seed, training forwards so far)
            with random_stream(stream_seed, torch.device("cpu")):
                self._build_reranking_stage(config, encoder, num_labels, gamma, dim)
        else:
            self._build_reranking_stage(config, encoder, num_labels, gamma, dim)

    def _build_reranking_stage(self, config: LabelCoRankConfig, encoder: nn.Module, num_labels: int, gamma: int,
                               dim: int) -> None:
        """The layers of steps 3-5 (and the readers' copy of the encoder)."""
        # Step 3: M_f (K + 1 rows, the last for PAD) and M_pos (gamma x delta); eq. 12's FFN.
        self.label_embedding = nn.Embedding(num_labels + 1, dim, padding_idx=num_labels)  # M_f
        self.position_embedding = nn.Embedding(gamma, dim) if config.use_pos else None  # M_pos
        std = getattr(encoder.config, "initializer_range", 0.02)  # same scale as the encoder's embeddings
        nn.init.normal_(self.label_embedding.weight, std=std)
        if self.position_embedding is not None:
            nn.init.normal_(self.position_embedding.weight, std=std)
        with torch.no_grad():
            self.label_embedding.weight[num_labels].zero_()  # PAD: its outputs are masked anyway
        # c: S1's confidence in each label of S, as a direction of the label feature
        self.confidence_embedding = nn.Parameter(torch.randn(dim) * std) if config.query_confidence else None
        ffn_dim = config.ffn_dim or dim
        self.ffn_in = nn.Linear(dim, ffn_dim)  # W3
        self.ffn_drop = nn.Dropout(config.dropout)  # Drop
        self.ffn_out = nn.Linear(ffn_dim, dim)  # W4
        # Step 4: eqs. 13-14; with label_attention "encoder"/"encoder_readers" the encoder reads S (no new layer).
        self.attention = LabelTextAttention(dim, config.num_heads, config.attention_dropout) \
            if config.label_attention == "head" else None  # the encoder modes read with the encoder
        self.token_limit = max_tokens(encoder.config)  # the encoder's position table
        # Step 5: Y = sigmoid(f_cat W5 + b5) (eq. 6). W5 is (gamma delta x K): 483M weights for
        # MAG-CS with roberta-base, hence the optional low-rank factorisation W5 ~ A B.
        if config.final_head in PER_LABEL_HEADS:
            # a_j . (u[s_j] + w) + v[s_j]: one vector and one bias per label (PAD row K unused)
            self.label_scorer = nn.Embedding(num_labels + 1, dim)  # u
            self.label_offset = nn.Embedding(num_labels + 1, 1)  # v
            self.shared_scorer = nn.Linear(dim, 1, bias=False)  # w
            for weight in (self.label_scorer.weight, self.label_offset.weight, self.shared_scorer.weight):
                nn.init.zeros_(weight)  # per_label: Y starts as S1 (per_label_alone: init_heads sets v)
        elif config.classifier_rank is None:
            self.classifier2 = nn.Linear(gamma * dim, num_labels)  # W5
        else:
            self.classifier2 = nn.Sequential(
                nn.Linear(gamma * dim, config.classifier_rank, bias=False),  # A
                nn.Linear(config.classifier_rank, num_labels))  # B, b5
        if config.residual and config.final_head == "dense":  # Y starts as S1 exactly: f_cat W5 + b5 = 0
            last = self.classifier2[-1] if isinstance(self.classifier2, nn.Sequential) else self.classifier2
            nn.init.zeros_(last.weight)
            nn.init.zeros_(last.bias)
        # Between steps 4 and 5 (an extension): the labels of S read each other. Built last, so
        # that the other layers draw the same random numbers whether it is there or not.
        self.interaction = LabelInteraction(dim, config.num_heads, ffn_dim, config.dropout,
                                            config.label_interaction_layers) \
            if config.label_interaction_layers else None
        # Step 4 with reader_weights "own": the readers' own copy of the encoder (no random numbers drawn).
        self.reader_encoder = reader_copy(encoder) if config.reader_weights == "own" else None

    @torch.no_grad()
    def init_labels_from_texts(self, tokenizer, texts: list[str]) -> None:
        """``label_init: names``: start M_f's K label rows from the encoder's embedding of each
        label's text (the PAD row stays zero).

        The mean over the labels is removed first: the mean-pooled states of a pretrained encoder
        share one large common direction, which would make every query alike. The rows are then
        scaled to the standard deviation of the random init (``initializer_range``), so the
        embedding keeps its scale beside M_pos and only its directions carry the names' meaning.
        Called once on a freshly built model; a saved model loads its trained M_f instead.

        Args:
            tokenizer: the encoder's tokenizer.
            texts: one text per label, in label-index order
                (:func:`lcr.models.baselines.label_text.label_texts`).

        Raises:
            LcrError: not one text per label.
        """
        from lcr.models.encoder import embed_texts

        num_labels = self.config.num_labels
        if len(texts) != num_labels:
            raise LcrError(f"label_init names: {len(texts)} label texts for K = {num_labels} labels")
        vectors = embed_texts(self.encoder, tokenizer, list(texts), self.config.label_name_length).float()  # (K, delta)
        if num_labels > 1:
            vectors = vectors - vectors.mean(dim=0, keepdim=True)  # (K, delta) without the common direction
        std = getattr(self.encoder.config, "initializer_range", 0.02)
        vectors = vectors * (std / vectors.std().clamp(min=1e-12))  # (K, delta) the random init's scale
        self.label_embedding.weight[:num_labels] = vectors.to(self.label_embedding.weight)

    @property
    def cooc_t(self) -> torch.Tensor:
        """M^T as a torch sparse COO matrix (K x K) on the model's device."""
        k = self.config.num_labels
        return torch.sparse_coo_tensor(self.cooc_indices, self.cooc_values, (k, k),
                                       is_coalesced=True, check_invariants=False)

    def cooc_matrix(self) -> torch.Tensor:
        """M as sparse CSR on the model's device, built once per device and reused (the saved
        form stays the COO buffers; a CSR tensor cannot go into safetensors)."""
        # Rebuilt when the buffers move (.to) or are written in place (load_state_dict bumps
        # the tensors' version counters).
        values, indices = self.cooc_values, self.cooc_indices
        key = (values.device, values.data_ptr(), values._version, indices.data_ptr(), indices._version)
        cached = getattr(self, "_cooc_cache", None)
        if cached is None or cached[0] != key:
            cached = (key, cooc_csr(self.cooc_t))
            self._cooc_cache = cached
        return cached[1]

    # Selection runs outside autograd and outside torch.compile (data-dependent sparse ops).
    @torch.compiler.disable
    def select(self, logits1: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """S and its mask (B x gamma) from the first prediction's logits (B x K); no gradient."""
        cfg = self.config
        with torch.no_grad(), torch.autocast(logits1.device.type, enabled=False):
            probs = torch.sigmoid(logits1.detach().float())  # (B, K) S1
            expands = cfg.use_cooc and cfg.selection == "threshold"
            return select_labels(probs, gamma=cfg.gamma, alpha=cfg.alpha,
                                 cooc=self.cooc_matrix() if expands else None,
                                 freq_rank=self.freq_rank, selection=cfg.selection,
                                 use_cooc=cfg.use_cooc, use_rank=cfg.use_rank,
                                 fill_to_gamma=cfg.fill_to_gamma)

    @torch.no_grad()
    def s2_sizes(self, logits1: torch.Tensor) -> torch.Tensor:
        """|S2| per document (B,): the labels the first prediction chose itself (S1 >= alpha, at
        most gamma; the whole top-gamma where nothing is expanded: ``topk`` selection, no_cooc)."""
        cfg = self.config
        if cfg.use_cooc and cfg.selection == "threshold":
            return (torch.sigmoid(logits1.float()) >= cfg.alpha).sum(dim=1).clamp(max=cfg.gamma)  # (B,)
        return torch.full((logits1.size(0),), cfg.gamma, dtype=torch.long, device=logits1.device)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                labels: torch.Tensor | None = None, first_stage_only: bool = False,
                first_logits: torch.Tensor | None = None, first_frozen: bool = False) -> ModelOutput:
        """
        Args:
            input_ids: token ids (B x T).
            attention_mask: 1 on real tokens, 0 on padding (B x T).
            labels: multi-hot gold labels (B x K), for the losses.
            first_stage_only: run step 1 alone (L = L1; the first-stage warm-up of training):
                nothing of steps 2-5 is computed, so their parameters get no gradient.
            first_logits: what steps 2 and 5 start from instead of the model's own S1 logits
                (B x K, no gradient): in training with ``cross_fit_folds``, out-of-fold first
                predictions of these documents (:mod:`lcr.train.cross_fit`). L1 still scores the
                model's own S1; None = its own S1 (the paper; always in prediction).
            first_frozen: step 1 runs without a gradient, so that only steps 2-5 learn (the
                ``rerank_epochs`` of training, after the first stage has finished; L1 is still
                reported). Needs ``separate_stages``, where no weight is shared between the stages.

        Returns:
            A :class:`ModelOutput`; ``logits`` is what the model ranks with: the final prediction
            (``logits2``; with ``final_blend`` w != 0, its blend with S1's), or S1's logits with
            ``first_stage_only``.
        """
        cfg = self.config
        if first_frozen and not cfg.separate_stages:
            raise ValueError("first_frozen needs separate_stages: otherwise the stages share weights")
        # Step 1: first prediction from the [CLS] token (or the mean of the tokens, see pooling).
        text_mask = attention_mask  # (B, T) the text's own mask (a second encoder pass reads it)
        readers = cfg.label_attention == "encoder_readers" and not first_stage_only
        with torch.no_grad() if first_frozen else nullcontext():  # rerank_epochs: the first stage is finished
            hidden, attention_mask, logits1, layer_inputs, cache = self._first_step(
                input_ids, attention_mask, readers)
        if readers and cfg.reader_keys == "own":  # the readers' own weights project each layer's text states
            cache = project_text_for_readers(self.reader_encoder, layer_inputs)
        if first_stage_only:
            out = ModelOutput(logits=logits1, logits1=logits1)
            if labels is not None:
                out.loss = out.loss1 = bce(logits1, labels)  # L = L1 during the warm-up
            return out

        with self.reranking_stream():  # separate_stages: steps 2-5 draw random numbers of their own
            # What steps 2 and 5 start from: S1, or in training an S1 that errs as on unseen text
            # (out-of-fold logits from cross-fitting, and/or rerank_noise).
            first = logits1 if first_logits is None else first_logits.to(logits1.dtype).detach()  # (B, K)
            if cfg.separate_stages:  # the reranking stage reads S1 and the text; it trains neither
                first, hidden = first.detach(), hidden.detach()  # (B, K), (B, T, delta)
            if self.training and cfg.rerank_noise > 0:
                first = first + cfg.rerank_noise * torch.randn_like(logits1)  # (B, K); the noise has no gradient
            if self.training and cfg.rerank_swap > 0 and labels is not None:
                first = swap_gold_with_wrong(first, labels, cfg.gamma, cfg.rerank_swap)  # (B, K)

            # Step 2: label reranking; a discrete choice, so no gradient flows through it.
            selected, selected_mask = self.select(first)  # (B, gamma), (B, gamma)

            queries = self.label_queries(selected, first)  # (B, gamma, delta) F_hat
            if readers:
                # S's queries read the text's cached keys and values at every layer (and each other);
                # the text was encoded once, blind to them.
                readers_encoder = self.encoder if self.reader_encoder is None else self.reader_encoder
                attended = read_with_readers(readers_encoder, cache, attention_mask, queries,
                                             selected_mask, segment=1)  # (B, gamma, delta)
            else:
                attended = self.read_text(queries, hidden, attention_mask, input_ids, text_mask,
                                          selected_mask)  # (B, gamma, delta)

            return self.final_prediction(attended, selected, selected_mask, logits1, first, labels)

    def _first_step(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, readers: bool):
        """Step 1, and what the readers need of the text pass. Returns the text states H
        (B x T x delta), their mask (B x T), S1's logits (B x K), and for ``encoder_readers``
        either each layer's input states (``reader_keys: own``: a tuple of B x T x delta, which
        the readers' own weights project) or the text pass's cached keys and values; None where
        not used."""
        cfg = self.config
        if not readers:
            hidden, attention_mask, logits1 = self.first_prediction(input_ids, attention_mask)  # (B, T, delta) H, (B, T), (B, K)
            return hidden, attention_mask, logits1, None, None
        # The text is encoded once; the labels of S read every layer's keys and values later.
        layer_inputs = cache = None
        if cfg.reader_keys == "own":  # ... as the readers' own weights project each layer's text states
            hidden, attention_mask, layer_inputs = encode_text_states(self.encoder, input_ids, attention_mask,
                                                                      limit=self.token_limit, room=cfg.gamma)  # (B, T, delta), (B, T)
            if cfg.separate_stages or not cfg.reader_text_grad:  # L2 does not reach the encoder through what the readers read
                layer_inputs = tuple(states.detach() for states in layer_inputs)  # each (B, T, delta)
        else:  # ... as the text pass itself computed (and cached) them
            hidden, attention_mask, cache = encode_text_for_readers(self.encoder, input_ids, attention_mask,
                                                                    limit=self.token_limit, room=cfg.gamma)  # (B, T, delta), (B, T)
        logits1 = self.first_logits_of(hidden, attention_mask)  # (B, K)
        return hidden, attention_mask, logits1, layer_inputs, cache

    @contextmanager
    def reranking_stream(self):
        """``separate_stages``, in training: steps 2-5 draw their random numbers (dropout,
        ``rerank_noise``, ``rerank_swap``) from a stream of their own, the n-th training forward's
        seeded from (seed, n), and the global streams are left as they were, so that step 1 draws
        what :class:`RobertaBaseline` draws. Elsewhere nothing changes."""
        if not (self.config.separate_stages and self.training):
            yield
            return
        seed, draws = (int(v) for v in self.stage_stream.tolist())
        self.stage_stream[1] += 1
        with random_stream(seed * 1_000_003 + draws, self.stage_stream.device):
            yield

    def clipping_groups(self) -> list[list[nn.Parameter]]:
        """The parameter sets whose gradient norm training clips apart: with ``separate_stages``,
        step 1's (clipped as :class:`RobertaBaseline`'s whole model is) and the rest; else all together."""
        everything = list(self.parameters())
        if not self.config.separate_stages:
            return [everything]
        first = {id(p) for p in self.first_stage_parameters()}
        return [[p for p in everything if id(p) in first], [p for p in everything if id(p) not in first]]

    def label_queries(self, selected: torch.Tensor, first: torch.Tensor) -> torch.Tensor:
        """Step 3: the label features F_hat (B x gamma x delta) of S (B x gamma)."""
        # Step 3: label features; the same label gets a different feature at another position.
        feats = self.label_embedding(selected)  # (B, gamma, delta) M_f[S]
        if self.position_embedding is not None:
            feats = feats + self.position_embedding.weight  # (B, gamma, delta) F = M_f[S] + M_pos
        if self.confidence_embedding is not None:
            confidence = at_selected(torch.sigmoid(first.detach()), selected)  # (B, gamma) S1[S]; no gradient into S1
            feats = feats + confidence[:, :, None].to(feats.dtype) * self.confidence_embedding  # (B, gamma, delta)
        return self.ffn_out(F.relu(self.ffn_drop(self.ffn_in(feats))))  # (B, gamma, delta) F_hat

    def read_text(self, queries: torch.Tensor, hidden: torch.Tensor, attention_mask: torch.Tensor,
                  input_ids: torch.Tensor, text_mask: torch.Tensor, selected_mask: torch.Tensor) -> torch.Tensor:
        """Step 4 (``label_attention`` head or encoder): each label query gathers the text
        features relevant to it; B x gamma x delta."""
        if self.attention is not None:  # eqs. 13-14: one attention over the finished text states
            attended = self.attention(queries, hidden, attention_mask)  # (B, gamma, delta)
        else:  # label_attention "encoder": the labels of S are tokens of a second pass over the text
            states, _ = encode_with_inserted(self.encoder, input_ids, text_mask, queries, selected_mask,
                                             limit=self.token_limit, segment=1)  # (B, T + gamma, delta)
            attended = states[:, 1:1 + queries.size(1)]  # (B, gamma, delta) each label token's own state
        return attended

    def final_prediction(self, attended: torch.Tensor, selected: torch.Tensor, selected_mask: torch.Tensor,
                         logits1: torch.Tensor, first: torch.Tensor, labels: torch.Tensor | None) -> ModelOutput:
        """Step 5 and the losses, from the attended label features (B x gamma x delta)."""
        cfg = self.config
        # PAD queries must not contribute: zero their outputs (and so their gradients).
        attended = attended.masked_fill(~selected_mask[:, :, None], 0.0)  # (B, gamma, delta)
        if self.interaction is not None:  # the labels of S read each other (listwise reranking)
            attended = self.interaction(attended, selected_mask)  # (B, gamma, delta)

        # Step 5: final prediction from all gamma label-aware features.
        base = first.detach() if cfg.detach_first else first  # (B, K) the S1 logits the stage corrects
        if cfg.first_temperature != 1.0:  # ... as unsure as S1 is on unseen text
            base = base / cfg.first_temperature  # (B, K)
        if cfg.final_head in PER_LABEL_HEADS:
            # Rescore each label of S from its own feature; the others keep S1's logit.
            change = (attended * (self.label_scorer(selected) + self.shared_scorer.weight)).sum(-1)  # (B, gamma)
            change = (change + self.label_offset(selected).squeeze(-1)) * selected_mask  # (B, gamma) 0 on PAD
            padded = F.pad(base, (0, 1))  # (B, K + 1) column K = PAD, dropped below
            if cfg.final_head == "per_label":  # a correction added to S1's logit
                logits2 = padded.scatter_add(1, selected, change.to(padded.dtype))[:, :-1]  # (B, K) Y before the sigmoid
            else:  # per_label_alone: the labels of S get the reader's own score, not a change of S1's
                logits2 = padded.scatter(1, selected, change.to(padded.dtype))[:, :-1]  # (B, K) Y before the sigmoid
        else:
            f_cat = attended.flatten(1)  # (B, gamma delta) f_cat
            logits2 = self.classifier2(f_cat)  # (B, K) Y before the sigmoid
            if cfg.residual:  # (B, K) the reranking stage corrects S1 instead of starting over
                logits2 = logits2 + base

        # What the model ranks with: Y, or (final_blend w != 0) Y's logits moved a share w back to S1's.
        ranked = blended_logits(logits2, logits1, cfg.final_blend)  # (B, K)
        out = ModelOutput(logits=ranked, logits1=logits1, logits2=logits2, selected=selected,
                          selected_mask=selected_mask)
        if labels is not None:
            out.loss1 = bce(logits1, labels)  # L1, eq. 4
            out.loss2 = focal_bce(logits2, labels, cfg.rerank_focal)  # L2, eq. 7 (BCE at rerank_focal 0)
            if cfg.rank_loss_weight > 0:  # the reranker's own objective: gold labels of S first
                out.loss2 = out.loss2 + cfg.rank_loss_weight * pairwise_rank_loss(logits2, labels, selected, selected_mask)
            if cfg.separate_stages:  # no weight is shared: each stage's gradient is its own loss's
                out.loss = out.loss1 + out.loss2
            else:
                out.loss = cfg.beta * out.loss1 + (1.0 - cfg.beta) * out.loss2  # L, eq. 8
        return out


def blended_logits(logits2: torch.Tensor, logits1: torch.Tensor, weight: float) -> torch.Tensor:
    """What LabelCoRank ranks with at ``final_blend`` w: (1 - w) z2 + w z1 (B x K); z2 itself at w = 0."""
    return logits2 if weight == 0 else torch.lerp(logits2, logits1, weight)


def reader_copy(encoder: nn.Module) -> nn.Module:
    """The readers' own encoder (``reader_weights: own``): a copy of ``encoder`` with its weights as
    they are now, less what readers never use: the word embeddings (readers come in as embeddings;
    a one-row table keeps the model's input-embedding API) and the pooler."""
    vocab = encoder.get_input_embeddings()
    encoder.set_input_embeddings(None)  # not copied: 30k x delta weights no reader reads
    try:
        copy = deepcopy(encoder)
    finally:
        encoder.set_input_embeddings(vocab)
    placeholder = torch.zeros(1, vocab.embedding_dim, dtype=vocab.weight.dtype, device=vocab.weight.device)
    copy.set_input_embeddings(nn.Embedding.from_pretrained(placeholder, freeze=True))  # draws no random numbers
    if getattr(copy, "pooler", None) is not None:
        copy.pooler = None
    return copy


def at_selected(values: torch.Tensor, selected: torch.Tensor) -> torch.Tensor:
    """The columns of ``values`` (B x K) named by S (B x gamma, PAD = K), 0 at PAD."""
    return F.pad(values, (0, 1)).gather(1, selected)  # (B, gamma)


def swap_gold_with_wrong(first: torch.Tensor, labels: torch.Tensor, gamma: int, p: float) -> torch.Tensor:
    """A first prediction that errs as S1 does on unseen text (``rerank_swap``, training only).

    In each document, with probability ``p``, a gold label g drawn uniformly and a non-gold label n
    drawn uniformly among S1's top ``gamma`` labels ranked below g swap their logits; documents
    without such a pair are left alone. The two swapped logits carry no gradient (L2 must not
    train S1 on values that are not S1's: with the gradient straight through, the large losses of
    the swapped pairs reach S1's own logits, and at seed 1 S1 lost 1.2 points nDCG@5); the other
    logits are ``first`` itself.

    Args:
        first: S1's logits (B x K).
        labels: multi-hot gold labels (B x K).
        gamma: how deep in S1's ranking the wrong label may be drawn.
        p: the probability, per document, of a swap.

    Returns:
        The logits with the swaps made (B x K), of ``first``'s dtype.
    """
    values = first.detach()  # (B, K)
    gold = labels > 0.5  # (B, K)
    top = values.topk(min(gamma, values.size(1)), dim=1).indices  # (B, g) S1's best labels
    # g: a gold label drawn uniformly (random keys, non-gold ones masked out)
    g = torch.rand(values.shape, device=values.device).masked_fill(~gold, -1.0).argmax(1)  # (B,)
    z_g = values.gather(1, g[:, None])  # (B, 1)
    # n: a wrong label drawn uniformly among the top ones that S1 ranks below g
    wrong = ~gold.gather(1, top) & (values.gather(1, top) < z_g)  # (B, g)
    n = top.gather(1, torch.rand(top.shape, device=values.device).masked_fill(~wrong, -1.0).argmax(1)[:, None])  # (B, 1)
    z_n = values.gather(1, n)  # (B, 1)
    swap = (torch.rand(values.size(0), 1, device=values.device) < p) & gold.any(1, keepdim=True) \
        & wrong.any(1, keepdim=True)  # (B, 1)
    swapped = values.scatter(1, g[:, None], torch.where(swap, z_n, z_g))  # (B, K)
    swapped = swapped.scatter(1, n, torch.where(swap, z_g, z_n))  # (B, K)
    moved = torch.zeros_like(gold).scatter(1, g[:, None], swap).scatter(1, n, swap)  # (B, K) the swapped pair
    return torch.where(moved, swapped, first)  # (B, K) no gradient through the swapped pair


def focal_bce(logits: torch.Tensor, labels: torch.Tensor, focusing: float) -> torch.Tensor:
    """BCE with each label's term weighted by (1 - p_t)^g (``rerank_focal``), averaged as :func:`bce`.

    Args:
        logits: scores before the sigmoid (B x K).
        labels: multi-hot gold labels (B x K).
        focusing: g >= 0; 0 is :func:`bce` itself.

    Returns:
        A scalar.
    """
    if focusing == 0:
        return bce(logits, labels)
    terms = F.binary_cross_entropy_with_logits(logits.float(), labels.float(), reduction="none")  # (B, K) -log p_t
    miss = -torch.expm1(-terms)  # (B, K) 1 - p_t
    return (miss.pow(focusing) * terms).mean()


def pairwise_rank_loss(logits: torch.Tensor, labels: torch.Tensor, selected: torch.Tensor,
                       selected_mask: torch.Tensor) -> torch.Tensor:
    """Mean of log(1 + exp(z_neg - z_pos)) over every (gold, non-gold) pair of labels in S.

    Args:
        logits: final scores before the sigmoid (B x K).
        labels: multi-hot gold labels (B x K).
        selected: S, label ids with PAD = K (B x gamma).
        selected_mask: True on the real labels of S (B x gamma).

    Returns:
        A scalar; 0 (with a gradient path) when no document has both kinds of label in S.
    """
    z = at_selected(logits.float(), selected)  # (B, gamma) scores of S
    gold = at_selected(labels.float(), selected).bool() & selected_mask  # (B, gamma)
    other = ~gold & selected_mask  # (B, gamma)
    pairs = gold[:, :, None] & other[:, None, :]  # (B, gamma, gamma) pos i, neg j
    margins = z[:, None, :] - z[:, :, None]  # (B, gamma, gamma) z_j - z_i
    losses = F.softplus(margins) * pairs  # (B, gamma, gamma)
    return losses.sum() / pairs.sum().clamp(min=1)


class RobertaBaseline(FirstPrediction, SaveLoad, nn.Module):
    """The paper's "RoBERTa" row: P = tanh(h_cls W1 + b1), scores = P W2 + b2, BCE.

    Exactly LabelCoRank's first prediction (eqs. 1-4) on its own, so the two differ only by the
    reranking branch.

    Args:
        config: only ``num_labels`` is used.
        encoder: a Hugging Face encoder.
    """

    def __init__(self, config: LabelCoRankConfig, encoder: nn.Module, variant: str = "roberta"):
        super().__init__()
        self.config = config.validate()
        self.variant = variant
        self.encoder = encoder
        self.build_first_prediction(config, encoder)  # W1, W2 (and the summary tokens)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                labels: torch.Tensor | None = None) -> ModelOutput:
        """Same arguments and output as :meth:`LabelCoRank.forward` (``logits`` = ``logits1``)."""
        _, _, logits = self.first_prediction(input_ids, attention_mask)  # (B, K)
        out = ModelOutput(logits=logits, logits1=logits)
        if labels is not None:
            out.loss = bce(logits, labels)
        return out


# --------------------------------------------------------------------------------------------
# Ranking the final scores (prediction, evaluation, serving)

RANK_BLOCK = 64  # columns per block in top_labels


@torch.no_grad()
def top_labels(logits: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The k best labels of each row and their sigmoid scores, best first.

    The logits are ranked and only the k kept are squashed: the sigmoid is monotone, and
    ranking the logits keeps large ones apart that all round to 1.0 as float32 probabilities.
    At PubMed's K = 17,963 one ``torch.topk`` over all columns costs about 25 us per document
    on one CPU thread (the largest cost of prediction after the model itself); this finds the same values through column blocks: the
    maximum of every block of ``RANK_BLOCK`` columns (one vectorised pass), the k blocks with
    the largest maxima, then the top-k among those blocks' columns (plus the < RANK_BLOCK
    columns after the last full block). It is exact: a column outside the chosen blocks is at
    most its block's maximum, which is at most the smallest chosen maximum, and every chosen
    block holds at least one column that large. As with ``torch.topk``, the order of equal
    values is left open.

    Args:
        logits: (B x K) float.
        k: labels per row, 1 <= k <= K.

    Returns:
        ``(scores, indices)``: (B x k) float32 sigmoid scores and int64 label indices.
    """
    logits = logits.float()
    batch, num = logits.shape
    n_blocks = num // RANK_BLOCK
    if n_blocks < 4 * k:  # few blocks: the plain top-k is as fast
        top, idx = torch.topk(logits, k, dim=1)  # (B, k), (B, k)
        return torch.sigmoid(top), idx
    full = n_blocks * RANK_BLOCK
    logits = logits.contiguous()
    # a view, not a copy: row r's block q starts at column q c (the last K - Q c columns are left out)
    blocks = logits.as_strided((batch, n_blocks, RANK_BLOCK), (num, RANK_BLOCK, 1))  # (B, Q, c)
    chosen = blocks.amax(dim=2).topk(k, dim=1).indices  # (B, k) blocks with the largest maxima
    offsets = torch.arange(RANK_BLOCK, device=logits.device)  # (c,)
    columns = (chosen[:, :, None] * RANK_BLOCK + offsets).reshape(batch, k * RANK_BLOCK)  # (B, k c)
    tail = torch.arange(full, num, device=logits.device).expand(batch, num - full)  # (B, K - Qc)
    columns = torch.cat([columns, tail], dim=1)  # (B, k c + K - Qc)
    top, pos = logits.gather(1, columns).topk(k, dim=1)  # (B, k), (B, k)
    return torch.sigmoid(top), columns.gather(1, pos)


# --------------------------------------------------------------------------------------------
# Oracle reranking (Table 7's "RoBERTa*")


def _gold_hits(gold, topk: torch.Tensor) -> torch.Tensor:
    """(N x m) bool: is ``topk[i, j]`` a gold label of document i?"""
    n, m = topk.shape
    if hasattr(gold, "tocsr"):  # SciPy sparse multi-hot (N x K)
        if gold.shape[0] != n:
            raise LcrError(f"oracle_rerank: {n} ranked documents but {gold.shape[0]} gold rows")
        rows = np.repeat(np.arange(n), m)  # (N m,)
        cols = topk.reshape(-1).numpy().copy()  # (N m,)
        values = np.asarray(gold.tocsr()[rows, cols]).reshape(n, m)  # (N, m)
        return torch.from_numpy(values != 0)
    if isinstance(gold, torch.Tensor) or (isinstance(gold, np.ndarray) and gold.dtype != object):
        dense = torch.as_tensor(gold)  # (N, K) multi-hot
        if dense.dim() != 2 or dense.size(0) != n:
            raise LcrError(f"oracle_rerank: gold must be N x K with N = {n}, got {tuple(dense.shape)}")
        return dense.to(topk.device).gather(1, topk) != 0  # (N, m)
    gold = list(gold)  # one collection of label indices per document
    if len(gold) != n:
        raise LcrError(f"oracle_rerank: {n} ranked documents but {len(gold)} gold label lists")
    width = max([len(g) for g in gold] + [1])
    padded = torch.full((n, width), -1, dtype=torch.long)  # (N, max |gold|), -1 = none
    for i, g in enumerate(gold):
        padded[i, : len(g)] = torch.as_tensor(sorted(g), dtype=torch.long)
    return (topk[:, :, None] == padded[:, None, :].to(topk.device)).any(dim=2)  # (N, m)


def oracle_rerank(topk, gold, m: int = 10):
    """Rank the correct labels first within each document's top-m ("RoBERTa*", Table 7).

    An upper bound of what reranking a trained baseline's top-m can achieve: no training, just
    the gold labels moved to the front, the original order kept among correct labels and among
    wrong ones. Columns after the m-th are left as they are.

    Args:
        topk: ranked label indices (N x k, best first), a NumPy array or torch tensor.
        gold: the gold labels: a SciPy sparse or dense (NumPy / torch) multi-hot N x K matrix,
            or one collection of label indices per document.
        m: how many of the top labels are reranked (the paper: 10).

    Returns:
        The reranked indices, N x k, of the same type as ``topk``.
    """
    as_numpy = not isinstance(topk, torch.Tensor)
    ranked = torch.as_tensor(np.asarray(topk) if as_numpy else topk).long()  # (N, k)
    m = min(m, ranked.size(1))
    head = ranked[:, :m]  # (N, m)
    hits = _gold_hits(gold, head.cpu() if not isinstance(gold, torch.Tensor) else head)  # (N, m)
    order = torch.sort((~hits).to(torch.uint8), dim=1, stable=True).indices.to(ranked.device)  # (N, m) hits first
    out = ranked.clone()
    out[:, :m] = head.gather(1, order)
    return out.numpy() if as_numpy else out
