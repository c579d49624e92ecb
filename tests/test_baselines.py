"""The paper's neural baselines (lcr/models/baselines/): each learns the toy corpus, saves and loads
without pickle, ignores padding, trains end to end through `lcr train`'s job into a model folder
the predictor uses, and refuses bad settings with a clear error."""

from __future__ import annotations

import json

import pytest
import torch

from lcr.models.variants import BASELINE_VARIANTS, LINEAR_VARIANTS, WORD_VARIANTS
from lcr.models.baselines.common import BaselineConfig, build_baseline
from lcr.models.baselines.words import build_word_tokenizer
from lcr.config import VARIANTS, load_params, parse_params, train_params
from lcr.datasets import store
from lcr.errors import LcrError
from lcr.labels import prepare
from lcr.models.factory import build_model, load_model
from tests.toy_data import TOPICS, toy_documents

LABELS = sorted(TOPICS)
# Tiny sizes: every model has a few thousand weights and trains in well under a second.
TINY = dict(max_length=32, embed_dim=16, hidden_dim=16, num_layers=1, num_heads=2, dropout=0.0,
            cnn_windows=[2, 3], cnn_filters=8, cnn_pool_chunks=2, bottleneck_dim=16, num_probes=2,
            num_cls_tokens=3, cls_layers=2, label_neighbours=2)


@pytest.fixture(scope="module")
def encoder_dir(tmp_path_factory):
    """A tiny random RoBERTa with dropout off (the encoder baselines' encoder)."""
    from tests.tiny_encoder import make_tiny_encoder

    folder = make_tiny_encoder(tmp_path_factory.mktemp("encoder") / "tiny")
    config_path = f"{folder}/config.json"
    config = json.loads(open(config_path).read())
    config.update(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    open(config_path, "w").write(json.dumps(config))
    return folder


@pytest.fixture(scope="module")
def batch():
    """32 toy documents as texts and multi-hot labels (B x 4)."""
    docs = toy_documents(32, 0)
    labels = torch.zeros(len(docs), len(LABELS))
    for i, doc in enumerate(docs):
        for label in doc.labels:
            labels[i, LABELS.index(label)] = 1.0
    return [d.text for d in docs], labels


def _model(variant, texts, encoder_dir):
    """A tiny model of ``variant`` and its tokenizer, seeded."""
    torch.manual_seed(0)
    if variant in WORD_VARIANTS:
        tokenizer = build_word_tokenizer(texts, min_freq=1, max_length=32)
        config = BaselineConfig(num_labels=len(LABELS), vocab_size=len(tokenizer),
                                pad_token_id=tokenizer.pad_token_id, **TINY)
        return build_model(variant, config), tokenizer
    from lcr.models.encoder import load_encoder

    encoder, tokenizer = load_encoder(encoder_dir)
    config = BaselineConfig(num_labels=len(LABELS), **TINY)
    # The toy labels' ids are words: RoBERTa-LiGCN and GUDN read them as the label texts.
    return build_model(variant, config, encoder, tokenizer=tokenizer, label_texts=LABELS), tokenizer


@pytest.mark.parametrize("variant", BASELINE_VARIANTS)
def test_loss_falls_and_save_load_round_trip(variant, batch, encoder_dir, tmp_path):
    texts, labels = batch
    model, tokenizer = _model(variant, texts, encoder_dir)
    enc = tokenizer(texts, padding=True, truncation=True, max_length=32, return_tensors="pt")
    ids, mask = enc["input_ids"], enc["attention_mask"]
    # AttentionXML's labels share one output layer: it sits on the label prior for a while
    # before the label queries separate, hence the high rate and 40 steps.
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-2 if variant in WORD_VARIANTS else 3e-3)
    losses = []
    for _ in range(40):
        out = model(ids, mask, labels=labels)
        assert out.logits.shape == (32, len(LABELS)) and out.logits1 is out.logits
        optimizer.zero_grad()
        out.loss.backward()
        optimizer.step()
        losses.append(out.loss.item())
    assert losses[-1] < 0.5 * losses[0], (variant, losses)

    model.eval()
    model.save_pretrained(tmp_path / "model")
    meta = json.loads((tmp_path / "model" / "config.json").read_text())
    assert meta["variant"] == variant and (meta["encoder"] is None) == (variant in WORD_VARIANTS)
    loaded = load_model(tmp_path / "model").eval()
    assert type(loaded) is type(model)
    with torch.no_grad():
        logits = model(ids, mask).logits
        assert torch.equal(loaded(ids, mask).logits, logits)
        # Padding changes nothing: the first document alone, unpadded, scores the same.
        n = int(mask[0].sum())
        alone = model(ids[:1, :n], mask[:1, :n]).logits
    assert torch.allclose(alone, logits[:1], atol=1e-5)


