"""Training and evaluation of LabelCoRank and the baselines (``lcr train``).

One function, :func:`train`, runs a whole training job: it validates its inputs before any long
work, tokenises the splits, trains with length-bucketed dynamic padding, gradient accumulation,
clipping, an optional warm-up/decay schedule and bf16 autocast, evaluates on dev after every
epoch (early stopping and best-checkpoint selection on ``select_metric``), and finally evaluates
the best model on the evaluation split and its head/tail subsets and writes the predictions.

Distributed: started under ``torchrun --nproc_per_node=N`` it runs DistributedDataParallel (NCCL
on GPU, gloo on CPU). Every optimiser step consumes one *global* batch of
``batch_size * world_size`` documents, each process taking its slice, so N processes with batch
B follow the same trajectory as one process with batch N*B. Evaluation splits documents across
processes without the padding a DistributedSampler adds, so nothing is counted twice. Only rank 0
logs and writes.

Checkpoints (``checkpoint.pt``) are written atomically every ``checkpoint_every`` steps and at
every epoch end, with the optimiser, scheduler and RNG states and the position inside the epoch;
``resume=True`` continues a killed run and reaches the same weights as an uninterrupted run.
"""

from __future__ import annotations

import json
import math
import os
import random
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from lcr import runs
from lcr.report import metrics
from lcr.atomic import atomic_open, atomic_path
from lcr.datasets.batches import (EncodedSplit, check_metadata, collate, encode_split, length_bucketed_batches,
                         iter_texts, shard)
from lcr.config import TrainParams
from lcr.datasets import store
from lcr.errors import LcrError
from lcr.report.predictions import write_predictions
from lcr.runs import BEST_DIR, SETTINGS_FILE
from lcr.train import cross_fit
from lcr.models.variants import (LABEL_TEXT_VARIANTS, LINEAR_VARIANTS, METADATA_VARIANTS, is_word_level, reads_label_texts,
                                 uses_gamma)

CHECKPOINT = "checkpoint.pt"
RERANK_GROUP = "rerank_"  # the name prefix of the reranking stage's parameter groups (rerank_epochs)


# --------------------------------------------------------------------------------------------
# Set-up


def _is_layer_norm(module: torch.nn.Module) -> bool:
    # nn.LayerNorm, and Hugging Face's own LayerNorm classes (e.g. T5LayerNorm, RMSNorm)
    return isinstance(module, torch.nn.LayerNorm) or "LayerNorm" in type(module).__name__ \
        or "RMSNorm" in type(module).__name__


def parameter_groups(model: torch.nn.Module, params: TrainParams) -> list[dict]:
    """AdamW parameter groups, as practitioners fine-tune a pretrained encoder.

    * The pretrained encoder (``model.encoder``, and LabelCoRank's ``reader_encoder``, a copy of
      it, unless ``reader_lr`` gives the readers a rate of their own) learns at ``lr``;
      everything that starts from random on top of it (W1/W2, M_f, M_pos, the eq. 12 FFN, the
      attention projections, W5, a baseline's head) at ``head_lr``. A model without a
      pretrained encoder (the word-level baselines) is new throughout and learns at ``lr``, its
      own block's rate.
    * Biases and LayerNorm weights get no weight decay; every other parameter ``weight_decay``.
    * With ``rerank_epochs``, the reranking stage's parameters are grouped apart from the first
      stage's (``rerank_`` before the name), since the two follow schedules of different lengths.

    Returns:
        Up to six groups (twelve with ``rerank_epochs``), each ``{"name", "params", "lr",
        "weight_decay"}`` (empty ones are left out); ``name`` is ``encoder``, ``readers`` (with
        ``reader_lr``) or ``head``, with ``/no_decay`` for the undecayed.
    """
    encoder = getattr(model, "encoder", None)
    readers = getattr(model, "reader_encoder", None)
    readers_part = "encoder" if params.reader_lr is None else "readers"
    part_of = {id(p): part for part, module in ((readers_part, readers), ("encoder", encoder)) if module is not None
               for p in module.parameters()}  # the encoder's own parameters last: they win
    head_lr = params.head_lr if (encoder is not None and params.head_lr is not None) else params.lr
    rates = {"encoder": params.lr, "readers": params.reader_lr, "head": head_lr}
    undecayed = set()
    for module in model.modules():
        for name, parameter in module.named_parameters(recurse=False):
            if name.endswith("bias") or _is_layer_norm(module):
                undecayed.add(id(parameter))
    first_stage = ({id(p) for p in model.first_stage_parameters()}
                   if params.rerank_epochs and hasattr(model, "first_stage_parameters") else None)
    groups: dict[str, dict] = {}
    seen = set()
    for parameter in model.parameters():
        if id(parameter) in seen or not parameter.requires_grad:
            continue
        seen.add(id(parameter))
        part = part_of.get(id(parameter), "head")
        decay = id(parameter) not in undecayed
        stage = "" if first_stage is None or id(parameter) in first_stage else RERANK_GROUP
        name = stage + (part if decay else f"{part}/no_decay")
        group = groups.setdefault(name, {"name": name, "params": [], "lr": rates[part],
                                         "weight_decay": params.weight_decay if decay else 0.0})
        group["params"].append(parameter)
    return list(groups.values())


