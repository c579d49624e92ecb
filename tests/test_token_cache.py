"""The on-disk token cache: same tokens as tokenising in memory, reuse, invalidation, worker
processes, atomic builds, and the memory-mapped EncodedSplit."""

from __future__ import annotations

import functools
import json
import os
from pathlib import Path

import numpy as np
import pytest

from lcr.datasets import token_cache
from lcr.datasets.batches import EncodedSplit, collate, encode_split, read_texts
from lcr.datasets import store
from lcr.datasets.document import Document
from lcr.errors import LcrError
from tests.toy_data import toy_documents


def _meta_documents(n: int, seed: int) -> list[Document]:
    docs = toy_documents(n, seed)
    for i, doc in enumerate(docs):
        doc.meta = {"venue": f"venue {i % 3}", "author": [f"a{i % 5}"]}
    return docs


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    from transformers import AutoTokenizer

    from tests.tiny_encoder import make_tiny_encoder

    return AutoTokenizer.from_pretrained(make_tiny_encoder(tmp_path_factory.mktemp("encoder")))


@pytest.fixture
def toy(tmp_path):
    """A fresh store (with metadata) per test: the cache lives inside it."""
    folder = tmp_path / "toy"
    store.write_store(folder, {"train": _meta_documents(60, 0), "dev": _meta_documents(12, 1),
                               "test": _meta_documents(12, 2)}, info={"with_meta": True}, progress=False)
    return folder


def _vocab(folder: Path) -> list[str]:
    return store.read_vocab(folder)[0]


def _same(a: EncodedSplit, b: EncodedSplit) -> None:
    assert len(a) == len(b)
    assert list(a.ids) == list(b.ids)
    assert all(np.array_equal(x, y) for x, y in zip(a.input_ids, b.input_ids))
    assert np.array_equal(a.lengths, b.lengths)
    assert a.labels.shape == b.labels.shape and (a.labels != b.labels).nnz == 0


def _caches(folder: Path) -> list[Path]:
    root = folder / token_cache.CACHE_DIR
    return sorted(p for p in root.iterdir() if p.is_dir()) if root.exists() else []


def _upper(text: str, meta: dict) -> str:  # a picklable composer, for the worker processes
    return f"{meta.get('venue', '')} {text}".upper()


def _fails_on_report_7(text: str, meta: dict) -> str:
    if text.startswith("report 7:"):
        raise ValueError("composer failed on report 7")
    return text


def test_cache_equals_in_memory_tokenising_token_for_token(toy, tokenizer):
    vocab = _vocab(toy)
    for split in ("train", "dev"):
        plain = encode_split(toy, split, tokenizer, vocab, 12)
        cached = encode_split(toy, split, tokenizer, vocab, 12, cache=True)
        _same(plain, cached)
        assert isinstance(cached.input_ids, token_cache.TokenSequences)
        assert isinstance(cached.input_ids.tokens, np.memmap)  # on disk, not in memory
        assert max(cached.lengths) == 12  # truncated like the tokenizer call
    # With a composer (metadata in front of the text), too.
    compose = functools.partial(_upper)
    _same(encode_split(toy, "train", tokenizer, vocab, 40, compose=compose),
          encode_split(toy, "train", tokenizer, vocab, 40, compose=compose, cache=True))
    names = [p.name for p in _caches(toy)]
    assert len(names) == 3 and all(n.startswith("tokens-") for n in names)


def test_second_call_reuses_the_cache(toy, tokenizer):
    vocab = _vocab(toy)
    first = token_cache.build(toy, "train", tokenizer, 16)
    stamps = {f.name: f.stat().st_mtime_ns for f in first.path.iterdir()}
    again = encode_split(toy, "train", tokenizer, vocab, 16, cache=True)
    assert Path(again.input_ids.tokens.filename) == first.path / "tokens.npy"
    assert {f.name: f.stat().st_mtime_ns for f in first.path.iterdir()} == stamps
    assert _caches(toy) == [first.path]


