"""DVC stage ``fetch@<dataset>``: ``python -m stages.fetch DATASET`` = ``lcr fetch DATASET``."""

import sys

from lcr.cli import app

if __name__ == "__main__":
    dataset = sys.argv[1]
    app(["fetch", dataset, "--stage", f"fetch@{dataset}", *sys.argv[2:]], prog_name="lcr")
