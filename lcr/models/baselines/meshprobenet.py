"""MeSHProbeNet (Xun et al., Bioinformatics 2019), the paper's "MeSHProbeNet" row.

Word embeddings -> BiGRU -> m *self-attentive probes*: learned vectors p_1..p_m, each attending
over the BiGRU states (a_i = softmax_t(h_t . p_i), c_i = sum_t a_i,t h_t), each probe learning to
look for one kind of information -> the m context vectors concatenated -> K logits, trained
with BCE.

As built here: the text part only. The original also embeds the journal of a MEDLINE citation,
which the corpora here do not carry in a common form; word embeddings are random and trained.
"""

from __future__ import annotations

import torch
from torch import nn

from lcr.models.baselines.common import Baseline, BaselineConfig, masked_softmax, run_rnn, word_embedding


class Model(Baseline):
    """MeSHProbeNet.

    Args:
        config: uses ``vocab_size``, ``pad_token_id``, ``embed_dim``, ``hidden_dim`` (per GRU
            direction), ``num_layers``, ``num_probes`` (m), ``dropout`` and ``num_labels``.
    """

    variant = "meshprobenet"

    def __init__(self, config: BaselineConfig):
        super().__init__(config)
        c = config
        self.embedding = word_embedding(c)
        self.dropout = nn.Dropout(c.dropout)
        self.gru = nn.GRU(c.embed_dim, c.hidden_dim, num_layers=c.num_layers, batch_first=True,
                          bidirectional=True, dropout=c.dropout if c.num_layers > 1 else 0.0)
        width = 2 * c.hidden_dim
        self.probes = nn.Parameter(torch.empty(c.num_probes, width))  # P (m x 2H)
        nn.init.xavier_uniform_(self.probes)
        self.output = nn.Linear(c.num_probes * width, c.num_labels)

    def scores(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        x = self.dropout(self.embedding(input_ids))  # (B, T, E)
        h = run_rnn(self.gru, x, attention_mask)  # (B, T, 2H) BiGRU states, zero on padding
        att = torch.einsum("btd,md->bmt", h, self.probes)  # (B, m, T) each probe scores each word
        att = masked_softmax(att, attention_mask.bool()[:, None, :], dim=-1).to(h.dtype)  # (B, m, T)
        context = torch.bmm(att, h)  # (B, m, 2H) what each probe found
        return self.output(self.dropout(context.flatten(1)))  # (B, m * 2H) -> (B, K)