def build_optimizer(model: torch.nn.Module, params: TrainParams, device: torch.device,
                    implementation: str = "auto") -> torch.optim.AdamW:
    """AdamW over :func:`parameter_groups`.

    Args:
        implementation: ``auto`` = the fused kernel (one kernel over all parameters; the whole
            training step against the per-parameter loop: ``bench/BENCHMARKS.md``, train-step)
            where this torch supports it on the device, else ``foreach``; ``fused``,
            ``foreach`` or ``loop`` force one.
    """
    groups = parameter_groups(model, params)
    if implementation == "loop":
        return torch.optim.AdamW(groups, lr=params.lr, foreach=False)
    if implementation == "foreach":
        return torch.optim.AdamW(groups, lr=params.lr, foreach=True)
    try:
        return torch.optim.AdamW(groups, lr=params.lr, fused=True)
    except (RuntimeError, ValueError, TypeError):
        if implementation == "fused":
            raise
        return torch.optim.AdamW(groups, lr=params.lr, foreach=True)


def text_composer(params: TrainParams):
    """How a variant reads a document: ``compose(text, meta) -> text`` for the variants that
    read metadata (MATCH: metadata tokens in front of the words), None for text only."""
    if params.variant not in METADATA_VARIANTS:
        return None
    from functools import partial

    from lcr.models.baselines.match import metadata_text

    return partial(metadata_text, max_length=params.max_length)


@dataclass
class DistEnv:
    """Where this process stands in a (possibly single-process) job."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def _init_distributed(device: torch.device) -> DistEnv:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistEnv()
    import torch.distributed as dist

    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return DistEnv(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))


def _device(params: TrainParams) -> torch.device:
    if params.device == "cuda" or (params.device == "auto" and torch.cuda.is_available()):
        if not torch.cuda.is_available():
            raise LcrError("device 'cuda' was asked for, but torch sees no CUDA device")
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    return torch.device("cpu")


def _use_bf16(params: TrainParams, device: torch.device) -> bool:
    if params.bf16 in (True, "true"):
        return True
    if params.bf16 in (False, "false"):
        return False
    return device.type == "cuda" and torch.cuda.is_bf16_supported()


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (CPU and CUDA)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def label_texts_of(dataset_dir: str | Path, params: TrainParams) -> list[str] | None:
    """The text of every label that a label-text baseline (``ligcn``, ``gudn``) or LabelCoRank
    with ``label_init: names`` reads, from the store's ``label_vocab.tsv`` as the ``label_text``
    setting says; None for the other variants.

    Raises:
        LcrError: ``label_text: names`` on a store without label names.
    """
    if not reads_label_texts(params.variant, params.label_init):
        return None
    from lcr.models.baselines.label_text import label_texts

    ids, names = store.read_vocab(dataset_dir)
    who = params.variant if params.variant in LABEL_TEXT_VARIANTS else f"{params.variant} with label_init: names"
    return label_texts(ids, names, params.label_text, vocab_path=Path(dataset_dir) / store.VOCAB_FILE, variant=who)


def check_inputs(dataset_dir: str | Path, params: TrainParams, eval_split: str = "test"):
    """Validate everything a training job needs before any long work starts.

    Returns:
        (label vocabulary, label artifacts).

    Raises:
        LcrError: unknown variant, a dataset that was not fetched or prepared, gamma larger than
            the number of labels, an encoder path that does not exist, an unknown split, a
            label-text baseline on a store without label names.
    """
    from lcr.models.encoder import check_encoder
    from lcr.labels import LabelArtifacts

    params.validate()
    dataset_dir = Path(dataset_dir)
    vocab, _ = store.read_vocab(dataset_dir)
    labels_dir = dataset_dir / store.LABELS_DIR
    if not labels_dir.exists():
        raise LcrError(f"{dataset_dir.name} is not prepared ({labels_dir} is missing): "
                       f"run `lcr prepare {dataset_dir.name}` first")
    store.split_path(dataset_dir, eval_split)  # rejects an unknown split name
    if params.variant in METADATA_VARIANTS:
        check_metadata(dataset_dir, "train")
    label_texts_of(dataset_dir, params)  # RoBERTa-LiGCN, GUDN, label_init names: the store has label names
    if uses_gamma(params.variant) and params.gamma > len(vocab):
        raise LcrError(f"gamma = {params.gamma} is larger than the number of labels K = {len(vocab)}")
    if not is_word_level(params.variant) and params.variant not in LINEAR_VARIANTS:  # no encoder there
        check_encoder(params.encoder)
    artifacts = LabelArtifacts.load(labels_dir)
    return vocab, artifacts


# --------------------------------------------------------------------------------------------
# Prediction


@torch.no_grad()
def predict(model, split: EncodedSplit, *, batch_size: int, device: torch.device, top_k: int,
            pad_token_id: int, env: DistEnv = DistEnv(), bf16: bool = False,
            progress: bool = False, selection: bool = False):
    """Rank labels for every document of a split, keeping only the top-k per batch.

    No dense N x K score matrix is ever held: each batch's scores are cut to top-k at once.
    Under DDP each process scores its share of the documents and the shares are gathered.

    Args:
        selection: also keep, for a LabelCoRank-family model, the first prediction's top-k,
            the label sequence S with its mask and |S2| (what :func:`lcr.report.metrics.selection_diagnostics`
            reads).

    Returns:
        (topk, scores): int64 (N x top_k) label indices and float32 (N x top_k) sigmoid scores,
        in the split's document order; with ``selection`` (and a model that selects), a third
        item ``{"s1_topk", "selected", "selected_mask", "s2_size"}`` of N-row arrays, else None.
    """
    from tqdm.auto import tqdm

    from lcr.models.labelcorank import top_labels

    model.eval()
    mine = shard(np.arange(len(split)), env.rank, env.world_size, pad=False)
    lengths = split.lengths[mine]
    k = min(top_k, split.labels.shape[1])
    # Filled in place: lists of per-batch arrays would fragment the heap between the freed
    # B x K score blocks and keep gigabytes resident at PubMed size.
    topk = np.zeros((len(mine), k), dtype=np.int64)  # (N_mine, k)
    scores = np.zeros((len(mine), k), dtype=np.float32)  # (N_mine, k)
    batches = length_bucketed_batches(lengths, batch_size, shuffle=False)  # positions in `mine`
    selects = selection and hasattr(model, "s2_sizes")
    if selects:
        gamma = model.config.gamma
        extra = {"s1_topk": np.zeros((len(mine), k), dtype=np.int64),  # (N_mine, k)
                 "selected": np.zeros((len(mine), gamma), dtype=np.int64),  # (N_mine, gamma)
                 "selected_mask": np.zeros((len(mine), gamma), dtype=bool),  # (N_mine, gamma)
                 "s2_size": np.zeros(len(mine), dtype=np.int64)}  # (N_mine,)
    for positions in tqdm(batches, desc="predict", disable=not progress, leave=False):
        batch = collate(split, mine[positions], pad_token_id, labels=False)
        batch = {name: t.to(device) for name, t in batch.items()}
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            out = model(batch["input_ids"], batch["attention_mask"])
        top_scores, idx = top_labels(out.logits, k)  # (B, k), (B, k)
        topk[positions] = idx.cpu().numpy()
        scores[positions] = top_scores.cpu().numpy()
        if selects:
            extra["s1_topk"][positions] = top_labels(out.logits1, k)[1].cpu().numpy()
            extra["selected"][positions] = out.selected.cpu().numpy()
            extra["selected_mask"][positions] = out.selected_mask.cpu().numpy()
            extra["s2_size"][positions] = model.s2_sizes(out.logits1).cpu().numpy()
    arrays = {"topk": topk, "scores": scores, **(extra if selects else {})}
    docs = mine
    if env.world_size > 1:
        import torch.distributed as dist

        gathered = [None] * env.world_size
        dist.all_gather_object(gathered, (docs, arrays))
        docs = np.concatenate([g[0] for g in gathered])
        arrays = {name: np.concatenate([g[1][name] for g in gathered]) for name in arrays}
    model.train()
    if env.world_size > 1:
        order = np.argsort(docs, kind="stable")
        arrays = {name: values[order] for name, values in arrays.items()}
    topk, scores = arrays.pop("topk"), arrays.pop("scores")
    if not selection:
        return topk, scores
    return topk, scores, (arrays if selects else None)


def pad_id_of(tokenizer) -> int:
    """The id that pads a batch: the tokenizer's pad token, or 0 when it has none."""
    return tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0


