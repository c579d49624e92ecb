"""Custom corpus reader: JSONL/CSV/TSV, single file or split folder, field options, errors."""

from __future__ import annotations

import json

import pytest

from lcr.datasets.custom import read_custom
from lcr.errors import DataFormatError


def jsonl(path, records):
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in records), encoding="utf-8")
    return path


def read_all(parsed):
    return {split: [(d.id, d.text, d.labels) for d in docs] for split, docs in parsed.splits.items()}


def test_single_jsonl_file(tmp_path):
    path = jsonl(tmp_path / "corpus.jsonl", [
        {"id": "d1", "text": " Héllo world ", "labels": ["a", "b", "a"]},
        {"id": 7, "text": "no labels", "labels": []},
        {"text": "no id", "labels": ["c"]},
    ])
    (tmp_path / "corpus.jsonl").write_text(path.read_text(encoding="utf-8") + "\n", encoding="utf-8")  # blank line
    parsed = read_custom(path)
    assert (parsed.label_names, parsed.missing, parsed.label_order) == ({}, [], None)
    assert read_all(parsed) == {"train": [("d1", "Héllo world", ["a", "b"]), ("7", "no labels", []),
                                          ("train-3", "no id", ["c"])]}


def test_folder_with_csv_tsv_and_jsonl(tmp_path):
    (tmp_path / "train.csv").write_text(
        'id,body,tags\nx1,"Quoted, with comma\nand a newline",sport|politics\n'
        'x2,"He said ""hi""",sport\n', encoding="utf-8-sig")
    (tmp_path / "val.tsv").write_text("body\ttags\nfirst\tsport | tech|\nsecond\t\n", encoding="utf-8")
    jsonl(tmp_path / "test.jsonl", [{"body": "third", "tags": ["tech"]}])
    (tmp_path / "README.md").write_text("not data")
    parsed = read_custom(tmp_path, text_field="body", labels_field="tags")
    assert read_all(parsed) == {
        "train": [("x1", "Quoted, with comma\nand a newline", ["sport", "politics"]),
                  ("x2", 'He said "hi"', ["sport"])],
        "dev": [("dev-1", "first", ["sport", "tech"]), ("dev-2", "second", [])],
        "test": [("test-1", "third", ["tech"])],
    }


def test_custom_separator_and_id_field(tmp_path):
    path = tmp_path / "data.csv"
    path.write_text("key,text,labels\nk1,hello,a;b\n", encoding="utf-8")
    parsed = read_custom(path, id_field="key", label_sep=";")
    assert read_all(parsed) == {"train": [("k1", "hello", ["a", "b"])]}


def test_folder_without_train(tmp_path):
    jsonl(tmp_path / "dev.jsonl", [{"text": "t", "labels": ["a"]}])
    parsed = read_custom(tmp_path)
    assert parsed.missing == ["train.*"]
    assert set(parsed.splits) == {"dev"}


def test_folder_errors(tmp_path):
    with pytest.raises(DataFormatError, match="no such file or folder"):
        read_custom(tmp_path / "absent.jsonl")
    with pytest.raises(DataFormatError, match="no split file; expected train.jsonl"):
        read_custom(tmp_path)
    jsonl(tmp_path / "dev.jsonl", [])
    jsonl(tmp_path / "val.jsonl", [])
    with pytest.raises(DataFormatError, match="both dev.jsonl and val.jsonl would be the dev split"):
        read_custom(tmp_path)


@pytest.mark.parametrize("name", ["train.json", "train.txt", "corpus.xlsx"])
def test_unknown_extension(tmp_path, name):
    path = tmp_path / name
    path.write_text("{}")
    with pytest.raises(DataFormatError) as caught:
        read_custom(path if name == "corpus.xlsx" else tmp_path)
    assert str(caught.value).startswith(f"{path}: unknown extension '{path.suffix}'; use .jsonl")


def error(path) -> DataFormatError:
    parsed = read_custom(path)
    with pytest.raises(DataFormatError) as caught:
        for docs in parsed.splits.values():
            list(docs)
    return caught.value


GOOD = {"id": "ok", "text": "fine", "labels": ["a"]}


@pytest.mark.parametrize("bad, field, message", [
    ('{"id": "x", "text": "t", "labels": ["a"]', None, "malformed JSON"),
    ('"just a string"', None, "expected a JSON object per line"),
    ({"id": "x", "labels": ["a"]}, "text", "missing field 'text'"),
    ({"id": "x", "text": "t"}, "labels", "missing field 'labels'"),
    ({"id": "x", "text": "t", "labels": "a|b"}, "labels", "labels must be a list of non-empty strings"),
    ({"id": "x", "text": "t", "labels": ["a", 3]}, "labels", "labels must be a list of non-empty strings"),
    ({"id": "x", "text": "t", "labels": [" "]}, "labels", "labels must be a list of non-empty strings"),
    ({"id": "x", "text": "  ", "labels": ["a"]}, "text", "empty text"),
    ({"id": "x", "text": 12, "labels": ["a"]}, "text", "text must be a string"),
    ({"id": "", "text": "t", "labels": ["a"]}, "id", "id must be a non-empty string or an integer"),
])
def test_jsonl_errors(tmp_path, bad, field, message):
    path = jsonl(tmp_path / "train.jsonl", [GOOD, bad])
    err = error(path)
    assert (err.path, err.line, err.field) == (str(path), 2, field)
    assert message in str(err)


