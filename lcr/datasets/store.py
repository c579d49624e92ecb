"""The normalised on-disk store of a dataset.

Layout of ``data/<dataset>/`` (one folder per dataset)::

    train.parquet, dev.parquet, test.parquet   columns: id (string), text (string),
                                               labels (list<string>), meta (string, JSON; optional)
    label_vocab.tsv                            header "label<TAB>name"; row i = label index i
    stats.json                                 the paper's Table 1 columns per split
    labels/                                    label artifacts written by ``lcr prepare``

Parquet keeps text compact, reads one column at a time and is readable by every data tool.
"""

from __future__ import annotations

import csv
import hashlib
import json
from pathlib import Path
from typing import Iterable, Iterator, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import scipy.sparse as sp

from lcr.atomic import atomic_dir
from lcr.datasets.document import Document
from lcr.errors import LcrError

SPLITS = ("train", "dev", "test")
VOCAB_FILE = "label_vocab.tsv"
STATS_FILE = "stats.json"
LABELS_DIR = "labels"


def split_path(dataset_dir: str | Path, split: str) -> Path:
    """Path of a split's Parquet file."""
    if split not in SPLITS:
        raise LcrError(f"unknown split '{split}': expected one of {', '.join(SPLITS)}")
    return Path(dataset_dir) / f"{split}.parquet"


def read_vocab(dataset_dir: str | Path) -> tuple[list[str], list[str]]:
    """Read the label vocabulary.

    Returns:
        (label ids, label names), both in label-index order.
    """
    path = Path(dataset_dir) / VOCAB_FILE
    if not path.exists():
        raise LcrError(f"{path} does not exist: run `lcr fetch {Path(dataset_dir).name}` first")
    ids, names = [], []
    with open(path, encoding="utf-8", newline="") as handle:
        reader = csv.reader(handle, delimiter="\t", quoting=csv.QUOTE_NONE)
        header = next(reader, None)
        if header != ["label", "name"]:
            raise LcrError(f"{path}, line 1: expected header 'label<TAB>name', got {header!r}")
        for row in reader:
            ids.append(row[0])
            names.append(row[1] if len(row) > 1 else row[0])
    return ids, names


def split_columns(dataset_dir: str | Path, split: str) -> list[str]:
    """The column names of a split's Parquet file (read from its footer, not its data)."""
    path = split_path(dataset_dir, split)
    if not path.exists():
        raise LcrError(f"{path} does not exist: run `lcr fetch {Path(dataset_dir).name}` first")
    return pq.read_schema(path).names


def capped_indices(n: int, limit: int | None, seed: int) -> np.ndarray | None:
    """The documents a capped split keeps (sorted), or None when it keeps them all: the same
    documents for every model of a seed (the training loop, TF-IDF), drawn without replacement."""
    if limit is None or n <= limit:
        return None
    rng = np.random.default_rng([seed, 7])
    return np.sort(rng.choice(n, size=limit, replace=False))


def file_length(path: str | Path) -> int:
    """The number of documents of a split file (its Parquet footer).

    Raises:
        LcrError: the file cannot be read.
    """
    try:
        return pq.ParquetFile(path).metadata.num_rows
    except Exception as exc:  # noqa: BLE001 - pyarrow raises several kinds here
        raise LcrError(f"{path}: cannot read the split ({exc}); fetch the dataset again") from exc


def read_text_chunks(path: Path, chunk: int, with_meta: bool) -> Iterator[tuple[list[str], list | None]]:
    """A split file's texts (and their metadata JSON strings, else None) in chunks of ``chunk``
    documents, read record batch by record batch (the whole split is never in memory).

    Raises:
        LcrError: the file cannot be read, or lacks the ``text`` (or ``meta``) column.
    """
    columns = ["text", "meta"] if with_meta else ["text"]
    try:
        parquet = pq.ParquetFile(path)
        missing = [c for c in columns if c not in parquet.schema_arrow.names]
        if missing:
            raise LcrError(f"{path} has no column {', '.join(repr(c) for c in missing)}"
                           + (": this model reads the documents' metadata" if "meta" in missing else ""))
        for batch in parquet.iter_batches(batch_size=chunk, columns=columns):
            texts = batch.column(0).to_pylist()
            metas = batch.column(1).to_pylist() if with_meta else None
            yield texts, metas
    except (pa.ArrowException, OSError) as exc:
        raise LcrError(f"{path}: cannot read the split ({exc}); fetch the dataset again") from exc


