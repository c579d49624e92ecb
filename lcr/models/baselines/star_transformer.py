"""Star-Transformer (Guo et al., NAACL 2019), the paper's "Star-Transformer" row.

The fully connected attention of a Transformer is replaced by a *star*: every word is a
satellite node h_i, and one shared *relay* node s is linked to all of them. Each cycle t
(Algorithm 1 of the paper):

1. every satellite attends over its ring neighbourhood and the relay,
   C_i = [h_{i-1}; h_i; h_{i+1}; e_i; s] (e_i = the word's embedding), then
   h_i = LayerNorm(ReLU(MultiAtt(h_i, C_i)));
2. the relay attends over itself and all satellites, s = LayerNorm(ReLU(MultiAtt(s, [s; H]))).

Local structure goes along the ring, long-range information through the relay, at a cost linear
in the text length. For classification the relay and the max-pooled satellites are averaged
(as in the authors' fastNLP code) -> K logits, trained with BCE.

As built here: word embeddings are random and trained (the original uses GloVe); learned
position embeddings are added to the word embeddings; each cycle has its own weights.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from lcr.models.baselines.common import Baseline, BaselineConfig, masked_softmax, word_embedding


class ContextAttention(nn.Module):
    """Multi-head attention of one query vector over its own small set of context vectors.

    Works for both star updates: a satellite (query B x T x d, context B x T x 5 x d) and the
    relay (query B x d, context B x (1+T) x d): the leading dimensions just ride along.
    """

    def __init__(self, dim: int, num_heads: int):
        super().__init__()
        self.num_heads, self.head_dim = num_heads, dim // num_heads
        self.query, self.key, self.value = nn.Linear(dim, dim), nn.Linear(dim, dim), nn.Linear(dim, dim)
        self.out = nn.Linear(dim, dim)

    def forward(self, query: torch.Tensor, context: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """
        Args:
            query: (... x d), one query per position.
            context: (... x C x d), C context vectors per query.
            mask: (... x C), True where a context vector may be attended to.

        Returns:
            (... x d).
        """
        heads, hd = self.num_heads, self.head_dim
        q = self.query(query).unflatten(-1, (heads, hd))  # (..., h, hd)
        k = self.key(context).unflatten(-1, (heads, hd))  # (..., C, h, hd)
        v = self.value(context).unflatten(-1, (heads, hd))  # (..., C, h, hd)
        att = (q.unsqueeze(-3) * k).sum(-1) / math.sqrt(hd)  # (..., C, h) one score per context vector and head
        att = masked_softmax(att, mask.unsqueeze(-1), dim=-2).to(v.dtype)  # (..., C, h) over the C vectors
        mixed = (att.unsqueeze(-1) * v).sum(-3)  # (..., h, hd)
        return self.out(mixed.flatten(-2))  # (..., d)


class Model(Baseline):
    """The Star-Transformer.

    Args:
        config: uses ``vocab_size``, ``pad_token_id``, ``embed_dim`` (the model width),
            ``num_heads``, ``num_layers`` (cycles), ``max_length`` (the position table),
            ``dropout`` and ``num_labels``.
    """

    variant = "star-transformer"

    def __init__(self, config: BaselineConfig):
        super().__init__(config)
        c = config
        self.embedding = word_embedding(c)
        self.position = nn.Embedding(c.max_length, c.embed_dim)
        nn.init.normal_(self.position.weight, std=0.1)
        self.dropout = nn.Dropout(c.dropout)
        self.ring = nn.ModuleList(ContextAttention(c.embed_dim, c.num_heads) for _ in range(c.num_layers))
        self.ring_norm = nn.ModuleList(nn.LayerNorm(c.embed_dim) for _ in range(c.num_layers))
        self.star = nn.ModuleList(ContextAttention(c.embed_dim, c.num_heads) for _ in range(c.num_layers))
        self.star_norm = nn.ModuleList(nn.LayerNorm(c.embed_dim) for _ in range(c.num_layers))
        self.output = nn.Linear(c.embed_dim, c.num_labels)

    def scores(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        c = self.config
        input_ids, attention_mask = input_ids[:, :c.max_length], attention_mask[:, :c.max_length]
        real = attention_mask.bool()  # (B, T)
        positions = torch.arange(input_ids.size(1), device=input_ids.device)  # (T,)
        e = self.dropout(self.embedding(input_ids) + self.position(positions))  # (B, T, d) e_i
        e = e * real[:, :, None]  # padding satellites start (and stay, for the relay) out of play
        weights = real.to(e.dtype)[:, :, None]  # (B, T, 1)
        h = e  # (B, T, d) satellites, h^0 = e
        s = (e * weights).sum(1) / weights.sum(1).clamp(min=1.0)  # (B, d) relay, s^0 = mean of e
        # Ring neighbours exist inside the text only.
        prev_ok = F.pad(real, (1, 0))[:, :-1]  # (B, T) is h_{i-1} a word?
        next_ok = F.pad(real, (0, 1))[:, 1:]  # (B, T) is h_{i+1} a word?
        always = torch.ones_like(real)  # (B, T)
        ring_mask = torch.stack([prev_ok, always, next_ok, always, always], dim=2)  # (B, T, 5)
        star_mask = torch.cat([always[:, :1], real], dim=1)  # (B, 1 + T) the relay itself + the words
        for ring, ring_norm, star, star_norm in zip(self.ring, self.ring_norm, self.star, self.star_norm):
            # 1. Satellites: each attends over [h_{i-1}; h_i; h_{i+1}; e_i; s].
            prev = F.pad(h, (0, 0, 1, 0))[:, :-1]  # (B, T, d) h_{i-1}
            nxt = F.pad(h, (0, 0, 0, 1))[:, 1:]  # (B, T, d) h_{i+1}
            context = torch.stack([prev, h, nxt, e, s[:, None].expand_as(h)], dim=2)  # (B, T, 5, d)
            h = ring_norm(F.relu(ring(h, context, ring_mask)))  # (B, T, d)
            # 2. Relay: attends over itself and every satellite.
            context = torch.cat([s[:, None], h], dim=1)  # (B, 1 + T, d)
            s = star_norm(F.relu(star(s, context, star_mask)))  # (B, d)
        pooled = h.masked_fill(~real[:, :, None], float("-inf")).amax(dim=1)  # (B, d) max over words
        pooled = torch.where(real.any(dim=1, keepdim=True), pooled, torch.zeros_like(pooled))  # no word: 0
        return self.output(self.dropout(0.5 * (pooled + s)))  # (B, d) -> (B, K)
