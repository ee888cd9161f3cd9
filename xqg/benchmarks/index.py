"""Approximate indexes against exact search on the `mini` embeddings.

    python -m xqg.benchmarks.index [--profile mini] [--k 10]

Reads the cached collection and test-query embeddings of a finished `05_retrieve` step and
prints, per index type, the share of the exact top-k it recovers and the gold-passage Recall@20.
The MLQA collection is small (978 passages); the numbers say whether an index type works with
these embeddings, not how it scales to 18M passages.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd

from xqg.metrics import passage as pm
from xqg.retrieval.embeddings import load_embeddings
from xqg.retrieval.search import INDEX_TYPES, build_index, search
from xqg.study.workspace import Workspace


def main(argv: list[str] | None = None) -> pd.DataFrame:
    """Run and print the comparison."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--profile", default="mini")
    ap.add_argument("--k", type=int, default=10)
    args = ap.parse_args(argv)
    ws = Workspace(args.profile)
    emb_dirs = sorted((ws.work / "emb").glob("*-zero-shot-*"))
    tests = sorted(emb_dirs[0].glob("queries-test-*.npz")) if emb_dirs else []
    if not tests:
        raise FileNotFoundError(
            f"{ws.work}/emb has no test-query embeddings: run `make 05_retrieve PROFILE={args.profile}`"
        )
    pids, pemb = load_embeddings(emb_dirs[0] / "passages.npz")
    qids, qemb = load_embeddings(tests[0])
    gold = {q.id: q.gold_passage for q in ws.queries("eval")}
    qrels = {q: {gold[q]: 1} for q in qids}
    exact = None
    rows = []
    for kind in INDEX_TYPES:
        start = time.perf_counter()
        index = build_index(pemb, kind, nlist=32, nprobe=8)
        _, rows_idx = search(index, qemb, 20)
        secs = time.perf_counter() - start
        ranked = {q: [pids[j] for j in r if j >= 0] for q, r in zip(qids, rows_idx)}
        exact = exact or ranked
        overlap = np.mean([len(set(ranked[q][: args.k]) & set(exact[q][: args.k])) / args.k for q in qids])
        r20 = 100 * np.mean(list(pm.per_query(ranked, qrels, ["Recall@20"])["Recall@20"].values()))
        rows.append(
            {
                "index": kind,
                f"overlap with exact top-{args.k} %": 100 * overlap,
                "Recall@20 % (all queries)": r20,
                "build+search s": secs,
            }
        )
    df = pd.DataFrame(rows).set_index("index")
    print(f"{len(pids)} passages, {len(qids)} queries, dimension {pemb.shape[1]}")
    print(df.round(2).to_string())
    return df


if __name__ == "__main__":
    main()
