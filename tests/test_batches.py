"""Length-bucketed batches, sharding across processes, padding."""

import numpy as np
import scipy.sparse as sp

from lcr.datasets.batches import EncodedSplit, collate, length_bucketed_batches, shard


def test_batches_cover_every_document_once_and_group_lengths():
    rng = np.random.default_rng(0)
    lengths = rng.integers(5, 500, size=1000)
    batches = length_bucketed_batches(lengths, 16, shuffle=True, seed=1, epoch=0, bucket_batches=10)
    flat = np.concatenate(batches)
    assert sorted(flat.tolist()) == list(range(1000))
    # Inside a bucket documents are sorted by length: a batch's spread is far below the global one.
    spreads = [lengths[b].max() - lengths[b].min() for b in batches]
    assert np.median(spreads) < 0.25 * (lengths.max() - lengths.min())


def test_batch_order_depends_only_on_seed_and_epoch():
    lengths = np.arange(100)
    a = length_bucketed_batches(lengths, 8, shuffle=True, seed=3, epoch=2)
    b = length_bucketed_batches(lengths, 8, shuffle=True, seed=3, epoch=2)
    c = length_bucketed_batches(lengths, 8, shuffle=True, seed=3, epoch=3)
    assert all((x == y).all() for x, y in zip(a, b))
    assert any(len(x) != len(y) or (x != y).any() for x, y in zip(a, c))


def test_evaluation_batches_are_sorted_and_complete():
    lengths = np.array([5, 1, 4, 2, 3])
    batches = length_bucketed_batches(lengths, 2, shuffle=False)
    assert [b.tolist() for b in batches] == [[1, 3], [4, 2], [0]]


def test_shard_without_padding_counts_nothing_twice():
    parts = [shard(np.arange(10), r, 3, pad=False) for r in range(3)]
    assert sorted(np.concatenate(parts).tolist()) == list(range(10))
    padded = [shard(np.arange(10), r, 3, pad=True) for r in range(3)]
    assert {len(p) for p in padded} == {4} and sorted(set(np.concatenate(padded).tolist())) == list(range(10))
    # Fewer documents than processes: every process still gets one.
    assert [shard(np.array([7]), r, 3, pad=True).tolist() for r in range(3)] == [[7], [7], [7]]


def test_collate_pads_and_masks():
    split = EncodedSplit(["a", "b"], [np.array([0, 7, 8, 2]), np.array([0, 9, 2])],
                         sp.csr_matrix(np.array([[1, 0, 1], [0, 1, 0]], dtype=np.float32)))
    batch = collate(split, np.array([1, 0]), pad_token_id=1)
    assert batch["input_ids"].tolist() == [[0, 9, 2, 1], [0, 7, 8, 2]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1, 0], [1, 1, 1, 1]]
    assert batch["labels"].tolist() == [[0, 1, 0], [1, 0, 1]]


def test_iter_texts_streams_the_kept_texts_of_read_texts_in_order(tmp_path):
    import pytest

    from lcr.datasets.batches import iter_texts, read_texts
    from lcr.datasets import store
    from lcr.errors import LcrError
    from tests.toy_data import toy_documents

    docs = toy_documents(23, 0)
    for i, doc in enumerate(docs):
        doc.meta = {"venue": f"v{i}"}
    store.write_store(tmp_path / "toy", {"train": docs}, info={"with_meta": True}, progress=False)

    def compose(text, meta):
        return f"{meta['venue']} {text}"

    whole, _ = read_texts(tmp_path / "toy", "train", compose=compose)
    assert whole[3] == f"v3 {docs[3].text}"
    chunks = list(iter_texts(tmp_path / "toy", "train", compose=compose, chunk=5))
    assert [len(c) for c in chunks] == [5, 5, 5, 5, 3] and sum(chunks, []) == whole
    keep = np.array([0, 4, 5, 6, 17, 22])  # chunk edges on both sides, a chunk with none kept
    chunks = list(iter_texts(tmp_path / "toy", "train", compose=compose, keep=keep, chunk=5))
    assert [len(c) for c in chunks] == [2, 2, 0, 1, 1] and sum(chunks, []) == [whole[i] for i in keep]
    assert sum(iter_texts(tmp_path / "toy", "train"), []) == [d.text for d in docs]

    store.write_store(tmp_path / "plain", {"train": docs[:3]}, progress=False)
    with pytest.raises(LcrError, match="meta"):
        next(iter_texts(tmp_path / "plain", "train", compose=compose))
