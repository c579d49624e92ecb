"""RoBERTa-LiGCN (Li, Feng, Wu, Li, Suzumura, Dong, "LiGCN: Label-interpretable Graph
Convolutional Networks for Multi-label Text Classification", DLG4NLP 2022; arXiv 2103.14620),
the paper's "RoBERTa-LiGCN" row.

What each design choice rests on:

* **The sources read.** LiGCN's abstract (stored copies of its arXiv pages): tokens and labels
  are nodes of **one heterogeneous graph**, so that token-level relationships count, and the
  **token-label edges are exposed**, which makes a predicted label interpretable. The
  LabelCoRank paper (ref. [21], pp. 2 and 6): LiGCN "builds a graph for labels and text tokens,
  and strengthens the edge weight between specific tokens and the corresponding label through
  the graph convolutional network"; it "calculates the cosine similarity between label
  embeddings to capture the relationships among labels"; the row is "RoBERTa-LiGCN", i.e. on
  RoBERTa. LiGCN's full text and code could not be read here: the rest is ours.
* **As built here** (our choices, each named):
  - token nodes: the states of the same pretrained encoder as LabelCoRank (``encoder``), B x T x
    delta. Token-token relations are the encoder's own self-attention; the graph adds no
    token-token edges of its own;
  - label nodes: a learned K x delta table, initialised from the label texts (the store's
    label names, :mod:`lcr.models.baselines.label_text`) encoded by that encoder (the mean of
    its output states over each name's tokens);
  - label-label edges: the cosine similarity of those initial label embeddings, kept
    **sparse**: each label's ``label_neighbours`` most similar labels (negative similarities
    give no edge), plus a self loop, row-normalised (D^-1 (A + I), the GCN's random-walk
    normalisation). Fixed at build time and saved with the model (a K x (k + 1) index and
    weight buffer), so K = 17,963 costs K (k + 1) edges, not a dense K x K matrix;
  - token-label edges: per document, the scaled dot product of each label's node and each
    token's projected state, softmax-normalised over the document's real tokens (a label's
    edges sum to 1; padding has none). :meth:`Model.token_label_edges` returns them: these
    are the interpretable edges;
  - graph convolution (``num_layers`` rounds): first every label node takes the messages of
    its tokens along those edges (its own feature is its self loop), then each round
    aggregates it with its neighbours along the label-label edges, a linear layer and GELU,
    added back to the node (a residual GCN layer);
  - per-label scores: LayerNorm of each label's final node, dotted with that label's own
    output vector, plus its bias (which starts at the label's training log-odds like the
    other models' heads); BCE.

Memory at PubMed's K = 17,963 (B documents of T tokens): the token-label edges are B x K x T and
the label nodes B x K x delta per layer; the measured figures are in the README's baselines
table (``python -m bench.bench_label_baselines_memory``).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from lcr.errors import LcrError
from lcr.models.baselines.common import Baseline, BaselineConfig
from lcr.models.encoder import embed_texts


def cosine_neighbours(vectors: torch.Tensor, k: int, block: int = 1024) -> tuple[torch.Tensor, torch.Tensor]:
    """The row-normalised sparse label graph: each label's self loop and its k most
    cosine-similar labels.

    Computed in blocks of rows, so no K x K matrix is ever held (block x K at a time).

    Args:
        vectors: the label embeddings (K x delta).
        k: neighbours per label (at most K - 1).

    Returns:
        ``(index, weight)``, both K x (k + 1): column 0 is the label itself; the weights of a
        row sum to 1 (a negative similarity weighs 0).
    """
    unit = F.normalize(vectors.float(), dim=-1)  # (K, delta)
    count = unit.size(0)
    indices, values = [], []
    for start in range(0, count, block):
        rows = torch.arange(start, min(start + block, count), device=unit.device)  # (b,)
        similarity = unit[rows] @ unit.T  # (b, K)
        similarity[torch.arange(len(rows), device=unit.device), rows] = float("-inf")  # the self loop is added below
        top = similarity.topk(k, dim=-1) if k > 0 else None
        indices.append(torch.cat([rows[:, None], top.indices], 1) if top is not None else rows[:, None])  # (b, k + 1)
        weights = top.values.clamp(min=0.0) if top is not None else unit.new_zeros(len(rows), 0)  # (b, k)
        values.append(torch.cat([unit.new_ones(len(rows), 1), weights], 1))  # (b, k + 1)
    index, weight = torch.cat(indices), torch.cat(values)  # (K, k + 1) each
    return index, weight / weight.sum(dim=1, keepdim=True)


class Model(Baseline):
    """RoBERTa-LiGCN.

    Args:
        config: uses ``num_labels``, ``label_neighbours``, ``num_layers`` (graph convolution
            rounds), ``label_name_length`` and ``dropout``.
        encoder: a Hugging Face encoder (``last_hidden_state``: B x T x delta).
    """

    variant = "ligcn"

    def __init__(self, config: BaselineConfig, encoder: nn.Module):
        super().__init__(config, encoder)
        count, dim = config.num_labels, encoder.config.hidden_size
        self.k = min(config.label_neighbours, count - 1)  # neighbours per label other than itself
        self.label_embedding = nn.Parameter(torch.randn(count, dim) * 0.02)  # (K, delta) label nodes
        self.token_proj = nn.Linear(dim, dim)  # the token side of the token-label edges
        self.gcn = nn.ModuleList(nn.Linear(dim, dim) for _ in range(config.num_layers))
        self.norm = nn.LayerNorm(dim)
        self.dropout = nn.Dropout(config.dropout)
        self.classifier1 = nn.Linear(dim, count)  # row k: label k's output vector; bias: its prior
        # The label-label edges (filled by set_label_texts): self loops only until then.
        self.register_buffer("neighbours", torch.arange(count)[:, None].repeat(1, self.k + 1))  # (K, k + 1)
        weights = torch.zeros(count, self.k + 1)
        weights[:, 0] = 1.0
        self.register_buffer("edge_weights", weights)  # (K, k + 1)

    @torch.no_grad()
    def set_label_texts(self, tokenizer, texts: list[str], batch_size: int = 256) -> None:
        """Embed each label's text with the encoder (mean of its output states over the text's
        tokens, special tokens included) into the label nodes, and build the label-label edges
        from the cosine similarity of those embeddings."""
        if len(texts) != self.config.num_labels:
            raise LcrError(f"ligcn: {len(texts)} label texts for K = {self.config.num_labels} labels")
        vectors = embed_texts(self.encoder, tokenizer, texts, self.config.label_name_length, batch_size)  # (K, delta)
        self.label_embedding.copy_(vectors)
        index, weight = cosine_neighbours(vectors, self.k)
        self.neighbours.copy_(index)
        self.edge_weights.copy_(weight)

    def token_label_edges(self, hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """The token-label edges of each document: (B, K, T), each label's edges to the real
        tokens summing to 1 (the interpretable part: which tokens a label reads).

        Args:
            hidden: the encoder's token states (B x T x delta).
            attention_mask: 1 on real tokens (B x T).
        """
        keys = self.token_proj(hidden) / math.sqrt(hidden.size(-1))  # (B, T, delta), scaled like attention
        scores = torch.einsum("kd,btd->bkt", self.label_embedding.to(keys.dtype), keys)  # (B, K, T)
        scores = scores.float().masked_fill(~attention_mask.bool()[:, None, :], float("-inf"))  # padding: no edge
        return torch.softmax(scores, dim=-1)  # (B, K, T); every document has a real token

    def propagate(self, nodes: torch.Tensor) -> torch.Tensor:
        """One step along the label-label edges: each label's weighted mean of itself and its
        neighbours, as one sparse (K x K) product for the whole batch, in float32 (sparse
        kernels do not all take bf16).

        Args:
            nodes: label nodes (B x K x delta).

        Returns:
            (B x K x delta).
        """
        batch, count, dim = nodes.shape
        rows = torch.arange(count, device=nodes.device).repeat_interleave(self.k + 1)  # (K (k + 1),)
        adjacency = torch.sparse_coo_tensor(torch.stack([rows, self.neighbours.flatten()]),
                                            self.edge_weights.flatten().float(), (count, count),
                                            check_invariants=False)  # (K, K), K (k + 1) entries; ours, valid
        with torch.autocast(nodes.device.type, enabled=False):
            flat = nodes.float().transpose(0, 1).reshape(count, batch * dim)  # (K, B delta)
            spread = torch.sparse.mm(adjacency, flat)  # (K, B delta)
        return spread.reshape(count, batch, dim).transpose(0, 1)  # (B, K, delta)

    def scores(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state  # (B, T, delta)
        hidden = self.dropout(hidden)
        edges = self.token_label_edges(hidden, attention_mask)  # (B, K, T)
        # Token -> label: each label node is its own feature plus the messages of its tokens.
        nodes = self.label_embedding[None] + torch.bmm(edges.to(hidden.dtype), hidden)  # (B, K, delta)
        for layer in self.gcn:  # label <-> label: a residual GCN layer per round
            spread = self.propagate(nodes)  # (B, K, delta)
            nodes = nodes + self.dropout(F.gelu(layer(spread)))  # (B, K, delta)
        nodes = self.norm(nodes)  # (B, K, delta)
        weight = self.classifier1.weight.to(nodes.dtype)  # (K, delta): one output vector per label
        return torch.einsum("bkd,kd->bk", nodes, weight) + self.classifier1.bias  # (B, K)
