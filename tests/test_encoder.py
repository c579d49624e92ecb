"""lcr.models.encoder: what an encoder setting resolves to, and the errors a bad one gets."""

from __future__ import annotations

import pytest

from lcr.models.encoder import OFFLINE_DEFAULT, check_encoder, load_encoder, resolve_encoder
from lcr.errors import LcrError


def test_offline_default_is_the_bundled_minilm():
    folder = resolve_encoder(OFFLINE_DEFAULT)
    assert resolve_encoder(None) == folder
    import json
    from pathlib import Path

    config = json.loads((Path(folder) / "config.json").read_text(encoding="utf-8"))
    assert config["hidden_size"] == 384 and config["num_hidden_layers"] == 6


def test_hub_ids_pass_through_and_paths_are_checked(tmp_path):
    assert resolve_encoder("roberta-base") == "roberta-base"
    assert resolve_encoder("FacebookAI/roberta-base") == "FacebookAI/roberta-base"
    with pytest.raises(LcrError, match="does not exist"):
        check_encoder(str(tmp_path / "nothere"))
    with pytest.raises(LcrError, match="no config.json"):
        check_encoder(str(tmp_path))
    (tmp_path / "config.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(LcrError, match="could not load encoder"):
        load_encoder(str(tmp_path))


def test_load_encoder_returns_model_and_tokenizer(tmp_path):
    from tests.tiny_encoder import make_tiny_encoder

    folder = make_tiny_encoder(tmp_path / "enc", hidden_size=16)
    model, tokenizer = load_encoder(folder)
    batch = tokenizer(["wheat exports grew"], return_tensors="pt")
    hidden = model(**batch).last_hidden_state
    assert hidden.shape[0] == 1 and hidden.shape[-1] == 16
