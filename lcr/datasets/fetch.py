"""``lcr fetch``: find a dataset's release files, check them, parse them, write the store.

Sources are tried in order:

1. an explicit path (``--from PATH``): the release archive, or a folder holding its files;
2. the mirror folder named by the environment variable ``LCR_DATA_MIRROR``, holding the release
   files under ``<mirror>/<dataset>/`` (e.g. ``reuters21578/reuters21578.tar.gz``,
   ``aapd/text_test``, ``pubmed/train.json``);
3. the public source (a URL, or Google Drive through ``gdown``), downloaded once into
   ``data/.downloads/<dataset>/``.

The SHA-256 of every release file used is recorded in ``data/checksums.json`` on first fetch;
a later fetch whose file differs is refused (delete the entry to accept a new release).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tarfile
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from lcr.atomic import atomic_open, atomic_path
from lcr.datasets import store
from lcr.datasets.parsed import ParsedDataset
from lcr.errors import LcrError

MIRROR_ENV = "LCR_DATA_MIRROR"
CHECKSUMS_FILE = "checksums.json"


@dataclass(frozen=True)
class DatasetSource:
    """Where a dataset comes from and how it is read.

    Attributes:
        name: the registry name (``data/<name>``).
        description: one line for ``lcr datasets``.
        files: release files, relative to the release folder; at least ``required`` must exist.
        required: the files without which nothing can be read.
        url: a direct download URL, or None.
        gdrive_id: a Google Drive file id (downloaded with gdown), or None.
        archive_folder: the folder inside the downloaded archive that holds ``files``.
        reader: turns the release folder (or file) into a :class:`ParsedDataset`.
        with_meta: the store keeps the documents' metadata (venue, authors, references).
    """

    name: str
    description: str
    files: tuple[str, ...]
    required: tuple[str, ...]
    reader: Callable[[Path], ParsedDataset]
    url: str | None = None
    gdrive_id: str | None = None
    archive_folder: str | None = None
    with_meta: bool = False


def _read_reuters(path: Path) -> ParsedDataset:
    from lcr.datasets.reuters import read_reuters

    archive = path / "reuters21578.tar.gz"
    return read_reuters(archive if archive.exists() else path)


def _read_aapd(path: Path) -> ParsedDataset:
    from lcr.datasets.aapd import read_aapd

    return read_aapd(path)


def _read_match(path: Path) -> ParsedDataset:
    from lcr.datasets.match import read_match

    return read_match(path)


_AAPD_FILES = tuple(f"{kind}_{split}" for split in ("train", "val", "test") for kind in ("text", "label"))
_MATCH_FILES = ("train.json", "dev.json", "test.json", "vocabulary.txt", "id2label.txt", "taxonomy.txt")
_MATCH_GDRIVE = "1pn9WhPxIR4J7Wgm5_AJLgNHvTaMexDcC"

REGISTRY: dict[str, DatasetSource] = {
    "reuters21578": DatasetSource(
        name="reuters21578",
        description="Reuters-21578 Distribution 1.0, ModApte split, 90 categories (offline default)",
        files=("reuters21578.tar.gz",),
        required=("reuters21578.tar.gz",),
        reader=_read_reuters,
        url="https://kdd.ics.uci.edu/databases/reuters21578/reuters21578.tar.gz",
    ),
    "aapd": DatasetSource(
        name="aapd",
        description="AAPD, arXiv abstracts with 54 subjects (SGM release, Yang et al. 2018)",
        files=_AAPD_FILES,
        required=("text_test", "label_test"),
        reader=_read_aapd,
        gdrive_id="1DbYWVXt_J_6wAgjzVh9LG_MG1UCjBQuS",
    ),
    "mag-cs": DatasetSource(
        name="mag-cs",
        description="MAG-CS, 705k computer-science papers, 15,809 fields of study (MATCH release)",
        files=_MATCH_FILES,
        required=("test.json",),
        reader=_read_match,
        gdrive_id=_MATCH_GDRIVE,
        archive_folder="MAG",
        with_meta=True,
    ),
    "pubmed": DatasetSource(
        name="pubmed",
        description="PubMed, 898k articles, 17,963 MeSH terms (MATCH release)",
        files=_MATCH_FILES,
        required=("test.json",),
        reader=_read_match,
        gdrive_id=_MATCH_GDRIVE,
        archive_folder="MeSH",
        with_meta=True,
    ),
}


def get_source(name: str) -> DatasetSource:
    """The registry entry of a dataset, or a clear error listing the known ones."""
    if name not in REGISTRY:
        known = ", ".join(sorted([*REGISTRY, "custom"]))
        raise LcrError(f"unknown dataset '{name}'; known datasets: {known}")
    return REGISTRY[name]


# --------------------------------------------------------------------------------------------
# Locating the release files


def _release_folder(candidate: Path, source: DatasetSource) -> Path | None:
    """The folder under ``candidate`` that holds the release files, if any does."""
    options = [candidate]
    if source.archive_folder:
        options.append(candidate / source.archive_folder)
    options.append(candidate / source.name)
    for folder in options:
        if folder.is_dir() and any((folder / f).exists() for f in source.required):
            return folder
    return None


def _extract(archive: Path, target: Path) -> Path:
    """Unpack a zip or tar archive into ``target`` (once) and return ``target``."""
    marker = target / ".extracted"
    if marker.exists():
        return target
    tmp = target.with_name(target.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        if zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as handle:
                handle.extractall(tmp)
        elif tarfile.is_tarfile(archive):
            with tarfile.open(archive) as handle:
                handle.extractall(tmp, filter="data")
        else:
            raise LcrError(f"{archive}: neither a zip nor a tar archive")
    except (zipfile.BadZipFile, tarfile.TarError, EOFError, OSError) as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise LcrError(f"{archive}: cannot unpack the archive: {exc}") from exc
    (tmp / ".extracted").touch()
    shutil.rmtree(target, ignore_errors=True)
    os.replace(tmp, target)
    return target


def _find_in_tree(root: Path, source: DatasetSource) -> Path | None:
    """Search an unpacked archive for the release folder (archives nest folders freely)."""
    for folder in [root, *sorted(p for p in root.rglob("*") if p.is_dir())]:
        if source.archive_folder and folder.name != source.archive_folder and folder != root:
            if not any((folder / f).exists() for f in source.required):
                continue
        found = _release_folder(folder, source)
        if found is not None:
            return found
    return None


def _from_path(path: Path, source: DatasetSource, downloads: Path) -> Path:
    if not path.exists():
        raise LcrError(f"--from {path}: no such file or folder")
    if path.is_dir():
        folder = _release_folder(path, source)
        if folder is None:
            raise LcrError(f"--from {path}: none of the release files {', '.join(source.required)} "
                           f"is in this folder{' or its ' + source.archive_folder + '/ subfolder' if source.archive_folder else ''}")
        return folder
    if path.name in source.files:  # a release file itself, e.g. reuters21578.tar.gz
        return path.parent
    unpacked = _extract(path, downloads / f"unpacked-{path.stem}")
    folder = _find_in_tree(unpacked, source)
    if folder is None:
        raise LcrError(f"{path}: the archive holds none of {', '.join(source.required)}")
    return folder


def _download(source: DatasetSource, downloads: Path) -> Path:
    """Download the public release into ``downloads`` (once) and return the release folder."""
    downloads.mkdir(parents=True, exist_ok=True)
    if source.url:
        target = downloads / Path(source.url).name
        if not target.exists():
            _download_url(source.url, target)
        return downloads
    if source.gdrive_id:
        archive = downloads / f"{source.gdrive_id}.archive"
        if not archive.exists():
            try:
                import gdown
            except ImportError as exc:  # pragma: no cover - gdown is a dependency
                raise LcrError("downloading from Google Drive needs gdown: pip install gdown") from exc
            with atomic_path(archive) as tmp:
                result = gdown.download(id=source.gdrive_id, output=str(tmp), quiet=False)
                if result is None:
                    raise LcrError(_manual_instructions(source, downloads))
        folder = _find_in_tree(_extract(archive, downloads / "unpacked"), source)
        if folder is None:
            raise LcrError(f"{archive}: the downloaded archive holds none of {', '.join(source.required)}")
        return folder
    raise LcrError(_manual_instructions(source, downloads))


def _download_url(url: str, target: Path) -> None:
    from tqdm.auto import tqdm

    try:
        with urllib.request.urlopen(url, timeout=60) as response, atomic_open(target, "wb") as out:
            total = int(response.headers.get("Content-Length") or 0) or None
            with tqdm(total=total, unit="B", unit_scale=True, desc=target.name) as bar:
                while chunk := response.read(1 << 20):
                    out.write(chunk)
                    bar.update(len(chunk))
    except OSError as exc:
        raise LcrError(f"cannot download {url}: {exc}. Download it by hand and pass "
                       f"--from PATH, or put it under ${MIRROR_ENV}/<dataset>/") from exc


def _manual_instructions(source: DatasetSource, downloads: Path) -> str:
    where = f"https://drive.google.com/file/d/{source.gdrive_id}" if source.gdrive_id else source.url
    return (f"could not download {source.name} automatically. Download it from {where}, then run "
            f"`lcr fetch {source.name} --from <the archive or its unpacked folder>`, or place the files "
            f"({', '.join(source.files)}) under ${MIRROR_ENV}/{source.name}/")


def locate(source: DatasetSource, explicit: str | Path | None, downloads: Path) -> tuple[Path, str]:
    """Find the release folder: explicit path, then mirror, then download.

    Returns:
        (release folder, a description of where it came from).
    """
    if explicit:
        return _from_path(Path(explicit), source, downloads), f"path:{explicit}"
    mirror = os.environ.get(MIRROR_ENV)
    if mirror:
        folder = _release_folder(Path(mirror) / source.name, source)
        if folder is not None:
            return folder, f"mirror:{folder}"
    return _download(source, downloads), f"download:{source.url or 'gdrive:' + str(source.gdrive_id)}"


# --------------------------------------------------------------------------------------------
# Checksums


def sha256(path: Path) -> str:
    """SHA-256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def verify_checksums(dataset: str, files: list[Path], record: Path) -> dict[str, str]:
    """Check files against the recorded SHA-256 sums; record new files (trust on first use).

    Raises:
        LcrError: a file's checksum differs from the recorded one.
    """
    known = json.loads(record.read_text(encoding="utf-8")) if record.exists() else {}
    entry = known.setdefault(dataset, {})
    sums = {}
    for path in files:
        digest = sha256(path)
        expected = entry.get(path.name)
        if expected is not None and expected != digest:
            raise LcrError(f"refusing {path}: its SHA-256 is {digest}, but {expected} was recorded "
                           f"for {dataset}/{path.name} in {record} on first fetch. If the release "
                           f"really changed, delete that entry and fetch again.")
        entry[path.name] = digest
        sums[path.name] = digest
    with atomic_open(record, "w", encoding="utf-8") as handle:
        json.dump(known, handle, indent=2, sort_keys=True)
        handle.write("\n")
    return sums


