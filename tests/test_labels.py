"""Label artifacts: statistics against dense references, subsets, files, prepare, atomicity.

``prepare`` runs on a store from ``bench/synthetic.py``; that generator's own tests are in
``tests/test_bench.py`` with the other tests of ``bench/``.
"""

import json

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from bench.synthetic import SHAPES, generate_store
from lcr import labels
from lcr.datasets import store
from lcr.datasets.document import Document
from lcr.errors import LcrError


def random_labels(n_docs=60, n_labels=15, density=0.25, seed=0):
    rng = np.random.default_rng(seed)
    dense = (rng.random((n_docs, n_labels)) < density).astype(np.float32)
    dense[:, 3] = 0  # a label that never occurs
    return dense


# --------------------------------------------------------------------------------------------
# Statistics


def test_cooccurrence_matches_dense_product():
    dense = random_labels()
    expected = dense.T.astype(np.int64) @ dense.astype(np.int64)
    np.fill_diagonal(expected, 0)
    counts = labels.cooccurrence(sp.csr_matrix(dense))
    assert isinstance(counts, sp.csr_matrix)
    assert counts.dtype == np.int32 and counts.indices.dtype == np.int32
    np.testing.assert_array_equal(counts.toarray(), expected)
    assert counts.has_sorted_indices
    assert all((np.diff(counts.indices[a:b]) > 0).all() for a, b in zip(counts.indptr[:-1], counts.indptr[1:]))
    assert (counts.data != 0).all()  # explicit zeros (the diagonal) eliminated
    assert counts.diagonal().sum() == 0
    assert (counts != counts.T).nnz == 0


def test_statistics_read_any_nonzero_as_one_label():
    # A duplicate entry and a value of 2 each still mean "the document has the label" once.
    Y = sp.coo_matrix((np.array([1, 1, 2, 1]), (np.array([0, 0, 1, 1]), np.array([0, 1, 0, 0]))), shape=(2, 3))
    np.testing.assert_array_equal(labels.label_frequencies(Y), [2, 1, 0])
    np.testing.assert_array_equal(labels.cooccurrence(Y).toarray(), [[0, 1, 0], [1, 0, 0], [0, 0, 0]])
    explicit_zero = sp.csr_matrix((np.array([1.0, 0.0]), np.array([0, 1]), np.array([0, 2])), shape=(1, 2))
    np.testing.assert_array_equal(labels.label_frequencies(explicit_zero), [1, 0])


def test_label_frequencies():
    dense = random_labels()
    freq = labels.label_frequencies(sp.csr_matrix(dense))
    assert freq.dtype == np.int64
    np.testing.assert_array_equal(freq, dense.sum(axis=0))


def test_conditional_cooccurrence_by_hand():
    # Docs: {0, 1}, {0, 1, 2}, {0}, {} over labels 0, 1, 2, 3 (label 3 never occurs).
    Y = sp.csr_matrix(np.array([[1, 1, 0, 0], [1, 1, 1, 0], [1, 0, 0, 0], [0, 0, 0, 0]]))
    freq = labels.label_frequencies(Y)
    np.testing.assert_array_equal(freq, [3, 2, 1, 0])
    counts = labels.cooccurrence(Y)
    np.testing.assert_array_equal(counts.toarray(), [[0, 2, 1, 0], [2, 0, 1, 0], [1, 1, 0, 0], [0, 0, 0, 0]])
    conditional = labels.conditional_cooccurrence(counts, freq)
    assert conditional.dtype == np.float32
    expected = np.array([[0, 2 / 3, 1 / 3, 0], [1, 0, 1 / 2, 0], [1, 1, 0, 0], [0, 0, 0, 0]], dtype=np.float32)
    np.testing.assert_allclose(conditional.toarray(), expected, rtol=1e-6)
    assert conditional.has_sorted_indices


