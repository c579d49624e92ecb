"""The ``lcr`` command line: one command per library function, nothing more.

Every command reads its defaults from ``params.yaml`` (when present in the working folder) and
lets options override them. User errors print one clear line and exit with status 2.
"""

from __future__ import annotations

import functools
import json
import os
import sys
from pathlib import Path
from typing import Optional

import typer

from lcr.config import VARIANTS, load_params
from lcr.errors import LcrError

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="LabelCoRank: long-tail multi-label text classification.")

ParamsOption = typer.Option(None, "--params", help="Parameter file (default: ./params.yaml if present).")
DataDirOption = typer.Option(None, "--data-dir", help="Data folder (default: params.yaml's data_dir, else ./data).")
StageOption = typer.Option(None, "--stage", help="Run as the MLflow run of this DVC stage (set by dvc.yaml).")
TrackOption = typer.Option(True, "--track/--no-track", help="Log the run in MLflow.")
ScoresOption = typer.Option(None, "--scores", help="Also write the final metrics here as a flat DVC metrics file.")


def _user_errors(func):
    """Turn :class:`LcrError` into a one-line message and exit status 2."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except LcrError as exc:
            typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
            raise typer.Exit(code=2)

    return wrapper


def _stage_tags(stage: str | None) -> dict | None:
    """The DVC stage tag: DVC's own name for the stage when DVC runs it, else ``stage``."""
    name = os.environ.get("DVC_STAGE") or stage
    return {"dvc.stage": name} if name else None


def _progress() -> bool:
    return sys.stderr.isatty()


def format_stats(stats: dict) -> str:
    """Render ``stats.json`` as the paper's Table 1 columns, one row per split."""
    lines = [f"{stats['dataset']}: {stats['labels']} labels"
             + (f"  (train stand-in: {stats['train_standin']})" if stats.get("train_standin") else "")
             + (f"  (missing: {', '.join(stats['missing'])})" if stats.get("missing") else ""),
             f"{'split':<6} {'docs':>9} {'labels':>7} {'L_avg':>7} {'W_avg':>8}"]
    for split, row in stats["splits"].items():
        lines.append(f"{split:<6} {row['documents']:>9,} {row['labels_present']:>7} "
                     f"{row['avg_labels']:>7.2f} {row['avg_words']:>8.1f}")
    return "\n".join(lines)


@app.command()
@_user_errors
def datasets():
    """List the datasets that `lcr fetch` knows."""
    from lcr.datasets.fetch import REGISTRY

    for name, source in REGISTRY.items():
        typer.echo(f"{name:<14} {source.description}")
    typer.echo(f"{'custom':<14} your own corpus: JSONL/CSV/TSV file or folder, with --from PATH")


@app.command()
@_user_errors
def fetch(
    dataset: str = typer.Argument(..., help="reuters21578, aapd, mag-cs, pubmed or custom"),
    source: Optional[Path] = typer.Option(None, "--from", help="Release archive, file or folder to read instead of the mirror/URL."),
    dev_fraction: Optional[float] = typer.Option(None, help="Share of train held out as dev when the source has no dev split."),
    merge_train_dev: Optional[bool] = typer.Option(None, "--merge-train-dev/--no-merge-train-dev", help="Train on train + dev (the paper's AAPD setting)."),
    train_standin: Optional[str] = typer.Option(None, help="Split that stands in for a missing train split (smoke runs)."),
    name: Optional[str] = typer.Option(None, help="custom only: the store name (data/<name>)."),
    text_field: str = typer.Option("text", help="custom only: text field/column."),
    labels_field: str = typer.Option("labels", help="custom only: labels field/column."),
    id_field: str = typer.Option("id", help="custom only: id field/column."),
    label_sep: str = typer.Option("|", help="custom CSV/TSV only: separator between labels."),
    on_duplicate: str = typer.Option("error", help="custom only: a repeated document id stops the fetch "
                                     "('error', naming both lines) or the first is kept ('first', the count "
                                     "dropped goes into stats.json)."),
    data_dir: Optional[Path] = DataDirOption,
    params: Optional[Path] = ParamsOption,
    stage: Optional[str] = StageOption,
):
    """Fetch a dataset and write its normalised store and stats.json."""
    from lcr.jobs import fetch_job

    stats = fetch_job(dataset, load_params(params), data_dir=data_dir, source=source, dev_fraction=dev_fraction,
                      merge_train_dev=merge_train_dev, train_standin=train_standin,
                      custom_options=dict(name=name, text_field=text_field, labels_field=labels_field,
                                          id_field=id_field, label_sep=label_sep, on_duplicate=on_duplicate),
                      stage=stage, progress=_progress())
    typer.echo(format_stats(stats))
    if (stats.get("duplicates") or {}).get("dropped"):
        typer.echo(f"dropped {stats['duplicates']['dropped']:,} document(s) whose id repeated an earlier one "
                   "(--on-duplicate first kept the first)")


