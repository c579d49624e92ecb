"""The normalised store: writing, reading, statistics, splits options, atomicity, export."""

import json

import pytest

from lcr.datasets import store
from lcr.datasets.document import Document
from lcr.errors import LcrError


def docs(prefix, n, labels=("a",)):
    return [Document(f"{prefix}{i}", f"word{i} text here", list(labels)) for i in range(n)]


def test_write_and_read_round_trip(tmp_path):
    out = tmp_path / "toy"
    stats = store.write_store(out, {"train": docs("tr", 5, ("b", "a")), "test": docs("te", 2, ("c",))},
                              label_names={"a": "Alpha"}, progress=False)
    assert stats["splits"]["train"] == {"documents": 5, "labels_present": 2, "avg_labels": 2.0, "avg_words": 3.0}
    assert stats["splits"]["dev"]["documents"] == 0
    assert stats["labels"] == 3
    ids, names = store.read_vocab(out)
    assert ids == ["a", "b", "c"] and names == ["Alpha", "b", "c"]
    matrix = store.label_matrix(out, "train")
    assert matrix.shape == (5, 3) and matrix.nnz == 10
    assert matrix[:, 2].sum() == 0
    assert json.loads((out / "stats.json").read_text()) == stats
    rows = list(store.iter_split(out, "test"))
    assert rows[0] == {"id": "te0", "text": "word0 text here", "labels": ["c"]}


def test_label_order_from_source(tmp_path):
    out = tmp_path / "toy"
    store.write_store(out, {"train": docs("x", 2, ("b",))}, label_order=["z", "b"], progress=False)
    assert store.read_vocab(out)[0] == ["z", "b"]


def test_label_not_in_order_is_refused(tmp_path):
    with pytest.raises(LcrError, match="missing from the label list"):
        store.write_store(tmp_path / "toy", {"train": docs("x", 2, ("b",))}, label_order=["z"], progress=False)


def test_dev_fraction_is_deterministic_and_disjoint(tmp_path):
    train = docs("d", 400)
    a = store.write_store(tmp_path / "a", {"train": train}, dev_fraction=0.25, progress=False)
    b = store.write_store(tmp_path / "b", {"train": train}, dev_fraction=0.25, progress=False)
    assert a["splits"] == b["splits"]
    n_dev = a["splits"]["dev"]["documents"]
    assert 60 < n_dev < 140 and a["splits"]["train"]["documents"] + n_dev == 400
    train_ids = {r["id"] for r in store.iter_split(tmp_path / "a", "train")}
    dev_ids = {r["id"] for r in store.iter_split(tmp_path / "a", "dev")}
    assert not train_ids & dev_ids


def test_merge_train_dev(tmp_path):
    stats = store.write_store(tmp_path / "m", {"train": docs("t", 3), "dev": docs("v", 2)},
                              merge_train_dev=True, progress=False)
    assert stats["splits"]["train"]["documents"] == 5
    assert stats["splits"]["dev"]["documents"] == 2
    assert stats["merge_train_dev"] is True


def test_train_standin_is_recorded(tmp_path):
    stats = store.write_store(tmp_path / "s", {"test": docs("v", 4), "dev": docs("t", 2)},
                              train_standin="test", info={"missing": ["text_train"]}, progress=False)
    assert stats["splits"]["train"]["documents"] == 4
    assert stats["train_standin"] == "test" and stats["standin_dev_fraction"] is None
    assert stats["missing"] == ["text_train"]


def test_a_dev_standin_keeps_a_held_out_dev_part(tmp_path):
    """dev standing in for train is divided: the held-out part never trains (no selection on training data)."""
    stats = store.write_store(tmp_path / "s", {"dev": docs("v", 200), "test": docs("t", 2)},
                              train_standin="dev", progress=False)
    train_ids = set(store.read_split(tmp_path / "s", "train")["id"])
    dev_ids = set(store.read_split(tmp_path / "s", "dev")["id"])
    assert not train_ids & dev_ids and len(train_ids | dev_ids) == 200
    assert stats["standin_dev_fraction"] == store.STANDIN_DEV_FRACTION
    assert 0.1 * 200 < len(dev_ids) < 0.3 * 200  # about 20%, by a hash of the id
    again = store.write_store(tmp_path / "t", {"dev": docs("v", 200), "test": docs("t", 2)},
                              train_standin="dev", dev_fraction=0.5, progress=False)
    assert again["standin_dev_fraction"] == 0.5
    assert set(store.read_split(tmp_path / "s", "dev")["id"]) <= set(store.read_split(tmp_path / "t", "dev")["id"])


def test_missing_train_without_standin_names_the_files(tmp_path):
    with pytest.raises(LcrError, match="text_train.*--train-standin"):
        store.write_store(tmp_path / "s", {"dev": docs("v", 4)}, info={"missing": ["text_train"]}, progress=False)


@pytest.mark.parametrize("bad, message", [
    (Document("y0", "  ", ["a"]), "empty text"),
    (Document("x1", "dup", ["a"]), "duplicate document id 'x1'"),
    (Document("y2", "t", ["a", "a"]), "listed twice"),
])
def test_bad_documents_are_refused_and_nothing_is_left(tmp_path, bad, message):
    out = tmp_path / "bad"

    def stream():
        yield from docs("x", 3)
        yield bad

    with pytest.raises(LcrError, match=message):
        store.write_store(out, {"train": stream()}, progress=False)
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []  # no temporary folder left behind


def test_failure_keeps_the_previous_store(tmp_path):
    out = tmp_path / "keep"
    store.write_store(out, {"train": docs("ok", 2)}, progress=False)

    def broken():
        yield from docs("new", 2)
        raise RuntimeError("parser died midway")

    with pytest.raises(RuntimeError):
        store.write_store(out, {"train": broken()}, progress=False)
    assert [r["id"] for r in store.iter_split(out, "train")] == ["ok0", "ok1"]


def test_export_jsonl(tmp_path):
    out = tmp_path / "e"
    store.write_store(out, {"train": docs("t", 3, ("a", "b"))}, progress=False)
    target = tmp_path / "train.jsonl"
    assert store.export_jsonl(out, "train", target) == 3
    lines = [json.loads(line) for line in target.read_text().splitlines()]
    assert lines[2] == {"id": "t2", "text": "word2 text here", "labels": ["a", "b"]}


def test_missing_store_tells_what_to_run(tmp_path):
    with pytest.raises(LcrError, match="lcr fetch nothing"):
        store.read_vocab(tmp_path / "nothing")
    with pytest.raises(LcrError, match="unknown split"):
        store.split_path(tmp_path, "validation")
