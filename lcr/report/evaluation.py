"""Scoring a prediction file against gold labels (the ``lcr metrics`` command).

Gold is either ``DATASET:SPLIT`` (a fetched store; its head/tail subsets and propensities come
from the prepared label artifacts when ``lcr prepare`` has run) or a JSONL file of
``{"id", "labels"}``. The metric maths is :func:`lcr.report.metrics.evaluate`, the same function that
training and evaluation use.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from lcr.report import metrics, predictions
from lcr.datasets import store
from lcr.errors import LcrError


def load_gold(gold: str, data_dir: str | Path = "data") -> dict:
    """Resolve a gold specification.

    Args:
        gold: a JSONL file path, or ``DATASET:SPLIT`` naming a fetched dataset.
        data_dir: the data folder holding fetched datasets.

    Returns:
        ``{"ids", "vocab", "matrix", "subsets", "train_freq", "n_train", "source"}``; the last
        four are empty/None when the gold is a plain file or the dataset is not prepared.
    """
    path = Path(gold)
    if path.is_file():
        ids, labels = predictions.read_gold(path)
        vocab = sorted({label for row in labels for label in row})
        return {"ids": ids, "vocab": vocab, "matrix": predictions.labels_to_csr(labels, vocab, source=path),
                "subsets": {}, "train_freq": None, "n_train": None, "source": str(path)}
    if ":" not in gold:
        raise LcrError(f"--gold {gold}: neither a file nor DATASET:SPLIT")
    dataset, split = gold.rsplit(":", 1)
    folder = Path(data_dir) / dataset
    vocab, _ = store.read_vocab(folder)
    ids = store.read_split(folder, split, columns=["id"]).column("id").to_pylist()
    matrix = store.label_matrix(folder, split, vocab)
    result = {"ids": ids, "vocab": vocab, "matrix": matrix, "subsets": {}, "train_freq": None,
              "n_train": None, "source": f"{folder}:{split}"}
    labels_dir = folder / store.LABELS_DIR
    if labels_dir.exists():
        from lcr.labels import LabelArtifacts, subset_masks

        artifacts = LabelArtifacts.load(labels_dir)
        if list(artifacts.vocab) != list(vocab):
            raise LcrError(f"{labels_dir} was prepared from another label vocabulary: run "
                           f"`lcr prepare {dataset}` again")
        result.update(subsets=subset_masks(matrix, artifacts.head_mask),
                      train_freq=artifacts.freq, n_train=artifacts.n_train)
    return result


def _existing(pred: str | Path, option: str = "--pred") -> Path:
    """A prediction file's path, checked before anything is loaded."""
    pred = Path(pred)
    if not pred.is_file():
        raise LcrError(f"{option} {pred}: no such file")
    return pred


def _aligned(reference: dict, pred: str | Path, width: int, *, widest: bool = False):
    """A prediction file's rankings (its existence checked by :func:`_existing` first) in the order
    of the gold's documents.

    Returns:
        ``(topk, scores, report)`` as :func:`lcr.report.predictions.align_predictions` gives them,
        ``width`` ranks wide (or as wide as the file's longest ranking with ``widest``).
    """
    pred = Path(pred)
    pred_ids, pred_labels, pred_scores = predictions.read_predictions(pred)
    if widest and pred_labels:
        width = max([width, *(len(row) for row in pred_labels)])
    return predictions.align_predictions(reference["ids"], reference["vocab"], pred_ids, pred_labels,
                                         pred_scores, width, source=pred)


def evaluate_prediction_file(gold: str, pred: str | Path, *, data_dir: str | Path = "data",
                             threshold: float = 0.5, ks: tuple[int, ...] = (1, 3, 5)) -> dict:
    """Score a predictions JSONL file against gold labels.

    Returns:
        ``{"metrics": {"full": {...}, "head": {...}, "tail": {...}}, "report": {...}}`` where the
        report counts missing predictions, unknown labels and truncated rankings.
    """
    _existing(pred)  # before the gold loads: the commonest mistake is named first
    reference = load_gold(gold, data_dir)
    topk, scores, report = _aligned(reference, pred, max(ks))
    result = metrics.evaluate(reference["matrix"], topk, scores=scores,
                              train_freq=reference["train_freq"], n_train=reference["n_train"],
                              threshold=threshold, subsets=reference["subsets"], ks=ks)
    return {"gold": reference["source"], "predictions": str(pred), "metrics": result, "report": report}


