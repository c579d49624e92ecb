"""DVC stage ``prepare@<dataset>``: ``python -m stages.prepare DATASET`` = ``lcr prepare DATASET``."""

import sys

from lcr.cli import app

if __name__ == "__main__":
    app(["prepare", *sys.argv[1:]], prog_name="lcr")
