"""Paper tables from hand-written finished runs (lcr/report/tables.py)."""

import json
import math
import os

import pandas as pd
import pytest

from lcr.errors import LcrError
from lcr.report.tables import (METRICS, NOT_RUN, build_tables, collect_history, collect_runs, make_tables,
                        paper_dataset_stats, paper_results, table_markdown)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def scores(p1, *, ndcg5=None, base=0.5):
    """A full set of metrics: P@1 and nDCG@5 given, the others derived so they stay distinct."""
    values = {"P@1": p1, "P@3": base + 0.1, "P@5": base, "nDCG@1": p1, "nDCG@3": base + 0.2,
              "nDCG@5": base + 0.15 if ndcg5 is None else ndcg5, "PSP@1": 0.1, "PSP@3": 0.1, "PSP@5": 0.1,
              "micro_F1": 0.3, "macro_F1": 0.2, "n_docs": 100}
    return values


def write_run(root, rel, dataset, variant, *, seed=0, gamma=None, full=None, head=None, tail=None,
              split="test", run_id=None, history=True, m=None, mtime=None):
    folder = root / rel
    folder.mkdir(parents=True)
    full = full or scores(0.5)
    data = {"run": {"dataset": dataset, "variant": variant, "seed": seed, "gamma": gamma, "eval_split": split},
            "eval": {"full": full, "head": head or full, "tail": tail or full}}
    if history:
        data["history"] = [{"epoch": e, "step": 10 * e, "P@1": 0.1 * e, "nDCG@5": 0.2 * e, "n_docs": 50}
                           for e in (1, 2, 3)]
        data["best_epoch"] = 3
    if m is not None:
        data["m"] = m
    (folder / "metrics.json").write_text(json.dumps(data))
    if run_id:
        (folder / "mlflow_run.json").write_text(json.dumps({"run_id": run_id, "experiment_id": "1",
                                                            "tracking_uri": "sqlite:///mlflow.db"}))
    if mtime is not None:
        os.utime(folder / "metrics.json", (mtime, mtime))
    return folder


@pytest.fixture(scope="module")
def runs_dir(tmp_path_factory):
    """Finished runs, shared read-only by the tests of this module."""
    root = tmp_path_factory.mktemp("tables") / "runs"
    # PubMed: three seeds of LabelCoRank at the main gamma (30), with head/tail subsets.
    for seed, p1 in enumerate((0.92, 0.93, 0.94)):
        write_run(root, f"pubmed/labelcorank-g30-s{seed}", "pubmed", "labelcorank", seed=seed, gamma=30,
                  full=scores(p1), head=scores(p1 - 0.01), tail=scores(p1 - 0.1), run_id=f"lcr{seed}")
    write_run(root, "pubmed/labelcorank-g15-s0", "pubmed", "labelcorank", gamma=15, full=scores(0.90))
    write_run(root, "pubmed/labelcorank-g50-s0", "pubmed", "labelcorank", gamma=50, full=scores(0.80))
    write_run(root, "pubmed/roberta-s0", "pubmed", "roberta", full=scores(0.91), run_id="rob0")
    write_run(root, "pubmed/roberta-s0-oracle-m10", "pubmed", "roberta-oracle", full=scores(0.99),
              history=False, m=10, run_id="orc0")
    write_run(root, "pubmed/no_cooc-g30-s0", "pubmed", "no_cooc", gamma=30, full=scores(0.925))
    write_run(root, "pubmed/no_cooc-g20-s0", "pubmed", "no_cooc", gamma=20, full=scores(0.5))  # not the main gamma
    # AAPD: two seeds; seed 1 has the better nDCG@5 but the worse P@1.
    write_run(root, "aapd/labelcorank-g20-s0", "aapd", "labelcorank", seed=0, gamma=20, full=scores(0.86, ndcg5=0.85))
    write_run(root, "aapd/labelcorank-g20-s1", "aapd", "labelcorank", seed=1, gamma=20, full=scores(0.84, ndcg5=0.86))
    # A dataset outside the paper, a rerun that supersedes an older one, an unknown variant.
    write_run(root, "reuters21578/labelcorank-g20-s0-old", "reuters21578", "labelcorank", gamma=20,
              full=scores(0.1), mtime=1_000_000)
    write_run(root, "reuters21578/labelcorank-g20-s0", "reuters21578", "labelcorank", gamma=20, full=scores(0.88))
    write_run(root, "reuters21578/no_pos-g20-s0", "reuters21578", "no_pos", gamma=20, full=scores(0.87))
    write_run(root, "reuters21578/mystery", "reuters21578", "mystery-model", full=scores(0.3))
    # A job that has started but not finished.
    (root / "reuters21578" / "roberta-s0").mkdir()
    (root / "reuters21578" / "roberta-s0" / "mlflow_run.json").write_text('{"run_id": "running"}')
    return root


