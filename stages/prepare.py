"""DVC stage ``prepare@<dataset>``: ``python -m stages.prepare DATASET`` = ``lcr prepare DATASET``."""

import sys

from lcr.cli import app

if __name__ == "__main__":
    dataset = sys.argv[1]
    app(["prepare", dataset, "--stage", f"prepare@{dataset}", *sys.argv[2:]], prog_name="lcr")