class StringColumn(Sequence):
    """A string column (document ids) kept as an Arrow array: a few bytes per string instead of
    a Python object each. Indexing gives ``str``; compares equal to a list of the same strings."""

    def __init__(self, array):
        if isinstance(array, pa.ChunkedArray):
            array = array.combine_chunks()
        self.array = array

    def __len__(self) -> int:
        return len(self.array)

    def __repr__(self) -> str:
        head = self.array.slice(0, 3).to_pylist()
        return f"StringColumn({len(self)} strings: {', '.join(head)}{', ...' if len(self) > 3 else ''})"

    def __getitem__(self, i):
        if isinstance(i, slice):
            return self.take(np.arange(len(self))[i])
        return self.array[i].as_py()

    def __iter__(self):
        for start in range(0, len(self.array), 4096):  # bounded: a slice at a time
            yield from self.array.slice(start, 4096).to_pylist()

    def __eq__(self, other) -> bool:
        if isinstance(other, StringColumn):
            other = other.array.to_pylist()
        return isinstance(other, (list, tuple)) and list(self) == list(other)

    __hash__ = None

    def take(self, indices) -> "StringColumn":
        return StringColumn(self.array.take(np.asarray(indices, dtype=np.int64)))


def read_ids_and_labels(path: str | Path, vocab: list[str], *, batch_size: int = 16_384):
    """The ids (a :class:`StringColumn`) and the binary label matrix (CSR, N x K, sorted
    indices) of a split file, read ``batch_size`` documents at a time and mapped to label
    indices inside Arrow (``index_in``): no Python object per document or label, and the
    transient memory is one batch's, whatever N (:func:`labels_to_matrix` does the same for a column
    already in memory).

    Raises:
        LcrError: a label is missing from ``vocab``, or the file cannot be read.
    """
    value_set = pa.array(vocab, type=pa.string())
    id_chunks, column_chunks, count_chunks = [], [], []
    try:
        for batch in pq.ParquetFile(path).iter_batches(batch_size=batch_size, columns=["id", "labels"]):
            id_chunks.append(batch.column(0))
            counts, columns = _label_columns(batch.column(1), value_set, f"{path}: ")
            count_chunks.append(counts)
            column_chunks.append(columns)
    except (pa.ArrowException, OSError, KeyError) as exc:
        raise LcrError(f"{path}: cannot read the ids and labels ({exc})") from exc
    matrix = _csr(count_chunks, column_chunks, len(vocab))
    ids = StringColumn(pa.chunked_array(id_chunks, type=pa.string()) if id_chunks else pa.array([], type=pa.string()))
    del id_chunks
    pa.default_memory_pool().release_unused()  # the batches' buffers, which the allocator keeps otherwise
    return ids, matrix


def split_length(dataset_dir: str | Path, split: str) -> int:
    """The number of documents of a split (read from its Parquet footer, not its data)."""
    path = split_path(dataset_dir, split)
    if not path.exists():
        raise LcrError(f"{path} does not exist: run `lcr fetch {Path(dataset_dir).name}` first")
    return pq.ParquetFile(path).metadata.num_rows


def read_split(dataset_dir: str | Path, split: str, columns: list[str] | None = None) -> pa.Table:
    """Read a split (or some of its columns) as an Arrow table."""
    path = split_path(dataset_dir, split)
    if not path.exists():
        raise LcrError(f"{path} does not exist: run `lcr fetch {Path(dataset_dir).name}` first")
    return pq.read_table(path, columns=columns)