@app.command()
@_user_errors
def stats(
    dataset: str = typer.Argument(..., help="A fetched dataset (data/<dataset>)."),
    as_json: bool = typer.Option(False, "--json", help="Print stats.json as it is."),
    data_dir: Optional[Path] = DataDirOption,
    params: Optional[Path] = ParamsOption,
):
    """Print a fetched dataset's statistics (the paper's Table 1 columns)."""
    from lcr.datasets.store import read_stats

    config = load_params(params)
    result = read_stats(Path(data_dir or config.data_dir) / dataset)
    typer.echo(json.dumps(result, indent=2) if as_json else format_stats(result))


@app.command()
@_user_errors
def prepare(
    dataset: str = typer.Argument(..., help="A fetched dataset (data/<dataset>)."),
    head_fraction: Optional[float] = typer.Option(None, help="Share of most frequent labels that are head labels."),
    data_dir: Optional[Path] = DataDirOption,
    params: Optional[Path] = ParamsOption,
    stage: Optional[str] = StageOption,
):
    """Compute label frequencies, ranks, co-occurrence, head/tail subsets and the distribution plot."""
    from lcr.jobs import prepare_job

    config = load_params(params)
    folder = Path(data_dir or config.data_dir) / dataset
    artifacts = prepare_job(dataset, config, data_dir=data_dir, head_fraction=head_fraction, stage=stage,
                            progress=_progress())
    summary = json.loads((folder / "labels" / "subsets.json").read_text(encoding="utf-8"))
    typer.echo(f"{dataset}: {len(artifacts.vocab)} labels, co-occurrence nnz {artifacts.cooc.nnz:,}; "
               f"written to {folder / 'labels'}")
    typer.echo(json.dumps(summary.get("sizes", summary), indent=2)[:2000])


@app.command()
@_user_errors
def export(
    dataset: str = typer.Argument(...),
    split: str = typer.Argument(..., help="train, dev or test"),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="JSONL file (default: stdout)."),
    data_dir: Optional[Path] = DataDirOption,
    params: Optional[Path] = ParamsOption,
):
    """Write a split as JSON lines {"id", "text", "labels"} for other tools."""
    from lcr.datasets.store import export_jsonl

    config = load_params(params)
    n = export_jsonl(Path(data_dir or config.data_dir) / dataset, split, output or sys.stdout)
    if output:
        typer.echo(f"wrote {n:,} documents to {output}", err=True)


@app.command()
@_user_errors
def metrics(
    gold: str = typer.Option(..., help="DATASET:SPLIT of a fetched dataset, or a JSONL file of {id, labels}."),
    pred: Path = typer.Option(..., help="Predictions JSONL {id, labels: [ranked], scores: [...]}."),
    threshold: float = typer.Option(0.5, help="Score threshold for micro/macro F1."),
    per_label: Optional[Path] = typer.Option(None, "--per-label", help="Also write precision, recall, F1 and "
                                             "support per label (with its training frequency) to this CSV."),
    data_dir: Optional[Path] = DataDirOption,
    params: Optional[Path] = ParamsOption,
):
    """Score predictions: P@k, nDCG@k, PSP@k, PSnDCG@k, F1 (full, head, tail); JSON on stdout."""
    from lcr.report.evaluation import evaluate_prediction_file, per_label_file

    config = load_params(params)
    result = evaluate_prediction_file(gold, pred, data_dir=data_dir or config.data_dir, threshold=threshold)
    if per_label is not None:
        result["per_label"] = str(per_label_file(gold, pred, per_label, data_dir=data_dir or config.data_dir,
                                                 threshold=threshold))
    typer.echo(json.dumps(result, indent=2))


