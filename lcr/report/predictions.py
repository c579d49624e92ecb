"""The prediction and gold files (JSON lines, UTF-8): the one writer and the one reader.

Every predictions file of lcr (a run's ``predictions-<split>.jsonl``, ``lcr predict``'s output,
the oracle's reranking) is written by :class:`PredictionWriter` and read back by
:func:`read_predictions`; :func:`align_predictions` lays a file out in gold order for
:func:`lcr.report.metrics.evaluate`.

* Gold: ``{"id": "...", "labels": ["...", ...]}``; predictions:
  ``{"id": "...", "labels": [ranked, best first], "scores": [...]}``. ``scores`` is optional
  but, once one line has it, every line must, with one number per label.
* An ``id`` is a string (an integer is accepted and read as its decimal string); labels are
  strings; other keys are ignored. Blank lines are allowed only at the end of the file.
* Malformed JSON, a missing field or a field of the wrong type raises
  :class:`~lcr.errors.DataFormatError` naming the file, line and field.
* :func:`align_predictions` lays the predictions out in **gold order**:

  - a gold document without a prediction line gets an empty ranking (0 on every metric,
    still counted); reported as ``missing_predictions``;
  - a prediction id absent from the gold is an error naming the id and the line;
  - a duplicate prediction id is an error;
  - a predicted label that is not in the vocabulary keeps its rank position but can never
    match (index ``-2``); reported as ``unknown_labels``;
  - a label repeated within one ranking is an error naming the line;
  - rankings longer than ``k_max`` are cut to their first ``k_max`` labels (reported as
    ``truncated_rankings``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from lcr.atomic import atomic_open
from lcr.errors import DataFormatError, LcrError
from lcr.jsonl import read_json_lines
from lcr.report.metrics import PADDING, UNKNOWN_LABEL, _check_k

SCORE_DIGITS = 6  # scores are rounded to this many decimals: enough for ranking, half the file


class PredictionWriter:
    """Write a predictions file line by line; the file appears only when the block ends without
    an error (temporary file, then rename).

    Example::

        with PredictionWriter(path) as out:
            out.write("doc-1", ["grain", "wheat"], scores=[0.91, 0.40])
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._context = None
        self._handle = None

    def __enter__(self) -> "PredictionWriter":
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._context = atomic_open(self.path, "w", encoding="utf-8")
        self._handle = self._context.__enter__()
        return self

    def __exit__(self, *exc) -> bool:
        return bool(self._context.__exit__(*exc))

    def write(self, doc_id: str, labels: Sequence[str], scores: Sequence[float] | None = None,
              names: Sequence[str] | None = None) -> None:
        """One line: ``{"id", "labels"[, "names"][, "scores"]}``, labels best first, scores as
        given."""
        row: dict = {"id": doc_id, "labels": list(labels)}
        if names is not None:
            row["names"] = list(names)
        if scores is not None:
            row["scores"] = [float(s) for s in scores]
        self._handle.write(json.dumps(row, ensure_ascii=False) + "\n")


def write_predictions(path: str | Path, ids: Sequence[str], vocab: Sequence[str], topk: np.ndarray,
                      scores: np.ndarray) -> None:
    """Write ranked label indices (N x k, best first) and their scores (rounded to
    :data:`SCORE_DIGITS` decimals) as a predictions file: a run's ``predictions-<split>.jsonl``."""
    with PredictionWriter(path) as out:
        for doc_id, row, row_scores in zip(ids, topk, scores):
            out.write(doc_id, [vocab[i] for i in row], [round(float(s), SCORE_DIGITS) for s in row_scores])


def _records(path):
    """Yield ``(line number, dict)`` for each record; blank lines only at the end of the file."""
    return read_json_lines(path, blank_lines="trailing")


def _field(path, lineno: int, record: dict, field: str):
    if field not in record:
        raise DataFormatError(path, "missing field", line=lineno, field=field)
    return record[field]


def _read_id(path, lineno: int, record: dict, seen: dict[str, int]) -> str:
    value = _field(path, lineno, record, "id")
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        raise DataFormatError(path, f"expected a string, got {type(value).__name__}",
                              line=lineno, field="id")
    if value in seen:
        raise DataFormatError(path, f"duplicate id {value!r} (first on line {seen[value]})",
                              line=lineno, field="id")
    seen[value] = lineno
    return value


