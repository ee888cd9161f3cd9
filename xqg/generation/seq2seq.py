"""Any Hugging Face seq2seq generator (mT5 in the paper), fine-tuned and sampled with the paper's prompt.

Loads ``google/mt5-base``, a fine-tuned checkpoint, or the authors' released
``ielabgroup/xor-tydi-docTquery-mt5-base`` by name or path. Fine-tuning runs on the Hugging Face
`Trainer`, as DSI-QG's does, with the authors' settings in the `paper` profile (lr 1e-4, 2,000
steps, effective batch 128, input 128 tokens, AdamW without weight decay, linear decay, gradients
clipped to 1, best checkpoint on dev loss): devices, mixed precision on GPUs, gradient
accumulation, checkpoints and resume, and DDP under ``torchrun`` come from it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from transformers import DataCollatorForSeq2Seq, Trainer, TrainerCallback, TrainingArguments
from transformers.trainer_utils import get_last_checkpoint

from xqg.data.schema import Passage
from xqg.generation.prompts import Triple, prompt
from xqg.io import atomic_dir
from xqg.models.device import device_of, to_device
from xqg.training.hf import PRECISIONS, StopAfter, device_flags


@dataclass
class Seq2SeqTrainingArgs:
    """Fine-tuning settings (the authors': lr 1e-4, 2,000 steps, batch 128, input 128)."""

    output_dir: str
    steps: int = 2000
    batch_size: int = 128  # effective batch, over processes and gradient accumulation
    micro_batch: int = 8  # triples per forward pass and process
    learning_rate: float = 1e-4
    max_input_len: int = 128
    max_target_len: int = 64
    eval_every: int = 200
    precision: str = "float32"  # or bfloat16 / float16 mixed precision on GPUs (a CPU trains float32)
    seed: int = 0

    def __post_init__(self) -> None:
        if self.precision not in PRECISIONS:
            raise ValueError(f"Seq2SeqTrainingArgs.precision {self.precision!r}: use one of {PRECISIONS}")
        for name in ("steps", "batch_size", "micro_batch", "eval_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"Seq2SeqTrainingArgs.{name} must be >= 1, got {getattr(self, name)}")


class Seq2SeqGenerator:
    """A seq2seq model and tokenizer behind the QueryGenerator interface."""

    def __init__(self, model, tokenizer, max_input_len: int = 128):
        self.model, self.tokenizer, self.max_input_len = model, tokenizer, max_input_len

    @classmethod
    def from_pretrained(cls, name_or_path: str | Path, max_input_len: int = 128) -> Seq2SeqGenerator:
        """Load by Hugging Face name or local path."""
        from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

        path = Path(name_or_path)
        if path.is_dir() and not (path / "config.json").exists():
            raise FileNotFoundError(f"{path}: generator folder has no config.json")
        return cls(
            AutoModelForSeq2SeqLM.from_pretrained(str(name_or_path)),
            AutoTokenizer.from_pretrained(str(name_or_path)),
            max_input_len,
        )

    def to(self, device: torch.device) -> Seq2SeqGenerator:
        """Move the model to `device`; inputs follow it."""
        self.model.to(device)
        return self

    def save(self, out_dir: str | Path) -> None:
        """Save model and tokenizer."""
        self.model.save_pretrained(out_dir)
        self.tokenizer.save_pretrained(out_dir)

    def _inputs(self, prompts: Sequence[str]) -> dict:
        enc = self.tokenizer(
            list(prompts), max_length=self.max_input_len, truncation=True, padding=True, return_tensors="pt"
        )
        return to_device(enc, device_of(self.model))

    def loss(self, batch: Sequence[Triple], max_target_len: int = 64) -> torch.Tensor:
        """Teacher-forced loss of a batch of triples."""
        inputs = self._inputs([prompt(t.language, t.title, t.passage) for t in batch])
        labels = self.tokenizer(
            [t.question for t in batch],
            max_length=max_target_len,
            truncation=True,
            padding=True,
            return_tensors="pt",
        )["input_ids"]
        labels[labels == self.tokenizer.pad_token_id] = -100
        return self.model(**inputs, labels=labels.to(device_of(self.model))).loss

    @torch.no_grad()
    def generate(
        self,
        passages: Sequence[Passage],
        language: str,
        n: int,
        *,
        top_k: int = 10,
        max_new_tokens: int = 32,
        seed: int = 0,
    ) -> list[list[str]]:
        """`n` top-k samples per passage with the paper's prompt."""
        self.model.eval()
        torch.manual_seed(seed)
        inputs = self._inputs([prompt(language, p.title, p.text) for p in passages])
        out = self.model.generate(
            **inputs, do_sample=True, top_k=top_k, num_return_sequences=n, max_new_tokens=max_new_tokens
        )
        texts = self.tokenizer.batch_decode(out.cpu(), skip_special_tokens=True)
        return [[t.strip() for t in texts[i * n : (i + 1) * n]] for i in range(len(passages))]


class TripleDataset(torch.utils.data.Dataset):
    """Triples as the `Trainer` takes them: the prompt's token ids and the question's as labels."""

    def __init__(self, gen: Seq2SeqGenerator, triples: Sequence[Triple], max_target_len: int):
        inputs = gen.tokenizer(
            [prompt(t.language, t.title, t.passage) for t in triples],
            max_length=gen.max_input_len,
            truncation=True,
        )
        labels = gen.tokenizer([t.question for t in triples], max_length=max_target_len, truncation=True)
        self.rows = [
            {"input_ids": i, "attention_mask": m, "labels": y}
            for i, m, y in zip(inputs["input_ids"], inputs["attention_mask"], labels["input_ids"])
        ]

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> dict:
        return self.rows[i]


def trainer_arguments(
    args: Seq2SeqTrainingArgs, world: int, device: torch.device, has_dev: bool
) -> TrainingArguments:
    """DSI-QG's `TrainingArguments` (HF defaults: AdamW without weight decay, linear decay without
    warm-up, clipping 1.0; the best checkpoint by dev loss kept at the end), the effective batch
    split into `micro_batch` per process and gradient accumulation."""
    micro = min(args.micro_batch, args.batch_size)
    if args.batch_size % (micro * world):
        raise ValueError(
            f"batch_size {args.batch_size} is not a multiple of micro_batch {micro} x {world} processes"
        )
    return TrainingArguments(
        output_dir=str(Path(args.output_dir) / "checkpoints"),
        per_device_train_batch_size=micro,
        per_device_eval_batch_size=micro,
        gradient_accumulation_steps=args.batch_size // (micro * world),
        learning_rate=args.learning_rate,
        max_steps=args.steps,
        warmup_steps=0,
        weight_decay=0.0,
        max_grad_norm=1.0,
        lr_scheduler_type="linear",
        optim="adamw_torch",
        eval_strategy="steps" if has_dev else "no",
        eval_steps=args.eval_every,
        save_strategy="steps",
        save_steps=args.eval_every,
        save_total_limit=2,  # with the best one, which `load_best_model_at_end` keeps too
        load_best_model_at_end=has_dev,
        metric_for_best_model="eval_loss",
        greater_is_better=False,
        logging_steps=max(1, args.eval_every),
        report_to="none",
        seed=args.seed,
        data_seed=args.seed,
        remove_unused_columns=False,
        **device_flags(device, args.precision),
    )


def fine_tune(
    gen: Seq2SeqGenerator,
    train: Sequence[Triple],
    dev: Sequence[Triple],
    args: Seq2SeqTrainingArgs,
    stop_after: int | None = None,
) -> list[dict]:
    """Fine-tune `gen` in place with the Hugging Face `Trainer`; save the checkpoint with the
    lowest dev loss (the last one without dev triples) to ``output_dir/best``.

    Resumes from the last checkpoint under ``output_dir/checkpoints`` (weights, optimiser,
    scheduler, random states: a resumed run is the uninterrupted one). `stop_after` ends this
    call after that many steps, checkpointed. Returns the dev losses: [{"step", "dev_loss"}]."""
    if not train:
        raise ValueError("no generator training triples")
    best, checkpoints = Path(args.output_dir) / "best", Path(args.output_dir) / "checkpoints"
    last = get_last_checkpoint(str(checkpoints)) if checkpoints.is_dir() else None
    if last is not None and (best / "config.json").exists():  # finished: reuse, rewrite nothing
        gen.model.load_state_dict(Seq2SeqGenerator.from_pretrained(best).model.state_dict())
        gen.model.eval()
        return _dev_losses(json.loads((Path(last) / "trainer_state.json").read_text())["log_history"])
    world = int(os.environ.get("WORLD_SIZE", "1"))
    callbacks: list[TrainerCallback] = [StopAfter(stop_after)] if stop_after is not None else []
    trainer = Trainer(
        model=gen.model,
        args=trainer_arguments(args, world, device_of(gen.model), bool(dev)),
        data_collator=DataCollatorForSeq2Seq(gen.tokenizer, model=gen.model, label_pad_token_id=-100),
        train_dataset=TripleDataset(gen, train, args.max_target_len),
        eval_dataset=TripleDataset(gen, dev, args.max_target_len) if dev else None,
        callbacks=callbacks,
    )
    trainer.train(resume_from_checkpoint=last)
    gen.model = trainer.model  # the best checkpoint's weights, once training has ended
    gen.model.eval()
    if trainer.is_world_process_zero() and trainer.state.global_step >= args.steps:
        with atomic_dir(best) as tmp:
            gen.save(tmp)
    return _dev_losses(trainer.state.log_history)


def _dev_losses(log_history: list[dict]) -> list[dict]:
    """[{"step", "dev_loss"}] of a Trainer's log history."""
    return [{"step": e["step"], "dev_loss": e["eval_loss"]} for e in log_history if "eval_loss" in e]
