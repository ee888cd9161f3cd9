"""Step 02 (`02_train_generator`): train the full generator and, for RQ1, the seen-only one.

`e5-decoder` (the offline default) is a decoder warm-started from multilingual-e5-small with its
checkpoint chosen by round-trip Recall@10 on held-out passages; `seq2seq` is any Hugging Face
seq2seq model (mT5 in the paper) fine-tuned with the paper's prompt, or used as released with
0 steps. See `xqg.study.generators` for the variants.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from xqg.data.schema import Passage
from xqg.generation.e5_generator import E5QuestionGenerator, build_generator, param_count
from xqg.generation.prompts import Triple
from xqg.generation.seq2seq import Seq2SeqGenerator, Seq2SeqTrainingArgs, fine_tune
from xqg.generation.train_e5 import (
    GeneratorTrainingArgs,
    TrainingEncodings,
    train_e5_generator,
    training_passages,
)
from xqg.models.device import resolve_device
from xqg.study.checks import check_before_work
from xqg.study.config import (
    Amount,
    Count,
    Dtype,
    GeneratorKind,
    GeneratorSelect,
    Precision,
    Rate,
    Share,
    StepConfig,
    arg,
)
from xqg.study.generators import check_kind, generator_variants
from xqg.study.named_models import encoder_path, generator_path
from xqg.study.provenance import Recipe, claim, code_version, key_of
from xqg.study.workspace import Workspace


@dataclass(frozen=True, kw_only=True)
class Config(StepConfig):
    """Parameters of step 02."""

    STEP = "02_train_generator"
    seed: int = arg("seed of initialisation and batches")
    generator_kind: GeneratorKind = arg("e5-decoder | seq2seq")
    generator_model: str = arg("e5 encoder (e5-decoder) or seq2seq name/path; tiny-mt5 for smoke")
    generator_steps: Amount = arg("optimisation steps (seq2seq: 0 uses a released checkpoint as it is)")
    generator_batch_size: Count = arg("triples per step")
    generator_lr: Rate = arg("AdamW learning rate")
    generator_eval_every: Count = arg("steps between checkpoint evaluations")
    generator_dtype: Dtype = arg(
        "e5-decoder: float32, or bfloat16 (the decoder's forward under CPU autocast)", default="float32"
    )
    generator_precision: Precision = arg(
        "seq2seq: float32, or bfloat16 / float16 mixed precision on GPUs; a CPU trains float32",
        default="float32",
    )
    decoder_layers: Count = arg("e5-decoder: decoder layers, copied from e5's top layers", default=2)
    copy_gate: bool = arg("e5-decoder: learned bonus for the passage's own pieces", default=True)
    copy_pointer: bool = arg(
        "e5-decoder: a pointer-generator (attention over the passage chooses the piece to copy) "
        "in place of the gate",
        default=False,
    )
    generator_select: GeneratorSelect = arg(
        "e5-decoder: the round trip that chooses the checkpoint: of every question, or only of those "
        "in the requested language (a copying generator can retrieve its passage in another)",
        default="round-trip",
    )
    restrict_vocabulary: bool = arg(
        "e5-decoder: a language's questions draw vocabulary pieces only from those its training "
        "questions use (copying is not restricted); a language it never trains on stays free",
        default=False,
    )
    script_budget: bool = arg(
        "e5-decoder: while sampling, a piece with letters of another script may follow only while the "
        "question has more letters in its language's script than in others (a copied name, not "
        "copied fragments)",
        default=False,
    )
    decoder_dropout: Share = arg(
        "e5-decoder: dropout on the decoder's embeddings and sub-layer outputs while training", default=0.0
    )
    unseen_languages: list[str] = arg("RQ1: languages a second (seen-only) generator never trains on")
    generator_staged: bool = arg(
        "the full generator starts from the seen-only one step 02 selected (RQ1's generator as the "
        "first stage of the full one) instead of from the pretrained weights",
        default=False,
    )


def run(workspace: Workspace, config: Config) -> dict[str, dict]:
    """Train every variant: {variant: {"history": [...], "parameters": n, ...}}."""
    check_before_work(workspace, config)
    check_kind(config.generator_kind)
    languages = sorted({t.language for t in workspace.triples()})
    variants = generator_variants(languages, config.unseen_languages)
    staged = config.generator_staged and "seen-only" in variants
    if config.generator_staged and not staged:
        raise ValueError("generator_staged needs a seen-only generator: set unseen_languages")
    out = {}
    order = sorted(variants, key=lambda v: v == "full") if staged else list(variants)  # a stage first
    # the frozen encoder's states and collection embeddings, made once for every e5-decoder variant
    encodings = shared_encodings(workspace) if config.generator_kind == "e5-decoder" else None
    for variant in order:
        if variant != "full" and config.generator_kind == "seq2seq" and config.generator_steps == 0:
            raise ValueError("a seen-only generator needs training: set generator_steps > 0")
        start = "seen-only" if staged and variant == "full" else None
        out[variant] = train_generator(workspace, config, variant, variants[variant], start, encodings)
    return out


def shared_encodings(ws: Workspace) -> TrainingEncodings:
    """What the frozen e5 encoder gives every variant's training: the states of all training
    triples' passages and the held-out ones, the embeddings of the collection (made when first
    asked for; nothing when every variant finished before)."""
    heldout = list(ws.passages(ws.generator_heldout).values())
    return TrainingEncodings(training_passages(ws.triples(), heldout), list(ws.passages().values()))


def train_generator(
    ws: Workspace,
    config: Config,
    variant: str = "full",
    train_languages: Sequence[str] | None = None,
    start_from: str | None = None,
    encodings: TrainingEncodings | None = None,
) -> dict:
    """Build or load one generator and train it on the triples of `train_languages` (all when None).

    With `start_from` (a variant step 02 trained before), training starts from that variant's
    selected weights, with a fresh optimiser and schedule. An e5-decoder generator takes the frozen
    encoder's work from `encodings` when given (shared between variants)."""
    out = ws.generator_dir(variant)
    inputs = {"data": key_of(ws.data, "01_data")}
    if start_from is not None:
        inputs["start"] = key_of(ws.generator_dir(start_from), "02_train_generator")
    languages = {"variant": variant, "train_languages": train_languages}
    claim(out, Recipe(code_version(__name__), {**config.params(), **languages}, inputs))
    every = ws.triples()
    train = [t for t in every if train_languages is None or t.language in train_languages]
    schedule = {  # what both kinds of training take from the configuration
        "output_dir": str(out),
        "steps": config.generator_steps,
        "batch_size": config.generator_batch_size,
        "learning_rate": config.generator_lr,
        "eval_every": config.generator_eval_every,
        "seed": config.seed,
    }
    if config.generator_kind == "e5-decoder":
        gen, heldout, collection = e5_generator_setup(ws, config, every, train)
        if start_from is not None:
            gen.load_decoder(ws.generator_checkpoint(start_from))
        history = train_e5_generator(
            gen,
            train,
            heldout,
            collection,
            GeneratorTrainingArgs(**schedule, dtype=config.generator_dtype, select=config.generator_select),
            encodings=encodings,
        )
        return {
            "history": history,
            "parameters": param_count(gen),
            "vocabulary": gen.vocab_size,
            "started_from": start_from,
        }
    pretrained = generator_path(config.generator_model, ws)
    gen = Seq2SeqGenerator.from_pretrained(ws.generator_checkpoint(start_from) if start_from else pretrained)
    gen.to(resolve_device(config.device))
    history = []
    if config.generator_steps > 0:
        given = ws.triples(ws.generator_dev) if ws.generator_dev.exists() else []
        dev = [t for t in given if train_languages is None or t.language in train_languages]
        rest = train
        if not given:  # no dev pairs of its own: every 20th training pair
            dev, rest = train[::20], [t for i, t in enumerate(train) if i % 20]
        history = fine_tune(
            gen, rest, dev, Seq2SeqTrainingArgs(**schedule, precision=config.generator_precision)
        )
    else:  # a released checkpoint used as is (the paper profile's shortcut)
        gen.save(ws.generator_checkpoint(variant))
    parameters = sum(p.numel() for p in gen.model.parameters())
    return {"history": history, "parameters": parameters, "started_from": start_from}