@pytest.mark.parametrize("content, line, field, message", [
    ("id,text\n1,hello\n", 1, "labels", "no column 'labels' in the header (columns: id, text)"),
    ("labels,id\na,1\n", 1, "text", "no column 'text' in the header"),
    ('id,text,labels\n1,"multi\nline",a\n2,,b\n', 4, "text", "empty text"),
    ("id,text,labels\n1,hello,a\n2,hello,a,extra\n", 3, None, "row has 4 cells but the header has 3"),
    ("id,text,labels\n1,hello\n", 2, None, "row has 2 cells but the header has 3"),
    ("id,text,labels\n,hello,a\n", 2, "id", "id must be a non-empty string"),
    ('id,text,labels\n1,"a"b,c\n', 2, None, "malformed CSV (',' expected after '\"')"),
    ('id,text,labels\n1,"unterminated,a\n2,b,c\n', 3, None, "malformed CSV (unexpected end of data)"),
])
def test_csv_errors(tmp_path, content, line, field, message):
    path = tmp_path / "train.csv"
    path.write_text(content, encoding="utf-8")
    err = error(path)
    assert (err.path, err.line, err.field) == (str(path), line, field)
    assert message in str(err)


def test_tsv_errors_and_encoding(tmp_path):
    path = tmp_path / "train.tsv"
    path.write_text("text\tlabels\nhello\ta\n\nhello\n", encoding="utf-8")  # blank line 3
    err = error(path)
    assert str(err).startswith(f"{path}, line 4: row has 1 cells but the header has 2")
    path.write_bytes(b"text\tlabels\nh\xe9llo\ta\n")
    assert "not UTF-8 text" in str(error(path))


def test_duplicate_ids_name_the_file_and_both_lines_or_keep_the_first(tmp_path):
    folder = tmp_path / "corpus"
    folder.mkdir()
    jsonl(folder / "train.jsonl", [{"id": "a", "text": "one", "labels": ["x"]},
                                   {"id": "b", "text": "two", "labels": ["y"]},
                                   {"id": "a", "text": "one again", "labels": ["x"]}])
    jsonl(folder / "test.jsonl", [{"id": "b", "text": "two in test", "labels": ["y"]},
                                  {"id": "c", "text": "three", "labels": ["x"]}])
    with pytest.raises(DataFormatError) as caught:
        list(read_custom(folder).splits["train"])
    message = str(caught.value)
    assert "train.jsonl, line 3" in message and "repeats train.jsonl line 1" in message and "'a'" in message
    across = tmp_path / "across"
    across.mkdir()
    jsonl(across / "train.jsonl", [{"id": "a", "text": "one", "labels": ["x"]}, {"id": "b", "text": "two", "labels": []}])
    jsonl(across / "test.jsonl", [{"id": "b", "text": "two in test", "labels": ["y"]}])
    parsed = read_custom(across)
    assert [d.id for d in parsed.splits["train"]] == ["a", "b"]
    with pytest.raises(DataFormatError, match=r"test.jsonl, line 1.*'b': line 1 repeats train.jsonl line 2"):
        list(parsed.splits["test"])

    parsed = read_custom(folder, on_duplicate="first")
    train, test = [d.id for d in parsed.splits["train"]], [d.id for d in parsed.splits["test"]]
    assert train == ["a", "b"] and test == ["c"]  # the first read is kept: b was read in train first
    assert parsed.duplicates == {"policy": "first", "dropped": 2}
    with pytest.raises(DataFormatError, match="on_duplicate"):
        read_custom(folder, on_duplicate="last")


def test_fetch_custom_records_the_dropped_duplicates(tmp_path):
    from lcr.datasets.fetch import fetch

    path = jsonl(tmp_path / "corpus.jsonl", [{"id": "a", "text": "one", "labels": ["x"]},
                                             {"id": "a", "text": "again", "labels": ["x"]},
                                             {"id": "b", "text": "two", "labels": ["y"]}])
    stats = fetch("custom", tmp_path / "data", source_path=path,
                  custom_options={"name": "mine", "on_duplicate": "first"}, progress=False)
    assert stats["duplicates"] == {"policy": "first", "dropped": 1}
    assert stats["splits"]["train"]["documents"] == 2
    saved = json.loads((tmp_path / "data" / "mine" / "stats.json").read_text())
    assert saved["duplicates"]["dropped"] == 1
