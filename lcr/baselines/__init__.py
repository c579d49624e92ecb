"""The paper's neural comparison systems (Tables 2-6), as variants of the same training loop.

One small module per model; each takes ``(input_ids, attention_mask)`` (B x T) and returns
:class:`lcr.model.ModelOutput` with ``logits`` (B x K) and, given labels, the BCE ``loss``, so
that training, evaluation, the prediction files, the ``best_model`` folder, the predictor and
MLflow serving treat them exactly like LabelCoRank.

* ``xml-cnn`` (:mod:`lcr.baselines.xml_cnn`): Liu et al. 2017.
* ``attentionxml`` (:mod:`lcr.baselines.attentionxml`): You et al. 2019, flat (no label tree).
* ``transformer`` (:mod:`lcr.baselines.transformer`): Vaswani et al. 2017, trained from scratch.
* ``meshprobenet`` (:mod:`lcr.baselines.meshprobenet`): Xun et al. 2019.
* ``star-transformer`` (:mod:`lcr.baselines.star_transformer`): Guo et al. 2019.
* ``bertxml`` (:mod:`lcr.baselines.bertxml`): Xun et al. 2020, on the same pretrained encoder
  as LabelCoRank.
* ``match`` (:mod:`lcr.baselines.match`): Zhang et al. 2021, text with its metadata (venue,
  authors, references) as tokens; MAG-CS and PubMed only.
* ``tfidf`` (:mod:`lcr.baselines.tfidf`): not in the paper; TF-IDF with one-vs-rest logistic
  regression (scikit-learn), fitted by its own job rather than the training loop.

The first five and ``match`` are *word-level*: they read words of a vocabulary built from the training split
(:mod:`lcr.baselines.words`) through word embeddings that are initialised at random and trained
with the model (no pretrained word vectors: nothing is downloaded). For them the ``encoder``
setting is ignored. ``bertxml`` uses the encoder and its tokenizer like LabelCoRank.

This module only names the variants (it imports no torch), so that :mod:`lcr.config` can list
them cheaply; the models live in :mod:`lcr.baselines.common` and the per-model modules.
"""

from __future__ import annotations

#: Variants that read words through embeddings trained from scratch (no pretrained encoder).
WORD_VARIANTS = ("xml-cnn", "attentionxml", "transformer", "meshprobenet", "star-transformer", "match")
#: Variants that read the documents' metadata (the store's ``meta`` column) with their text.
METADATA_VARIANTS = ("match",)
#: Variants built on the pretrained encoder (the ``encoder`` setting), like LabelCoRank.
ENCODER_VARIANTS = ("bertxml",)
BASELINE_VARIANTS = WORD_VARIANTS + ENCODER_VARIANTS
#: Baselines that are not neural models of the training loop (:mod:`lcr.baselines.tfidf`).
LINEAR_VARIANTS = ("tfidf",)

#: Variant -> the module that defines its model class ``Model``.
MODULES = {
    "xml-cnn": "lcr.baselines.xml_cnn",
    "attentionxml": "lcr.baselines.attentionxml",
    "transformer": "lcr.baselines.transformer",
    "meshprobenet": "lcr.baselines.meshprobenet",
    "star-transformer": "lcr.baselines.star_transformer",
    "bertxml": "lcr.baselines.bertxml",
    "match": "lcr.baselines.match",
}


def is_word_level(variant: str) -> bool:
    """True for the variants that read words through embeddings trained from scratch."""
    return variant in WORD_VARIANTS
