"""DVC stage ``register@<dataset>``: ``lcr register`` on the ``labelcorank`` run of the first seed,
with the label-set calibration of ``calibrate@<dataset>``."""

import sys

from lcr.cli import app

if __name__ == "__main__":
    dataset, seed = sys.argv[1:3]
    app(["register", "--dataset", dataset, "--from-run", f"runs/{dataset}/labelcorank-s{seed}",
         "--record", f"models/{dataset}.json", "--calibration", f"calibrations/{dataset}.json",
         "--stage", f"register@{dataset}"], prog_name="lcr")
