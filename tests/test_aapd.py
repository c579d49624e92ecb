"""AAPD reader (SGM release format): split pairs, missing files, line-alignment errors."""

from __future__ import annotations

import pytest

from lcr.datasets.aapd import read_aapd
from lcr.errors import DataFormatError


def write(folder, files):
    folder.mkdir(exist_ok=True)
    for name, lines in files.items():
        (folder / name).write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return folder


FULL = {
    "text_train": ["we study graphs , and more graphs", "a  quantum   channel"],
    "label_train": ["cs.dm math.co", "quant-ph cs.it quant-ph"],
    "text_val": ["deep nets for text"],
    "label_val": ["cs.cl"],
    "text_test": ["coding theory", "learning to rank"],
    "label_test": ["cs.it math.it", "cs.ir cs.lg"],
}


def test_all_splits(tmp_path):
    parsed = read_aapd(write(tmp_path, FULL))
    assert parsed.missing == []
    assert parsed.label_order is None
    assert set(parsed.splits) == {"train", "dev", "test"}
    train = parsed.splits["train"]
    assert [d.id for d in train] == ["train-00001", "train-00002"]
    assert train[1].text == "a quantum channel"
    assert train[1].labels == ["quant-ph", "cs.it"]  # duplicate code kept once, order kept
    assert [(d.id, d.labels) for d in parsed.splits["dev"]] == [("val-00001", ["cs.cl"])]
    assert [d.id for d in parsed.splits["test"]] == ["test-00001", "test-00002"]
    assert parsed.label_names == {code: code for code in
                                  ["cs.cl", "cs.dm", "cs.ir", "cs.it", "cs.lg", "math.co", "math.it", "quant-ph"]}


def test_missing_pairs(tmp_path):
    files = {name: lines for name, lines in FULL.items() if name not in ("text_train", "label_train", "label_val")}
    parsed = read_aapd(write(tmp_path, files))
    assert parsed.missing == ["text_train", "label_train", "label_val"]
    assert set(parsed.splits) == {"test"}


def test_no_final_newline_and_crlf(tmp_path):
    (tmp_path / "text_test").write_bytes(b"first doc\r\nsecond doc")
    (tmp_path / "label_test").write_bytes(b"cs.ai\r\ncs.lo cs.ai\r\n")
    docs = read_aapd(tmp_path).splits["test"]
    assert [(d.text, d.labels) for d in docs] == [("first doc", ["cs.ai"]), ("second doc", ["cs.lo", "cs.ai"])]


def test_missing_folder(tmp_path):
    with pytest.raises(DataFormatError, match="no such folder"):
        read_aapd(tmp_path / "absent")


def error(tmp_path, files) -> DataFormatError:
    with pytest.raises(DataFormatError) as caught:
        read_aapd(write(tmp_path, files))
    return caught.value


def test_label_file_shorter(tmp_path):
    err = error(tmp_path, {"text_test": ["a", "b", "c"], "label_test": ["x", "y"]})
    assert (err.path, err.line, err.field) == (str(tmp_path / "label_test"), 3, "labels")
    assert str(err).startswith(f"{tmp_path / 'label_test'}, line 3, field 'labels': "
                               "ends after 2 lines but text_test has 3")


def test_label_file_longer(tmp_path):
    err = error(tmp_path, {"text_val": ["a"], "label_val": ["x", "y"]})
    assert str(err).startswith(f"{tmp_path / 'label_val'}, line 2, field 'labels': has 2 lines but text_val only 1")


def test_empty_text_line(tmp_path):
    err = error(tmp_path, {"text_test": ["a", "  "], "label_test": ["x", "y"]})
    assert str(err) == (f"{tmp_path / 'text_test'}, line 2, field 'text': "
                        "empty abstract; every line needs a document's text")


def test_empty_label_line(tmp_path):
    err = error(tmp_path, {"text_train": ["a", "b"], "label_train": ["", "y"]})
    assert str(err).startswith(f"{tmp_path / 'label_train'}, line 1, field 'labels': no labels")


def test_real_val_and_test(mirror):
    folder = mirror / "aapd"
    if not (folder / "text_test").exists():
        pytest.skip(f"{folder} has no AAPD files")
    parsed = read_aapd(folder)
    assert set(parsed.splits) == {"dev", "test"}
    assert len(parsed.splits["dev"]) == len(parsed.splits["test"]) == 1000
    labels = {label for docs in parsed.splits.values() for doc in docs for label in doc.labels}
    assert len(labels) == len(parsed.label_names) == 54
    assert parsed.missing == ["text_train", "label_train"]
    assert parsed.splits["test"][0].id == "test-00001"
