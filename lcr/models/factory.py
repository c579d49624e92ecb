"""Build and load any model variant: LabelCoRank and its ablations, ``roberta``, the neural
baselines.

The one module that knows every model class (:mod:`lcr.models.labelcorank` and :mod:`lcr.models.baselines` know
nothing of each other; both share :mod:`lcr.models.base`). Variant names and families come from
:mod:`lcr.models.variants`.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import nn

from lcr.models.baselines.common import BaselineConfig, build_baseline, load_baseline
from lcr.errors import LcrError
from lcr.models.labelcorank import LabelCoRank, LabelCoRankConfig, RobertaBaseline
from lcr.models.base import CONFIG_NAME, FORMAT, WEIGHTS_NAME
from lcr.models.variants import (BASELINE_VARIANTS, LABEL_TEXT_VARIANTS, MODEL_VARIANTS, VARIANT_FLAGS,
                                 WORD_VARIANTS, reads_label_texts)


def _num_labels(cooc, freq_rank) -> int | None:
    if freq_rank is not None:
        return len(freq_rank)
    if cooc is not None:
        return int(cooc.shape[0])
    return None


def _baseline_config(params, num_labels: int, tokenizer):
    """A baseline's config from training settings; word-level models take their vocabulary
    size and padding id from the word tokenizer."""
    if params.variant not in WORD_VARIANTS:
        return BaselineConfig.from_params(params, num_labels)
    if tokenizer is None:
        raise LcrError(f"build_model: {params.variant} is word-level: pass its word tokenizer "
                       "(lcr.models.baselines.words.build_word_tokenizer)")
    return BaselineConfig.from_params(params, num_labels, vocab_size=len(tokenizer),
                                      pad_token_id=tokenizer.pad_token_id)


def build_model(variant, config=None, encoder=None, cooc=None, freq_rank=None, tokenizer=None,
                label_texts: list[str] | None = None) -> nn.Module:
    """Build a model variant around an encoder.

    Two call forms:
    ``build_model("no_pos", config, encoder, cooc, freq_rank)`` with a
    :class:`LabelCoRankConfig` (or a dict of its fields; a
    :class:`lcr.models.baselines.common.BaselineConfig` for the baselines of :mod:`lcr.models.baselines`), or
    ``build_model(train_params, encoder, cooc=..., freq_rank=...)`` with a
    :class:`lcr.config.TrainParams`, K taken from ``freq_rank`` (or ``cooc``).

    Args:
        variant: ``labelcorank``, ``no_cooc``, ``no_rank``, ``no_pos``, ``no_rerank`` (the
            ablations; they set the config's ``use_*`` flags), ``roberta`` (the baseline) or
            one of :data:`lcr.models.variants.BASELINE_VARIANTS`.
        config: the model settings.
        encoder: a Hugging Face encoder (see :func:`lcr.models.encoder.load_encoder`); None for the
            word-level baselines.
        cooc: the co-occurrence matrix M (K x K).
        freq_rank: label -> training-frequency rank (K,), 0 = most frequent.
        tokenizer: the tokenizer; the word-level baselines take their vocabulary size from it
            (params form), ``bertxml`` its [CLS] id (and so do LabelCoRank and ``roberta`` with
            ``summary_tokens`` > 1), ``ligcn`` and ``gudn`` tokenise the label texts with it.
        label_texts: one text per label, in label-index order (the store's label names:
            :func:`lcr.models.baselines.label_text.label_texts`); needed by ``ligcn`` (its label
            nodes and label-label edges), ``gudn`` (its guide inputs) and the LabelCoRank family
            with ``label_init: names`` (its label embedding M_f); ignored by the others.

    Raises:
        LcrError: unknown variant, gamma > K, missing label statistics, num_heads not dividing
            the hidden size, bad baseline settings, a label-text baseline without its texts.
    """
    if not isinstance(variant, str):  # build_model(train_params, encoder, cooc=..., freq_rank=...)
        params = variant
        if encoder is None and isinstance(config, nn.Module):
            encoder, config = config, None
        variant = params.variant
        if config is None:
            num_labels = _num_labels(cooc, freq_rank)
            if num_labels is None:
                raise LcrError("build_model: pass freq_rank or cooc so that K is known")
            config = (_baseline_config(params, num_labels, tokenizer) if variant in BASELINE_VARIANTS
                      else LabelCoRankConfig.from_params(params, num_labels))
    if variant not in MODEL_VARIANTS:
        raise LcrError(f"unknown variant '{variant}'; valid variants: {', '.join(MODEL_VARIANTS)}")
    if variant in BASELINE_VARIANTS:
        model = build_baseline(variant, config, encoder)
        if variant == "bertxml" and tokenizer is not None and tokenizer.cls_token_id is not None:
            model.init_extra_from(tokenizer.cls_token_id)
        if variant in LABEL_TEXT_VARIANTS:
            if label_texts is None or tokenizer is None:
                raise LcrError(f"build_model: {variant} reads a text per label: pass label_texts and the "
                               "tokenizer (lcr.models.baselines.label_text.label_texts)")
            model.set_label_texts(tokenizer, list(label_texts))
        return model
    if encoder is None:
        raise LcrError("build_model: an encoder is needed")
    if isinstance(config, dict):
        config = LabelCoRankConfig(**config)
    if variant == "roberta":
        model = RobertaBaseline(config, encoder)
    else:
        use_cooc, use_rank, use_pos = VARIANT_FLAGS[variant]
        config = config.model_copy(update={"use_cooc": use_cooc, "use_rank": use_rank, "use_pos": use_pos})
        model = LabelCoRank(config, encoder, cooc=cooc, freq_rank=freq_rank, variant=variant)
        if reads_label_texts(variant, config.label_init):
            if label_texts is None or tokenizer is None:
                raise LcrError(f"build_model: {variant} with label_init names starts its label embedding from "
                               "a text per label: pass label_texts and the tokenizer "
                               "(lcr.models.baselines.label_text.label_texts)")
            model.init_labels_from_texts(tokenizer, list(label_texts))
    if tokenizer is not None and tokenizer.cls_token_id is not None:
        model.init_summary_from(tokenizer.cls_token_id)  # the extra summary tokens, if any
    return model


def load_model(directory: str | Path, encoder=None) -> nn.Module:
    """Load a model saved with ``save_pretrained``; nothing is unpickled or downloaded.

    Args:
        directory: the folder with ``config.json`` and ``model.safetensors``.
        encoder: how to build the encoder skeleton before the saved weights are loaded into it:
            None (from the saved encoder config), a Hugging Face config, or an encoder module
            (used as is: its weights are overwritten). Ignored by the word-level baselines,
            which have no encoder.

    Raises:
        LcrError: the folder is missing or is not a saved lcr model.
    """
    from safetensors import safe_open
    from safetensors.torch import load_model as load_weights
    from transformers import AutoConfig, AutoModel, PretrainedConfig

    directory = Path(directory)
    config_path, weights_path = directory / CONFIG_NAME, directory / WEIGHTS_NAME
    if not config_path.exists() or not weights_path.exists():
        raise LcrError(f"{directory} is not a saved lcr model ({CONFIG_NAME} and {WEIGHTS_NAME} expected)")
    meta = json.loads(config_path.read_text(encoding="utf-8"))
    if meta.get("format") != FORMAT:
        raise LcrError(f"{config_path} was not written by lcr's save_pretrained")
    if meta.get("variant") in BASELINE_VARIANTS:
        return load_baseline(meta, weights_path, encoder)
    config = LabelCoRankConfig(**meta["config"])
    if encoder is None:
        encoder_config = dict(meta["encoder"])
        encoder = AutoConfig.for_model(encoder_config.pop("model_type"), **encoder_config)
    if isinstance(encoder, PretrainedConfig):
        encoder = AutoModel.from_config(encoder)
    variant = meta["variant"]
    if variant == "roberta":
        model = RobertaBaseline(config, encoder, variant=variant)
    else:
        with safe_open(str(weights_path), framework="pt") as handle:
            cooc = torch.sparse_coo_tensor(handle.get_tensor("cooc_indices"), handle.get_tensor("cooc_values"),
                                           (config.num_labels, config.num_labels), check_invariants=True).t()  # back to M
            freq_rank = handle.get_tensor("freq_rank")
        model = LabelCoRank(config, encoder, cooc=cooc, freq_rank=freq_rank, variant=variant)
    load_weights(model, str(weights_path), strict=True)
    return model