@app.command()
@_user_errors
def compare(
    gold: str = typer.Option(..., help="DATASET:SPLIT of a fetched dataset, or a JSONL file of {id, labels}."),
    baseline: list[Path] = typer.Option(..., help="The reference model's predictions JSONL; repeat it for "
                                        "several seeds (averaged per document)."),
    candidate: list[Path] = typer.Option(..., help="The predictions JSONL of the model compared with it; "
                                         "repeat it for several seeds."),
    resamples: int = typer.Option(1000, help="Bootstrap resamples of the documents."),
    confidence: float = typer.Option(0.95, help="Coverage of the confidence interval."),
    seed: int = typer.Option(0, help="Seed of the resampling."),
    data_dir: Optional[Path] = DataDirOption,
    params: Optional[Path] = ParamsOption,
):
    """Candidate minus baseline on P@k and nDCG@k, with a paired bootstrap interval over the documents
    and a one-sided p-value (p_not_better); JSON on stdout."""
    from lcr.report.evaluation import compare_prediction_files

    config = load_params(params)
    result = compare_prediction_files(gold, baseline, candidate, data_dir=data_dir or config.data_dir,
                                      resamples=resamples, confidence=confidence, seed=seed)
    typer.echo(json.dumps(result, indent=2))


@app.command()
@_user_errors
def ensemble(
    pred: list[Path] = typer.Option(..., "--pred", help="A predictions JSONL with scores; repeat it (two or more), "
                                    "e.g. the same model trained with several seeds."),
    output: Path = typer.Option(..., "--output", help="The averaged predictions JSONL to write (what `lcr metrics` "
                                "and `lcr compare` read)."),
    top_k: Optional[int] = typer.Option(None, "--top-k", help="Labels kept per document (default: the widest "
                                        "input ranking)."),
):
    """Average several prediction files into one ranking per document (a label missing from a file's
    ranking counts 0 there); no model is loaded."""
    from lcr.report.evaluation import ensemble_prediction_files

    typer.echo(str(ensemble_prediction_files(pred, output, top_k=top_k)))


@app.command()
@_user_errors
def predict(
    model: str = typer.Option(..., "--model", help="A model folder (runs/D/RUN/best_model), an MLflow model "
                              "directory, or a model URI: models:/lcr-D/VERSION, runs:/RUN_ID/model."),
    input: Path = typer.Option(..., "--input", help="JSONL ({id?, text} per line), CSV or TSV (a 'text' column, "
                               "'id' optional)."),
    output: Path = typer.Option(..., "--output", help="The prediction JSONL to write (what `lcr metrics` reads)."),
    top_k: int = typer.Option(10, "--top-k", help="Labels per text, best first."),
    threshold: Optional[float] = typer.Option(None, help="Keep only labels whose score reaches this."),
    batch_size: int = typer.Option(32, help="Texts per forward pass (and in memory at once)."),
    device: str = typer.Option("cpu", help="cpu, cuda, cuda:1, ..."),
    mode: str = typer.Option("ranking", help="ranking (the top-k) or set (the label sets `lcr calibrate` chose)."),
):
    """Label every text of a file with a trained model, streaming it in batches."""
    from lcr.serve.batch_scoring import predict_file, read_texts
    from lcr.serve.pyfunc import load_predictor

    read_texts(input)  # a missing file or unknown format fails before the model loads
    predictor = load_predictor(model, device=device)
    result = predict_file(predictor, input, output, k=top_k, batch_size=batch_size, threshold=threshold,
                          mode=mode, progress=_progress())
    typer.echo(f"{result['documents']} documents -> {result['output']}")