def per_label_file(gold: str, pred: str | Path, output: str | Path, *, data_dir: str | Path = "data",
                   threshold: float = 0.5, k: int = 5) -> Path:
    """Write precision, recall, F1 and support of every label to a CSV file (most frequent in
    training first, when the dataset is prepared), atomically.

    Columns: ``label, train_freq, support, predicted, true_positives, precision, recall, f1``
    (``train_freq`` empty for a plain gold file). A label's predicted documents are those whose
    ranking holds it with a score of at least ``threshold`` (the top ``k`` without scores).
    """
    import pandas as pd

    from lcr.atomic import atomic_open

    _existing(pred)  # before the gold loads: the commonest mistake is named first
    reference = load_gold(gold, data_dir)
    topk, scores, _ = _aligned(reference, pred, k, widest=True)
    per_label = metrics.per_label_scores(reference["matrix"], topk, scores, threshold=threshold, k=k)
    frame = pd.DataFrame({"label": reference["vocab"],
                          "train_freq": reference["train_freq"] if reference["train_freq"] is not None else None,
                          **per_label})
    if reference["train_freq"] is not None:
        frame = frame.sort_values(["train_freq", "label"], ascending=[False, True], kind="stable")
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    with atomic_open(output, "w", encoding="utf-8", newline="") as handle:
        frame.to_csv(handle, index=False, float_format="%.6f")
    return output


def compare_prediction_files(gold: str, baseline: Sequence[str | Path], candidate: Sequence[str | Path], *,
                             data_dir: str | Path = "data", ks: tuple[int, ...] = (1, 3, 5), resamples: int = 1000,
                             confidence: float = 0.95, seed: int = 0) -> dict:
    """Paired bootstrap of P@k and nDCG@k between two models' prediction files on the same gold.

    Args:
        gold: a JSONL file path, or ``DATASET:SPLIT``.
        baseline: the reference model's prediction files; several (one per seed) are averaged per
            document before resampling.
        candidate: likewise, of the model compared with it.
        resamples, confidence, seed: see :func:`lcr.report.significance.paired_bootstrap`.

    Returns:
        ``{"gold", "baseline", "candidate", "metrics": {"P@k"/"nDCG@k": {...}}, "report": {path: ...}}``;
        each metric holds the two means, the difference, its interval and ``p_not_better``; the
        report counts, per file, missing predictions, unknown labels and truncated rankings.
    """
    from lcr.report.significance import compare

    if not baseline or not candidate:
        raise LcrError("compare needs at least one --baseline and one --candidate prediction file")
    sides = {"--baseline": [_existing(p, "--baseline") for p in baseline],
             "--candidate": [_existing(p, "--candidate") for p in candidate]}
    reference = load_gold(gold, data_dir)
    rankings, reports = {}, {}
    for side, files in sides.items():
        rankings[side] = []
        for path in files:
            topk, _, reports[str(path)] = _aligned(reference, path, max(ks))
            rankings[side].append(topk)
    try:
        result = compare(reference["matrix"], rankings["--baseline"], rankings["--candidate"], ks=ks,
                         resamples=resamples, confidence=confidence, seed=seed)
    except ValueError as error:  # a bad --resamples or --confidence
        raise LcrError(str(error)) from None
    return {"gold": reference["source"], "baseline": [str(p) for p in baseline],
            "candidate": [str(p) for p in candidate], "metrics": result, "report": reports}