def _label_columns(labels: pa.Array, value_set: pa.Array, where: str) -> tuple[np.ndarray, np.ndarray]:
    """Per document its number of distinct labels, and their label indices (sorted within each
    document): the rows of a binary label matrix, mapped inside Arrow (``index_in``), with no
    Python object per document or label.

    Raises:
        LcrError: a label that is not in the vocabulary (``where`` names the source).
    """
    import pyarrow.compute as pc

    k = len(value_set)
    offsets = labels.offsets.to_numpy()
    offsets = offsets - offsets[0]  # a sliced array starts at a non-zero offset
    flat = labels.flatten()
    index = pc.index_in(flat, value_set=value_set)
    if index.null_count:
        unknown = sorted(set(pc.filter(flat, pc.is_null(index)).to_pylist()))[:5]
        raise LcrError(f"{where}labels not in the vocabulary: {unknown}")
    rows = np.repeat(np.arange(len(labels), dtype=np.int64), np.diff(offsets))
    keys = np.unique(rows * k + index.to_numpy(zero_copy_only=False))  # sorted, duplicates once
    return np.bincount(keys // k, minlength=len(labels)), (keys % k).astype(np.int32)


def _csr(counts: list[np.ndarray], columns: list[np.ndarray], k: int) -> sp.csr_matrix:
    """A binary CSR matrix (float32, sorted indices) from the rows of :func:`_label_columns`."""
    n = sum(len(c) for c in counts)
    indptr = np.zeros(n + 1, dtype=np.int64)
    if counts:
        np.cumsum(np.concatenate(counts), out=indptr[1:])
    indices = np.concatenate(columns) if columns else np.zeros(0, dtype=np.int32)
    matrix = sp.csr_matrix((np.ones(len(indices), dtype=np.float32), indices, indptr), shape=(n, k))
    matrix.has_sorted_indices = True
    return matrix


def labels_to_matrix(labels: pa.ChunkedArray | pa.Array, vocab: list[str]) -> sp.csr_matrix:
    """Turn a list<string> label column into a binary CSR matrix (documents x labels).

    Vectorised inside Arrow, without a Python loop over documents (the same mapping that
    :func:`read_ids_and_labels` applies batch by batch). Labels missing from ``vocab`` raise an
    error.
    """
    value_set = pa.array(vocab, type=pa.string())
    chunks = labels.chunks if isinstance(labels, pa.ChunkedArray) else [labels]
    counts, columns = zip(*(_label_columns(chunk, value_set, "") for chunk in chunks)) if chunks else ((), ())
    return _csr(list(counts), list(columns), len(vocab))


def label_matrix(dataset_dir: str | Path, split: str, vocab: list[str] | None = None) -> sp.csr_matrix:
    """Binary label matrix (documents x labels) of a split, in label-index order."""
    if vocab is None:
        vocab, _ = read_vocab(dataset_dir)
    table = read_split(dataset_dir, split, columns=["labels"])
    return labels_to_matrix(table.column("labels"), vocab)


# --------------------------------------------------------------------------------------------
# Writing


def _dev_share(doc_id: str) -> float:
    """A stable pseudo-random number in [0, 1) per document id (for the dev hold-out)."""
    digest = hashlib.blake2b(doc_id.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


class _SplitWriter:
    """Streams documents of one split into a Parquet file in bounded chunks."""

    CHUNK = 20_000

    def __init__(self, path: Path, with_meta: bool):
        self.path = path
        self.with_meta = with_meta
        self.writer: pq.ParquetWriter | None = None
        self.buffer: list[Document] = []
        self.count = 0
        self.schema = pa.schema(
            [("id", pa.string()), ("text", pa.string()), ("labels", pa.list_(pa.string()))]
            + ([("meta", pa.string())] if with_meta else [])
        )

    def add(self, doc: Document) -> None:
        self.buffer.append(doc)
        self.count += 1
        if len(self.buffer) >= self.CHUNK:
            self.flush()

    def flush(self) -> None:
        if self.writer is None:
            self.writer = pq.ParquetWriter(self.path, self.schema, compression="zstd")
        if not self.buffer:
            return
        columns = {
            "id": [d.id for d in self.buffer],
            "text": [d.text for d in self.buffer],
            "labels": [d.labels for d in self.buffer],
        }
        if self.with_meta:
            columns["meta"] = [json.dumps(d.meta, ensure_ascii=False) for d in self.buffer]
        self.writer.write_table(pa.table(columns, schema=self.schema))
        self.buffer.clear()

    def close(self) -> None:
        self.flush()
        self.writer.close()


class _StatsCounter:
    """Accumulates the paper's Table 1 columns for one split while documents stream by."""

    def __init__(self):
        self.documents = 0
        self.label_total = 0
        self.word_total = 0
        self.labels: set[str] = set()

    def add(self, doc: Document) -> None:
        self.documents += 1
        self.label_total += len(doc.labels)
        self.word_total += len(doc.text.split())
        self.labels.update(doc.labels)

    def as_dict(self) -> dict:
        n = max(self.documents, 1)
        return {
            "documents": self.documents,
            "labels_present": len(self.labels),
            "avg_labels": round(self.label_total / n, 4),
            "avg_words": round(self.word_total / n, 2),
        }


def _check(doc: Document, split: str, seen: dict[str, str]) -> None:
    where = f"split '{split}', document '{doc.id}'"
    if not isinstance(doc.id, str) or not doc.id:
        raise LcrError(f"split '{split}': a document has an empty id")
    if doc.id in seen:
        raise LcrError(f"duplicate document id '{doc.id}' in split '{split}' "
                       f"(already seen in split '{seen[doc.id]}')")
    if not doc.text or not doc.text.strip():
        raise LcrError(f"{where}: empty text")
    if len(set(doc.labels)) != len(doc.labels):
        raise LcrError(f"{where}: a label is listed twice: {doc.labels}")
    seen[doc.id] = split


#: The share of a ``dev`` stand-in split kept held out as dev (the rest stands in for train).
STANDIN_DEV_FRACTION = 0.2


def write_store(
    dataset_dir: str | Path,
    splits: dict[str, Iterable[Document]],
    *,
    label_names: dict[str, str] | None = None,
    label_order: list[str] | None = None,
    dev_fraction: float = 0.0,
    merge_train_dev: bool = False,
    train_standin: str | None = None,
    info: dict | None = None,
    progress: bool = True,
) -> dict:
    """Write a normalised dataset store atomically and return its statistics.

    Documents stream into Parquet in chunks, so memory stays bounded by the chunk size (plus
    the set of ids, needed to reject duplicates). The whole folder appears at once at the end;
    an error midway leaves the previous store (or nothing) in place.

    Args:
        dataset_dir: ``data/<dataset>``.
        splits: documents per split (``train``, ``dev``, ``test``), lists or generators.
        label_names: label id -> human-readable name.
        label_order: the vocabulary order; default: label ids sorted.
        dev_fraction: hold out this share of train as dev when ``splits`` has no ``dev``.
        merge_train_dev: write train + dev into ``train`` (``dev`` is written too).
        train_standin: a split whose documents serve as ``train`` when train is absent. For
            ``dev`` the split is divided (by a hash of the id, like ``dev_fraction``): a
            ``dev_fraction`` share (default :data:`STANDIN_DEV_FRACTION`) stays held out as dev
            and the rest becomes train, so that model selection never looks at training
            documents. Any other stand-in (``test``) is copied into train whole (smoke runs only).
        info: provenance to record in ``stats.json`` (source, checksums, missing files).
        progress: show a progress bar per split.

    Returns:
        The content of ``stats.json``.
    """
    from tqdm.auto import tqdm

    dataset_dir = Path(dataset_dir)
    label_names = dict(label_names or {})
    info = dict(info or {})
    splits = dict(splits)
    if train_standin is not None:
        if "train" in splits:
            train_standin = None  # a real train split wins; nothing stands in
        elif train_standin not in splits:
            raise LcrError(f"cannot use split '{train_standin}' as a stand-in for train: "
                           f"the source has only {sorted(splits) or 'no splits'}")
    elif "train" not in splits:
        missing = ", ".join(info.get("missing", [])) or "the train files"
        raise LcrError(f"the source has no train split (missing: {missing}); for a smoke run, "
                       "let another split stand in with --train-standin dev")
    split_standin = train_standin == "dev"
    if split_standin:
        dev_fraction = dev_fraction or STANDIN_DEV_FRACTION  # the share of the stand-in kept as dev
    elif dev_fraction and "dev" in splits:
        dev_fraction = 0.0  # the source has its own dev split
    if not 0.0 <= dev_fraction < 1.0:
        raise LcrError(f"dev_fraction must be in [0, 1), got {dev_fraction}")

    with_meta = info.pop("with_meta", False)
    seen: dict[str, str] = {}
    counters = {name: _StatsCounter() for name in SPLITS}
    with atomic_dir(dataset_dir) as tmp:
        writers = {name: _SplitWriter(tmp / f"{name}.parquet", with_meta) for name in SPLITS}

        def emit(split: str, doc: Document, check: bool = True) -> None:
            if check:
                _check(doc, split, seen)
            writers[split].add(doc)
            counters[split].add(doc)

        # Dev first: merge_train_dev and train_standin read it back after it is complete.
        order = [s for s in ("dev", "test", "train") if s in splits]
        for split in order:
            for doc in tqdm(splits[split], desc=f"{dataset_dir.name}/{split}", unit="doc",
                            disable=not progress, mininterval=1.0):
                if split == "train" and dev_fraction and _dev_share(doc.id) < dev_fraction:
                    emit("dev", doc)
                elif split == "dev" and split_standin and _dev_share(doc.id) >= dev_fraction:
                    emit("train", doc)  # the stand-in's training part; the rest stays held out
                else:
                    emit(split, doc)
        # Every split but train is complete now: close them, then let a stand-in split (or
        # dev, for merge_train_dev) be read back into train.
        for name in ("dev", "test"):
            writers[name].close()
        extra = ([train_standin] if train_standin is not None and not split_standin
                 else ["dev"] if merge_train_dev else [])
        for split in extra:
            for doc in _read_documents(tmp / f"{split}.parquet"):
                emit("train", doc, check=False)
        writers["train"].close()

        vocab = list(label_order) if label_order is not None else sorted(
            set().union(*(c.labels for c in counters.values())))
        unknown = set().union(*(c.labels for c in counters.values())) - set(vocab)
        if unknown:
            raise LcrError(f"labels missing from the label list: {sorted(unknown)[:10]}")
        with open(tmp / VOCAB_FILE, "w", encoding="utf-8", newline="") as handle:
            handle.write("label\tname\n")
            for label in vocab:
                name = _clean_field(label_names.get(label, label))
                handle.write(f"{_clean_field(label)}\t{name}\n")

        stats = {
            "dataset": dataset_dir.name,
            "labels": len(vocab),
            "splits": {name: counters[name].as_dict() for name in SPLITS},
            "dev_fraction": dev_fraction,
            "merge_train_dev": bool(merge_train_dev),
            "train_standin": train_standin,
            # dev stand-in: the share of its documents held out as dev (the rest is train)
            "standin_dev_fraction": dev_fraction if split_standin else None,
            **info,
        }
        (tmp / STATS_FILE).write_text(json.dumps(stats, indent=2) + "\n", encoding="utf-8")
    return stats


def _clean_field(value: str) -> str:
    """Tabs and newlines would break the TSV vocabulary: fold them to spaces."""
    return " ".join(str(value).split())


def _read_documents(path: Path) -> Iterator[Document]:
    """Read documents back from a finished split file, one record batch at a time."""
    for batch in pq.ParquetFile(path).iter_batches(batch_size=10_000):
        for row in batch.to_pylist():
            yield Document(row["id"], row["text"], row["labels"], json.loads(row.get("meta") or "{}"))


def iter_split(dataset_dir: str | Path, split: str, batch_size: int = 10_000) -> Iterator[dict]:
    """Stream a split as dicts ``{"id", "text", "labels"}`` without loading it whole."""
    path = split_path(dataset_dir, split)
    if not path.exists():
        raise LcrError(f"{path} does not exist: run `lcr fetch {Path(dataset_dir).name}` first")
    parquet = pq.ParquetFile(path)
    for batch in parquet.iter_batches(batch_size=batch_size, columns=["id", "text", "labels"]):
        yield from batch.to_pylist()


def read_stats(dataset_dir: str | Path) -> dict:
    """The dataset's ``stats.json``."""
    path = Path(dataset_dir) / STATS_FILE
    if not path.exists():
        raise LcrError(f"{path} does not exist: run `lcr fetch {Path(dataset_dir).name}` first")
    return json.loads(path.read_text(encoding="utf-8"))


def export_jsonl(dataset_dir: str | Path, split: str, output) -> int:
    """Write a split as JSON lines ``{"id", "text", "labels"}``.

    Args:
        dataset_dir: ``data/<dataset>``.
        split: ``train``, ``dev`` or ``test``.
        output: a path (written atomically) or an open text stream.

    Returns:
        The number of documents written.
    """
    from lcr.atomic import atomic_open

    def write(handle) -> int:
        n = 0
        for row in iter_split(dataset_dir, split):
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")
            n += 1
        return n

    if isinstance(output, (str, Path)):
        with atomic_open(output, "w", encoding="utf-8") as handle:
            return write(handle)
    return write(output)