@torch.no_grad()
def first_logits(model, split: EncodedSplit, *, batch_size: int, device: torch.device, pad_token_id: int,
                 bf16: bool = False) -> np.ndarray:
    """The first prediction's logits for every document of a split (N x K float16, in the
    split's order): what cross-fitting keeps of a fold model (:mod:`lcr.train.cross_fit`; the
    caller checks that N x K fits). Every process scores the whole split."""
    model.eval()
    logits = np.zeros((len(split), split.labels.shape[1]), dtype=np.float16)  # (N, K)
    for positions in length_bucketed_batches(split.lengths, batch_size, shuffle=False):
        batch = {name: t.to(device) for name, t in collate(split, positions, pad_token_id, labels=False).items()}
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            out = model(batch["input_ids"], batch["attention_mask"])
        logits[positions] = out.logits1.float().cpu().numpy()
    return logits


def _every_process_share(batch: np.ndarray, logits: torch.Tensor, env) -> list[tuple[np.ndarray, torch.Tensor]]:
    """Each process's documents of a global training batch with their logits (B x K, no
    gradient): this process's alone, or with several processes every one's (an all-gather)."""
    logits = logits.detach().float()  # (B, K)
    if env.world_size == 1:
        return [(shard(batch, 0, 1, pad=True), logits)]
    import torch.distributed as dist

    gathered = [torch.empty_like(logits) for _ in range(env.world_size)]  # world x (B, K)
    dist.all_gather(gathered, logits.contiguous())
    return [(shard(batch, rank, env.world_size, pad=True), part) for rank, part in enumerate(gathered)]


