"""DVC stage ``fetch@<dataset>``: ``python -m stages.fetch DATASET`` = ``lcr fetch DATASET``."""

import sys

from lcr.cli import app

if __name__ == "__main__":
    app(["fetch", *sys.argv[1:]], prog_name="lcr")