@app.command()
@_user_errors
def tune(
    dataset: str = typer.Option(..., "--dataset", help="A fetched and prepared dataset."),
    variant: str = typer.Option("labelcorank", help="The variant whose settings are searched."),
    trials: Optional[int] = typer.Option(None, help="Trials (default: params.yaml's tune.trials)."),
    settings: list[str] = typer.Option([], "--set", help="A fixed setting every trial shares: --set epochs=3."),
    output: Optional[Path] = typer.Option(None, "--output", help="The --set-ready file of the best settings "
                                          "(default: tune/<dataset>-<variant>.txt)."),
    start_from: list[Path] = typer.Option([], "--start-from", help="A --set file (e.g. an earlier search's best) "
                                          "whose settings are tried first; repeatable."),
    data_dir: Optional[Path] = DataDirOption,
    params: Optional[Path] = ParamsOption,
):
    """Search the settings of params.yaml's tune block with Optuna (each trial a nested MLflow run, pruned on dev)."""
    from lcr.config import read_settings_file
    from lcr.tuning import tune as run_tuning

    result = run_tuning(dataset, load_params(params), variant=variant, trials=trials, settings=_overrides(settings),
                        output=output, data_dir=data_dir, start_from=[read_settings_file(f) for f in start_from],
                        progress=_progress())
    for record in result["trials"]:
        value = "-" if record["value"] is None else f"{record['value']:.4f}"
        typer.echo(f"trial {record['trial']}: {record['state']:8s} {value}  {record['settings']}")
    typer.echo(f"best: trial {result['best_trial']}, dev {load_params(params).tune.metric} {result['best_value']:.4f}")
    typer.echo(f"wrote {result['file']}: lcr train --dataset {dataset} --variant {variant} {result['set']}")


@app.command()
@_user_errors
def calibrate(
    dataset: str = typer.Option(..., "--dataset", help="The dataset the model was trained on."),
    from_run: Optional[Path] = typer.Option(None, "--from-run", help="A trained run folder (default: the labelcorank run of params.yaml's settings)."),
    per_label: bool = typer.Option(False, "--per-label/--global", help="Also fit a threshold per label (labels with few dev documents keep the global one)."),
    min_support: int = typer.Option(5, help="Dev documents a label needs for its own threshold."),
    output: Optional[Path] = typer.Option(None, "--output", help="Write the calibration to this .json file instead "
                                          "of the model folder (then: lcr register --calibration FILE)."),
    track: bool = TrackOption,
    data_dir: Optional[Path] = DataDirOption,
    params: Optional[Path] = ParamsOption,
    stage: Optional[str] = StageOption,
):
    """Choose on dev the score threshold and label count that maximise micro-F1; store them in the model folder."""
    from lcr.jobs import calibrate_job, run_dir

    config = load_params(params)
    source = from_run or run_dir(config.runs_dir, dataset, config.train(dataset))
    result = calibrate_job(dataset, source, data_dir=data_dir or config.data_dir, per_label=per_label,
                           min_support=min_support, eval_split=config.dataset(dataset).eval_split,
                           track=track, output=output, stage=stage)
    typer.echo(json.dumps(result, indent=2))


def _overrides(settings: list[str]) -> dict:
    """``--set key=value`` pairs, values parsed as YAML (numbers, booleans, null)."""
    from lcr.config import parse_settings

    return parse_settings(settings)


@app.command()
@_user_errors
def train(
    dataset: str = typer.Option(..., "--dataset", help="A fetched and prepared dataset."),
    variant: Optional[str] = typer.Option(None, help=f"One of {', '.join(VARIANTS)} (default: params.yaml)."),
    settings: list[str] = typer.Option([], "--set", help="Override any training setting: --set epochs=2 --set gamma=20."),
    eval_split: Optional[str] = typer.Option(None, help="Split of the final evaluation (default: params.yaml)."),
    output: Optional[Path] = typer.Option(None, "--output", help="Run folder (default: runs/<dataset>/<variant>-s<seed>; -g<gamma> when --set gamma=N)."),
    resume: bool = typer.Option(False, "--resume", help="Continue from the run folder's checkpoint."),
    token_cache: bool = typer.Option(True, "--token-cache/--no-token-cache",
                                     help="Tokenise each split once into data/<dataset>/cache and stream batches "
                                          "from it (default), or tokenise in memory."),
    track: bool = TrackOption,
    scores: Optional[Path] = ScoresOption,
    data_dir: Optional[Path] = DataDirOption,
    params: Optional[Path] = ParamsOption,
    stage: Optional[str] = StageOption,
):
    """Train LabelCoRank (or an ablation, or a baseline) and evaluate it."""
    from lcr.jobs import run_dir, train_job
    from lcr.runs import write_flat_scores

    config = load_params(params)
    if os.environ.get("DVC_STAGE"):  # inside `dvc repro`: the graph must match the profile
        config.check_pipeline()
    train_params, sources = config.train_with_sources(dataset, settings=_overrides(settings), variant=variant)
    if output is None:  # a gamma set for this run gets its own folder, as the sweep stages do
        output = run_dir(config.runs_dir, dataset, train_params, named_gamma=sources.get("gamma") == "--set")
    result = train_job(dataset, train_params, data_dir=data_dir or config.data_dir, output_dir=output,
                       runs_dir=config.runs_dir, eval_split=eval_split or config.dataset(dataset).eval_split,
                       resume=resume, track=track, progress=_progress(),
                       tags=_stage_tags(stage), token_cache=token_cache, sources=sources)
    if scores and result is not None and "eval" in result:
        write_flat_scores(scores, result["eval"])
    if result is not None:
        typer.echo(json.dumps({"eval": result["eval"], "best_epoch": result["best_epoch"],
                               "output_dir": result["output_dir"], "run_id": result.get("run_id")}, indent=2))


