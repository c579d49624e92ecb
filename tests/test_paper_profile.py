"""The `paper` profile's DVC graph, checked here without a GPU or the paper's data.

The paper profile wants roberta-base on a GPU and the AAPD, MAG-CS and PubMed releases
(issue #4). Here its graph is checked as written in params.yaml (3 datasets x 16 variants x
3 seeds, MATCH on MAG-CS and PubMed only, the gamma sweeps, RoBERTa*, registration, tables):

* `dvc dag` and `dvc status` name every stage and the edges between the stage types;
* at toy scale, with synthetic stand-ins in each release's own format (AAPD's SGM files,
  MATCH's JSON lines with metadata) and the tiny random encoder on the CPU, a representative
  subset of the graph really runs through `lcr repro`: fetch and prepare of all three datasets,
  LabelCoRank, an ablation, RoBERTa, a word-level baseline, tfidf and MATCH, a gamma-sweep run,
  RoBERTa*, registration and the tables. The other stages (each some seconds at toy scale, over
  two minutes more in all) are only checked by `dvc repro --dry`, which lists every train and
  sweep stage still to run. (DVC's dry run needs each stage's inputs on disk, so it can only
  walk the graph once fetch and prepare have run.)
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

import numpy as np

from lcr.datasets.document import Document
from tests.test_pipeline import TOY_TRAINING, copy_project, run, toy_baselines, write_params

DATASETS = ("aapd", "mag-cs", "pubmed")
SIZES = {"train": 64, "dev": 16, "test": 16}
# More labels than the paper profile's largest gamma (40): gamma may not exceed K.
NUM_LABELS = 48

# The representative subset that really runs (everything else: `dvc repro --dry`).
SUBSET = ["train@aapd-no_cooc-0", "train@aapd-roberta-0", "oracle@aapd-0", "train@aapd-tfidf-0",
          "train@mag-cs-labelcorank-0", "register@mag-cs", "train@mag-cs-match-0", "sweep@mag-cs-g20",
          "train@pubmed-xml-cnn-0"]


def paper_stages(params: dict) -> set[str]:
    """Every stage the paper profile should produce, computed independently of lcr.config."""
    profile = params["profiles"]["paper"]
    restricted = profile.get("variant_datasets", {})
    stages = {"tables"}
    for ds in profile["datasets"]:
        stages |= {f"fetch@{ds}", f"prepare@{ds}", f"calibrate@{ds}", f"register@{ds}"}
        stages |= {f"sweep@{ds}-g{g}" for g in profile["gammas"].get(ds, [])}
        for seed in profile["seeds"]:
            stages.add(f"oracle@{ds}-{seed}")
            stages |= {f"train@{ds}-{v}-{seed}" for v in profile["variants"] if ds in restricted.get(v, [ds])}
    return stages


def test_paper_graph_lists_every_stage(tmp_path):
    project = copy_project(tmp_path / "project")
    run(project, "-m", "lcr.cli", "profile", "paper")
    params = yaml.safe_load((project / "params.yaml").read_text())
    expected = paper_stages(params)
    assert len(expected) == 3 + 3 + (3 * 16 + 2) * 3 + 12 + 9 + 3 + 3 + 1  # 184 (16 variants, MATCH not on AAPD)
    assert {"train@mag-cs-match-2", "train@pubmed-match-0", "train@aapd-bertxml-1", "train@pubmed-tfidf-2",
            "train@aapd-no_rerank-0", "train@pubmed-ligcn-2", "train@aapd-gudn-0", "train@mag-cs-gudn-1"} <= expected

    dot = run(project, "-m", "dvc", "dag", "--dot").stdout
    nodes = set(re.findall(r'^"([^"]+)";$', dot, flags=re.M))
    assert nodes == expected
    assert not any(name.startswith("train@aapd-match") for name in nodes)  # no metadata in AAPD
    edges = set(re.findall(r'^"([^"]+)" -> "([^"]+)";$', dot, flags=re.M))
    for edge in [("fetch@mag-cs", "prepare@mag-cs"), ("prepare@mag-cs", "train@mag-cs-match-1"),
                 ("fetch@pubmed", "train@pubmed-xml-cnn-2"), ("prepare@aapd", "sweep@aapd-g15"),
                 ("train@aapd-roberta-2", "oracle@aapd-2"), ("train@pubmed-labelcorank-0", "calibrate@pubmed"),
                 ("calibrate@pubmed", "register@pubmed"),
                 ("train@pubmed-match-2", "tables"), ("oracle@mag-cs-1", "tables"), ("sweep@pubmed-g40", "tables")]:
        assert edge in edges, edge
    # The ASCII rendering of the whole graph works too.
    run(project, "-m", "dvc", "dag", "tables")
    # Every stage of a fresh checkout is out of date.
    status = json.loads(run(project, "-m", "dvc", "status", "--json").stdout)
    assert set(status) == expected


# --- synthetic stand-ins in the releases' own formats -------------------------------------------

def toy_documents(n: int, seed: int) -> list[Document]:
    """``n`` documents with one to three of ``NUM_LABELS`` labels, each label with its own words."""
    rng = np.random.default_rng(seed)
    docs = []
    for i in range(n):
        labels = sorted({f"t{j:02d}" for j in rng.integers(0, NUM_LABELS, size=rng.integers(1, 4))})
        words = " ".join(f"{label}a {label}b {label}c" for label in labels)
        docs.append(Document(f"doc{seed}-{i}", f"report {i} on {words} and more", labels))
    return docs


def write_aapd_release(folder: Path) -> Path:
    """AAPD's SGM files: ``text_<split>`` / ``label_<split>`` line pairs (dev is ``val``)."""
    folder.mkdir(parents=True)
    for seed, (split, n) in enumerate(SIZES.items()):
        name = {"dev": "val"}.get(split, split)
        docs = toy_documents(n, seed)
        (folder / f"text_{name}").write_text("".join(f"{d.text}\n" for d in docs), encoding="utf-8")
        (folder / f"label_{name}").write_text("".join(" ".join(f"cs.{label}" for label in d.labels) + "\n"
                                                      for d in docs), encoding="utf-8")
    return folder


