"""Atomic writes leave either the old content or the new one, never a partial file."""

import pytest

from lcr.atomic import atomic_dir, atomic_open


def test_atomic_open_replaces_on_success(tmp_path):
    target = tmp_path / "f.txt"
    target.write_text("old")
    with atomic_open(target) as handle:
        handle.write("new")
        assert target.read_text() == "old"  # not visible before the block ends
    assert target.read_text() == "new"
    assert [p.name for p in tmp_path.iterdir()] == ["f.txt"]


def test_atomic_open_keeps_old_on_failure(tmp_path):
    target = tmp_path / "f.txt"
    target.write_text("old")
    with pytest.raises(ValueError):
        with atomic_open(target) as handle:
            handle.write("half")
            raise ValueError("boom")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["f.txt"]


def test_atomic_dir_replaces_whole_folder(tmp_path):
    target = tmp_path / "d"
    target.mkdir()
    (target / "stale.txt").write_text("x")
    with atomic_dir(target) as tmp:
        (tmp / "fresh.txt").write_text("y")
    assert [p.name for p in target.iterdir()] == ["fresh.txt"]
    with pytest.raises(RuntimeError):
        with atomic_dir(target) as tmp:
            (tmp / "partial.txt").write_text("z")
            raise RuntimeError
    assert [p.name for p in target.iterdir()] == ["fresh.txt"]
    assert [p.name for p in tmp_path.iterdir()] == ["d"]


def test_written_files_and_folders_get_the_users_umask_mode(tmp_path):
    import os
    import stat

    from lcr.atomic import atomic_dir, atomic_open

    old = os.umask(0o022)
    try:
        with atomic_open(tmp_path / "f.json") as handle:
            handle.write("{}")
        with atomic_dir(tmp_path / "model") as folder:
            (folder / "weights.bin").write_bytes(b"x")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "f.json").stat().st_mode) == 0o644
    assert stat.S_IMODE((tmp_path / "model").stat().st_mode) == 0o755
    assert stat.S_IMODE((tmp_path / "model" / "weights.bin").stat().st_mode) == 0o644
