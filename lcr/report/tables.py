"""The paper's Tables 1-13, rebuilt from finished runs and set beside the paper's numbers.

A finished run is a folder anywhere under a runs directory that holds the ``metrics.json``
written by ``lcr train`` or ``lcr oracle`` (and, when the run was tracked, ``mlflow_run.json``
with its MLflow run id). :func:`collect_runs` reads them all into one long table,
:func:`build_tables` turns that table into the paper's tables, and :func:`write_tables` writes
each one as Markdown and CSV, with an index (``README.md``), the data of the γ sweep and of the
training curves as CSV (for ``dvc plots``) and both as PNG figures. :func:`make_tables` does
all of it in one call (``lcr tables`` and the DVC stage).

Every table row of the paper is kept: a row we have not run (a baseline without a finished
run) says ``not run``, the GPT-4o row of Table 7 says that it
is not reproduced. A measured cell comes with the paper's value and the difference
``measured - paper``. Several seeds of one setting are combined as the paper does: the mean
(MAG-CS and PubMed, "the average of three trials"; the standard deviation is reported too) or
the best run (AAPD, "the best experimental results"; the seed with the best ``nDCG@5`` on the
full evaluation split is picked and named). Datasets that are not in the paper (Reuters-21578,
custom corpora) get the same kinds of tables with empty paper columns.

Which row reads which runs:

* main results, head/tail: the baselines' runs (``xml-cnn`` "XML-CNN", ``meshprobenet``,
  ``attentionxml``, ``transformer``, ``star-transformer``, ``bertxml``, ``match``, ``ligcn``
  "RoBERTa-LiGCN", ``gudn`` "GUDN"; any γ), and as below;
* main results, head/tail, reranker comparison: ``roberta`` runs ("RoBERTa"), ``labelcorank``
  runs at the dataset's main γ ("LabelCoRank") and ``roberta-oracle`` runs ("RoBERTa*", the
  ones reranking a top ``10``, as in the paper, when there are such);
* ablations: ``no_cooc``, ``no_rank``, ``no_pos``, ``no_rerank`` and ``labelcorank`` at the
  main γ;
* γ sweep: ``labelcorank`` runs at every γ (the main-γ runs are the main γ's row).

Runs of one dataset are compared on one evaluation split: the split most of its runs were
evaluated on (``test`` on a tie). When one setting (dataset, variant, γ, seed, split) was run
more than once, the most recently written ``metrics.json`` wins. The inventory table
(``runs``) lists every run found, the tables it went into and, for the others, why not.

This module is library code: it reads files and builds :class:`pandas.DataFrame` objects, and
knows nothing of MLflow, DVC or the command line.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import pandas as pd

from lcr.atomic import atomic_open
from lcr.errors import LcrError
from lcr.paper import PAPER_MAIN_GAMMA
from lcr.runs import read_json, scan_runs
from lcr.models.variants import LABELCORANK_FAMILY, PAPER_ROWS

#: The paper's metric columns, in its order.
METRICS = ("P@1", "P@3", "P@5", "nDCG@3", "nDCG@5")
# The first prediction S1 of the LabelCoRank family, scored like the final one (training writes
# them into eval.full): shown beside the final numbers as the gain of the reranking stage.
STAGE1_METRICS = ("s1_P@1", "s1_nDCG@5")
#: Metric (on the full evaluation split) that picks the best seed when aggregating by "best".
SELECT_METRIC = "nDCG@5"
#: The paper's datasets, in the order of its tables.
PAPER_DATASETS = ("mag-cs", "pubmed", "aapd")
#: How the paper combines repeated runs: mean of three trials (Tables 2, 3), best run (Table 4).
PAPER_AGGREGATE = {"mag-cs": "mean", "pubmed": "mean", "aapd": "best"}
#: Ways to combine the seeds of one setting.
AGGREGATES = ("mean", "best")
#: RoBERTa* reranks RoBERTa's top 10 with the gold labels (paper, Table 7).
ORACLE_TOP = 10

#: Variant -> the paper's row name.
VARIANT_ROWS = PAPER_ROWS
ROW_VARIANTS = {row: variant for variant, row in VARIANT_ROWS.items()}
#: The rows of the main and head/tail tables in the paper's order (every system of the paper is
#: built); tables of datasets outside the paper show a baseline's row only when it has runs.
MAIN_ROW_VARIANTS = ("tfidf", "bonsai", "xml-cnn", "meshprobenet", "attentionxml", "transformer", "star-transformer",
                     "roberta", "bertxml", "match", "ligcn", "gudn", "labelcorank")
ABLATION_VARIANTS = ("no_cooc", "no_rank", "no_pos", "no_rerank", "labelcorank")

MEASURED = "measured"
NOT_RUN = "not run"
#: Paper rows that this project cannot reproduce, with the status shown instead of numbers.
NOT_REPRODUCED = {"RoBERTa+GPT-4o": "not reproduced (needs GPT-4o)"}

#: Table kinds, in the order they are written; the paper's tables have numbers 1-13.
KINDS = ("stats", "main", "head-tail", "reranker-comparison", "ablation", "gamma", "runs")
_KIND_TITLES = {
    "main": "main results",
    "head-tail": "head and tail label subsets",
    "reranker-comparison": "reranker comparison",
    "ablation": "ablations",
    "gamma": "γ sweep (number of labels in the sequence S)",
}
_DISPLAY = {"mag-cs": "MAG-CS", "pubmed": "PubMed", "aapd": "AAPD"}
#: Table 1 columns: (ours, paper, decimals); ``None`` for a side that does not have it.
_STATS_COLUMNS = (("N_trn", "N_trn", 0), ("N_dev", None, 0), ("N_tst", "N_tst", 0), ("D", "D_vocab", 0),
                  ("L", "L_labels", 0), ("L_avg", "L_avg", 4), ("W_avg", "W_avg", 2))
_RUN_KEYS = ("run", "dataset", "variant", "seed", "gamma", "eval_split", "top")



@dataclass
class PaperTable:
    """One table: its data, its title and what to know when reading it.

    Attributes:
        key: file stem, e.g. ``table02_mag-cs_main`` or ``reuters21578_ablation``.
        kind: one of :data:`KINDS`.
        title: heading, e.g. ``Table 2. Results on MAG-CS``.
        description: one line for the index.
        frame: the rows. Result tables have the columns ``row`` (the paper's row name; γ in
            the sweeps), ``variant, gamma`` (γ sweeps also ``main_gamma``, a bool), ``subset,
            status`` (``measured``, ``not run`` or why not reproduced), ``runs`` (how many runs
            were considered), ``seeds``, ``aggregate`` (how they were combined; the selected seed
            for "best"), then per metric ``M``, ``M std``, ``M paper`` and ``M diff``
            (``measured - paper``), then ``run_ids`` (MLflow run ids of the runs shown,
            ``;``-separated) and ``run_dirs`` (their folders relative to the runs folder).
        number: the paper's table number (``None`` for tables the paper does not have).
        dataset: the dataset (``None`` for Table 1 and the inventory).
        notes: sentences printed under the table.
        sources: per row label, the runs considered: dicts with ``seed``, ``run_id``, ``run``
            and ``selected`` (the run whose numbers are shown, for "best").
    """

    key: str
    kind: str
    title: str
    description: str
    frame: pd.DataFrame
    number: int | None = None
    dataset: str | None = None
    notes: list[str] = field(default_factory=list)
    sources: dict[str, list[dict]] = field(default_factory=dict)


# --------------------------------------------------------------------------------------------
# The paper's numbers


def paper_results() -> pd.DataFrame:
    """The paper's Tables 2-13 (package data ``lcr/paper/results.csv``).

    Returns:
        One row per table row: ``table`` (int), ``kind`` (``main``, ``head-tail``,
        ``reranker-comparison``, ``ablation``, ``gamma``), ``dataset``, ``subset`` (``full``,
        ``head``, ``tail``), ``model_or_setting`` (the row name; γ for the sweeps) and the
        :data:`METRICS` (NaN where the paper has no number).
    """
    with resources.files("lcr.paper").joinpath("results.csv").open("r", encoding="utf-8") as handle:
        frame = pd.read_csv(handle, dtype={"model_or_setting": str})
    return frame


def paper_dataset_stats() -> pd.DataFrame:
    """The paper's Table 1 (package data ``lcr/paper/dataset_stats.csv``).

    Returns:
        One row per dataset: ``dataset, N_trn, N_tst, D_vocab, L_labels, L_avg, W_avg``.
    """
    with resources.files("lcr.paper").joinpath("dataset_stats.csv").open("r", encoding="utf-8") as handle:
        return pd.read_csv(handle)


# --------------------------------------------------------------------------------------------
# Reading runs


def collect_runs(runs_dir: str | Path) -> pd.DataFrame:
    """Read every finished run under ``runs_dir`` into a long table.

    Args:
        runs_dir: folder searched recursively for ``metrics.json`` (hidden folders, such as
            the temporary folders of atomic writes, are skipped).

    Returns:
        One row per (run, evaluation subset) with the columns ``run`` (the run folder relative
        to ``runs_dir``), ``dataset``, ``variant``, ``seed``, ``gamma``, ``eval_split``, ``top``
        (the oracle's top-m; NA for trained runs), ``subset`` (``full``, ``head``, ``tail``),
        every metric in the file (``P@1`` ... ``n_docs``), ``best_epoch``, ``run_id``,
        ``experiment_id``, ``tracking_uri`` (empty without ``mlflow_run.json``), ``path`` (the
        run folder) and ``mtime`` (of ``metrics.json``). ``frame.attrs["unfinished"]`` lists
        the run folders that were started but hold no ``metrics.json`` yet.

    Raises:
        LcrError: ``runs_dir`` does not exist, or a ``metrics.json`` / ``mlflow_run.json`` is
            unreadable or lacks what a finished run writes (the message names the file).
    """
    records, unfinished = scan_runs(runs_dir)
    return _runs_frame(records, unfinished)


def collect_history(runs_dir: str | Path) -> pd.DataFrame:
    """The dev metrics after each epoch of every finished training run under ``runs_dir``.

    Returns:
        One row per (run, epoch): ``run, dataset, variant, seed, gamma, epoch, step`` and the
        dev metrics logged for that epoch. Oracle runs have no history.

    Raises:
        LcrError: as :func:`collect_runs`.
    """
    records, _ = scan_runs(runs_dir)
    return _history_frame(records)


def _runs_frame(records: list[dict], unfinished: Sequence[str] = ()) -> pd.DataFrame:
    rows = []
    for record in records:
        base = {k: record[k] for k in _RUN_KEYS}
        tail = {k: record[k] for k in ("best_epoch", "run_id", "experiment_id", "tracking_uri", "path", "mtime")}
        for subset, values in record["subsets"].items():
            rows.append({**base, "subset": subset, **values, **tail})
    head = [*_RUN_KEYS, "subset", *METRICS]
    tail = ["best_epoch", "run_id", "experiment_id", "tracking_uri", "path", "mtime"]
    frame = pd.DataFrame(rows) if rows else pd.DataFrame(columns=[*head, *tail])
    for column in (*head, *tail):
        if column not in frame:
            frame[column] = pd.NA
    others = [c for c in frame.columns if c not in head and c not in tail]  # n_docs, PSP@k, F1 ...
    frame = frame[[*head, *others, *tail]]
    for column in ("seed", "gamma", "top", "best_epoch"):
        frame[column] = frame[column].astype("Int64")
    frame.attrs["unfinished"] = list(unfinished)
    return frame


def _history_frame(records: list[dict]) -> pd.DataFrame:
    rows = []
    for record in records:
        for entry in record["history"]:
            rows.append({"run": record["run"], "dataset": record["dataset"], "variant": record["variant"],
                         "seed": record["seed"], "gamma": record["gamma"], **entry})
    head = ["run", "dataset", "variant", "seed", "gamma", "epoch", "step"]
    frame = pd.DataFrame(rows) if rows else pd.DataFrame(columns=[*head, *METRICS])
    for column in head:
        if column not in frame:
            frame[column] = pd.NA
    frame = frame[[*head, *[c for c in frame.columns if c not in head]]]
    for column in ("seed", "gamma", "epoch", "step"):
        frame[column] = frame[column].astype("Int64")
    return frame


def _records_from_frame(runs: pd.DataFrame) -> list[dict]:
    """Back from :func:`collect_runs`' long table to one dict per run."""
    missing = {"run", "dataset", "variant", "subset"} - set(runs.columns)
    if missing:
        raise LcrError(f"the runs table lacks the columns {sorted(missing)}: build it with collect_runs()")
    meta = {"run", "dataset", "variant", "seed", "gamma", "eval_split", "top", "subset", "best_epoch",
            "run_id", "experiment_id", "tracking_uri", "path", "mtime"}
    metric_columns = [c for c in runs.columns if c not in meta]
    records: dict[str, dict] = {}
    for row in runs.to_dict("records"):
        record = records.get(row["run"])
        if record is None:
            record = records[row["run"]] = {
                "run": row["run"], "dataset": row["dataset"], "variant": row["variant"],
                "seed": _na(row.get("seed")), "gamma": _na(row.get("gamma")),
                "eval_split": _na(row.get("eval_split")) or "test", "top": _na(row.get("top")),
                "run_id": _na(row.get("run_id")) or "", "path": _na(row.get("path")) or row["run"],
                "mtime": _na(row.get("mtime")) or 0.0, "subsets": {}}
            for key in ("seed", "gamma", "top"):
                if record[key] is not None:
                    record[key] = int(record[key])
        record["subsets"][row["subset"]] = {c: _float(row[c]) for c in metric_columns}
    return list(records.values())


def _na(value):
    return None if value is None or (not isinstance(value, str) and pd.isna(value)) else value


def _float(value) -> float:
    value = _na(value)
    return math.nan if value is None else float(value)


# --------------------------------------------------------------------------------------------
# Building the tables


class _Pool:
    """The runs the tables may use, after filtering, de-duplication and split choice."""

    def __init__(self, records: list[dict], datasets: Sequence[str]):
        self.reasons: dict[str, str] = {}
        self.used: dict[str, set[str]] = defaultdict(set)
        self.records = {r["run"]: r for r in records}
        candidates = []
        for record in records:
            if record["variant"] not in VARIANT_ROWS:
                self.reasons[record["run"]] = (f"ignored: unknown variant '{record['variant']}' "
                                               f"(known: {', '.join(VARIANT_ROWS)})")
            elif record["dataset"] not in datasets:
                self.reasons[record["run"]] = f"ignored: dataset '{record['dataset']}' is not reported"
            else:
                candidates.append(record)
        self.split: dict[str, str] = {}
        for dataset in datasets:
            counts = Counter(r["eval_split"] for r in candidates if r["dataset"] == dataset)
            if counts:
                top = max(counts.values())
                tied = sorted(s for s, n in counts.items() if n == top)
                self.split[dataset] = "test" if "test" in tied else tied[0]
        latest: dict[tuple, dict] = {}
        for record in candidates:
            split = self.split[record["dataset"]]
            if record["eval_split"] != split:
                self.reasons[record["run"]] = (f"not used: evaluated on '{record['eval_split']}'; "
                                               f"the {record['dataset']} tables use '{split}'")
                continue
            key = (record["dataset"], record["variant"], record["gamma"], record["seed"], record["top"])
            other = latest.get(key)
            if other is None or (record["mtime"], record["run"]) > (other["mtime"], other["run"]):
                latest[key] = record
                if other is not None:
                    self.reasons[other["run"]] = f"superseded by {record['run']} (same setting, newer)"
            else:
                self.reasons[record["run"]] = f"superseded by {other['run']} (same setting, newer)"
        self.active = sorted(latest.values(), key=lambda r: (r["seed"] if r["seed"] is not None else -1, r["run"]))

    def select(self, dataset: str, variant: str, gamma: int | None) -> list[dict]:
        """The runs of one table row (before aggregation)."""
        runs = [r for r in self.active if r["dataset"] == dataset and r["variant"] == variant]
        if variant in LABELCORANK_FAMILY:
            runs = [r for r in runs if r["gamma"] == gamma]
        if variant == "roberta-oracle" and any(r["top"] == ORACLE_TOP for r in runs):
            runs = [r for r in runs if r["top"] == ORACLE_TOP]
        return runs

    def gammas(self, dataset: str, variant: str = "labelcorank") -> list[int]:
        return sorted({r["gamma"] for r in self.active
                       if r["dataset"] == dataset and r["variant"] == variant and r["gamma"] is not None})


def _aggregate(runs: list[dict], subset: str, mode: str) -> tuple[dict, list[dict], str]:
    """Combine the runs of one row.

    Returns:
        (values: metric -> measured / std, the runs whose numbers are shown, a description).
    """
    runs = [r for r in runs if subset in r["subsets"]]
    if not runs:
        return {}, [], ""
    if mode == "best" and len(runs) > 1:
        def score(run):
            value = run["subsets"]["full"].get(SELECT_METRIC, math.nan)
            return -math.inf if math.isnan(value) else value
        best = max(runs, key=lambda r: (score(r), -(r["seed"] if r["seed"] is not None else 0)))
        values = {m: best["subsets"][subset].get(m, math.nan) for m in METRICS + STAGE1_METRICS}
        return values, [best], f"best of {len(runs)} by full {SELECT_METRIC}: seed {_seed(best)}"
    if mode == "best" or len(runs) == 1:
        run = runs[0]
        return ({m: run["subsets"][subset].get(m, math.nan) for m in METRICS + STAGE1_METRICS}, [run], f"single run: seed {_seed(run)}")
    values = {}
    for metric in METRICS + STAGE1_METRICS:
        column = pd.Series([r["subsets"][subset].get(metric, math.nan) for r in runs], dtype=float)
        values[metric] = float(column.mean())
        values[f"{metric} std"] = float(column.std(ddof=1))
    return values, runs, f"mean of {len(runs)} (± sample std)"


def _seed(run: dict) -> str:
    return "?" if run["seed"] is None else str(run["seed"])


def _result_row(pool: _Pool, table: PaperTable, *, label: str, dataset: str, variant: str | None,
                gamma: int | None, subset: str, paper: Mapping[str, float] | None, mode: str,
                status: str | None = None) -> dict:
    row = {"row": label, "variant": variant or "", "gamma": gamma if variant in LABELCORANK_FAMILY else None,
           "subset": subset, "status": status or NOT_RUN, "runs": 0, "seeds": "", "aggregate": ""}
    values, shown = {}, []
    if status is None and variant is not None:
        considered = pool.select(dataset, variant, gamma)
        for run in considered:
            pool.used[run["run"]].add(table.key)
        values, shown, description = _aggregate(considered, subset, mode)
        if shown:
            row.update(status=MEASURED, runs=len(considered), aggregate=description,
                       seeds=",".join(_seed(r) for r in considered))
            chosen = {r["run"] for r in shown}
            table.sources[_source_label(label, subset, table)] = [
                {"seed": r["seed"], "run_id": r["run_id"], "run": r["run"], "selected": r["run"] in chosen}
                for r in considered]
    for metric in METRICS:
        measured = values.get(metric, math.nan)
        reference = math.nan if paper is None else _float(paper.get(metric))
        row[metric] = measured
        row[f"{metric} std"] = values.get(f"{metric} std", math.nan)
        row[f"{metric} paper"] = reference
        row[f"{metric} diff"] = measured - reference
    for metric in STAGE1_METRICS:
        row[metric] = values.get(metric, math.nan)
    row["run_ids"] = ";".join(r["run_id"] for r in shown if r["run_id"])
    row["run_dirs"] = ";".join(r["run"] for r in shown)
    return row


def _source_label(label: str, subset: str, table: PaperTable) -> str:
    return f"{label} ({subset})" if table.kind == "head-tail" and table.number is None else label


def _result_frame(rows: list[dict]) -> pd.DataFrame:
    columns = ["row", "variant", "gamma", "subset", "status", "runs", "seeds", "aggregate",
               *[f"{m}{s}" for m in METRICS for s in ("", " std", " paper", " diff")], *STAGE1_METRICS,
               "run_ids", "run_dirs"]
    frame = pd.DataFrame(rows, columns=columns)
    frame["gamma"] = frame["gamma"].astype("Int64")
    frame["runs"] = frame["runs"].astype("Int64")
    return frame


def _display(dataset: str) -> str:
    return _DISPLAY.get(dataset, dataset)


def _aggregate_note(dataset: str, mode: str, number: int | None) -> str:
    ours = ("taking the mean over seeds (± sample standard deviation)" if mode == "mean"
            else f"taking the seed with the best {SELECT_METRIC} on the full evaluation split")
    paper = ""
    if number is not None:
        paper = {"mean": " The paper reports the average of three trials.",
                 "best": " The paper reports its best run."}[PAPER_AGGREGATE[dataset]]
    return f"Repeated runs are combined by {ours}.{paper}"


def _split_note(pool: _Pool, dataset: str) -> str:
    split = pool.split.get(dataset)
    return f"Evaluated on the '{split}' split." if split else "No finished run for this dataset yet."


def _resolve_main_gamma(pool: _Pool, dataset: str, main_gamma: Mapping[str, int]) -> tuple[int | None, str]:
    if dataset in main_gamma:
        return int(main_gamma[dataset]), f"Main γ = {int(main_gamma[dataset])}."
    if dataset in PAPER_MAIN_GAMMA:
        gamma = PAPER_MAIN_GAMMA[dataset]
        return gamma, f"Main γ = {gamma} (the paper's)."
    counts = Counter(r["gamma"] for r in pool.active
                     if r["dataset"] == dataset and r["variant"] == "labelcorank" and r["gamma"] is not None)
    if not counts:
        return None, "Main γ not given and no labelcorank run to infer it from."
    gamma = min(counts, key=lambda g: (-counts[g], g))
    return gamma, f"Main γ not given: γ = {gamma}, the γ with the most labelcorank runs."


def build_tables(runs: pd.DataFrame, *, dataset_stats: Mapping[str, dict] | None = None,
                 main_gamma: Mapping[str, int] | None = None, aggregate: Mapping[str, str] | None = None,
                 datasets: Sequence[str] | None = None) -> dict[str, PaperTable]:
    """Build the paper's Tables 1-13 and the same tables for other datasets.

    Args:
        runs: :func:`collect_runs`' table.
        dataset_stats: dataset -> its ``stats.json`` (Table 1); datasets without one show
            ``not fetched``.
        main_gamma: dataset -> γ of the main rows (main results, head/tail, reranker
            comparison, ablations). Default: :data:`PAPER_MAIN_GAMMA` for the paper's datasets,
            else the γ with the most ``labelcorank`` runs.
        aggregate: dataset -> ``mean`` or ``best`` (default :data:`PAPER_AGGREGATE`, ``mean``
            for other datasets).
        datasets: the datasets to report. The paper's tables are always built; a dataset
            outside the paper gets its own main, head/tail, reranker-comparison, ablation and
            γ-sweep tables, and a paper dataset gets those the paper lacks (head/tail and
            reranker comparison for MAG-CS and AAPD) when one of their rows was run. Default:
            the paper's datasets, those in ``dataset_stats`` and those with runs.

    Returns:
        Table key -> :class:`PaperTable`, in writing order: ``table01_dataset_stats``,
        ``table02_mag-cs_main`` ... ``table13_aapd_gamma``, then ``<dataset>_<kind>`` for the
        other tables and ``runs`` (the inventory of every run found).

    Raises:
        LcrError: an aggregation other than ``mean`` / ``best``, or a malformed runs table.
    """
    records = _records_from_frame(runs)
    dataset_stats = dict(dataset_stats or {})
    main_gamma = dict(main_gamma or {})
    if datasets is None:
        seen = [r["dataset"] for r in records if r["variant"] in VARIANT_ROWS]
        datasets = [*PAPER_DATASETS, *sorted(set(dataset_stats) | set(seen))]
    datasets = list(dict.fromkeys([*PAPER_DATASETS, *datasets]))
    modes = {d: "mean" for d in datasets} | PAPER_AGGREGATE | dict(aggregate or {})
    for dataset, mode in modes.items():
        if mode not in AGGREGATES:
            raise LcrError(f"aggregate for '{dataset}' must be one of {', '.join(AGGREGATES)}, got '{mode}'")

    pool = _Pool(records, datasets)
    gammas = {d: _resolve_main_gamma(pool, d, main_gamma) for d in datasets}
    paper = paper_results()
    tables: dict[str, PaperTable] = {}
    tables["table01_dataset_stats"] = _stats_table(datasets, dataset_stats)

    paper_kinds: dict[str, set[str]] = defaultdict(set)
    for (number, kind, dataset, subset), group in paper.groupby(["table", "kind", "dataset", "subset"], sort=True):
        paper_kinds[dataset].add(kind)
        table = _paper_result_table(pool, int(number), kind, dataset, subset, group, gammas[dataset], modes[dataset])
        tables[table.key] = table

    for dataset in datasets:
        for kind in ("main", "head-tail", "reranker-comparison", "ablation", "gamma"):
            if kind in paper_kinds.get(dataset, ()):
                continue
            table = _extra_table(pool, kind, dataset, gammas[dataset], modes[dataset])
            if dataset in PAPER_DATASETS and not (table.frame["status"] == MEASURED).any():
                for used in pool.used.values():
                    used.discard(table.key)
                continue
            tables[table.key] = table

    tables["runs"] = _inventory(pool, records, runs.attrs.get("unfinished", []),
                                {d: g for d, (g, _) in gammas.items()})
    return tables


def _paper_result_table(pool: _Pool, number: int, kind: str, dataset: str, subset: str, group: pd.DataFrame,
                        gamma_info: tuple[int | None, str], mode: str) -> PaperTable:
    gamma, gamma_note = gamma_info
    name = _display(dataset)
    titles = {
        "main": f"Results on {name}",
        "head-tail": f"Results on the {name} {subset} label subset",
        "reranker-comparison": f"Reranker comparison on {name} (RoBERTa* = RoBERTa's top {ORACLE_TOP} "
                               "with the correct labels moved first)",
        "ablation": f"Ablations on {name}",
        "gamma": f"Number of labels γ on {name}",
    }
    key = f"table{number:02d}_{dataset}_{subset if kind == 'head-tail' else kind}"
    table = PaperTable(key=key, kind=kind, title=f"Table {number}. {titles[kind]}", number=number, dataset=dataset,
                       description=f"{titles[kind]} (paper Table {number})", frame=pd.DataFrame())
    rows = []
    if kind == "gamma":
        paper_rows = {int(r["model_or_setting"]): r for r in group.to_dict("records")}
        for g in sorted(set(paper_rows) | set(pool.gammas(dataset)), reverse=True):
            rows.append(_result_row(pool, table, label=str(g), dataset=dataset, variant="labelcorank", gamma=g,
                                    subset=subset, paper=paper_rows.get(g), mode=mode))
            rows[-1]["main_gamma"] = g == gamma
    else:
        for record in group.to_dict("records"):
            label = record["model_or_setting"]
            rows.append(_result_row(pool, table, label=label, dataset=dataset, variant=ROW_VARIANTS.get(label),
                                    gamma=gamma, subset=subset, paper=record, mode=mode,
                                    status=NOT_REPRODUCED.get(label)))
    table.frame = _result_frame(rows)
    if kind == "gamma":
        table.frame.insert(3, "main_gamma", [r["main_gamma"] for r in rows])
    table.notes = _result_notes(pool, table, dataset, mode, gamma_note)
    return table


def _extra_table(pool: _Pool, kind: str, dataset: str, gamma_info: tuple[int | None, str], mode: str) -> PaperTable:
    gamma, gamma_note = gamma_info
    in_paper = dataset in PAPER_DATASETS
    title = f"{dataset}: {_KIND_TITLES[kind]}" + (" (not in the paper)" if in_paper else "")
    what = _KIND_TITLES[kind][0].upper() + _KIND_TITLES[kind][1:]
    table = PaperTable(key=f"{dataset}_{kind}", kind=kind, title=title, dataset=dataset, frame=pd.DataFrame(),
                       description=f"{what} on {dataset}; the paper has no such table"
                       if in_paper else f"{what} on {dataset} (not in the paper)")
    specs: list[tuple[str, str | None, str, str | None]] = []  # label, variant, subset, fixed status
    # RoBERTa and LabelCoRank always; the other baselines when they were run on this dataset.
    shown = [v for v in MAIN_ROW_VARIANTS if v in ("roberta", "labelcorank") or pool.select(dataset, v, None)]
    if kind == "main":
        specs = [(VARIANT_ROWS[v], v, "full", None) for v in shown]
    elif kind == "head-tail":
        specs = [(VARIANT_ROWS[v], v, subset, None) for subset in ("head", "tail") for v in shown]
    elif kind == "reranker-comparison":
        specs = [("RoBERTa*", "roberta-oracle", "full", None), ("RoBERTa", "roberta", "full", None),
                 ("RoBERTa+GPT-4o", None, "full", NOT_REPRODUCED["RoBERTa+GPT-4o"]),
                 ("LabelCoRank", "labelcorank", "full", None)]
    elif kind == "ablation":
        specs = [(VARIANT_ROWS[v], v, "full", None) for v in ABLATION_VARIANTS]
    rows = []
    if kind == "gamma":
        for g in sorted(set(pool.gammas(dataset)) | ({gamma} if gamma is not None else set()), reverse=True):
            rows.append(_result_row(pool, table, label=str(g), dataset=dataset, variant="labelcorank", gamma=g,
                                    subset="full", paper=None, mode=mode))
            rows[-1]["main_gamma"] = g == gamma
    else:
        for label, variant, subset, status in specs:
            rows.append(_result_row(pool, table, label=label, dataset=dataset, variant=variant, gamma=gamma,
                                    subset=subset, paper=None, mode=mode, status=status))
    table.frame = _result_frame(rows)
    if kind == "gamma":
        table.frame.insert(3, "main_gamma", pd.Series([r["main_gamma"] for r in rows], dtype=bool))
    table.notes = _result_notes(pool, table, dataset, mode, gamma_note)
    return table


def _result_notes(pool: _Pool, table: PaperTable, dataset: str, mode: str, gamma_note: str) -> list[str]:
    notes = [_split_note(pool, dataset), _aggregate_note(dataset, mode, table.number)]
    if table.kind != "gamma":
        notes.append(gamma_note + " RoBERTa runs do not depend on γ.")
    else:
        notes.append(gamma_note + " The main γ's runs are also the LabelCoRank rows of the other tables.")
    if table.number is None:
        notes.append("The paper has no such table: its columns are empty.")
    if (table.frame["status"] == NOT_RUN).any():
        baselines = table.number is not None and table.kind in ("main", "head-tail")
        notes.append("'not run': no finished run for the row" + (
            " (the baselines train with `lcr train --variant xml-cnn` and the like; `lcr repro` on the "
            "`paper` profile runs all of them)." if baselines else "."))
    if table.kind in ("main", "head-tail", "reranker-comparison", "ablation") and table.number is not None:
        notes.append("Each table is compared with its own paper rows: the paper's LabelCoRank numbers differ "
                     "slightly between tables.")
    return notes


def _stats_table(datasets: Sequence[str], dataset_stats: Mapping[str, dict]) -> PaperTable:
    paper = paper_dataset_stats().set_index("dataset")
    rows = []
    for dataset in datasets:
        stats = dataset_stats.get(dataset)
        ours = _our_stats(stats) if stats else {}
        row = {"dataset": dataset, "status": MEASURED if stats else "not fetched"}
        reference = paper.loc[dataset] if dataset in paper.index else None
        for column, paper_column, _ in _STATS_COLUMNS:
            value = ours.get(column, math.nan)
            row[column] = value
            if paper_column is not None:
                ref = math.nan if reference is None else float(reference[paper_column])
                row[f"{column} paper"] = ref
                row[f"{column} diff"] = value - ref
        rows.append(row)
    frame = pd.DataFrame(rows)
    for column, _, decimals in _STATS_COLUMNS:
        if decimals == 0:
            for suffix in ("", " paper", " diff"):
                if f"{column}{suffix}" in frame:
                    frame[f"{column}{suffix}"] = frame[f"{column}{suffix}"].round().astype("Int64")
    notes = [
        "N_trn, N_dev, N_tst: documents in our train, dev and test splits; L: labels in the label vocabulary; "
        "L_avg, W_avg: labels and whitespace-separated words per document over all distinct documents.",
        "D (vocabulary size) is not computed by lcr: only the paper's value is shown.",
        "MAG-CS and PubMed: the paper's N_tst equals the size of MATCH's dev split (see params.yaml).",
    ]
    return PaperTable(key="table01_dataset_stats", kind="stats", number=1, title="Table 1. Dataset statistics",
                      description="Dataset statistics: documents per split, labels, labels and words per document "
                      "(paper Table 1)", frame=frame, notes=notes)


def _our_stats(stats: dict) -> dict:
    splits = stats.get("splits") or {}

    def count(name):
        return (splits.get(name) or {}).get("documents", math.nan)

    distinct = [s for s in ("train", "dev", "test") if (splits.get(s) or {}).get("documents")]
    if stats.get("train_standin"):
        distinct = [s for s in distinct if s != "train"]  # train is a copy of another split
    elif stats.get("merge_train_dev"):
        distinct = [s for s in distinct if s != "dev"]    # train already holds dev
    total = sum(splits[s]["documents"] for s in distinct)

    def average(key):
        if not total:
            return math.nan
        return sum(splits[s]["documents"] * splits[s].get(key, math.nan) for s in distinct) / total

    return {"N_trn": count("train"), "N_dev": count("dev"), "N_tst": count("test"),
            "L": stats.get("labels", math.nan), "L_avg": average("avg_labels"), "W_avg": average("avg_words")}


def _inventory(pool: _Pool, records: list[dict], unfinished: Iterable[str],
               main_gamma: Mapping[str, int | None]) -> PaperTable:
    rows = []
    for record in sorted(records, key=lambda r: r["run"]):
        used = sorted(pool.used.get(record["run"], ()))
        reason = pool.reasons.get(record["run"]) or ("used" if used else "not used: no table has a row for it")
        if not used and record["run"] not in pool.reasons and record["variant"] in LABELCORANK_FAMILY:
            reason = (f"not used: γ = {record['gamma']}, but the {record['variant']} rows read the main "
                      f"γ = {main_gamma.get(record['dataset'])}")
        rows.append({"run": record["run"], "dataset": record["dataset"], "variant": record["variant"],
                     "gamma": record["gamma"], "seed": record["seed"], "eval_split": record["eval_split"],
                     "status": reason, "tables": ";".join(used), "run_id": record["run_id"]})
    for run in unfinished:
        rows.append({"run": run, "status": "unfinished: no metrics.json yet", "tables": "", "run_id": ""})
    columns = ["run", "dataset", "variant", "gamma", "seed", "eval_split", "status", "tables", "run_id"]
    frame = pd.DataFrame(rows, columns=columns)
    for column in ("gamma", "seed"):
        frame[column] = frame[column].astype("Int64")
    return PaperTable(key="runs", kind="runs", title="Runs found", frame=frame,
                      description="Every run found under the runs folder: the tables it went into, or why not",
                      notes=["A run is used when some table row reads it; for 'best' aggregation the seeds not "
                             "selected count as used too."])


# --------------------------------------------------------------------------------------------
# Writing


def _number(value, decimals: int = 4, sign: bool = False) -> str:
    value = _na(value)
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    return f"{float(value):+.{decimals}f}" if sign else f"{float(value):.{decimals}f}"


def _markdown_grid(headers: Sequence[str], rows: Iterable[Sequence[str]], right: Sequence[bool]) -> str:
    def clean(cell) -> str:
        return str(cell).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(clean(h) for h in headers) + " |",
             "|" + "|".join(" ---: " if r else " --- " for r in right) + "|"]
    lines += ["| " + " | ".join(clean(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def table_markdown(table: PaperTable) -> str:
    """Render a table as Markdown: heading, grid, notes and the runs behind each row.

    Metric cells show the measured value (``± std`` for a mean of several seeds), the paper's
    value and the difference ``measured - paper`` with its sign, all with 4 decimals.
    """
    frame = table.frame
    if table.kind == "stats":
        headers, right = ["Dataset", "Status"], [False, False]
        for column, paper_column, _ in _STATS_COLUMNS:
            if column != "D":
                headers.append(column)
                right.append(True)
            if paper_column is not None:
                headers += [f"{column} paper", f"{column} Δ"] if column != "D" else ["D paper"]
                right += [True, True] if column != "D" else [True]
        rows = []
        for row in frame.to_dict("records"):
            cells = [row["dataset"], row["status"]]
            for column, paper_column, decimals in _STATS_COLUMNS:
                if column != "D":
                    cells.append(_number(row[column], decimals))
                if paper_column is not None:
                    cells.append(_number(row[f"{column} paper"], decimals))
                    if column != "D":
                        cells.append(_number(row[f"{column} diff"], decimals, sign=True))
            rows.append(cells)
        grid = _markdown_grid(headers, rows, right)
    elif table.kind == "runs":
        headers = ["Run", "Dataset", "Variant", "γ", "Seed", "Split", "Status", "Tables", "MLflow run"]
        rows = [[row["run"], _text(row["dataset"]), _text(row["variant"]), _text(row["gamma"]), _text(row["seed"]),
                 _text(row["eval_split"]), row["status"], row["tables"].replace(";", ", "), _text(row["run_id"])]
                for row in frame.to_dict("records")]
        grid = _markdown_grid(headers, rows, [False] * len(headers)) if rows else "No runs found."
    else:
        first = "γ" if table.kind == "gamma" else "Model"
        with_subset = table.kind == "head-tail" and table.number is None
        headers = [first, *(["Subset"] if with_subset else []), "Status", "Runs"]
        for metric in METRICS:
            headers += [metric, f"{metric} paper", f"{metric} Δ"]
        right = [False] * (len(headers) - 3 * len(METRICS)) + [True] * (3 * len(METRICS))
        rows = []
        for row in frame.to_dict("records"):
            label = row["row"] + (" (main)" if row.get("main_gamma") is True else "")
            cells = [label, *([row["subset"]] if with_subset else []), row["status"], row["aggregate"]]
            for metric in METRICS:
                measured = _number(row[metric])
                if not math.isnan(row[f"{metric} std"]):
                    measured += f" ± {_number(row[f'{metric} std'])}"
                cells += [measured, _number(row[f"{metric} paper"]), _number(row[f"{metric} diff"], sign=True)]
            rows.append(cells)
        grid = _markdown_grid(headers, rows, right) if rows else "No rows: nothing was run for this table yet."

    parts = [f"# {table.title}", "", grid, ""]
    if table.kind not in ("stats", "runs"):
        parts.insert(2, "Cells: measured, the paper's value, Δ = measured - paper.\n")
        parts += _stage1_section(frame)
    parts += [f"- {note}" for note in table.notes]
    if table.sources:
        parts += ["", "## Runs behind each row", ""]
        for label, sources in table.sources.items():
            items = []
            for source in sources:
                text = f"seed {source['seed'] if source['seed'] is not None else '?'}: `{source['run']}`"
                if source["run_id"]:
                    text += f" (MLflow run `{source['run_id']}`)"
                if source["selected"] and len(sources) > 1 and not all(s["selected"] for s in sources):
                    text += " **selected**"
                items.append(text)
            parts.append(f"- {label}: " + "; ".join(items))
    return "\n".join(parts).rstrip() + "\n"


def _stage1_section(frame: pd.DataFrame) -> list[str]:
    """The LabelCoRank rows' first prediction S1 beside their final prediction: what the
    reranking stage adds (empty when no row has S1 numbers)."""
    if "s1_P@1" not in frame or frame["s1_P@1"].isna().all():
        return []
    rows = []
    for row in frame.to_dict("records"):
        if math.isnan(row["s1_P@1"]):
            continue
        label = row["row"] + (f" ({row['subset']})" if row.get("subset") not in (None, "full") else "")
        cells = [label]
        for metric in ("P@1", "nDCG@5"):
            cells += [_number(row[f"s1_{metric}"]), _number(row[metric]),
                      _number(row[metric] - row[f"s1_{metric}"], sign=True)]
        rows.append(cells)
    headers = ["Model", "S1 P@1", "final P@1", "Δ P@1", "S1 nDCG@5", "final nDCG@5", "Δ nDCG@5"]
    return ["First prediction S1 beside the final prediction (Δ = the gain of the reranking stage):", "",
            _markdown_grid(headers, rows, [False] + [True] * 6), ""]


def _text(value) -> str:
    value = _na(value)
    return "" if value is None else str(value)


def gamma_sweep_data(tables: Mapping[str, PaperTable]) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, int]]:
    """The γ sweeps of all γ tables, measured and the paper's, for the CSV and the figure.

    Returns:
        (measured: ``dataset, gamma, P@1, P@3, P@5, nDCG@3, nDCG@5, runs``; the paper's values
        in the same columns, without ``runs``; dataset -> main γ).
    """
    measured, paper, main = [], [], {}
    for table in tables.values():
        if table.kind != "gamma":
            continue
        for row in table.frame.to_dict("records"):
            gamma = int(row["row"])
            if row.get("main_gamma") is True:
                main[table.dataset] = gamma
            if row["status"] == MEASURED:
                measured.append({"dataset": table.dataset, "gamma": gamma, **{m: row[m] for m in METRICS},
                                 "runs": row["runs"]})
            if not all(math.isnan(row[f"{m} paper"]) for m in METRICS):
                paper.append({"dataset": table.dataset, "gamma": gamma, **{m: row[f"{m} paper"] for m in METRICS}})
    columns = ["dataset", "gamma", *METRICS]
    return (pd.DataFrame(measured, columns=[*columns, "runs"]), pd.DataFrame(paper, columns=columns), main)


def write_tables(tables: Mapping[str, PaperTable], out_dir: str | Path, *,
                 history: pd.DataFrame | None = None, curve_metric: str = SELECT_METRIC) -> list[Path]:
    """Write every table as ``<key>.md`` and ``<key>.csv``, the plot data, the figures and an index.

    Files (all written atomically): one Markdown and one CSV file per table; ``gamma_sweep.csv``
    (``dataset, gamma, P@1, P@3, P@5, nDCG@3, nDCG@5, runs``; measured γ-sweep rows) and
    ``training_curves.csv`` (``run, dataset, variant, seed, gamma, epoch, step`` and the dev
    metrics of each epoch) for ``dvc plots``; ``gamma_sweep.png`` and ``training_curves.png``;
    ``README.md``, the index. CSV numbers have 4 decimals.

    Args:
        tables: :func:`build_tables`' result.
        out_dir: the folder to write into (created if needed; other files in it are left alone).
        history: :func:`collect_history`' table (no training curves without it).
        curve_metric: the dev metric drawn in ``training_curves.png``.

    Returns:
        The files written, index last.
    """
    from lcr.report.plots import plot_gamma_sweep, plot_training_curves

    out_dir = Path(out_dir)
    written = []
    for table in tables.values():
        md_path, csv_path = out_dir / f"{table.key}.md", out_dir / f"{table.key}.csv"
        with atomic_open(md_path, "w", encoding="utf-8") as handle:
            handle.write(table_markdown(table))
        _write_csv(table.frame, csv_path)
        written += [md_path, csv_path]

    sweep, paper_sweep, main = gamma_sweep_data(tables)
    _write_csv(sweep, out_dir / "gamma_sweep.csv")
    if history is None:
        history = _history_frame([])
    curve_columns = [c for c in ("run", "dataset", "variant", "seed", "gamma", "epoch", "step") if c in history]
    curves = history[[*curve_columns, *[c for c in history.columns if c not in curve_columns]]]
    _write_csv(curves, out_dir / "training_curves.csv")
    written += [out_dir / "gamma_sweep.csv", out_dir / "training_curves.csv"]
    written.append(plot_gamma_sweep(sweep, out_dir / "gamma_sweep.png", paper=paper_sweep, main_gamma=main))
    written.append(plot_training_curves(curves, out_dir / "training_curves.png", metric=curve_metric))

    index = out_dir / "README.md"
    with atomic_open(index, "w", encoding="utf-8") as handle:
        handle.write(_index(tables, curve_metric))
    written.append(index)
    return written


def _write_csv(frame: pd.DataFrame, path: Path) -> None:
    with atomic_open(path, "w", encoding="utf-8", newline="") as handle:
        frame.to_csv(handle, index=False, float_format="%.4f")


def _index(tables: Mapping[str, PaperTable], curve_metric: str) -> str:
    lines = ["# Paper tables", "",
             "The paper's Tables 1-13 rebuilt from the finished runs, side by side with the paper's numbers "
             "(Δ = measured - paper), and the same tables for datasets outside the paper. "
             "Generated by `lcr tables`; do not edit.", "",
             "| Table | Markdown | CSV | Description |", "| --- | --- | --- | --- |"]
    for table in tables.values():
        label = f"Table {table.number}" if table.number is not None else ("inventory" if table.kind == "runs" else "extra")
        lines.append(f"| {label} | [{table.key}.md]({table.key}.md) | [{table.key}.csv]({table.key}.csv) "
                     f"| {table.description} |")
    measured = sum(int((t.frame["status"] == MEASURED).sum()) for t in tables.values() if t.kind not in ("stats", "runs"))
    total = sum(len(t.frame) for t in tables.values() if t.kind not in ("stats", "runs"))
    lines += ["", "Plot data and figures:", "",
              "- [gamma_sweep.csv](gamma_sweep.csv), [gamma_sweep.png](gamma_sweep.png): P@1, P@3, P@5 against γ "
              "per dataset (dashed: the paper).",
              "- [long_tail.csv](long_tail.csv), [long_tail.png](long_tail.png): P@5 and recall@5 of each run per "
              "label-frequency bucket (five buckets of equal numbers of labels, most frequent first): where each model "
              "loses on the tail.",
              f"- [training_curves.csv](training_curves.csv), [training_curves.png](training_curves.png): dev "
              f"metrics per epoch per run (figure: {curve_metric}).", "",
              f"{measured} of {total} result rows are measured."]
    runs = tables.get("runs")
    if runs is not None and len(runs.frame):
        unused = runs.frame[runs.frame["status"] != "used"]
        if len(unused):
            lines += ["", f"{len(unused)} run(s) not used in any table: see [runs.md](runs.md)."]
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------------------------
# All in one


def read_dataset_stats(data_dir: str | Path, datasets: Iterable[str]) -> dict[str, dict]:
    """``stats.json`` of each dataset that has one under ``data_dir``.

    Raises:
        LcrError: a ``stats.json`` that cannot be read (named in the message).
    """
    found = {}
    for dataset in datasets:
        path = Path(data_dir) / dataset / "stats.json"
        if path.is_file():
            found[dataset] = read_json(path, "dataset statistics")
    return found


def make_tables(runs_dir: str | Path, data_dir: str | Path, out_dir: str | Path, *,
                datasets: Sequence[str] | None = None, main_gamma: Mapping[str, int] | None = None,
                aggregate: Mapping[str, str] | None = None) -> list[Path]:
    """Read the runs and dataset statistics, build every table and write them (``lcr tables``).

    Args:
        runs_dir: folder holding the finished runs (searched recursively).
        data_dir: folder of the dataset stores (``<data_dir>/<dataset>/stats.json``).
        out_dir: where the tables, plot data, figures and index go.
        datasets: datasets to report besides the paper's; default: every dataset with a
            ``stats.json`` under ``data_dir`` or a run under ``runs_dir``.
        main_gamma: dataset -> γ of the main rows (see :func:`build_tables`).
        aggregate: dataset -> ``mean`` or ``best`` (see :func:`build_tables`).

    Returns:
        The files written.

    Raises:
        LcrError: a missing runs folder, an unreadable ``metrics.json``, ``mlflow_run.json`` or
            ``stats.json``, or a bad ``aggregate`` value.
    """
    records, unfinished = scan_runs(runs_dir)
    runs = _runs_frame(records, unfinished)
    if datasets is None:
        stored = sorted(p.parent.name for p in Path(data_dir).glob("*/stats.json")) if Path(data_dir).is_dir() else []
        seen = sorted({r["dataset"] for r in records if r["variant"] in VARIANT_ROWS})
        datasets = list(dict.fromkeys([*PAPER_DATASETS, *stored, *seen]))
    stats = read_dataset_stats(data_dir, dict.fromkeys([*PAPER_DATASETS, *datasets]))
    tables = build_tables(runs, dataset_stats=stats, main_gamma=main_gamma, aggregate=aggregate, datasets=datasets)
    history = _history_frame([r for r in records if r["variant"] in VARIANT_ROWS])
    written = write_tables(tables, out_dir, history=history)
    return [*written[:-1], *write_long_tail(long_tail_data(records, data_dir), out_dir), written[-1]]


#: Label-frequency buckets of the long-tail report (equal numbers of labels, head to tail).
LONG_TAIL_BUCKETS = 5


def long_tail_data(records: Sequence[dict], data_dir: str | Path, *, n_buckets: int = LONG_TAIL_BUCKETS,
                   k: int = 5) -> pd.DataFrame:
    """P@k and recall@k per label-frequency bucket for every run with a predictions file
    (:func:`lcr.report.metrics.bucket_scores`; buckets from the training frequencies of the
    prepared labels). Runs of datasets that are not prepared here are left out.

    Returns:
        One row per run and bucket: ``run, dataset, variant, bucket, labels, gold, predicted,
        precision, recall``.
    """
    from lcr import runs as run_files
    from lcr.datasets import store
    from lcr.labels import LabelArtifacts
    from lcr.report import metrics, predictions

    references: dict = {}
    rows = []
    for record in records:
        if record["variant"] not in VARIANT_ROWS:
            continue
        pred = Path(record["path"]) / run_files.predictions_file(record["eval_split"])
        dataset_dir = Path(data_dir) / record["dataset"]
        key = (record["dataset"], record["eval_split"])
        if key not in references:
            references[key] = None
            if (dataset_dir / store.LABELS_DIR).is_dir() and store.split_path(dataset_dir, record["eval_split"]).exists():
                artifacts = LabelArtifacts.load(dataset_dir / store.LABELS_DIR)
                vocab = list(artifacts.vocab)
                ids = store.read_split(dataset_dir, record["eval_split"], columns=["id"]).column("id").to_pylist()
                references[key] = (ids, vocab, store.label_matrix(dataset_dir, record["eval_split"], vocab),
                                   metrics.frequency_buckets(artifacts.freq, n_buckets))
        if references[key] is None or not pred.is_file():
            continue
        ids, vocab, gold, buckets = references[key]
        pred_ids, pred_labels, pred_scores = predictions.read_predictions(pred)
        topk, _, _ = predictions.align_predictions(ids, vocab, pred_ids, pred_labels, pred_scores, k, source=pred)
        for row in metrics.bucket_scores(gold, topk, buckets, k=k):
            rows.append({"run": record["run"], "dataset": record["dataset"], "variant": record["variant"], **row})
    columns = ["run", "dataset", "variant", "bucket", "labels", "gold", "predicted", "precision", "recall"]
    return pd.DataFrame(rows, columns=columns)


def write_long_tail(frame: pd.DataFrame, out_dir: str | Path) -> list[Path]:
    """``long_tail.csv`` and ``long_tail.png`` (P@5 and recall per label-frequency bucket, per run)."""
    from lcr.report.plots import plot_long_tail

    out_dir = Path(out_dir)
    _write_csv(frame, out_dir / "long_tail.csv")
    return [out_dir / "long_tail.csv", plot_long_tail(frame, out_dir / "long_tail.png")]