def _cross_fit(dataset_dir: Path, output_dir: Path, params: TrainParams, vocab, *, eval_split: str,
               resume: bool, progress: bool | None, token_cache: bool) -> np.ndarray:
    """Out-of-fold first-prediction logits of the training documents (N x K), for
    ``cross_fit_folds`` (:mod:`lcr.train.cross_fit`): fold model i (the ``roberta`` variant, the
    same settings) trains in ``<run>/cross_fit/fold-i`` on every fold but i and scores fold i.
    Saved once; a resumed or repeated run reads them back."""
    from lcr.models.encoder import load_encoder
    from lcr.models.factory import load_model

    _, tokenizer = load_encoder(params.encoder)
    split = _cap(encode_split(dataset_dir, "train", tokenizer, vocab, params.max_length,
                              compose=text_composer(params), cache=token_cache),
                 params.max_train_docs, params.seed)
    num_labels = split.labels.shape[1]
    cross_fit.check_size(len(split), num_labels)
    saved = cross_fit.load_logits(output_dir, len(split), num_labels)
    if saved is not None:
        return saved
    folds = cross_fit.fold_of(len(split), params.cross_fit_folds, params.seed)
    logits = np.zeros((len(split), num_labels), dtype=np.float16)  # (N, K)
    device, pad_id = _device(params), pad_id_of(tokenizer)
    for fold in range(params.cross_fit_folds):
        held = np.flatnonzero(folds == fold)
        print(f"[lcr] cross-fit {fold + 1}/{params.cross_fit_folds}: a first-stage model on "
              f"{len(split) - len(held):,} training documents scores the other {len(held):,}",
              file=sys.stderr, flush=True)
        fold_params = params.model_copy(update={"variant": "roberta", "cross_fit_fold": fold}).validate()
        result = train(dataset_dir, cross_fit.fold_dir(output_dir, fold), fold_params, eval_split=eval_split,
                       resume=resume, progress=progress, token_cache=token_cache)
        model = load_model(Path(result["output_dir"]) / BEST_DIR / "model").to(device)
        logits[held] = first_logits(model, split.subset(held), batch_size=params.eval_batch_size, device=device,
                                    pad_token_id=pad_id, bf16=_use_bf16(params, device))
        del model
    cross_fit.save_logits(output_dir, logits)
    return logits


def save_model_folder(folder: Path, model, tokenizer, dataset_dir: Path, params: TrainParams) -> None:
    """A self-contained model folder (what :class:`lcr.serve.predictor.Predictor` and serving load):
    weights and configs, the tokenizer, the label vocabulary with names, and the inference
    settings. Written to a temporary folder, then renamed into place."""
    import shutil

    from lcr.atomic import atomic_dir

    with atomic_dir(folder) as tmp:
        model.save_pretrained(tmp / "model")
        tokenizer.save_pretrained(str(tmp / "tokenizer"))
        shutil.copyfile(dataset_dir / "label_vocab.tsv", tmp / "label_vocab.tsv")
        (tmp / "inference.json").write_text(json.dumps({
            "dataset": dataset_dir.name, "variant": params.variant, "max_length": params.max_length,
            "encoder": None if is_word_level(params.variant) else params.encoder}, indent=2), encoding="utf-8")


# --------------------------------------------------------------------------------------------
# Checkpoints


def _save_checkpoint(path: Path, state: dict) -> None:
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def _load_checkpoint(path: Path) -> dict:
    # weights_only: a checkpoint holds tensors and plain Python values, nothing to unpickle.
    return torch.load(path, map_location="cpu", weights_only=True)


def _rng_state() -> dict:
    return {"torch": torch.get_rng_state(), "python": list(random.getstate()[1]),
            "python_version": random.getstate()[0], "python_gauss": random.getstate()[2]}


def _set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    random.setstate((state["python_version"], tuple(state["python"]), state["python_gauss"]))


# --------------------------------------------------------------------------------------------
# Training

PROGRESS_SECONDS = 30.0  # without a terminal, a plain progress line at most this often


def _duration(seconds: float) -> str:
    seconds = int(max(0, seconds))
    return f"{seconds // 3600}h{seconds // 60 % 60:02d}m" if seconds >= 3600 else f"{seconds // 60}m{seconds % 60:02d}s"


class ProgressLines:
    """Plain progress lines on stderr for runs without a terminal (``nohup lcr train > run.log``),
    where progress bars stay silent: step of total, loss, documents per second, elapsed and
    remaining time, at most every ``every`` seconds; and one line per epoch with its dev metrics."""

    def __init__(self, total_steps: int, epochs: int, global_batch: int, *, enabled: bool,
                 every: float | None = None, stream=None):
        self.total, self.epochs, self.global_batch = total_steps, epochs, global_batch
        self.enabled, self.every = enabled, PROGRESS_SECONDS if every is None else every
        self.stream = stream if stream is not None else sys.stderr
        self.started = self.last = time.time()
        self.first_step: int | None = None

    def _print(self, text: str) -> None:
        print(f"[lcr] {text}", file=self.stream, flush=True)

    def step(self, epoch: int, step: int, loss) -> None:
        """After optimiser step ``step`` (1-based); prints when ``every`` seconds have passed."""
        if self.first_step is None:
            self.first_step = step - 1  # a resumed run counts its speed from where it resumed
        now = time.time()
        if not self.enabled or (now - self.last < self.every and step < self.total):
            return
        self.last = now
        done = step - self.first_step
        elapsed = now - self.started
        rate = done / elapsed if elapsed > 0 else 0.0  # steps per second
        remaining = (self.total - step) / rate if rate > 0 else 0.0
        self._print(f"epoch {epoch + 1}/{self.epochs} step {step}/{self.total} loss {float(loss):.4f} "
                    f"{rate * self.global_batch:.1f} docs/s elapsed {_duration(elapsed)} "
                    f"remaining {_duration(remaining)}")

    def epoch(self, epoch: int, dev: dict, metric: str) -> None:
        """The dev metrics of a finished epoch (always printed on the main process)."""
        if not dev:
            self._print(f"epoch {epoch + 1}/{self.epochs} done (no dev split)")
            return
        keys = [k for k in (metric, "P@1", "P@5", "s1_nDCG@5", "s1_P@1", "s_gold_coverage", "s_distinct_share")
                if k in dev]
        shown = ", ".join(f"{k} {dev[k]:.4f}" for k in dict.fromkeys(keys))
        self._print(f"epoch {epoch + 1}/{self.epochs} dev: {shown}")