def test_conditional_rows_of_unseen_labels_stay_empty():
    # An inconsistent input (counts in the row of a label with frequency 0) must not divide by 0.
    counts = sp.csr_matrix(np.array([[0, 2], [2, 0]], dtype=np.int32))
    conditional = labels.conditional_cooccurrence(counts, np.array([0, 4]))
    np.testing.assert_allclose(conditional.toarray(), [[0, 0], [0.5, 0]])
    assert conditional.nnz == 1 and counts.nnz == 2  # the input is untouched


def test_frequency_rank_breaks_ties_by_label_index():
    freq = np.array([3, 5, 3, 0, 5])
    np.testing.assert_array_equal(labels.frequency_rank(freq), [2, 0, 3, 4, 1])
    assert labels.frequency_rank(np.array([], dtype=np.int64)).shape == (0,)


@pytest.mark.parametrize("n_labels, fraction, expected", [
    (30, 0.1, 3),          # 0.1 * 30 = 3.0000000000000004 in floating point: still 3
    (54, 0.1, 6),          # ceil(5.4)
    (17_963, 0.1, 1_797),  # PubMed
    (10, 0.0, 0),
    (10, 1.0, 10),
])
def test_head_label_mask_size(n_labels, fraction, expected):
    freq = np.random.default_rng(1).integers(0, 50, size=n_labels)
    mask = labels.head_label_mask(freq, fraction)
    assert mask.dtype == bool and mask.sum() == expected
    rank = labels.frequency_rank(freq)
    assert (rank[mask] < expected).all() and (rank[~mask] >= expected).all()


@pytest.mark.parametrize("fraction", [-0.1, 1.5, float("nan")])
def test_head_fraction_out_of_range(fraction):
    with pytest.raises(LcrError, match="head fraction"):
        labels.head_label_mask(np.array([1, 2]), fraction)


def test_subset_masks_hand_made():
    head = np.array([True, True, True, False, False, False])  # labels 0-2 are head labels
    rows = [
        [],              # no label: neither subset
        [0, 1],          # only head labels (two): head and tail
        [0, 1, 4],       # exactly two head labels + a tail label: tail only
        [0, 1, 2, 5],    # three head labels + a tail label: neither
        [3, 4],          # only tail labels: tail
        [0, 1, 2],       # three head labels, all head: head only
    ]
    dense = np.zeros((len(rows), 6))
    for i, row in enumerate(rows):
        dense[i, row] = 1
    masks = labels.subset_masks(sp.csr_matrix(dense), head)
    assert masks["head"].dtype == bool and masks["tail"].dtype == bool
    np.testing.assert_array_equal(masks["head"], [False, True, False, False, False, True])
    np.testing.assert_array_equal(masks["tail"], [False, True, True, False, True, False])


def test_subset_masks_check_the_label_count():
    with pytest.raises(ValueError, match="head_mask"):
        labels.subset_masks(sp.csr_matrix((2, 3)), np.array([True, False]))


def test_distribution_table():
    table = labels.distribution_table(np.array([3, 5, 3, 0]), ["a", "b", "c", "d"])
    assert list(table.columns) == ["rank", "label", "frequency"]
    assert table["rank"].tolist() == [1, 2, 3, 4]
    assert table["label"].tolist() == ["b", "a", "c", "d"]
    assert table["frequency"].tolist() == [5, 3, 3, 0]


# --------------------------------------------------------------------------------------------
# Files


def test_save_npz_is_read_by_scipy(tmp_path):
    counts = labels.cooccurrence(sp.csr_matrix(random_labels()))
    labels.save_npz(tmp_path / "m.npz", counts)
    sp.save_npz(tmp_path / "reference.npz", counts)
    loaded = sp.load_npz(tmp_path / "m.npz")
    assert isinstance(loaded, sp.csr_matrix) and loaded.dtype == np.int32
    np.testing.assert_array_equal(loaded.toarray(), counts.toarray())
    ours, theirs = np.load(tmp_path / "m.npz"), np.load(tmp_path / "reference.npz")
    assert sorted(ours.files) == sorted(theirs.files)
    for key in theirs.files:
        assert ours[key].dtype == theirs[key].dtype and ours[key].shape == theirs[key].shape
        np.testing.assert_array_equal(ours[key], theirs[key])


