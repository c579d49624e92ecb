"""What every dataset reader returns."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from lcr.datasets.document import Document


@dataclass
class ParsedDataset:
    """A release read into documents, before it is written to the normalised store.

    Attributes:
        splits: documents per split; keys among ``train``, ``dev`` and ``test``. Values may be
            lists or lazy generators (large releases are streamed), so iterate each one once.
        label_names: label id -> human-readable name (the id itself when the source has no
            names); may be empty.
        missing: release files that were expected but absent (e.g. ``text_train``); the
            splits they belong to are left out of ``splits``.
        label_order: the label vocabulary order when the source defines one (MATCH's
            ``id2label.txt``), else None.
        duplicates: for sources that may drop repeated ids (a custom corpus), the policy and
            the count dropped, filled in while the splits are read; None otherwise.
    """

    splits: dict[str, Iterable[Document]]
    label_names: dict[str, str]
    missing: list[str]
    label_order: list[str] | None = None
    duplicates: dict | None = None