@app.command()
@_user_errors
def profile(
    name: str = typer.Argument(..., help="demo or paper (any profile defined in params.yaml)."),
    params: Optional[Path] = ParamsOption,
):
    """Select the experiment profile: rewrites params.yaml's generated pipeline block for dvc.yaml."""
    from lcr.config import DEFAULT_PARAMS, select_profile

    pipeline = select_profile(name, params or DEFAULT_PARAMS)
    full = len(pipeline.datasets) * len(pipeline.variants) * len(pipeline.seeds)
    typer.echo(f"profile {name}: {len(pipeline.runs)} training runs ({len(pipeline.datasets)} datasets x "
               f"{len(pipeline.variants)} variants x {len(pipeline.seeds)} seeds"
               f"{f', {full - len(pipeline.runs)} excluded by variant_datasets' if full > len(pipeline.runs) else ''}), "
               f"{len(pipeline.sweep)} gamma-sweep runs; now run `dvc repro`")


@app.command()
@_user_errors
def oracle(
    dataset: str = typer.Option(..., "--dataset", help="The dataset the source run was trained on."),
    from_run: Optional[Path] = typer.Option(None, "--from-run", help="A trained run folder (default: the roberta run of params.yaml's settings)."),
    top: int = typer.Option(10, "--top", help="How many of the top labels are reranked (the paper: 10)."),
    output: Optional[Path] = typer.Option(None, "--output", help="Output folder (default: <source>-oracle-m<top>)."),
    track: bool = TrackOption,
    scores: Optional[Path] = ScoresOption,
    data_dir: Optional[Path] = DataDirOption,
    params: Optional[Path] = ParamsOption,
    stage: Optional[str] = StageOption,
):
    """roberta-oracle ("RoBERTa*", Table 7): move the correct labels of a run's top-k first; no training."""
    from lcr.jobs import oracle_job, run_dir
    from lcr.runs import write_flat_scores

    config = load_params(params)
    source = from_run or run_dir(config.runs_dir, dataset, config.train(dataset, variant="roberta"))
    result = oracle_job(dataset, source, output_dir=output, m=top, data_dir=data_dir or config.data_dir,
                        track=track, tags=_stage_tags(stage))
    if scores:
        write_flat_scores(scores, result["eval"])
    typer.echo(json.dumps({"eval": result["eval"], "output_dir": result["output_dir"],
                           "run_id": result.get("run_id")}, indent=2))


@app.command()
@_user_errors
def register(
    dataset: str = typer.Option(..., "--dataset", help="The dataset the run was trained on."),
    from_run: Optional[Path] = typer.Option(None, "--from-run", help="A trained run folder (default: the labelcorank run of params.yaml's settings)."),
    name: Optional[str] = typer.Option(None, help="Registered model name (default: lcr-<dataset>)."),
    record: Optional[Path] = typer.Option(None, help="Also write the registration (name, version, URI, run ids) to this JSON file."),
    calibration: Optional[Path] = typer.Option(None, help="A calibration file (lcr calibrate --output) the registered "
                                               "model carries, in place of the model folder's own."),
    params: Optional[Path] = ParamsOption,
    stage: Optional[str] = StageOption,
):
    """Register a trained model in the MLflow model registry, as a pyfunc model `mlflow models serve` serves."""
    from lcr.jobs import register_job, run_dir

    config = load_params(params)
    source = from_run or run_dir(config.runs_dir, dataset, config.train(dataset))
    result = register_job(dataset, source, name=name, record=record, tags=_stage_tags(stage), calibration=calibration)
    typer.echo(json.dumps(result, indent=2))


