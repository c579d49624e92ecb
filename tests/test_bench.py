"""Quick-mode smoke tests of the issue #7 benchmarks and of ``bench.run_all`` (about half a minute)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from bench import report
from bench.synthetic import SHAPES, LabelModel, generate_store
from lcr import labels
from lcr.datasets import store
from lcr.errors import LcrError

REPO = Path(__file__).resolve().parents[1]
BENCHMARKS = REPO / "bench" / "BENCHMARKS.md"


def _run(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    return subprocess.run([sys.executable, "-m", *args], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=300)


def test_evaluation_project_and_loops_agree():
    from bench import bench_evaluation as bench

    args = bench.parse_args(["--quick", "--docs", "300", "--labels", "200", "--train-docs", "3000",
                             "--loop-docs", "300", "--python-docs", "300", "--no-report"])
    result = bench.run(args)
    project = result["project"]["evaluation"]
    assert project["full"]["n_docs"] == 300
    for name in bench.LOOPS:
        check = result["loops"]["checks"][name]
        assert check["docs"] == 300  # every document went through every loop
        assert check["rows_differ"] == 0  # the same top-k as lcr.train.loop.predict
        assert check["same_as_project"] is True
        # The loop's metrics over all documents are the project's (lcr.report.metrics.evaluate's).
        for subset in ("full", "head", "tail"):
            for key, value in check["metrics"][subset].items():
                assert value == pytest.approx(project[subset][key], abs=1e-12), (name, subset, key)
    assert set(result["speedups"]) == set(bench.LOOPS)
    text = bench.markdown(args, result, "python -m bench.bench_evaluation --quick")
    assert "speed-up over the `np.argsort` loop" in text and "N x K float32" in text


def test_evaluation_loop_metrics_by_hand():
    import numpy as np

    from bench.bench_evaluation import LoopMetrics, rank_document

    row = np.array([0.1, 0.9, 0.5, 0.9, -1.0], dtype=np.float32)
    for how in ("sort", "argpartition", "python"):
        assert rank_document(row, 3, how) == [1, 3, 2]  # ties to the lower index
    acc = LoopMetrics(np.array([True, True, False, False, False]), ks=(1, 3))
    acc.add([1, 3, 2], [3, 4])  # one head label of two: tail, not head
    result = acc.result()
    assert result["full"]["P@1"] == 0.0 and result["full"]["P@3"] == pytest.approx(1 / 3)
    assert result["full"]["nDCG@3"] == pytest.approx((1 / np.log2(3)) / (1 + 1 / np.log2(3)))
    assert result["tail"]["n_docs"] == 1 and result["head"]["n_docs"] == 0


def test_step_memory_low_rank_w5_is_smaller():
    from bench import bench_step_memory as bench

    args = bench.parse_args(["--quick", "--labels", "300", "--docs", "3000", "--no-report"])
    result = bench.run(args)
    faithful, low = result["models"]["faithful"], result["models"]["low-rank"]
    assert "failed" not in faithful and "failed" not in low
    assert faithful["params"]["w5"] == args.gamma * args.hidden * args.labels + args.labels  # W5 and b5
    assert low["params"]["w5"] == (args.gamma * args.hidden + args.labels) * args.rank + args.labels
    assert low["w5_bytes"] < faithful["w5_bytes"]
    assert faithful["peak"] >= faithful["before"] > 0
    assert bench.passed(result)
    text = bench.markdown(args, result, "python -m bench.bench_step_memory --quick")
    assert "| faithful | null |" in text and f"| low-rank | {args.rank} |" in text


def test_run_all_lists_every_benchmark():
    from bench.run_all import NAMES

    done = _run("bench.run_all", "--list")
    assert done.returncode == 0, done.stderr
    listed = [line.split()[0] for line in done.stdout.splitlines() if line.strip()]
    assert listed == list(NAMES)
    assert {"bench_evaluation", "bench_step_memory", "bench_train_step"} <= set(listed)


def test_run_all_quick_leaves_benchmarks_file_alone():
    before = BENCHMARKS.read_bytes()
    done = _run("bench.run_all", "--quick", "--only", "bench_evaluation")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "bench_evaluation: ok" in done.stdout
    assert "speed-up over the `np.argsort` loop" in done.stdout  # the benchmark's own output passed through
    assert BENCHMARKS.read_bytes() == before


def test_run_all_rejects_unknown_names():
    done = _run("bench.run_all", "--only", "no_such_bench")
    assert done.returncode != 0 and "invalid choice" in done.stderr


def test_run_all_machine_section_goes_after_the_header(tmp_path):
    from bench import report
    from bench.run_all import BENCHMARKS as ALL, machine_markdown, write_machine_section

    path = tmp_path / "BENCHMARKS.md"
    report.update_section("prepare", "## prepare\nfigures", path)
    rows = [(ALL[0], "python -m bench.bench_prepare", {"status": "ok", "seconds": 12.0}),
            (ALL[-1], "python -m bench.bench_step_memory", {"status": "skipped (module not found)"})]
    write_machine_section(machine_markdown("python -m bench.run_all", rows), path)
    text = path.read_text(encoding="utf-8")
    assert text.index("<!-- begin machine -->") < text.index("<!-- begin prepare -->")
    assert "python -m bench.run_all" in text and "| `bench_prepare` | `prepare` |" in text
    assert "torch" in text and "transformers" in text
    write_machine_section("## Machine and commands\nagain", path)  # rewritten in place, not added twice
    text = path.read_text(encoding="utf-8")
    assert text.count("<!-- begin machine -->") == 1 and "again" in text and "figures" in text


def test_reuters_recipe_records_carry_the_issue_keys_and_merge_by_run(tmp_path, monkeypatch):
    import argparse

    from bench import bench_reuters

    monkeypatch.setattr(bench_reuters, "_train_docs", lambda args: 6993)
    full = {"P@1": 0.9, "P@3": 0.35, "P@5": 0.22, "nDCG@3": 0.91, "nDCG@5": 0.92, "n_docs": 3019}
    stage = {"s1_P@1": 0.88, "s1_nDCG@5": 0.9, "s_gold_coverage": 0.93, "s_distinct_share": 0.64,
             "mean_S2": 1.2, "mean_S3": 13.1}
    params = dict(gamma=20, beta=0.3, alpha=0.3, lr=5e-5, head_lr=1e-3, pooling="cls", schedule="constant",
                  warmup_ratio=0.0, first_stage_steps=0, bias_init="log_odds", pooler_init=True,
                  weight_decay=0.01, max_length=64, epochs=2, max_train_docs=None)
    results = [{"eval": {"full": {**full, **stage}}, "train_seconds": 600, "run_id": "a",
                "params": {**params, "variant": "labelcorank", "seed": 0}},
               {"eval": {"full": full}, "train_seconds": 300, "run_id": "b",
                "params": {**params, "variant": "roberta", "seed": 0}}]
    args = argparse.Namespace(dataset="reuters21578", seeds=[0], max_length=64, batch_size=16, epochs=2,
                              max_train_docs=None, reuse=False, trained_with=[], set=[])
    records = bench_reuters.records(results, args, "abc1234")
    keys = {"dataset", "variant", "seed", "subset", "P@1", "P@3", "P@5", "nDCG@3", "nDCG@5", "train_minutes",
            "max_length", "epochs", "train_docs"}
    assert keys | {"s1_P@1", "s1_nDCG@5", "s_gold_coverage", "s_distinct_share"} <= set(records[0])
    assert keys <= set(records[1]) and "s1_P@1" not in records[1]
    assert records[0]["train_minutes"] == 10.0 and records[0]["subset"] == "full" and records[0]["train_docs"] == 6993
    assert records[0]["schedule"] == "constant"
    assert records[0]["batch_size"] == 16  # params without one: the script's default
    path = tmp_path / "reuters-recipe.json"
    bench_reuters.write_records(records, path)
    rerun = [{**records[0], "P@1": 0.95}]
    merged = bench_reuters.write_records(rerun, path)
    assert len(merged) == 2 and [r["P@1"] for r in merged if r["variant"] == "labelcorank"] == [0.95]
    assert json.loads(path.read_text()) == merged
    other_budget = [{**records[0], "epochs": 3, "schedule": "linear", "P@1": 0.96}]
    merged = bench_reuters.write_records(other_budget, path)
    assert sorted(r["P@1"] for r in merged if r["variant"] == "labelcorank") == [0.95, 0.96]
    summary = [{**other_budget[0], "summary_tokens": 4, "P@1": 0.97}]  # another first stage: beside it
    merged = bench_reuters.write_records(summary, path)
    assert sorted(r["P@1"] for r in merged if r["variant"] == "labelcorank") == [0.95, 0.96, 0.97]
    assert records[0]["summary_tokens"] == 1
    confident = [{**other_budget[0], "query_confidence": True, "P@1": 0.98}]  # another second stage: beside it
    merged = bench_reuters.write_records(confident, path)
    assert sorted(r["P@1"] for r in merged if r["variant"] == "labelcorank") == [0.95, 0.96, 0.97, 0.98]
    ranked = [{**other_budget[0], "rank_loss_weight": 0.1, "P@1": 0.99}]
    merged = bench_reuters.write_records(ranked, path)
    assert sorted(r["P@1"] for r in merged if r["variant"] == "labelcorank") == [0.95, 0.96, 0.97, 0.98, 0.99]
    assert "query_confidence" not in records[0] and "rank_loss_weight" not in records[0]
    assert (records[0]["gamma"], records[0]["beta"], records[0]["alpha"]) == (20, 0.3, 0.3)
    assert "gamma" not in records[1]  # a baseline's record: the LabelCoRank settings mean nothing there
    batches = tmp_path / "batches.json"
    bench_reuters.write_records(records[:1], batches)
    merged = bench_reuters.write_records([{**records[0], "batch_size": 8, "P@1": 0.91}], batches)  # another batch
    assert sorted(r["P@1"] for r in merged) == [0.9, 0.91]
    unnamed = {k: v for k, v in records[0].items() if k != "batch_size"}  # written before batches were kept: 16
    merged = bench_reuters.write_records([{**unnamed, "P@1": 0.92}], batches)
    assert sorted(r["P@1"] for r in merged) == [0.91, 0.92]
    swept = [{**other_budget[0], "gamma": 10, "P@1": 0.94}]  # the gamma sweep: beside the gamma 20 run
    merged = bench_reuters.write_records(swept, path)
    assert sorted(r["P@1"] for r in merged if r["variant"] == "labelcorank") == [0.94, 0.95, 0.96, 0.97, 0.98, 0.99]
    dense = [{**other_budget[0], "gamma": 10, "final_head": "dense", "P@1": 0.93}]  # another final head: beside it
    merged = bench_reuters.write_records(dense, path)
    assert sorted(r["P@1"] for r in merged if r["variant"] == "labelcorank") == [0.93, 0.94, 0.95, 0.96, 0.97, 0.98,
                                                                                   0.99]
    assert "final_head" not in records[0]  # the project's default (per_label) is not named
    assert (records[0]["lr"], records[0]["head_lr"]) == (params["lr"], params["head_lr"])
    faster = [{**dense[0], "lr": 1e-4, "P@1": 0.92}]  # another learning rate: beside it
    merged = bench_reuters.write_records(faster, path)
    assert sorted(r["P@1"] for r in merged if r["variant"] == "labelcorank") == [0.92, 0.93, 0.94, 0.95, 0.96,
                                                                                   0.97, 0.98, 0.99]
    turned_on = [{**results[0], "params": {**results[0]["params"], "rank_loss_weight": 0.1}}]
    assert bench_reuters.records(turned_on, args, "abc1234")[0]["rank_loss_weight"] == 0.1
    text = bench_reuters.markdown(results, args, "python -m bench.bench_reuters", "abc1234")
    assert "| labelcorank | 0 | 0.9000 |" in text and "93.0%" in text and "abc1234" in text
    assert ("query_confidence False, rank_loss_weight 0.0, rerank_noise 0.0, rerank_swap 0.0, rerank_focal 0.0, rerank_epochs 0, first_temperature 1.0, "
            "label_init random, final_blend 0.0, label_interaction_layers 0, cross_fit_folds 0, label_attention head, "
            "reader_weights shared, reader_lr None, reader_keys encoder, "
            "first_in_training current, reader_text_grad True, separate_stages False; "
            "LabelCoRank gamma 20") in text
    assert bench_reuters.records_path("reuters21578").name == "reuters-recipe.json"
    reused = [{**r, "commit": "d3a86b5"} for r in results]  # trained at another commit than the report's
    assert {r["commit"] for r in bench_reuters.records(reused, args, "abc1234")} == {"d3a86b5"}
    assert "- Commit: runs trained at d3a86b5; section written at abc1234;" in bench_reuters.markdown(
        reused, args, "python -m bench.bench_reuters", "abc1234")
    assert "- Commit: abc1234;" in text


def test_reused_run_reports_the_commit_its_mlflow_run_was_trained_at(tmp_path):
    import mlflow

    from bench import bench_reuters

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = mlflow.MlflowClient(tracking_uri=uri)
    run = client.create_run(client.create_experiment("bench"),
                            tags={"mlflow.source.git.commit": "d3a86b5ac691d591a119ea3cf71c12529be777a4"})
    assert bench_reuters.trained_commit({"run_id": run.info.run_id, "tracking_uri": uri}) == "d3a86b5"
    assert bench_reuters.trained_commit({"run_id": "0" * 32, "tracking_uri": uri}) is None  # run gone
    missing = tmp_path / "gone" / "mlflow.db"
    assert bench_reuters.trained_commit({"run_id": run.info.run_id, "tracking_uri": f"sqlite:///{missing}"}) is None
    assert not missing.exists()  # a moved store is not recreated empty


# --------------------------------------------------------------------------------------------
# bench/synthetic.py and bench/report.py


def test_blend_scores_a_trained_run_at_each_weight_and_picks_the_weight_on_dev(registered, tmp_path, monkeypatch):
    from bench import bench_blend, bench_reuters

    run = registered["root"] / "run"
    rows = bench_blend.blend_rows(run, [0.0, 0.5, 1.0], data_dir=registered["data"])
    final = json.loads((run / "metrics.json").read_text())["eval"]["full"]
    # w = 0 is the run's own final evaluation; w = 1 ranks with S1 alone (its diagnostics)
    assert all(abs(rows[0]["test"][c] - final[c]) < 1e-9 for c in bench_reuters.COLUMNS)
    assert abs(rows[2]["test"]["P@1"] - final["s1_P@1"]) < 1e-9
    assert abs(rows[2]["test"]["nDCG@5"] - final["s1_nDCG@5"]) < 1e-9
    assert [r["final_blend"] for r in rows] == [0.0, 0.5, 1.0] and set(rows[1]) == {"final_blend", "dev", "test"}
    # w < 0 enlarges the reranking stage's corrections (the weights' rows do not depend on which others are asked)
    further = bench_blend.blend_rows(run, [-1.0, 0.0], data_dir=registered["data"])
    assert [r["final_blend"] for r in further] == [-1.0, 0.0] and further[1] == rows[0]
    with pytest.raises(LcrError, match="final_blend must be at most 1"):
        bench_blend.blend_rows(run, [0.0, 1.5], data_dir=registered["data"])
    dev = lambda w, v: {"final_blend": w, "dev": {"nDCG@5": v}}  # noqa: E731
    assert bench_blend.chosen_weight([dev(0.0, 0.5), dev(0.5, 0.7), dev(1.0, 0.7)]) == 0.5  # tie: the nearer 0
    assert bench_blend.chosen_weight([dev(0.0, 0.9), dev(0.5, 0.7)]) == 0.0
    assert bench_blend.chosen_weight([dev(-1.0, 0.8), dev(-0.5, 0.8), dev(0.0, 0.7)]) == -0.5  # tie: the nearer 0

    monkeypatch.setattr(bench_blend, "RESULTS", tmp_path / "RESULTS.md")
    monkeypatch.setattr(bench_blend, "RECORDS_DIR", tmp_path / "results")
    monkeypatch.setattr(bench_reuters, "RECORDS_DIR", tmp_path / "results")
    argv = ["--runs", str(run), "--weights", "0", "1", "--data-dir", str(registered["data"])]
    assert bench_blend.main(argv) == 0 and bench_blend.main(argv) == 0  # scored again: replaced, not added
    records = json.loads((tmp_path / "results" / "toy-blend.json").read_text())
    assert [(r["final_blend"], r["seed"]) for r in records] == [(0.0, 0), (1.0, 0)]
    assert sum(r["chosen"] for r in records) == 1 and abs(records[0]["P@1"] - final["P@1"]) < 1e-9
    assert records[0]["run_id"] == json.loads((run / "mlflow_run.json").read_text())["run_id"]
    # another benchmark's run folder of the same name (another MLflow run) is kept beside it
    other = tmp_path / "other" / run.name
    shutil.copytree(run, other)
    (other / "mlflow_run.json").write_text(json.dumps({"run_id": "another", "tracking_uri": "sqlite:///gone.db"}))
    assert bench_blend.main(["--runs", str(other), "--weights", "0", "--data-dir", str(registered["data"])]) == 0
    records = json.loads((tmp_path / "results" / "toy-blend.json").read_text())
    assert [(r["run_id"] == "another", r["final_blend"]) for r in records] == [(False, 0.0), (False, 1.0), (True, 0.0)]
    text = (tmp_path / "RESULTS.md").read_text()
    assert "<!-- begin toy-blend -->" in text and "| labelcorank | 0 | 0" in text and "**chosen**" in text
    # two benchmarks' runs of one seed share a folder name: the section says which run dir each row is from
    folders = [tmp_path / "runs-a" / "toy" / run.name, tmp_path / "runs-b" / "toy" / run.name, tmp_path / "c" / "x"]
    assert bench_blend.run_labels(folders) == [f"runs-a/{run.name}", f"runs-b/{run.name}", "x"]
    scored = [{"run": f.name, "label": label, "settings": {"dataset": "toy", "seed": 0, "max_length": 64,
                                                          "epochs": 2, "schedule": "linear"},
               "rows": rows[:1], "chosen": 0.0, "reference": None, "commit": "abc1234"}
              for f, label in zip(folders[:2], bench_blend.run_labels(folders[:2]))]
    table = bench_blend.markdown(scored, "python -m bench.bench_blend", "abc1234")
    assert "| labelcorank (runs-a) | 0 | 0 **chosen** |" in table and "| labelcorank (runs-b) | 0 |" in table
    assert f"`runs-a/{run.name}`, `runs-b/{run.name}`" in table
    # the plain fine-tune beside it: same seed, epochs, tokens, schedule and encoder learning rate
    base = {"dataset": "toy", "variant": "roberta", "seed": 0, "epochs": 2, "max_length": 64, "schedule": "linear"}
    (tmp_path / "results" / "toy-recipe.json").write_text(json.dumps(
        [{**base, "P@1": 0.5}, {**base, "lr": 1e-4, "P@1": 0.6}, {**base, "seed": 1, "lr": 5e-5, "P@1": 0.7}]))
    settings = {"seed": 0, "epochs": 2, "max_length": 64, "schedule": "linear"}
    assert bench_blend.reference("toy", {**settings, "lr": 5e-5})["P@1"] == 0.5  # no rate kept: the recipe's
    assert bench_blend.reference("toy", {**settings, "lr": 1e-4})["P@1"] == 0.6
    # a run at another batch has its own plain fine-tune or none; records without a batch ran at 16
    assert bench_blend.reference("toy", {**settings, "lr": 5e-5, "batch_size": 8}) is None
    assert bench_blend.reference("toy", {**settings, "lr": 5e-5, "batch_size": 16})["P@1"] == 0.5


def test_coverage_counts_gold_in_s_and_out_of_the_reranking_stages_reach(registered, tmp_path, monkeypatch):
    import scipy.sparse as sp

    from bench import bench_coverage

    # 4 documents, K = 5 (PAD = 5), gamma = 2
    gold = sp.csr_matrix(np.array([[1, 0, 0, 0, 0], [0, 1, 0, 0, 0], [0, 0, 1, 0, 0], [0, 0, 0, 0, 0]]))
    top1 = np.array([0, 2, 3, 4])  # doc 0 right; 1 and 2 wrong; 3 has no gold label (not counted)
    s1_top = np.array([[0, 1], [2, 1], [3, 2], [4, 0]])
    selected = np.array([[0, 5], [2, 1], [3, 4], [5, 5]])
    mask = selected != 5
    counts = bench_coverage.coverage(gold, top1, s1_top, selected, mask)
    assert counts["gold_in_S"] == 2 / 3 and counts["gold_in_S1_top"] == 1.0
    assert counts["empty_S"] == 0.25 and counts["mean_S"] == 1.25
    # doc 1: gold in S; doc 2: gold in S1's top 2 but not in S
    assert (counts["top1_wrong"], counts["wrong_gold_in_S"], counts["wrong_out_of_reach"]) == (2, 1, 1)

    run = registered["root"] / "run"
    final = json.loads((run / "metrics.json").read_text())["eval"]["full"]
    counts = bench_coverage.run_coverage(run, data_dir=registered["data"])
    assert abs(counts["gold_in_S"] - final["s_gold_coverage"]) < 1e-9  # the run's own diagnostic
    assert counts["n_docs"] == 16 and counts["top1_wrong"] >= counts["wrong_gold_in_S"] + counts["wrong_out_of_reach"]
    monkeypatch.setattr(bench_coverage, "RESULTS", tmp_path / "RESULTS.md")
    assert bench_coverage.main(["--runs", str(run), "--data-dir", str(registered["data"])]) == 0
    assert "<!-- begin toy-coverage -->" in (tmp_path / "RESULTS.md").read_text()


def test_paired_compares_two_runs_predictions_and_pools_the_seeds(registered, tmp_path, monkeypatch):
    from bench import bench_paired, bench_reuters
    from lcr.datasets import store as data_store

    run = registered["root"] / "run"
    # A candidate run whose test predictions are the gold labels themselves.
    perfect = tmp_path / "perfect" / run.name
    shutil.copytree(run, perfect, ignore=shutil.ignore_patterns("best_model", "checkpoint.pt"))
    (perfect / "mlflow_run.json").write_text(json.dumps({"run_id": "perfect", "tracking_uri": "sqlite:///gone.db"}))
    vocab, _ = data_store.read_vocab(registered["data"] / "toy")
    gold = data_store.label_matrix(registered["data"] / "toy", "test", vocab)
    ids = data_store.read_split(registered["data"] / "toy", "test", columns=["id"]).column("id").to_pylist()
    (perfect / "predictions-test.jsonl").write_text("".join(
        json.dumps({"id": doc, "labels": [vocab[j] for j in gold[i].indices]}) + "\n" for i, doc in enumerate(ids)))
    final = json.loads((run / "metrics.json").read_text())["eval"]["full"]

    pairs = [(bench_paired.run_info(run), bench_paired.run_info(perfect))]
    (one,) = bench_paired.comparisons(pairs, data_dir=registered["data"], resamples=200)
    ndcg = one["metrics"]["nDCG@5"]
    assert one["label"] == "s0" and abs(ndcg["baseline"] - final["nDCG@5"]) < 1e-9 and ndcg["candidate"] == 1.0
    assert ndcg["worse"] == 0 and ndcg["low"] >= 0 and (ndcg["better"] > 0) == (final["nDCG@5"] < 1.0)
    both = bench_paired.comparisons(pairs + [(bench_paired.run_info(perfect), bench_paired.run_info(run))],
                                    data_dir=registered["data"], resamples=200)
    assert [c["label"] for c in both] == ["s0", "s0", "pooled"]
    assert abs(both[2]["metrics"]["nDCG@5"]["difference"]) < 1e-12  # each side averages the same two rankings
    # RUN+RUN: the ensemble of the runs' test predictions; a run averaged with itself ranks as it did.
    twice = bench_paired.side_info(f"{run}+{run}", tmp_path)
    assert twice["settings"]["variant"] == "labelcorank x2" and twice["settings"]["seed"] == "0+0"
    (same,) = bench_paired.comparisons([(twice, bench_paired.run_info(run))], data_dir=registered["data"], resamples=200)
    assert same["label"] == "s0+0/s0" and same["metrics"]["nDCG@5"]["difference"] == 0
    with pytest.raises(LcrError, match="no scores"):  # the gold-label run has no scores to average
        bench_paired.side_info(f"{run}+{perfect}", tmp_path)

    monkeypatch.setattr(bench_paired, "RESULTS", tmp_path / "RESULTS.md")
    monkeypatch.setattr(bench_paired, "RECORDS_DIR", tmp_path / "results")
    monkeypatch.setattr(bench_reuters, "RECORDS_DIR", tmp_path / "results")
    argv = ["--pair", str(run), str(perfect), "--resamples", "100", "--data-dir", str(registered["data"])]
    assert bench_paired.main(argv) == 0 and bench_paired.main(argv) == 0  # compared again: replaced, not added
    records = json.loads((tmp_path / "results" / "toy-paired.json").read_text())
    assert [(r["comparison"], r["metric"]) for r in records] == [("s0", c) for c in bench_reuters.COLUMNS]
    assert records[0]["candidate_runs"] == ["perfect"] and records[0]["baseline_variant"] == "labelcorank"
    text = (tmp_path / "RESULTS.md").read_text()
    assert "<!-- begin toy-paired -->" in text and "| s0 | nDCG@5 |" in text


def test_gains_set_each_labelcorank_run_beside_its_plain_fine_tune_and_check_the_target(tmp_path, monkeypatch):
    from bench import bench_gains, bench_reuters

    monkeypatch.setattr(bench_reuters, "RECORDS_DIR", tmp_path / "results")
    monkeypatch.setattr(bench_gains, "RESULTS", tmp_path / "RESULTS.md")
    base = {"dataset": "toy", "seed": 0, "epochs": 2, "max_length": 128, "schedule": "linear", "summary_tokens": 1,
            "lr": 5e-5, "commit": "abc"}
    metrics = lambda p, n: {"P@1": p, "P@3": 0.37, "P@5": 0.23, "nDCG@3": n, "nDCG@5": n}  # noqa: E731
    records = [
        {**base, "variant": "roberta", **metrics(0.94, 0.950)},
        {**base, "variant": "roberta", "seed": 1, **metrics(0.94, 0.960)},
        {**base, "variant": "labelcorank", "label_attention": "encoder_readers", **metrics(0.95, 0.956), "s1_nDCG@5": 0.951},
        {**base, "variant": "labelcorank", "seed": 1, "label_attention": "encoder_readers", **metrics(0.95, 0.9651),
         "s1_nDCG@5": 0.96},
        {**base, "variant": "labelcorank", **metrics(0.93, 0.960)},  # +1 point nDCG but below on P@1
        {**base, "variant": "labelcorank", "lr": 1e-4, **metrics(0.95, 0.99)},  # no plain run at that rate
        {**base, "variant": "no_cooc", **metrics(0.95, 0.99)},  # an ablation: not a recipe
        {**base, "variant": "roberta", "batch_size": 8, **metrics(0.95, 0.955)},
        {**base, "variant": "labelcorank", "batch_size": 8, **metrics(0.96, 0.958), "s1_nDCG@5": 0.95},
    ]
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "toy-recipe.json").write_text(json.dumps(records))
    defaults = {"lr": 5e-5, "head_lr": 1e-3, "gamma": 20, "beta": 0.3, "alpha": 0.3}
    rows = bench_gains.gains(records, defaults)
    assert [(r["recipe"], r["record"]["seed"]) for r in rows] == [
        ("batch_size=8", 0), ("label_attention=encoder_readers", 0), ("label_attention=encoder_readers", 1),
        ("the recipe (label_attention=head)", 0)]
    assert rows[0]["gain"]["nDCG@5"] == pytest.approx(0.3)  # beside the plain fine-tune at batch 8
    assert rows[1]["gain"]["nDCG@5"] == pytest.approx(0.6) and rows[1]["gain"]["P@1"] == pytest.approx(1.0)
    assert [r["meets"] for r in rows] == [False, True, True, False]
    assert bench_gains.recipes_meeting(rows) == ["label_attention=encoder_readers (128 tokens, 2 epochs)"]
    assert bench_gains.recipes_meeting(rows[:2] + rows[3:]) == []  # one seed is not enough
    assert bench_gains.recipe({**records[2], "gamma": 10}, defaults) == "label_attention=encoder_readers, gamma=10"
    monkeypatch.setattr(bench_gains, "recipe_defaults", lambda dataset: defaults)  # toy is no profile dataset: the demo recipe
    assert bench_gains.main(["--dataset", "toy"]) == 0
    text = (tmp_path / "RESULTS.md").read_text()
    assert "<!-- begin toy-gains -->" in text and "| label_attention=encoder_readers | 128 | 2 | linear | 1 |" in text
    # The figure: the two runs that kept S1's nDCG@5, beside their seeds' plain fine-tunes.
    runs, plain, group = bench_gains.figure_points(rows, defaults)
    assert group == (128, 2) and runs.to_dict("list") == {"seed": [0, 1], "first": [0.951, 0.96], "final": [0.956, 0.9651]}
    assert plain == {0: 0.950, 1: 0.960}
    assert (tmp_path / "results" / "toy-gains.png").read_bytes().startswith(b"\x89PNG")
    assert "results/toy-gains.png" in text
    assert bench_gains.main(["--dataset", "nothing"]) == 2


def test_synthetic_label_model_shape():
    model = LabelModel.create(200, seed=1)
    Y, topic = model.sample(3000, 5.0, np.random.default_rng(2))
    counts = np.diff(Y.indptr)
    assert Y.shape == (3000, 200) and topic.shape == (3000,)
    assert counts.min() >= 1 and abs(counts.mean() - 5.0) < 0.2
    Y.sum_duplicates()
    assert Y.nnz == counts.sum()  # the labels of a document are distinct
    freq = np.sort(labels.label_frequencies(Y))[::-1]
    assert freq[0] > 10 * np.median(freq)  # long-tailed


def test_synthetic_store_is_a_valid_store(tmp_path):
    tiny_store = tmp_path / "data" / "tiny"
    generate_store(tiny_store, SHAPES["tiny"], seed=3)
    stats = json.loads((tiny_store / "stats.json").read_text())
    assert stats["splits"]["train"]["documents"] == 300 and stats["labels"] == 30
    vocab, names = store.read_vocab(tiny_store)
    assert vocab == sorted(vocab) and len(vocab) == 30
    rows = list(store.iter_split(tiny_store, "dev"))
    assert len(rows) == 40 and all(r["text"] and r["labels"] for r in rows)
    assert store.read_split(tiny_store, "train").schema.names == ["id", "text", "labels"]


def test_update_section_replaces_and_appends(tmp_path):
    path = tmp_path / "BENCHMARKS.md"
    report.update_section("a", "first\\d", path)
    report.update_section("b", "second", path)
    report.update_section("a", "third", path)
    text = path.read_text()
    assert "first" not in text and text.count("<!-- begin a -->") == 1
    assert text.index("third") < text.index("second")  # replaced in place, b kept after it
    assert text.startswith("# Benchmarks")


# --------------------------------------------------------------------------------------------
# bench/demo_report.py


def test_demo_report_reads_the_stage_times_and_the_tables_of_a_finished_demo(tmp_path):
    import csv

    import mlflow

    from bench import demo_report

    clone = tmp_path / "clone"
    clone.mkdir()
    for command in (["git", "init", "-q"], ["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q",
                                             "--allow-empty", "-m", "x"]):
        subprocess.run(command, cwd=clone, check=True)
    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{clone / 'mlflow.db'}")
    experiment = client.create_experiment("demo")
    for name, start, end in (("dvc repro", 1_000, 9_000), ("reuters21578-labelcorank", 2_000, 5_500)):
        run = client.create_run(experiment, start_time=start, run_name=name)
        client.set_terminated(run.info.run_id, end_time=end)
    (clone / "tables").mkdir()
    columns = ["row", "status", *demo_report.METRICS, "s1_P@1", "s1_nDCG@5"]
    with (clone / "tables" / "reuters21578_main.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, columns)
        writer.writeheader()
        writer.writerow({"row": "LabelCoRank", "status": "measured", **dict.fromkeys(demo_report.METRICS, "0.8"),
                         "s1_P@1": "0.7", "s1_nDCG@5": "0.75"})
        writer.writerow({"row": "MATCH", "status": "not run", **dict.fromkeys(demo_report.METRICS, "")})
    out = tmp_path / "make-demo.md"
    assert demo_report.main([str(clone), "--seconds", "1106.5", "--rc", "0", "--output", str(out)]) == 0
    text = out.read_text()
    assert "1,106 s (18.4 min)" in text and "exit status 0" in text and "1 stages logged" in text
    assert "| reuters21578-labelcorank | 1 s | 4 s | FINISHED |" in text
    assert "| LabelCoRank | 0.8 | 0.8 | 0.8 | 0.8 | 0.8 | 0.7 | 0.75 |" in text and "MATCH" not in text
    assert demo_report.main([str(tmp_path / "nothing"), "--seconds", "1", "--rc", "0", "--output", str(out)]) == 2
