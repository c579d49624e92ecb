"""Tokenise a split once per (split file, tokenizer, max_length, text composition), on disk.

A token cache is a folder ``data/<dataset>/cache/tokens-<split>-<key>/``::

    tokens.npy    int32 (T,)    every document's token ids (special tokens included,
                                truncated to max_length), concatenated in document order
    offsets.npy   int64 (N+1,)  document i is tokens[offsets[i]:offsets[i+1]]
    meta.json                   what the key was made of, N, T, build time and workers

Both arrays are opened with ``np.load(mmap_mode="r")``: a training job reads the tokens of a
batch from the page cache and never holds the split's tokens in its own memory. The document
ids and the label matrix are read from the split's Parquet file (two small columns), so the
cache does not depend on the label vocabulary.

The key (16 hex digits of a SHA-256) hashes the split file's fingerprint (size, mtime in
nanoseconds and the Parquet footer, which holds the row count and every column chunk's size and
statistics: cheap, no pass over the data), the tokenizer (its ``tokenizer.json`` as the
``tokenizers`` backend serialises it, minus the per-call truncation and padding state, plus the
truncation side and whether special tokens are split), ``max_length`` and the text composer (the
function that puts metadata in front of the text, or none). A changed split file, tokenizer or
length gives another key; caches of an older version of the same split are removed when the new
one is built.

Building reads the split in chunks, tokenises the chunks in worker processes (``forkserver``
where available, else ``spawn``; each worker rebuilds the tokenizer from its JSON, with the
tokenizer's own thread pool off: ``TOKENIZERS_PARALLELISM=false``) and appends each chunk's ids
to the output file as it comes back, in order, with a bounded number of chunks in flight: memory
stays bounded whatever the split's size. With one worker (or a split of one chunk) everything
runs in-process. The folder is written under a temporary name and renamed into place, so a
failed or killed build leaves no cache behind; a lock file serialises concurrent builds of the
same cache (DDP ranks), and later calls reuse it.

Clear a dataset's caches with ``rm -rf data/<dataset>/cache`` (see :func:`clear`).
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import json
import os
import pickle
import shutil
import struct
import sys
import tempfile
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Sequence

import numpy as np

from lcr.datasets import store
from lcr.errors import LcrError

CACHE_DIR = "cache"
PREFIX = "tokens-"
FORMAT_VERSION = 1
DEFAULT_CHUNK = 1024
_HEADER_BYTES = 128  # the .npy header of tokens.npy, reserved up front and filled in at the end


# --------------------------------------------------------------------------------------------
# Keys


def is_cacheable(tokenizer) -> bool:
    """Only fast (Rust-backed) tokenizers can be serialised for the key and the workers."""
    return getattr(tokenizer, "backend_tokenizer", None) is not None


def tokenizer_spec(tokenizer) -> dict:
    """What a worker needs to tokenise exactly as ``tokenizer(texts, truncation=True,
    max_length=...)`` does: the backend's JSON (without the per-call truncation and padding
    state, which ``transformers`` sets on every call), the truncation side, and whether special
    tokens written in the text are split.

    Raises:
        LcrError: ``tokenizer`` is not a fast tokenizer.
    """
    if not is_cacheable(tokenizer):
        raise LcrError(f"the token cache needs a fast tokenizer; {type(tokenizer).__name__} is not one")
    config = json.loads(tokenizer.backend_tokenizer.to_str())
    config["truncation"] = None
    config["padding"] = None
    return {"json": json.dumps(config, sort_keys=True, ensure_ascii=False),
            "truncation_side": getattr(tokenizer, "truncation_side", "right"),
            "split_special_tokens": bool(getattr(tokenizer, "split_special_tokens", False))}


def composer_key(compose: Callable | None) -> str | None:
    """A stable description of a text composer: the function's qualified name with the
    arguments bound by ``functools.partial``; a lambda or local function adds a hash of its
    code."""
    import functools

    if compose is None:
        return None
    if isinstance(compose, functools.partial):
        inner = composer_key(compose.func)
        keywords = ", ".join(f"{k}={v!r}" for k, v in sorted(compose.keywords.items()))
        return f"partial({inner}, args={compose.args!r}, {keywords})"
    name = f"{getattr(compose, '__module__', '?')}.{getattr(compose, '__qualname__', type(compose).__qualname__)}"
    code = getattr(compose, "__code__", None)
    if code is not None and "<" in name:  # <lambda>, <locals>: the name alone is not unique
        digest = hashlib.sha256(code.co_code + repr(code.co_consts).encode()).hexdigest()[:12]
        name += f"#{digest}"
    return name


def split_fingerprint(path: str | Path) -> dict:
    """Size, mtime (ns) and the SHA-256 of the Parquet footer of a split file.

    Raises:
        LcrError: the file is missing or is not a Parquet file.
    """
    path = Path(path)
    try:
        stat = path.stat()
        with open(path, "rb") as handle:
            if stat.st_size < 12:
                raise LcrError(f"{path} is not a Parquet file (only {stat.st_size} bytes)")
            handle.seek(-8, os.SEEK_END)
            tail = handle.read(8)
            footer_len = struct.unpack("<I", tail[:4])[0]
            if tail[4:] != b"PAR1" or footer_len + 12 > stat.st_size:
                raise LcrError(f"{path} is not a Parquet file (bad footer): fetch the dataset again")
            handle.seek(-8 - footer_len, os.SEEK_END)
            footer = handle.read(footer_len)
    except FileNotFoundError:
        raise LcrError(f"{path} does not exist: run `lcr fetch {path.parent.name}` first") from None
    except OSError as exc:
        raise LcrError(f"{path}: cannot read it ({exc})") from exc
    return {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "footer_sha256": hashlib.sha256(footer).hexdigest()}


def cache_key(split_path: str | Path, tokenizer, max_length: int, compose: Callable | None = None) -> tuple[str, dict]:
    """``(key, parts)``: 16 hex digits of the SHA-256 of the parts, and the parts themselves."""
    spec = tokenizer_spec(tokenizer)
    parts = {
        "format": FORMAT_VERSION,
        "split": split_fingerprint(split_path),
        "tokenizer_sha256": hashlib.sha256(spec["json"].encode("utf-8")).hexdigest(),
        "truncation_side": spec["truncation_side"],
        "split_special_tokens": spec["split_special_tokens"],
        "max_length": int(max_length),
        "compose": composer_key(compose),
    }
    key = hashlib.sha256(json.dumps(parts, sort_keys=True).encode("utf-8")).hexdigest()[:16]
    return key, parts


def cache_root(dataset_dir: str | Path) -> Path:
    """``data/<dataset>/cache``."""
    return Path(dataset_dir) / CACHE_DIR


def clear(dataset_dir: str | Path) -> int:
    """Remove every token cache of a dataset; returns how many folders were removed."""
    root = cache_root(dataset_dir)
    removed = 0
    if root.is_dir():
        for entry in root.iterdir():
            if entry.name.startswith((PREFIX, f".{PREFIX}")) and entry.is_dir():
                shutil.rmtree(entry, ignore_errors=True)
                removed += 1
    return removed


# --------------------------------------------------------------------------------------------
# Reading


@dataclass
class TokenCache:
    """An opened token cache: memory-mapped ``tokens`` (T,) int32 and ``offsets`` (N+1,) int64."""

    path: Path
    tokens: np.ndarray
    offsets: np.ndarray
    meta: dict

    def __len__(self) -> int:
        return len(self.offsets) - 1


def open_cache(path: str | Path) -> TokenCache:
    """Open a cache folder (memory-mapped, read-only) and check its arrays agree.

    Raises:
        LcrError: the folder is incomplete or its arrays are inconsistent (remove it to rebuild).
    """
    path = Path(path)
    try:
        meta = json.loads((path / "meta.json").read_text(encoding="utf-8"))
        tokens = np.load(path / "tokens.npy", mmap_mode="r")
        offsets = np.load(path / "offsets.npy", mmap_mode="r")
    except (OSError, ValueError) as exc:
        raise LcrError(f"token cache {path} is unreadable ({exc}): remove the folder to rebuild it") from exc
    ok = (tokens.ndim == 1 and tokens.dtype == np.int32 and offsets.ndim == 1 and offsets.dtype == np.int64
          and len(offsets) == meta.get("documents", -1) + 1 and len(offsets) >= 1 and offsets[0] == 0
          and offsets[-1] == len(tokens) == meta.get("tokens", -1))
    if not ok:
        raise LcrError(f"token cache {path} is inconsistent (arrays and meta.json disagree): "
                       "remove the folder to rebuild it")
    return TokenCache(path, tokens, offsets, meta)


# --------------------------------------------------------------------------------------------
# Tokenising (in-process or in workers)


def compose_texts(compose: Callable[[str, dict], str], texts: list[str], metas: list) -> list[str]:
    """``compose(text, meta)`` for each document; ``metas`` are the store's JSON strings (or None)."""
    return [compose(text, json.loads(meta or "{}")) for text, meta in zip(texts, metas)]


