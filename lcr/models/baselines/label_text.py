"""The text that stands for each label, for the baselines that read label semantics (``ligcn``
and ``gudn``; :data:`lcr.models.variants.LABEL_TEXT_VARIANTS`). No torch here: the training
job checks a store with it before any work starts.

The texts come from the store's ``label_vocab.tsv`` (label id, name; :func:`lcr.datasets.store.read_vocab`),
chosen by the ``label_text`` setting:

* ``names`` (default): the label names. A store **without names** is refused: one where every
  label's name equals its id (after stripping blanks), which is what ``lcr fetch custom`` writes
  for a corpus that has no names and what AAPD's release gives (subject codes only). A model
  whose point is to read the labels' meaning would otherwise read bare ids without saying so.
* ``ids``: the label ids themselves (``cs.ai``, ``D000818``): what the paper's own GUDN run on
  MAG-CS amounts to ("label features, which are presented as IDs in MAG").

Either way underscores become spaces (MAG-CS's names are written ``batch_file``), so that the
encoder reads words.
"""

from __future__ import annotations

from pathlib import Path

from lcr.errors import LcrError

def _choices() -> tuple[str, ...]:
    from typing import get_args

    from lcr.models.hyperparams import BaselineSettings

    return get_args(BaselineSettings.model_fields["label_text"].annotation)  # declared once, there


LABEL_TEXT_CHOICES = _choices()


def has_names(ids: list[str], names: list[str]) -> bool:
    """True when at least one label has a name other than its id."""
    return any(name.strip() and name.strip() != label.strip() for label, name in zip(ids, names))


def label_texts(ids: list[str], names: list[str], mode: str, *, vocab_path: str | Path,
                variant: str) -> list[str]:
    """One text per label, in label-index order.

    Args:
        ids, names: the store's label vocabulary (:func:`lcr.datasets.store.read_vocab`).
        mode: ``names`` or ``ids`` (the ``label_text`` setting).
        vocab_path: the store's ``label_vocab.tsv``, named in the error.
        variant: the variant that asks, named in the error.

    Raises:
        LcrError: ``names`` on a store without names (every name equals its id), or an unknown mode.
    """
    if mode not in LABEL_TEXT_CHOICES:
        raise LcrError(f"label_text = {mode!r}: expected one of {', '.join(LABEL_TEXT_CHOICES)}")
    if mode == "names" and not has_names(ids, names):
        raise LcrError(
            f"{variant} reads the labels' names, but {vocab_path} has none (every name equals its "
            f"label id). Give each label a name in that file's second column (label<TAB>name), or "
            f"let the ids stand for the names: --set label_text=ids (in params.yaml: "
            f"datasets.<dataset>.training.label_text: ids)")
    chosen = names if mode == "names" else ids
    # A label without a name keeps its id; underscores join words in MAG-CS's names.
    return [(text.strip() or label).replace("_", " ") for label, text in zip(ids, chosen)]