def _group_schedules(optimizer, params: TrainParams, first_steps: int, total_steps: int) -> list:
    """Each parameter group's learning-rate factor by step: the schedule over ``total_steps``,
    except that with ``rerank_epochs`` the first stage's groups follow it over ``first_steps``
    (the plain fine-tune's), the reranking stage's over all ``total_steps``."""
    return [_schedule(params, total_steps if group["name"].startswith(RERANK_GROUP) else first_steps)
            for group in optimizer.param_groups]  # without rerank_epochs the two spans are the same


def _schedule(params: TrainParams, total_steps: int):
    warmup = int(params.warmup_ratio * total_steps)

    def factor(step: int) -> float:
        if params.schedule == "constant":
            return min(1.0, (step + 1) / warmup) if warmup else 1.0
        if step < warmup:
            return (step + 1) / warmup
        return max(0.0, (total_steps - step) / max(1, total_steps - warmup))

    return factor


def settings_block(params: TrainParams, sources: dict[str, str] | None, used: int, available: int) -> str:
    """The short block a training run starts with: what it trains on and with, and where every
    value that is not the built-in default came from."""
    sources = sources or {}

    def origin(*keys: str) -> str:
        found = [f"{key} from {sources[key]}" for key in keys if key in sources]
        return f"  ({'; '.join(found)})" if found else ""

    encoder = "none (word-level: a vocabulary counted on train)" if is_word_level(params.variant) else params.encoder
    rates = (f"{params.lr:g}" + (f", head {params.head_lr:g}" if params.head_lr is not None else "")
             + (f", readers {params.reader_lr:g}" if params.reader_lr is not None else ""))
    lines = [f"training {params.variant} (seed {params.seed})",
             f"  documents: {used:,} of {available:,} training documents" + origin("max_train_docs"),
             f"  epochs: {params.epochs}"
             + (f" + {params.rerank_epochs} of the reranking stage alone" if params.rerank_epochs else "")
             + origin("epochs", "rerank_epochs", "max_steps"),
             f"  tokens: {params.max_length}" + origin("max_length"),
             f"  encoder: {encoder}" + origin("encoder"),
             f"  learning rates: {rates}" + origin("lr", "head_lr", "reader_lr")]
    shown = {"max_train_docs", "epochs", "rerank_epochs", "max_steps", "max_length", "encoder", "lr", "head_lr", "reader_lr"}
    rest = [f"    {key} = {getattr(params, key)!r} ({where})" for key, where in sources.items() if key not in shown]
    if rest:
        lines += ["  other settings that are not the built-in defaults:", *rest]
    return "\n".join(lines)


def _cap(split: EncodedSplit, limit: int | None, seed: int) -> EncodedSplit:
    keep = store.capped_indices(len(split), limit, seed)
    return split if keep is None else split.subset(keep)


def word_tokenizer(dataset_dir: str | Path, params: TrainParams):
    """The word-level baselines' tokenizer, counted on the training documents the run trains
    on (the ``max_train_docs`` cap applied as in :func:`train`), so no word of the evaluation
    splits leaks into the vocabulary. Deterministic: a resumed run rebuilds the same ids."""
    from lcr.models.baselines.words import build_word_tokenizer

    n_docs = store.split_length(dataset_dir, "train")
    if n_docs == 0:
        raise LcrError(f"{Path(dataset_dir).name}: the train split is empty")
    keep = store.capped_indices(n_docs, params.max_train_docs, params.seed)
    # streamed chunk by chunk: the vocabulary is counted without holding every training text
    chunks = iter_texts(dataset_dir, "train", compose=text_composer(params), keep=keep)
    return build_word_tokenizer(chunks, vocab_size=params.word_vocab_size, min_freq=params.word_min_freq,
                                max_length=params.max_length)


