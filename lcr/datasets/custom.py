"""Reader for a user's own corpus: JSON lines, CSV or TSV, one file or one file per split."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path

from lcr.datasets.document import Document
from lcr.datasets.parsed import ParsedDataset
from lcr.errors import DataFormatError
from lcr.jsonl import read_json_lines

FORMATS = (".jsonl", ".csv", ".tsv")
# File stem -> split; "val" is a common name for the dev split.
SPLIT_STEMS = {"train": "train", "dev": "dev", "val": "dev", "test": "test"}
# csv's default cap (128 KiB per field) is smaller than some documents.
_FIELD_LIMIT = 2**31 - 1


def read_custom(
    path: Path,
    *,
    text_field: str = "text",
    labels_field: str = "labels",
    id_field: str = "id",
    label_sep: str = "|",
    on_duplicate: str = "error",
) -> ParsedDataset:
    """Read a corpus in JSON lines (``.jsonl``), CSV (``.csv``) or TSV (``.tsv``), UTF-8.

    JSON lines hold one object per line, e.g. ``{"id": "d1", "text": "...", "labels": ["a", "b"]}``.
    CSV and TSV files have a header row naming a text column and a label column whose labels
    are separated by ``label_sep`` (``a|b``); quoted fields may span lines. The id is optional
    in both: without it a document is named ``"{split}-{row}"`` (row counted from 1).

    Args:
        path: a single file (all its documents go to ``train``), or a folder holding
            ``train.<ext>`` and optionally ``dev.<ext>`` (or ``val.<ext>``) and ``test.<ext>``.
        text_field: the key or column holding the text.
        labels_field: the key or column holding the labels.
        id_field: the key or column holding the document id.
        label_sep: the separator between labels in a CSV/TSV cell.
        on_duplicate: what a document whose id was already read (in any split file) does:
            ``error`` stops with a message naming both files and lines; ``first`` keeps the
            first and drops the later ones, counted in ``duplicates["dropped"]``.

    Returns:
        One generator of documents per split file (read lazily, so format errors surface
        while iterating). Label names are unknown (empty); ``missing`` names the train file
        when a folder has none; ``duplicates`` counts what ``on_duplicate: first`` dropped
        (complete once every split has been read).

    Raises:
        DataFormatError: the path does not exist, has an unknown extension, or a folder holds
            no split file or two for one split; during iteration, a malformed record.
    """
    path = Path(path)
    if path.is_file():
        files = {"train": _checked_format(path)}
    elif path.is_dir():
        files = _split_files(path)
    else:
        raise DataFormatError(path, "no such file or folder")
    if on_duplicate not in ON_DUPLICATE:
        raise DataFormatError(path, f"on_duplicate must be one of {', '.join(ON_DUPLICATE)}, got '{on_duplicate}'")
    options = {"text_field": text_field, "labels_field": labels_field, "id_field": id_field}
    ids = _Ids(on_duplicate, id_field)
    splits = {split: _documents(file, split, label_sep, options, ids) for split, file in files.items()}
    missing = [] if "train" in files else ["train.*"]
    return ParsedDataset(splits=splits, label_names={}, missing=missing, duplicates=ids.dropped)


ON_DUPLICATE = ("error", "first")


class _Ids:
    """The ids read so far in any split file, with where each was first seen."""

    def __init__(self, on_duplicate: str, id_field: str):
        self.on_duplicate, self.id_field = on_duplicate, id_field
        self.first: dict[str, tuple[str, int]] = {}  # id -> (file name, line)
        self.dropped = {"policy": on_duplicate, "dropped": 0}

    def keep(self, doc: Document, path: Path, line: int) -> bool:
        """True for a new id; for a repeated one, False (``first``) or a :class:`DataFormatError`."""
        seen = self.first.get(doc.id)
        if seen is None:
            self.first[doc.id] = (path.name, line)
            return True
        if self.on_duplicate == "first":
            self.dropped["dropped"] += 1
            return False
        raise DataFormatError(path, f"duplicate document id '{doc.id}': line {line} repeats {seen[0]} line {seen[1]} "
                                    "(remove one, or keep the first with --on-duplicate first)",
                              line=line, field=self.id_field)


def _checked_format(path: Path) -> Path:
    if path.suffix.lower() not in FORMATS:
        raise DataFormatError(path, f"unknown extension '{path.suffix}'; use .jsonl (one JSON object per line), "
                                    ".csv or .tsv (with a header row)")
    return path


def _split_files(folder: Path) -> dict[str, Path]:
    files: dict[str, Path] = {}
    for file in sorted(folder.iterdir()):
        split = SPLIT_STEMS.get(file.stem)
        if split is None or not file.is_file():
            continue  # READMEs and the like are not part of the corpus
        if split in files:
            raise DataFormatError(file, f"both {files[split].name} and {file.name} would be the {split} split; "
                                        "keep only one")
        files[split] = _checked_format(file)
    if not files:
        raise DataFormatError(folder, "no split file; expected train.jsonl, train.csv or train.tsv "
                                      "(and optionally dev.* or val.*, and test.*)")
    return files


def _documents(path: Path, split: str, label_sep: str, options: dict, ids: _Ids) -> Iterator[Document]:
    rows = read_json_lines(path, encoding="utf-8-sig") if path.suffix.lower() == ".jsonl" else _table_rows(path, label_sep, options)
    try:
        for row, (line, record) in enumerate(rows, start=1):
            doc = _document(record, f"{split}-{row}", path, line, **options)
            if ids.keep(doc, path, line):
                yield doc
    except UnicodeDecodeError as exc:
        raise DataFormatError(path, f"not UTF-8 text ({exc}); save the file as UTF-8") from exc


def _table_rows(path: Path, label_sep: str, options: dict) -> Iterator[tuple[int, dict]]:
    """CSV/TSV rows as records like the JSON ones, with the label cell split into a list."""
    csv.field_size_limit(_FIELD_LIMIT)
    kind = path.suffix.lower()[1:].upper()
    delimiter = "\t" if kind == "TSV" else ","
    text_field, labels_field = options["text_field"], options["labels_field"]
    # utf-8-sig: spreadsheet programs often start UTF-8 files with a byte-order mark.
    with open(path, encoding="utf-8-sig", newline="") as handle:
        # strict: a stray quote is an error to fix, not a reason to silently merge cells or rows.
        reader = csv.reader(handle, delimiter=delimiter, strict=True)
        try:
            header = next(reader, [])
            for column in (text_field, labels_field):
                if column not in header:
                    raise DataFormatError(path, f"no column '{column}' in the header (columns: {', '.join(header)})",
                                          line=1, field=column)
            end = reader.line_num
            for cells in reader:
                # line_num is where a record ends; quoted cells may span lines, so report its start.
                start, end = end + 1, reader.line_num
                if not cells:
                    continue  # blank line
                if len(cells) != len(header):
                    raise DataFormatError(path, f"row has {len(cells)} cells but the header has {len(header)}; "
                                                "quote cells that contain the delimiter", line=start)
                record = dict(zip(header, cells))
                cell = record[labels_field]
                record[labels_field] = [label for label in cell.split(label_sep) if label.strip()]
                yield start, record
        except csv.Error as exc:
            raise DataFormatError(path, f"malformed {kind} ({exc}); a cell holding the delimiter, a quote or a "
                                        'line break must be quoted, with inner quotes doubled ("")',
                                  line=reader.line_num) from exc


def _document(record: dict, default_id: str, path: Path, line: int, *,
              text_field: str, labels_field: str, id_field: str) -> Document:
    for field in (text_field, labels_field):
        if field not in record:
            raise DataFormatError(path, f"missing field '{field}'", line=line, field=field)
    text = record[text_field]
    if not isinstance(text, str):
        raise DataFormatError(path, "text must be a string", line=line, field=text_field)
    if not text.strip():
        raise DataFormatError(path, "empty text", line=line, field=text_field)
    labels = record[labels_field]
    if not isinstance(labels, list) or not all(isinstance(label, str) and label.strip() for label in labels):
        raise DataFormatError(path, 'labels must be a list of non-empty strings, e.g. ["sports", "politics"]',
                              line=line, field=labels_field)
    doc_id = record.get(id_field)
    if doc_id is None:
        doc_id = default_id
    elif isinstance(doc_id, bool) or not isinstance(doc_id, (str, int)) or not str(doc_id).strip():
        raise DataFormatError(path, "id must be a non-empty string or an integer", line=line, field=id_field)
    return Document(id=str(doc_id).strip(), text=text.strip(),
                    labels=list(dict.fromkeys(label.strip() for label in labels)))
