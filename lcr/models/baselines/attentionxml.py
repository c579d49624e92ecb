"""AttentionXML, flat (You et al., NeurIPS 2019), the paper's "AttentionXML" row.

Word embeddings -> BiLSTM -> *multi-label attention*: every label j has its own attention
vector u_j, and attends over the BiLSTM states with it (alpha_j = softmax_t(h_t . u_j)), so each
label reads the words that matter to it -> each label's context vector goes through the same
(shared across labels) fully connected layer -> one logit per label, trained with BCE.

What was NOT built: AttentionXML's probabilistic label tree (PLT), which the original uses to
scale to millions of labels (one such model per tree level, and candidate labels passed from a
level to the next). This is the *flat* model over all K labels, which the AttentionXML paper
itself uses for its smaller datasets. It costs B x K x 2H memory per batch: fine for AAPD
(54 labels) and Reuters (90), large but workable on a GPU for MAG-CS / PubMed (~18k labels).
Word embeddings are random and trained (the original starts from GloVe).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from lcr.models.baselines.common import Baseline, BaselineConfig, masked_softmax, run_rnn, word_embedding


class Model(Baseline):
    """AttentionXML (flat).

    Args:
        config: uses ``vocab_size``, ``pad_token_id``, ``embed_dim``, ``hidden_dim`` (per LSTM
            direction; the original: 256), ``num_layers``, ``bottleneck_dim`` (the shared
            per-label hidden layer; the original: 256), ``dropout`` and ``num_labels``.
    """

    variant = "attentionxml"

    def __init__(self, config: BaselineConfig):
        super().__init__(config)
        c = config
        self.embedding = word_embedding(c)
        self.dropout = nn.Dropout(c.dropout)
        self.lstm = nn.LSTM(c.embed_dim, c.hidden_dim, num_layers=c.num_layers, batch_first=True,
                            bidirectional=True, dropout=c.dropout if c.num_layers > 1 else 0.0)
        width = 2 * c.hidden_dim
        # One attention vector per label: U (K x 2H).
        self.label_queries = nn.Parameter(torch.empty(c.num_labels, width))
        nn.init.xavier_uniform_(self.label_queries)
        # The per-label output network, shared by all labels: 2H -> hidden -> 1.
        self.hidden = nn.Linear(width, c.bottleneck_dim)
        self.output = nn.Linear(c.bottleneck_dim, 1)

    def scores(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        x = self.dropout(self.embedding(input_ids))  # (B, T, E)
        h = run_rnn(self.lstm, x, attention_mask)  # (B, T, 2H) BiLSTM states, zero on padding
        # Multi-label attention: each label's query scores every word.
        att = torch.einsum("btd,kd->bkt", h, self.label_queries)  # (B, K, T)
        att = masked_softmax(att, attention_mask.bool()[:, None, :], dim=-1).to(h.dtype)  # (B, K, T)
        context = torch.bmm(att, h)  # (B, K, 2H) one document vector per label
        hidden = F.relu(self.hidden(self.dropout(context)))  # (B, K, hidden)
        return self.output(hidden).squeeze(-1)  # (B, K)