def train(dataset_dir: str | Path, output_dir: str | Path, params: TrainParams, *,
          eval_split: str = "test", resume: bool = False, tracker=None,
          progress: bool | None = None, token_cache: bool = True, sources: dict[str, str] | None = None) -> dict:
    """Train one model on a prepared dataset and evaluate it.

    Args:
        dataset_dir: ``data/<dataset>`` (fetched and prepared).
        output_dir: where checkpoints, the best model, predictions and metrics go.
        params: model and training settings.
        eval_split: the split of the final evaluation (``test``; ``dev`` for MATCH data to
            match the paper's N_tst).
        resume: continue from ``output_dir/checkpoint.pt`` when it exists.
        tracker: an object with ``log_params(dict)``, ``log_metrics(dict, step)``,
            ``log_artifact(path)`` and ``run_id`` (see :mod:`lcr.tracking`), or None; used on
            rank 0 only.
        progress: show progress bars (default: when stderr is a terminal).
        token_cache: tokenise each split once into its on-disk token cache
            (``data/<dataset>/cache``, :mod:`lcr.datasets.token_cache`) and stream batches from it, so
            memory does not grow with the split's tokens; False tokenises in memory.
        sources: where each non-default setting came from (:meth:`lcr.config.Params.train_with_sources`),
            for the settings block the run starts with (stderr and ``settings.txt``).

    Returns:
        ``{"dev": best dev metrics, "eval": {"full", "head", "tail"}, "best_epoch", "steps",
        "output_dir"}`` (also written to ``output_dir/metrics.json``).
    """
    from tqdm.auto import tqdm

    from lcr.models.encoder import load_encoder
    from lcr.models.factory import build_model
    from lcr.models.labelcorank import init_heads

    dataset_dir, output_dir = Path(dataset_dir), Path(output_dir)
    vocab, artifacts = check_inputs(dataset_dir, params, eval_split)
    device = _device(params)
    env = _init_distributed(device)
    progress = (sys.stderr.isatty() if progress is None else progress) and env.is_main
    bf16 = _use_bf16(params, device)
    checkpoint_path = output_dir / CHECKPOINT
    state = _load_checkpoint(checkpoint_path) if resume and checkpoint_path.exists() else None
    # Settings added since a checkpoint was written count as their defaults.
    defaults = TrainParams().model_dump()
    if state is not None and {**defaults, **state["params"]} != {**defaults, **params.model_dump()}:
        raise LcrError(f"{checkpoint_path} was written with other settings; remove it or drop --resume")

    # Cross-fitting first: the fold models train (and seed) on their own, before this run starts.
    out_of_fold = None
    if params.cross_fit_folds and params.cross_fit_fold is None:
        out_of_fold = torch.from_numpy(_cross_fit(dataset_dir, output_dir, params, vocab, eval_split=eval_split,
                                                  resume=resume, progress=progress, token_cache=token_cache))

    seed_everything(params.seed)
    if is_word_level(params.variant):
        # XML-CNN, AttentionXML, ...: no pretrained encoder, a word vocabulary from train.
        encoder, tokenizer = None, word_tokenizer(dataset_dir, params)
    else:
        encoder, tokenizer = load_encoder(params.encoder)
    cooc = artifacts.cooc if params.cooccurrence == "counts" else artifacts.cooc_conditional
    texts = label_texts_of(dataset_dir, params)
    if texts is not None:  # the K label texts are encoded while the model is built: on the device
        encoder = encoder.to(device)
    model = build_model(params, encoder, cooc=cooc, freq_rank=artifacts.rank, tokenizer=tokenizer,
                        label_texts=texts).to(device)
    if state is None:  # a fresh model: its label layers start from the training statistics
        init_heads(model, label_freq=artifacts.freq if params.bias_init == "log_odds" else None,
                   n_docs=artifacts.n_train, from_pooler=params.pooler_init)
    pad_id = pad_id_of(tokenizer)

    compose = text_composer(params)
    train_split = _cap(encode_split(dataset_dir, "train", tokenizer, vocab, params.max_length,
                                    progress=progress, compose=compose, cache=token_cache),
                       params.max_train_docs, params.seed)
    dev_split = _cap(encode_split(dataset_dir, "dev", tokenizer, vocab, params.max_length, compose=compose,
                                  cache=token_cache),
                     params.max_eval_docs, params.seed)
    if params.cross_fit_fold is not None:  # a fold model of a cross-fitted run: every fold but one
        folds = cross_fit.fold_of(len(train_split), params.cross_fit_folds, params.seed)
        train_split = train_split.subset(np.flatnonzero(folds != params.cross_fit_fold))
    if len(train_split) == 0:
        raise LcrError(f"{dataset_dir.name}: the train split is empty")
    if env.is_main:
        block = settings_block(params, sources, len(train_split), store.split_length(dataset_dir, "train"))
        print(block, file=sys.stderr, flush=True)
        output_dir.mkdir(parents=True, exist_ok=True)
        with atomic_open(output_dir / SETTINGS_FILE, "w", encoding="utf-8") as handle:
            handle.write(block + "\n")

    raw_model = model
    if env.world_size > 1:
        from torch.nn.parallel import DistributedDataParallel

        # Some parameters take no part in a step (the encoder's pooler, the position table of
        # no_pos), which DDP must be told about.
        model = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None,
                                        find_unused_parameters=True)
    if params.compile:
        model = torch.compile(model)

    warm_up = params.first_stage_steps > 0 and hasattr(raw_model, "s2_sizes")  # LabelCoRank family only
    global_batch = params.batch_size * env.world_size
    steps_per_epoch = math.ceil(len(train_split) / global_batch / params.grad_accum)
    epochs = params.epochs + params.rerank_epochs  # rerank_epochs: the reranking stage alone, after the first's
    first_steps, total_steps = steps_per_epoch * params.epochs, steps_per_epoch * epochs
    if params.max_steps is not None:
        first_steps, total_steps = min(first_steps, params.max_steps), min(total_steps, params.max_steps)
    optimizer = build_optimizer(raw_model, params, device)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, _group_schedules(optimizer, params, first_steps,
                                                                              total_steps))
    # first_in_training unseen: the second stage starts from each document's first-visit S1 after epoch 1.
    unseen = (cross_fit.UnseenFirst(len(train_split), train_split.labels.shape[1])
              if params.first_in_training == "unseen" else None)

    position = {"epoch": 0, "batch": 0, "step": 0}
    best = {"metric": -math.inf, "epoch": -1, "dev": {}}
    history: list[dict] = []
    patience_left = params.patience
    if state is not None:
        raw_model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        _set_rng_state(state["rng"])
        position, best, history = state["position"], state["best"], state["history"]
        patience_left = state["patience_left"]
        if unseen is not None:
            unseen.load_state_dict(state["unseen_first"])

    tracking = tracker if env.is_main else None
    if tracking is not None and state is None:
        tracking.log_params(runs.logged_params(dataset_dir.name, params, eval_split, env.world_size))
        tracking.log_artifact(output_dir / SETTINGS_FILE)

    def checkpoint() -> None:
        if env.is_main:
            _save_checkpoint(checkpoint_path, {
                "model": raw_model.state_dict(), "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(), "rng": _rng_state(), "position": position,
                "best": best, "history": history, "patience_left": patience_left,
                "params": params.model_dump(),
                **({"unseen_first": unseen.state_dict()} if unseen is not None else {})})

    def evaluate_dev() -> dict:
        if len(dev_split) == 0:
            return {}
        topk, scores, chosen = predict(raw_model, dev_split, batch_size=params.eval_batch_size, device=device,
                                       top_k=max(5, params.top_k_saved), pad_token_id=pad_id, env=env, bf16=bf16,
                                       selection=True)
        dev = metrics.evaluate(dev_split.labels, topk, scores=scores, train_freq=artifacts.freq,
                               n_train=artifacts.n_train)["full"]
        if chosen is not None:  # the reranking stage's diagnostics (LabelCoRank family)
            dev.update(_without_n_docs(metrics.selection_diagnostics(dev_split.labels, **chosen)))
        return dev

    output_dir.mkdir(parents=True, exist_ok=True)
    model.train()
    stop = position["step"] >= total_steps
    lines = ProgressLines(total_steps, epochs, global_batch, enabled=env.is_main and not progress)
    started = time.time()
    while not stop and position["epoch"] < epochs:
        epoch = position["epoch"]
        batches = length_bucketed_batches(train_split.lengths, global_batch, shuffle=True,
                                          seed=params.seed, epoch=epoch)
        bar = tqdm(total=len(batches), initial=position["batch"], desc=f"epoch {epoch + 1}/{epochs}",
                   disable=not progress, unit="batch")
        accumulated = 0
        epoch_losses: dict[str, list] = {}  # name -> [sum as a tensor (no host sync per step), batches]
        for b in range(position["batch"], len(batches)):
            # The last global batch is padded so every process gets a slice of the same size.
            mine = shard(batches[b], env.rank, env.world_size, pad=True)
            batch = {name: t.to(device) for name, t in collate(train_split, mine, pad_id).items()}
            # The first-stage warm-up: L1 alone until S1 is worth building S from.
            extra = {"first_stage_only": True} if warm_up and position["step"] < params.first_stage_steps else {}
            if epoch >= params.epochs:  # rerank_epochs: the first stage is finished; the reranking stage goes on
                extra["first_frozen"] = True
            if out_of_fold is not None and "first_stage_only" not in extra:  # cross-fitting: the second stage starts from unseen-text S1
                extra["first_logits"] = out_of_fold[torch.from_numpy(np.asarray(mine))].to(device)  # (B, K)
            if unseen is not None and epoch > 0 and "first_stage_only" not in extra:  # the S1 of the document's first visit
                extra["first_logits"] = unseen.of(mine, device)  # (B, K)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
                out = model(batch["input_ids"], batch["attention_mask"], labels=batch["labels"], **extra)
            (out.loss / params.grad_accum).backward()
            if unseen is not None and epoch == 0:  # scored before any step trained on these documents
                for positions, logits1 in _every_process_share(batches[b], out.logits1, env):
                    unseen.record(positions, logits1)
            for name in ("loss1", "loss2"):
                if getattr(out, name, None) is not None:
                    total = epoch_losses.setdefault(name, [0.0, 0])
                    total[0], total[1] = total[0] + getattr(out, name).detach(), total[1] + 1
            accumulated += 1
            bar.update(1)
            if accumulated < params.grad_accum and b + 1 < len(batches):
                continue
            accumulated = 0
            if params.clip_norm:  # separate_stages: each stage clipped on its own (the first as the plain fine-tune)
                groups = raw_model.clipping_groups() if hasattr(raw_model, "clipping_groups") else [raw_model.parameters()]
                for group in groups:
                    torch.nn.utils.clip_grad_norm_(group, params.clip_norm)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            position = {"epoch": epoch, "batch": b + 1, "step": position["step"] + 1}
            step = position["step"]
            if tracking is not None and step % params.log_every == 0:
                losses = {"loss": float(out.loss.detach())}
                for name in ("loss1", "loss2"):
                    if getattr(out, name, None) is not None:
                        losses[name] = float(getattr(out, name).detach())
                rates = {f"lr_{group['name'].split('/')[0]}": rate
                         for group, rate in zip(optimizer.param_groups, scheduler.get_last_lr())}
                tracking.log_metrics({**losses, "lr": scheduler.get_last_lr()[0], **rates}, step=step)
                bar.set_postfix(loss=f"{losses['loss']:.4f}")
            lines.step(epoch, step, out.loss.detach())
            if step % params.checkpoint_every == 0:
                checkpoint()
            if step >= total_steps:
                stop = True
                break
        bar.close()

        # Epoch end (or the step budget): evaluate on dev, keep the best model, maybe stop.
        dev = evaluate_dev()
        train_losses = {f"train_{'L1' if name == 'loss1' else 'L2'}": float(total) / count
                        for name, (total, count) in epoch_losses.items() if count}
        history.append({"epoch": epoch + 1, "step": position["step"], **dev, **train_losses})
        if env.is_main:
            lines.epoch(epoch, dev, params.select_metric)
        value = dev.get(params.select_metric, -math.inf) if dev else epoch  # no dev: keep the last
        if value > best["metric"]:
            best = {"metric": value, "epoch": epoch + 1, "dev": dev}
            patience_left = params.patience
            if env.is_main:
                save_model_folder(output_dir / BEST_DIR, raw_model, tokenizer, dataset_dir, params)
        elif patience_left is not None:
            patience_left -= 1
            stop = stop or patience_left <= 0
        if tracking is not None and (dev or train_losses):
            tracking.log_metrics({**{f"dev_{k}": v for k, v in dev.items() if k != "n_docs"}, **train_losses},
                                 step=epoch + 1)
        position = {"epoch": epoch + 1, "batch": 0, "step": position["step"]}
        checkpoint()

    evaluation = _final_evaluation(raw_model, dataset_dir, output_dir, params, vocab, artifacts, tokenizer,
                                   eval_split, device, env, bf16, progress, token_cache=token_cache)
    # A cross-fitted run's training time includes its fold models' (their own runs, resumed ones
    # included; their metrics.json is written by rank 0, which alone writes this run's).
    cross_seconds = {"cross_fit_seconds": round(sum(
        json.loads((cross_fit.fold_dir(output_dir, i) / runs.METRICS_FILE).read_text())["train_seconds"]
        for i in range(params.cross_fit_folds)), 1)} if out_of_fold is not None and env.is_main else {}
    result = runs.run_result(dataset_dir.name, params, eval_split, evaluation, dev=best["dev"],
                             best_epoch=best["epoch"], steps=position["step"], history=history,
                             train_seconds=time.time() - started + cross_seconds.get("cross_fit_seconds", 0.0),
                             output_dir=output_dir, **cross_seconds)
    if env.is_main:
        runs.write_results(output_dir, result)
    if tracking is not None:
        runs.log_finished(tracking, output_dir, result, step=position["step"])
    return result


