"""The paper's neural comparison systems (Tables 2-6), as variants of the same training loop.

One small module per model; each takes ``(input_ids, attention_mask)`` (B x T) and returns
:class:`lcr.models.base.ModelOutput` with ``logits`` (B x K) and, given labels, the BCE ``loss``, so
that training, evaluation, the prediction files, the ``best_model`` folder, the predictor and
MLflow serving treat them exactly like LabelCoRank.

* ``xml-cnn`` (:mod:`lcr.models.baselines.xml_cnn`): Liu et al. 2017.
* ``attentionxml`` (:mod:`lcr.models.baselines.attentionxml`): You et al. 2019, flat (no label tree).
* ``transformer`` (:mod:`lcr.models.baselines.transformer`): Vaswani et al. 2017, trained from scratch.
* ``meshprobenet`` (:mod:`lcr.models.baselines.meshprobenet`): Xun et al. 2019.
* ``star-transformer`` (:mod:`lcr.models.baselines.star_transformer`): Guo et al. 2019.
* ``bertxml`` (:mod:`lcr.models.baselines.bertxml`): Xun et al. 2020, on the same pretrained encoder
  as LabelCoRank.
* ``match`` (:mod:`lcr.models.baselines.match`): Zhang et al. 2021, text with its metadata (venue,
  authors, references) as tokens; MAG-CS and PubMed only.
* ``ligcn`` (:mod:`lcr.models.baselines.ligcn`): RoBERTa-LiGCN, Li et al. 2022, tokens and labels as
  nodes of one graph on the same pretrained encoder.
* ``gudn`` (:mod:`lcr.models.baselines.gudn`): Wang et al. 2023, the label names as a guide while
  fine-tuning the same pretrained encoder.
* ``tfidf`` (:mod:`lcr.models.baselines.tfidf`): not in the paper; TF-IDF with one-vs-rest logistic
  regression (scikit-learn), fitted by its own job rather than the training loop.

The first five and ``match`` are *word-level*: they read words of a vocabulary built from the training split
(:mod:`lcr.models.baselines.words`) through word embeddings that are initialised at random and trained
with the model (no pretrained word vectors: nothing is downloaded). For them the ``encoder``
setting is ignored. ``bertxml``, ``ligcn`` and ``gudn`` use the encoder and its tokenizer like
LabelCoRank; ``ligcn`` and ``gudn`` also read one text per label (the store's label names:
:mod:`lcr.models.baselines.label_text`).

The variants' names and families are in :mod:`lcr.models.variants`; the models live in
:mod:`lcr.models.baselines.common` and the per-model modules, and :mod:`lcr.models.factory` builds and loads
them.
"""
