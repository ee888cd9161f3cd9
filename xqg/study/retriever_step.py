"""Step 04: fine-tune the retriever (xDR) on the training benchmark with mined hard negatives."""

from __future__ import annotations

from pathlib import Path

from xqg.retrieval import passage_text
from xqg.search import ranked_ids, retrieve
from xqg.study.artifacts import load_passages, load_queries
from xqg.study.models import load_encoder
from xqg.train_dr import TrainExample, TrainingArgs, mine_hard_negatives, train


def train_retriever(
    work: Path,
    encoder: str,
    steps: int,
    batch_size: int,
    n_negatives: int,
    negative_depth: int,
    learning_rate: float,
    temperature: float,
    query_max_len: int,
    passage_max_len: int,
    seed: int,
) -> dict:
    """Mine hard negatives with the zero-shot encoder, then train; `steps == 0` skips training."""
    if steps == 0:
        return {"trained": False}
    passages = load_passages(work / "data" / "train_collection.jsonl")
    queries = [q for q in load_queries(work / "data" / "train_queries.jsonl") if q.gold_passage in passages]
    enc = load_encoder(encoder, work)
    pids = list(passages)
    pemb = enc.encode(
        [passage_text(passages[p].title, passages[p].text) for p in pids],
        "passage",
        max_length=passage_max_len,
    )
    qemb = enc.encode([q.text for q in queries], "query", max_length=query_max_len)
    run = ranked_ids(retrieve(pids, pemb, [q.id for q in queries], qemb, k=negative_depth + 1))
    negatives = mine_hard_negatives(
        run, {q.id: q.gold_passage for q in queries}, n_negatives, negative_depth, seed
    )
    text = {p: passage_text(passages[p].title, passages[p].text) for p in pids}
    examples = [
        TrainExample(q.text, text[q.gold_passage], tuple(text[n] for n in negatives[q.id])) for q in queries
    ]
    args = TrainingArgs(
        output_dir=str(work / "models" / "retriever"),
        batch_size=batch_size,
        n_negatives=n_negatives,
        learning_rate=learning_rate,
        epochs=1,
        max_steps=steps,
        query_max_len=query_max_len,
        passage_max_len=passage_max_len,
        temperature=temperature,
        save_steps=max(1, steps // 4),
        seed=seed,
    )
    out = train(enc, examples, args)
    return {
        "trained": True,
        "examples": len(examples),
        "final_loss": out["losses"][-1] if out["losses"] else None,
        "steps": out["step"],
    }
