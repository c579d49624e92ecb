"""TF-IDF with one-vs-rest logistic regression: the baseline a practitioner reaches for first.

Not in the paper. Word and word-bigram TF-IDF features (scikit-learn's ``TfidfVectorizer``,
sublinear term frequency) fitted on the training documents the run trains on, and one binary
logistic regression per label (``OneVsRestClassifier(LogisticRegression(solver="liblinear"))``).
Labels without a positive training document get a constant score of 0. The job writes the same
files as the neural training loop (``predictions-<split>.jsonl``, ``metrics.json``,
``scores.json``) and is evaluated by the same metrics code, so it sits in the same tables.

The fitted model is not kept as a ``best_model`` folder: scikit-learn models are stored by
pickling, which serving refuses to load; this baseline is for the comparison tables only.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from lcr.errors import LcrError

#: Documents scored at a time: the dense score block is chunk x K, never N x K.
CHUNK = 2048


def split_texts(dataset_dir: Path, split: str, vocab: list[str], keep: np.ndarray | None):
    from lcr.datasets import store

    table = store.read_split(dataset_dir, split, columns=["id", "text", "labels"])
    ids, texts = (table.column(c).to_pylist() for c in ("id", "text"))
    matrix = store.labels_to_matrix(table.column("labels"), vocab)
    if keep is not None:
        ids, texts, matrix = [ids[i] for i in keep], [texts[i] for i in keep], matrix[keep]
    return ids, texts, matrix


#: Labels per fitting task: enough work per task to amortise shipping it to a worker.
LABELS_PER_TASK = 32
#: Arrays larger than this reach joblib's worker processes memory-mapped (joblib's own default).
MEMMAP_BYTES = "1M"


def _fit_labels(features: sp.csr_matrix, targets: sp.csc_matrix, c: float, seed: int, solver: str = "lbfgs"):
    """One binary logistic regression per column of ``targets`` (each with positives and negatives).

    ``lbfgs`` (the default) fits in a fraction of liblinear's time on large bigram vocabularies
    (``bench/bench_tfidf.py``); ``liblinear`` is the earlier choice, kept as an option.

    Returns:
        (weights, bias): (L x V) float32 and (L,) float32.
    """
    import warnings

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression

    weights = np.zeros((targets.shape[1], features.shape[1]), dtype=np.float32)  # (L, V)
    bias = np.zeros(targets.shape[1], dtype=np.float32)  # (L,)
    for j in range(targets.shape[1]):
        y = targets[:, j].toarray().ravel() > 0  # (N,)
        with warnings.catch_warnings():  # lbfgs stopping at max_iter on a rare label is expected
            warnings.simplefilter("ignore", ConvergenceWarning)
            classifier = LogisticRegression(C=c, solver=solver, random_state=seed).fit(features, y)
        weights[j], bias[j] = classifier.coef_[0], classifier.intercept_[0]
    return weights, bias


def make_vectorizer(params):
    """The baseline's (unfitted) TF-IDF vectorizer: sublinear term frequencies, word n-grams up to
    ``tfidf_ngrams``, at most ``tfidf_max_features`` terms seen in ``word_min_freq`` documents."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    return TfidfVectorizer(sublinear_tf=True, ngram_range=(1, params.tfidf_ngrams),
                           max_features=params.tfidf_max_features, min_df=params.word_min_freq, dtype=np.float32)


def _fit(texts: list[str], gold: sp.csr_matrix, params, progress: bool = False):
    """Fit the vectorizer on ``texts`` and one logistic regression per label, ``tfidf_jobs``
    processes at a time (each fit is independent and seeded, so the result does not depend on
    the number of processes). Labels with no positive document score 0, with only positives 1."""
    from joblib import Parallel, delayed
    from tqdm.auto import tqdm

    vectorizer = make_vectorizer(params)
    features = vectorizer.fit_transform(texts)  # (N, V) sparse
    gold = gold.tocsc()
    positives = np.diff(gold.indptr)  # (K,) documents per label
    weights = np.zeros((gold.shape[1], features.shape[1]), dtype=np.float32)  # (K, V)
    bias = np.where(positives == gold.shape[0], np.inf, -np.inf).astype(np.float32)  # (K,)
    fitted = np.flatnonzero((positives > 0) & (positives < gold.shape[0]))  # labels with both classes
    chunks = [fitted[i:i + LABELS_PER_TASK] for i in range(0, len(fitted), LABELS_PER_TASK)]
    # joblib memory-maps the feature arrays above MEMMAP_BYTES for its worker processes instead of
    # copying them; copy-on-write ("c"), because liblinear writes to its input (a read-only map
    # fails with "WRITEBACKIFCOPY base is read-only" at real corpus sizes)
    results = Parallel(n_jobs=params.tfidf_jobs, return_as="generator", max_nbytes=MEMMAP_BYTES, mmap_mode="c")(
        delayed(_fit_labels)(features, gold[:, chunk], params.tfidf_c, params.seed, params.tfidf_solver)
        for chunk in chunks)
    with tqdm(total=len(fitted), desc="tfidf: labels", unit="label", disable=not progress, leave=False) as bar:
        for chunk, (chunk_weights, chunk_bias) in zip(chunks, results):
            weights[chunk], bias[chunk] = chunk_weights, chunk_bias
            bar.update(len(chunk))
    return vectorizer, weights, bias


