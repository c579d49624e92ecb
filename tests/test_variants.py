"""lcr.models.variants: every variant in exactly one family, and the names everything else uses."""

from __future__ import annotations

import pytest

from lcr.models import variants


def test_every_variant_has_one_family_and_a_paper_row():
    assert len(set(variants.VARIANTS)) == len(variants.VARIANTS)
    for variant in variants.VARIANTS:
        assert variant in variants.PAPER_ROWS
        assert variants.family(variant) in ("labelcorank", "roberta", "encoder", "word", "linear")
    assert [v for v in variants.VARIANTS if variants.uses_gamma(v)] == list(variants.LABELCORANK_FAMILY)
    assert set(variants.BASELINE_MODULES) == set(variants.BASELINE_VARIANTS)
    assert not variants.uses_encoder("xml-cnn") and variants.uses_encoder("bertxml") and variants.uses_encoder("no_pos")
    assert not variants.uses_encoder("tfidf") and variants.is_word_level("match")
    with pytest.raises(KeyError):
        variants.family("gpt-4o")


def test_the_factory_and_the_configuration_use_these_names():
    from lcr import config
    from lcr.models import factory

    assert config.VARIANTS is variants.VARIANTS
    assert factory.MODEL_VARIANTS is variants.MODEL_VARIANTS
    assert set(variants.MODEL_VARIANTS) | set(variants.LINEAR_VARIANTS) == set(config.VARIANTS)