def test_word_tokenizer_is_deterministic_and_reloads(tmp_path):
    from transformers import AutoTokenizer

    texts = ["Wheat, corn and wheat.", "Crude oil; OIL prices", "rare"]
    one = build_word_tokenizer(texts, min_freq=2)
    two = build_word_tokenizer(list(reversed(texts)), min_freq=2)
    assert one.get_vocab() == two.get_vocab()
    assert set(one.get_vocab()) == {"[PAD]", "[UNK]", "[CLS]", "wheat", "oil"}
    assert one("Wheat rare!")["input_ids"] == [2, one.get_vocab()["wheat"], 1, 1]  # [CLS] wheat [UNK] [UNK]
    one.save_pretrained(str(tmp_path / "tok"))
    again = AutoTokenizer.from_pretrained(str(tmp_path / "tok"))
    assert again("Wheat rare!")["input_ids"] == [2, one.get_vocab()["wheat"], 1, 1]
    assert again.pad_token_id == 0
    with pytest.raises(LcrError, match="word_min_freq = 5"):
        build_word_tokenizer(texts, min_freq=5)


@pytest.fixture(scope="module")
def toy_store(tmp_path_factory):
    data = tmp_path_factory.mktemp("toy") / "data"
    store.write_store(data / "toy", {"train": toy_documents(48, 0), "dev": toy_documents(16, 1),
                                     "test": toy_documents(16, 2)}, progress=False)
    prepare(data / "toy", show_progress=False)
    return data


@pytest.mark.parametrize("variant", ["meshprobenet", "bertxml", "ligcn", "gudn"])
def test_train_job_writes_a_model_folder_the_predictor_uses(variant, toy_store, encoder_dir, tmp_path,
                                                            monkeypatch):
    import mlflow

    from lcr.jobs import train_job
    from lcr.serve.predictor import Predictor

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    lr = 3e-2 if variant in WORD_VARIANTS else 3e-3
    # label_text=ids: the toy store has no label names (its ids are words, "grain", "oil"...).
    params = train_params(dict(TINY, variant=variant, encoder=encoder_dir, word_min_freq=1, batch_size=8,
                               epochs=3, lr=lr, patience=None, device="cpu", eval_batch_size=16,
                               log_every=1, gamma=99, label_text="ids"))  # gamma > K: the baselines have no gamma
    result = train_job("toy", params, data_dir=toy_store, output_dir=tmp_path / "run", progress=False)
    assert result["run"]["variant"] == variant and result["run"]["gamma"] is None
    assert result["steps"] == 18 and set(result["eval"]) == {"full", "head", "tail"}

    mlflow.set_tracking_uri(uri)
    run = mlflow.get_run(result["run_id"])
    assert run.data.params["variant"] == variant and run.data.tags["lcr.variant"] == variant
    assert "full_P_at_1" in run.data.metrics

    folder = tmp_path / "run" / "best_model"
    info = json.loads((folder / "inference.json").read_text())
    assert info["variant"] == variant and (info["encoder"] is None) == (variant in WORD_VARIANTS)
    predictor = Predictor.load(folder)
    ranked = predictor.predict([f"report 7: {TOPICS['oil']}", f"report 8: {TOPICS['grain']}"], k=2)
    assert [len(r) for r in ranked] == [2, 2]
    assert {r["label"] for r in ranked[0]} <= set(LABELS)
    if variant in WORD_VARIANTS:  # MeSHProbeNet learns the toy topics in three epochs
        assert result["eval"]["full"]["P@1"] >= 0.75
        assert ranked[0][0]["label"] == "oil" and ranked[1][0]["label"] == "grain"
    assert predictor.predict(["oil"], explain=True)[0]["extended"] is None  # no label sequence


