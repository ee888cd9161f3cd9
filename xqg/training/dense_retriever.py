"""Tevatron-style contrastive training of a shared query/passage encoder (xDR).

Each query comes with its positive passages and a pool of hard negatives (Tevatron's
``negative_passages`` for XOR-TyDi, or mined with the zero-shot encoder, the gold passage
excluded); every other passage of the batch is an in-batch negative. As Tevatron's
``TrainDataset`` does, each epoch takes one positive and `n_negatives` negatives of the pool
afresh (`epoch_group`), so a pool larger than `n_negatives` is seen in turn. The loss is
cross-entropy over ``q . p / temperature`` (temperature 1 for the dot-product mBERT/XLM-R
models of the paper, about 0.01 for cosine models such as e5).

Training runs through the Hugging Face `Trainer`, as Tevatron's driver does: devices, mixed
precision (GPUs), gradient clipping, the schedule, checkpoints (weights, optimiser, scheduler,
random states) and resume, and DDP under ``torchrun`` come from it. A killed run resumes from its
last checkpoint and visits the same batches it would have. Under torchrun each process trains on
its slice of every global batch; the in-batch negatives are then the process's own slice (as in
Tevatron without ``--negatives_x_device``, the authors' setting).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import random
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from transformers import Trainer, TrainerCallback, TrainingArguments
from transformers.trainer_utils import get_last_checkpoint

from xqg.io import atomic_dir
from xqg.models.device import device_of
from xqg.models.encoder import Encoder
from xqg.training.hf import PRECISIONS, StopAfter, device_flags


@dataclass
class TrainingArgs:
    """Settings of one xDR training run (the paper's values in the `paper` profile)."""

    output_dir: str = field(metadata={"help": "where checkpoints and the final model go"})
    batch_size: int = field(default=128, metadata={"help": "queries per (global) batch"})
    n_negatives: int = field(default=7, metadata={"help": "hard negatives per query"})
    learning_rate: float = field(default=1e-5, metadata={"help": "AdamW learning rate"})
    epochs: float = field(default=40, metadata={"help": "passes over the training queries"})
    max_steps: int | None = field(default=None, metadata={"help": "stop after this many steps"})
    warmup_ratio: float = field(default=0.1, metadata={"help": "linear warm-up share of steps"})
    query_max_len: int = field(default=32, metadata={"help": "query tokens"})
    passage_max_len: int = field(default=128, metadata={"help": "passage tokens"})
    temperature: float = field(default=1.0, metadata={"help": "softmax temperature of scores"})
    save_steps: int = field(default=100, metadata={"help": "checkpoint every this many steps"})
    precision: str = field(
        default="float32", metadata={"help": "float32, or bfloat16 / float16 mixed precision (GPUs only)"}
    )
    seed: int = field(default=42, metadata={"help": "seed of shuffling and initialisation"})

    def __post_init__(self) -> None:
        for name in ("batch_size", "query_max_len", "passage_max_len", "save_steps"):
            if getattr(self, name) < 1:
                raise ValueError(f"TrainingArgs.{name} must be >= 1")
        if self.precision not in PRECISIONS:
            raise ValueError(f"TrainingArgs.precision {self.precision!r}: float32, bfloat16 or float16")
        if self.n_negatives < 0 or self.temperature <= 0 or self.learning_rate <= 0:
            raise ValueError("TrainingArgs: n_negatives >= 0, temperature > 0, learning_rate > 0")


@dataclass(frozen=True)
class TrainExample:
    """A query with its positive passages and its pool of hard negatives (texts)."""

    query: str
    positives: tuple[str, ...]
    negatives: tuple[str, ...]

    def __post_init__(self) -> None:
        if not self.positives:
            raise ValueError(f"training query {self.query[:40]!r} has no positive passage")


def epoch_group(example: TrainExample, index: int, epoch: int, n: int, seed: int) -> tuple[str, ...]:
    """(positive, n negatives) of one example in one epoch, as Tevatron's ``TrainDataset`` picks
    them: the positive rotates with the epoch; the negative pool, shuffled once per example,
    is read `n` at a time from an offset that moves by `n` each epoch (a pool smaller than `n`
    is drawn with replacement)."""
    example_seed = int.from_bytes(hashlib.sha1(f"{seed}:{index}".encode()).digest()[:8], "big")
    positive = example.positives[(example_seed + epoch) % len(example.positives)]
    pool = list(example.negatives)
    if n == 0:
        return (positive,)
    rng = random.Random(example_seed)
    if len(pool) < n:
        return (positive, *rng.choices(pool, k=n))
    rng.shuffle(pool)
    offset = epoch * n % len(pool)
    return (positive, *(pool * 2)[offset : offset + n])


def mine_hard_negatives(
    run: dict[str, list[str]], gold: dict[str, str], n: int, depth: int, seed: int
) -> dict[str, list[str]]:
    """Per query, `n` passages sampled from the top `depth` of a run, the gold one excluded.

    Where fewer than `n` remain, the list is padded by cycling (a query always has `n`).
    """
    rng = random.Random(seed)
    out = {}
    for q, ranked in run.items():
        pool_ = [p for p in ranked[:depth] if p != gold[q]]
        if not pool_:
            raise ValueError(f"query {q}: no hard negative candidates in the top {depth}")
        picks = rng.sample(pool_, min(n, len(pool_)))
        out[q] = [picks[i % len(picks)] for i in range(n)]
    return out


def contrastive_loss(q: torch.Tensor, p: torch.Tensor, temperature: float) -> torch.Tensor:
    """Cross-entropy over all passages of the batch; query i's positive is row i * group."""
    group = p.shape[0] // q.shape[0]
    scores = q @ p.T / temperature
    target = torch.arange(q.shape[0], device=q.device) * group
    return torch.nn.functional.cross_entropy(scores, target)


def batch_loss(
    encoder: Encoder, queries: Sequence[str], groups: Sequence[Sequence[str]], args: TrainingArgs
) -> torch.Tensor:
    """Loss of one batch: each query against its group (positive first, then its hard negatives)
    and every other group's passages (in-batch negatives)."""
    qt = encoder.tokenize(list(queries), "query", args.query_max_len)
    passages = [t for group in groups for t in group]
    pt = encoder.tokenize(passages, "passage", args.passage_max_len)
    q = encoder(qt["input_ids"], qt["attention_mask"])
    p = encoder(pt["input_ids"], pt["attention_mask"])
    return contrastive_loss(q, p, args.temperature)


class ContrastiveModel(torch.nn.Module):
    """The shared encoder and its loss in one forward: what the Trainer (and DDP) calls once per
    step, as Tevatron's ``DenseModel`` takes query and passages together."""

    def __init__(self, encoder: Encoder, temperature: float):
        super().__init__()
        self.encoder, self.temperature = encoder, temperature
        self.losses: list[float] = []  # of the steps this process ran

    def forward(self, q_input_ids, q_attention_mask, p_input_ids, p_attention_mask) -> dict:
        q = self.encoder(q_input_ids, q_attention_mask)
        p = self.encoder(p_input_ids, p_attention_mask)
        loss = contrastive_loss(q, p, self.temperature)
        if self.training:
            self.losses.append(loss.item())
        return {"loss": loss}


class GroupDataset(torch.utils.data.Dataset):
    """The examples as (query, group) in the current epoch (Tevatron's ``TrainDataset``); the
    `EpochGroups` callback sets the epoch."""

    def __init__(self, examples: Sequence[TrainExample], n_negatives: int, seed: int):
        self.examples, self.n_negatives, self.seed, self.epoch = examples, n_negatives, seed, 0

    def __len__(self) -> int:
        return len(self.examples)

    def __getitem__(self, i: int) -> dict:
        group = epoch_group(self.examples[i], i, self.epoch, self.n_negatives, self.seed)
        return {"query": self.examples[i].query, "group": group}


@dataclass
class GroupCollator:
    """Tokenises a batch: queries, then every group's passages in order (positive first)."""

    encoder: Encoder
    args: TrainingArgs

    def __call__(self, rows: list[dict]) -> dict[str, torch.Tensor]:
        qt = self.encoder.tokenize([r["query"] for r in rows], "query", self.args.query_max_len)
        passages = [t for r in rows for t in r["group"]]
        pt = self.encoder.tokenize(passages, "passage", self.args.passage_max_len)
        return {
            "q_input_ids": qt["input_ids"],
            "q_attention_mask": qt["attention_mask"],
            "p_input_ids": pt["input_ids"],
            "p_attention_mask": pt["attention_mask"],
        }


class EpochGroups(TrainerCallback):
    """Sets the dataset's epoch when one begins, from the global step (exact on resume too)."""

    def __init__(self, dataset: GroupDataset, steps_per_epoch: int):
        self.dataset, self.steps_per_epoch = dataset, steps_per_epoch

    def on_epoch_begin(self, args, state, control, **kwargs):
        self.dataset.epoch = state.global_step // self.steps_per_epoch


def trainer_arguments(args: TrainingArgs, total: int, world: int, device: torch.device) -> TrainingArguments:
    """Hugging Face `TrainingArguments` for these settings: Tevatron's (AdamW without weight decay,
    linear warm-up and decay, gradients clipped to norm 1), the global batch split over processes,
    mixed precision only on a GPU."""
    if args.batch_size % world:
        raise ValueError(f"batch_size {args.batch_size} does not split over {world} processes")
    return TrainingArguments(
        output_dir=args.output_dir,
        per_device_train_batch_size=args.batch_size // world,
        learning_rate=args.learning_rate,
        max_steps=total,
        warmup_steps=args.warmup_ratio,  # a float below 1 is a share of the steps
        weight_decay=0.0,
        max_grad_norm=1.0,
        lr_scheduler_type="linear",
        optim="adamw_torch",
        save_strategy="steps",
        save_steps=args.save_steps,
        save_total_limit=2,
        logging_steps=max(1, total // 20),
        report_to="none",
        seed=args.seed,
        data_seed=args.seed,
        dataloader_drop_last=True,
        remove_unused_columns=False,
        ddp_find_unused_parameters=False,
        **device_flags(device, args.precision),
    )


def train(
    encoder: Encoder, examples: Sequence[TrainExample], args: TrainingArgs, stop_after: int | None = None
) -> dict:
    """Train `encoder` in place with the Hugging Face `Trainer`; resume from the last checkpoint in
    ``output_dir`` if there is one.

    Under torchrun the Trainer runs DDP (NCCL on GPUs, gloo on CPUs). `stop_after` ends this call
    after that many steps, checkpointed; calling again continues. Returns {"step": final step,
    "losses": [loss of each step this process ran]}. The final model is saved (by the first
    process) to ``output_dir/final``."""
    if not examples:
        raise ValueError("no training examples")
    for i, ex in enumerate(examples):
        if args.n_negatives and not ex.negatives:
            raise ValueError(f"example {i} has no negatives, needs {args.n_negatives}")
    world = int(os.environ.get("WORLD_SIZE", "1"))
    out = Path(args.output_dir)
    steps_per_epoch = max(1, len(examples) // args.batch_size)
    total = args.max_steps or math.ceil(args.epochs * steps_per_epoch)
    model = ContrastiveModel(encoder, args.temperature)
    dataset = GroupDataset(examples, args.n_negatives, args.seed)
    callbacks: list[TrainerCallback] = [EpochGroups(dataset, steps_per_epoch)]
    if stop_after is not None:
        callbacks.append(StopAfter(stop_after))
    trainer = Trainer(
        model=model,
        args=trainer_arguments(args, total, world, device_of(encoder)),
        data_collator=GroupCollator(encoder, args),
        train_dataset=dataset,
        callbacks=callbacks,
    )
    last = get_last_checkpoint(str(out)) if out.is_dir() else None
    trainer.train(resume_from_checkpoint=last)
    step = trainer.state.global_step
    if trainer.is_world_process_zero() and step >= total:
        with atomic_dir(out / "final") as tmp:
            encoder.save(tmp)
            (tmp / "training_args.json").write_text(json.dumps(asdict(args), indent=1))
    encoder.eval()
    return {"step": step, "losses": model.losses}
