"""DVC stage ``calibrate@<dataset>``: ``lcr calibrate`` on the ``labelcorank`` run of the first
seed, written to ``calibrations/<dataset>.json`` (the run folder is the train stage's output, so
the calibration is this stage's own; ``register@<dataset>`` puts it into the registered model)."""

import sys

from lcr.cli import app

if __name__ == "__main__":
    dataset, seed = sys.argv[1:3]
    app(["calibrate", "--dataset", dataset, "--from-run", f"runs/{dataset}/labelcorank-s{seed}",
         "--output", f"calibrations/{dataset}.json", "--stage", f"calibrate@{dataset}"], prog_name="lcr")