class _ChunkEncoder:
    """Tokenises lists of texts as ``tokenizer(texts, truncation=True, max_length=...)`` does,
    returning the flat int32 ids and the int64 lengths of the chunk."""

    def __init__(self, spec: dict, max_length: int, compose: Callable | None = None):
        from tokenizers import Tokenizer

        self.tokenizer = Tokenizer.from_str(spec["json"])
        self.tokenizer.no_padding()
        self.tokenizer.enable_truncation(max_length, stride=0, strategy="longest_first",
                                         direction=spec["truncation_side"])
        self.tokenizer.encode_special_tokens = spec["split_special_tokens"]
        self.compose = compose
        encode = getattr(self.tokenizer, "encode_batch_fast", None)  # no character offsets: faster
        self.encode = encode or self.tokenizer.encode_batch

    def __call__(self, texts: list[str], metas: list | None = None) -> tuple[np.ndarray, np.ndarray]:
        if self.compose is not None:
            texts = compose_texts(self.compose, texts, metas)
        ids = [e.ids for e in self.encode(texts, add_special_tokens=True)]
        lengths = np.fromiter(map(len, ids), dtype=np.int64, count=len(ids))
        flat = np.fromiter(itertools.chain.from_iterable(ids), dtype=np.int32, count=int(lengths.sum()))
        return flat, lengths