def test_params_yaml_gives_each_baseline_its_settings():
    params = load_params()  # the project's params.yaml
    assert set(params.baselines) == set(BASELINE_VARIANTS) | set(LINEAR_VARIANTS)
    xml_cnn = params.train("reuters21578", variant="xml-cnn")
    assert xml_cnn.lr == 1e-3 and xml_cnn.cnn_windows == [2, 4, 8] and xml_cnn.dropout == 0.5
    assert params.train("reuters21578", variant="labelcorank").dropout == 0.1  # untouched
    assert params.train("reuters21578", variant="xml-cnn", lr=0.02).lr == 0.02  # options still win
    for variant in BASELINE_VARIANTS:
        assert params.train("reuters21578", variant=variant).variant in VARIANTS


def test_bad_settings_are_named(encoder_dir):
    from lcr.models.encoder import load_encoder

    with pytest.raises(LcrError, match="num_heads = 8 must divide embed_dim = 30"):
        train_params({"variant": "transformer", "embed_dim": 30})
    with pytest.raises(LcrError, match=r"cnn_windows = 3 is not a valid list of int"):
        train_params({"variant": "xml-cnn", "cnn_windows": 3})
    with pytest.raises(LcrError, match="widest window"):
        train_params({"variant": "xml-cnn", "cnn_windows": [2, 100], "max_length": 64})
    with pytest.raises(LcrError, match="word_vocab_size"):
        train_params({"variant": "attentionxml", "word_vocab_size": 2})
    with pytest.raises(LcrError, match="num_probes"):
        train_params({"variant": "meshprobenet", "num_probes": 0})
    with pytest.raises(LcrError, match="num_cls_tokens"):
        train_params({"variant": "bertxml", "num_cls_tokens": 0})
    with pytest.raises(LcrError, match="baselines.xmlcnn: not a baseline variant"):
        parse_params({"baselines": {"xmlcnn": {"lr": 0.001}}})
    with pytest.raises(LcrError, match=r"baselines.xml-cnn: unknown key\(s\) filters"):
        parse_params({"baselines": {"xml-cnn": {"filters": 3}}})
    config = BaselineConfig(num_labels=4, vocab_size=50, **TINY)
    encoder, tokenizer = load_encoder(encoder_dir)
    with pytest.raises(LcrError, match="xml-cnn is word-level"):
        build_baseline("xml-cnn", config, encoder)
    with pytest.raises(LcrError, match="bertxml needs the pretrained encoder"):
        build_baseline("bertxml", config)
    with pytest.raises(LcrError, match="vocab_size >= 3"):
        build_baseline("star-transformer", BaselineConfig(num_labels=4, **TINY))
    with pytest.raises(LcrError, match="pass its word tokenizer"):
        build_model(train_params({"variant": "xml-cnn"}), None, freq_rank=[0, 1, 2, 3])
    with pytest.raises(LcrError, match="gudn: cls_layers must be at least 1"):
        train_params({"variant": "gudn", "cls_layers": 0})
    with pytest.raises(LcrError, match="ligcn: label_neighbours must be at least 1"):
        train_params({"variant": "ligcn", "label_neighbours": 0})
    with pytest.raises(LcrError, match="cls_layers = 9 exceeds the encoder's 2 layers"):
        build_baseline("gudn", BaselineConfig(num_labels=4, **dict(TINY, cls_layers=9)), encoder)
    with pytest.raises(LcrError, match="ligcn reads a text per label: pass label_texts"):
        build_model("ligcn", BaselineConfig(num_labels=4, **TINY), encoder, tokenizer=tokenizer)


# --------------------------------------------------------------------------------------------
# RoBERTa-LiGCN and GUDN: the baselines that read label texts


