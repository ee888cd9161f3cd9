"""Exporters from the published Hugging Face datasets to the files the `paper` profiles read.

- Tevatron's XOR-TyDi training data (``Tevatron/xor-tydi``, config ``eng_span``, split ``train``:
  rows ``query_id, query, answers, positive_passages, negative_passages``) to one JSON Lines file;
- the authors' released corpus with generated queries (``ielab/xor-tydi-xqg-augmented``: rows
  ``docid, title, text, generated_queries``) to JSON Lines shards of `rows_per_shard` rows, the
  layout `xqg.data.xor_tydi.iter_augmented_corpus` reads.

Rows are streamed (``datasets.load_dataset(..., streaming=True)``: the 18.2M-row corpus never sits
in memory) and every file is written atomically, so an interrupted export leaves whole shards only;
rerunning skips the shards already written. Needs ``pip install datasets`` and the hub.

    python -m xqg.data.hub_export tevatron --out data/raw/xor-tydi/tevatron_xor_tydi_train.jsonl
    python -m xqg.data.hub_export released --out data/raw/xqg/xor-tydi-xqg-augmented
"""

from __future__ import annotations

import argparse
import itertools
import json
from collections.abc import Iterable, Iterator
from pathlib import Path

from tqdm.auto import tqdm

from xqg.io import atomic_path

TEVATRON = ("Tevatron/xor-tydi", "eng_span", "train")
RELEASED = ("ielab/xor-tydi-xqg-augmented", None, "train")


def _hub_rows(name: str, config: str | None, split: str) -> Iterator[dict]:
    try:
        from datasets import load_dataset
    except ImportError as e:
        raise ImportError("exporting from the hub needs `pip install datasets`") from e
    return iter(load_dataset(name, config, split=split, streaming=True))


def write_rows(rows: Iterable[dict], out: Path, keys: tuple[str, ...]) -> int:
    """`rows` as JSON Lines at `out` (atomically), each row checked to have `keys`; the count."""
    n = 0
    with atomic_path(out) as tmp, open(tmp, "w", encoding="utf-8") as f:
        for n, row in enumerate(rows, 1):
            missing = [k for k in keys if k not in row]
            if missing:
                raise ValueError(f"{out}: row {n} of the source lacks {missing}")
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    return n


def write_shards(rows: Iterable[dict], folder: Path, rows_per_shard: int, keys: tuple[str, ...]) -> int:
    """`rows` as JSON Lines shards ``corpus-00000.jsonl``, ... of `rows_per_shard` rows in
    `folder`; a shard already on disk is skipped (its rows are read past, not rewritten)."""
    folder.mkdir(parents=True, exist_ok=True)
    it, total = iter(rows), 0
    for shard in itertools.count():
        chunk = list(itertools.islice(it, rows_per_shard))
        if not chunk:
            return total
        path = folder / f"corpus-{shard:05d}.jsonl"
        if not path.exists():
            write_rows(chunk, path, keys)
        total += len(chunk)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("what", choices=("tevatron", "released"))
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--rows-per-shard", type=int, default=1_000_000)
    args = parser.parse_args(argv)
    if args.what == "tevatron":
        rows = tqdm(_hub_rows(*TEVATRON), desc="Tevatron/xor-tydi")
        n = write_rows(rows, args.out, ("query_id", "query", "positive_passages", "negative_passages"))
    else:
        rows = tqdm(_hub_rows(*RELEASED), desc="ielab/xor-tydi-xqg-augmented")
        n = write_shards(rows, args.out, args.rows_per_shard, ("docid", "title", "text", "generated_queries"))
    print(f"{n} rows -> {args.out}")


if __name__ == "__main__":
    main()
