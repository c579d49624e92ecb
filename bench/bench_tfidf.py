"""The TF-IDF baseline's fit against scikit-learn's one-vs-rest logistic regression, side by side.

On a prepared dataset (default Reuters-21578, all training documents), the project's TF-IDF
features are built once; then, each timed alone on the same features with one process:

* ``lcr tfidf (lbfgs)``: the baseline's per-label fit as ``lcr train --variant tfidf`` runs it
  (``tfidf_solver: lbfgs``, the default);
* ``lcr tfidf (liblinear)``: the same with ``tfidf_solver: liblinear`` (the earlier default);
* ``OneVsRest LogisticRegression (lbfgs)``: ``OneVsRestClassifier(LogisticRegression(C, lbfgs))``,
  what a user of scikit-learn would fit.

Each row reports the fit time, its ratio to the one-vs-rest fit and P@1 / nDCG@5 on the test
split. Writes the ``tfidf-fit`` section of ``bench/BENCHMARKS.md`` and ``bench/results/tfidf-fit.json``.

Usage::

    python -m bench.bench_tfidf [--dataset reuters21578] [--data-dir data]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from bench import report

REPO = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="reuters21578")
    parser.add_argument("--data-dir", type=Path, default=Path("data"))
    parser.add_argument("--no-report", action="store_true")
    args = parser.parse_args(argv)

    from sklearn.linear_model import LogisticRegression
    from sklearn.multiclass import OneVsRestClassifier

    from lcr.config import load_params
    from lcr.datasets import store
    from lcr.models.baselines import tfidf
    from lcr.report import metrics

    dataset_dir = args.data_dir / args.dataset
    params = load_params(REPO / "params.yaml").train(args.dataset, variant="tfidf",
                                                     settings={"max_train_docs": None, "tfidf_jobs": 1})
    vocab, _ = store.read_vocab(dataset_dir)
    _, train_texts, train_gold = tfidf.split_texts(dataset_dir, "train", vocab, None)
    _, test_texts, test_gold = tfidf.split_texts(dataset_dir, "test", vocab, None)
    started = time.perf_counter()
    vectorizer = tfidf.make_vectorizer(params)
    train_x = vectorizer.fit_transform(train_texts)
    features_seconds = time.perf_counter() - started
    k = 5

    def quality(weights, bias) -> dict:
        topk, scores = tfidf._rank(vectorizer, weights, bias, test_texts, k)
        full = metrics.evaluate(test_gold, topk, scores=scores)["full"]
        return {"P@1": round(full["P@1"], 4), "nDCG@5": round(full["nDCG@5"], 4)}

    rows = []
    gold = train_gold.tocsc()
    positives = np.diff(gold.indptr)
    fitted = np.flatnonzero((positives > 0) & (positives < gold.shape[0]))
    for solver in ("lbfgs", "liblinear"):
        started = time.perf_counter()
        weights = np.zeros((gold.shape[1], train_x.shape[1]), dtype=np.float32)
        bias = np.where(positives == gold.shape[0], np.inf, -np.inf).astype(np.float32)
        weights[fitted], bias[fitted] = tfidf._fit_labels(train_x, gold[:, fitted], params.tfidf_c, params.seed, solver)
        seconds = time.perf_counter() - started
        rows.append({"fit": f"lcr tfidf ({solver})", "seconds": round(seconds, 1), **quality(weights, bias)})
        print(rows[-1], file=sys.stderr, flush=True)
    started = time.perf_counter()
    ovr = OneVsRestClassifier(LogisticRegression(C=params.tfidf_c, solver="lbfgs"), n_jobs=1)
    ovr.fit(train_x[:, :], train_gold[:, fitted].toarray())
    seconds = time.perf_counter() - started
    weights = np.zeros((gold.shape[1], train_x.shape[1]), dtype=np.float32)
    bias = np.where(positives == gold.shape[0], np.inf, -np.inf).astype(np.float32)
    weights[fitted] = np.vstack([e.coef_ for e in ovr.estimators_])
    bias[fitted] = np.array([e.intercept_[0] for e in ovr.estimators_])
    rows.append({"fit": "OneVsRest LogisticRegression (lbfgs)", "seconds": round(seconds, 1), **quality(weights, bias)})
    reference = rows[-1]["seconds"]
    for row in rows:
        row["ratio"] = round(row["seconds"] / reference, 2) if reference else None
    record = {"dataset": args.dataset, "train_docs": train_x.shape[0], "features": train_x.shape[1],
              "labels_fitted": int(len(fitted)), "C": params.tfidf_c, "features_seconds": round(features_seconds, 1),
              "rows": rows, "commit": _commit(), "date": report.today(), "machine": report.machine()}
    print(json.dumps(record, indent=2))
    if not args.no_report:
        lines = [f"## TF-IDF baseline fit vs one-vs-rest LogisticRegression ({args.dataset})", "",
                 f"- Command: `{report.command_line('python -m bench.bench_tfidf', argv)}`",
                 f"- Commit: {record['commit']}; date: {record['date']}; machine: {record['machine']}",
                 f"- {record['train_docs']:,} training documents, {record['features']:,} TF-IDF features "
                 f"(params.yaml's tfidf settings), {record['labels_fitted']} labels fitted, C = {params.tfidf_c}, "
                 "one process each, the same features for every fit", "",
                 "| fit | seconds | x one-vs-rest | test P@1 | test nDCG@5 |", "|---|---:|---:|---:|---:|"]
        lines += [f"| {r['fit']} | {r['seconds']:.1f} | {r['ratio']:.2f} | {r['P@1']:.4f} | {r['nDCG@5']:.4f} |"
                  for r in rows]
        report.update_section("tfidf-fit", "\n".join(lines) + "\n")
        out = REPO / "bench" / "results" / "tfidf-fit.json"
        out.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    return 0


def _commit() -> str:
    from bench.bench_reuters import commit

    return commit()


if __name__ == "__main__":
    raise SystemExit(main())
