"""MATCH reader (MAG-CS / PubMed release): detokenising, ids, metadata, laziness, errors."""

from __future__ import annotations

import inspect
import json

import pytest

from lcr.datasets.match import read_match
from lcr.errors import DataFormatError

VOCABULARY = ["engineered", "annexin", "a5", "variants", "have", "impaired"]


def record(**fields):
    base = {"paper": "2805510628", "venue": "UbiComp", "author": ["1", "2"], "reference": ["3"],
            "text": "0 1 2 3", "label": ["L1"]}
    base.update(fields)
    return {key: value for key, value in base.items() if value is not None}


def write_release(folder, splits=None, vocabulary=VOCABULARY, labels=(("L1", "batch_file"), ("L2", "star_height"))):
    folder.mkdir(exist_ok=True)
    if splits is None:
        splits = {
            "train": [record(), record(paper="11", text="4  5 0", label=["L2", "L1", "L2"])],
            "dev": [record(paper="12", PMID="28939614", text="3")],
            "test": [record(paper="13", label=[])],
        }
    for split, records in splits.items():
        lines = [r if isinstance(r, str) else json.dumps(r) for r in records]
        (folder / f"{split}.json").write_text("\n".join(lines) + "\n", encoding="utf-8")
    if vocabulary is not None:
        (folder / "vocabulary.txt").write_text("".join(f"{i}\t{w}\n" for i, w in enumerate(vocabulary)))
    if labels is not None:
        (folder / "id2label.txt").write_text("".join(f"{i}\t{n}\n" for i, n in labels))
    return folder


def test_release(tmp_path):
    folder = write_release(tmp_path / "MAG")
    (folder / "taxonomy.txt").write_text("L1 L2\n")
    parsed = read_match(folder)
    assert parsed.missing == []
    assert parsed.label_order == ["L1", "L2"]
    assert parsed.label_names == {"L1": "batch_file", "L2": "star_height"}
    assert all(inspect.isgenerator(docs) for docs in parsed.splits.values())
    train = list(parsed.splits["train"])
    assert [(d.id, d.text, d.labels) for d in train] == [
        ("2805510628", "engineered annexin a5 variants", ["L1"]),
        ("11", "have impaired engineered", ["L2", "L1"]),
    ]
    assert train[0].meta == {"venue": "UbiComp", "author": ["1", "2"], "reference": ["3"]}
    dev = list(parsed.splits["dev"])
    assert (dev[0].id, dev[0].text) == ("28939614", "variants")  # PMID wins over paper
    assert list(parsed.splits["test"])[0].labels == []


def test_missing_files_and_names_with_spaces(tmp_path):
    folder = write_release(tmp_path / "MeSH", splits={"test": [record(label=["D048429"])]},
                           labels=(("D048429", "Cell Size"),))
    parsed = read_match(folder)
    assert parsed.missing == ["train.json", "dev.json"]
    assert set(parsed.splits) == {"test"}
    assert parsed.label_names == {"D048429": "Cell Size"}
    (folder / "id2label.txt").unlink()
    parsed = read_match(folder)
    assert parsed.missing == ["train.json", "dev.json", "id2label.txt"]
    assert (parsed.label_names, parsed.label_order) == ({}, None)
    assert [d.labels for d in parsed.splits["test"]] == [["D048429"]]


def test_vocabulary_with_gaps(tmp_path):
    folder = write_release(tmp_path, splits={"test": [record(text="7 2"), record(paper="x", text="1")]},
                           vocabulary=None)
    (folder / "vocabulary.txt").write_text("7\tseven\n2\ttwo\n\n")
    docs = read_match(folder).splits["test"]
    assert next(docs).text == "seven two"
    with pytest.raises(DataFormatError, match="word id 1 is not in vocabulary.txt"):
        next(docs)


def test_missing_folder_and_vocabulary(tmp_path):
    with pytest.raises(DataFormatError, match="no such folder"):
        read_match(tmp_path / "absent")
    folder = write_release(tmp_path / "MAG", vocabulary=None)
    with pytest.raises(DataFormatError, match="vocabulary.txt: missing; it maps the word ids"):
        read_match(folder)


def test_malformed_vocabulary_and_labels(tmp_path):
    folder = write_release(tmp_path / "MAG")
    (folder / "vocabulary.txt").write_text("0\tengineered\nannexin\n")
    with pytest.raises(DataFormatError, match=r"vocabulary.txt, line 2: expected '<word id><TAB><word>'"):
        read_match(folder)
    folder = write_release(tmp_path / "MeSH", labels=(("L1", "a"), ("L1", "b")))
    with pytest.raises(DataFormatError, match=r"id2label.txt, line 2: label 'L1' is listed twice"):
        read_match(folder)


@pytest.mark.parametrize("line, field, message", [
    ('{"paper": "1", "text": "0 1", "label": ["L1"]', None, "malformed JSON"),
    ('["not", "an", "object"]', None, "expected a JSON object per line"),
    (record(text=None), "text", "missing field 'text'"),
    (record(label=None), "label", "missing field 'label'"),
    (record(label="L1"), "label", "must be a list of label id strings"),
    (record(label=["L9"]), "label", "label 'L9' is not in id2label.txt"),
    (record(text="0 99 1"), "text", "word id 99 is not in vocabulary.txt"),
    (record(text="0 a5 1"), "text", "token 'a5' is not a word id"),
    (record(text="0 -1"), "text", "token '-1' is not a word id"),
    (record(text="   "), "text", "empty text"),
    (record(text=[0, 1]), "text", "must be a string of space-separated word ids"),
    (record(paper=None), "paper", "neither 'PMID' nor 'paper'"),
])
def test_record_errors(tmp_path, line, field, message):
    folder = write_release(tmp_path, splits={"train": [record(), line]})
    docs = read_match(folder).splits["train"]  # nothing is parsed before iteration
    with pytest.raises(DataFormatError) as caught:
        list(docs)
    err = caught.value
    assert (err.path, err.line, err.field) == (str(folder / "train.json"), 2, field)
    assert message in str(err)
    assert str(err).startswith(f"{folder / 'train.json'}, line 2")
