"""Any Hugging Face seq2seq generator (mT5 in the paper), fine-tuned and sampled with the paper's prompt.

Loads ``google/mt5-base``, a fine-tuned checkpoint, or the authors' released
``ielabgroup/xor-tydi-docTquery-mt5-base`` by name or path. Fine-tuning follows the authors'
settings in the `paper` profile (lr 1e-4, 2,000 steps, effective batch 128, input 128 tokens,
best checkpoint on dev loss).
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from xqg.data.schema import Passage
from xqg.generation.prompts import Triple, prompt
from xqg.io import atomic_dir
from xqg.models.device import device_of, to_device


@dataclass
class Seq2SeqTrainingArgs:
    """Fine-tuning settings (the authors': lr 1e-4, 2,000 steps, batch 128, input 128)."""

    output_dir: str
    steps: int = 2000
    batch_size: int = 128  # effective batch = batch_size; split into micro-batches of micro_batch
    micro_batch: int = 8
    learning_rate: float = 1e-4
    max_input_len: int = 128
    max_target_len: int = 64
    eval_every: int = 200
    seed: int = 0


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


def fine_tune(
    gen: Seq2SeqGenerator, train: Sequence[Triple], dev: Sequence[Triple], args: Seq2SeqTrainingArgs
) -> list[dict]:
    """Fine-tune with gradient accumulation; keep the checkpoint with the lowest dev loss as ``best``.

    Resumes from ``output_dir/last`` (weights, optimiser, step, history).
    """
    if not train:
        raise ValueError("no generator training triples")
    out = Path(args.output_dir)
    # the Hugging Face Trainer's defaults, which DSI-QG trains with: AdamW without weight decay,
    # linear decay to 0 without warm-up, gradients clipped to norm 1
    optim = torch.optim.AdamW(gen.model.parameters(), lr=args.learning_rate, weight_decay=0.0)
    sched = torch.optim.lr_scheduler.LambdaLR(optim, lambda s: max(0.0, 1 - s / args.steps))
    step, history = 0, []
    if (out / "last" / "trainer_state.pt").exists():
        resumed = Seq2SeqGenerator.from_pretrained(out / "last", args.max_input_len)
        gen.model.load_state_dict(resumed.model.state_dict())
        state = torch.load(out / "last" / "trainer_state.pt", weights_only=False)
        optim.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        step, history = state["step"], state["history"]
    best = min([h["dev_loss"] for h in history], default=float("inf"))
    rng = random.Random(f"{args.seed}:0")
    torch.manual_seed(args.seed)
    if step:  # continue both random streams where the checkpoint left them: a resumed run is identical
        rng.setstate(state["rng"])
        torch.set_rng_state(state["torch_rng"])
    bar = tqdm(total=args.steps, initial=step, desc="fine-tune generator")
    while step < args.steps:
        gen.model.train()
        batch = rng.sample(list(train), min(args.batch_size, len(train)))
        optim.zero_grad()
        for s in range(0, len(batch), args.micro_batch):
            micro = batch[s : s + args.micro_batch]
            loss = gen.loss(micro, args.max_target_len) * len(micro) / len(batch)
            loss.backward()
        torch.nn.utils.clip_grad_norm_(gen.model.parameters(), 1.0)
        optim.step()
        sched.step()
        step += 1
        bar.update(1)
        if step % args.eval_every == 0 or step == args.steps:
            gen.model.eval()
            with torch.no_grad():
                dev_loss = (
                    float(
                        np.mean(
                            [
                                gen.loss(dev[s : s + args.micro_batch], args.max_target_len).item()
                                for s in range(0, len(dev), args.micro_batch)
                            ]
                        )
                    )
                    if dev
                    else 0.0
                )
            history.append({"step": step, "dev_loss": dev_loss})
            if dev_loss < best:
                best = dev_loss
                with atomic_dir(out / "best") as tmp:
                    gen.save(tmp)
            with atomic_dir(out / "last") as tmp:  # weights and trainer state together
                gen.save(tmp)
                state = {
                    "optimizer": optim.state_dict(),
                    "scheduler": sched.state_dict(),
                    "step": step,
                    "history": history,
                    "rng": rng.getstate(),
                    "torch_rng": torch.get_rng_state(),
                }
                torch.save(state, tmp / "trainer_state.pt")
    bar.close()
    return history