STATS = {
    "pubmed": {"dataset": "pubmed", "labels": 17963, "merge_train_dev": False, "train_standin": None,
               "splits": {"train": {"documents": 718000, "avg_labels": 7.0, "avg_words": 200.0},
                          "dev": {"documents": 0, "avg_labels": 0.0, "avg_words": 0.0},
                          "test": {"documents": 90000, "avg_labels": 7.9, "avg_words": 209.0}}},
    "reuters21578": {"dataset": "reuters21578", "labels": 90, "merge_train_dev": False, "train_standin": None,
                     "splits": {"train": {"documents": 6930, "avg_labels": 1.2, "avg_words": 130.0},
                                "dev": {"documents": 840, "avg_labels": 1.3, "avg_words": 120.0},
                                "test": {"documents": 3019, "avg_labels": 1.25, "avg_words": 122.0}}},
}


@pytest.fixture(scope="module")
def tables(runs_dir):
    return build_tables(collect_runs(runs_dir), dataset_stats=STATS, main_gamma={"reuters21578": 20},
                        datasets=["reuters21578"])


def row(table, label, subset=None):
    frame = table.frame
    match = frame[(frame["row"] == label) & ((frame["subset"] == subset) if subset else True)]
    assert len(match) == 1, (label, frame["row"].tolist())
    return match.iloc[0]


def paper_value(number, setting, metric):
    paper = paper_results()
    return float(paper[(paper["table"] == number) & (paper["model_or_setting"] == setting)][metric].iloc[0])


def test_paper_data_ships_with_the_package():
    paper = paper_results()
    assert set(paper["table"]) == set(range(2, 14))
    assert paper_value(3, "LabelCoRank", "P@1") == 0.9243
    stats = paper_dataset_stats().set_index("dataset")
    assert stats.loc["aapd", "N_tst"] == 1000


def test_collect_runs_reads_every_subset_and_the_mlflow_id(runs_dir):
    runs = collect_runs(runs_dir)
    one = runs[(runs["run"] == "pubmed/labelcorank-g30-s1") & (runs["subset"] == "tail")].iloc[0]
    assert one["dataset"] == "pubmed" and one["gamma"] == 30 and one["seed"] == 1
    assert one["P@1"] == pytest.approx(0.83) and one["run_id"] == "lcr1" and one["n_docs"] == 100
    assert runs[runs["variant"] == "roberta"]["gamma"].isna().all()
    assert runs.attrs["unfinished"] == ["reuters21578/roberta-s0"]
    history = collect_history(runs_dir)
    assert set(history["epoch"]) == {1, 2, 3}
    assert "pubmed/roberta-s0-oracle-m10" not in set(history["run"])  # oracle runs have no history


def test_main_table_mean_over_seeds_against_the_paper(tables):
    labelcorank = row(tables["table03_pubmed_main"], "LabelCoRank")
    assert labelcorank["status"] == "measured" and labelcorank["runs"] == 3 and labelcorank["seeds"] == "0,1,2"
    assert labelcorank["P@1"] == pytest.approx(0.93)
    assert labelcorank["P@1 std"] == pytest.approx(0.01)
    assert labelcorank["P@1 paper"] == 0.9243
    assert labelcorank["P@1 diff"] == pytest.approx(0.93 - 0.9243)
    assert labelcorank["nDCG@5 paper"] == 0.7729
    assert labelcorank["run_ids"] == "lcr0;lcr1;lcr2"
    roberta = row(tables["table03_pubmed_main"], "RoBERTa")
    assert roberta["P@1 diff"] == pytest.approx(0.91 - 0.9178) and roberta["run_ids"] == "rob0"