def _read_labels(path, lineno: int, record: dict, unique: bool) -> list[str]:
    value = _field(path, lineno, record, "labels")
    if not isinstance(value, list) or not all(isinstance(x, str) for x in value):
        raise DataFormatError(path, "expected a list of strings", line=lineno, field="labels")
    if unique and len(set(value)) != len(value):
        repeated = sorted({x for x in value if value.count(x) > 1})
        raise DataFormatError(path, f"label(s) repeated within one ranking: {repeated}",
                              line=lineno, field="labels")
    return value


def read_gold(path) -> tuple[list[str], list[list[str]]]:
    """Read a gold file of lines ``{"id": ..., "labels": [...]}``.

    Args:
        path: the JSON-lines file.

    Returns:
        ``(ids, labels)`` in file order.

    Raises:
        DataFormatError: malformed JSON, missing or mistyped field, duplicate id.
    """
    ids, labels, seen = [], [], {}
    for lineno, record in _records(path):
        ids.append(_read_id(path, lineno, record, seen))
        labels.append(_read_labels(path, lineno, record, unique=False))
    return ids, labels


def read_predictions(path) -> tuple[list[str], list[list[str]], list[list[float]] | None]:
    """Read a predictions file of lines ``{"id": ..., "labels": [ranked], "scores": [...]}``.

    Args:
        path: the JSON-lines file.

    Returns:
        ``(ids, labels, scores)`` in file order; ``scores`` is None when no line has scores.

    Raises:
        DataFormatError: malformed JSON, missing or mistyped field, duplicate id, a label
            repeated within a ranking, scores on some lines only or of the wrong length.
    """
    ids, labels, scores, seen = [], [], [], {}
    has_scores = None
    for lineno, record in _records(path):
        ids.append(_read_id(path, lineno, record, seen))
        ranked = _read_labels(path, lineno, record, unique=True)
        labels.append(ranked)
        present = "scores" in record
        if has_scores is None:
            has_scores = present
        if present != has_scores:
            message = ("missing field: earlier lines have scores" if has_scores
                       else "unexpected field: earlier lines have no scores")
            raise DataFormatError(path, message, line=lineno, field="scores")
        if not present:
            continue
        value = record["scores"]
        if not isinstance(value, list) or not all(
            isinstance(x, (int, float)) and not isinstance(x, bool) and x == x for x in value
        ):
            raise DataFormatError(path, "expected a list of numbers (no NaN)", line=lineno,
                                  field="scores")
        if len(value) != len(ranked):
            raise DataFormatError(path, f"{len(value)} scores for {len(ranked)} labels",
                                  line=lineno, field="scores")
        scores.append([float(x) for x in value])
    return ids, labels, (scores if has_scores else None)


def _vocab_index(vocab) -> dict[str, int]:
    if isinstance(vocab, Mapping):
        return dict(vocab)
    index = {label: i for i, label in enumerate(vocab)}
    if len(index) != len(vocab):
        raise ValueError("the label vocabulary holds a label twice")
    return index


def labels_to_csr(labels: Sequence[Sequence[str]], vocab, source=None) -> sp.csr_matrix:
    """Binary CSR matrix (documents x labels) of label-string lists, e.g. a gold file.

    Args:
        labels: one list of label strings per document (repeats are merged).
        vocab: label strings in index order, or a mapping label -> index.
        source: file the lists come from (record i on line i + 1), for error messages.

    Raises:
        LcrError: a label not in the vocabulary (DataFormatError when ``source`` is given).
    """
    index = _vocab_index(vocab)
    indptr = np.zeros(len(labels) + 1, dtype=np.int64)
    cols = []
    for i, row in enumerate(labels):
        for label in row:
            j = index.get(label)
            if j is None:
                message = f"label {label!r} is not in the label vocabulary"
                if source is not None:
                    raise DataFormatError(source, message, line=i + 1, field="labels")
                raise LcrError(f"document {i}: {message}")
            cols.append(j)
        indptr[i + 1] = len(cols)
    data = np.ones(len(cols), dtype=np.float64)
    n_labels = max(index.values(), default=-1) + 1
    m = sp.csr_matrix((data, np.asarray(cols, dtype=np.int64), indptr),
                      shape=(len(labels), n_labels))
    m.sum_duplicates()
    m.data[:] = 1.0
    return m


