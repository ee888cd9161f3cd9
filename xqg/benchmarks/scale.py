"""How the streamed query sums and the blocked search scale: memory flat in queries per passage
and (beyond one block) in passages, disk linear in passages.

    python -m xqg.benchmarks.scale [--passages 10000 50000 200000] [--queries 5 35] [--dim 768]
                                   [--dtype float16] [--block 32768] [--out results/bench/scale]

Each point runs in a fresh process: it writes a synthetic generated-queries file (P passages x Q
queries: Q / 5 languages x 5 samples), folds it into running sums the way step 05 does
(`xqg.retrieval.query_sums`: all languages at n = 1..5 and one language subset at n = 5), writes
the passage embeddings a block at a time, and searches them the way `EmbeddingCache.run` does:
memory-mapped passages and sums, alpha applied and 100 queries searched exactly, one block of
`--block` passages at a time, the top 100 merged (`xqg.retrieval.search.search_blocks`). The
encoder is a stand-in that draws a seeded random vector per query, at the paper encoders' width
(768): the benchmark measures the O() of the streaming machinery (memory and disk), not a
model's speed (`python -m xqg.benchmarks.encode` does that).

Reported per point: wall time; peak anonymous memory (RssAnon, sampled after every chunk and
every searched block; file-backed pages of the memory-mapped sums and passages are page cache,
not counted); peak RSS as the kernel records it (VmHWM); disk of the sums and of the passage
embeddings per passage. Then a projection for the paper's scale (18.2M passages x 35 queries)
from a straight-line fit in passages, and the GPU hours of each step from counted FLOPs
(`gpu_hours`).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from xqg.io import iter_jsonl, write_csv, write_text_atomic
from xqg.retrieval.embeddings import open_embeddings, save_embedding_blocks
from xqg.retrieval.query_sums import SumGroup, augment_with_sums, build_query_sums
from xqg.retrieval.search import search_blocks

LANGUAGES = ["ar", "bn", "fi", "ja", "ko", "ru", "te"]
PER_LANGUAGE = 5
PAPER_PASSAGES = 18_200_000
PAPER_QUERIES = 35


def _status(field: str) -> int:
    """A memory field of /proc/self/status in bytes (0 where there is no /proc)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    except FileNotFoundError:
        pass
    return 0


