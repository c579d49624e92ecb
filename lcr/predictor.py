"""Label a text with a trained model folder: what serving and ``lcr predict`` use.

A model folder (``runs/<dataset>/<run>/best_model``, written by training) holds everything
inference needs, offline: ``model/`` (weights and configs, the encoder's included),
``tokenizer/``, ``label_vocab.tsv`` (label ids and names) and ``inference.json`` (the
maximum sequence length the model was trained with). Nothing here trains or tracks.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch

from lcr.errors import LcrError

REQUIRED = ("model", "tokenizer", "label_vocab.tsv", "inference.json")


@dataclass
class Predictor:
    """A loaded model with its tokenizer and label names.

    Attributes:
        model: the LabelCoRank / baseline module (eval mode).
        tokenizer: the encoder's tokenizer.
        labels: label ids in label-index order.
        names: label names (same order; the id when the dataset has no names).
        max_length: tokens per text, special tokens included.
        info: the folder's ``inference.json``.
    """

    model: torch.nn.Module
    tokenizer: object
    labels: list[str]
    names: list[str]
    max_length: int
    info: dict

    @classmethod
    def load(cls, folder: str | Path, device: str = "cpu") -> "Predictor":
        """Load a model folder.

        Raises:
            LcrError: the folder or one of its parts is missing.
        """
        from transformers import AutoTokenizer

        from lcr.datasets.store import read_vocab
        from lcr.model import load_model

        folder = Path(folder)
        missing = [name for name in REQUIRED if not (folder / name).exists()]
        if missing:
            raise LcrError(f"{folder} is not an lcr model folder (missing: {', '.join(missing)})")
        info = json.loads((folder / "inference.json").read_text(encoding="utf-8"))
        labels, names = read_vocab(folder)
        model = load_model(folder / "model").to(device).eval()
        tokenizer = AutoTokenizer.from_pretrained(str(folder / "tokenizer"))
        return cls(model, tokenizer, list(labels), [n or l for l, n in zip(labels, names)],
                   int(info["max_length"]), info)

    @torch.no_grad()
    def predict(self, texts: list[str], k: int = 10, batch_size: int = 32,
                threshold: float | None = None) -> list[list[dict]]:
        """Rank labels for each text.

        Args:
            texts: the documents.
            k: labels returned per text, best first.
            batch_size: texts per forward pass.
            threshold: keep only labels whose score reaches it (after the top-k cut).

        Returns:
            Per text, a list of ``{"label", "name", "score"}``.

        Raises:
            LcrError: a text that is not a non-empty string (its position is named).
        """
        for i, text in enumerate(texts):
            if not isinstance(text, str) or not text.strip():
                raise LcrError(f"text {i}: expected a non-empty string, got {text!r:.60}")
        if k < 1:
            raise LcrError(f"k must be at least 1, got {k}")
        device = next(self.model.parameters()).device
        k = min(k, len(self.labels))
        results: list[list[dict]] = []
        for start in range(0, len(texts), batch_size):
            batch = self.tokenizer(texts[start:start + batch_size], truncation=True, max_length=self.max_length,
                                   padding=True, return_tensors="pt")
            logits = self.model(batch["input_ids"].to(device), batch["attention_mask"].to(device)).logits  # (B, K)
            scores, idx = torch.topk(torch.sigmoid(logits.float()), k, dim=-1)  # (B, k), (B, k)
            for row_scores, row_idx in zip(scores.tolist(), idx.tolist()):
                results.append([{"label": self.labels[j], "name": self.names[j], "score": round(s, 6)}
                                for s, j in zip(row_scores, row_idx) if threshold is None or s >= threshold])
        return results
