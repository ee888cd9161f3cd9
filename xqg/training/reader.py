"""Training the extractive reader on (question, English context, answer) examples.

Each step reads a batch of examples, each cut to a window of the context around its answer (the
answer placed at a random point of the window), so that a short `max_length` still holds the
answer; the loss is the start/end cross-entropy of `Reader.loss`. Linear warm-up and decay,
optional bf16 autocast on CPU; the word-embedding table stays frozen by default (on CPU its
optimiser update alone costs more than the layers); the caller saves the model.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from tqdm.auto import tqdm

from xqg.data.schema import Passage, Query
from xqg.models.device import device_of
from xqg.models.precision import autocast
from xqg.qa.reader import QAExample, Reader
from xqg.training.schedule import warmup_linear_decay


@dataclass(frozen=True)
class ReaderTrainingArgs:
    """Optimisation settings of the reader."""

    steps: int = 300
    batch_size: int = 16
    learning_rate: float = 5e-5
    warmup_fraction: float = 0.1
    window_chars: int = 400  # context characters around the answer per training example (~100 tokens)
    dtype: str = "float32"  # or bfloat16 (CPU autocast)
    freeze_word_embeddings: bool = True  # a 250k-piece table: most of the parameters, few of them seen
    seed: int = 0


def qa_examples(queries: Sequence[Query], passages: dict[str, Passage]) -> list[QAExample]:
    """One example per query whose first gold answer occurs in its gold passage (first occurrence)."""
    out = []
    for q in queries:
        passage = passages.get(q.gold_passage or "")
        if passage is None or not q.answers:
            continue
        start = passage.text.find(q.answers[0])
        if start >= 0:
            out.append(QAExample(q.text, passage.text, q.answers[0], start))
    return out


def answer_window(example: QAExample, window_chars: int, rng: random.Random) -> QAExample:
    """The example with its context cut to about `window_chars` characters holding the answer,
    on whitespace boundaries; short contexts are kept whole."""
    text, a, n = example.context, example.answer_start, len(example.answer)
    if len(text) <= window_chars or n >= window_chars:
        return example
    lo = max(0, min(a - rng.randint(0, window_chars - n), len(text) - window_chars))
    hi = lo + window_chars
    if lo > 0:  # move the edges out to the nearest space without cutting the answer
        space = text.rfind(" ", 0, lo)
        lo = space + 1 if space >= 0 else 0
    space = text.find(" ", hi)
    hi = len(text) if space < 0 else max(space, a + n)
    return QAExample(example.question, text[lo:hi], example.answer, a - lo)


def train_reader(reader: Reader, examples: Sequence[QAExample], args: ReaderTrainingArgs) -> list[dict]:
    """Train in place; returns the loss history (mean over each tenth of the steps)."""
    if not examples:
        raise ValueError("no reader training examples (no answer was found in its gold passage)")
    rng = random.Random(args.seed)
    torch.manual_seed(args.seed)
    if args.freeze_word_embeddings:
        reader.model.get_input_embeddings().weight.requires_grad_(False)
    params = [p for p in reader.model.parameters() if p.requires_grad]
    optim = torch.optim.AdamW(params, lr=args.learning_rate, weight_decay=0.01)
    sched = warmup_linear_decay(optim, int(args.warmup_fraction * args.steps), args.steps)
    order: list[int] = []
    history, window = [], []
    every = max(1, args.steps // 10)
    reader.model.train()
    for step in tqdm(range(args.steps), desc="train reader"):
        if len(order) < args.batch_size:
            more = list(range(len(examples)))
            rng.shuffle(more)
            order += more
        batch = [answer_window(examples[i], args.window_chars, rng) for i in order[: args.batch_size]]
        del order[: args.batch_size]
        with autocast(args.dtype, device_of(reader.model).type):
            loss = reader.loss(batch)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optim.step()
        sched.step()
        optim.zero_grad()
        window.append(loss.item())
        if (step + 1) % every == 0 or step + 1 == args.steps:
            history.append({"step": step + 1, "loss": sum(window) / len(window)})
            window = []
    reader.model.eval()
    return history