def align_predictions(gold_ids: Sequence[str], vocab, pred_ids: Sequence[str],
                      pred_labels: Sequence[Sequence[str]],
                      pred_scores: Sequence[Sequence[float]] | None, k_max: int,
                      source=None) -> tuple[np.ndarray, np.ndarray | None, dict]:
    """Lay predictions out as ``topk`` / ``scores`` arrays in gold order.

    Args:
        gold_ids: document ids in gold order (N).
        vocab: label strings in index order, or a mapping label -> index.
        pred_ids: prediction ids in file order (record i is on line i + 1, as the readers
            guarantee).
        pred_labels: ranked label strings of each prediction.
        pred_scores: scores of each prediction, or None.
        k_max: width of the output arrays; longer rankings are cut.
        source: the predictions file, named in error messages.

    Returns:
        ``(topk, scores, report)``: int64 array (N x k_max) padded with -1 and holding -2 for
        labels not in the vocabulary; float array (N x k_max, NaN where padded) or None;
        report dict with ``n_docs``, ``n_predictions``, ``missing_predictions``,
        ``unknown_labels``, ``unknown_label_examples`` (up to 10), ``truncated_rankings``.

    Raises:
        LcrError: a prediction id absent from the gold, a duplicate id (in gold or
            predictions), a label repeated within a ranking (DataFormatError when ``source`` is
            given), mismatched input lengths.
    """
    k_max = _check_k(k_max)
    where = "predictions" if source is None else str(source)

    def fail(lineno: int, message: str, field: str):
        if source is not None:
            return DataFormatError(source, message, line=lineno, field=field)
        return LcrError(f"{where}, line {lineno}: {message}")

    if len(pred_labels) != len(pred_ids):
        raise ValueError("pred_ids and pred_labels differ in length")
    if pred_scores is not None and len(pred_scores) != len(pred_ids):
        raise ValueError("pred_ids and pred_scores differ in length")
    gold_pos: dict[str, int] = {}
    for i, doc_id in enumerate(gold_ids):
        if doc_id in gold_pos:
            raise LcrError(f"gold id {doc_id!r} appears twice")
        gold_pos[doc_id] = i
    index = _vocab_index(vocab)

    n = len(gold_ids)
    topk = np.full((n, k_max), PADDING, dtype=np.int64)
    scores = None if pred_scores is None else np.full((n, k_max), np.nan, dtype=np.float64)
    has_prediction = np.zeros(n, dtype=bool)
    unknown, truncated = 0, 0
    unknown_examples: set[str] = set()
    first_line: dict[str, int] = {}
    for p, (doc_id, ranked) in enumerate(zip(pred_ids, pred_labels)):
        lineno = p + 1
        if doc_id in first_line:
            raise fail(lineno, f"duplicate prediction id {doc_id!r} (first on line "
                               f"{first_line[doc_id]})", "id")
        first_line[doc_id] = lineno
        row = gold_pos.get(doc_id)
        if row is None:
            raise fail(lineno, f"prediction id {doc_id!r} is not in the gold data", "id")
        if len(set(ranked)) != len(ranked):
            repeated = sorted({x for x in ranked if list(ranked).count(x) > 1})
            raise fail(lineno, f"label(s) repeated within one ranking: {repeated}", "labels")
        if pred_scores is not None and len(pred_scores[p]) != len(ranked):
            raise fail(lineno, f"{len(pred_scores[p])} scores for {len(ranked)} labels", "scores")
        has_prediction[row] = True
        if len(ranked) > k_max:
            truncated += 1
        kept = list(ranked)[:k_max]
        cols = [index.get(label, UNKNOWN_LABEL) for label in kept]
        for label, col in zip(kept, cols):
            if col == UNKNOWN_LABEL:
                unknown += 1
                unknown_examples.add(label)
        topk[row, : len(cols)] = cols
        if scores is not None:
            scores[row, : len(cols)] = list(pred_scores[p])[:k_max]
    report = {
        "n_docs": n,
        "n_predictions": len(pred_ids),
        "missing_predictions": int(n - has_prediction.sum()),
        "unknown_labels": unknown,
        "unknown_label_examples": sorted(unknown_examples)[:10],
        "truncated_rankings": truncated,
    }
    return topk, scores, report