def test_label_texts_need_names_unless_the_ids_stand_for_them(tmp_path):
    from lcr.models.baselines.label_text import label_texts

    path = tmp_path / "label_vocab.tsv"
    named = label_texts(["D1", "D2", "m_1"], ["Neoplasms", "D2", "batch_file"], "names", vocab_path=path,
                        variant="gudn")
    assert named == ["Neoplasms", "D2", "batch file"]  # a missing name keeps the id; _ joins words
    assert label_texts(["cs.ai", "math_co"], ["cs.ai", "math_co"], "ids", vocab_path=path,
                       variant="gudn") == ["cs.ai", "math co"]
    with pytest.raises(LcrError, match=r"gudn reads the labels' names, but .*label_vocab.tsv has none "
                                       r"\(every name equals its label id\).*--set label_text=ids"):
        label_texts(["cs.ai", "cs.lg"], ["cs.ai", " cs.lg "], "names", vocab_path=path, variant="gudn")
    with pytest.raises(LcrError, match="label_text = 'words'"):
        label_texts(["a"], ["A"], "words", vocab_path=path, variant="ligcn")
    with pytest.raises(LcrError, match=r"label_text = 'words' is not a valid one of 'names', 'ids'"):
        train_params({"variant": "gudn", "label_text": "words"})


@pytest.mark.parametrize("variant", ["ligcn", "gudn"])
def test_a_store_without_label_names_is_refused_before_any_work(variant, toy_store, encoder_dir, tmp_path,
                                                                  monkeypatch):
    from lcr.jobs import train_job

    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    params = train_params(dict(TINY, variant=variant, encoder=encoder_dir, device="cpu", epochs=1))
    vocab = toy_store / "toy" / store.VOCAB_FILE  # written without names: every name is its id
    with pytest.raises(LcrError, match=rf"{variant} reads the labels' names, but {vocab} has none"):
        train_job("toy", params, data_dir=toy_store, output_dir=tmp_path / "run", progress=False)
    assert not (tmp_path / "run").exists() and not (tmp_path / "mlflow.db").exists()


def test_gudn_guide_inputs_put_the_gold_label_texts_after_the_first_token(encoder_dir):
    texts = ["crude oil prices", "wheat"]
    model, tokenizer = _model("gudn", texts, encoder_dir)
    enc = tokenizer(texts, padding=True, return_tensors="pt")
    labels = torch.tensor([[0.0, 0.0, 1.0, 1.0], [1.0, 0.0, 0.0, 0.0]])  # oil + ship; grain
    ids, mask = model.guide_inputs(enc["input_ids"], enc["attention_mask"], labels)
    first = tokenizer.decode(ids[0][mask[0].bool()])
    assert first == "<s> oil; ship;crude oil prices</s>"  # label-reinforced: the texts, then the document
    assert tokenizer.decode(ids[1][mask[1].bool()]) == "<s> grain;wheat</s>"
    model.config.label_reinforcement = False
    ids, mask = model.guide_inputs(enc["input_ids"], enc["attention_mask"], labels)
    assert tokenizer.decode(ids[0][mask[0].bool()]) == "<s> oil; ship;</s>"  # the label texts alone
    # The label texts' tokens are buffers: saved with the model, so loading it needs no store.
    assert {"label_tokens", "label_lengths"} <= set(model.state_dict())
    assert model.label_tokens.shape == (4, model.config.label_name_length)


def test_ligcn_label_graph_is_sparse_cosine_neighbours_with_a_self_loop(encoder_dir):
    from lcr.models.baselines.ligcn import cosine_neighbours

    vectors = torch.tensor([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [-1.0, 0.0]])
    index, weight = cosine_neighbours(vectors, k=1, block=2)  # blocks of 2 rows: no K x K matrix
    assert index[:, 0].tolist() == [0, 1, 2, 3] and index[:, 1].tolist() == [1, 0, 1, 2]
    assert torch.allclose(weight.sum(1), torch.ones(4))
    assert weight[3, 1] == 0.0 and weight[3, 0] == 1.0  # label 3's nearest is dissimilar: no edge
    model, tokenizer = _model("ligcn", ["oil"], encoder_dir)
    assert model.neighbours.shape == (4, 3) and (model.neighbours[:, 0] == torch.arange(4)).all()
    enc = tokenizer(["crude oil", "wheat corn harvest"], padding=True, return_tensors="pt")
    with torch.no_grad():
        hidden = model.encoder(**enc).last_hidden_state
        edges = model.token_label_edges(hidden, enc["attention_mask"])  # (B, K, T): the interpretable edges
    assert edges.shape == (2, 4, enc["input_ids"].shape[1])
    assert torch.allclose(edges.sum(-1), torch.ones(2, 4))
    assert (edges[0][:, enc["attention_mask"][0] == 0] == 0).all()  # padding has no edge


