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
# Characters kept per token of max_length before tokenising: byte-level BPE tokens of real text
# average 4-5 characters, so for real text this cap does not shorten what the model sees (only a
# text whose first max_length tokens average over 64 characters would be cut); it bounds the work
# a pathological 1,000,000-character text costs.
CHARS_PER_TOKEN = 64


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
        calibration: the folder's ``calibration.json`` (:mod:`lcr.serve.calibration`; what
            ``mode="set"`` applies), or None before ``lcr calibrate``.
    """

    model: torch.nn.Module
    tokenizer: object
    labels: list[str]
    names: list[str]
    max_length: int
    info: dict
    calibration: object = None

    @classmethod
    def load(cls, folder: str | Path, device: str = "cpu") -> "Predictor":
        """Load a model folder.

        Raises:
            LcrError: the folder or one of its parts is missing.
        """
        from transformers import AutoTokenizer

        from lcr.datasets.store import read_vocab
        from lcr.models.factory import load_model
        from lcr.serve.calibration import load_calibration

        folder = Path(folder)
        missing = [name for name in REQUIRED if not (folder / name).exists()]
        if missing:
            raise LcrError(f"{folder} is not an lcr model folder (missing: {', '.join(missing)})")
        info = json.loads((folder / "inference.json").read_text(encoding="utf-8"))
        labels, names = read_vocab(folder)
        model = load_model(folder / "model").to(device).eval()
        tokenizer = AutoTokenizer.from_pretrained(str(folder / "tokenizer"))
        return cls(model, tokenizer, list(labels), [n or l for l, n in zip(labels, names)],
                   int(info["max_length"]), info, load_calibration(folder))

    def check_texts(self, texts) -> list[str]:
        """The texts as a list, or an error that names the first bad one.

        Raises:
            LcrError: a text that is missing (None/NaN), not a string, or empty after
                stripping whitespace; its position is named.
        """
        texts = list(texts)
        for i, text in enumerate(texts):
            if text is None or (isinstance(text, float) and text != text):
                raise LcrError(f"text {i}: missing (null); every row needs a non-empty string")
            if not isinstance(text, str):
                raise LcrError(f"text {i}: expected a string, got {type(text).__name__} {text!r:.60}")
            if not text.strip():
                raise LcrError(f"text {i}: empty string; every row needs some text")
        return texts

    @property
    def max_chars(self) -> int:
        """Characters of a text kept before tokenisation (:data:`CHARS_PER_TOKEN` per token of
        ``max_length``): a bound on the work a huge text costs, far beyond what ``max_length``
        tokens of real text take, so the tokens the model sees are the same."""
        return self.max_length * CHARS_PER_TOKEN

    @torch.no_grad()
    def predict(self, texts: list[str], k: int = 10, batch_size: int = 32,
                threshold: float | None = None, explain: bool = False,
                mode: str = "ranking") -> list[list[dict]] | list[dict]:
        """Rank labels for each text.

        Texts longer than the model's ``max_length`` tokens are truncated to it, as in training.

        Args:
            texts: the documents.
            k: labels returned per text, best first.
            batch_size: texts per forward pass.
            threshold: keep only labels whose score reaches it (after the top-k cut).
            mode: ``ranking`` (the top ``k``) or ``set`` (the calibrated label set: the first
                ``max_labels`` labels whose score reaches their threshold; ``k`` and ``threshold``
                are then not used).
            explain: also return, per text, the label sequence S the model attended over
                (the co-occurrence-expanded, frequency-ranked labels; the paper's "Extend
                labels"). Only LabelCoRank variants have one.

        Returns:
            Per text, a list of ``{"label", "name", "score"}``; with ``explain``, per text a dict
            ``{"ranked": that list, "extended": [{"label", "name"}, ...] or None}``.

        Raises:
            LcrError: a text that is not a non-empty string (its position is named), or k < 1.
        """
        from lcr.models.labelcorank import top_labels

        texts = self.check_texts(texts)
        if k < 1:
            raise LcrError(f"k must be at least 1, got {k}")
        if mode not in ("ranking", "set"):
            raise LcrError(f"mode must be 'ranking' or 'set', got {mode!r}")
        if mode == "set":
            if self.calibration is None:
                raise LcrError("mode 'set' needs a calibrated model: run `lcr calibrate` on it first "
                               "(the model folder has no calibration.json)")
            k, threshold = self.calibration.max_labels, None
        device = next(self.model.parameters()).device
        k = min(k, len(self.labels))
        results: list = []
        for start in range(0, len(texts), batch_size):
            chunk = [text[:self.max_chars] for text in texts[start:start + batch_size]]
            batch = self.tokenizer(chunk, truncation=True, max_length=self.max_length, padding=True,
                                   return_tensors="pt")
            out = self.model(batch["input_ids"].to(device), batch["attention_mask"].to(device))
            scores, idx = top_labels(out.logits, k)  # (B, k), (B, k)
            extended = self._extended(out) if explain else [None] * len(chunk)
            for row_scores, row_idx, row_extended in zip(scores.tolist(), idx.tolist(), extended):
                ranked = [{"label": self.labels[j], "name": self.names[j], "score": round(s, 6)}
                          for s, j in zip(row_scores, row_idx) if threshold is None or s >= threshold]
                if mode == "set":
                    ranked = self.calibration.select(ranked)
                results.append({"ranked": ranked, "extended": row_extended} if explain else ranked)
        return results

    def _extended(self, out) -> list[list[dict] | None]:
        """Per row, the label sequence S in the model's order (PAD labels dropped)."""
        if getattr(out, "selected", None) is None:
            return [None] * out.logits.shape[0]
        rows = []
        for labels, real in zip(out.selected.tolist(), out.selected_mask.tolist()):  # (B, gamma) each
            rows.append([{"label": self.labels[j], "name": self.names[j]} for j, keep in zip(labels, real) if keep])
        return rows
