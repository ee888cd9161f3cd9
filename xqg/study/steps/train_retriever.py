"""Step 04 (`04_train_retriever`): fine-tune the retriever (xDR) on the training benchmark.

Tevatron-style contrastive training of the shared query/passage encoder: with the training
data's own positives and negatives where it has them (Tevatron's XOR-TyDi file, resampled per
epoch as Tevatron does), else with hard negatives mined by the zero-shot encoder (gold passage
excluded); in this process or under torchrun (`retriever_processes`). ``retriever_steps: 0``
keeps only the zero-shot encoder.
"""

from __future__ import annotations

from dataclasses import dataclass

from xqg.retrieval.dense import passage_text
from xqg.retrieval.search import ranked_ids, retrieve
from xqg.study.checks import check_before_work
from xqg.study.config import Amount, Count, Precision, Rate, StepConfig, arg
from xqg.study.named_models import encoder_path, load_encoder
from xqg.study.provenance import Recipe, claim, code_version, key_of
from xqg.study.workspace import Workspace
from xqg.training.dense_retriever import TrainExample, TrainingArgs, mine_hard_negatives, train
from xqg.training.launch import torchrun, write_launch


@dataclass(frozen=True, kw_only=True)
class Config(StepConfig):
    """Parameters of step 04."""

    STEP = "04_train_retriever"
    seed: int = arg("seed of negatives and batches")
    encoder: str = arg("encoder to start from")
    retriever_steps: Amount = arg("optimisation steps, 0 for none")
    retriever_batch_size: Count = arg("queries per batch")
    n_negatives: Amount = arg("hard negatives per query")
    negative_depth: Count = arg("negatives are sampled from this many top passages")
    retriever_lr: Rate = arg("AdamW learning rate")
    temperature: Rate = arg("softmax temperature (1 for dot-product models, ~0.01 for e5)")
    query_max_len: Count = arg("query tokens")
    passage_max_len: Count = arg("passage tokens")
    retriever_precision: Precision = arg(
        "float32, or bfloat16 / float16 mixed precision on GPUs (the authors: --fp16); a CPU trains float32",
        default="float32",
    )
    retriever_processes: Count = arg(
        "training processes under torchrun (one per GPU; gloo processes on a CPU); 1: in this process",
        default=1,
    )


def run(workspace: Workspace, config: Config) -> dict:
    """Mine hard negatives with the zero-shot encoder, then train; ``retriever_steps: 0`` skips."""
    check_before_work(workspace, config)
    c = config
    # a retriever trained under other parameters is removed, even when this run trains none
    claim(
        workspace.retriever_dir,
        Recipe(code_version(__name__), c.params(), {"data": key_of(workspace.data, "01_data")}),
    )
    if c.retriever_steps == 0:
        return {"trained": False}
    passages = workspace.passages(workspace.train_collection)
    queries = [q for q in workspace.queries("train") if q.gold_passage in passages]
    text = {p: passage_text(passages[p].title, passages[p].text) for p in passages}
    groups = workspace.groups()
    enc = None
    if groups:  # the training data's own positives and negatives (Tevatron's XOR-TyDi file)
        missing = [q.id for q in queries if q.id not in groups]
        if missing:
            raise ValueError(f"{workspace.train_groups}: no group for training queries {missing[:5]}")
        examples = [
            TrainExample(
                q.text, tuple(text[p] for p in groups[q.id][0]), tuple(text[n] for n in groups[q.id][1])
            )
            for q in queries
        ]
    else:
        enc = load_encoder(c.encoder, workspace, c.device)
        examples = mined_examples(enc, queries, text, c)
    args = TrainingArgs(
        output_dir=str(workspace.retriever_dir),
        batch_size=c.retriever_batch_size,
        n_negatives=c.n_negatives,
        learning_rate=c.retriever_lr,
        epochs=1,
        max_steps=c.retriever_steps,
        query_max_len=c.query_max_len,
        passage_max_len=c.passage_max_len,
        temperature=c.temperature,
        save_steps=max(1, c.retriever_steps // 4),
        seed=c.seed,
        precision=c.retriever_precision,
    )
    if c.retriever_processes > 1:
        enc = None  # the workers load their own copies
        folder = write_launch(
            workspace.retriever_dir / "launch",
            str(encoder_path(c.encoder, workspace)),
            c.device,
            examples,
            args,
        )
        out = torchrun(folder, c.retriever_processes)
    else:
        out = train(enc or load_encoder(c.encoder, workspace, c.device), examples, args)
    return {
        "trained": True,
        "examples": len(examples),
        "final_loss": out["losses"][-1] if out["losses"] else None,
        "steps": out["step"],
        "negatives": "training data" if groups else "mined",
        "processes": c.retriever_processes,
    }


def mined_examples(enc, queries: list, text: dict[str, str], c: Config) -> list[TrainExample]:
    """Examples whose `n_negatives` hard negatives are sampled from the zero-shot encoder's top
    `negative_depth` passages of the training collection, the gold one excluded."""
    pids = list(text)
    pemb = enc.encode([text[p] for p in pids], "passage", max_length=c.passage_max_len)
    qemb = enc.encode([q.text for q in queries], "query", max_length=c.query_max_len)
    run_ = ranked_ids(retrieve(pids, pemb, [q.id for q in queries], qemb, k=c.negative_depth + 1))
    negatives = mine_hard_negatives(
        run_, {q.id: q.gold_passage for q in queries}, c.n_negatives, c.negative_depth, c.seed
    )
    return [
        TrainExample(q.text, (text[q.gold_passage],), tuple(text[n] for n in negatives[q.id]))
        for q in queries
    ]