def test_rows_not_run_keep_the_paper_numbers(tables):
    main = tables["table02_mag-cs_main"]
    assert list(main.frame["row"]) == list(paper_results().query("table == 2")["model_or_setting"])
    assert set(main.frame["status"]) == {NOT_RUN}
    xml_cnn = row(main, "XML-CNN")
    assert xml_cnn["P@1 paper"] == 0.8656 and math.isnan(xml_cnn["P@1"]) and math.isnan(xml_cnn["P@1 diff"])
    match = row(tables["table04_aapd_main"], "MATCH")  # no number in the paper either
    assert match["status"] == NOT_RUN and math.isnan(match["P@1 paper"])
    assert row(tables["table07_pubmed_reranker-comparison"], "RoBERTa+GPT-4o")["status"] == \
        "not reproduced (needs GPT-4o)"
    text = table_markdown(main)
    assert "| XML-CNN | not run |  | — | 0.8656 | — |" in text


def test_best_seed_by_ndcg5_for_aapd(tables):
    labelcorank = row(tables["table04_aapd_main"], "LabelCoRank")
    assert labelcorank["runs"] == 2 and "seed 1" in labelcorank["aggregate"]
    assert labelcorank["P@1"] == pytest.approx(0.84)  # seed 1: better nDCG@5, worse P@1
    assert labelcorank["P@1 diff"] == pytest.approx(0.84 - 0.854)
    assert math.isnan(labelcorank["P@1 std"])
    assert labelcorank["run_dirs"] == "aapd/labelcorank-g20-s1"
    assert "**selected**" in table_markdown(tables["table04_aapd_main"])


def test_aggregation_can_be_switched(runs_dir):
    tables = build_tables(collect_runs(runs_dir), aggregate={"aapd": "mean", "pubmed": "best"})
    assert row(tables["table04_aapd_main"], "LabelCoRank")["P@1"] == pytest.approx(0.85)
    pubmed = row(tables["table03_pubmed_main"], "LabelCoRank")
    assert pubmed["P@1"] == pytest.approx(0.92) and pubmed["run_ids"] == "lcr0"  # a tie on nDCG@5: the lowest seed
    with pytest.raises(LcrError, match="aggregate for 'aapd'"):
        build_tables(collect_runs(runs_dir), aggregate={"aapd": "median"})


def test_head_tail_reranker_and_ablation_tables(tables):
    assert row(tables["table05_pubmed_head"], "LabelCoRank")["P@1"] == pytest.approx(0.92)
    tail = row(tables["table06_pubmed_tail"], "LabelCoRank")
    assert tail["P@1"] == pytest.approx(0.83) and tail["P@1 diff"] == pytest.approx(0.83 - 0.8382)
    oracle = row(tables["table07_pubmed_reranker-comparison"], "RoBERTa*")
    assert oracle["P@1 diff"] == pytest.approx(0.99 - 0.9935) and oracle["run_ids"] == "orc0"
    ablation = tables["table09_pubmed_ablation"]
    no_cooc = row(ablation, "w/o correlation matrix")
    assert no_cooc["runs"] == 1 and no_cooc["P@1"] == pytest.approx(0.925)  # the gamma=20 run is not used
    assert no_cooc["P@1 paper"] == 0.9251
    # Table 9 is compared with its own LabelCoRank row (0.9241), not Table 3's (0.9243).
    assert row(ablation, "LabelCoRank")["P@1 diff"] == pytest.approx(0.93 - 0.9241)
    assert row(ablation, "w/o label ranking")["status"] == NOT_RUN


def test_gamma_sweep_includes_the_main_runs_and_extra_gammas(tables):
    sweep = tables["table12_pubmed_gamma"].frame
    assert list(sweep["row"]) == ["50", "35", "30", "25", "20", "15"]
    main = row(tables["table12_pubmed_gamma"], "30")
    assert main["main_gamma"] and main["runs"] == 3 and main["P@1 paper"] == 0.9241
    low = row(tables["table12_pubmed_gamma"], "15")
    assert low["P@1 diff"] == pytest.approx(0.90 - 0.9293)
    extra = row(tables["table12_pubmed_gamma"], "50")
    assert extra["status"] == "measured" and math.isnan(extra["P@1 paper"])
    assert row(tables["table12_pubmed_gamma"], "25")["status"] == NOT_RUN
    assert "30 (main)" in table_markdown(tables["table12_pubmed_gamma"])


