"""Training the e5-warm-started generator, checkpoints chosen by round-trip recall.

Encoder states of the training passages are computed once (the encoder is frozen), so a step
costs only the shallow decoder. Every `eval_every` steps the generator writes one question per
held-out passage and language; the checkpoint whose questions best retrieve their own passage
(Recall@10 with the same e5 as retriever) is kept as ``best``: loss alone rewarded fluent
questions about the wrong passage. The history also counts the questions in the requested
language (the offline check of `xqg.generation.quality`) and the hits among them, which can
choose instead: a generator that copies from the passage can retrieve it in the wrong language.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from xqg.data.schema import Passage
from xqg.generation.e5_generator import PAD, E5QuestionGenerator, stack_copy_inputs
from xqg.generation.prompts import Triple
from xqg.generation.quality import in_language
from xqg.io import atomic_dir, write_json
from xqg.models.precision import autocast
from xqg.retrieval.dense import passage_text
from xqg.retrieval.search import retrieve

# what can choose the best checkpoint -> its history key; "round-trip in language" counts only the
# hits of questions in the requested language
SELECTION = {"round-trip": "mean", "round-trip in language": "mean in language"}


@dataclass
class GeneratorTrainingArgs:
    """Settings of one generator training run."""

    output_dir: str
    steps: int = 1500
    batch_size: int = 32
    learning_rate: float = 5e-4
    warmup_steps: int = 100
    eval_every: int = 250
    top_k: int = 10
    max_new_tokens: int = 32
    seed: int = 0
    dtype: str = "float32"  # or bfloat16: the decoder's forward under autocast (weights stay fp32)
    select: str = "round-trip"  # chooses `best`: a key of SELECTION


def _pad_states(items: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    length = max(x.shape[0] for x in items)
    device = items[0].device
    states = torch.zeros(len(items), length, items[0].shape[1], device=device)
    mask = torch.zeros(len(items), length, dtype=torch.long, device=device)
    for i, x in enumerate(items):
        states[i, : x.shape[0]] = x
        mask[i, : x.shape[0]] = 1
    return states, mask


def training_passages(train: Sequence[Triple], heldout: Sequence[Passage]) -> list[Passage]:
    """The passages of the training triples (in their order) and the held-out ones."""
    passages = {t.passage_id: Passage(t.passage_id, t.title, t.passage) for t in train}
    passages.update({p.id: p for p in heldout})
    return list(passages.values())


class StateCache:
    """Encoder states and copy inputs of passages, computed once in batches."""

    def __init__(self, model: E5QuestionGenerator, passages: Sequence[Passage], batch_size: int = 16):
        self.pointer = model.config.copy_pointer  # how the copy inputs stack (not the model itself)
        self.states: dict[str, torch.Tensor] = {}
        self.copy: dict[str, torch.Tensor] = {}
        for s in tqdm(
            range(0, len(passages), batch_size), desc="encode passages for the decoder", leave=False
        ):
            chunk = list(passages[s : s + batch_size])
            states, mask = model.encode_passages(chunk)
            copy = model.copy_inputs(chunk)
            for i, p in enumerate(chunk):
                self.states[p.id] = states[i, : int(mask[i].sum())].clone()
                # a gate's mask is mostly zeros; the pointer's ids are short
                self.copy[p.id] = copy[i] if model.config.copy_pointer else copy[i].to_sparse()

    def batch(self, ids: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Padded states, masks and the copy batch of passages."""
        states, mask = _pad_states([self.states[i] for i in ids])
        copy = [self.copy[i] for i in ids]
        dense = [c.to_dense() if c.is_sparse else c for c in copy]
        return states, mask, stack_copy_inputs(dense, self.pointer)


