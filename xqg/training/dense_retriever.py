"""Tevatron-style contrastive training of a shared query/passage encoder (xDR).

Each query comes with its positive passages and a pool of hard negatives (Tevatron's
``negative_passages`` for XOR-TyDi, or mined with the zero-shot encoder, the gold passage
excluded); every other passage of the batch is an in-batch negative. As Tevatron's
``TrainDataset`` does, each epoch takes one positive and `n_negatives` negatives of the pool
afresh (`epoch_group`), so a pool larger than `n_negatives` is seen in turn. The loss is
cross-entropy over ``q . p / temperature`` (temperature 1 for the dot-product mBERT/XLM-R
models of the paper, about 0.01 for cosine models such as e5).

Checkpoints hold weights, optimiser, scheduler and the step; a killed run resumes from the last
one and, under the same seed, visits the same batches it would have. Under ``torchrun`` each
process trains on its own slice of every global batch and gradients are all-reduced; the
in-batch negatives are then the process's own slice (Tevatron gathers them across devices).
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

import numpy as np
import torch
from tqdm.auto import tqdm

from xqg.io import atomic_dir
from xqg.models.encoder import Encoder
from xqg.training.schedule import warmup_linear_decay


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
    seed: int = field(default=42, metadata={"help": "seed of shuffling and initialisation"})

    def __post_init__(self) -> None:
        for name in ("batch_size", "query_max_len", "passage_max_len", "save_steps"):
            if getattr(self, name) < 1:
                raise ValueError(f"TrainingArgs.{name} must be >= 1")
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


def epoch_order(n: int, epoch: int, seed: int) -> list[int]:
    """The shuffled example order of one epoch (a function of seed and epoch only)."""
    return np.random.default_rng([seed, epoch]).permutation(n).tolist()


def _dist() -> tuple[int, int]:
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and not torch.distributed.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        torch.distributed.init_process_group(backend)
    if torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


def _save_checkpoint(path: Path, encoder: Encoder, optim, sched, step: int, args: TrainingArgs) -> None:
    with atomic_dir(path) as tmp:  # a checkpoint folder is complete or absent
        encoder.save(tmp)
        state = {
            "optimizer": optim.state_dict(),
            "scheduler": sched.state_dict(),
            "step": step,
            "torch_rng": torch.get_rng_state(),
        }
        torch.save(state, tmp / "trainer_state.pt")
        (tmp / "training_args.json").write_text(json.dumps(asdict(args), indent=1))


def train(
    encoder: Encoder, examples: Sequence[TrainExample], args: TrainingArgs, stop_after: int | None = None
) -> dict:
    """Train `encoder` in place; resume from ``output_dir/checkpoint-last`` if present.

    `stop_after` ends this call after that many steps, checkpointed, as a time-sliced job (or a
    kill) would; calling again continues. Returns {"step": final step, "losses": [loss of each
    step run by this call]}. The final model is saved to ``output_dir/final``.
    """
    if not examples:
        raise ValueError("no training examples")
    for i, ex in enumerate(examples):
        if args.n_negatives and not ex.negatives:
            raise ValueError(f"example {i} has no negatives, needs {args.n_negatives}")
    rank, world = _dist()
    torch.manual_seed(args.seed)
    out = Path(args.output_dir)
    ckpt = out / "checkpoint-last"
    per_epoch = max(1, len(examples) // args.batch_size)
    total = args.max_steps or math.ceil(args.epochs * per_epoch)
    if ckpt.exists():
        encoder.model.load_state_dict(Encoder.from_pretrained(ckpt).model.state_dict())
    optim = torch.optim.AdamW(encoder.parameters(), lr=args.learning_rate)
    sched = warmup_linear_decay(optim, int(args.warmup_ratio * total), total)
    step = 0
    if ckpt.exists():
        state = torch.load(ckpt / "trainer_state.pt", weights_only=False)
        optim.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        step = state["step"]
        torch.set_rng_state(state["torch_rng"])
    encoder.train()
    losses = []
    bar = tqdm(total=total, initial=step, desc="train xDR", disable=rank != 0)
    stop_at = total if stop_after is None else min(total, step + stop_after)
    while step < stop_at:
        epoch, offset = divmod(step, per_epoch)
        order = epoch_order(len(examples), epoch, args.seed)
        idx = order[offset * args.batch_size : (offset + 1) * args.batch_size]
        idx = idx[rank::world]  # this process's slice of the global batch
        groups = [epoch_group(examples[i], i, epoch, args.n_negatives, args.seed) for i in idx]
        loss = batch_loss(encoder, [examples[i].query for i in idx], groups, args)
        optim.zero_grad()
        loss.backward()
        if world > 1:  # average gradients over processes (what DDP does, without its hooks)
            for p in encoder.parameters():
                if p.grad is not None:
                    torch.distributed.all_reduce(p.grad)
                    p.grad /= world
        optim.step()
        sched.step()
        step += 1
        losses.append(loss.item())
        bar.update(1)
        bar.set_postfix(loss=f"{losses[-1]:.3f}")
        if rank == 0 and (step % args.save_steps == 0 or step == stop_at):
            _save_checkpoint(ckpt, encoder, optim, sched, step, args)
    bar.close()
    if rank == 0 and step == total:
        with atomic_dir(out / "final") as tmp:
            encoder.save(tmp)
    encoder.eval()
    return {"step": step, "losses": losses}
