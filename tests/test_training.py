"""Training end to end on a toy corpus with a tiny random encoder: MLflow logging, predictions
that `lcr metrics` reads, resume after a kill, 2-process DDP on CPU, and fail-fast input checks."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load_file

from lcr.config import train_params
from lcr.datasets import store
from lcr.errors import LcrError
from lcr.report.evaluation import evaluate_prediction_file
from lcr.jobs import oracle_job, train_job
from lcr.labels import prepare
from tests.toy_data import TOPICS, toy_documents

REPO = Path(__file__).resolve().parents[1]
@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    """A prepared toy dataset and a tiny random encoder with dropout switched off."""
    from tests.tiny_encoder import make_tiny_encoder

    root = tmp_path_factory.mktemp("toy")
    data = root / "data"
    store.write_store(data / "toy", {"train": toy_documents(48, 0), "dev": toy_documents(16, 1),
                                     "test": toy_documents(16, 2)}, progress=False)
    prepare(data / "toy", show_progress=False)
    encoder = make_tiny_encoder(root / "encoder")
    config_path = Path(encoder) / "config.json"
    config = json.loads(config_path.read_text())
    config.update(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    config_path.write_text(json.dumps(config))
    return {"root": root, "data": data, "encoder": encoder}


def settings(toy, **overrides):
    base = dict(encoder=toy["encoder"], gamma=3, num_heads=2, batch_size=8, max_length=32, epochs=2,
                lr=3e-3, dropout=0.0, checkpoint_every=2, log_every=1, eval_batch_size=16,
                patience=None, device="cpu")
    base.update(overrides)
    return train_params(base)


def test_train_logs_to_mlflow_and_writes_readable_predictions(toy, tmp_path, monkeypatch):
    import mlflow

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    result = train_job("toy", settings(toy), data_dir=toy["data"], output_dir=tmp_path / "run",
                       progress=False)
    assert set(result["eval"]) == {"full", "head", "tail"}
    assert result["steps"] == 12  # 2 epochs x ceil(48 / 8)

    # The predictions file scores the same through `lcr metrics`' code path.
    rescored = evaluate_prediction_file("toy:test", tmp_path / "run" / "predictions-test.jsonl",
                                        data_dir=toy["data"])
    for key in ("P@1", "P@5", "nDCG@3"):
        assert rescored["metrics"]["full"][key] == pytest.approx(result["eval"]["full"][key])

    mlflow.set_tracking_uri(uri)
    run = mlflow.get_run(result["run_id"])
    assert run.data.params["variant"] == "labelcorank" and run.data.params["gamma"] == "3"
    assert run.data.tags["lcr.dataset"] == "toy"
    assert any(key.startswith("data.") for key in run.data.tags)
    assert "full_P_at_1" in run.data.metrics and "dev_nDCG_at_5" in run.data.metrics
    history = mlflow.MlflowClient().get_metric_history(result["run_id"], "loss2")
    assert len(history) == 12
    artifacts = {a.path for a in mlflow.MlflowClient().list_artifacts(result["run_id"])}
    assert {"config.json", "label_vocab.tsv", "metrics.json", "predictions-test.jsonl", "settings.txt"} <= artifacts
    assert "documents: 48 of 48 training documents" in (tmp_path / "run" / "settings.txt").read_text()
    assert json.loads((tmp_path / "run" / "mlflow_run.json").read_text())["run_id"] == result["run_id"]

    # The best model folder is self-contained: it labels new text offline.
    from lcr.serve.predictor import Predictor

    predictor = Predictor.load(tmp_path / "run" / "best_model")
    ranked = predictor.predict(["crude barrel opec oil prices", "wheat corn harvest"], k=2)
    assert [len(row) for row in ranked] == [2, 2]
    assert {r["label"] for row in ranked for r in row} <= set(TOPICS)
    with pytest.raises(LcrError, match="text 1"):
        predictor.predict(["fine", "  "])
    with pytest.raises(LcrError, match="missing: model"):
        Predictor.load(tmp_path)

    # roberta-oracle works on any trained run's predictions: never worse, logged as its own run.
    oracle = oracle_job("toy", tmp_path / "run", data_dir=toy["data"])
    for key in ("P@1", "P@3", "nDCG@5"):
        assert oracle["eval"]["full"][key] >= result["eval"]["full"][key] - 1e-12
    assert (tmp_path / "run-oracle-m10" / "predictions-test.jsonl").exists()
    assert mlflow.get_run(oracle["run_id"]).data.tags["lcr.variant"] == "roberta-oracle"


def _train_command(toy, output: Path, *extra: str) -> list[str]:
    args = [sys.executable, "-m", "lcr.cli", "train", "--dataset", "toy", "--no-track",
            "--data-dir", str(toy["data"]), "--output", str(output)]
    for key, value in dict(encoder=toy["encoder"], gamma=3, num_heads=2, max_length=32, lr="0.003",
                           dropout="0.1", checkpoint_every=1, epochs=3, patience="null", device="cpu",
                           eval_batch_size=16, schedule="linear", warmup_ratio="0.2", first_stage_steps=4,
                           head_lr="0.01", weight_decay="0.01").items():
        args += ["--set", f"{key}={value}"]
    return args + list(extra)


def _weights(folder: Path) -> dict:
    files = sorted(folder.glob("*.safetensors"))
    assert files, f"no weights in {folder}"
    return load_file(files[0])


@pytest.mark.parametrize("setting", ["first_in_training=current", "first_in_training=unseen", "separate_stages=true",
                                     "separate_stages=true rerank_epochs=1"])
def test_resume_after_kill_reaches_the_same_weights(toy, tmp_path, setting):
    """Killed after its first checkpoint (in the first epoch) and resumed, a run ends with the
    weights of an uninterrupted one; with first_in_training unseen the first-epoch logits it had
    recorded come back from the checkpoint, with separate_stages the count of the reranking
    stage's own random draws, with rerank_epochs the two stages' schedules."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    sets = [arg for value in setting.split() for arg in ("--set", value)]
    command = lambda output, *extra: _train_command(toy, output, *sets, *extra)  # noqa: E731
    reference = tmp_path / "reference"
    subprocess.run(command(reference), check=True, env=env, capture_output=True)

    killed = tmp_path / "killed"
    process = subprocess.Popen(command(killed), env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while not (killed / "checkpoint.pt").exists() and time.time() < deadline and process.poll() is None:
        time.sleep(0.05)
    assert process.poll() is None, "the run ended before it could be killed"
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert not (killed / "metrics.json").exists()
    subprocess.run(command(killed, "--resume"), check=True, env=env, capture_output=True)

    a, b = _weights(reference / "best_model" / "model"), _weights(killed / "best_model" / "model")
    assert a.keys() == b.keys()
    for name in a:
        np.testing.assert_allclose(a[name], b[name], rtol=0, atol=1e-6, err_msg=name)
    ref_metrics = json.loads((reference / "metrics.json").read_text())["eval"]
    assert json.loads((killed / "metrics.json").read_text())["eval"] == ref_metrics


def test_no_token_cache_tokenises_in_memory_and_trains_the_same_weights(toy, tmp_path):
    """`lcr train --no-token-cache` writes no cache and reaches the weights of a run from the cache."""
    import shutil

    env = {**os.environ, "PYTHONPATH": str(REPO)}
    data = tmp_path / "data"
    shutil.copytree(toy["data"] / "toy", data / "toy", ignore=shutil.ignore_patterns("cache"))
    runs = {}
    for name, flag in (("memory", "--no-token-cache"), ("cache", "--token-cache")):
        runs[name] = tmp_path / name
        subprocess.run(_train_command(toy, runs[name], flag, "--set", "epochs=1", "--data-dir", str(data)),
                       check=True, env=env, capture_output=True)
        caches = sorted(p.name.split("-")[1] for p in (data / "toy" / "cache").glob("tokens-*"))
        assert caches == ([] if name == "memory" else ["dev", "test", "train"]), (name, caches)
    a, b = _weights(runs["memory"] / "best_model" / "model"), _weights(runs["cache"] / "best_model" / "model")
    assert a.keys() == b.keys()
    for key in a:
        np.testing.assert_allclose(a[key], b[key], rtol=0, atol=1e-6, err_msg=key)


def test_two_process_ddp_matches_one_process(toy, tmp_path):
    """2 gloo processes with batch 4 follow the trajectory of 1 process with batch 8."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    single = tmp_path / "single"
    subprocess.run(_train_command(toy, single, "--set", "batch_size=8", "--set", "dropout=0.0",
                                  "--set", "epochs=1"), check=True, env=env, capture_output=True)
    double = tmp_path / "ddp"
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                "-m", "lcr.cli"]
    command = _train_command(toy, double, "--set", "batch_size=4", "--set", "dropout=0.0", "--set", "epochs=1")
    result = subprocess.run(torchrun + command[3:], env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    a, b = _weights(single / "best_model" / "model"), _weights(double / "best_model" / "model")
    for name in a:
        # Adam divides by sqrt(v): float summation-order noise shows at ~5e-5 after 6
        # steps, while a wrong trajectory (no all-reduce, other batches) moves weights by ~lr=3e-3.
        np.testing.assert_allclose(a[name], b[name], rtol=0, atol=3e-4, err_msg=name)
    single_eval = json.loads((single / "metrics.json").read_text())["eval"]["full"]
    ddp_eval = json.loads((double / "metrics.json").read_text())["eval"]["full"]
    assert ddp_eval["n_docs"] == single_eval["n_docs"] == 16  # nothing counted twice
    assert ddp_eval["P@1"] == pytest.approx(single_eval["P@1"])


def test_two_process_ddp_first_in_training_unseen_matches_one_process(toy, tmp_path):
    """With first_in_training unseen, 2 gloo processes each record both processes' first-epoch
    logits (rank 0's checkpoint holds every document's) and follow 1 process into the second epoch."""
    import torch

    from lcr.train.loop import CHECKPOINT, _load_checkpoint

    env = {**os.environ, "PYTHONPATH": str(REPO)}
    common = ["--set", "dropout=0.0", "--set", "epochs=2", "--set", "first_in_training=unseen",
              "--set", "final_head=per_label"]
    single, double = tmp_path / "single", tmp_path / "ddp"
    subprocess.run(_train_command(toy, single, "--set", "batch_size=8", *common), check=True, env=env,
                   capture_output=True)
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "lcr.cli"]
    result = subprocess.run(torchrun + _train_command(toy, double, "--set", "batch_size=4", *common)[3:], env=env,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    a, b = _load_checkpoint(single / CHECKPOINT), _load_checkpoint(double / CHECKPOINT)
    assert bool((b["unseen_first"]["visits"] == 1).all())  # 48 documents, each once, from both processes
    torch.testing.assert_close(b["unseen_first"]["sums"], a["unseen_first"]["sums"], rtol=0, atol=1e-3)
    for name, value in a["model"].items():  # as in the test above: summation-order noise only
        torch.testing.assert_close(b["model"][name], value, rtol=0, atol=5e-4, msg=name)


@pytest.mark.parametrize("overrides, message", [
    ({"variant": "labelcorank-xl"}, "unknown variant"),
    ({"gamma": 99}, "larger than the number of labels"),
    ({"encoder": "/nonexistent/encoder"}, "/nonexistent/encoder"),
    ({"label_init": "names"}, r"labelcorank with label_init: names reads the labels' names, but .*label_vocab.tsv has none"),
])
def test_bad_settings_fail_before_long_work(toy, tmp_path, overrides, message):
    start = time.time()
    with pytest.raises(LcrError, match=message):
        train_job("toy", settings(toy, **overrides) if "variant" not in overrides else
                  _unchecked(toy, **overrides), data_dir=toy["data"], output_dir=tmp_path / "x", track=False)
    assert time.time() - start < 5


def _unchecked(toy, **overrides):
    with pytest.raises(LcrError) as caught:
        settings(toy, **overrides)
    raise caught.value


def test_unprepared_dataset_is_named(toy, tmp_path):
    store.write_store(tmp_path / "raw", {"train": toy_documents(4, 5)}, progress=False)
    with pytest.raises(LcrError, match="lcr prepare raw"):
        train_job("raw", settings(toy), data_dir=tmp_path, output_dir=tmp_path / "x", track=False)


# --------------------------------------------------------------------------------------------
# The optimiser of the training recipe


def _tiny_model(toy, variant="labelcorank", **overrides):
    import torch

    from lcr.models.encoder import load_encoder
    from lcr.labels import LabelArtifacts
    from lcr.models.factory import build_model

    torch.manual_seed(0)
    artifacts = LabelArtifacts.load(toy["data"] / "toy" / store.LABELS_DIR)
    params = settings(toy, variant=variant, **overrides)
    encoder, tokenizer = load_encoder(params.encoder)
    return build_model(params, encoder, cooc=artifacts.cooc, freq_rank=artifacts.rank, tokenizer=tokenizer)


def test_parameter_groups_give_the_encoder_lr_the_new_layers_head_lr_and_spare_biases_and_layernorm(toy):
    from lcr.train.loop import parameter_groups

    model = _tiny_model(toy)
    params = settings(toy, lr=2e-5, head_lr=1e-3, weight_decay=0.05)
    groups = {g["name"]: g for g in parameter_groups(model, params)}
    assert set(groups) == {"encoder", "encoder/no_decay", "head", "head/no_decay"}
    names = {id(p): n for n, p in model.named_parameters()}
    members = {name: {names[id(p)] for p in g["params"]} for name, g in groups.items()}
    assert {g["lr"] for n, g in groups.items() if n.startswith("encoder")} == {2e-5}
    assert {g["lr"] for n, g in groups.items() if n.startswith("head")} == {1e-3}
    assert groups["encoder"]["weight_decay"] == groups["head"]["weight_decay"] == 0.05
    assert groups["encoder/no_decay"]["weight_decay"] == groups["head/no_decay"]["weight_decay"] == 0.0
    every = set().union(*members.values())
    assert every == {n for n, p in model.named_parameters()}  # each parameter in exactly one group
    assert sum(len(m) for m in members.values()) == len(every)
    assert all(n.startswith("encoder.") for n in members["encoder"] | members["encoder/no_decay"])
    for head in ("pool.weight", "classifier1.weight", "classifier2.weight", "label_embedding.weight",
                 "position_embedding.weight", "ffn_in.weight", "attention.query.weight"):
        assert head in members["head"], head
    for undecayed in ("classifier1.bias", "classifier2.bias", "attention.key.bias"):
        assert undecayed in members["head/no_decay"], undecayed
    assert any("LayerNorm.weight" in n for n in members["encoder/no_decay"])
    assert not any("LayerNorm" in n or n.endswith(".bias") for n in members["encoder"] | members["head"])
    # the labels' self-attention blocks (label_interaction_layers) are new layers like the others
    model = _tiny_model(toy, label_interaction_layers=1)
    groups = {g["name"]: g for g in parameter_groups(model, params)}
    names = {id(p): n for n, p in model.named_parameters()}
    members = {name: {names[id(p)] for p in g["params"]} for name, g in groups.items()}
    assert {"interaction.blocks.0.qkv.weight", "interaction.blocks.0.ffn_out.weight"} <= members["head"]
    assert {"interaction.blocks.0.norm1.weight", "interaction.blocks.0.qkv.bias"} <= members["head/no_decay"]
    # head_lr = null: one rate, the paper's setting
    assert {g["lr"] for g in parameter_groups(model, settings(toy, lr=2e-5, head_lr=None))} == {2e-5}
    # reader_weights own: the readers' copy of the encoder is pretrained too (the encoder's rate)
    model = _tiny_model(toy, final_head="per_label", label_attention="encoder_readers", reader_weights="own")
    groups = {g["name"]: g for g in parameter_groups(model, params)}
    names = {id(p): n for n, p in model.named_parameters()}
    members = {name: {names[id(p)] for p in g["params"]} for name, g in groups.items()}
    readers = {n for n, p in model.named_parameters() if n.startswith("reader_encoder.") and p.requires_grad}
    assert readers and readers <= members["encoder"] | members["encoder/no_decay"]
    assert "reader_encoder.embeddings.word_embeddings.weight" not in readers  # a frozen one-row placeholder
    assert any("LayerNorm" in n for n in readers & members["encoder/no_decay"])
    # reader_lr: the readers' copy gets a rate of its own, the text encoder keeps lr
    groups = {g["name"]: g for g in parameter_groups(model, settings(toy, lr=2e-5, head_lr=1e-3, reader_lr=7e-5,
                                                                     label_attention="encoder_readers",
                                                                     reader_weights="own"))}
    members = {name: {names[id(p)] for p in g["params"]} for name, g in groups.items()}
    assert members["readers"] | members["readers/no_decay"] == readers
    assert {groups["readers"]["lr"], groups["readers/no_decay"]["lr"]} == {7e-5}
    assert {groups["encoder"]["lr"], groups["encoder/no_decay"]["lr"]} == {2e-5}
    assert not readers & (members["encoder"] | members["encoder/no_decay"] | members["head"] | members["head/no_decay"])


def test_word_level_models_learn_at_their_own_lr(toy):
    """Without a pretrained encoder every parameter is new: all at `lr` (the baseline block's rate)."""
    from lcr.models.baselines.words import build_word_tokenizer
    from lcr.models.factory import build_model
    from lcr.train.loop import parameter_groups

    params = settings(toy, variant="xml-cnn", lr=1e-3, head_lr=5e-2)
    tokenizer = build_word_tokenizer([["wheat corn oil prices rose"] * 3], vocab_size=100, min_freq=1,
                                     max_length=32)
    model = build_model(params, None, freq_rank=list(range(len(TOPICS))), tokenizer=tokenizer)
    assert {g["lr"] for g in parameter_groups(model, params)} == {1e-3}


def test_fused_adamw_reaches_the_weights_of_the_per_parameter_loop(toy):
    import torch

    from lcr.train.loop import build_optimizer

    params = settings(toy, lr=1e-3, head_lr=3e-3, weight_decay=0.01)
    ids = torch.randint(5, 300, (4, 12))
    mask = torch.ones_like(ids)
    labels = torch.zeros(4, len(TOPICS))
    labels[:, :2] = 1
    weights = {}
    for implementation in ("loop", "fused"):
        model = _tiny_model(toy).train()
        optimizer = build_optimizer(model, params, torch.device("cpu"), implementation=implementation)
        if implementation == "fused":
            assert optimizer.defaults["fused"] is True
        for _ in range(5):
            model(ids, mask, labels=labels).loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
        weights[implementation] = {n: p.detach().clone() for n, p in model.named_parameters()}
    for name, value in weights["loop"].items():
        if name == "attention.key.bias":
            # its gradient is zero up to rounding (a softmax does not change when every key score
            # moves by the same q.b), and Adam divides that noise by its own size: +-lr per step
            # either way, whatever the implementation
            continue
        torch.testing.assert_close(weights["fused"][name], value, rtol=1e-5, atol=1e-6, msg=name)
    moved = sum(float((weights["loop"][n] - p).abs().sum()) for n, p in _tiny_model(toy).named_parameters())
    assert moved > 0  # the comparison is not of untouched weights


def test_first_stage_warm_up_and_diagnostics_in_a_run(toy, tmp_path):
    """first_stage_steps covers epoch 1: no L2 in it; every epoch logs the selection diagnostics."""
    result = train_job("toy", settings(toy, first_stage_steps=6), data_dir=toy["data"],
                       output_dir=tmp_path / "run", track=False, progress=False)
    first, second = result["history"]
    assert "train_L1" in first and "train_L2" not in first
    assert "train_L1" in second and "train_L2" in second
    for key in ("s1_P@1", "s1_P@5", "s1_nDCG@5", "mean_S2", "mean_S3", "s_gold_coverage", "s_distinct_share"):
        assert key in first and key in second, key
        assert key in result["eval"]["full"], key
    assert 0.0 <= result["eval"]["full"]["s_gold_coverage"] <= 1.0
    roberta = train_job("toy", settings(toy, variant="roberta", epochs=1), data_dir=toy["data"],
                        output_dir=tmp_path / "roberta", track=False, progress=False)
    assert "s1_P@1" not in roberta["eval"]["full"] and "s1_P@1" not in roberta["history"][0]


def test_label_init_names_trains_from_the_label_texts_of_the_store(toy, tmp_path):
    """The toy store has no label names: its ids stand for them (label_text ids); M_f starts
    from them, and the run trains and evaluates like the default one."""
    from lcr.models.factory import load_model

    result = train_job("toy", settings(toy, label_init="names", label_text="ids", epochs=1), data_dir=toy["data"],
                       output_dir=tmp_path / "run", track=False, progress=False)
    assert result["steps"] == 6 and 0.0 <= result["eval"]["full"]["P@1"] <= 1.0
    model = load_model(tmp_path / "run" / "best_model" / "model")
    assert model.config.label_init == "names" and model.config.label_text == "ids"


def test_without_a_terminal_progress_shows_as_plain_lines(toy, tmp_path, monkeypatch, capsys):
    import lcr.train.loop

    monkeypatch.setattr(lcr.train.loop, "PROGRESS_SECONDS", 0.0)  # a line after every step
    train_job("toy", settings(toy), data_dir=toy["data"], output_dir=tmp_path / "run", track=False, progress=False)
    lines = [x for x in capsys.readouterr().err.splitlines() if x.startswith("[lcr] ")]
    steps = [x for x in lines if " step " in x]
    assert len(steps) == 12 and steps[-1].startswith("[lcr] epoch 2/2 step 12/12 loss ")
    assert all("docs/s" in x and "elapsed" in x and "remaining" in x for x in steps)
    epochs = [x for x in lines if " dev: " in x]
    assert [x.split(" dev:")[0] for x in epochs] == ["[lcr] epoch 1/2", "[lcr] epoch 2/2"]
    assert "nDCG@5" in epochs[0] and "s1_nDCG@5" in epochs[0]


def test_cli_run_folders_are_the_ones_oracle_and_register_look_in(toy, tmp_path):
    """`lcr train` writes runs/<dataset>/<variant>-s<seed> (as the DVC stages do), so `lcr oracle`
    finds it without --from-run; a gamma set for the run gets its own -g<gamma> folder."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    base = [sys.executable, "-m", "lcr.cli"]
    common = ["--data-dir", str(toy["data"])]
    sets = [arg for key, value in dict(encoder=toy["encoder"], num_heads=2, max_length=32, epochs=1,
                                       device="cpu", gamma=3).items() for arg in ("--set", f"{key}={value}")]
    for variant in ("roberta", "labelcorank"):
        subprocess.run(base + ["train", "--dataset", "toy", "--variant", variant, "--no-track", *common, *sets],
                       check=True, env=env, capture_output=True, cwd=tmp_path)
    assert (tmp_path / "runs" / "toy" / "labelcorank-g3-s0" / "metrics.json").exists()  # gamma was --set
    assert (tmp_path / "runs" / "toy" / "roberta-s0" / "metrics.json").exists()  # no label sequence: no gamma
    oracle = subprocess.run(base + ["oracle", "--dataset", "toy", "--no-track", *common], env=env,
                            capture_output=True, text=True, cwd=tmp_path)
    assert oracle.returncode == 0, oracle.stderr[-2000:]
    assert (tmp_path / "runs" / "toy" / "roberta-s0-oracle-m10" / "metrics.json").exists()


def test_cross_fit_trains_fold_models_on_the_other_folds_and_the_second_stage_from_their_logits(toy, tmp_path):
    """cross_fit_folds 2: two `roberta` fold models, each trained on the other fold's documents,
    score their own fold; the run saves those logits, trains from them, and a repeated run
    reads them back instead of training the fold models again."""
    import math

    import torch

    from lcr.models.encoder import load_encoder
    from lcr.models.factory import load_model
    from lcr.train import cross_fit
    from lcr.train.loop import _cap, first_logits
    from lcr.datasets import store
    from lcr.datasets.batches import encode_split

    params = settings(toy, cross_fit_folds=2, epochs=1)
    result = train_job("toy", params, data_dir=toy["data"], output_dir=tmp_path / "run", track=False, progress=False)
    assert 0.0 <= result["eval"]["full"]["P@1"] <= 1.0 and "s1_P@1" in result["eval"]["full"]
    fold_seconds = [json.loads((cross_fit.fold_dir(tmp_path / "run", i) / "metrics.json").read_text())["train_seconds"]
                    for i in (0, 1)]
    assert result["cross_fit_seconds"] == pytest.approx(sum(fold_seconds), abs=0.11)
    assert result["train_seconds"] >= result["cross_fit_seconds"]  # the run's time includes its fold models'
    _, tokenizer = load_encoder(params.encoder)
    vocab, _ = store.read_vocab(toy["data"] / "toy")
    split = _cap(encode_split(toy["data"] / "toy", "train", tokenizer, vocab, params.max_length), None, 0)
    folds = cross_fit.fold_of(len(split), 2, params.seed)
    saved = cross_fit.load_logits(tmp_path / "run", len(split), split.labels.shape[1])
    assert saved is not None and np.isfinite(saved).all()
    for fold in (0, 1):
        folder = cross_fit.fold_dir(tmp_path / "run", fold)
        fold_result = json.loads((folder / "metrics.json").read_text())
        assert fold_result["run"]["variant"] == "roberta"
        assert fold_result["steps"] == math.ceil(int((folds != fold).sum()) / params.batch_size)  # the other fold only
        held = np.flatnonzero(folds == fold)
        model = load_model(folder / "best_model" / "model")
        again = first_logits(model, split.subset(held), batch_size=16, device=torch.device("cpu"), pad_token_id=1)
        np.testing.assert_allclose(saved[held].astype(np.float32), again.astype(np.float32), atol=2e-3)
    # the fold models are parts of the run, not runs of the tables
    from lcr.runs import scan_runs
    records, unfinished = scan_runs(tmp_path)
    assert [(r["run"], r["variant"]) for r in records] == [("run", "labelcorank")] and unfinished == []
    # the final model is LabelCoRank and uses its own S1 out of training
    assert load_model(tmp_path / "run" / "best_model" / "model").variant == "labelcorank"
    stamp = (cross_fit.fold_dir(tmp_path / "run", 0) / "metrics.json").stat().st_mtime_ns
    train_job("toy", params, data_dir=toy["data"], output_dir=tmp_path / "run", track=False, progress=False)
    assert (cross_fit.fold_dir(tmp_path / "run", 0) / "metrics.json").stat().st_mtime_ns == stamp  # read back


def test_first_in_training_unseen_starts_the_second_stage_from_first_visit_logits(toy, tmp_path):
    """first_in_training unseen changes nothing in the first epoch (the logits of a first visit
    are the model's current ones) and, from the second, trains the reranking stage from the
    recorded first-epoch logits: the weights then part from a run with the current S1."""
    import torch

    from lcr.train.cross_fit import UnseenFirst
    from lcr.train.loop import CHECKPOINT, _load_checkpoint

    def last_weights(name, **overrides):  # the weights after the last step (the checkpoint's)
        params = settings(toy, variant="labelcorank", dropout=0.0, final_head="per_label", **overrides)
        train_job("toy", params, data_dir=toy["data"], output_dir=tmp_path / name, track=False, progress=False)
        state = _load_checkpoint(tmp_path / name / CHECKPOINT)
        return state["model"], state.get("unseen_first")

    one = [last_weights(f"{how}-1", first_in_training=how, epochs=1) for how in ("current", "unseen")]
    for name, value in one[0][0].items():
        assert torch.equal(value, one[1][0][name]), name
    assert one[0][1] is None and bool((one[1][1]["visits"] == 1).all())  # every document recorded once
    two = [last_weights(f"{how}-2", first_in_training=how, epochs=2) for how in ("current", "unseen")]
    assert any(not torch.equal(value, two[1][0][name]) for name, value in two[0][0].items())
    assert torch.equal(two[1][1]["sums"], one[1][1]["sums"])  # the second epoch records nothing

    unseen = UnseenFirst(4, 3)
    unseen.record(np.array([2, 0, 2]), torch.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0], [3.0, 4.0, 5.0]]))
    np.testing.assert_allclose(unseen.of([0, 2], torch.device("cpu")).float().numpy(),
                               [[4.0, 5.0, 6.0], [2.0, 3.0, 4.0]])  # document 2 seen twice: the mean
    with pytest.raises(LcrError, match="no first-epoch logits"):
        unseen.of([1], torch.device("cpu"))
    again = UnseenFirst(4, 3)
    again.load_state_dict(unseen.state_dict())
    assert torch.equal(again.sums, unseen.sums)
    with pytest.raises(LcrError, match="needs \\(5, 3\\)"):
        UnseenFirst(5, 3).load_state_dict(unseen.state_dict())
    with pytest.raises(LcrError, match="first_in_training must be"):
        settings(toy, first_in_training="old")
    with pytest.raises(LcrError, match="set one of them"):
        settings(toy, first_in_training="unseen", cross_fit_folds=2)
    with pytest.raises(LcrError, match="variant 'roberta' has none"):
        settings(toy, first_in_training="unseen", variant="roberta")


def test_separate_stages_trains_the_first_stage_exactly_as_the_plain_fine_tune(toy, tmp_path):
    """separate_stages: after the same steps at the same seed, with dropout on everywhere,
    LabelCoRank's encoder, W1 and W2 are, to the bit, the `roberta` variant's, whether its label
    queries read with readers of their own or with the attention head; the reranking stage's
    layers did learn. Without it the first stage ends elsewhere."""
    from tests.tiny_encoder import make_tiny_encoder

    encoder = make_tiny_encoder(tmp_path / "encoder")  # hidden and attention dropout 0.1, as checkpoints ship
    common = dict(encoder=encoder, dropout=0.1, epochs=1, max_steps=5, schedule="linear", warmup_ratio="0.2",
                  head_lr=0.01, fill_to_gamma=True, clip_norm=0.5, final_head="per_label")

    def trained(name, variant, **overrides):
        params = settings(toy, variant=variant, **{**common, **overrides})
        train_job("toy", params, data_dir=toy["data"], output_dir=tmp_path / name, track=False, progress=False)
        return _weights(tmp_path / name / "best_model" / "model")

    plain = trained("plain", "roberta")
    first_stage = [name for name in plain if name.startswith(("encoder.", "pool.", "classifier1."))]
    assert len(first_stage) == len(plain) and any(name.startswith("encoder.encoder.layer.") for name in plain)
    readers = dict(label_attention="encoder_readers", reader_weights="own", reader_keys="own", reader_lr=0.01)
    for name, overrides in (("readers", readers), ("head", {"label_attention": "head"})):
        model = trained(name, "labelcorank", separate_stages=True, **overrides)
        for key in first_stage:
            np.testing.assert_array_equal(model[key], plain[key], err_msg=f"{name}: {key}")
        assert model["stage_stream"][1] == 5  # one training forward per step, counted for a resumed run
        assert np.abs(model["label_scorer.weight"]).max() > 0  # the per-label head starts at zero: it learned
    joint = trained("joint", "labelcorank", **readers)
    assert any(not np.array_equal(joint[key], plain[key]) for key in first_stage)


def test_rerank_epochs_train_the_reranking_stage_alone_on_the_finished_plain_fine_tune(toy, tmp_path):
    """rerank_epochs: after its epochs the first stage stays, to the bit, the plain fine-tune's
    while the reranking stage goes on learning; the first stage's schedule ends with the epochs,
    the reranking stage's spans all of them. It needs separate_stages."""
    import torch

    from lcr.models.factory import build_model
    from lcr.models.encoder import load_encoder
    from lcr.train.loop import RERANK_GROUP, _group_schedules, build_optimizer, check_inputs
    from tests.tiny_encoder import make_tiny_encoder

    encoder = make_tiny_encoder(tmp_path / "encoder")  # dropout on, as checkpoints ship
    common = dict(encoder=encoder, dropout=0.1, epochs=1, schedule="linear", warmup_ratio="0.2", head_lr=0.01,
                  fill_to_gamma=True, clip_norm=0.5, final_head="per_label", patience=None)
    stacked = dict(separate_stages=True, label_attention="encoder_readers", reader_weights="own", reader_keys="own",
                   reader_lr=0.01)

    def final_state(name, variant, **overrides):  # the last weights (the checkpoint's), not the dev's best
        params = settings(toy, variant=variant, **{**common, **overrides})
        result = train_job("toy", params, data_dir=toy["data"], output_dir=tmp_path / name, track=False,
                           progress=False)
        return torch.load(tmp_path / name / "checkpoint.pt", weights_only=False)["model"], result

    plain, _ = final_state("plain", "roberta")
    once, _ = final_state("once", "labelcorank", **stacked)
    again, result = final_state("again", "labelcorank", rerank_epochs=1, **stacked)
    assert [row["epoch"] for row in result["history"]] == [1, 2]
    steps = result["steps"]
    assert steps == 2 * result["history"][0]["step"]
    assert int(again["stage_stream"][1]) == steps  # the reranking stage ran on every step of both epochs
    first_stage = [key for key in plain if key.startswith(("encoder.", "pool.", "classifier1."))]
    for key in first_stage:
        assert torch.equal(again[key], plain[key]), key
    second_stage = [key for key in again if key.startswith(("reader_encoder.", "label_scorer."))]
    assert second_stage and any(not torch.equal(again[key], once[key]) for key in second_stage)

    # The schedules: at the end of the epochs the first stage's rate is 0, the reranking stage's is not.
    params = settings(toy, variant="labelcorank", rerank_epochs=1, **{**common, **stacked})
    model_encoder, tokenizer = load_encoder(encoder)
    _, artifacts = check_inputs(toy["data"] / "toy", params)
    model = build_model(params, model_encoder, cooc=artifacts.cooc, freq_rank=artifacts.rank, tokenizer=tokenizer)
    optimizer = build_optimizer(model, params, torch.device("cpu"))
    names = [group["name"] for group in optimizer.param_groups]
    assert any(n.startswith(RERANK_GROUP) for n in names) and any(not n.startswith(RERANK_GROUP) for n in names)
    first_ids = {id(p) for p in model.first_stage_parameters()}
    for group in optimizer.param_groups:
        assert all((id(p) in first_ids) != group["name"].startswith(RERANK_GROUP) for p in group["params"])
    factors = _group_schedules(optimizer, params, first_steps=10, total_steps=20)
    for name, factor in zip(names, factors):  # warm-up 0.2 of each span: 2 steps of 10, 4 of 20
        rerank = name.startswith(RERANK_GROUP)
        assert (factor(1), factor(10)) == ((0.5, 10 / 16) if rerank else (1.0, 0.0)), name

    with pytest.raises(LcrError, match="rerank_epochs .* needs separate_stages true"):
        settings(toy, rerank_epochs=1)
    with pytest.raises(LcrError, match="rerank_epochs must be >= 0"):
        settings(toy, rerank_epochs=-1, separate_stages=True)
