"""The record every dataset reader yields."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Document:
    """One labelled document.

    Attributes:
        id: identifier, unique within its dataset.
        text: plain text (detokenised where the release ships word ids).
        labels: label ids (not names), in the order the source lists them, without duplicates.
        meta: optional metadata (venue, authors, references for MATCH data).
    """

    id: str
    text: str
    labels: list[str]
    meta: dict = field(default_factory=dict)