def _rank(vectorizer, weights, bias, texts: list[str], k: int):
    """Top-k label indices and sigmoid scores per text, scored CHUNK documents at a time."""
    import torch

    from lcr.models.labelcorank import top_labels

    idx = np.zeros((len(texts), k), dtype=np.int64)  # (N, k)
    scores = np.zeros((len(texts), k), dtype=np.float32)  # (N, k)
    for start in range(0, len(texts), CHUNK):
        features = vectorizer.transform(texts[start:start + CHUNK])  # (C, V) sparse
        logits = np.asarray(features @ weights.T) + bias  # (C, K); +-inf for one-class labels
        top_scores, top_idx = top_labels(torch.from_numpy(logits), k)  # (C, k), (C, k)
        idx[start:start + len(top_idx)], scores[start:start + len(top_idx)] = top_idx.numpy(), top_scores.numpy()
    return idx, scores


def train_tfidf(dataset_dir: str | Path, output_dir: str | Path, params, *, eval_split: str = "test",
                tracker=None, progress: bool = False) -> dict:
    """Fit on train, report dev, evaluate on ``eval_split`` (full, head, tail); the result has the
    shape of :func:`lcr.train.loop.train`'s.

    Raises:
        LcrError: scikit-learn is missing, or the training split has no labelled documents.
    """
    def fit(texts, gold):
        vectorizer, weights, bias = _fit(texts, gold, params, progress=progress)
        return (vectorizer, weights, bias), {"features": len(vectorizer.vocabulary_)}

    return train_linear(dataset_dir, output_dir, params, fit=fit, rank=lambda model, texts, k: _rank(*model, texts, k),
                        eval_split=eval_split, tracker=tracker)


def train_linear(dataset_dir: str | Path, output_dir: str | Path, params, *, fit, rank, eval_split: str = "test",
                 tracker=None) -> dict:
    """The job of the baselines that are fitted once rather than trained by the loop (``tfidf``,
    ``bonsai``): read train (capped as the loop caps it), ``fit(texts, gold) -> (model, extra)``,
    score dev and ``eval_split`` with ``rank(model, texts, k) -> (topk, scores)``, write the
    predictions and the result record, log to ``tracker``. ``extra`` joins the result record.

    Raises:
        LcrError: scikit-learn is missing, or the training split has no labelled documents.
    """
    import importlib.util

    if importlib.util.find_spec("sklearn") is None:
        raise LcrError("the TF-IDF features need scikit-learn: pip install scikit-learn")
    from lcr.report import metrics
    from lcr.datasets import store
    from lcr.labels import LabelArtifacts, subset_masks
    from lcr.report.predictions import write_predictions
    from lcr import runs

    started = time.time()
    dataset_dir, output_dir = Path(dataset_dir), Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    vocab, _ = store.read_vocab(dataset_dir)
    artifacts = LabelArtifacts.load(dataset_dir / store.LABELS_DIR)
    n_train = store.split_length(dataset_dir, "train")
    _, texts, gold = split_texts(dataset_dir, "train", vocab, store.capped_indices(n_train, params.max_train_docs, params.seed))
    if gold.nnz == 0:
        raise LcrError(f"{dataset_dir.name}: the training split has no labels")
    if tracker is not None:
        tracker.log_params(runs.logged_params(dataset_dir.name, params, eval_split))
    model, extra = fit(texts, gold)
    k = min(max(5, params.top_k_saved), len(vocab))

    def evaluate(split: str, limit: int | None):
        n = store.split_length(dataset_dir, split)
        ids, texts_of_split, split_gold = split_texts(dataset_dir, split, vocab, store.capped_indices(n, limit, params.seed))
        topk, scores = rank(model, texts_of_split, k)
        return ids, split_gold, topk, scores

    dev, history = None, []
    if store.split_path(dataset_dir, "dev").exists():
        _, dev_gold, dev_topk, dev_scores = evaluate("dev", params.max_eval_docs)
        dev = metrics.evaluate(dev_gold, dev_topk, scores=dev_scores)["full"]
        history.append({"epoch": 1, "step": 0, **dev})
        if tracker is not None:
            tracker.log_metrics({f"dev_{key}": v for key, v in dev.items() if key != "n_docs"}, step=1)
    ids, eval_gold, topk, scores = evaluate(eval_split, params.max_eval_docs)
    evaluation = metrics.evaluate(eval_gold, topk, scores=scores, train_freq=artifacts.freq, n_train=artifacts.n_train,
                                  subsets=subset_masks(eval_gold, artifacts.head_mask))
    write_predictions(output_dir / runs.predictions_file(eval_split), ids, vocab, topk, scores)
    result = runs.run_result(dataset_dir.name, params, eval_split, evaluation, dev=dev, best_epoch=1, steps=0,
                             history=history, train_seconds=time.time() - started, output_dir=output_dir,
                             **extra)
    runs.write_results(output_dir, result)
    if tracker is not None:
        runs.log_finished(tracker, output_dir, result, step=1)
    return result