def test_baseline_runs_become_rows_beside_the_papers_numbers(tmp_path):
    from lcr.report.tables import NOT_RUN, build_tables, collect_runs
    from tests.test_tables import scores, write_run

    root = tmp_path / "runs"
    write_run(root, "aapd/xml-cnn-s0", "aapd", "xml-cnn", full=scores(0.80))
    write_run(root, "aapd/labelcorank-g20-s0", "aapd", "labelcorank", gamma=20, full=scores(0.85))
    write_run(root, "reuters21578/bertxml-s0", "reuters21578", "bertxml", full=scores(0.90))
    write_run(root, "reuters21578/labelcorank-g20-s0", "reuters21578", "labelcorank", gamma=20, full=scores(0.88))
    write_run(root, "mag-cs/match-s0", "mag-cs", "match", full=scores(0.90), split="dev")
    write_run(root, "aapd/gudn-s0", "aapd", "gudn", full=scores(0.83))
    write_run(root, "reuters21578/ligcn-s0", "reuters21578", "ligcn", full=scores(0.89))
    tables = build_tables(collect_runs(root), main_gamma={"reuters21578": 20},
                          datasets=["aapd", "mag-cs", "reuters21578"])

    aapd = tables["table04_aapd_main"].frame.set_index("row")
    assert aapd.loc["XML-CNN", "status"] == "measured" and aapd.loc["XML-CNN", "P@1"] == pytest.approx(0.80)
    assert aapd.loc["XML-CNN", "P@1 paper"] == 0.814  # Table 4's XML-CNN row
    assert aapd.loc["BERTXML", "status"] == NOT_RUN and aapd.loc["MATCH", "status"] == NOT_RUN
    assert aapd.loc["GUDN", "status"] == "measured" and aapd.loc["GUDN", "P@1 paper"] == 0.826  # Table 4
    assert aapd.loc["RoBERTa-LiGCN", "status"] == NOT_RUN and aapd.loc["RoBERTa-LiGCN", "P@1 paper"] == 0.825
    notes = " ".join(tables["table02_mag-cs_main"].notes)
    assert "not part of lcr" not in notes and "XML-CNN" not in notes  # every system of the paper is built
    assert {"RoBERTa-LiGCN", "GUDN"} <= set(tables["table02_mag-cs_main"].frame["row"])
    assert "MATCH" not in notes  # built: a measured row beside Table 2's MATCH row
    mag = tables["table02_mag-cs_main"].frame.set_index("row")
    assert mag.loc["MATCH", "status"] == "measured" and mag.loc["MATCH", "P@1"] == pytest.approx(0.90)
    assert mag.loc["MATCH", "P@1 paper"] == 0.919

    # A dataset outside the paper shows the baselines that were run, in the paper's row order.
    reuters = tables["reuters21578_main"].frame
    assert list(reuters["row"]) == ["RoBERTa", "BERTXML", "RoBERTa-LiGCN", "LabelCoRank"]
    assert reuters.set_index("row").loc["BERTXML", "P@1"] == pytest.approx(0.90)
    assert list(tables["reuters21578_head-tail"].frame["row"]) == ["RoBERTa", "BERTXML", "RoBERTa-LiGCN",
                                                                   "LabelCoRank"] * 2


# --------------------------------------------------------------------------------------------
# MATCH: text with its metadata


def test_metadata_tokens_and_text():
    from lcr.models.baselines.match import metadata_text, metadata_tokens

    meta = {"venue": "Proc. ACM (UbiComp)", "author": ["12", "a-b"], "reference": ["99", ""]}
    assert metadata_tokens(meta) == ["mvenue_Proc_ACM_UbiComp", "mauthor_12", "mauthor_a_b", "mref_99"]
    assert metadata_tokens({}) == metadata_tokens(None) == []
    assert metadata_text("some words", meta, max_length=4) == "mvenue_Proc_ACM_UbiComp mauthor_12 some words"
    assert metadata_text("some words", {}, max_length=4) == "some words"
    # The word tokenizer keeps a metadata value as one token.
    tokenizer = build_word_tokenizer([metadata_text("oil prices", meta, 32)] * 2, min_freq=1)
    assert tokenizer.convert_ids_to_tokens(tokenizer("mvenue_Proc_ACM_UbiComp oil")["input_ids"]) == [
        "[CLS]", "mvenue_proc_acm_ubicomp", "oil"]


