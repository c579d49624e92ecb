"""The models' hyper-parameters, declared once (pydantic; no torch).

:class:`lcr.config.TrainParams` (what ``params.yaml`` and ``--set`` set) inherits these groups,
and the model configs inherit them too (:class:`lcr.models.labelcorank.LabelCoRankConfig`,
:class:`lcr.models.baselines.common.BaselineConfig`), so a model config is built from the training
settings by name (:func:`pick`), never field by field, and every model setting can be set in
``params.yaml``.

Why pydantic: it coerces what YAML and the command line hand over (``lr=5e-5`` is a string to
YAML 1.1) to the declared type, refuses unknown keys and wrong types with the key and the value,
and is already a dependency of MLflow, so it adds nothing to install.
"""

from __future__ import annotations

import types
import typing
from typing import Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from lcr.errors import LcrError


class Settings(BaseModel):
    """A settings object: unknown keys are refused, values are coerced to the declared types."""

    model_config = ConfigDict(extra="forbid", protected_namespaces=())

    @classmethod
    def parse(cls, values: dict | None, where: str):
        """Build from a mapping; an unknown key or a wrong type becomes an :class:`LcrError`
        naming ``where``, the key, the value and the expected type."""
        if values is None:
            return cls()
        if not isinstance(values, dict):
            raise LcrError(f"{where}: expected a mapping, got {type(values).__name__}")
        known = {info.alias or name for name, info in cls.model_fields.items()}  # the file's names
        unknown = sorted(set(map(str, values)) - known)
        if unknown:
            raise LcrError(f"{where}: unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        try:
            return cls.model_validate(values)
        except ValidationError as exc:
            raise LcrError(_message(cls, exc, values, where)) from None


def _type_name(annotation) -> str:
    """``float | None`` -> ``float or null``; ``list[int]`` -> ``list of int``."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in typing.get_args(annotation))
    if annotation is type(None):
        return "null"
    if origin is typing.Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(annotation))
    if origin in (list, tuple):
        return f"list of {_type_name(typing.get_args(annotation)[0])}"
    if annotation in (list, tuple):
        return "list"
    if origin is dict or annotation is dict:
        return "mapping"
    return getattr(annotation, "__name__", str(annotation))


def _message(cls, exc: ValidationError, values: dict, where: str) -> str:
    """The first error of a validation, in the words of the settings file."""
    error = exc.errors()[0]
    key = str(error["loc"][0]) if error["loc"] else ""
    fields = {info.alias or name: info for name, info in cls.model_fields.items()}
    if key in fields and key in values:
        expected = _type_name(fields[key].annotation)
        return f"{where}: {key} = {values[key]!r} is not a valid {expected}"
    return f"{where}: {error['msg']}"


class SharedModelSettings(Settings):
    """Settings that LabelCoRank and the baselines both read.

    Attributes:
        num_heads: attention heads (LabelCoRank's eta; the Transformer, MATCH and the
            Star-Transformer).
        dropout: the dropout of eq. 12 (LabelCoRank); the baselines' embedding and output dropout.
        label_text: what text stands for a label, for the models that read one (``ligcn``,
            ``gudn``, and LabelCoRank with ``label_init: names``): ``names`` (the store's label
            names; a store without names is refused) or ``ids`` (the label ids as text).
        label_name_length: tokens kept per label text (longer names are cut).
    """

    num_heads: int = 8
    dropout: float = 0.1
    label_text: Literal["names", "ids"] = "names"
    label_name_length: int = 16


class LabelCoRankSettings(SharedModelSettings):
    """LabelCoRank's hyper-parameters (see :class:`lcr.models.labelcorank.LabelCoRankConfig` for each)."""

    gamma: int = 30
    alpha: float = 0.3
    beta: float = 0.3
    attention_dropout: float = 0.0
    ffn_dim: int | None = None
    selection: str = "threshold"
    fill_to_gamma: bool = False
    classifier_rank: int | None = None
    pooling: str = "cls"
    residual: bool = False
    final_head: Literal["dense", "per_label", "per_label_alone"] = "dense"
    detach_first: bool = False
    summary_tokens: int = 1
    query_confidence: bool = False
    rank_loss_weight: float = 0.0
    rerank_noise: float = 0.0
    rerank_swap: float = 0.0
    rerank_focal: float = 0.0
    first_temperature: float = 1.0
    label_init: Literal["random", "names"] = "random"
    final_blend: float = 0.0
    label_interaction_layers: int = 0
    label_attention: Literal["head", "encoder", "encoder_readers"] = "head"
    reader_weights: Literal["shared", "own"] = "shared"
    reader_keys: Literal["encoder", "own"] = "encoder"
    reader_text_grad: bool = True
    separate_stages: bool = False

    def second_stage_checks(self) -> list[tuple[bool, str]]:
        """The ranges of the reranking stage's extensions: the checks that the model config and the
        training settings both make, as ``(ok, message)`` pairs."""
        return [
            (self.rank_loss_weight >= 0.0, "rank_loss_weight must be at least 0"),
            (self.rerank_noise >= 0.0, "rerank_noise must be at least 0"),
            (0.0 <= self.rerank_swap <= 1.0, "rerank_swap must be in [0, 1]"),
            (self.rerank_focal >= 0.0, "rerank_focal must be at least 0"),
            (self.first_temperature > 0.0, "first_temperature must be above 0"),
            (self.final_blend <= 1.0, "final_blend must be at most 1"),
            (self.label_interaction_layers >= 0, "label_interaction_layers must be at least 0"),
        ]

    def reading_checks(self) -> list[tuple[bool, str]]:
        """How the label queries read the text: the checks that the model config and the training
        settings both make, as ``(ok, message)`` pairs."""
        return [
            (self.label_attention == "head" or self.summary_tokens == 1,
             f"label_attention {self.label_attention!r} needs summary_tokens 1 (the label tokens are the encoder's); "
             f"summary_tokens is {self.summary_tokens}"),
            (self.reader_weights == "shared" or self.label_attention == "encoder_readers",
             f"reader_weights {self.reader_weights!r} needs label_attention 'encoder_readers' (only readers have "
             f"weights of their own); label_attention is {self.label_attention!r}"),
            (self.reader_keys == "encoder" or self.reader_weights == "own",
             f"reader_keys {self.reader_keys!r} projects the text with the readers' own weights and needs "
             f"reader_weights 'own'; reader_weights is {self.reader_weights!r}"),
            (self.reader_text_grad or self.reader_keys == "own",
             f"reader_text_grad false detaches the text states that the readers project with their own keys and "
             f"values and needs reader_keys 'own'; reader_keys is {self.reader_keys!r}"),
            (not self.separate_stages or self.label_attention == "head" or self.reader_keys == "own",
             f"separate_stages keeps the reranking stage out of the first stage's weights, so its label queries "
             f"must read the text with weights of their own: label_attention 'head', or 'encoder_readers' with "
             f"reader_weights 'own' and reader_keys 'own'; label_attention is {self.label_attention!r}, "
             f"reader_keys {self.reader_keys!r}"),
        ]


class BaselineSettings(SharedModelSettings):
    """The neural baselines' hyper-parameters (see :class:`lcr.models.baselines.common.BaselineConfig`).

    The settings of the two label-text baselines (declared here only; ``label_text`` and
    ``label_name_length`` are shared: :class:`SharedModelSettings`):

    Attributes:
        label_neighbours: ``ligcn``: label-label edges per label (its most cosine-similar labels).
        cls_layers: ``gudn``: the [CLS] states of the encoder's last n layers, concatenated.
        guide_weight: ``gudn``: weight of the guide terms (the guide input's BCE and the pull of
            the text's features towards the guide's) in the loss.
        label_reinforcement: ``gudn``: the guide input is the gold label texts followed by the
            document (True), or the gold label texts alone (False).
    """

    max_length: int = 512
    embed_dim: int = 256
    hidden_dim: int = 256
    num_layers: int = 1
    cnn_windows: list[int] = [2, 4, 8]
    cnn_filters: int = 128
    cnn_pool_chunks: int = 2
    bottleneck_dim: int = 512
    num_probes: int = 8
    num_cls_tokens: int = 4
    label_neighbours: int = 10
    cls_layers: int = 1
    guide_weight: float = 1.0
    label_reinforcement: bool = True


def pick(settings: BaseModel, group: type[BaseModel]) -> dict:
    """The values of ``settings`` (e.g. a :class:`lcr.config.TrainParams`) for the fields of
    ``group`` (e.g. :class:`LabelCoRankSettings`): how a model config is built from the training
    settings without copying fields by hand."""
    return settings.model_dump(include=set(group.model_fields))
