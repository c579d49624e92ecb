"""Variant names and what they are, without importing torch (configuration and tables ask here).

The LabelCoRank family (the model and its ablations, Tables 8-10) has a label sequence S of
length gamma; the baselines (``roberta``, the neural ones of :mod:`lcr.baselines`, ``tfidf``)
have none.
"""

from __future__ import annotations

#: LabelCoRank and its ablations: one model with flags (lcr.model.VARIANT_FLAGS).
LABELCORANK_FAMILY = ("labelcorank", "no_cooc", "no_rank", "no_pos", "no_rerank")


def uses_gamma(variant: str) -> bool:
    """LabelCoRank and its ablations have a label sequence of length gamma; the baselines not."""
    return variant in LABELCORANK_FAMILY
