"""What the baselines share: their config, base class, factory, loader and a few tensor helpers.

Every baseline is a :class:`Baseline`: an ``nn.Module`` with a ``variant`` name, a
:class:`BaselineConfig` and, for the encoder baselines (``bertxml``, ``ligcn``, ``gudn``), a
Hugging Face ``encoder``. It saves itself
the way LabelCoRank does (``config.json`` + ``model.safetensors``, no pickle; see
:class:`lcr.models.base.SaveLoad`), and :func:`load_baseline` rebuilds it from those two files.
"""

from __future__ import annotations

import importlib
from pathlib import Path

import torch
from torch import nn

from lcr.models.variants import (BASELINE_MODULES as MODULES, BASELINE_VARIANTS, LABEL_TEXT_VARIANTS,
                                 WORD_VARIANTS)
from lcr.errors import LcrError
from lcr.models.hyperparams import BaselineSettings, pick
from lcr.models.base import ModelOutput, SaveLoad, bce

# Models whose attention splits the embedding into heads.
_HEADED = ("transformer", "star-transformer", "match")


class BaselineConfig(BaselineSettings):
    """Settings of a baseline model (one class for all; each model reads its own fields): the
    hyper-parameters of :class:`lcr.models.hyperparams.BaselineSettings` (declared there once, set from
    ``params.yaml`` through :class:`lcr.config.TrainParams`), plus what the data decides.

    Attributes:
        num_labels: K.
        vocab_size: size of the word vocabulary, special tokens included (word-level models).
        pad_token_id: the id of the padding token (its embedding stays zero).
        max_length: the longest input in tokens: the position table of the Transformer, MATCH and
            the Star-Transformer, and XML-CNN's fixed input length (it pads every input to it).
        embed_dim: word embedding size (also the model width of the Transformer, MATCH and the
            Star-Transformer).
        hidden_dim: hidden size per direction of the BiLSTM (AttentionXML) and the BiGRU
            (MeSHProbeNet); the feed-forward width of the Transformer and MATCH.
        num_layers: recurrent layers (AttentionXML, MeSHProbeNet), encoder layers (Transformer, MATCH)
            or update cycles (Star-Transformer).
        num_heads: attention heads (Transformer, MATCH, Star-Transformer); must divide ``embed_dim``.
        dropout: dropout on the embeddings and before the output layers.
        cnn_windows: XML-CNN's convolution widths.
        cnn_filters: XML-CNN's filters per width.
        cnn_pool_chunks: XML-CNN's p, the chunks of dynamic max pooling.
        bottleneck_dim: XML-CNN's bottleneck layer; the hidden layer of AttentionXML's
            per-label output network.
        num_probes: MeSHProbeNet's self-attentive probes.
        num_cls_tokens: BERTXML's and MATCH's [CLS]-like tokens at the start of the input.
        label_text, label_name_length, label_neighbours, cls_layers, guide_weight,
            label_reinforcement: the label-text baselines' settings (RoBERTa-LiGCN, GUDN; see
            :class:`lcr.models.hyperparams.BaselineSettings`). ``num_layers`` is also
            RoBERTa-LiGCN's rounds of graph convolution.
    """

    num_labels: int
    vocab_size: int | None = None
    pad_token_id: int = 0

    def validate(self, variant: str) -> "BaselineConfig":
        """Reject impossible settings for ``variant`` with an :class:`LcrError` naming the field."""
        if variant not in BASELINE_VARIANTS:
            raise LcrError(f"unknown baseline '{variant}'; baselines: {', '.join(BASELINE_VARIANTS)}")
        windows = self.cnn_windows
        checks = [
            (self.num_labels >= 1, "num_labels must be at least 1"),
            (self.max_length >= 1, "max_length must be at least 1"),
            (0.0 <= self.dropout < 1.0, "dropout must be in [0, 1)"),
            (min(self.embed_dim, self.hidden_dim, self.num_layers, self.num_heads, self.bottleneck_dim) >= 1,
             "embed_dim, hidden_dim, num_layers, num_heads and bottleneck_dim must be at least 1"),
        ]
        if variant in WORD_VARIANTS:
            checks.append((self.vocab_size is not None and self.vocab_size >= 3,
                           f"{variant} needs vocab_size >= 3 (the word vocabulary with [PAD], [UNK], [CLS])"))
            checks.append((self.vocab_size is None or 0 <= self.pad_token_id < self.vocab_size,
                           "pad_token_id must be a word id"))
        if variant in _HEADED:
            checks.append((self.embed_dim % self.num_heads == 0,
                           f"{variant}: num_heads = {self.num_heads} must divide embed_dim = {self.embed_dim}"))
        if variant == "xml-cnn":
            checks += [
                (isinstance(windows, (list, tuple)) and len(windows) > 0
                 and all(isinstance(w, int) and w >= 1 for w in windows),
                 f"xml-cnn: cnn_windows must be a non-empty list of positive ints, got {windows!r}"),
                (not windows or not isinstance(windows, (list, tuple)) or max(windows) <= self.max_length,
                 f"xml-cnn: the widest window ({max(windows) if windows else 0}) exceeds max_length = {self.max_length}"),
                (self.cnn_filters >= 1 and self.cnn_pool_chunks >= 1, "xml-cnn: cnn_filters and cnn_pool_chunks must be >= 1"),
            ]
        if variant == "meshprobenet":
            checks.append((self.num_probes >= 1, "meshprobenet: num_probes must be at least 1"))
        if variant in ("bertxml", "match"):
            checks.append((self.num_cls_tokens >= 1, f"{variant}: num_cls_tokens must be at least 1"))
        if variant in LABEL_TEXT_VARIANTS:
            # GUDN closes each label text with a separator token: at least one token of text remains.
            checks.append((self.label_name_length >= 2, f"{variant}: label_name_length must be at least 2"))
        if variant == "ligcn":
            checks.append((self.label_neighbours >= 1, "ligcn: label_neighbours must be at least 1"))
        if variant == "gudn":
            checks += [(self.cls_layers >= 1, "gudn: cls_layers must be at least 1"),
                       (self.guide_weight >= 0.0, "gudn: guide_weight must be >= 0")]
        for ok, message in checks:
            if not ok:
                raise LcrError(f"baseline config: {message}")
        return self

    @classmethod
    def from_params(cls, params, num_labels: int, vocab_size: int | None = None,
                    pad_token_id: int = 0) -> "BaselineConfig":
        """Build from a :class:`lcr.config.TrainParams`: its baseline settings by name."""
        return cls(num_labels=num_labels, vocab_size=vocab_size, pad_token_id=pad_token_id,
                   **pick(params, BaselineSettings))


