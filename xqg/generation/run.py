"""Generating queries for a collection: resumable, shardable JSON Lines output.

One line per query: ``{"passage_id", "language", "sample", "text"}``. Work is cut into
units (language, batch of passages) over the shard's passages in a fixed order, and each unit
is sampled under its own seed, so a run that was killed and resumed writes exactly the lines
an uninterrupted run writes. On resume, lines of unfinished units (and a torn last line) are
dropped before work continues.

Sharded runs write one file per shard (`shard_file`) and a done marker when a shard finishes;
`merge_shards` concatenates finished shards, in order, into the output: the same bytes as one
unsharded run, whatever the number of shards.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

from tqdm.auto import tqdm

from xqg.data.schema import Passage
from xqg.io import atomic_path, iter_jsonl, read_appendable_jsonl, write_jsonl
from xqg.retrieval.embeddings import shard_bounds


class QueryGenerator(Protocol):
    """Anything that writes `n` questions in `language` for each passage."""

    def generate(
        self,
        passages: Sequence[Passage],
        language: str,
        n: int,
        *,
        top_k: int,
        max_new_tokens: int,
        seed: int,
    ) -> list[list[str]]: ...


def unit_seed(seed: int, language: str, first_passage: str) -> int:
    """Seed of one unit of work, independent of what ran before it."""
    return int(hashlib.sha1(f"{seed}:{language}:{first_passage}".encode()).hexdigest()[:8], 16)


def _complete_units(path: Path, n: int) -> set[tuple[str, str]]:
    """(passage, language) pairs with all `n` samples in the file; rewrites the file to hold only them."""
    records = read_appendable_jsonl(path)
    count: dict[tuple[str, str], int] = {}
    for r in records:
        key = (r["passage_id"], r["language"])
        count[key] = count.get(key, 0) + 1
    done = {k for k, c in count.items() if c == n}
    kept = [r for r in records if (r["passage_id"], r["language"]) in done]
    if len(kept) != len(records):
        write_jsonl(path, kept)
    return done


def generate_collection(
    generator: QueryGenerator,
    passages: Sequence[Passage],
    languages: Sequence[str],
    n: int,
    out_path: str | Path,
    *,
    top_k: int = 10,
    max_new_tokens: int = 32,
    batch_size: int = 16,
    seed: int = 0,
    shard: int = 0,
    num_shards: int = 1,
) -> Path:
    """Write `n` queries per passage per language to `out_path` (shard `shard` of `num_shards`)."""
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    # shards hold whole batches, so that their files, concatenated in order, are the lines one
    # unsharded run writes (each batch is sampled under its own seed)
    first, last = shard_bounds(-(-len(passages) // batch_size), shard, num_shards)
    mine = list(passages[first * batch_size : last * batch_size])
    done = _complete_units(out_path, n)
    # batch-major: a generator can reuse a batch's encoder states for every language
    units = [(lang, mine[s : s + batch_size]) for s in range(0, len(mine), batch_size) for lang in languages]
    todo = [(lang, batch) for lang, batch in units if any((p.id, lang) not in done for p in batch)]
    with open(out_path, "a", encoding="utf-8") as f:
        for lang, batch in tqdm(
            todo,
            desc=f"generate (shard {shard}/{num_shards})",
            initial=len(units) - len(todo),
            total=len(units),
        ):
            texts = generator.generate(
                batch,
                lang,
                n,
                top_k=top_k,
                max_new_tokens=max_new_tokens,
                seed=unit_seed(seed, lang, batch[0].id),
            )
            lines = []
            for p, samples in zip(batch, texts):
                if (p.id, lang) in done:
                    continue
                lines += [
                    json.dumps(
                        {"passage_id": p.id, "language": lang, "sample": i, "text": t}, ensure_ascii=False
                    )
                    + "\n"
                    for i, t in enumerate(samples)
                ]
            f.write("".join(lines))
            f.flush()
            os.fsync(f.fileno())
    return out_path


def shard_file(out_path: str | Path, shard: int, num_shards: int) -> Path:
    """Where shard `shard` of `num_shards` of the output `out_path` is written."""
    out_path = Path(out_path)
    return out_path.parent / f"{out_path.name}.shards" / f"shard-{shard:04d}-of-{num_shards:04d}.jsonl"


def done_marker(shard_path: str | Path) -> Path:
    """The file whose presence says a shard finished (written last, atomically)."""
    shard_path = Path(shard_path)
    return shard_path.with_name(shard_path.name + ".done")


def merge_shards(out_path: str | Path, num_shards: int) -> Path:
    """Concatenate the finished shards, in shard order, into `out_path` (atomically; rerunning it
    writes the same bytes). Refuses while any shard has not finished, naming them."""
    parts = [shard_file(out_path, s, num_shards) for s in range(num_shards)]
    unfinished = [str(p) for p in parts if not done_marker(p).exists()]
    if unfinished:
        raise FileNotFoundError(f"{out_path}: shards not finished: {', '.join(unfinished)}")
    with atomic_path(out_path) as tmp, open(tmp, "wb") as out:
        for part in parts:
            with open(part, "rb") as f:
                shutil.copyfileobj(f, out)
    return Path(out_path)


def load_generated(path: str | Path) -> list[dict]:
    """The records of a generated-queries file, validated."""
    records = []
    for i, r in enumerate(iter_jsonl(path), 1):
        for key in ("passage_id", "language", "sample", "text"):
            if key not in r:
                raise ValueError(f"{path}:{i}: field '{key}' missing")
        records.append(r)
    return records


def import_released_queries(
    corpus_file: str | Path, languages: Sequence[str], n: int, out_path: str | Path
) -> Path:
    """Write the authors' released generated queries (``ielab/xor-tydi-xqg-augmented`` as JSON
    Lines) in this package's format: the first `n` per language for each passage."""
    from xqg.data.xor_tydi import iter_augmented_corpus

    with atomic_path(out_path) as tmp, open(tmp, "w", encoding="utf-8") as f:
        for passage, generated in tqdm(iter_augmented_corpus(corpus_file), desc="import released queries"):
            for lang in languages:
                queries = generated.get(lang, [])
                if len(queries) < n:
                    raise ValueError(
                        f"{corpus_file}: passage {passage.id} has {len(queries)} {lang} queries, "
                        f"fewer than n={n}"
                    )
                for i, text in enumerate(queries[:n]):
                    f.write(
                        json.dumps(
                            {"passage_id": passage.id, "language": lang, "sample": i, "text": text},
                            ensure_ascii=False,
                        )
                        + "\n"
                    )
    return Path(out_path)
