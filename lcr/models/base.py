"""What every model of lcr shares: its output record, its loss and how it is saved.

LabelCoRank (:mod:`lcr.models.labelcorank`) and the baselines (:mod:`lcr.models.baselines`) both import this module
and nothing of each other; :mod:`lcr.models.factory` builds and loads any of them.

A saved model is a folder with ``config.json`` (format marker, variant, model config, encoder
config) and ``model.safetensors`` (all weights, encoder included, and for LabelCoRank the label
statistics): nothing is pickled, nothing is downloaded to load it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
FORMAT = "lcr-model"


@dataclass
class ModelOutput:
    """What a forward pass returns.

    Attributes:
        logits: the model's final label scores (B x K) before the sigmoid: ``logits2`` for
            LabelCoRank, ``logits1`` for the baselines. Rank labels by these.
        logits1: the first prediction (S1 before the sigmoid), B x K.
        logits2: the second prediction (Y before the sigmoid), B x K; None for the baselines.
        loss: the training loss (L of eq. 8; the BCE for the baselines) when labels were given.
        loss1, loss2: L1 and L2 (None for the baselines or without labels).
        selected: S, the label sequence (B x gamma, PAD = K); None for the baselines.
        selected_mask: True where ``selected`` is a real label (B x gamma).
    """

    logits: torch.Tensor
    logits1: torch.Tensor
    logits2: torch.Tensor | None = None
    loss: torch.Tensor | None = None
    loss1: torch.Tensor | None = None
    loss2: torch.Tensor | None = None
    selected: torch.Tensor | None = None
    selected_mask: torch.Tensor | None = None


def bce(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Eqs. 4 and 7, averaged over labels and documents; from logits for numerical stability."""
    return F.binary_cross_entropy_with_logits(logits.float(), labels.float())


class SaveLoad:
    """``save_pretrained`` for the models here (safetensors, no pickle); :func:`lcr.models.factory.load_model`
    reads the folder back."""

    variant: str
    config: object  # LabelCoRankConfig or BaselineConfig (pydantic models)
    encoder: nn.Module | None

    def save_pretrained(self, directory: str | Path) -> None:
        """Write ``config.json`` (variant, model config, encoder config) and
        ``model.safetensors`` (all weights, encoder included, and the label statistics)."""
        from safetensors.torch import save_model

        from lcr.atomic import atomic_dir

        # Word-level baselines have no pretrained encoder: "encoder" is then null.
        encoder = self.encoder.config.to_dict() if self.encoder is not None else None
        meta = {"format": FORMAT, "format_version": 1, "variant": self.variant,
                "config": self.config.model_dump(), "encoder": encoder}
        with atomic_dir(directory) as tmp:
            save_model(self, str(tmp / WEIGHTS_NAME))
            (tmp / CONFIG_NAME).write_text(json.dumps(meta, indent=2), encoding="utf-8")

    def encoder_for_loading(self):
        """The encoder's Hugging Face config: enough for :func:`lcr.models.factory.load_model` to
        rebuild the encoder's architecture without downloading anything."""
        return self.encoder.config
