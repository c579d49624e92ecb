"""BERTXML (Xun et al., KDD 2020: the BERT-based model of "Correlation Networks for Extreme
Multi-label Text Classification"), the paper's "BERTXML" row.

A single [CLS] token has to summarise the whole document for thousands of labels; BERTXML puts
*several* [CLS]-like tokens at the start of the input and concatenates their outputs into the
classifier, giving the classifier n summary vectors instead of one.

As built here, on the same pretrained encoder as LabelCoRank (the ``encoder`` setting): the
input keeps the tokenizer's own [CLS] (``<s>`` for RoBERTa) as the first summary token, and
n - 1 learned embeddings are inserted right after it (initialised from the [CLS] token's word
embedding, so training starts from the pretrained behaviour). Their n outputs, concatenated,
go through dropout to a linear layer -> K logits, trained with BCE. Text tokens that would
overflow the encoder's position table once the n - 1 tokens are inserted are cut from the end.
CorNet (the label-correlation layer of the same paper) is not part of the BERTXML row and is
not built.
"""

from __future__ import annotations

import torch
from torch import nn

from lcr.models.baselines.common import Baseline, BaselineConfig

# Encoders whose position ids start after the padding index (RoBERTa: positions 2..513 of 514).
_OFFSET_POSITIONS = {"roberta", "xlm-roberta", "camembert", "longformer", "data2vec-text"}


def max_tokens(encoder_config) -> int | None:
    """The longest input an encoder's position table allows (None when it has none)."""
    positions = getattr(encoder_config, "max_position_embeddings", None)
    if positions is None:
        return None
    if getattr(encoder_config, "model_type", "") in _OFFSET_POSITIONS:
        positions -= (getattr(encoder_config, "pad_token_id", 1) or 0) + 1
    return positions


class Model(Baseline):
    """BERTXML.

    Args:
        config: uses ``num_cls_tokens`` (n), ``dropout`` and ``num_labels``.
        encoder: a Hugging Face encoder (``last_hidden_state``: B x T x delta).
    """

    variant = "bertxml"

    def __init__(self, config: BaselineConfig, encoder: nn.Module):
        super().__init__(config, encoder)
        n, dim = config.num_cls_tokens, encoder.config.hidden_size
        self.limit = max_tokens(encoder.config)
        # The n - 1 extra summary tokens (the tokenizer's [CLS] is the first).
        self.extra_cls = nn.Parameter(torch.randn(n - 1, dim) * 0.02)
        self.dropout = nn.Dropout(config.dropout)
        self.output = nn.Linear(n * dim, config.num_labels)

    def init_extra_from(self, cls_token_id: int) -> None:
        """Start the extra tokens from the [CLS] token's pretrained embedding (plus a little
        noise, so that they are not n copies of one token)."""
        with torch.no_grad():
            cls = self.encoder.get_input_embeddings().weight[cls_token_id]  # (delta,)
            noise = torch.randn_like(self.extra_cls) * 0.02  # (n - 1, delta)
            self.extra_cls.copy_(cls[None] + noise)

    def scores(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        n = self.config.num_cls_tokens
        if self.limit is not None and input_ids.size(1) + n - 1 > self.limit:
            keep = self.limit - (n - 1)  # room for the inserted tokens: cut the text's end
            input_ids, attention_mask = input_ids[:, :keep], attention_mask[:, :keep]
        words = self.encoder.get_input_embeddings()(input_ids)  # (B, T, delta) word embeddings only
        batch = words.size(0)
        extra = self.extra_cls.to(words.dtype)[None].expand(batch, -1, -1)  # (B, n - 1, delta)
        # [CLS], the n - 1 extra summary tokens, then the rest of the text.
        embeds = torch.cat([words[:, :1], extra, words[:, 1:]], dim=1)  # (B, T + n - 1, delta)
        ones = attention_mask.new_ones(batch, n - 1)  # (B, n - 1)
        mask = torch.cat([attention_mask[:, :1], ones, attention_mask[:, 1:]], dim=1)  # (B, T + n - 1)
        # The encoder adds its position (and token type) embeddings to inputs_embeds itself.
        hidden = self.encoder(inputs_embeds=embeds, attention_mask=mask).last_hidden_state  # (B, T + n - 1, delta)
        summary = hidden[:, :n].flatten(1)  # (B, n * delta) the n summary outputs, concatenated
        return self.output(self.dropout(summary))  # (B, K)
