"""DVC stage ``oracle@<dataset>-<seed>``: ``lcr oracle`` on the ``roberta`` run of that seed."""

import sys

from lcr.cli import app

if __name__ == "__main__":
    dataset, seed = sys.argv[1:3]
    app(["oracle", "--dataset", dataset, "--from-run", f"runs/{dataset}/roberta-s{seed}",
         "--output", f"runs/{dataset}/roberta-oracle-s{seed}", "--scores", f"metrics/{dataset}/roberta-oracle-s{seed}.json",
         "--stage", f"oracle@{dataset}-{seed}"], prog_name="lcr")
