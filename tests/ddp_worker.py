"""Worker for the two-process (gloo) training test: `torchrun --nproc_per_node 2 tests/ddp_worker.py OUT`."""

from __future__ import annotations

import json
import sys

import torch

from xqg.data.mlqa import load_mlqa
from xqg.models.tiny import tiny_encoder
from xqg.training.dense_retriever import TrainExample, TrainingArgs, train


def main(out: str) -> None:
    bench = load_mlqa(languages=["de"])
    texts = [p.text for p in list(bench.passages.values())[:40]] + [q.text for q in bench.queries[:200]]
    passages = [p.text for p in list(bench.passages.values())[:50]]
    examples = [
        TrainExample(q.text, (bench.passages[q.gold_passage].text,), (passages[i], passages[i + 1]))
        for i, q in enumerate(bench.queries[:16])
    ]
    enc = tiny_encoder(texts, "bert", seed=0)
    args = TrainingArgs(
        output_dir=out,
        batch_size=8,
        n_negatives=2,
        learning_rate=1e-3,
        max_steps=4,
        save_steps=2,
        warmup_ratio=0.0,
        query_max_len=16,
        passage_max_len=32,
    )
    result = train(enc, examples, args)
    rank = torch.distributed.get_rank()
    checksum = float(sum(p.double().sum() for p in enc.model.parameters()))
    with open(f"{out}/rank{rank}.json", "w") as f:
        json.dump(
            {"checksum": checksum, "losses": result["losses"], "world": torch.distributed.get_world_size()}, f
        )
    torch.distributed.destroy_process_group()


if __name__ == "__main__":
    main(sys.argv[1])
