"""A toy multi-label corpus for end-to-end tests: four topics with their own words."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from lcr.datasets.document import Document

TOPICS = {
    "grain": "wheat corn harvest tonnes grain farmers",
    "oil": "crude barrel opec refinery oil prices",
    "money": "bank interest rate dollar currency money",
    "ship": "port vessel tanker shipping cargo strike",
}


def toy_documents(n: int, seed: int) -> list[Document]:
    """``n`` documents, each about one or two topics, reproducible from ``seed``."""
    rng = np.random.default_rng(seed)
    names = sorted(TOPICS)
    docs = []
    for i in range(n):
        chosen = sorted(set(rng.choice(names, size=rng.integers(1, 3), replace=True)))
        words = " ".join(TOPICS[t] for t in chosen)
        docs.append(Document(f"doc{seed}-{i}", f"report {i}: {words}", chosen))
    return docs


def write_toy_corpus(folder: str | Path, sizes: dict[str, int] | None = None) -> Path:
    """Write ``train.jsonl`` / ``dev.jsonl`` / ``test.jsonl`` (a custom corpus folder)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    sizes = sizes or {"train": 48, "dev": 16, "test": 16}
    for seed, (split, n) in enumerate(sizes.items()):
        with open(folder / f"{split}.jsonl", "w", encoding="utf-8") as handle:
            for doc in toy_documents(n, seed):
                handle.write(json.dumps({"id": doc.id, "text": doc.text, "labels": list(doc.labels)}) + "\n")
    return folder


def write_toy_store(folder: str | Path, sizes: tuple[int, int, int] = (32, 8, 8)) -> Path:
    """A fetched and prepared toy dataset (train, dev, test of ``sizes`` documents) at ``folder``."""
    from lcr.datasets import store
    from lcr.labels import prepare

    folder = Path(folder)
    splits = dict(zip(("train", "dev", "test"), sizes))
    store.write_store(folder, {split: toy_documents(n, seed) for seed, (split, n) in enumerate(splits.items())},
                      progress=False)
    prepare(folder, show_progress=False)
    return folder
