"""Every variant's name and what it is, without importing torch (configuration, tables and the
CLI ask here; the models are built by :mod:`lcr.models.factory`).

Families:

* the LabelCoRank family (the model and its ablations, Tables 8-10): one model with flags
  (:data:`VARIANT_FLAGS`), a label sequence S of length gamma;
* ``roberta``: the paper's RoBERTa row, LabelCoRank's first prediction alone;
* encoder baselines (``bertxml``, ``ligcn``, ``gudn``): the paper's neural baselines on the same
  pretrained encoder; ``ligcn`` and ``gudn`` also read the labels' texts (:data:`LABEL_TEXT_VARIANTS`);
* word-level baselines (:data:`WORD_VARIANTS`): words of a vocabulary counted on the training
  split, embeddings trained from scratch; ``match`` also reads the documents' metadata;
* linear (``tfidf``, ``bonsai``): TF-IDF features with one-vs-rest logistic regression, or with a
  partitioned label tree (omikuji), each fitted by its own job rather than the training loop.
"""

from __future__ import annotations

#: variant -> (use_cooc, use_rank, use_pos) of the LabelCoRank model (ablations: Tables 8-10).
VARIANT_FLAGS = {
    "labelcorank": (True, True, True),
    "no_cooc": (False, True, True),
    "no_rank": (True, False, True),
    "no_pos": (True, True, False),
    "no_rerank": (False, False, False),
}
#: LabelCoRank and its ablations: one model with flags.
LABELCORANK_FAMILY = tuple(VARIANT_FLAGS)
#: Variants that read words through embeddings trained from scratch (no pretrained encoder).
WORD_VARIANTS = ("xml-cnn", "attentionxml", "transformer", "meshprobenet", "star-transformer", "match")
#: Variants that read the documents' metadata (the store's ``meta`` column) with their text.
METADATA_VARIANTS = ("match",)
#: Baselines built on the pretrained encoder (the ``encoder`` setting), like LabelCoRank.
ENCODER_VARIANTS = ("bertxml", "ligcn", "gudn")
#: Variants that read a text for every label (the store's label names, or the ids as text: the
#: ``label_text`` setting), from the store's ``label_vocab.tsv`` when they are built.
LABEL_TEXT_VARIANTS = ("ligcn", "gudn")
#: The neural baselines of :mod:`lcr.models.baselines` (trained by the same loop as LabelCoRank).
BASELINE_VARIANTS = WORD_VARIANTS + ENCODER_VARIANTS
#: Baselines that are not neural models of the training loop (:mod:`lcr.models.baselines.tfidf`,
#: :mod:`lcr.models.baselines.bonsai`).
LINEAR_VARIANTS = ("tfidf", "bonsai")
#: The models of the training loop (what :func:`lcr.models.factory.build_model` builds).
MODEL_VARIANTS = (*LABELCORANK_FAMILY, "roberta", *BASELINE_VARIANTS)
#: Every variant ``lcr train`` accepts.
VARIANTS = (*MODEL_VARIANTS, *LINEAR_VARIANTS)

#: Baseline -> the module that defines its model class ``Model``.
BASELINE_MODULES = {
    "xml-cnn": "lcr.models.baselines.xml_cnn",
    "attentionxml": "lcr.models.baselines.attentionxml",
    "transformer": "lcr.models.baselines.transformer",
    "meshprobenet": "lcr.models.baselines.meshprobenet",
    "star-transformer": "lcr.models.baselines.star_transformer",
    "bertxml": "lcr.models.baselines.bertxml",
    "match": "lcr.models.baselines.match",
    "ligcn": "lcr.models.baselines.ligcn",
    "gudn": "lcr.models.baselines.gudn",
}

#: Variant -> the paper's row name (``roberta-oracle``: Table 7's reranking of RoBERTa's top 10).
PAPER_ROWS = {
    "xml-cnn": "XML-CNN",
    "meshprobenet": "MeSHProbeNet",
    "attentionxml": "AttentionXML",
    "transformer": "Transformer",
    "star-transformer": "Star-Transformer",
    "bertxml": "BERTXML",
    "match": "MATCH",
    "ligcn": "RoBERTa-LiGCN",
    "gudn": "GUDN",
    "tfidf": "TF-IDF + LR",
    "bonsai": "Bonsai (omikuji)",
    "roberta": "RoBERTa",
    "roberta-oracle": "RoBERTa*",
    "labelcorank": "LabelCoRank",
    "no_cooc": "w/o correlation matrix",
    "no_rank": "w/o label ranking",
    "no_pos": "w/o position information",
    "no_rerank": "w/o all reranking parts",
}


def uses_gamma(variant: str) -> bool:
    """LabelCoRank and its ablations have a label sequence of length gamma; the baselines not."""
    return variant in LABELCORANK_FAMILY


def is_word_level(variant: str) -> bool:
    """True for the variants that read words through embeddings trained from scratch."""
    return variant in WORD_VARIANTS


def uses_encoder(variant: str) -> bool:
    """True for the variants built on the pretrained encoder (the ``encoder`` setting)."""
    return variant in MODEL_VARIANTS and not is_word_level(variant)


def family(variant: str) -> str:
    """``labelcorank``, ``roberta``, ``encoder``, ``word`` or ``linear``.

    Raises:
        KeyError: an unknown variant.
    """
    if variant in LABELCORANK_FAMILY:
        return "labelcorank"
    if variant == "roberta":
        return "roberta"
    if variant in ENCODER_VARIANTS:
        return "encoder"
    if variant in WORD_VARIANTS:
        return "word"
    if variant in LINEAR_VARIANTS:
        return "linear"
    raise KeyError(variant)


def reads_label_texts(variant: str, label_init: str = "random") -> bool:
    """Whether a variant is built from a text per label: ``ligcn`` and ``gudn`` always, the
    LabelCoRank family with ``label_init: names`` (its label embedding starts from them)."""
    return variant in LABEL_TEXT_VARIANTS or (variant in LABELCORANK_FAMILY and label_init == "names")