# --------------------------------------------------------------------------------------------
# Fetch


def fetch(
    name: str,
    data_dir: str | Path = "data",
    *,
    source_path: str | Path | None = None,
    dev_fraction: float = 0.0,
    merge_train_dev: bool = False,
    train_standin: str | None = None,
    custom_options: dict | None = None,
    progress: bool = True,
) -> dict:
    """Fetch a dataset and write its normalised store ``data_dir/<name>``.

    Args:
        name: a registry name, or ``custom`` (then ``source_path`` is required and the store is
            written to ``data_dir/<custom_options['name']>``, default ``custom``).
        data_dir: the data folder.
        source_path: an explicit archive, release file or folder (``--from``).
        dev_fraction, merge_train_dev, train_standin: see :class:`lcr.config.DatasetParams`.
        custom_options: field names and separators for ``custom`` (see ``read_custom``).
        progress: show progress bars.

    Returns:
        The dataset statistics (``stats.json``).
    """
    data_dir = Path(data_dir)
    if name == "custom":
        return _fetch_custom(data_dir, source_path, dict(custom_options or {}), dev_fraction, progress)
    source = get_source(name)
    folder, origin = locate(source, source_path, data_dir / ".downloads" / name)
    present = [folder / f for f in source.files if (folder / f).exists()]
    if not any(p.name in source.required for p in present):
        raise LcrError(f"{folder}: none of the release files {', '.join(source.required)} found")
    checksums = verify_checksums(name, present, data_dir / CHECKSUMS_FILE)
    parsed = source.reader(folder)
    info = {
        "source": origin,
        "sha256": checksums,
        "missing": parsed.missing,
        "with_meta": source.with_meta,
    }
    return store.write_store(
        data_dir / name,
        parsed.splits,
        label_names=parsed.label_names,
        label_order=parsed.label_order,
        dev_fraction=dev_fraction,
        merge_train_dev=merge_train_dev,
        train_standin=train_standin,
        info=info,
        progress=progress,
    )


def _fetch_custom(data_dir: Path, path, options: dict, dev_fraction: float, progress: bool) -> dict:
    from lcr.datasets.custom import read_custom

    if not path:
        raise LcrError("the custom dataset needs --from PATH (a JSONL/CSV/TSV file or a folder of them)")
    path = Path(path)
    if not path.exists():
        raise LcrError(f"--from {path}: no such file or folder")
    store_name = options.pop("name", None) or "custom"
    parsed = read_custom(path, **options)
    files = [path] if path.is_file() else sorted(p for p in path.iterdir() if p.is_file())
    info = {
        "source": f"path:{path}",
        "sha256": {p.name: sha256(p) for p in files},
        "missing": parsed.missing,
    }
    stats = store.write_store(data_dir / store_name, parsed.splits, label_names=parsed.label_names,
                              label_order=parsed.label_order, dev_fraction=dev_fraction,
                              info={**info, "duplicates": parsed.duplicates}, progress=progress)
    return stats
