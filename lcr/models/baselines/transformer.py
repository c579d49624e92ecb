"""A Transformer encoder trained from scratch (Vaswani et al., NeurIPS 2017), the paper's
"Transformer" row.

Word embeddings + learned position embeddings -> ``num_layers`` Transformer encoder layers
(self-attention over the real tokens only) -> a final LayerNorm -> the mean of the real tokens'
states -> K logits, trained with BCE. Nothing is pretrained: the point of this row is the
architecture without pretraining (compare with the pretrained RoBERTa row).

Choices the paper does not give (ours): pre-LayerNorm layers (they train stably from scratch
without warm-up tricks), mean pooling (a [CLS] token is in the input, but on small data the mean
of all words is the steadier summary), GELU.
"""

from __future__ import annotations

import torch
from torch import nn

from lcr.models.baselines.common import Baseline, BaselineConfig, transformer_encoder, word_embedding


class Model(Baseline):
    """The Transformer baseline.

    Args:
        config: uses ``vocab_size``, ``pad_token_id``, ``embed_dim`` (the model width),
            ``num_heads``, ``hidden_dim`` (the feed-forward width), ``num_layers``,
            ``max_length`` (the position table), ``dropout`` and ``num_labels``.
    """

    variant = "transformer"

    def __init__(self, config: BaselineConfig):
        super().__init__(config)
        c = config
        self.embedding = word_embedding(c)
        self.position = nn.Embedding(c.max_length, c.embed_dim)
        nn.init.normal_(self.position.weight, std=0.1)  # the word embeddings' scale
        self.dropout = nn.Dropout(c.dropout)
        self.layers = transformer_encoder(c)
        self.norm = nn.LayerNorm(c.embed_dim)
        self.output = nn.Linear(c.embed_dim, c.num_labels)

    def scores(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        c = self.config
        input_ids, attention_mask = input_ids[:, :c.max_length], attention_mask[:, :c.max_length]
        positions = torch.arange(input_ids.size(1), device=input_ids.device)  # (T,)
        x = self.dropout(self.embedding(input_ids) + self.position(positions))  # (B, T, E)
        real = attention_mask.bool()  # (B, T)
        real = real | ~real.any(dim=1, keepdim=True)  # an all-padding row attends to itself, not NaN
        h = self.norm(self.layers(x, src_key_padding_mask=~real))  # (B, T, E)
        weights = real.to(h.dtype)[:, :, None]  # (B, T, 1)
        pooled = (h * weights).sum(dim=1) / weights.sum(dim=1)  # (B, E) mean of the real tokens
        return self.output(self.dropout(pooled))  # (B, K)