class TrainingEncodings:
    """The frozen encoder's work for training generators: decoder states of the training and
    held-out passages (`StateCache`) and the retrieval embeddings of the collection the round trip
    searches. Computed at the first generator's request and shared with every later generator of
    the same encoder and vocabulary (step 02's variants), whose training then costs only its decoder."""

    def __init__(self, passages: Sequence[Passage], collection: Sequence[Passage]):
        self.passages = list({p.id: p for p in passages}.values())
        self.collection = list(collection)
        self._made: tuple[StateCache, tuple[list[str], np.ndarray]] | None = None
        # what the first generator's encodings fit (its encoder, copy mechanism and vocabulary), kept
        # rather than the generator itself
        self._made_for: tuple[str, bool, torch.Tensor] | None = None

    def for_model(self, model: E5QuestionGenerator) -> tuple[StateCache, tuple[list[str], np.ndarray]]:
        """The passage states and (collection ids, embeddings), computed with `model`'s encoder the
        first time."""
        path, pointer = model.config.encoder_path, model.config.copy_pointer
        vocabulary = model.full_of_reduced
        if self._made is None:
            cache = StateCache(model, self.passages)
            texts = [passage_text(p.title, p.text) for p in self.collection]
            emb = model.encoder.encode(texts, "passage", max_length=256, progress=False)
            self._made = cache, ([p.id for p in self.collection], emb)
            self._made_for = (path, pointer, vocabulary.clone())
        made_path, made_pointer, made_vocabulary = self._made_for
        if (path, pointer) != (made_path, made_pointer) or not torch.equal(vocabulary, made_vocabulary):
            raise ValueError(
                "these encodings were made for a generator of another encoder, vocabulary or copy "
                "mechanism; give this one its own TrainingEncodings"
            )
        return self._made


@torch.no_grad()
def round_trip_recall(
    model: E5QuestionGenerator,
    cache: StateCache,
    sources: Sequence[Passage],
    collection: tuple[list[str], np.ndarray],
    languages: Sequence[str],
    top_k: int,
    max_new_tokens: int,
    seed: int,
    k: int = 10,
) -> dict[str, float]:
    """Per language: % of generated questions whose source passage is in the top k; with "{lang} in
    language" (% of questions in the requested language) and macro means of both, and "mean in
    language" (macro % of questions both in language and retrieving their passage)."""
    out, in_lang, hits_in_lang = {}, {}, {}
    for li, lang in enumerate(languages):
        g = torch.Generator(device=model.out_bias.device).manual_seed(seed + li)
        texts = []
        for s in range(0, len(sources), 32):
            ids = [p.id for p in sources[s : s + 32]]
            states, mask, copy = cache.batch(ids)
            samples = model.sample_ids(states, mask, copy, lang, 1, top_k, max_new_tokens, g)
            texts += [q[0] for q in model.decode_samples(samples, 1)]
        keep = [i for i, t in enumerate(texts) if t.strip()]
        good = {i for i in keep if in_language(texts[i], lang)}
        in_lang[lang] = 100.0 * len(good) / len(sources)
        if not keep:
            out[lang], hits_in_lang[lang] = 0.0, 0.0
            continue
        qemb = model.encoder.encode([texts[i] for i in keep], "query", max_length=64, progress=False)
        run = retrieve(collection[0], collection[1], [sources[i].id for i in keep], qemb, k)
        hit = {i for i in keep if sources[i].id in [p for p, _ in run[sources[i].id]]}
        out[lang] = 100.0 * len(hit) / len(sources)
        hits_in_lang[lang] = 100.0 * len(hit & good) / len(sources)
    out["mean"] = float(np.mean([out[lang] for lang in languages]))
    out.update({f"{lang} in language": in_lang[lang] for lang in languages})
    out["in language"] = float(np.mean(list(in_lang.values())))
    out["mean in language"] = float(np.mean(list(hits_in_lang.values())))
    return out


def _save(model: E5QuestionGenerator, path: Path, extra: dict | None = None) -> None:
    with atomic_dir(path) as tmp:
        model.save(tmp)
        if extra is not None:
            torch.save(extra, tmp / "trainer_state.pt")


