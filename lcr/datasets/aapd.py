"""Reader for AAPD in the release format of the SGM paper (Yang et al., COLING 2018).

Each split is a pair of line-aligned plain-text files: ``text_<split>`` holds one lower-cased,
tokenised abstract per line, ``label_<split>`` its space-separated arXiv subject codes.
"""

from __future__ import annotations

from pathlib import Path

from lcr.datasets.document import Document
from lcr.datasets.parsed import ParsedDataset
from lcr.errors import DataFormatError

# Release split name -> store split name.
SPLITS = {"train": "train", "val": "dev", "test": "test"}


def read_aapd(directory: Path) -> ParsedDataset:
    """Read the AAPD release files present in ``directory``.

    A split is read only when both its files exist; otherwise both of its file names that are
    absent go to ``missing`` and the split is left out (public copies often lack train).

    Args:
        directory: the folder holding ``text_train``, ``label_train``, ``text_val``,
            ``label_val``, ``text_test`` and ``label_test``.

    Returns:
        Lists of documents for ``train``, ``dev`` (the release's ``val``) and ``test``, with
        ids ``"{release split}-{line:05d}"`` (e.g. ``val-00001``). AAPD has no label names, so
        ``label_names`` maps each code to itself.

    Raises:
        DataFormatError: the folder does not exist, the two files of a split differ in
            length, or a line of either is empty.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise DataFormatError(directory, "no such folder; expected the AAPD release files "
                                         "text_train, label_train, text_val, label_val, text_test, label_test")
    splits: dict[str, list[Document]] = {}
    missing: list[str] = []
    for release, split in SPLITS.items():
        text_path, label_path = directory / f"text_{release}", directory / f"label_{release}"
        absent = [p.name for p in (text_path, label_path) if not p.is_file()]
        if absent:
            missing.extend(absent)
            continue
        splits[split] = _read_pair(release, text_path, label_path)
    labels = sorted({label for docs in splits.values() for doc in docs for label in doc.labels})
    return ParsedDataset(splits=splits, label_names={label: label for label in labels}, missing=missing)


def _read_pair(release: str, text_path: Path, label_path: Path) -> list[Document]:
    texts = _lines(text_path)
    labels = _lines(label_path)
    if len(labels) < len(texts):
        raise DataFormatError(label_path, f"ends after {len(labels)} lines but {text_path.name} has {len(texts)}; "
                                          "the files must be line-aligned (one document per line)",
                              line=len(labels) + 1, field="labels")
    if len(labels) > len(texts):
        raise DataFormatError(label_path, f"has {len(labels)} lines but {text_path.name} only {len(texts)}; "
                                          "the files must be line-aligned (one document per line)",
                              line=len(texts) + 1, field="labels")
    documents = []
    for number, (text, label_line) in enumerate(zip(texts, labels), start=1):
        text = " ".join(text.split())
        if not text:
            raise DataFormatError(text_path, "empty abstract; every line needs a document's text",
                                  line=number, field="text")
        codes = list(dict.fromkeys(label_line.split()))
        if not codes:
            raise DataFormatError(label_path, "no labels; every line needs at least one space-separated "
                                              "subject code", line=number, field="labels")
        documents.append(Document(id=f"{release}-{number:05d}", text=text, labels=codes))
    return documents


def _lines(path: Path) -> list[str]:
    """The file's lines; a final newline does not start an extra (empty) line."""
    try:
        content = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise DataFormatError(path, f"not UTF-8 text ({exc})") from exc
    # splitlines() would also split on \x0b, \x1c, \u2028 … inside an abstract; only \n ends a line.
    lines = content.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [line.rstrip("\r") for line in lines]