_worker_encoder: _ChunkEncoder | None = None


def _init_worker(spec: dict, max_length: int, compose_bytes: bytes | None) -> None:
    global _worker_encoder
    os.environ["TOKENIZERS_PARALLELISM"] = "false"  # one process per core already
    compose = pickle.loads(compose_bytes) if compose_bytes is not None else None
    _worker_encoder = _ChunkEncoder(spec, max_length, compose)


def _encode_in_worker(texts: list[str], metas: list | None) -> tuple[np.ndarray, np.ndarray]:
    return _worker_encoder(texts, metas)


def default_workers() -> int:
    """The CPUs this process may use (``os.cpu_count()`` where affinity is unknown)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def _mp_context():
    import multiprocessing

    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    # The server imports what a worker needs once; each worker is forked from it with those
    # modules loaded. (Python's default preload, __main__, is skipped by 3.11-3.13 anyway.)
    # No effect once the server runs.
    context.set_forkserver_preload(["numpy", "tokenizers", __name__])
    return context


def _npy_header(dtype, length: int) -> bytes:
    """A version 1.0 ``.npy`` header of exactly ``_HEADER_BYTES`` bytes for a 1-D array."""
    body = "{'descr': '%s', 'fortran_order': False, 'shape': (%d,), }" % (np.dtype(dtype).str, length)
    size = _HEADER_BYTES - 10
    if len(body) + 1 > size:
        raise ValueError("array too long for the reserved .npy header")
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", size) + (body.ljust(size - 1) + "\n").encode("latin1")


def _write_cache(folder: Path, path: Path, n_docs: int, spec: dict, max_length: int,
                 compose: Callable | None, workers: int, chunk: int, progress: bool, label: str) -> dict:
    """Tokenise the split at ``path`` into ``folder`` (tokens.npy, offsets.npy); returns the
    counts for meta.json."""
    from tqdm.auto import tqdm

    offsets = np.zeros(n_docs + 1, dtype=np.int64)
    written_docs = 0
    bar = tqdm(total=n_docs, desc=f"tokenise {label}", unit="doc", disable=not progress)
    with open(folder / "tokens.npy", "wb") as out:
        out.write(b"\0" * _HEADER_BYTES)

        def write(flat: np.ndarray, lengths: np.ndarray) -> None:
            nonlocal written_docs
            if written_docs + len(lengths) > n_docs:
                raise LcrError(f"{path}: more documents than its footer says ({n_docs})")
            out.write(memoryview(flat))
            np.cumsum(lengths, out=offsets[written_docs + 1:written_docs + 1 + len(lengths)])
            offsets[written_docs + 1:written_docs + 1 + len(lengths)] += offsets[written_docs]
            written_docs += len(lengths)
            bar.update(len(lengths))

        chunks = store.read_text_chunks(path, chunk, compose is not None)
        if workers <= 1:
            encoder = _ChunkEncoder(spec, max_length, compose)
            for texts, metas in chunks:
                write(*encoder(texts, metas))
        else:
            _encode_in_pool(chunks, write, spec, max_length, compose, workers)
        bar.close()
        if written_docs != n_docs:
            raise LcrError(f"{path}: read {written_docs} documents, its footer says {n_docs}")
        out.seek(0)
        out.write(_npy_header(np.int32, int(offsets[-1])))
        out.flush()
        os.fsync(out.fileno())
    np.save(folder / "offsets.npy", offsets)
    return {"documents": n_docs, "tokens": int(offsets[-1])}


def _encode_in_pool(chunks, write, spec: dict, max_length: int, compose: Callable | None, workers: int) -> None:
    """Tokenise ``chunks`` in ``workers`` processes, handing results to ``write`` in order, with
    at most ``2 * workers`` chunks in flight."""
    from concurrent.futures import ProcessPoolExecutor
    from concurrent.futures.process import BrokenProcessPool

    compose_bytes, compose_here = None, None
    if compose is not None:
        try:
            compose_bytes = pickle.dumps(compose)
        except Exception:  # a lambda or local function: compose here, tokenise there
            compose_here = compose
    pending: deque = deque()
    with ProcessPoolExecutor(workers, mp_context=_mp_context(), initializer=_init_worker,
                             initargs=(spec, max_length, compose_bytes)) as pool:
        try:
            for texts, metas in chunks:
                if compose_here is not None:
                    texts = [compose_here(t, json.loads(m or "{}")) for t, m in zip(texts, metas)]
                    metas = None
                pending.append(pool.submit(_encode_in_worker, texts, metas if compose_bytes else None))
                if len(pending) >= 2 * workers:
                    write(*pending.popleft().result())
            while pending:
                write(*pending.popleft().result())
        except BrokenProcessPool as exc:
            raise LcrError("a tokenising worker process died (out of memory? A script that builds token "
                           "caches must guard its main code with `if __name__ == '__main__':`, as "
                           "multiprocessing requires); workers=1 tokenises in this process") from exc
        except BaseException:
            for future in pending:
                future.cancel()
            raise


# --------------------------------------------------------------------------------------------
# Building


@contextlib.contextmanager
def _locked(lock_path: Path) -> Iterator[None]:
    """An exclusive lock on ``lock_path`` (a no-op where ``fcntl`` is missing)."""
    try:
        import fcntl
    except ImportError:  # Windows: concurrent builds then race, and the first rename wins
        yield
        return
    with open(lock_path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _remove_stale(root: Path, split: str, source: str, fingerprint: dict, keep: str) -> None:
    """Remove the caches built from an older version of the split file ``source``."""
    for entry in root.glob(f"{PREFIX}{split}-*"):
        if entry.name == keep or not entry.is_dir():
            continue
        try:
            meta = json.loads((entry / "meta.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue  # not ours to judge (or being written)
        if meta.get("source") == source and meta.get("key_parts", {}).get("split") != fingerprint:
            shutil.rmtree(entry, ignore_errors=True)


def build(dataset_dir: str | Path, split: str, tokenizer, max_length: int, *,
          compose: Callable | None = None, workers: int | None = None, chunk: int = DEFAULT_CHUNK,
          progress: bool | None = None, root: str | Path | None = None) -> TokenCache:
    """The token cache of a split: opened when it exists, built (and then opened) otherwise.

    Args:
        dataset_dir: ``data/<dataset>``.
        split: ``train``, ``dev`` or ``test``.
        tokenizer: a fast Hugging Face tokenizer (``tokenizer.backend_tokenizer``).
        max_length: truncation length in tokens, special tokens included.
        compose: ``compose(text, meta) -> text`` (see :func:`lcr.datasets.batches.read_texts`).
        workers: tokenising processes (default: the usable CPUs); 1 runs in-process. A split
            of fewer than two chunks is always tokenised in-process.
        chunk: documents per unit of work.
        progress: show a progress bar (default: when stderr is a terminal).
        root: the cache folder (default ``data/<dataset>/cache``).

    Returns:
        The opened :class:`TokenCache`.

    Raises:
        LcrError: the split is missing or unreadable, lacks the ``meta`` column ``compose``
            needs, the tokenizer is not a fast one, or a worker failed (nothing is left behind).
    """
    path = store.split_path(dataset_dir, split)
    key, parts = cache_key(path, tokenizer, max_length, compose)
    root = Path(root) if root is not None else cache_root(dataset_dir)
    name = f"{PREFIX}{split}-{key}"
    final = root / name
    if (final / "meta.json").exists():
        with contextlib.suppress(LcrError):
            return open_cache(final)
    root.mkdir(parents=True, exist_ok=True)
    with _locked(root / f".{name}.lock"):
        if (final / "meta.json").exists():  # built by another process while we waited
            try:
                return open_cache(final)
            except LcrError:
                shutil.rmtree(final)  # damaged: build it again
        for stale in root.glob(f".{name}.*.tmp"):  # left by a killed build (we hold the lock)
            shutil.rmtree(stale, ignore_errors=True)
        n_docs = store.file_length(path)
        workers = default_workers() if workers is None else max(1, int(workers))
        workers = min(workers, -(-n_docs // chunk)) if n_docs else 1
        progress = sys.stderr.isatty() if progress is None else progress
        tmp = Path(tempfile.mkdtemp(prefix=f".{name}.", suffix=".tmp", dir=root))
        try:
            started = time.perf_counter()
            counts = _write_cache(tmp, path, n_docs, tokenizer_spec(tokenizer), max_length, compose,
                                  workers, chunk, progress, f"{Path(dataset_dir).name}/{split}")
            meta = {**counts, "key": key, "key_parts": parts, "dataset": Path(dataset_dir).name, "split": split,
                    "source": str(path.resolve()),
                    "tokenizer": getattr(tokenizer, "name_or_path", "") or type(tokenizer).__name__,
                    "workers": workers, "build_seconds": round(time.perf_counter() - started, 3)}
            (tmp / "meta.json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
            os.replace(tmp, final)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
        _remove_stale(root, split, str(path.resolve()), parts["split"], keep=name)
    return open_cache(final)


# --------------------------------------------------------------------------------------------
# Views for EncodedSplit


class TokenSequences(Sequence):
    """Per-document token ids as views into one flat array (a memmap for a cached split).

    ``seqs[i]`` is document i's int32 ids (a view, no copy); :meth:`take` selects documents
    without copying tokens; :meth:`lengths` is vectorised. Nothing per document is held.
    """

    def __init__(self, tokens: np.ndarray, offsets: np.ndarray, index: np.ndarray | None = None):
        self.tokens = tokens
        self.offsets = offsets
        self.index = None if index is None else np.asarray(index, dtype=np.int64)

    @classmethod
    def from_cache(cls, cache: TokenCache) -> "TokenSequences":
        return cls(cache.tokens, cache.offsets)

    def __len__(self) -> int:
        return len(self.offsets) - 1 if self.index is None else len(self.index)

    def __repr__(self) -> str:
        where = getattr(self.tokens, "filename", None)
        return f"TokenSequences({len(self)} documents" + (f", memory-mapped from {where})" if where else ")")

    def __getitem__(self, i):
        if isinstance(i, slice):
            return self.take(np.arange(len(self))[i])
        if i < 0:
            i += len(self)
        if not 0 <= i < len(self):
            raise IndexError(f"document {i} out of range ({len(self)})")
        row = i if self.index is None else int(self.index[i])
        return np.asarray(self.tokens[self.offsets[row]:self.offsets[row + 1]])

    def lengths(self) -> np.ndarray:
        """(N,) int64 token counts."""
        lengths = np.diff(self.offsets)
        return lengths if self.index is None else lengths[self.index]

    def take(self, indices) -> "TokenSequences":
        indices = np.asarray(indices, dtype=np.int64)
        return TokenSequences(self.tokens, self.offsets, indices if self.index is None else self.index[indices])