def test_a_changed_split_tokenizer_or_length_gets_a_new_cache(toy, tokenizer, tmp_path):
    from tests.tiny_encoder import make_tiny_encoder
    from transformers import AutoTokenizer

    vocab = _vocab(toy)
    base = token_cache.build(toy, "train", tokenizer, 16).path
    longer = token_cache.build(toy, "train", tokenizer, 20).path
    other_tokenizer = AutoTokenizer.from_pretrained(make_tiny_encoder(tmp_path / "other", vocab_size=300))
    other = token_cache.build(toy, "train", other_tokenizer, 16).path
    composed = token_cache.build(toy, "train", tokenizer, 16, compose=_upper).path
    assert len({base, longer, other, composed}) == 4
    assert len(_caches(toy)) == 4

    # The split file changes: a new cache, the same tokens as tokenising the new file, and the
    # caches of the old file are removed.
    store.write_store(toy, {"train": _meta_documents(30, 5), "dev": _meta_documents(12, 1),
                            "test": _meta_documents(12, 2)}, info={"with_meta": True}, progress=False)
    fresh = encode_split(toy, "train", tokenizer, vocab, 16, cache=True)
    assert len(fresh) == 30
    _same(encode_split(toy, "train", tokenizer, vocab, 16), fresh)


def test_the_old_caches_of_a_rewritten_split_are_removed(toy, tokenizer):
    old = token_cache.build(toy, "train", tokenizer, 16).path
    path = store.split_path(toy, "train")
    data = path.read_bytes()
    path.write_bytes(data)  # same content, new mtime: another version of the file as far as we know
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 10**9))
    new = token_cache.build(toy, "train", tokenizer, 16).path
    assert new != old and not old.exists() and new.exists()


def test_two_workers_equal_one(toy, tokenizer, tmp_path):
    one = token_cache.build(toy, "train", tokenizer, 16, workers=1, chunk=7, root=tmp_path / "one")
    two = token_cache.build(toy, "train", tokenizer, 16, workers=2, chunk=7, root=tmp_path / "two")
    assert one.meta["workers"] == 1 and two.meta["workers"] == 2
    assert np.array_equal(one.offsets, two.offsets) and np.array_equal(one.tokens, two.tokens)
    # With a composer run in the workers, too.
    a = token_cache.build(toy, "train", tokenizer, 16, workers=1, chunk=7, compose=_upper, root=tmp_path / "a")
    b = token_cache.build(toy, "train", tokenizer, 16, workers=2, chunk=7, compose=_upper, root=tmp_path / "b")
    assert np.array_equal(a.tokens, b.tokens) and np.array_equal(a.offsets, b.offsets)
    assert not np.array_equal(a.tokens, one.tokens)


@pytest.mark.parametrize("workers", [1, 2])
def test_a_failed_build_leaves_nothing_behind(toy, tokenizer, tmp_path, workers):
    root = tmp_path / "cache"
    with pytest.raises(ValueError, match="report 7"):
        token_cache.build(toy, "train", tokenizer, 16, workers=workers, chunk=7, compose=_fails_on_report_7,
                          root=root)
    assert [p for p in root.iterdir() if p.is_dir()] == []  # neither the cache nor its temporary folder
    # A later build (another composer) works.
    assert len(token_cache.build(toy, "train", tokenizer, 16, root=root)) == 60


def test_a_killed_build_is_cleaned_up_and_a_damaged_cache_rebuilt(toy, tokenizer):
    key, _ = token_cache.cache_key(store.split_path(toy, "train"), tokenizer, 16)
    root = token_cache.cache_root(toy)
    leftover = root / f".tokens-train-{key}.abc123.tmp"  # what a killed build leaves
    leftover.mkdir(parents=True)
    (leftover / "tokens.npy").write_bytes(b"half")
    cache = token_cache.build(toy, "train", tokenizer, 16)
    assert not leftover.exists()
    expected = np.array(cache.tokens)
    np.save(cache.path / "offsets.npy", np.array([0, 5], dtype=np.int64))  # damaged
    rebuilt = token_cache.build(toy, "train", tokenizer, 16)
    assert np.array_equal(rebuilt.tokens, expected) and len(rebuilt) == 60