def make_artifacts(vocab=("a", "NA", "c, d", "null")):
    Y = sp.csr_matrix(np.array([[1, 1, 0, 0], [1, 0, 1, 0], [1, 1, 1, 0]]))
    freq = labels.label_frequencies(Y)
    counts = labels.cooccurrence(Y)
    return labels.LabelArtifacts(
        vocab=list(vocab), names=["Alpha", "Not available", "c, \"d\"", ""], freq=freq,
        rank=labels.frequency_rank(freq), cooc=counts, cooc_conditional=labels.conditional_cooccurrence(counts, freq),
        head_mask=labels.head_label_mask(freq, 0.25), n_train=3, head_fraction=0.25,
        subset_sizes={"test": {"documents": 2, "head": 1, "tail": 2}},
        subset_ids={"test": {"head": ["x"], "tail": ["x", "y"]}})


def assert_same(a, b):
    assert a.vocab == b.vocab and a.names == b.names
    for name in ("freq", "rank", "head_mask"):
        left, right = getattr(a, name), getattr(b, name)
        assert left.dtype == right.dtype, name
        np.testing.assert_array_equal(left, right)
    for name in ("cooc", "cooc_conditional"):
        left, right = getattr(a, name), getattr(b, name)
        assert isinstance(right, sp.csr_matrix) and left.dtype == right.dtype, name
        assert left.shape == right.shape and (left != right).nnz == 0, name
    assert (a.n_train, a.head_fraction, a.subset_sizes, a.subset_ids) == \
        (b.n_train, b.head_fraction, b.subset_sizes, b.subset_ids)


def test_save_load_round_trip(tmp_path):
    artifacts = make_artifacts()
    folder = artifacts.save(tmp_path / "toy" / "labels")
    assert sorted(p.name for p in folder.iterdir()) == sorted([
        "frequencies.csv", "cooccurrence.npz", "cooccurrence_conditional.npz", "subsets.json",
        "label_distribution.csv", "label_distribution.png"])
    loaded = labels.LabelArtifacts.load(folder)
    assert_same(artifacts, loaded)  # "NA" and "null" stay label ids, not missing values

    table = pd.read_csv(folder / "frequencies.csv", keep_default_na=False)
    assert list(table.columns) == ["index", "label", "name", "frequency", "rank", "head"]
    distribution = pd.read_csv(folder / "label_distribution.csv")
    assert list(distribution.columns) == ["rank", "frequency"]
    assert distribution["frequency"].tolist() == sorted(artifacts.freq.tolist(), reverse=True)
    summary = json.loads((folder / "subsets.json").read_text())
    assert summary["n_head_labels"] == 1 and summary["head_fraction"] == 0.25
    assert summary["sizes"]["test"] == {"documents": 2, "head": 1, "tail": 2}
    assert summary["ids"]["test"]["tail"] == ["x", "y"]


def test_load_names_a_missing_file(tmp_path):
    folder = make_artifacts().save(tmp_path / "toy" / "labels")
    (folder / "cooccurrence.npz").unlink()
    with pytest.raises(LcrError, match="cooccurrence.npz is missing.*lcr prepare toy"):
        labels.LabelArtifacts.load(folder)


# --------------------------------------------------------------------------------------------
# prepare


@pytest.fixture
def tiny_store(tmp_path):
    folder = tmp_path / "data" / "tiny"
    generate_store(folder, SHAPES["tiny"], seed=3)
    return folder


