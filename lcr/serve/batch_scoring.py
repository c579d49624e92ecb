"""Batch scoring: label every text of a JSONL or CSV/TSV file with a loaded predictor.

The input is streamed (one batch of texts in memory at a time) and the output is the prediction
JSON-lines file that ``lcr metrics`` reads: ``{"id", "labels", "names", "scores"}`` per line,
label ids best first. The output is written to a temporary file and renamed into place, so a
failed run leaves no half-written file. Nothing here knows where the model came from
(:func:`lcr.serve.pyfunc.load_predictor` resolves model URIs).

Input formats, by file suffix:
- ``.jsonl``/``.ndjson``/``.json``: one object per line with a string ``text`` and an optional
  ``id`` (string or number; default: the line number).
- ``.csv``/``.tsv``: a header row with a ``text`` column and an optional ``id`` column
  (default: the data row number, 1-based).
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path
from typing import Iterator

from lcr.errors import DataFormatError, LcrError
from lcr.report.predictions import PredictionWriter

JSONL_SUFFIXES = (".jsonl", ".ndjson", ".json")
DELIMITERS = {".csv": ",", ".tsv": "\t"}


def input_format(path: str | Path) -> str:
    """``jsonl``, ``csv`` or ``tsv`` from the file suffix.

    Raises:
        LcrError: an unknown suffix.
    """
    suffix = Path(path).suffix.lower()
    if suffix in JSONL_SUFFIXES:
        return "jsonl"
    if suffix in DELIMITERS:
        return suffix[1:]
    raise LcrError(f"{path}: unknown input format '{suffix}'; use .jsonl, .csv or .tsv")


def _checked_text(path, line: int, value) -> str:
    if not isinstance(value, str):
        raise DataFormatError(path, f"expected a string, got {type(value).__name__}", line=line, field="text")
    if not value.strip():
        raise DataFormatError(path, "empty text", line=line, field="text")
    return value


def _jsonl_records(path: Path) -> Iterator[tuple[str, str]]:
    from lcr.jsonl import read_json_lines

    for lineno, record in read_json_lines(path):
        if "text" not in record:
            raise DataFormatError(path, "missing field", line=lineno, field="text")
        doc_id = record.get("id", lineno)
        if isinstance(doc_id, bool) or not isinstance(doc_id, (str, int)):
            raise DataFormatError(path, f"expected a string or integer, got {type(doc_id).__name__}",
                                  line=lineno, field="id")
        yield str(doc_id), _checked_text(path, lineno, record["text"])


def _delimited_records(path: Path, delimiter: str) -> Iterator[tuple[str, str]]:
    csv.field_size_limit(sys.maxsize)  # long abstracts exceed csv's 128 KiB default
    try:
        handle = open(path, encoding="utf-8-sig", newline="")
    except OSError as exc:
        raise LcrError(f"{path}: cannot read the file ({exc.strerror or exc})") from exc
    with handle:
        reader = csv.DictReader(handle, delimiter=delimiter)
        try:
            if reader.fieldnames is None or "text" not in reader.fieldnames:
                raise DataFormatError(path, f"the header needs a 'text' column; got {reader.fieldnames}", line=1)
            for number, row in enumerate(reader, start=1):
                if None in row:
                    raise DataFormatError(path, f"{len(row) - 1 + len(row[None])} fields, the header has "
                                          f"{len(reader.fieldnames)}", line=reader.line_num)
                yield row.get("id") or str(number), _checked_text(path, reader.line_num, row["text"])
        except UnicodeDecodeError as exc:
            raise DataFormatError(path, f"not valid UTF-8 ({exc.reason}); save the file as UTF-8") from exc
        except csv.Error as exc:
            raise DataFormatError(path, f"malformed CSV ({exc})", line=reader.line_num) from exc


def read_texts(path: str | Path) -> Iterator[tuple[str, str]]:
    """Stream ``(id, text)`` from a JSONL, CSV or TSV file (see the module docstring).

    Raises:
        LcrError: the file cannot be read or its suffix is unknown.
        DataFormatError: a record without a usable ``text`` or ``id`` (file and line named).
    """
    path = Path(path)
    kind = input_format(path)
    if not path.is_file():
        raise LcrError(f"{path}: no such file")
    if kind == "jsonl":
        return _jsonl_records(path)
    return _delimited_records(path, DELIMITERS["." + kind])


def _count_lines(path: Path) -> int:
    """Lines in the file (a progress total; read in 1 MiB blocks, never the whole file)."""
    count = 0
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            count += block.count(b"\n")
    return count


def predict_file(predictor, input_path: str | Path, output_path: str | Path, *, k: int = 10,
                 batch_size: int = 32, threshold: float | None = None, mode: str = "ranking",
                 progress: bool = False) -> dict:
    """Label every text of ``input_path`` and write the prediction JSONL to ``output_path``.

    Args:
        predictor: a :class:`lcr.serve.predictor.Predictor` (or anything with its ``predict``).
        input_path: JSONL, CSV or TSV (see the module docstring).
        output_path: the prediction JSONL to write (atomically).
        k: labels per text, best first.
        batch_size: texts per forward pass; also how many texts are held in memory.
        threshold: keep only labels whose score reaches it.
        mode: ``ranking`` or ``set`` (the calibrated label sets; see :mod:`lcr.serve.calibration`).
        progress: show a progress bar with rate and ETA.

    Returns:
        ``{"documents": N, "output": path}``.

    Raises:
        LcrError / DataFormatError: bad input (nothing is written then).
    """
    from tqdm.auto import tqdm

    input_path, output_path = Path(input_path), Path(output_path)
    if batch_size < 1:
        raise LcrError(f"batch_size must be at least 1, got {batch_size}")
    records = read_texts(input_path)
    total = _count_lines(input_path) - (0 if input_format(input_path) == "jsonl" else 1) if progress else None
    done = 0
    with PredictionWriter(output_path) as out, \
            tqdm(total=total, desc=f"predict {input_path.name}", unit="doc", disable=not progress) as bar:
        batch: list[tuple[str, str]] = []

        def flush() -> None:
            ranked = predictor.predict([text for _, text in batch], k=k, batch_size=batch_size, threshold=threshold,
                                       mode=mode)
            for (doc_id, _), row in zip(batch, ranked):
                out.write(doc_id, [r["label"] for r in row], [r["score"] for r in row],
                          names=[r["name"] for r in row])
            bar.update(len(batch))
            batch.clear()

        for record in records:
            batch.append(record)
            if len(batch) == batch_size:
                done += batch_size
                flush()
        if batch:
            done += len(batch)
            flush()
    return {"documents": done, "output": str(output_path)}