def oracle_prediction_file(gold: str, pred: str | Path, output: str | Path, *, m: int = 10,
                           data_dir: str | Path = "data", threshold: float = 0.5) -> dict:
    """The paper's "RoBERTa*" (Table 7): a trained model's rankings with the correct labels of
    its top m moved to the front, an upper bound for any reranker of that top m. No training.

    Labels after the m-th keep their place; within the correct and the wrong labels the original
    order is kept; each label keeps its original score (so the scores of the output are no
    longer sorted). Documents without a prediction stay without one.

    Args:
        gold: ``DATASET:SPLIT`` or a JSONL file of ``{"id", "labels"}``.
        pred: the predictions JSONL of a trained model (``predictions-<split>.jsonl``).
        output: where the reranked predictions JSONL is written (atomically).
        m: how many of the top labels are reranked (the paper: 10).
        data_dir: the data folder holding fetched datasets.
        threshold: score threshold of the F1 metrics.

    Returns:
        What :func:`evaluate_prediction_file` returns for the reranked file.
    """
    import numpy as np

    from lcr.models.labelcorank import oracle_rerank

    if m < 1:
        raise LcrError(f"oracle: m must be at least 1, got {m}")
    pred = _existing(pred)
    reference = load_gold(gold, data_dir)
    pred_ids, pred_labels, pred_scores = predictions.read_predictions(pred)
    width = max([len(row) for row in pred_labels] + [m])
    topk, _, _ = predictions.align_predictions(reference["ids"], reference["vocab"], pred_ids, pred_labels,
                                                pred_scores, width, source=pred)
    # Rerank column positions rather than labels, so that padding (-1) and labels outside the
    # vocabulary (-2) simply count as wrong and keep their place among the wrong ones.
    known = topk >= 0  # (N, width)
    rows = np.repeat(np.arange(topk.shape[0]), width)  # (N width,)
    in_gold = np.asarray(reference["matrix"][rows, np.where(known, topk, 0).reshape(-1)]).reshape(topk.shape)
    hits = known & (in_gold != 0)  # (N, width): column j of document i is a gold label
    columns = np.tile(np.arange(width), (topk.shape[0], 1))  # (N, width)
    reranked_cols = oracle_rerank(columns, hits, m=m)  # (N, width) column positions, hits first
    position = {doc_id: i for i, doc_id in enumerate(reference["ids"])}
    output = Path(output)
    with predictions.PredictionWriter(output) as out:
        for line, doc_id in enumerate(pred_ids):
            i = position[doc_id]
            cols = [int(c) for c in reranked_cols[i] if c < len(pred_labels[line])]  # drop padding
            scores = None if pred_scores is None else [pred_scores[line][c] for c in cols]
            out.write(doc_id, [pred_labels[line][c] for c in cols], scores)
    return evaluate_prediction_file(gold, output, data_dir=data_dir, threshold=threshold)


def ensemble_prediction_files(preds: Sequence[str | Path], output: str | Path, *, top_k: int | None = None) -> Path:
    """Average several models' prediction files into one: the ensemble of, e.g., the same model
    trained with several seeds, scored like any other file. No model is loaded.

    A label's score is the mean of its scores over the files, 0 in a file whose ranking leaves it
    out (so each file's ranking should reach past the ranks that will be scored: a run's
    ``predictions-<split>.jsonl`` holds its top 10); documents are ranked by that mean, ties in the
    order in which the files first rank them.

    Args:
        preds: at least two predictions JSONL files with scores, over the same documents.
        output: where the averaged predictions JSONL is written (atomically).
        top_k: labels kept per document (default: as many as the widest input ranking).

    Returns:
        ``output``.

    Raises:
        LcrError: fewer than two files, a missing file, a file without scores, or a file whose
            documents are not those of the first (named with an example id).
        DataFormatError: a malformed line (file, line and field named).
    """
    files = [_existing(p) for p in preds]
    if len(files) < 2:
        raise LcrError(f"an ensemble needs at least two prediction files, got {len(files)}")
    if top_k is not None and top_k < 1:
        raise LcrError(f"--top-k {top_k}: must be at least 1")
    rankings = []  # per file: {doc id: (labels, scores)}
    for path in files:
        ids, labels, scores = predictions.read_predictions(path)
        if scores is None:
            raise LcrError(f"{path}: no scores; an ensemble averages the scores of its members")
        rankings.append(dict(zip(ids, zip(labels, scores))))
    first = rankings[0]
    for path, rows in zip(files[1:], rankings[1:]):
        missing = [doc for doc in first if doc not in rows]
        extra = [doc for doc in rows if doc not in first]
        if missing or extra:
            example = missing[0] if missing else extra[0]
            raise LcrError(f"{path}: not the documents of {files[0]} ({len(missing)} of them missing, {len(extra)} "
                           f"others; e.g. id {example!r})")
    width = top_k or max(len(labels) for rows in rankings for labels, _ in rows.values())
    with predictions.PredictionWriter(output) as out:
        for doc in first:
            mean: dict[str, float] = {}
            for rows in rankings:
                for label, score in zip(*rows[doc]):
                    mean[label] = mean.get(label, 0.0) + score / len(rankings)
            ranked = sorted(mean, key=lambda label: -mean[label])[:width]  # stable: ties keep first-seen order
            out.write(doc, ranked, [round(mean[label], predictions.SCORE_DIGITS) for label in ranked])
    return Path(output)
