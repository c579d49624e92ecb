"""``bonsai``: TF-IDF features and a partitioned label tree (omikuji), not in the paper.

What indexing teams pick first at this scale (Annif's ``omikuji`` backend): the labels are
clustered into a tree by their feature centroids, and a linear classifier at every node routes a
document down a beam of branches to a few leaves, so training and prediction cost grows with
log K, not K. ``tree_algorithm: bonsai`` (the default) uses Bonsai's shallow, wide, unbalanced
trees (``cluster_k`` 100, depth 3, as omikuji's README and Annif's documentation give them);
``parabel`` uses Parabel's balanced binary trees (omikuji's defaults: ``cluster_k`` 2, depth 20).
Both with ``tree_n_trees`` trees and the same TF-IDF features as ``tfidf``
(:func:`lcr.models.baselines.tfidf.make_vectorizer`).

Fitted by :func:`lcr.models.baselines.tfidf.train_linear` like ``tfidf``: the same splits,
capping, dev report, metrics, predictions file and MLflow logging. The tree is saved by omikuji
itself (its own binary format, no pickle) under ``bonsai_model/`` with the vectorizer's
vocabulary and idf weights as JSON / ``.npy``; like ``tfidf`` it is scored for the tables and
``lcr metrics``, not served.
"""

from __future__ import annotations

import json
import os
import re
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from lcr.errors import LcrError

MODEL_DIR = "bonsai_model"
#: (cluster_balanced, cluster_k, max_depth) per tree algorithm.
TREES = {"bonsai": (False, 100, 3), "parabel": (True, 2, 20)}


def hyper_params(params):
    """omikuji's hyper-parameters for ``tree_algorithm``, ``tree_n_trees`` and ``tree_linear_c``."""
    import omikuji

    balanced, k, depth = TREES[params.tree_algorithm]
    hp = omikuji.Model.default_hyper_param()
    hp.cluster_balanced, hp.cluster_k, hp.max_depth = balanced, k, depth
    hp.n_trees, hp.linear_c = params.tree_n_trees, params.tree_linear_c
    return hp


def write_xc_file(path: Path, features, gold) -> None:
    """The Extreme Classification Repository's text format that omikuji reads: a header
    ``documents features labels``, then per document ``l1,l2 f:v f:v`` (sorted feature ids)."""
    features, gold = features.tocsr(), gold.tocsr()
    features.sort_indices()
    with open(path, "w", encoding="ascii") as handle:
        handle.write(f"{features.shape[0]} {features.shape[1]} {gold.shape[1]}\n")
        for i in range(features.shape[0]):
            labels = ",".join(map(str, gold.indices[gold.indptr[i]:gold.indptr[i + 1]]))
            start, end = features.indptr[i], features.indptr[i + 1]
            pairs = " ".join(f"{j}:{v:.6g}" for j, v in zip(features.indices[start:end], features.data[start:end]))
            handle.write(f"{labels} {pairs}\n")


_BAR = re.compile(r"^(?P<name>.*?)\s*\d+ / (?P<total>\d+) \[[=>\- ]*\]")  # "Examples 3 / 200 [==>--] ..."


def redraws_collapsed(text: str) -> str:
    """What a log file should keep of terminal progress bars: the last state of each.

    omikuji's native code draws its progress bars on stderr and redraws them after every
    example, separated by carriage returns or newlines (thousands of redraws: about 1 MB for
    Reuters' 6,930 documents). A redraw followed by another of the same bar (same name, same
    total) is dropped; every other piece of text is kept, one per line.
    """
    pieces = [piece.strip() for piece in re.split(r"[\r\n]+", text)]
    pieces = [piece for piece in pieces if piece]
    kept = []
    for piece, after in zip(pieces, pieces[1:] + [""]):
        bar, next_bar = _BAR.match(piece), _BAR.match(after)
        if bar and next_bar and (bar["name"], bar["total"]) == (next_bar["name"], next_bar["total"]):
            continue  # redrawn right after: only the last state matters
        kept.append(piece)
    return "".join(piece + "\n" for piece in kept)


