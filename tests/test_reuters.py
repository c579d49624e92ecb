"""Reuters-21578 reader: ModApte split rules, text extraction, archive handling, errors."""

from __future__ import annotations

import gzip
import io
import tarfile
from collections import Counter

import pytest

from lcr.datasets.reuters import SGM_FILES, read_reuters
from lcr.errors import DataFormatError


def story(newid, topics, split, codes, text):
    d = "".join(f"<D>{code}</D>" for code in codes)
    return (f'<REUTERS TOPICS="{topics}" LEWISSPLIT="{split}" CGISPLIT="TRAINING-SET" OLDID="9{newid}" '
            f'NEWID="{newid}">\n<DATE>26-FEB-1987 15:01:01.79</DATE>\n<TOPICS>{d}</TOPICS>\n'
            f"<PLACES><D>usa</D></PLACES>\n<UNKNOWN>&#5;&#5;&#5;C T</UNKNOWN>\n{text}\n</REUTERS>\n")


FIRST = '<!DOCTYPE lewis SYSTEM "lewis.dtd">\n' + "".join([
    story(1, "YES", "TRAIN", ["earn"], "<TEXT>&#2;\n<TITLE>ACME &lt;ACM> PROFITS &amp; SALES UP</TITLE>\n"
          "<DATELINE>    NEW YORK, Feb 26 - </DATELINE><BODY>Shr  10 cts vs\n   8 cts.\n"
          "    Net 1.2 mln vs 1.0 mln.\n Reuter\n&#3;</BODY></TEXT>"),
    story(2, "YES", "TRAIN", ["earn", "grain"], "<TEXT><TITLE>FARM PROFITS</TITLE><BODY>Grain up.</BODY></TEXT>"),
    story(3, "YES", "TEST", ["earn"], '<TEXT TYPE="BRIEF">&#2;\n<TITLE>BRIEF EARNINGS STORY</TITLE>\n&#3;\n</TEXT>'),
    story(4, "NO", "TRAIN", ["earn"], "<TEXT><TITLE>TOPICS NO</TITLE><BODY>Unused.</BODY></TEXT>"),
])
SECOND = "".join([
    story(5, "YES", "TRAIN", ["acq"], "<TEXT><TITLE>ACQ TRAIN</TITLE><BODY>Bought it.</BODY></TEXT>"),
    story(6, "YES", "TEST", ["acq", "acq"], '<TEXT TYPE="UNPROC">&#2;\nRaw  table\n1,000 vs 2,000\n&#3;</TEXT>'),
    story(7, "YES", "NOT-USED", ["earn"], "<TEXT><TITLE>NOT USED</TITLE><BODY>x</BODY></TEXT>"),
    story(8, "YES", "TRAIN", ["grain"], "<TEXT><TITLE>ONLY GRAIN</TITLE><BODY>train-only topic</BODY></TEXT>"),
    story(9, "YES", "TEST", [], "<TEXT><TITLE>NO TOPICS</TITLE><BODY>none</BODY></TEXT>"),
    story(10, "BYPASS", "TRAIN", ["earn"], "<TEXT><TITLE>BYPASS</TITLE><BODY>x</BODY></TEXT>"),
])
DESCRIPTIONS = "**Corporate Codes (2)\n\nMergers/Acquisitions (ACQ)\nEarnings and Earnings Forecasts (EARN)\n"


def write_folder(folder, files):
    folder.mkdir(exist_ok=True)
    for name, content in files.items():
        (folder / name).write_bytes(content.encode("latin-1"))
    return folder


def write_archive(path, files):
    with tarfile.open(path, "w:gz") as tar:
        for name, content in files.items():
            data = content.encode("latin-1")
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def check_fixture(parsed, with_descriptions):
    train, test = parsed.splits["train"], parsed.splits["test"]
    assert [d.id for d in train] == ["1", "2", "5"]
    assert [d.id for d in test] == ["3", "6"]
    # grain has no test document, so it is dropped (and story 8 with it); acq listed twice once.
    assert [d.labels for d in train] == [["earn"], ["earn"], ["acq"]]
    assert [d.labels for d in test] == [["earn"], ["acq"]]
    assert train[0].text == "ACME <ACM> PROFITS & SALES UP\nShr 10 cts vs 8 cts. Net 1.2 mln vs 1.0 mln. Reuter"
    assert test[0].text == "BRIEF EARNINGS STORY"
    assert test[1].text == "Raw table 1,000 vs 2,000"
    expected = ({"acq": "Mergers/Acquisitions", "earn": "Earnings and Earnings Forecasts"}
                if with_descriptions else {"acq": "acq", "earn": "earn"})
    assert parsed.label_names == expected
    assert parsed.missing == list(SGM_FILES[2:])
    assert parsed.label_order is None