def test_dataset_outside_the_paper_gets_its_own_tables(tables):
    for kind in ("main", "head-tail", "reranker-comparison", "ablation", "gamma"):
        table = tables[f"reuters21578_{kind}"]
        assert table.number is None and table.frame[[f"{m} paper" for m in METRICS]].isna().all().all()
    main = row(tables["reuters21578_main"], "LabelCoRank")
    assert main["P@1"] == pytest.approx(0.88)  # the newer of two runs of the same setting
    assert row(tables["reuters21578_ablation"], "w/o position information")["P@1"] == pytest.approx(0.87)
    assert set(tables["reuters21578_head-tail"].frame["subset"]) == {"head", "tail"}
    # Paper datasets only get the tables the paper lacks when one of their rows was run.
    assert "aapd_head-tail" in tables and "mag-cs_head-tail" not in tables


def test_inventory_says_why_runs_are_not_used(tables):
    inventory = tables["runs"].frame.set_index("run")
    assert inventory.loc["reuters21578/mystery", "status"].startswith("ignored: unknown variant 'mystery-model'")
    assert inventory.loc["reuters21578/labelcorank-g20-s0-old", "status"].startswith("superseded by")
    assert inventory.loc["pubmed/no_cooc-g20-s0", "status"].startswith("not used: γ = 20, but the no_cooc rows read the main γ = 30")
    assert inventory.loc["reuters21578/roberta-s0", "status"].startswith("unfinished")
    assert "table03_pubmed_main" in inventory.loc["pubmed/labelcorank-g30-s0", "tables"]


def test_table1_from_stats_json(tables):
    stats = tables["table01_dataset_stats"].frame.set_index("dataset")
    assert list(stats.index) == ["mag-cs", "pubmed", "aapd", "reuters21578"]
    assert stats.loc["pubmed", "N_trn"] == 718000 and stats.loc["pubmed", "N_trn diff"] == -837
    assert stats.loc["pubmed", "L diff"] == 0
    assert stats.loc["pubmed", "L_avg"] == pytest.approx((718000 * 7.0 + 90000 * 7.9) / 808000)
    assert stats.loc["mag-cs", "status"] == "not fetched" and stats.loc["mag-cs", "N_trn paper"] == 564340
    assert stats.loc["reuters21578", "N_dev"] == 840 and pd.isna(stats.loc["reuters21578", "N_trn paper"])
    assert "| pubmed | measured | 718000 | 718837 | -837 |" in table_markdown(tables["table01_dataset_stats"])


def test_corrupt_or_incomplete_metrics_name_the_file(tmp_path):
    bad = tmp_path / "runs" / "pubmed" / "broken"
    bad.mkdir(parents=True)
    (bad / "metrics.json").write_text('{"run": {"dataset": "pubmed", ')
    with pytest.raises(LcrError, match=r"broken[/\\]metrics\.json"):
        collect_runs(tmp_path / "runs")
    (bad / "metrics.json").write_text(json.dumps({"run": {"dataset": "pubmed", "variant": "labelcorank"}}))
    with pytest.raises(LcrError, match="no 'eval.full'"):
        collect_runs(tmp_path / "runs")
    with pytest.raises(LcrError, match="does not exist"):
        collect_runs(tmp_path / "nowhere")


