"""Keep ``bench/BENCHMARKS.md`` up to date, one section per benchmark.

Each benchmark owns the text between ``<!-- begin NAME -->`` and ``<!-- end NAME -->`` and
rewrites only that, so benchmarks can run separately without clobbering each other's figures.
"""

from __future__ import annotations

import datetime as _dt
import os
import platform
import re
import shlex
import sys
from pathlib import Path

from lcr.atomic import atomic_open

BENCHMARKS = Path(__file__).resolve().parent / "BENCHMARKS.md"

_HEADER = """# Benchmarks

Figures measured by the scripts in `bench/`; each section names the command that produced it
and is rewritten by that command (between its `begin`/`end` markers).
"""


def update_section(name: str, markdown: str, path: str | Path = BENCHMARKS) -> Path:
    """Replace the section ``name`` of the benchmarks file, or append it when absent.

    Args:
        name: the section's name, as in ``<!-- begin NAME -->``.
        markdown: the section's new content (without the markers).
        path: the benchmarks file (created with a short header when missing).

    Returns:
        ``path``.
    """
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", name):
        raise ValueError(f"section name {name!r}: use letters, digits, '_', '.', '-'")
    path = Path(path)
    text = path.read_text(encoding="utf-8") if path.exists() else _HEADER
    begin, end = f"<!-- begin {name} -->", f"<!-- end {name} -->"
    block = f"{begin}\n{markdown.strip()}\n{end}"
    pattern = re.compile(re.escape(begin) + r".*?" + re.escape(end), re.DOTALL)
    if pattern.search(text):
        # A function replacement keeps backslashes in the markdown literal.
        text = pattern.sub(lambda _: block, text, count=1)
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    with atomic_open(path, "w", encoding="utf-8") as handle:
        handle.write(text)
    return path


def command_line(command: str, argv: list[str] | None) -> str:
    """The exact command a benchmark ran, for its report (``argv`` None = ``sys.argv[1:]``)."""
    return " ".join([command, shlex.join(argv if argv is not None else sys.argv[1:])]).strip()


def reset_peak_rss() -> bool:
    """Reset this process's peak RSS (``VmHWM``) to its current RSS, so the next peak is the
    next step's; False where the kernel does not allow it (Linux < 4.0, other systems)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def memory_bytes() -> int | None:
    """Total physical memory of this machine, or ``None`` when it cannot be read."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def machine() -> str:
    """One line describing the machine: platform, CPU, cores, memory, Python."""
    memory = memory_bytes()
    cpu = platform.processor() or platform.machine()
    try:  # the model name is more telling than "x86_64"
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    parts = [platform.platform(), cpu, f"{os.cpu_count()} CPUs"]
    if hasattr(os, "sched_getaffinity"):
        usable = len(os.sched_getaffinity(0))
        if usable != os.cpu_count():
            parts.append(f"{usable} usable")
    if memory:
        parts.append(f"{memory / 2**30:.1f} GiB RAM")
    parts.append(f"Python {sys.version.split()[0]}")
    return ", ".join(parts)


def today() -> str:
    """The date, ISO format (UTC)."""
    return _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d")


def rescored_header(title: str, command: str, runs: list[dict], revision: str, action: str = "scored") -> list[str]:
    """The first lines of a section about runs trained earlier and scored now: its title, the
    command, the commits the runs were trained at (each ``run["commit"]``) and this one."""
    trained = ", ".join(dict.fromkeys(r["commit"] or "unknown" for r in runs))
    return [f"## {title}", "", f"- Command: `{command}`",
            f"- Commit: runs trained at {trained}; {action} at {revision}; date: {today()}"]