class Baseline(SaveLoad, nn.Module):
    """Base class of the baselines: the name, the config, the (optional) encoder, the output.

    Subclasses set ``variant`` and implement :meth:`scores`; :meth:`forward` adds the loss.
    """

    variant: str = ""

    def __init__(self, config: BaselineConfig, encoder: nn.Module | None = None):
        super().__init__()
        self.config = config.validate(self.variant)
        self.encoder = encoder

    def scores(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """The label logits (B x K) of a batch of token ids (B x T) with their mask (B x T)."""
        raise NotImplementedError

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                labels: torch.Tensor | None = None) -> ModelOutput:
        """
        Args:
            input_ids: token ids (B x T).
            attention_mask: 1 on real tokens, 0 on padding (B x T).
            labels: multi-hot gold labels (B x K), for the BCE loss.

        Returns:
            A :class:`lcr.models.base.ModelOutput` with ``logits`` = ``logits1`` (B x K) and ``loss``.
        """
        logits = self.scores(input_ids, attention_mask)  # (B, K)
        out = ModelOutput(logits=logits, logits1=logits)
        if labels is not None:
            out.loss = bce(logits, labels)
        return out

    def encoder_for_loading(self):
        """The encoder's Hugging Face config (the encoder baselines), or None: word-level models rebuild
        everything from their own config."""
        return self.encoder.config if self.encoder is not None else None


def model_class(variant: str) -> type[Baseline]:
    """The model class of a baseline variant."""
    if variant not in MODULES:
        raise LcrError(f"unknown baseline '{variant}'; baselines: {', '.join(BASELINE_VARIANTS)}")
    return importlib.import_module(MODULES[variant]).Model


