"""Reader for Reuters-21578 Distribution 1.0 (ModApte split, categories with train and test docs).

The release is SGML, not XML (undeclared entities, unescaped ``>``, control characters), so
stories are picked out with regular expressions rather than an XML parser.
"""

from __future__ import annotations

import re
import tarfile
import zlib
from collections.abc import Iterator
from pathlib import Path

from lcr.datasets.document import Document
from lcr.datasets.parsed import ParsedDataset
from lcr.errors import DataFormatError

SGM_FILES = tuple(f"reut2-{i:03d}.sgm" for i in range(22))
DESCRIPTIONS_FILE = "cat-descriptions_120396.txt"
_SOURCE_HINT = ("expected reuters21578.tar.gz (Distribution 1.0, "
                "https://kdd.ics.uci.edu/databases/reuters21578/) or a folder holding reut2-000.sgm … reut2-021.sgm")

_OPEN = re.compile(r"<REUTERS\b([^>]*)>")
_CLOSE = "</REUTERS>"
_ATTR = re.compile(r'(\w+)="([^"]*)"')
_TOPICS = re.compile(r"<TOPICS>(.*?)</TOPICS>", re.S)
_D = re.compile(r"<D>(.*?)</D>", re.S)
_TEXT = re.compile(r"<TEXT\b[^>]*>(.*?)</TEXT>", re.S)
_TITLE = re.compile(r"<TITLE>(.*?)</TITLE>", re.S)
_BODY = re.compile(r"<BODY>(.*?)</BODY>", re.S)
_TAG = re.compile(r"<[^>]*>")
# Only these entities occur; html.unescape would also expand legacy forms without ';'
# (e.g. "&reg" inside "&regulation"), which plain text must not suffer.
_ENTITY = re.compile(r"&(#\d+|lt|gt|amp|quot|apos);")
_NAMED = {"lt": "<", "gt": ">", "amp": "&", "quot": '"', "apos": "'"}
# C0 controls and DEL; \t \n \r are whitespace and collapse below anyway.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
_SPACE = re.compile(r"\s+")
_DESCRIPTION = re.compile(r"^\s*(\S.*?)\s+\(([A-Z0-9-]+)\)\s*$", re.M)


def read_reuters(source: Path) -> ParsedDataset:
    """Read Reuters-21578 with the ModApte split restricted to its 90 usable categories.

    Train is ``LEWISSPLIT="TRAIN"`` and test ``LEWISSPLIT="TEST"``, both with ``TOPICS="YES"``.
    Only TOPICS categories with at least one train and one test document are kept, and documents
    left without a category are dropped (7,770 train / 3,019 test documents on the real release).

    Args:
        source: the release archive ``reuters21578.tar.gz``, or a folder holding the
            ``reut2-NNN.sgm`` files (and optionally ``cat-descriptions_120396.txt``).

    Returns:
        Lists of documents for ``train`` and ``test``; ids are the stories' NEWID, text is the
        title and body separated by a newline; label names come from the category
        descriptions where the release gives one, else they are the topic codes. ``missing``
        names any of the 22 SGML files that are absent.

    Raises:
        DataFormatError: the source does not exist, the archive is unreadable, no SGML file is
            present, or a story is malformed.
    """
    source = Path(source)
    if source.is_dir():
        files = _read_folder(source)
    elif source.is_file():
        files = _read_archive(source)
    else:
        raise DataFormatError(source, f"no such file or folder; {_SOURCE_HINT}")
    sgm = {name: data for name, data in files.items() if name in SGM_FILES}
    if not sgm:
        raise DataFormatError(source, f"no reut2-NNN.sgm file found; {_SOURCE_HINT}")

    stories = []
    seen: dict[str, str] = {}
    for name in sorted(sgm):
        for story in _stories(source / name, sgm[name].decode("latin-1")):
            if story["id"] in seen:
                raise DataFormatError(source / name, f"NEWID {story['id']} already used in {seen[story['id']]}",
                                      line=story["line"], field="NEWID")
            seen[story["id"]] = name
            if story["split"] is not None:
                stories.append(story)

    # A category is usable only if both splits have it (ModApte's 90 of the 135 TOPICS).
    in_split = {split: {t for s in stories if s["split"] == split for t in s["topics"]} for split in ("train", "test")}
    kept = in_split["train"] & in_split["test"]
    splits: dict[str, list[Document]] = {"train": [], "test": []}
    for story in stories:
        labels = [t for t in story["topics"] if t in kept]
        if not labels:
            continue
        if not story["text"]:
            raise DataFormatError(story["path"], f"story NEWID {story['id']} has no text",
                                  line=story["line"], field="TEXT")
        splits[story["split"]].append(Document(id=story["id"], text=story["text"], labels=labels))

    descriptions = _descriptions(files.get(DESCRIPTIONS_FILE, b"").decode("latin-1"))
    names = {label: descriptions.get(label, label) for label in sorted(kept)}
    missing = [name for name in SGM_FILES if name not in sgm]
    return ParsedDataset(splits=splits, label_names=names, missing=missing)


