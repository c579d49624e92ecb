"""MATCH (Zhang et al., WWW 2021: "MATCH: Metadata-Aware Text Classification in A Large
Hierarchy"), the paper's "MATCH" row: MAG-CS and PubMed only, the datasets with metadata.

MATCH reads a document's metadata (venue, authors, references) as extra tokens in front of its
words, so a Transformer can attend from text to metadata and back, and summarises the document
with several [CLS]-like tokens whose outputs are concatenated into the classifier.

As built here:

* Input: ``n`` learned summary tokens, then the metadata tokens, then the words (see
  :func:`metadata_text`: ``mvenue_<venue>``, ``mauthor_<id>``, ``mref_<paper id>`` in that
  order, at most half the input), read by the word-level tokenizer that the other word-level
  baselines use (:mod:`lcr.models.baselines.words`), so metadata tokens and words share one vocabulary
  counted on the training split; rare metadata (seen fewer than ``word_min_freq`` times)
  becomes [UNK] like rare words.
* Embeddings initialised at random and trained with the model. MATCH pre-trains them jointly
  on text and metadata first; nothing pretrained is used here (as for the other word-level
  baselines), which costs accuracy.
* Learned position embeddings over the whole sequence; ``num_layers`` pre-LayerNorm Transformer
  encoder layers; the ``num_cls_tokens`` summary outputs, concatenated -> dropout -> K logits,
  BCE.
* Not built: MATCH's hypernymy regularisation in parameter and output space (it needs the
  label taxonomy, which :mod:`lcr.datasets.match` does not keep).

A served MATCH model reads text only; give it metadata by putting the same tokens in front of
the text (``metadata_text(text, meta)``).
"""

from __future__ import annotations

import re

import torch
from torch import nn

from lcr.models.baselines.common import Baseline, BaselineConfig, transformer_encoder, word_embedding

_NOT_WORD = re.compile(r"\W+")


def metadata_tokens(meta: dict | None) -> list[str]:
    """The metadata of a MATCH document as word-level tokens, venue first, then authors, then
    references. Characters outside ``[A-Za-z0-9_]`` become ``_`` so that each value stays one
    token for the word-level tokenizer; empty values are skipped."""
    meta = meta or {}
    tokens = []
    venue = meta.get("venue")
    for prefix, values in (("mvenue", [venue] if venue else []), ("mauthor", meta.get("author") or []),
                           ("mref", meta.get("reference") or [])):
        for value in values:
            value = _NOT_WORD.sub("_", str(value)).strip("_")
            if value:
                tokens.append(f"{prefix}_{value}")
    return tokens


def metadata_text(text: str, meta: dict | None, max_length: int) -> str:
    """``text`` with its metadata tokens in front, at most ``max_length // 2`` of them (so the
    words keep at least half of a ``max_length``-token input)."""
    tokens = metadata_tokens(meta)[: max(0, max_length // 2)]
    return " ".join([*tokens, text]) if tokens else text


class Model(Baseline):
    """MATCH.

    Args:
        config: uses ``vocab_size``, ``pad_token_id``, ``embed_dim`` (the model width),
            ``num_heads``, ``hidden_dim`` (the feed-forward width), ``num_layers``,
            ``max_length`` (the position table), ``num_cls_tokens``, ``dropout`` and
            ``num_labels``.
    """

    variant = "match"

    def __init__(self, config: BaselineConfig):
        super().__init__(config)
        c = config
        self.embedding = word_embedding(c)
        self.summary = nn.Parameter(torch.randn(c.num_cls_tokens, c.embed_dim) * 0.1)  # the n [CLS] tokens
        self.position = nn.Embedding(c.num_cls_tokens + c.max_length, c.embed_dim)
        nn.init.normal_(self.position.weight, std=0.1)  # the word embeddings' scale
        self.dropout = nn.Dropout(c.dropout)
        self.layers = transformer_encoder(c)
        self.norm = nn.LayerNorm(c.embed_dim)
        self.output = nn.Linear(c.num_cls_tokens * c.embed_dim, c.num_labels)

    def scores(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        c = self.config
        n = c.num_cls_tokens
        input_ids, attention_mask = input_ids[:, :c.max_length], attention_mask[:, :c.max_length]
        batch, length = input_ids.shape
        words = self.embedding(input_ids)  # (B, T, E) metadata tokens and words
        summary = self.summary[None].expand(batch, -1, -1)  # (B, n, E)
        positions = torch.arange(n + length, device=input_ids.device)  # (n + T,)
        x = self.dropout(torch.cat([summary, words], dim=1) + self.position(positions))  # (B, n + T, E)
        real = torch.cat([attention_mask.new_ones(batch, n), attention_mask], dim=1).bool()  # (B, n + T)
        h = self.norm(self.layers(x, src_key_padding_mask=~real))  # (B, n + T, E)
        pooled = h[:, :n].flatten(1)  # (B, n E) the summary outputs, concatenated
        return self.output(self.dropout(pooled))  # (B, K)