def build_baseline(variant: str, config: BaselineConfig | dict, encoder: nn.Module | None = None) -> Baseline:
    """Build a baseline.

    Args:
        variant: one of :data:`lcr.models.variants.BASELINE_VARIANTS`.
        config: its settings (or a dict of them).
        encoder: the Hugging Face encoder; needed by the encoder baselines, refused by the
            word-level models.

    Raises:
        LcrError: unknown variant, bad settings, a missing or unexpected encoder.
    """
    if isinstance(config, dict):
        config = BaselineConfig(**config)
    cls = model_class(variant)
    if variant in WORD_VARIANTS and encoder is not None:
        raise LcrError(f"{variant} is word-level: it trains its own word embeddings and takes no encoder")
    if variant not in WORD_VARIANTS and encoder is None:
        raise LcrError(f"{variant} needs the pretrained encoder")
    return cls(config, encoder) if encoder is not None else cls(config)


def load_baseline(meta: dict, weights_path: str | Path, encoder=None) -> Baseline:
    """Rebuild a baseline from its saved ``config.json`` (``meta``) and weights (see
    :func:`lcr.models.factory.load_model`, which calls this)."""
    from safetensors.torch import load_model as load_weights
    from transformers import AutoConfig, AutoModel, PretrainedConfig

    variant = meta["variant"]
    config = BaselineConfig(**meta["config"])
    if variant in WORD_VARIANTS:
        encoder = None
    else:
        if encoder is None:
            encoder_config = dict(meta["encoder"])
            encoder = AutoConfig.for_model(encoder_config.pop("model_type"), **encoder_config)
        if isinstance(encoder, PretrainedConfig):
            encoder = AutoModel.from_config(encoder)
    model = build_baseline(variant, config, encoder)
    load_weights(model, str(weights_path), strict=True)
    return model


# --------------------------------------------------------------------------------------------
# Helpers


def word_embedding(config: BaselineConfig) -> nn.Embedding:
    """A word embedding trained from scratch: N(0, 0.1^2) rows, the [PAD] row zero and frozen
    at zero (``padding_idx``), so padding never looks like a word."""
    embedding = nn.Embedding(config.vocab_size, config.embed_dim, padding_idx=config.pad_token_id)
    nn.init.normal_(embedding.weight, std=0.1)
    with torch.no_grad():
        embedding.weight[config.pad_token_id].zero_()
    return embedding


def transformer_encoder(config: BaselineConfig) -> nn.TransformerEncoder:
    """``num_layers`` pre-LayerNorm Transformer encoder layers (GELU, ``num_heads`` heads,
    feed-forward width ``hidden_dim``), batch first; the Transformer and MATCH baselines."""
    c = config
    layer = nn.TransformerEncoderLayer(c.embed_dim, c.num_heads, dim_feedforward=c.hidden_dim,
                                       dropout=c.dropout, activation="gelu", batch_first=True,
                                       norm_first=True)
    # No nested-tensor fast path: it would change the numerics between train and eval.
    return nn.TransformerEncoder(layer, c.num_layers, enable_nested_tensor=False)


def lengths_of(attention_mask: torch.Tensor) -> torch.Tensor:
    """Real tokens per row (B,), at least 1 (a row of padding alone is read as one token)."""
    return attention_mask.long().sum(dim=1).clamp(min=1)


def masked_softmax(scores: torch.Tensor, mask: torch.Tensor, dim: int) -> torch.Tensor:
    """Softmax over ``dim`` where ``mask`` is True; a row with nothing allowed gives zeros
    (never NaN). ``mask`` broadcasts against ``scores``."""
    scores = scores.float().masked_fill(~mask, float("-inf"))
    weights = torch.softmax(scores, dim=dim)
    return torch.nan_to_num(weights, nan=0.0)


def run_rnn(rnn: nn.RNNBase, embedded: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Run a (bidirectional) LSTM/GRU over the real tokens only, so the backward direction
    starts at each document's last word and padding never changes a state.

    Args:
        rnn: a ``batch_first`` recurrent module.
        embedded: (B x T x E) inputs.
        attention_mask: (B x T), 1 on real tokens.

    Returns:
        (B x T x H) outputs, zero at padding positions.
    """
    from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

    total = embedded.size(1)
    lengths = lengths_of(attention_mask).cpu()  # (B,) pack wants lengths on the CPU
    packed = pack_padded_sequence(embedded, lengths, batch_first=True, enforce_sorted=False)
    output, _ = rnn(packed)
    output, _ = pad_packed_sequence(output, batch_first=True, total_length=total)  # (B, T, H)
    return output
