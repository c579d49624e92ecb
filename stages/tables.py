"""DVC stage ``tables``: ``python -m stages.tables`` = ``lcr tables`` (Tables 1-13 and plots)."""

import sys

from lcr.cli import app

if __name__ == "__main__":
    app(["tables", "--stage", "tables", *sys.argv[1:]], prog_name="lcr")
