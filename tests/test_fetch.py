"""`lcr fetch` orchestration: sources in order, checksums, real archives, downloads over HTTP."""

import dataclasses
import functools
import http.server
import json
import shutil
import threading
import zipfile

import pytest

from lcr.datasets import fetch as fetch_module
from lcr.datasets import store
from lcr.datasets.fetch import fetch
from lcr.errors import LcrError


@pytest.fixture
def http_folder():
    """Serve a folder over a real HTTP server on 127.0.0.1; yields (folder, base URL)."""

    def serve(folder):
        handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(folder))
        handler.log_message = lambda *args: None
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}"

    servers = []
    yield serve
    for server in servers:
        server.shutdown()
        server.server_close()


def test_reuters_download_counts_and_checksum(mirror, tmp_path, http_folder, no_mirror, monkeypatch):
    """Download the real archive from a local HTTP server; ModApte gives 7,770 / 3,019 / 90."""
    served = tmp_path / "served"
    served.mkdir()
    shutil.copy(mirror / "reuters21578" / "reuters21578.tar.gz", served)
    url = http_folder(served) + "/reuters21578.tar.gz"
    source = dataclasses.replace(fetch_module.REGISTRY["reuters21578"], url=url)
    monkeypatch.setitem(fetch_module.REGISTRY, "reuters21578", source)

    data = tmp_path / "data"
    stats = fetch("reuters21578", data, dev_fraction=0.0, progress=False)
    assert stats["splits"]["train"]["documents"] == 7770
    assert stats["splits"]["test"]["documents"] == 3019
    assert stats["labels"] == 90
    assert stats["source"].startswith("download:http://127.0.0.1")
    assert (data / ".downloads" / "reuters21578" / "reuters21578.tar.gz").exists()
    recorded = json.loads((data / "checksums.json").read_text())["reuters21578"]["reuters21578.tar.gz"]
    assert recorded == stats["sha256"]["reuters21578.tar.gz"]

    # With the default 10% dev hold-out, train + dev is still the ModApte train split.
    stats = fetch("reuters21578", data, dev_fraction=0.1, progress=False)
    assert stats["splits"]["train"]["documents"] + stats["splits"]["dev"]["documents"] == 7770
    assert 600 < stats["splits"]["dev"]["documents"] < 950

    # A release file that differs from the recorded one is refused, and the store is kept.
    record = data / "checksums.json"
    known = json.loads(record.read_text())
    known["reuters21578"]["reuters21578.tar.gz"] = "0" * 64
    record.write_text(json.dumps(known))
    with pytest.raises(LcrError, match="refusing .*reuters21578.tar.gz"):
        fetch("reuters21578", data, progress=False)
    assert store.read_stats(data / "reuters21578")["splits"]["test"]["documents"] == 3019


def test_aapd_from_mirror_names_missing_train(mirror, tmp_path):
    with pytest.raises(LcrError, match="text_train"):
        fetch("aapd", tmp_path / "data", progress=False)


def test_aapd_from_mirror_with_standin(mirror, tmp_path):
    stats = fetch("aapd", tmp_path / "data", train_standin="dev", progress=False)
    assert stats["splits"]["test"]["documents"] == 1000
    # val stands in for train with a held-out fifth kept as dev
    assert stats["splits"]["dev"]["documents"] + stats["splits"]["train"]["documents"] == 1000
    assert 150 < stats["splits"]["dev"]["documents"] < 250
    assert stats["train_standin"] == "dev" and stats["standin_dev_fraction"] == 0.2
    assert "text_train" in stats["missing"] and "label_train" in stats["missing"]
    assert stats["labels"] == 54
    assert stats["source"].startswith("mirror:")


def test_aapd_from_zip_archive(mirror, tmp_path, no_mirror):
    """--from accepts a release archive; the folder inside it is found wherever it is nested."""
    archive = tmp_path / "AAPD.zip"
    with zipfile.ZipFile(archive, "w") as handle:
        for name in ("text_test", "label_test", "text_val", "label_val"):
            handle.write(mirror / "aapd" / name, f"data/AAPD/{name}")
    stats = fetch("aapd", tmp_path / "data", source_path=archive, train_standin="test", progress=False)
    assert stats["splits"]["train"]["documents"] == 1000
    assert stats["source"] == f"path:{archive}"


def test_from_path_errors(tmp_path, no_mirror):
    with pytest.raises(LcrError, match="no such file"):
        fetch("aapd", tmp_path / "data", source_path=tmp_path / "nope", progress=False)
    (tmp_path / "empty").mkdir()
    with pytest.raises(LcrError, match="none of the release files"):
        fetch("aapd", tmp_path / "data", source_path=tmp_path / "empty", progress=False)
    bogus = tmp_path / "bogus.bin"
    bogus.write_bytes(b"not an archive")
    with pytest.raises(LcrError, match="neither a zip nor a tar"):
        fetch("aapd", tmp_path / "data", source_path=bogus, progress=False)


def test_unknown_dataset_lists_known_ones(tmp_path):
    with pytest.raises(LcrError, match="known datasets: aapd, custom, mag-cs, pubmed, reuters21578"):
        fetch("imagenet", tmp_path)


def test_custom_jsonl(tmp_path):
    corpus = tmp_path / "corpus.jsonl"
    rows = [{"id": f"d{i}", "text": f"text number {i}", "labels": ["x", "y"][: 1 + i % 2]} for i in range(50)]
    corpus.write_text("".join(json.dumps(r) + "\n" for r in rows))
    stats = fetch("custom", tmp_path / "data", source_path=corpus, dev_fraction=0.2,
                  custom_options={"name": "mine"}, progress=False)
    assert stats["dataset"] == "mine"
    assert stats["splits"]["train"]["documents"] + stats["splits"]["dev"]["documents"] == 50
    assert store.read_vocab(tmp_path / "data" / "mine")[0] == ["x", "y"]


def test_custom_needs_a_path(tmp_path):
    with pytest.raises(LcrError, match="--from"):
        fetch("custom", tmp_path)
