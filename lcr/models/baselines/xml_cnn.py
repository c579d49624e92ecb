"""XML-CNN (Liu et al., SIGIR 2017: "Deep Learning for Extreme Multi-label Text Classification"),
the paper's "XML-CNN" row.

Word embeddings -> 1-D convolutions of several widths -> *dynamic* max pooling (each feature
map is cut into p chunks along the text and each chunk max-pooled, so the pooled vector keeps
where in the document a feature fired, unlike TextCNN's one global max) -> a *bottleneck*
hidden layer (much smaller than the concatenated pooled features, which keeps the K-way output
layer small) -> K logits, trained with BCE.

As built here: word embeddings are random and trained (the paper also reports its
"CNN-rand" setting; its best runs start from word2vec, which cannot be downloaded here).
Like the original, which pads every document to a fixed length (500 words), every input is
padded to ``max_length`` before the convolutions, so the p chunks cover the same token positions
whatever the other documents of the batch are.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from lcr.models.baselines.common import Baseline, BaselineConfig, word_embedding


class Model(Baseline):
    """XML-CNN.

    Args:
        config: uses ``vocab_size``, ``pad_token_id``, ``embed_dim``, ``max_length`` (the fixed
            input length), ``cnn_windows``, ``cnn_filters``, ``cnn_pool_chunks`` (p),
            ``bottleneck_dim``, ``dropout`` (the original: 0.5) and ``num_labels``.
    """

    variant = "xml-cnn"

    def __init__(self, config: BaselineConfig):
        super().__init__(config)
        c = config
        self.embedding = word_embedding(c)
        self.convs = nn.ModuleList(nn.Conv1d(c.embed_dim, c.cnn_filters, w) for w in c.cnn_windows)
        pooled = len(c.cnn_windows) * c.cnn_filters * c.cnn_pool_chunks
        self.dropout = nn.Dropout(c.dropout)
        self.bottleneck = nn.Linear(pooled, c.bottleneck_dim)
        self.output = nn.Linear(c.bottleneck_dim, c.num_labels)

    def scores(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        c = self.config
        # Fixed length: pad (with [PAD], whose embedding is zero) up to max_length.
        if input_ids.size(1) < c.max_length:
            input_ids = F.pad(input_ids, (0, c.max_length - input_ids.size(1)), value=c.pad_token_id)  # (B, L)
        x = self.embedding(input_ids).transpose(1, 2)  # (B, E, L): Conv1d wants channels first
        x = self.dropout(x)
        pooled = []
        for conv in self.convs:
            fmap = F.relu(conv(x))  # (B, F, L - w + 1) one feature map per filter
            # Dynamic max pooling: p chunks of the text, one max each.
            pooled.append(F.adaptive_max_pool1d(fmap, c.cnn_pool_chunks))  # (B, F, p)
        h = torch.cat(pooled, dim=1).flatten(1)  # (B, windows * F * p)
        h = F.relu(self.bottleneck(self.dropout(h)))  # (B, bottleneck)
        return self.output(self.dropout(h))  # (B, K)