def train_e5_generator(
    model: E5QuestionGenerator,
    train: Sequence[Triple],
    heldout: Sequence[Passage],
    collection: Sequence[Passage],
    args: GeneratorTrainingArgs,
    on_evaluation: Callable[[int], None] | None = None,
    encodings: TrainingEncodings | None = None,
) -> list[dict]:
    """Train, evaluate round-trip recall on `heldout` (retrieving from `collection`), keep the best.

    `encodings` (covering the passages of `train` and `heldout`, and `collection`) shares the
    frozen encoder's work with other generators; by default it is made here.

    Resumes from ``output_dir/last``. Returns the evaluation history (one dict per evaluation).
    `on_evaluation(step)` is called after each evaluation (a benchmark's clock; nothing it
    measures enters the saved history, which stays byte-identical across machines).
    """
    if not train:
        raise ValueError("no generator training triples")
    if args.select not in SELECTION:
        raise ValueError(f"select {args.select!r}: choose one of {sorted(SELECTION)}")
    key = SELECTION[args.select]
    out = Path(args.output_dir)
    languages = sorted({t.language for t in train})
    last = out / "last" / "trainer_state.pt"
    if last.exists():
        done = torch.load(last, weights_only=False)
        if done["step"] >= args.steps:  # finished before: nothing to recompute
            return done["history"]
    if encodings is None:
        encodings = TrainingEncodings(training_passages(train, heldout), collection)
    cache, (coll_ids, coll_emb) = encodings.for_model(model)
    missing = {t.passage_id for t in train} | {p.id for p in heldout}
    missing -= cache.states.keys()
    if missing or coll_ids != [p.id for p in collection]:
        raise ValueError(
            f"the shared encodings lack {len(missing)} training or held-out passages (e.g. "
            f"{sorted(missing)[:3]}) or were made for another collection"
        )
    targets = [torch.tensor(model.target_ids(t.language, t.question)) for t in train]
    params = [p for p in model.parameters() if p.requires_grad]
    optim = torch.optim.AdamW(params, lr=args.learning_rate, weight_decay=0.01)
    sched = torch.optim.lr_scheduler.LambdaLR(optim, lambda s: min(1.0, (s + 1) / args.warmup_steps))
    step, history, best = 0, [], -1.0
    if (out / "last" / "trainer_state.pt").exists():
        state = torch.load(out / "last" / "trainer_state.pt", weights_only=False)
        model.load_state_dict(torch.load(out / "last" / "decoder.pt"), strict=False)
        optim.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        step, history = state["step"], state["history"]
        best = max([h[key] for h in history], default=-1.0)
    rng = random.Random(f"{args.seed}:0")
    torch.manual_seed(args.seed)
    if step:  # continue both random streams where the checkpoint left them: a resumed run is identical
        rng.setstate(state["rng"])
        torch.set_rng_state(state["torch_rng"])
    bar = tqdm(total=args.steps, initial=step, desc="train generator")
    losses: list[float] = []
    while step < args.steps:
        model.train()
        idx = rng.sample(range(len(train)), min(args.batch_size, len(train)))
        states, mask, copy = cache.batch([train[i].passage_id for i in idx])
        tgt = torch.nn.utils.rnn.pad_sequence([targets[i] for i in idx], batch_first=True, padding_value=PAD)
        with autocast(args.dtype, states.device.type):
            loss = model.loss(states, mask, copy, tgt.to(states.device))
        optim.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optim.step()
        sched.step()
        step += 1
        losses.append(loss.item())
        bar.update(1)
        bar.set_postfix(loss=f"{np.mean(losses[-50:]):.2f}")
        if step % args.eval_every == 0 or step == args.steps:
            rt = round_trip_recall(
                model,
                cache,
                heldout,
                (coll_ids, coll_emb),
                languages,
                args.top_k,
                args.max_new_tokens,
                args.seed,
            )
            history.append({"step": step, "loss": float(np.mean(losses[-args.eval_every :])), **rt})
            print(
                f"step {step}: loss {history[-1]['loss']:.3f} round-trip R@10 {rt['mean']:.1f} "
                + " ".join(f"{lang} {rt[lang]:.0f}" for lang in languages)
            )
            if on_evaluation is not None:
                on_evaluation(step)
            if rt[key] > best:
                best = rt[key]
                _save(model, out / "best")
            _save(
                model,
                out / "last",
                {
                    "optimizer": optim.state_dict(),
                    "scheduler": sched.state_dict(),
                    "step": step,
                    "history": history,
                    "rng": rng.getstate(),
                    "torch_rng": torch.get_rng_state(),
                },
            )
    bar.close()
    write_json(out / "history.json", {"args": asdict(args), "history": history})
    return history