@app.command()
@_user_errors
def tables(
    runs_dir: Optional[Path] = typer.Option(None, help="Finished runs (default: params.yaml's runs_dir)."),
    output: Optional[Path] = typer.Option(None, "--output", help="Output folder (default: params.yaml's tables_dir)."),
    data_dir: Optional[Path] = DataDirOption,
    params: Optional[Path] = ParamsOption,
    stage: Optional[str] = StageOption,
):
    """Write the paper's Tables 1-13 beside the measured runs (Markdown, CSV) and the plots."""
    from lcr.jobs import tables_job

    config = load_params(params)
    written = tables_job(config, runs_dir=runs_dir, data_dir=data_dir, output=output, stage=stage)
    typer.echo(f"wrote {len(written)} files to {output or config.tables_dir}")


@app.command()
@_user_errors
def pipeline(
    dataset: str = typer.Option(..., "--dataset", help="A dataset of `lcr datasets`."),
    variant: str = typer.Option("labelcorank", help="The trained variant (roberta also runs roberta-oracle)."),
    profile: Optional[str] = typer.Option(None, help="Settings profile of params.yaml (demo, paper); default: the selected one."),
    settings: list[str] = typer.Option([], "--set", help="Override any training setting: --set epochs=1."),
    source: Optional[str] = typer.Option(None, "--from", help="Your corpus (JSONL/CSV/TSV file or folder) for a dataset name of your own."),
    register_model: bool = typer.Option(False, "--register/--no-register", help="Register the trained model (MLflow registry)."),
    params: Optional[Path] = ParamsOption,
):
    """One dataset end to end: fetch -> prepare -> train -> evaluate (each an MLflow run; MLproject `main`)."""
    from lcr.config import PROFILE_ENV
    from lcr.jobs import pipeline_job

    if profile:
        os.environ[PROFILE_ENV] = profile  # the profile's settings for this process and its children
    result = pipeline_job(dataset, load_params(params), variant=variant, settings=_overrides(settings),
                          source=source, register=register_model, progress=_progress())
    typer.echo(format_stats(result["stats"]))
    summary = {"eval": result["train"]["eval"], "output_dir": result["train"]["output_dir"],
               "run_id": result["train"].get("run_id")}
    if result["oracle"] is not None:
        summary["oracle"] = {"eval": result["oracle"]["eval"], "output_dir": result["oracle"]["output_dir"]}
    if result["register"] is not None:
        summary["registered"] = {k: result["register"][k] for k in ("registered_name", "version", "uri")}
    typer.echo(json.dumps(summary, indent=2))


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
@_user_errors
def repro(ctx: typer.Context, params: Optional[Path] = ParamsOption):
    """`dvc repro [ARGS]` with every stage's MLflow run nested under one parent run."""
    _nested_dvc(["dvc", "repro", *ctx.args], params)


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
@_user_errors
def exp(ctx: typer.Context, params: Optional[Path] = ParamsOption):
    """`dvc exp [ARGS]`; `lcr exp run -S KEY=VALUE ...` nests its stages' MLflow runs under one parent run."""
    import subprocess

    command = ["dvc", "exp", *ctx.args]
    # Workspace and --temp runs inherit the parent's id and absolute tracking URI. show, diff,
    # apply... run no stage, and --queue'd runs start later in DVC's queue workers (their
    # stages log as top-level runs): DVC alone.
    if not ctx.args or ctx.args[0] != "run" or "--queue" in ctx.args:
        code = subprocess.run([sys.executable, "-m", *command]).returncode
        if code:
            raise typer.Exit(code)
        return
    _nested_dvc(command, params)


def _nested_dvc(command: list[str], params: Optional[Path]) -> None:
    """Run a DVC command that reproduces stages, under one MLflow parent run."""
    import subprocess

    from lcr.tracking import parent_run

    load_params(params).check_pipeline()
    with parent_run(" ".join(command), tags={"lcr.command": " ".join(command)}) as run_id:
        typer.echo(f"MLflow parent run {run_id}", err=True)
        code = subprocess.run([sys.executable, "-m", *command]).returncode
        if code:
            raise LcrError(f"{' '.join(command)} failed with exit status {code}")


def main():  # pragma: no cover - console entry point
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
