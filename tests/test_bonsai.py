"""The bonsai baseline (TF-IDF + omikuji label trees) on the toy corpus."""

from __future__ import annotations

import json

import numpy as np
import pytest

from lcr.config import train_params
from lcr.errors import LcrError

omikuji = pytest.importorskip("omikuji")


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    from tests.toy_data import write_toy_store

    root = tmp_path_factory.mktemp("bonsai")
    write_toy_store(root / "data" / "toy", (120, 24, 24))
    return root


@pytest.mark.parametrize("algorithm", ["bonsai", "parabel"])
def test_bonsai_learns_the_toy_topics_and_saves_its_tree(toy, algorithm):
    from lcr.jobs import train_job
    from lcr.report.predictions import read_predictions

    out = toy / "runs" / algorithm
    params = train_params({"variant": "bonsai", "tree_algorithm": algorithm, "word_min_freq": 1, "tfidf_jobs": 1})
    result = train_job("toy", params, data_dir=toy / "data", output_dir=out, track=False, progress=False)
    assert result["run"]["variant"] == "bonsai" and result["tree_algorithm"] == algorithm
    assert result["eval"]["full"]["P@1"] > 0.9  # each toy topic has its own words
    assert result["dev"]["nDCG@5"] > 0.9 and set(result["eval"]) == {"full", "head", "tail"}
    ids, labels, scores = read_predictions(out / "predictions-test.jsonl")
    assert len(ids) == 24 and all(s == sorted(s, reverse=True) for s in scores)
    folder = out / "bonsai_model"
    assert (folder / "tree").is_dir() and json.loads((folder / "vocabulary.json").read_text())
    assert np.load(folder / "idf.npy", allow_pickle=False).ndim == 1
    assert omikuji.Model.load(str(folder / "tree")).n_trees == 3


def test_bonsai_ranks_like_a_full_sort_of_its_scores(toy):
    from lcr.datasets import store
    from lcr.models.baselines.bonsai import fit_tree, rank_tree
    from lcr.models.baselines.tfidf import split_texts

    vocab, _ = store.read_vocab(toy / "data" / "toy")
    _, texts, gold = split_texts(toy / "data" / "toy", "train", vocab, None)
    params = train_params({"variant": "bonsai", "word_min_freq": 1, "tfidf_jobs": 1})
    vectorizer, model = fit_tree(texts, gold, params, toy / "sorted")
    idx, scores = rank_tree(vectorizer, model, texts[:10], k=3)
    features = vectorizer.transform(texts[:10]).tocsr()
    for i in range(10):
        row = features[i]
        every = model.predict(list(zip(row.indices.tolist(), row.data.tolist())), beam_size=len(vocab), top_k=len(vocab))
        expected = [label for label, _ in sorted(every, key=lambda p: (-p[1], p[0]))][:3]
        assert [j for j in idx[i] if j >= 0] == expected[:len([j for j in idx[i] if j >= 0])]
        assert np.all(np.diff(scores[i][~np.isnan(scores[i])]) <= 0)


def test_bad_tree_settings_are_named():
    with pytest.raises(LcrError, match="bonsai needs tree_algorithm bonsai or parabel"):
        train_params({"variant": "bonsai", "tree_algorithm": "fasttext"})


def test_native_progress_bars_reach_a_log_file_as_one_line_each(toy, capfd):
    import os

    from lcr.datasets import store
    from lcr.models.baselines.bonsai import fit_tree, progress_bars_collapsed, redraws_collapsed
    from lcr.models.baselines.tfidf import split_texts

    bar = "Examples {} / 3 [{}] 33.33 % 10.0/s"
    redraws = "".join("\r" + bar.format(i, "=" * i + ">") for i in (1, 2, 3)) + "\n"
    assert redraws_collapsed(redraws + "plain line\n" + redraws.replace("\r", "\n")
                             + "\n1 / 2 [>-]\r2 / 2 [==]\n") == f"{bar.format(3, '===>')}\nplain line\n" \
        f"{bar.format(3, '===>')}\n2 / 2 [==]\n"
    capfd.readouterr()
    with progress_bars_collapsed():  # pytest's capture is a file, as a log file is: not a terminal
        os.write(2, b"bar 1 / 2 [>-]\rbar 2 / 2 [==]\rnative error text\n")
    assert capfd.readouterr().err == "bar 2 / 2 [==]\nnative error text\n"  # what is not a redraw is kept
    vocab, _ = store.read_vocab(toy / "data" / "toy")
    _, texts, gold = split_texts(toy / "data" / "toy", "train", vocab, None)
    fit_tree(texts, gold, train_params({"variant": "bonsai", "word_min_freq": 1, "tfidf_jobs": 1}), toy / "quiet")
    err = capfd.readouterr().err
    assert "\r" not in err and "Examples" in err  # each bar's last state, once
    assert err.count("Examples") <= 3 * 10  # one final state per bar, not one redraw per example
