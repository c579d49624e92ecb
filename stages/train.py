"""DVC stages ``train@<dataset>-<variant>-<seed>`` and ``sweep@<n>``.

``python -m stages.train DATASET VARIANT SEED [GAMMA]`` = ``lcr train`` into
``runs/<dataset>/<variant>-s<seed>`` (``labelcorank-g<gamma>-s<seed>`` for a gamma-sweep run),
with the flat metrics in ``metrics/<dataset>/<same name>.json``.
"""

import sys

from lcr.cli import app
from lcr.runs import run_name


if __name__ == "__main__":
    dataset, variant, seed, *rest = sys.argv[1:]
    gamma = rest[0] if rest else None
    name = run_name(variant, seed, gamma)
    stage = f"sweep@{dataset}-g{gamma}" if gamma else f"train@{dataset}-{variant}-{seed}"
    args = ["train", "--dataset", dataset, "--variant", variant, "--set", f"seed={seed}",
            "--output", f"runs/{dataset}/{name}", "--scores", f"metrics/{dataset}/{name}.json", "--stage", stage]
    if gamma:
        args += ["--set", f"gamma={gamma}"]
    app(args, prog_name="lcr")