def test_make_tables_writes_markdown_csv_plots_and_index(runs_dir, tmp_path):
    data = tmp_path / "data"
    for name, stats in STATS.items():
        (data / name).mkdir(parents=True)
        (data / name / "stats.json").write_text(json.dumps(stats))
    out = tmp_path / "tables"
    written = make_tables(runs_dir, data, out, main_gamma={"reuters21578": 20})
    names = {p.name for p in written}
    assert {"table01_dataset_stats.md", "table13_aapd_gamma.csv", "reuters21578_gamma.md", "runs.csv",
            "gamma_sweep.csv", "training_curves.csv", "gamma_sweep.png", "training_curves.png",
            "long_tail.csv", "long_tail.png", "README.md"} <= names
    assert all(p.exists() for p in written) and not [p for p in out.iterdir() if p.name.startswith(".")]
    for png in ("gamma_sweep.png", "training_curves.png", "long_tail.png"):
        assert (out / png).read_bytes().startswith(PNG_MAGIC)
    readme = (out / "README.md").read_text()
    for stem in ("table01_dataset_stats", "table07_pubmed_reranker-comparison", "reuters21578_main", "runs"):
        assert f"[{stem}.md]({stem}.md)" in readme
    main = pd.read_csv(out / "table03_pubmed_main.csv")
    assert main.loc[main["row"] == "LabelCoRank", "P@1 diff"].item() == pytest.approx(0.0057)
    assert "0.9300 ± 0.0100 | 0.9243 | +0.0057" in (out / "table03_pubmed_main.md").read_text()
    sweep = pd.read_csv(out / "gamma_sweep.csv")
    assert list(sweep.columns[:5]) == ["dataset", "gamma", "P@1", "P@3", "P@5"]
    assert sweep[(sweep["dataset"] == "pubmed") & (sweep["gamma"] == 30)]["P@1"].item() == pytest.approx(0.93)
    curves = pd.read_csv(out / "training_curves.csv")
    assert {"run", "epoch", "nDCG@5"} <= set(curves.columns) and len(curves) == 3 * curves["run"].nunique()


def test_make_tables_with_no_runs_still_writes_every_paper_table(tmp_path):
    (tmp_path / "runs").mkdir()
    written = make_tables(tmp_path / "runs", tmp_path / "data", tmp_path / "out")
    stems = {p.stem for p in written if p.suffix == ".md"}
    assert {f"table{n:02d}" for n in range(1, 14)} <= {s[:7] for s in stems}
    assert (tmp_path / "out" / "gamma_sweep.png").read_bytes().startswith(PNG_MAGIC)


def test_labelcorank_rows_show_the_first_prediction_beside_the_final(tmp_path):
    root = tmp_path / "runs"
    full = {**scores(0.88, ndcg5=0.90), "s1_P@1": 0.80, "s1_nDCG@5": 0.85}
    write_run(root, "reuters21578/labelcorank-g20-s0", "reuters21578", "labelcorank", gamma=20, full=full)
    write_run(root, "reuters21578/roberta-s0", "reuters21578", "roberta", full=scores(0.86))
    tables = build_tables(collect_runs(root), dataset_stats=STATS, main_gamma={"reuters21578": 20},
                          datasets=["reuters21578"])
    main = tables["reuters21578_main"]
    assert row(main, "LabelCoRank")["s1_P@1"] == pytest.approx(0.80)
    assert math.isnan(row(main, "RoBERTa")["s1_P@1"])
    text = table_markdown(main)
    assert "First prediction S1 beside the final prediction" in text
    line = next(x for x in text.splitlines() if x.startswith("| LabelCoRank |") and "0.8000" in x)
    assert "+0.0800" in line and "+0.0500" in line  # the reranking stage's gains on P@1 and nDCG@5
    assert not any(x.startswith("| RoBERTa |") and "S1" in x for x in text.splitlines())


def test_long_tail_report_of_a_trained_run(registered, tmp_path):
    from lcr.report.tables import long_tail_data, write_long_tail
    from lcr.runs import scan_runs

    runs = tmp_path / "runs" / "toy"
    import shutil

    shutil.copytree(registered["root"] / "run", runs / "labelcorank-s0")
    records, _ = scan_runs(tmp_path / "runs")
    frame = long_tail_data(records, registered["data"], n_buckets=3)
    assert list(frame["bucket"]) == [0, 1, 2] and set(frame["run"]) == {"toy/labelcorank-s0"}
    from lcr.datasets.store import read_vocab

    assert frame["labels"].sum() == len(read_vocab(registered["data"] / "toy")[0]) and ((0 <= frame["recall"]) & (frame["recall"] <= 1)).all()
    # recall over all buckets is the share of gold pairs in the top 5
    assert (frame["recall"] * frame["gold"]).sum() / frame["gold"].sum() <= 1.0
    written = write_long_tail(frame, tmp_path / "tables")
    assert [p.name for p in written] == ["long_tail.csv", "long_tail.png"]
    assert (tmp_path / "tables" / "long_tail.png").read_bytes().startswith(PNG_MAGIC)