def e5_generator_setup(
    ws: Workspace, config: Config, every: Sequence[Triple], train: Sequence[Triple] | None = None
) -> tuple[E5QuestionGenerator, list[Passage], list[Passage]]:
    """A fresh e5-decoder generator, its held-out passages and the collection they are retrieved from.

    The vocabulary and start tokens come from every language's triples (`every`), so that each
    variant is the same model before training; with ``restrict_vocabulary`` each language's
    sampling vocabulary comes from the variant's own triples (`train`, default `every`), so a
    seen-only generator never learns an unseen language's pieces."""
    heldout = list(ws.passages(ws.generator_heldout).values())
    collection = list(ws.passages().values())
    vocab_texts = (
        [t.question for t in every]
        + [f"{p.title} {p.text}" for p in collection]
        + [f"{t.title} {t.passage}" for t in every]
    )
    gen = build_generator(
        encoder_path(config.generator_model, ws),
        sorted({t.language for t in every}),
        vocab_texts,
        n_layers=config.decoder_layers,
        copy_gate=config.copy_gate,
        copy_pointer=config.copy_pointer,
        script_budget=config.script_budget,
        seed=config.seed,
        dropout=config.decoder_dropout,
    ).to(resolve_device(config.device))
    if config.restrict_vocabulary:
        gen.restrict_vocabulary(every if train is None else train)
    return gen, heldout, collection
