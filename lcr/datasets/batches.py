"""Tokenised splits and length-bucketed, dynamically padded batches.

Batches hold documents of similar length, so padding (and wasted attention FLOPs) stays small;
the order of batches is shuffled per epoch from ``(seed, epoch)`` alone, which makes a resumed
run see exactly the batches an uninterrupted one would.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Sequence

import numpy as np
import scipy.sparse as sp
import torch

from lcr.datasets import token_cache
from lcr.datasets import store


@dataclass
class EncodedSplit:
    """A tokenised split.

    Attributes:
        ids: document ids (N): a list, or a :class:`lcr.datasets.store.StringColumn` (an Arrow
            array) for a cached split.
        input_ids: token ids per document, with special tokens, truncated to max_length: a
            list of arrays, or a :class:`lcr.datasets.token_cache.TokenSequences` (views into one flat
            array; memory-mapped for a cached split, so the tokens stay on disk).
        labels: binary CSR matrix (N x K) in label-index order.
    """

    ids: Sequence[str]
    input_ids: Sequence[np.ndarray]
    labels: sp.csr_matrix

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def lengths(self) -> np.ndarray:
        if hasattr(self.input_ids, "lengths"):  # TokenSequences: from the offsets, vectorised
            return self.input_ids.lengths()
        return np.fromiter((len(x) for x in self.input_ids), dtype=np.int64, count=len(self.input_ids))

    def subset(self, indices) -> "EncodedSplit":
        """The documents at ``indices`` (used to cap a split for small budgets)."""
        indices = np.asarray(indices, dtype=np.int64)
        ids = self.ids.take(indices) if hasattr(self.ids, "take") else [self.ids[i] for i in indices]
        input_ids = (self.input_ids.take(indices) if hasattr(self.input_ids, "take")
                     else [self.input_ids[i] for i in indices])
        return EncodedSplit(ids, input_ids, self.labels[indices])


def check_metadata(dataset_dir: str | Path, split: str) -> None:
    """Raise LcrError when a split keeps no metadata (the variants that read it need it)."""
    from lcr.errors import LcrError

    if "meta" not in store.split_columns(dataset_dir, split):
        raise LcrError(f"{store.split_path(dataset_dir, split)} has no `meta` column: this model reads "
                       "the documents' metadata (venue, authors, references), which only MAG-CS and "
                       "PubMed carry")


def read_texts(dataset_dir: str | Path, split: str, *, compose: Callable[[str, dict], str] | None = None,
               columns: tuple[str, ...] = ()):
    """The texts of a split of the store, composed with their metadata when asked.

    Args:
        dataset_dir: ``data/<dataset>``.
        split: ``train``, ``dev`` or ``test``.
        compose: ``compose(text, meta) -> text`` for models that read metadata (MATCH); the
            store must then have a ``meta`` column.
        columns: further columns to read.

    Returns:
        (the texts, the ``pyarrow`` table of ``columns``).

    Raises:
        LcrError: ``compose`` is given and the store keeps no metadata.
    """
    names = ["text", *columns]
    if compose is not None:
        check_metadata(dataset_dir, split)
        names.append("meta")
    table = store.read_split(dataset_dir, split, columns=names)
    texts = table.column("text").to_pylist()
    if compose is not None:
        texts = token_cache.compose_texts(compose, texts, table.column("meta").to_pylist())
    return texts, table


def iter_texts(dataset_dir: str | Path, split: str, *, compose: Callable[[str, dict], str] | None = None,
               keep: np.ndarray | None = None, chunk: int = 10_000) -> Iterator[list[str]]:
    """The texts of a split in chunks, streamed from the store (never the whole split at once).

    Args:
        dataset_dir: ``data/<dataset>``.
        split: ``train``, ``dev`` or ``test``.
        compose: as in :func:`read_texts`.
        keep: sorted positions of the documents to keep (None: all).
        chunk: documents read per step.

    Yields:
        Lists of texts in document order (a chunk may be empty when ``keep`` skips all of it).
    """
    if compose is not None:
        check_metadata(dataset_dir, split)
    start = 0
    path = store.split_path(dataset_dir, split)
    for texts, metas in store.read_text_chunks(path, chunk, compose is not None):
        end = start + len(texts)
        if compose is not None:
            texts = token_cache.compose_texts(compose, texts, metas)
        if keep is not None:
            first, last = np.searchsorted(keep, [start, end])
            texts = [texts[i - start] for i in keep[first:last].tolist()]
        start = end
        yield texts


def encode_split(dataset_dir: str | Path, split: str, tokenizer, vocab: list[str], max_length: int,
                 *, chunk: int = 2048, progress: bool = False,
                 compose: Callable[[str, dict], str] | None = None,
                 cache: bool | str | Path = False, workers: int | None = None) -> EncodedSplit:
    """Tokenise a split of the store with a (fast) Hugging Face tokenizer.

    Args:
        dataset_dir: ``data/<dataset>``.
        split: ``train``, ``dev`` or ``test``.
        tokenizer: the encoder's tokenizer.
        vocab: label ids in index order.
        max_length: truncation length in tokens, special tokens included.
        chunk: documents per tokenizer call (the fast tokenizer batches internally).
        progress: show a progress bar.
        compose: see :func:`read_texts` (MATCH puts metadata tokens in front of the text).
        cache: use (or build) the split's token cache (:mod:`lcr.datasets.token_cache`): True for
            ``data/<dataset>/cache``, or a folder. The tokens then stay memory-mapped on disk
            and the ids in an Arrow array: the split's memory does not grow with its tokens.
            A slow tokenizer, or a cache folder that cannot be written (read-only, full),
            falls back to tokenising in memory (with a warning for the latter).
        workers: tokenising processes when the cache is built (default: the usable CPUs).

    Returns:
        The split; its token ids are identical with and without the cache.
    """
    from tqdm.auto import tqdm

    if cache and token_cache.is_cacheable(tokenizer):
        if compose is not None:
            check_metadata(dataset_dir, split)
        try:
            cached = token_cache.build(dataset_dir, split, tokenizer, max_length, compose=compose,
                                       workers=workers, progress=progress,
                                       root=None if cache is True else Path(cache))
        except OSError as exc:  # a read-only data folder, a full disk: go on without the cache
            import warnings

            warnings.warn(f"no token cache ({exc}); tokenising {split} in memory", stacklevel=2)
        else:
            ids, labels = store.read_ids_and_labels(store.split_path(dataset_dir, split), vocab)
            if len(ids) != len(cached):
                from lcr.errors import LcrError

                raise LcrError(f"token cache {cached.path} holds {len(cached)} documents, "
                               f"{store.split_path(dataset_dir, split)} {len(ids)}: remove the cache")
            return EncodedSplit(ids, token_cache.TokenSequences.from_cache(cached), labels)

    texts, table = read_texts(dataset_dir, split, compose=compose, columns=("id", "labels"))
    # One flat array with offsets, not an array per document.
    parts: list[np.ndarray] = []
    lengths = np.zeros(len(texts), dtype=np.int64)
    for start in tqdm(range(0, len(texts), chunk), desc=f"tokenise {split}", disable=not progress):
        encoded = tokenizer(texts[start:start + chunk], truncation=True, max_length=max_length)["input_ids"]
        lengths[start:start + len(encoded)] = [len(ids) for ids in encoded]
        parts.append(np.fromiter(itertools.chain.from_iterable(encoded), dtype=np.int32,
                                 count=int(lengths[start:start + len(encoded)].sum())))
    offsets = np.zeros(len(texts) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    tokens = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int32)
    labels = store.labels_to_matrix(table.column("labels"), vocab)
    return EncodedSplit(table.column("id").to_pylist(), token_cache.TokenSequences(tokens, offsets), labels)


def length_bucketed_batches(lengths: np.ndarray, batch_size: int, *, shuffle: bool, seed: int = 0,
                            epoch: int = 0, bucket_batches: int = 50) -> list[np.ndarray]:
    """Group document indices into batches of similar length.

    With ``shuffle``, documents are permuted (from ``seed`` and ``epoch``), cut into buckets of
    ``bucket_batches`` batches, sorted by length inside each bucket, and the batches shuffled;
    without it (evaluation) documents are simply sorted by length.

    Returns:
        A list of index arrays; every batch has ``batch_size`` documents except possibly one.
    """
    n = len(lengths)
    if not shuffle:
        order = np.argsort(lengths, kind="stable")
        return [order[i:i + batch_size] for i in range(0, n, batch_size)]
    rng = np.random.default_rng([seed, epoch])
    order = rng.permutation(n)
    bucket = batch_size * bucket_batches
    batches = []
    for start in range(0, n, bucket):
        chunk = order[start:start + bucket]
        chunk = chunk[np.argsort(lengths[chunk], kind="stable")]
        batches.extend(chunk[i:i + batch_size] for i in range(0, len(chunk), batch_size))
    return [batches[i] for i in rng.permutation(len(batches))]


def shard(indices: np.ndarray, rank: int, world_size: int, *, pad: bool) -> np.ndarray:
    """The share of ``indices`` that process ``rank`` of ``world_size`` handles.

    Args:
        pad: repeat indices from the start so every rank gets the same count (training: every
            rank must run the same number of steps); without it (evaluation) nothing is
            duplicated, so no document is counted twice.
    """
    indices = np.asarray(indices)
    if pad and len(indices) % world_size:
        indices = np.resize(indices, -(-len(indices) // world_size) * world_size)  # cycles from the start
    return indices[rank::world_size]


def collate(split: EncodedSplit, indices: np.ndarray, pad_token_id: int, *,
            labels: bool = True) -> dict[str, torch.Tensor]:
    """Pad a batch to its longest document.

    Args:
        labels: include the multi-hot labels (prediction does not need them: a dense B x K
            block per batch costs ~20 us per document at K = 17,963).

    Returns:
        ``input_ids`` (B x T long), ``attention_mask`` (B x T long, 0 on padding) and, with
        ``labels``, ``labels`` (B x K float, multi-hot).
    """
    rows = [split.input_ids[i] for i in indices]
    longest = max(len(r) for r in rows)
    input_ids = np.full((len(rows), longest), pad_token_id, dtype=np.int64)  # (B, T)
    attention_mask = np.zeros((len(rows), longest), dtype=np.int64)  # (B, T)
    for b, r in enumerate(rows):
        input_ids[b, : len(r)] = r
        attention_mask[b, : len(r)] = 1
    batch = {"input_ids": torch.from_numpy(input_ids), "attention_mask": torch.from_numpy(attention_mask)}
    if labels:
        batch["labels"] = torch.from_numpy(split.labels[indices].toarray().astype(np.float32))  # (B, K)
    return batch