def _read_folder(folder: Path) -> dict[str, bytes]:
    wanted = (*SGM_FILES, DESCRIPTIONS_FILE)
    return {name: (folder / name).read_bytes() for name in wanted if (folder / name).is_file()}


def _read_archive(archive: Path) -> dict[str, bytes]:
    """The SGML files (and category descriptions) of the release archive, read in one pass."""
    wanted = (*SGM_FILES, DESCRIPTIONS_FILE)
    files: dict[str, bytes] = {}
    try:
        # Streaming mode: one sequential pass, no seeking back for the member index.
        with tarfile.open(archive, mode="r|gz") as tar:
            for member in tar:
                name = Path(member.name).name
                if member.isfile() and name in wanted:
                    files[name] = tar.extractfile(member).read()
    except (tarfile.TarError, EOFError, zlib.error, OSError) as exc:
        raise DataFormatError(archive, f"not a readable .tar.gz archive ({exc}); {_SOURCE_HINT}; "
                                       "download it again if it is truncated") from exc
    return files


def _stories(path: Path, text: str) -> Iterator[dict]:
    """The stories of one SGML file, with their ModApte split (None when unused)."""
    line, counted = 1, 0  # line numbers counted incrementally: files hold 1,000 stories
    for opening in _OPEN.finditer(text):
        line += text.count("\n", counted, opening.start())
        counted = opening.start()
        end = text.find(_CLOSE, opening.end())
        following = text.find("<REUTERS", opening.end())
        if end < 0 or 0 <= following < end:
            raise DataFormatError(path, "<REUTERS> element is not closed by </REUTERS>", line=line, field="REUTERS")
        attrs = dict(_ATTR.findall(opening.group(1)))
        if not attrs.get("NEWID"):
            raise DataFormatError(path, "<REUTERS> element has no NEWID attribute", line=line, field="NEWID")
        element = text[opening.end():end]
        topics = _TOPICS.search(element)
        codes = [_clean(code) for code in _D.findall(topics.group(1))] if topics else []
        split = _modapte_split(attrs)
        yield {
            "id": attrs["NEWID"],
            "split": split,
            "topics": list(dict.fromkeys(code for code in codes if code)),
            "text": _story_text(element) if split else "",  # unused stories: save the work
            "path": path,
            "line": line,
        }


def _modapte_split(attrs: dict[str, str]) -> str | None:
    if attrs.get("TOPICS") != "YES":
        return None
    return {"TRAIN": "train", "TEST": "test"}.get(attrs.get("LEWISSPLIT", ""))


def _story_text(element: str) -> str:
    """Title and body; BRIEF stories have only a title, UNPROC ones only untagged text."""
    match = _TEXT.search(element)
    if match is None:
        return ""
    content = match.group(1)
    parts = [m.group(1) for m in (_TITLE.search(content), _BODY.search(content)) if m]
    if not parts:
        parts = [content]
    return "\n".join(p for p in map(_clean, parts) if p)


def _clean(fragment: str) -> str:
    """Plain text of an SGML fragment, on one line with single spaces."""
    # Tags go before entities are expanded, so that "&lt;Shearson>" stays as text.
    fragment = _TAG.sub(" ", fragment)
    fragment = _ENTITY.sub(_expand, fragment)
    fragment = _CONTROL.sub("", fragment)
    return _SPACE.sub(" ", fragment).strip()


def _expand(entity: re.Match) -> str:
    name = entity.group(1)
    if name.startswith("#"):
        code = int(name[1:])
        return chr(code) if code < 0x110000 else ""
    return _NAMED[name]


def _descriptions(text: str) -> dict[str, str]:
    """Topic code -> description from lines like ``Money/Foreign Exchange (MONEY-FX)``."""
    return {code.lower(): name for name, code in _DESCRIPTION.findall(text)}