def test_prepare_on_a_synthetic_store(tiny_store):
    artifacts = labels.prepare(tiny_store, head_fraction=0.1, show_progress=False)
    vocab, _ = store.read_vocab(tiny_store)
    Y = store.label_matrix(tiny_store, "train", vocab).toarray()
    assert artifacts.vocab == vocab and artifacts.n_train == SHAPES["tiny"].n_train
    np.testing.assert_array_equal(artifacts.freq, Y.sum(axis=0))
    expected = Y.T.astype(np.int64) @ Y.astype(np.int64)
    np.fill_diagonal(expected, 0)
    np.testing.assert_array_equal(artifacts.cooc.toarray(), expected)
    assert artifacts.n_head == 3  # ceil(0.1 * 30)

    for split in ("dev", "test"):
        masks = labels.subset_masks(store.label_matrix(tiny_store, split, vocab), artifacts.head_mask)
        ids = np.array(store.read_split(tiny_store, split, columns=["id"]).column("id").to_pylist())
        assert artifacts.subset_sizes[split] == {
            "documents": len(ids), "head": int(masks["head"].sum()), "tail": int(masks["tail"].sum())}
        assert artifacts.subset_ids[split] == {"head": ids[masks["head"]].tolist(), "tail": ids[masks["tail"]].tolist()}

    assert_same(artifacts, labels.LabelArtifacts.load(tiny_store / "labels"))
    png = (tiny_store / "labels" / "label_distribution.png").read_bytes()
    assert png.startswith(b"\x89PNG") and len(png) > 1000


def test_prepare_without_train_split_asks_for_fetch(tmp_path):
    folder = tmp_path / "data" / "empty"
    folder.mkdir(parents=True)
    with pytest.raises(LcrError, match="lcr fetch empty"):
        labels.prepare(folder, show_progress=False)
    assert not (folder / "labels").exists()


def test_prepare_skips_absent_and_handles_empty_eval_splits(tmp_path):
    folder = tmp_path / "data" / "toy"
    train = [Document("t1", "one", ["NA", "b"]), Document("t2", "two", ["NA"]), Document("t3", "three", ["c"])]
    store.write_store(folder, {"train": train, "test": [Document("e1", "x", ["b"])]}, progress=False)
    (folder / "test.parquet").unlink()  # dev.parquet stays, with no documents
    artifacts = labels.prepare(folder, head_fraction=0.34, show_progress=False)
    assert artifacts.vocab == ["NA", "b", "c"] and artifacts.freq.tolist() == [2, 1, 1]
    assert artifacts.subset_sizes == {"dev": {"documents": 0, "head": 0, "tail": 0}}
    assert_same(artifacts, labels.LabelArtifacts.load(folder / "labels"))


def test_failing_prepare_leaves_no_partial_folder(tiny_store, monkeypatch):
    def broken_plot(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(labels, "plot_label_distribution", broken_plot)
    with pytest.raises(RuntimeError, match="disk full"):
        labels.prepare(tiny_store, show_progress=False)
    assert not (tiny_store / "labels").exists()
    assert not [p.name for p in tiny_store.iterdir() if p.name.startswith(".")]  # no temporary folders


def test_failing_prepare_keeps_the_previous_folder(tiny_store, monkeypatch):
    labels.prepare(tiny_store, show_progress=False)
    before = {p.name: p.read_bytes() for p in (tiny_store / "labels").iterdir()}
    monkeypatch.setattr(labels, "plot_label_distribution", lambda *a, **k: (_ for _ in ()).throw(OSError("boom")))
    with pytest.raises(OSError):
        labels.prepare(tiny_store, head_fraction=0.5, show_progress=False)
    assert {p.name: p.read_bytes() for p in (tiny_store / "labels").iterdir()} == before


def test_prepare_rejects_unknown_labels(tiny_store):
    vocab = (tiny_store / "label_vocab.tsv").read_text().splitlines()
    (tiny_store / "label_vocab.tsv").write_text("\n".join(vocab[:-5]) + "\n")
    with pytest.raises(LcrError, match="not in the vocabulary"):
        labels.prepare(tiny_store, show_progress=False)
    assert not (tiny_store / "labels").exists()