def write_queries(path: Path, passages: int, queries: int) -> None:
    """A generated-queries file: `queries` per passage (queries / 5 languages x 5 samples)."""
    langs = LANGUAGES[: queries // PER_LANGUAGE]
    with open(path, "w", encoding="utf-8") as f:
        for p in range(passages):
            for lang in langs:
                for s in range(PER_LANGUAGE):
                    record = {
                        "passage_id": f"p{p}",
                        "language": lang,
                        "sample": s,
                        "text": f"q {p} {lang} {s}",
                    }
                    f.write(json.dumps(record) + "\n")


def one_point(passages: int, queries: int, dim: int, dtype: str, chunk: int, block: int = 1 << 15) -> dict:
    """Build and use the sums for one (passages, queries per passage) point; its measurements."""
    if queries % PER_LANGUAGE or not 0 < queries // PER_LANGUAGE <= len(LANGUAGES):
        raise ValueError(f"queries per passage must be 5, 10, ..., 35, got {queries}")
    langs = LANGUAGES[: queries // PER_LANGUAGE]
    peak = {"anon": _status("RssAnon")}
    with tempfile.TemporaryDirectory(prefix="xqg-scale-") as tmp:
        tmp = Path(tmp)
        write_queries(tmp / "queries.jsonl", passages, queries)
        pids = [f"p{p}" for p in range(passages)]
        drawn = iter(range(1 << 40))

        def encode(texts: list[str]) -> np.ndarray:
            rng = np.random.default_rng(next(drawn))
            return rng.standard_normal((len(texts), dim), dtype=np.float32)

        def sample(_records, _emb) -> None:
            peak["anon"] = max(peak["anon"], _status("RssAnon"))

        groups = [SumGroup(None, tuple(range(1, PER_LANGUAGE + 1))), SumGroup((langs[0],), (PER_LANGUAGE,))]
        start = time.perf_counter()
        sums = build_query_sums(
            iter_jsonl(tmp / "queries.jsonl"),
            pids,
            encode,
            groups,
            tmp / "sums",
            languages=langs,
            dim=dim,
            dtype=dtype,
            chunk_size=chunk,
            on_chunk=sample,
        )
        built = time.perf_counter() - start
        rng = np.random.default_rng(0)
        spans = range(0, passages, block)
        save_embedding_blocks(
            tmp / "passages.npz",
            pids,
            (rng.standard_normal((min(block, passages - s), dim), dtype=np.float32) for s in spans),
            dim,
        )
        _, pemb = open_embeddings(tmp / "passages.npz")
        total, counts = sums.total(PER_LANGUAGE), sums.per_passage(PER_LANGUAGE)

        def augmented():
            for s in spans:
                yield augment_with_sums(
                    pemb[s : s + block], total[s : s + block], counts[s : s + block], 0.01
                )
                peak["anon"] = max(peak["anon"], _status("RssAnon"))

        searched = time.perf_counter()
        search_blocks(
            augmented(), np.random.default_rng(1).standard_normal((100, dim), dtype=np.float32), 100
        )
        searched = time.perf_counter() - searched
        peak["anon"] = max(peak["anon"], _status("RssAnon"))
        disk = sum(f.stat().st_size for f in (tmp / "sums").iterdir())
        return {
            "passages": passages,
            "queries per passage": queries,
            "dim": dim,
            "sums dtype": dtype,
            "build s": round(built, 2),
            "search s": round(searched, 2),
            "total s": round(time.perf_counter() - start, 2),
            "peak anon MB": round(peak["anon"] / 2**20, 1),
            "peak RSS MB": round(_status("VmHWM") / 2**20, 1),
            "sums bytes per passage": round(disk / passages, 1),
            "queries file bytes per passage": round((tmp / "queries.jsonl").stat().st_size / passages, 1),
            "passage embeddings bytes per passage": round(
                (tmp / "passages.npz").stat().st_size / passages, 1
            ),
        }


def gpu_hours(tflops: float = 312.0, utilisation: float = 0.3) -> pd.DataFrame:
    """GPU hours per paper step from counted FLOPs (2 x parameters x tokens forward, 3x that for
    training) at `tflops` peak (A100 bf16) and `utilisation`. Token counts are the paper's
    maximum lengths (passages 128, queries 32, generated questions up to 64 new tokens), so these
    are upper bounds for the model compute; decoding runs far below peak in practice."""
    mbert, mt5_half = 86e6, 290e6  # non-embedding parameters: mBERT; one half of mT5-base
    steps = [
        # (step, FLOPs)
        ("02 fine-tune mT5-base (2,000 steps x 128 pairs)", 6 * 2 * mt5_half * 2000 * 128 * (128 + 64)),
        ("03 generate 637M queries (encoder once per passage x language)",
         2 * mt5_half * PAPER_PASSAGES * 7 * 128 + 2 * mt5_half * PAPER_PASSAGES * PAPER_QUERIES * 64),
        ("04 train xDR (40 epochs x 15.2k queries x (1 + 8) texts)",
         6 * mbert * 40 * 15_200 * (32 + 8 * 128)),
        ("05 encode 18.2M passages", 2 * mbert * PAPER_PASSAGES * 128),
        ("05 encode 637M generated queries", 2 * mbert * PAPER_PASSAGES * PAPER_QUERIES * 32),
    ]  # fmt: skip
    rate = tflops * 1e12 * utilisation
    return pd.DataFrame(
        [{"step": s, "PFLOPs": round(f / 1e15, 1), "GPU hours": round(f / rate / 3600, 1)} for s, f in steps]
    )


def project(points: pd.DataFrame) -> pd.DataFrame:
    """Disk and memory at 18.2M passages x 35 queries from a straight-line fit in passages."""
    at35 = points[points["queries per passage"] == points["queries per passage"].max()]
    slope, intercept = np.polyfit(at35["passages"], at35["peak anon MB"], 1)
    disk = float(at35["sums bytes per passage"].iloc[-1]) * PAPER_PASSAGES
    passages = float(at35["passage embeddings bytes per passage"].iloc[-1]) * PAPER_PASSAGES
    return pd.DataFrame(
        [
            {"quantity": "query sums on disk (GB)", "value": round(disk / 1e9, 1)},
            {"quantity": "passage embeddings on disk (GB, float32)", "value": round(passages / 1e9, 1)},
            {"quantity": "share of the authors' ~2.5 TB of query embeddings (%)",
             "value": round(100 * disk / 2.5e12, 1)},
            {"quantity": "peak anonymous memory (GB, linear fit in passages)",
             "value": round((intercept + slope * PAPER_PASSAGES) / 1024, 1)},
        ]
    )  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    """Run the grid (each point in its own process) and write the tables."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--passages", type=int, nargs="+", default=[10_000, 50_000, 200_000])
    ap.add_argument("--queries", type=int, nargs="+", default=[5, 35])
    ap.add_argument("--dim", type=int, default=768)
    ap.add_argument("--dtype", default="float16", choices=["float64", "float32", "float16"])
    ap.add_argument("--chunk", type=int, default=1 << 15)
    ap.add_argument("--block", type=int, default=1 << 15, help="passages augmented and searched at a time")
    ap.add_argument("--out", type=Path, default=Path("results/bench/scale"))
    ap.add_argument("--one", type=int, nargs=2, metavar=("PASSAGES", "QUERIES"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.one:
        print(json.dumps(one_point(*args.one, args.dim, args.dtype, args.chunk, args.block)))
        return
    rows = []
    for p in args.passages:
        for q in args.queries:
            cmd = [sys.executable, "-m", "xqg.benchmarks.scale", "--one", str(p), str(q)]
            cmd += ["--dim", str(args.dim), "--dtype", args.dtype, "--chunk", str(args.chunk)]
            cmd += ["--block", str(args.block)]
            out = subprocess.run(cmd, capture_output=True, text=True, check=True, env={**os.environ})
            rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
            print(rows[-1], flush=True)
    points = pd.DataFrame(rows)
    args.out.mkdir(parents=True, exist_ok=True)
    tables = {"points": points, "projection": project(points), "gpu_hours": gpu_hours()}
    for name, table in tables.items():
        write_csv(table, args.out / f"{name}.csv")
    write_text_atomic(
        args.out / "scale.md", "\n\n".join(t.to_markdown(index=False) for t in tables.values()) + "\n"
    )
    print("\n\n".join(t.to_markdown(index=False) for t in tables.values()))


if __name__ == "__main__":
    main()