def test_memory_mapped_split_works_with_subset_and_collate(toy, tokenizer):
    vocab = _vocab(toy)
    plain = encode_split(toy, "train", tokenizer, vocab, 16)
    cached = encode_split(toy, "train", tokenizer, vocab, 16, cache=True)
    keep = np.array([3, 0, 17, 42, 5])
    small, small_plain = cached.subset(keep), plain.subset(keep)
    _same(small_plain, small)
    assert small.ids[2] == plain.ids[17] and small.ids == [plain.ids[i] for i in keep]
    assert small.input_ids.tokens is cached.input_ids.tokens  # a view: no tokens copied
    _same(small_plain.subset([4, 1]), small.subset([4, 1]))
    for indices in (np.array([0, 2, 4]), np.array([1])):
        got, expected = collate(small, indices, 1), collate(small_plain, indices, 1)
        assert all(np.array_equal(got[k].numpy(), expected[k].numpy()) for k in expected)
    assert small.input_ids[-1].tolist() == plain.input_ids[5].tolist()
    with pytest.raises(IndexError):
        small.input_ids[5]


def test_word_level_tokenizer_is_cached_too(toy, tmp_path):
    from lcr.models.baselines.words import build_word_tokenizer

    texts, _ = read_texts(toy, "train")
    words = build_word_tokenizer(texts, vocab_size=50, min_freq=1, max_length=10)
    vocab = _vocab(toy)
    _same(encode_split(toy, "dev", words, vocab, 10), encode_split(toy, "dev", words, vocab, 10, cache=True))
    # Rebuilt from the same texts: the same tokenizer, so the same cache.
    again = build_word_tokenizer(texts, vocab_size=50, min_freq=1, max_length=10)
    assert token_cache.cache_key(store.split_path(toy, "dev"), words, 10) == \
        token_cache.cache_key(store.split_path(toy, "dev"), again, 10)


def test_an_empty_split_has_an_empty_cache(tmp_path, tokenizer):
    folder = tmp_path / "empty"
    store.write_store(folder, {"train": toy_documents(5, 0), "dev": []}, progress=False)
    vocab = _vocab(folder)
    cached = encode_split(folder, "dev", tokenizer, vocab, 16, cache=True)
    assert len(cached) == 0 and cached.lengths.shape == (0,) and cached.labels.shape == (0, len(vocab))
    _same(encode_split(folder, "dev", tokenizer, vocab, 16), cached)
    assert len(encode_split(folder, "dev", tokenizer, vocab, 16, cache=True)) == 0  # reopened


def test_bad_input_names_the_file(toy, tokenizer):
    vocab = _vocab(toy)
    path = store.split_path(toy, "dev")
    path.write_bytes(b"not parquet at all")
    with pytest.raises(LcrError, match="dev.parquet"):
        encode_split(toy, "dev", tokenizer, vocab, 16, cache=True)
    path.unlink()
    with pytest.raises(LcrError, match="dev.parquet"):
        encode_split(toy, "dev", tokenizer, vocab, 16, cache=True)
    with pytest.raises(LcrError, match="train.parquet.*not in the vocabulary"):
        encode_split(toy, "train", tokenizer, vocab[1:], 16, cache=True)
    store.write_store(toy, {"train": toy_documents(10, 0)}, progress=False)  # no metadata
    with pytest.raises(LcrError, match="train.parquet has no `meta` column"):
        encode_split(toy, "train", tokenizer, store.read_vocab(toy)[0], 16, cache=True, compose=_upper)
    assert _caches(toy) == []


def test_training_uses_the_cache(tmp_path):
    from lcr.config import train_params
    from lcr.labels import prepare
    from lcr.train.loop import train
    from tests.tiny_encoder import make_tiny_encoder

    data = tmp_path / "toy"
    store.write_store(data, {"train": toy_documents(24, 0), "dev": toy_documents(8, 1),
                             "test": toy_documents(8, 2)}, progress=False)
    prepare(data, show_progress=False)
    params = train_params(dict(encoder=make_tiny_encoder(tmp_path / "encoder"), gamma=3, num_heads=2,
                               batch_size=8, max_length=16, epochs=1, max_steps=1, device="cpu"))
    result = train(data, tmp_path / "run", params, progress=False)
    assert result["eval"]["full"]["n_docs"] == 8
    assert sorted(p.name.split("-")[1] for p in _caches(data)) == ["dev", "test", "train"]
    lines = (tmp_path / "run" / "predictions-test.jsonl").read_text().splitlines()
    assert [json.loads(line)["id"] for line in lines] == [d.id for d in toy_documents(8, 2)]
