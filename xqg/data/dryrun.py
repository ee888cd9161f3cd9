"""A tiny XOR-TyDi world in the real published formats, for the `paper-dryrun` profile and tests.

No offline copy of XOR's 18.2M-passage collection, Tevatron's training file or the authors'
released queries exists here, so the dry run writes small files laid out exactly as those are,
from real text of the data mirror:

- ``wiki/enwiki_20190201_w100.tsv``: DPR's TSV (``id``, ``text``, ``title``; integer ids) of
  English Wikipedia paragraphs (SQuAD dev's) cut into passages of at most 100 words; each
  XOR-Retrieve dev answer is appended to one passage, so answer recall can be non-zero;
- ``xor-tydi/tevatron_xor_tydi_train.jsonl``: Tevatron's ``xor-tydi`` training rows
  (``query_id``, ``query``, ``answers``, ``positive_passages``, ``negative_passages``, each
  passage ``{docid, title, text}``) for real XOR-Retrieve training questions, the positive being
  a collection passage their answer was appended to;
- ``xor-tydi/tydi_xor_gp/gp_squad_{train,dev}_data.json``: XOR's gold paragraphs in SQuAD form
  as DSI-QG's ``process_xorqa.py`` reads them (one paragraph and one question with ``lang`` and
  ``id`` per item; titles with a 6-character prefix and a ``_parentSection`` suffix, the
  convention its code cuts, inferred from that code), the same questions and positives (the
  dev file repeats one training id, which DSI-QG drops);
- ``xqg/xor-tydi-xqg-augmented/``: the released corpus's layout in two JSON Lines shards
  (``docid``, ``title``, ``text``, ``generated_queries: {lang: [5 questions]}``), with real XOR
  training questions of each language standing in for generated ones.

Numbers from this world mean nothing: it exists to run the paper's step graph end to end.
"""

from __future__ import annotations

import argparse
import csv
import json
import random
from pathlib import Path

from xqg.data.squad_dev import load_squad_dev
from xqg.data.xor_tydi import load_xor_queries
from xqg.io import atomic_path, write_json, write_jsonl
from xqg.languages import XOR_LANGUAGES
from xqg.paths import PROJECT_ROOT

DRYRUN_DIR = PROJECT_ROOT / "data" / "dryrun"
COLLECTION = "wiki/enwiki_20190201_w100.tsv"
TEVATRON_TRAIN = "xor-tydi/tevatron_xor_tydi_train.jsonl"
GOLD_PARAGRAPHS = "xor-tydi/tydi_xor_gp/gp_squad_{split}_data.json"
RELEASED = "xqg/xor-tydi-xqg-augmented"


def hundred_word_passages(text: str, size: int = 100) -> list[str]:
    """`text` cut into consecutive passages of at most `size` words (DPR's w100 split)."""
    words = text.split()
    return [" ".join(words[i : i + size]) for i in range(0, len(words), size)]


def write_dryrun_data(
    out: Path = DRYRUN_DIR,
    passages: int = 200,
    train_queries: int = 96,
    negatives: int = 10,
    queries_per_language: int = 5,
    seed: int = 0,
) -> dict[str, int]:
    """Write the files (see the module); returns their counts. Deterministic in `seed`."""
    rng = random.Random(seed)
    squad = load_squad_dev()
    rows: list[tuple[str, str, str]] = []  # (id, text, title)
    for p in sorted(squad.passages.values(), key=lambda p: p.id):
        for chunk in hundred_word_passages(p.text):
            rows.append((str(len(rows) + 1), chunk, p.title))
            if len(rows) == passages:
                break
        if len(rows) == passages:
            break
    texts = {pid: text for pid, text, _ in rows}
    dev = load_xor_queries("dev")
    for i, q in enumerate(dev):  # every dev answer in one passage
        if q.answers:
            pid = rows[i % len(rows)][0]
            texts[pid] += f" {q.answers[0]}."
    train = [q for q in load_xor_queries("train") if q.answers]
    picked = rng.sample(train, train_queries)
    ids = [pid for pid, _, _ in rows]
    titles = {pid: title for pid, _, title in rows}
    positives = [rng.choice(ids) for _ in picked]
    for q, positive in zip(picked, positives):
        texts[positive] += f" {q.answers[0]}."

    def doc(pid: str) -> dict[str, str]:
        return {"docid": pid, "title": titles[pid], "text": texts[pid]}

    tevatron = [
        {
            "query_id": q.qid,
            "query": q.text,
            "answers": list(q.answers),
            "positive_passages": [doc(positive)],
            "negative_passages": [doc(d) for d in rng.sample([i for i in ids if i != positive], negatives)],
        }
        for q, positive in zip(picked, positives)
    ]
    collection = out / COLLECTION
    collection.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(collection) as tmp, open(tmp, "w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f, delimiter="\t", lineterminator="\n")
        writer.writerow(["id", "text", "title"])
        writer.writerows((pid, texts[pid], titles[pid]) for pid in ids)
    write_jsonl(out / TEVATRON_TRAIN, tevatron)

    def gold_item(q, pid: str) -> dict:
        answer = q.answers[0]
        qa = {"question": q.text, "lang": q.language, "id": q.qid,
              "answers": [{"text": answer, "answer_start": texts[pid].find(answer)}]}  # fmt: skip
        return {
            "title": f"title:{titles[pid]}_parentSection:0",
            "paragraphs": [{"context": texts[pid], "qas": [qa]}],
        }

    pairs = list(zip(picked, positives))
    cut = len(pairs) * 5 // 6
    for split, part in (("train", pairs[:cut]), ("dev", pairs[cut:] + pairs[:1])):
        write_json(
            out / GOLD_PARAGRAPHS.format(split=split), {"data": [gold_item(q, pid) for q, pid in part]}
        )
    by_language = {lang: [q.text for q in train if q.language == lang] for lang in XOR_LANGUAGES}
    shard_of = {pid: 0 if n < len(ids) // 2 else 1 for n, pid in enumerate(ids)}
    for shard in (0, 1):
        write_jsonl(
            out / RELEASED / f"corpus-{shard:05d}.jsonl",
            (
                {
                    "docid": pid,
                    "title": titles[pid],
                    "text": texts[pid],
                    "generated_queries": {
                        lang: rng.sample(by_language[lang], queries_per_language) for lang in XOR_LANGUAGES
                    },
                }
                for pid in ids
                if shard_of[pid] == shard
            ),
        )
    counts = {
        "passages": len(ids),
        "training queries": len(tevatron),
        "gold-paragraph pairs": {"train": cut, "dev": len(pairs) - cut},
        "released shards": 2,
    }
    write_json(out / "MANIFEST.json", counts)
    return counts


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=DRYRUN_DIR)
    args = parser.parse_args(argv)
    print(json.dumps(write_dryrun_data(args.out)))


if __name__ == "__main__":
    main()
