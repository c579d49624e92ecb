"""GUDN (Wang et al., "GUDN: A novel guide network with label reinforcement strategy for
extreme multi-label text classification", JKSU-CIS 35(4), 2023; arXiv 2201.11582), the
paper's "GUDN" row.

What each design choice rests on:

* **The sources read.** The GUDN paper's abstract (arXiv 2201.11582 v2, stored copies of its
  arXiv and ar5iv pages): a *guide network* helps fine-tune a pretrained model; it uses *raw
  label semantics* together with a *label reinforcement strategy* "to explore the latent space
  between texts and labels, narrowing the semantic gap". Its full text and its code (the
  short link in the abstract) could not be read here. The LabelCoRank paper (its refs. [40] and
  p. 8): GUDN "leverages label semantics and deep pre-trained models, incorporating a label
  reinforcement strategy for fine-tuning", and depends on label texts (weak on MAG-CS, "which
  are presented as IDs"). The public code of MLGN (github.com/L199Q/MLGN, a later model whose
  README is GUDN's, word for word), read for the shape of a guide network: the text and the
  gold labels' text go through **one** pretrained encoder, the concatenated [CLS] states of its
  last layers go through **one** classifier, and both inputs are trained with BCE against the
  same gold labels, plus a small term that ties the two representations together.
* **As built here** (our reading where the sources stop; each is a setting):
  - the encoder is the same pretrained encoder as LabelCoRank's (``encoder``);
  - a document's features are the [CLS] states of the encoder's last ``cls_layers`` layers,
    concatenated (last layer first), then dropout and one linear layer -> K logits;
  - the **guide input** of a training document is built from its gold labels' texts (the
    store's label names; :mod:`lcr.models.baselines.label_text`), each followed by ``;``, in
    label-index order, placed after the text's first token. With ``label_reinforcement`` (the
    default) the document's own text follows them ("label-reinforced" text: the labels' words
    strengthen the text); without it the guide input is the label texts alone (with the
    closing token). It is cut to ``max_length`` and to the encoder's position table;
  - the loss is ``BCE(text) + guide_weight * (BCE(guide) + (1 - cos(f_text, f_guide)))``: the
    guide input is classified by the same layer, and the text's features are pulled towards
    the guide's, which are held fixed in that term (``detach``) so the guide leads and the text
    follows (MLGN uses a supervised contrastive term with weight 0.01 instead);
  - prediction reads the text alone: the guide exists only while training, and the label
    texts' token ids are saved with the model (a buffer in ``model.safetensors``) so that a
    saved model needs no store.

At PubMed's K = 17,963 the extra cost over the plain fine-tune is the second encoder pass of
each step (the guide input) and a (n x 768) x K classifier; the measured memory is in the
README's baselines table (``python -m bench.bench_label_baselines_memory``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from lcr.errors import LcrError
from lcr.models.base import ModelOutput, bce
from lcr.models.summary import max_tokens
from lcr.models.baselines.common import Baseline, BaselineConfig

#: Closes each label text in the guide input.
SEPARATOR = ";"


class Model(Baseline):
    """GUDN.

    Args:
        config: uses ``num_labels``, ``cls_layers``, ``dropout``, ``max_length``,
            ``label_name_length``, ``guide_weight`` and ``label_reinforcement``.
        encoder: a Hugging Face encoder (``hidden_states``: (layers + 1) x B x T x delta).
    """

    variant = "gudn"

    def __init__(self, config: BaselineConfig, encoder: nn.Module):
        super().__init__(config, encoder)
        n, dim = config.cls_layers, encoder.config.hidden_size
        depth = encoder.config.num_hidden_layers + 1  # hidden_states: the embeddings, then each layer
        if n > depth:
            raise LcrError(f"baseline config: gudn: cls_layers = {n} exceeds the encoder's {depth - 1} layers "
                           "(+ its embeddings)")
        limit = max_tokens(encoder.config)
        self.limit = min(config.max_length, limit) if limit is not None else config.max_length
        self.pad_id = encoder.config.pad_token_id or 0
        self.dropout = nn.Dropout(config.dropout)
        self.classifier1 = nn.Linear(n * dim, config.num_labels)  # shared by the text and its guide
        # Each label's text as token ids, closed by the separator (filled by set_label_texts).
        shape = (config.num_labels, config.label_name_length)
        self.register_buffer("label_tokens", torch.full(shape, self.pad_id, dtype=torch.long))
        self.register_buffer("label_lengths", torch.zeros(config.num_labels, dtype=torch.long))

    def set_label_texts(self, tokenizer, texts: list[str]) -> None:
        """Tokenise one text per label into the ``label_tokens`` buffer.

        A leading space makes a byte-level BPE (RoBERTa) read each name as it reads a word in
        running text (WordPiece and SentencePiece ignore it); names longer than
        ``label_name_length`` tokens (separator included) are cut.
        """
        if len(texts) != self.config.num_labels:
            raise LcrError(f"gudn: {len(texts)} label texts for K = {self.config.num_labels} labels")
        separator = tokenizer(SEPARATOR, add_special_tokens=False)["input_ids"]
        room = self.config.label_name_length - len(separator)
        encoded = tokenizer([f" {text}" for text in texts], add_special_tokens=False)["input_ids"]
        with torch.no_grad():
            self.label_tokens.fill_(self.pad_id)
            for k, ids in enumerate(encoded):
                row = ids[:room] + separator
                self.label_tokens[k, :len(row)] = torch.tensor(row, dtype=torch.long)
                self.label_lengths[k] = len(row)

    def features(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """The [CLS] states of the last ``cls_layers`` layers, concatenated: (B, n * delta)."""
        n = self.config.cls_layers
        out = self.encoder(input_ids=input_ids, attention_mask=attention_mask, output_hidden_states=n > 1)
        states = out.hidden_states[-n:] if n > 1 else (out.last_hidden_state,)  # n x (B, T, delta)
        return torch.cat([s[:, 0] for s in reversed(states)], dim=-1)  # (B, n * delta), last layer first

    def guide_inputs(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                     labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The guide input of each document: its first token, its gold labels' texts, then the
        rest of its text (``label_reinforcement``) or only its closing token; padded.

        Returns:
            (token ids, attention mask), both (B, T_guide).
        """
        positions = torch.arange(self.config.label_name_length, device=input_ids.device)  # (L,)
        rows = []
        for b in range(input_ids.size(0)):
            text = input_ids[b][attention_mask[b].bool()]  # (T_b,) [CLS] text [SEP]
            gold = labels[b].nonzero(as_tuple=True)[0]  # (n_b,) in label-index order
            kept = positions[None] < self.label_lengths[gold][:, None]  # (n_b, L) real tokens of each text
            names = self.label_tokens[gold][kept]  # (tokens,) the texts one after the other
            rest = text[1:] if self.config.label_reinforcement else text[-1:]
            rows.append(torch.cat([text[:1], names, rest])[:self.limit])  # cut at the end
        length = max(len(row) for row in rows)
        ids = input_ids.new_full((len(rows), length), self.pad_id)  # (B, T_guide)
        mask = attention_mask.new_zeros((len(rows), length))  # (B, T_guide)
        for b, row in enumerate(rows):
            ids[b, :len(row)] = row
            mask[b, :len(row)] = 1
        return ids, mask

    def scores(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.classifier1(self.dropout(self.features(input_ids, attention_mask)))  # (B, K)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                labels: torch.Tensor | None = None) -> ModelOutput:
        """The text's logits; with ``labels`` the loss, and while training the guide terms."""
        text = self.features(input_ids, attention_mask)  # (B, n * delta)
        logits = self.classifier1(self.dropout(text))  # (B, K)
        out = ModelOutput(logits=logits, logits1=logits)
        if labels is None:
            return out
        out.loss = bce(logits, labels)
        if self.training and self.config.guide_weight > 0:
            guide_ids, guide_mask = self.guide_inputs(input_ids, attention_mask, labels)
            guide = self.features(guide_ids, guide_mask)  # (B, n * delta)
            guide_loss = bce(self.classifier1(self.dropout(guide)), labels)
            # The text follows its guide: the guide's features are a fixed target in this term.
            pull = (1.0 - F.cosine_similarity(text.float(), guide.detach().float(), dim=-1)).mean()
            out.loss = out.loss + self.config.guide_weight * (guide_loss + pull)
        return out