def write_match_release(folder: Path, id_field: str) -> Path:
    """MATCH's release: JSON lines of word ids with venue, authors and references, plus
    ``vocabulary.txt`` and ``id2label.txt``. The metadata carry the topic, so MATCH can use it."""
    folder.mkdir(parents=True)
    splits = {split: toy_documents(n, seed) for seed, (split, n) in enumerate(SIZES.items())}
    words = sorted({w for docs in splits.values() for d in docs for w in d.text.split()})
    ids = {w: i for i, w in enumerate(words)}
    (folder / "vocabulary.txt").write_text("".join(f"{i}\t{w}\n" for w, i in ids.items()), encoding="utf-8")
    labels = [f"t{j:02d}" for j in range(NUM_LABELS)]
    (folder / "id2label.txt").write_text("".join(f"L{label}\t{label}\n" for label in labels), encoding="utf-8")
    for split, docs in splits.items():
        with open(folder / f"{split}.json", "w", encoding="utf-8") as handle:
            for d in docs:
                record = {id_field: d.id, "venue": f"venue-{d.labels[0]}",
                          "author": [f"author-{label}" for label in d.labels], "reference": [f"paper-{d.labels[-1]}"],
                          "text": " ".join(str(ids[w]) for w in d.text.split()),
                          "label": [f"L{label}" for label in d.labels]}
                handle.write(json.dumps(record) + "\n")
    return folder


@pytest.fixture(scope="module")
def paper_inputs(tmp_path_factory):
    from tests.tiny_encoder import make_tiny_encoder

    root = tmp_path_factory.mktemp("paper-inputs")
    return {"aapd": write_aapd_release(root / "aapd"), "mag-cs": write_match_release(root / "MAG", "paper"),
            "pubmed": write_match_release(root / "MeSH", "PMID"), "encoder": make_tiny_encoder(root / "encoder")}


def test_paper_graph_runs_at_toy_scale(paper_inputs, tmp_path):
    """The paper profile's own graph (datasets, variants, seeds, variant_datasets, gammas, dataset
    overrides, aggregation), with only its data sources and training budget made toy-sized."""
    project = copy_project(tmp_path / "project")
    params = yaml.safe_load((project / "params.yaml").read_text())
    for ds in DATASETS:
        params["datasets"][ds]["source"] = str(paper_inputs[ds])
    params["profiles"]["paper"]["training"] = {"encoder": paper_inputs["encoder"], **TOY_TRAINING}
    toy_baselines(params)
    write_params(project, params, profile="paper")

    run(project, "-m", "lcr.cli", "repro", *SUBSET)
    run(project, "-m", "lcr.cli", "repro", "--single-item", "tables")

    # The settings of the paper profile reached the stores and the runs.
    aapd = json.loads((project / "data" / "aapd" / "stats.json").read_text())
    assert aapd["splits"]["train"]["documents"] == SIZES["train"] + SIZES["dev"]  # merge_train_dev
    match = json.loads((project / "runs" / "mag-cs" / "match-s0" / "metrics.json").read_text())
    assert match["eval_split"] == "dev" and match["run"]["variant"] == "match"
    for name in ("aapd/no_cooc-s0", "aapd/roberta-oracle-s0", "aapd/tfidf-s0", "mag-cs/labelcorank-g20-s0",
                 "pubmed/xml-cnn-s0"):
        assert (project / "metrics" / f"{name}.json").is_file(), name
    record = json.loads((project / "models" / "mag-cs.json").read_text())
    assert record["uri"].startswith("models:/lcr-mag-cs/")

    # The tables hold the measured rows beside the paper's numbers.
    tables = project / "tables"
    main = (tables / "table02_mag-cs_main.md").read_text()
    assert re.search(r"^\| MATCH \| measured \|", main, flags=re.M)
    assert re.search(r"^\| LabelCoRank \| measured \|", main, flags=re.M)
    assert re.search(r"^\| XML-CNN \| measured \|", (tables / "table03_pubmed_main.md").read_text(), flags=re.M)
    assert "measured" in (tables / "table11_mag-cs_gamma.md").read_text()

    # The rest of the graph: a dry run lists every train and sweep stage that has not run.
    dry = run(project, "-m", "dvc", "repro", "--dry", "--keep-going", check=False)
    would_run = set(re.findall(r"^Running stage '([^']+)'", dry.stdout, flags=re.M))
    expected = paper_stages(params)
    pending = {s for s in expected if s.startswith(("train@", "sweep@"))} - set(SUBSET)
    assert pending <= would_run, sorted(pending - would_run)[:10]
    assert not would_run & set(SUBSET) and would_run <= expected


def test_params_yaml_states_the_papers_settings_of_lcr_paper():
    """The paper's beta and gamma per dataset live in lcr.paper; params.yaml repeats them for
    readers, and the model's alpha default is the paper's."""
    from lcr.config import load_params, train_params
    from lcr.paper import PAPER_MAIN_GAMMA, PAPER_SETTINGS
    from tests.conftest import REPO

    config = load_params(REPO / "params.yaml")
    for dataset, settings in PAPER_SETTINGS.items():
        training = config.datasets[dataset].training
        assert {"beta": training["beta"], "gamma": training["gamma"]} == {k: settings[k] for k in ("beta", "gamma")}
        assert train_params().alpha == settings["alpha"] and PAPER_MAIN_GAMMA[dataset] == settings["gamma"]