def _with_venue(docs):
    """The toy documents with metadata: the venue names the first topic (so metadata alone
    predicts a label), the authors are per document."""
    from lcr.datasets.document import Document

    return [Document(d.id, d.text, d.labels, {"venue": f"{d.labels[0]} letters", "author": [str(i % 5)],
                                               "reference": []}) for i, d in enumerate(docs)]


@pytest.fixture(scope="module")
def meta_store(tmp_path_factory):
    data = tmp_path_factory.mktemp("meta") / "data"
    docs = {"train": toy_documents(48, 0), "dev": toy_documents(16, 1), "test": toy_documents(16, 2)}
    # The venue alone carries the label: the words are blanked, so only a model that reads
    # the metadata can get them right.
    docs = {split: _with_venue(d) for split, d in docs.items()}
    for split in docs.values():
        for d in split:
            d.text = "report"
    store.write_store(data / "meta", docs, info={"with_meta": True}, progress=False)
    prepare(data / "meta", show_progress=False)
    return data


def test_word_tokenizer_counts_the_capped_training_texts_streamed(toy_store):
    """The vocabulary counted chunk by chunk from the store equals one counted on the whole
    list of the training texts the run keeps (the max_train_docs cap applied)."""
    from lcr.datasets.batches import read_texts
    from lcr.datasets.store import capped_indices
    from lcr.train.loop import word_tokenizer

    texts, _ = read_texts(toy_store / "toy", "train")
    vocabs = {}
    for cap in (None, 20):
        # min_freq 1: each document's number ("report 17:") is a word only it has
        params = train_params(dict(TINY, variant="xml-cnn", word_min_freq=1, max_train_docs=cap, seed=3))
        keep = capped_indices(len(texts), cap, 3)
        kept = texts if keep is None else [texts[i] for i in keep]
        vocabs[cap] = word_tokenizer(toy_store / "toy", params).get_vocab()
        assert vocabs[cap] == build_word_tokenizer(kept, min_freq=1, max_length=32).get_vocab()
    dropped = sorted(set(range(len(texts))) - set(keep.tolist()))
    assert str(dropped[0]) in vocabs[None] and str(dropped[0]) not in vocabs[20]


def test_match_trains_on_text_and_metadata(meta_store, toy_store, tmp_path, monkeypatch):
    from lcr.datasets.batches import encode_split
    from lcr.jobs import train_job
    from lcr.train.loop import text_composer, word_tokenizer

    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    params = train_params(dict(TINY, variant="match", word_min_freq=1, batch_size=8, epochs=6, lr=3e-2,
                               patience=None, device="cpu", eval_batch_size=16, log_every=1))
    # The data path puts the metadata tokens in front of the words.
    tokenizer = word_tokenizer(meta_store / "meta", params)
    assert "mvenue_oil_letters" in tokenizer.get_vocab() and "mauthor_3" in tokenizer.get_vocab()
    vocab, _ = store.read_vocab(meta_store / "meta")
    dev = encode_split(meta_store / "meta", "dev", tokenizer, vocab, 32, compose=text_composer(params))
    first = tokenizer.convert_ids_to_tokens(dev.input_ids[0].tolist())
    assert first[:2] == ["[CLS]", "mvenue_" + dev_label(meta_store, 0) + "_letters"] and first[-1] == "report"

    result = train_job("meta", params, data_dir=meta_store, output_dir=tmp_path / "run", progress=False)
    assert result["run"]["variant"] == "match"
    # Only the venue token tells the test documents apart (its first label).
    assert result["eval"]["full"]["P@1"] >= 0.9, result["eval"]["full"]

    # A store without metadata is refused before any work, naming the dataset.
    with pytest.raises(LcrError, match=r"toy/train.parquet has no `meta` column: this model reads the documents. metadata"):
        train_job("toy", params, data_dir=toy_store, output_dir=tmp_path / "refused", progress=False)
    assert not (tmp_path / "refused").exists()


def dev_label(data, row):
    return store.read_split(data / "meta", "dev", columns=["labels"]).column("labels")[row].as_py()[0]
