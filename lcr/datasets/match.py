"""Reader for the MATCH release (Zhang et al., WWW 2021): MAG-CS (``MAG/``) and PubMed (``MeSH/``).

Each split is a JSON-lines file whose ``text`` is a sequence of integer word ids (the release
ships no plain text for copyright reasons); ``vocabulary.txt`` maps the ids back to words.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from lcr.datasets.document import Document
from lcr.datasets.parsed import ParsedDataset
from lcr.errors import DataFormatError
from lcr.jsonl import read_json_lines

SPLIT_FILES = {"train": "train.json", "dev": "dev.json", "test": "test.json"}
VOCABULARY_FILE = "vocabulary.txt"
LABELS_FILE = "id2label.txt"


def read_match(directory: Path) -> ParsedDataset:
    """Read a MATCH dataset folder (``MAG/`` or ``MeSH/``) lazily.

    The vocabulary and label list are read at once; the documents are parsed only while the
    returned generators are iterated (PubMed's train split has 718,837 documents), so errors
    in a split file surface during iteration.

    Args:
        directory: the folder holding ``train.json``, ``dev.json``, ``test.json``,
            ``vocabulary.txt`` and ``id2label.txt`` (``taxonomy.txt`` is not needed).

    Returns:
        One generator per split file present, yielding documents whose id is ``PMID`` when
        present (PubMed), else ``paper``; text is the detokenised word sequence; meta holds
        ``venue``, ``author`` and ``reference``. ``label_names`` and ``label_order`` come from
        ``id2label.txt`` (empty and None when it is absent, which is then listed in ``missing``
        along with any absent split file).

    Raises:
        DataFormatError: the folder or ``vocabulary.txt`` is missing, a vocabulary or label
            line is malformed, or (during iteration) a record is malformed: bad JSON, missing
            ``text``/``label``, a token that is not a word id, or a label not in ``id2label.txt``.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise DataFormatError(directory, "no such folder; expected a MATCH release folder (MAG/ or MeSH/) "
                                         "holding train.json, dev.json, test.json and vocabulary.txt")
    missing = [name for name in SPLIT_FILES.values() if not (directory / name).is_file()]
    words = _read_vocabulary(directory / VOCABULARY_FILE)
    label_names: dict[str, str] = {}
    label_order = None
    if (directory / LABELS_FILE).is_file():
        label_names = _read_label_names(directory / LABELS_FILE)
        label_order = list(label_names)
    else:
        missing.append(LABELS_FILE)
    known = set(label_names) if label_order is not None else None
    splits = {split: _documents(directory / name, words, known)
              for split, name in SPLIT_FILES.items() if (directory / name).is_file()}
    return ParsedDataset(splits=splits, label_names=label_names, missing=missing, label_order=label_order)


def _tab_fields(line: str) -> list[str]:
    """``key<TAB>value``; a line without a tab is split at its first whitespace instead."""
    line = line.rstrip("\r\n")
    return line.split("\t", 1) if "\t" in line else line.split(None, 1)


def _read_vocabulary(path: Path) -> list[str | None]:
    """Words indexed by id (a list: lookups by position are the fastest in the hot loop)."""
    if not path.is_file():
        raise DataFormatError(path, "missing; it maps the word ids in the 'text' fields back to words "
                                    "(lines '<word id><TAB><word>'), so the release cannot be read without it")
    entries: dict[int, str] = {}
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            fields = _tab_fields(line)
            if len(fields) != 2 or not fields[0].isdigit() or not fields[1]:
                raise DataFormatError(path, f"expected '<word id><TAB><word>', got {line.rstrip()!r}", line=number)
            entries[int(fields[0])] = fields[1]
    words: list[str | None] = [None] * (max(entries, default=-1) + 1)
    for index, word in entries.items():
        words[index] = word
    return words


def _read_label_names(path: Path) -> dict[str, str]:
    """Label id -> name, in file order (the label vocabulary order)."""
    names: dict[str, str] = {}
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            fields = _tab_fields(line)
            label = fields[0].strip()
            if label in names:
                raise DataFormatError(path, f"label '{label}' is listed twice", line=number)
            names[label] = fields[1].strip() if len(fields) == 2 and fields[1].strip() else label
    return names


def _documents(path: Path, words: list[str | None], known: set[str] | None) -> Iterator[Document]:
    for number, record in read_json_lines(path):
        yield _document(record, words, known, path, number)


def _document(record: dict, words: list[str | None], known: set[str] | None, path: Path, line: int) -> Document:
    for field in ("text", "label"):
        if field not in record:
            raise DataFormatError(path, f"missing field '{field}'", line=line, field=field)
    doc_id = record.get("PMID") or record.get("paper")
    if not doc_id:
        raise DataFormatError(path, "record has neither 'PMID' nor 'paper' to identify it", line=line, field="paper")
    labels = record["label"]
    if not isinstance(labels, list) or not all(isinstance(label, str) for label in labels):
        raise DataFormatError(path, "must be a list of label id strings", line=line, field="label")
    if known is not None:
        for label in labels:
            if label not in known:
                raise DataFormatError(path, f"label '{label}' is not in {LABELS_FILE}", line=line, field="label")
    return Document(
        id=str(doc_id),
        text=_detokenise(record["text"], words, path, line),
        labels=list(dict.fromkeys(labels)),
        meta={"venue": record.get("venue"), "author": record.get("author", []),
              "reference": record.get("reference", [])},
    )


def _detokenise(text, words: list[str | None], path: Path, line: int) -> str:
    """Words for space-separated word ids, joined by single spaces."""
    if not isinstance(text, str):
        raise DataFormatError(path, "must be a string of space-separated word ids", line=line, field="text")
    tokens = text.split()
    if not tokens:
        raise DataFormatError(path, "empty text", line=line, field="text")
    # Fast path for valid records; '-' would make int() accept a negative id that indexes
    # the list from its end, so such text goes to the checks below.
    if "-" not in text:
        try:
            return " ".join(map(words.__getitem__, map(int, tokens)))  # C-level loops: the hot spot
        except (ValueError, IndexError, TypeError):
            pass  # locate the culprit below
    for token in tokens:
        if not (token.isascii() and token.isdigit()):
            raise DataFormatError(path, f"token {token!r} is not a word id (a non-negative integer)",
                                  line=line, field="text")
        if int(token) >= len(words) or words[int(token)] is None:
            raise DataFormatError(path, f"word id {token} is not in {VOCABULARY_FILE}", line=line, field="text")
    return " ".join(words[int(token)] for token in tokens)
