"""Training the extractive reader on (question, English context, answer) examples.

Each step reads a batch of examples, each cut to a window of the context around its answer (the
answer placed at a random point of the window), so that a short `max_length` still holds the
answer; the loss is the start/end cross-entropy of `Reader.loss`. Linear warm-up and decay,
optional bf16 autocast on CPU; the word-embedding table stays frozen by default (on CPU its
optimiser update alone costs more than the layers), and `freeze_layers` keeps the embeddings and
the lowest encoder layers fixed too, so the backward pass stops above them; the caller saves the
model. Given a state file, training saves its state there every tenth of the steps and a killed
run continues from it, to the same weights as a run never stopped.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from tqdm.auto import tqdm

from xqg.data.schema import Passage, Query
from xqg.io import atomic_path
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
    freeze_layers: int = 0  # the embeddings and this many lowest encoder layers stay fixed (0: none)


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


def freeze_lower_layers(model: torch.nn.Module, n: int) -> None:
    """Keep the embeddings and the `n` lowest layers of a BERT-like model's encoder (its
    ``encoder.layer`` stack) fixed: no gradient reaches them, so backward stops above them.
    `n` = 0 leaves any model as it is."""
    if n == 0:
        return
    base = getattr(model, getattr(model, "base_model_prefix", ""), model)
    layers = getattr(getattr(base, "encoder", None), "layer", None)
    if layers is None or not hasattr(base, "embeddings"):
        raise ValueError(f"freeze_layers: {type(model).__name__} has no BERT-like encoder.layer to freeze")
    if not 0 < n <= len(layers):
        raise ValueError(f"freeze_layers must be 0..{len(layers)} (the encoder's layers), got {n}")
    base.embeddings.requires_grad_(False)
    for layer in layers[:n]:
        layer.requires_grad_(False)


def _trainable(reader: Reader) -> dict[str, torch.nn.Parameter]:
    return {name: p for name, p in reader.model.named_parameters() if p.requires_grad}


def train_reader(
    reader: Reader,
    examples: Sequence[QAExample],
    args: ReaderTrainingArgs,
    state_file: Path | None = None,
) -> list[dict]:
    """Train in place; returns the loss history (mean over each tenth of the steps).

    With `state_file`, the trained weights, optimiser, schedule, both random streams and the
    batch order are written there (atomically) after every tenth of the steps, and a call that
    finds the file continues from it; the file names its args and examples, and a state of other
    ones is refused. The caller removes it once the model is saved."""
    if not examples:
        raise ValueError("no reader training examples (no answer was found in its gold passage)")
    rng = random.Random(args.seed)
    torch.manual_seed(args.seed)
    if args.freeze_word_embeddings:
        reader.model.get_input_embeddings().weight.requires_grad_(False)
    freeze_lower_layers(reader.model, args.freeze_layers)
    params = list(_trainable(reader).values())
    optim = torch.optim.AdamW(params, lr=args.learning_rate, weight_decay=0.01)
    sched = warmup_linear_decay(optim, int(args.warmup_fraction * args.steps), args.steps)
    order: list[int] = []
    history, window = [], []
    every = max(1, args.steps // 10)
    first = 0
    identity = {"args": asdict(args), "examples": len(examples)}
    if state_file is not None and Path(state_file).exists():
        state = torch.load(state_file, weights_only=False)
        if state["identity"] != identity:
            raise ValueError(
                f"{state_file}: the reader training state of {state['identity']}, not of {identity}; "
                "remove the file to train from the start"
            )
        with torch.no_grad():
            for name, p in _trainable(reader).items():
                p.copy_(state["weights"][name])
        optim.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        rng.setstate(state["rng"])
        torch.set_rng_state(state["torch_rng"])
        if state["cuda_rng"] is not None:
            torch.cuda.set_rng_state_all(state["cuda_rng"])
        first, order, history = state["step"], state["order"], state["history"]
    on_cuda = device_of(reader.model).type == "cuda"
    reader.model.train()
    for step in tqdm(range(first, args.steps), desc="train reader", initial=first, total=args.steps):
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
            if state_file is not None and step + 1 < args.steps:  # a tenth ends with its window
                state = {
                    "identity": identity,
                    "step": step + 1,
                    "weights": {n: p.detach().clone() for n, p in _trainable(reader).items()},
                    "optimizer": optim.state_dict(),
                    "scheduler": sched.state_dict(),
                    "rng": rng.getstate(),
                    "torch_rng": torch.get_rng_state(),
                    "cuda_rng": torch.cuda.get_rng_state_all() if on_cuda else None,
                    "order": list(order),
                    "history": list(history),
                }
                with atomic_path(state_file) as tmp:
                    torch.save(state, tmp)
    reader.model.eval()
    return history
