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
from lcr.models.summary import SummaryTokens


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
        self.summary = SummaryTokens(n, encoder)  # the n - 1 extra summary tokens
        self.dropout = nn.Dropout(config.dropout)
        self.output = nn.Linear(n * dim, config.num_labels)
        self._register_load_state_dict_pre_hook(_rename_old_weights)

    def init_extra_from(self, cls_token_id: int) -> None:
        """Start the extra tokens from the [CLS] token's pretrained embedding."""
        self.summary.init_from(self.encoder, cls_token_id)

    def scores(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        n = self.config.num_cls_tokens
        hidden, _ = self.summary(self.encoder, input_ids, attention_mask)  # (B, T + n - 1, delta)
        summary = hidden[:, :n].flatten(1)  # (B, n * delta) the n summary outputs, concatenated
        return self.output(self.dropout(summary))  # (B, K)


def _rename_old_weights(state_dict, prefix, *args) -> None:
    """Models saved before the summary tokens had their own module named them ``extra_cls``."""
    old = prefix + "extra_cls"
    if old in state_dict:
        state_dict[prefix + "summary.extra"] = state_dict.pop(old)