def test_folder(tmp_path):
    folder = write_folder(tmp_path / "r", {"reut2-000.sgm": FIRST, "reut2-001.sgm": SECOND, "README.txt": "x"})
    check_fixture(read_reuters(folder), with_descriptions=False)


def test_archive(tmp_path):
    archive = write_archive(tmp_path / "reuters21578.tar.gz", {
        "reut2-001.sgm": SECOND, "README.txt": "readme", "reut2-000.sgm": FIRST,
        "cat-descriptions_120396.txt": DESCRIPTIONS})
    check_fixture(read_reuters(archive), with_descriptions=True)


def test_latin1_and_control_characters(tmp_path):
    text = "<TEXT><TITLE>CAF\xc9 &#127;SALES</TITLE><BODY>up\x1b &#22;5 pct</BODY></TEXT>"
    sgm = story(1, "YES", "TRAIN", ["earn"], text) + story(2, "YES", "TEST", ["earn"], text)
    parsed = read_reuters(write_folder(tmp_path / "r", {"reut2-000.sgm": sgm}))
    assert parsed.splits["train"][0].text == "CAF\xc9 SALES\nup 5 pct"


def test_missing_source(tmp_path):
    with pytest.raises(DataFormatError, match="no such file or folder.*reuters21578.tar.gz"):
        read_reuters(tmp_path / "absent.tar.gz")


@pytest.mark.parametrize("content", [b"not an archive", gzip.compress(b"x" * 1000)[:30]])
def test_corrupt_archive(tmp_path, content):
    archive = tmp_path / "reuters21578.tar.gz"
    archive.write_bytes(content)
    with pytest.raises(DataFormatError, match="reuters21578.tar.gz: not a readable .tar.gz archive"):
        read_reuters(archive)


def test_truncated_archive(tmp_path):
    archive = write_archive(tmp_path / "reuters21578.tar.gz", {"reut2-000.sgm": FIRST * 50})
    archive.write_bytes(archive.read_bytes()[:-200])
    with pytest.raises(DataFormatError, match="not a readable .tar.gz archive"):
        read_reuters(archive)


def test_folder_without_sgml(tmp_path):
    (tmp_path / "README.txt").write_text("x")
    with pytest.raises(DataFormatError, match="no reut2-NNN.sgm file found"):
        read_reuters(tmp_path)


def test_unclosed_story(tmp_path):
    sgm = FIRST.replace("</REUTERS>", "", 2)  # story 1 runs into story 2
    folder = write_folder(tmp_path / "r", {"reut2-000.sgm": sgm})
    with pytest.raises(DataFormatError) as caught:
        read_reuters(folder)
    assert str(caught.value).startswith(f"{folder / 'reut2-000.sgm'}, line 2, field 'REUTERS': ")
    assert "not closed by </REUTERS>" in str(caught.value)


def test_story_without_newid(tmp_path):
    sgm = FIRST.replace(' NEWID="2"', "")
    folder = write_folder(tmp_path / "r", {"reut2-000.sgm": sgm})
    with pytest.raises(DataFormatError) as caught:
        read_reuters(folder)
    line = sgm[:sgm.index('OLDID="92"')].count("\n") + 1
    assert (caught.value.path, caught.value.line, caught.value.field) == (str(folder / "reut2-000.sgm"), line, "NEWID")


def test_duplicate_newid(tmp_path):
    folder = write_folder(tmp_path / "r", {"reut2-000.sgm": FIRST, "reut2-001.sgm": FIRST})
    with pytest.raises(DataFormatError, match=r"reut2-001.sgm, line 2, field 'NEWID': NEWID 1 already used"):
        read_reuters(folder)


def test_real_archive(mirror):
    archive = mirror / "reuters21578" / "reuters21578.tar.gz"
    if not archive.exists():
        pytest.skip(f"{archive} not in the mirror")
    parsed = read_reuters(archive)
    train, test = parsed.splits["train"], parsed.splits["test"]
    assert (len(train), len(test), len(parsed.label_names)) == (7770, 3019, 90)
    assert parsed.missing == []
    per_label = Counter(label for doc in train for label in doc.labels)
    assert set(per_label) == set(parsed.label_names) == {l for doc in test for l in doc.labels}
    assert sum(count <= 5 for count in per_label.values()) == 25  # the mirror README's long tail
    assert per_label.most_common(1) == [("earn", 2877)]
    assert train[0].id == "1" and train[0].text.startswith("BAHIA COCOA REVIEW\nShowers continued")
    assert all(doc.text and "&lt;" not in doc.text and "\x03" not in doc.text for doc in train + test)