@contextmanager
def progress_bars_collapsed():
    """While it runs, the process's stderr (file descriptor 2, where native code writes) goes to
    a temporary file; afterwards what it caught reaches the real stderr through
    :func:`redraws_collapsed`. A terminal keeps its live bars: nothing is caught there."""
    if os.isatty(2):
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with tempfile.TemporaryFile() as caught:
            os.dup2(caught.fileno(), 2)
            try:
                yield
            finally:
                sys.stderr.flush()
                os.dup2(saved, 2)
                caught.seek(0)
                text = redraws_collapsed(caught.read().decode("utf-8", errors="replace"))
                if text:
                    sys.stderr.write(text)
                    sys.stderr.flush()
    finally:
        os.close(saved)


def fit_tree(texts: list[str], gold, params, output_dir: Path):
    """Fit the vectorizer and the label tree; save both under ``output_dir / bonsai_model``."""
    try:
        import omikuji
    except ImportError as exc:
        raise LcrError("the bonsai baseline needs omikuji: pip install omikuji") from exc
    from lcr.atomic import atomic_dir
    from lcr.models.baselines.tfidf import make_vectorizer

    vectorizer = make_vectorizer(params)
    features = vectorizer.fit_transform(texts)  # (N, V) sparse
    with tempfile.TemporaryDirectory(prefix="lcr-bonsai-") as tmp:
        data = Path(tmp) / "train.txt"
        write_xc_file(data, features, gold)
        with progress_bars_collapsed():  # one line per bar in a log file, not one redraw per example
            model = omikuji.Model.train_on_data(str(data), hyper_params(params), n_threads=max(1, params.tfidf_jobs)
                                                if params.tfidf_jobs > 0 else None)
    with atomic_dir(output_dir / MODEL_DIR) as folder:
        model.save(str(folder / "tree"))
        vocabulary = {term: int(index) for term, index in vectorizer.vocabulary_.items()}
        (folder / "vocabulary.json").write_text(json.dumps(vocabulary), encoding="utf-8")
        np.save(folder / "idf.npy", vectorizer.idf_.astype(np.float32), allow_pickle=False)
    return vectorizer, model


def rank_tree(vectorizer, model, texts: list[str], k: int, beam_size: int = 10):
    """Top-k label indices and scores per text (omikuji's beam search, best first)."""
    idx = np.full((len(texts), k), -1, dtype=np.int64)  # (N, k) -1 pads a shorter answer
    scores = np.full((len(texts), k), np.nan, dtype=np.float32)  # (N, k)
    features = vectorizer.transform(texts).tocsr()
    for i in range(features.shape[0]):
        start, end = features.indptr[i], features.indptr[i + 1]
        pairs = list(zip(features.indices[start:end].tolist(), features.data[start:end].tolist()))
        ranked = sorted(model.predict(pairs, beam_size=max(beam_size, k), top_k=k), key=lambda p: (-p[1], p[0]))
        for r, (label, score) in enumerate(ranked[:k]):
            idx[i, r], scores[i, r] = label, score
    return idx, scores


def train_bonsai(dataset_dir: str | Path, output_dir: str | Path, params, *, eval_split: str = "test",
                 tracker=None, progress: bool = False) -> dict:
    """Fit on train, report dev, evaluate on ``eval_split``, as :func:`lcr.models.baselines.tfidf.train_tfidf`.

    Raises:
        LcrError: omikuji or scikit-learn is missing, or the training split has no labels.
    """
    from lcr.models.baselines.tfidf import train_linear

    output_dir = Path(output_dir)

    def fit(texts, gold):
        vectorizer, model = fit_tree(texts, gold, params, output_dir)
        return (vectorizer, model), {"features": len(vectorizer.vocabulary_), "trees": params.tree_n_trees,
                                     "tree_algorithm": params.tree_algorithm}

    return train_linear(dataset_dir, output_dir, params, fit=fit,
                        rank=lambda model, texts, k: rank_tree(*model, texts, k), eval_split=eval_split, tracker=tracker)