def _final_evaluation(model, dataset_dir: Path, output_dir: Path, params: TrainParams, vocab, artifacts,
                      tokenizer, eval_split: str, device, env: DistEnv, bf16: bool, progress: bool,
                      token_cache: bool = True) -> dict:
    """Evaluate the best model on the evaluation split with its head and tail subsets; writes
    the split's predictions file and returns :func:`lcr.report.metrics.evaluate`'s result."""
    from lcr.labels import subset_masks
    from lcr.models.factory import load_model

    best_dir = output_dir / BEST_DIR
    if env.world_size > 1:
        import torch.distributed as dist

        dist.barrier()  # rank 0 has written the best model
    if best_dir.exists():
        model = load_model(best_dir / "model", model.encoder_for_loading()).to(device)
    split = _cap(encode_split(dataset_dir, eval_split, tokenizer, vocab, params.max_length,
                              compose=text_composer(params), cache=token_cache),
                 params.max_eval_docs, params.seed)
    pad_id = pad_id_of(tokenizer)
    topk, scores, chosen = predict(model, split, batch_size=params.eval_batch_size, device=device,
                                   top_k=max(5, params.top_k_saved), pad_token_id=pad_id, env=env, bf16=bf16,
                                   progress=progress, selection=True)
    evaluation = metrics.evaluate(split.labels, topk, scores=scores, train_freq=artifacts.freq,
                                  n_train=artifacts.n_train, subsets=subset_masks(split.labels, artifacts.head_mask))
    if chosen is not None:  # the first prediction S1 and the label sequence S, beside the final
        evaluation["full"].update(_without_n_docs(metrics.selection_diagnostics(split.labels, **chosen)))
    if env.is_main:
        write_predictions(output_dir / runs.predictions_file(eval_split), split.ids, vocab, topk, scores)
    return evaluation


def _without_n_docs(values: dict) -> dict:
    return {k: v for k, v in values.items() if k != "n_docs"}
