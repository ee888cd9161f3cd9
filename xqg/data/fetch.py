"""`make data`: fetch the official releases, or copy them from a local mirror, and verify them.

With ``XQG_DATA_MIRROR`` set (a folder laid out like ``../shared/data``) files are copied from
there; otherwise they are downloaded from the official hosts. Every file is written through a
``.part`` file (downloads resume from it with an HTTP Range request), parsed in full and its
record count checked before it is renamed into place, so a corrupt or truncated file is named
and never used. The SHA-256 of each verified file is kept in ``MANIFEST.json``, written only
when every requested file is verified (``make`` waits for it; progress goes to
``MANIFEST.partial.json``); a later run re-checks it and refetches a file that changed.

    python -m xqg.data.fetch [--datasets mlqa xquad xor-tydi] [--dest data/raw]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path

from tqdm.auto import tqdm

from xqg.data.schema import DataError
from xqg.data.squad import iter_squad
from xqg.io import iter_jsonl, write_json
from xqg.languages import XQUAD_LANGUAGES
from xqg.paths import data_dir

MLQA_ZIP = "https://dl.fbaipublicfiles.com/MLQA/MLQA_V1.zip"
XQUAD_URL = "https://raw.githubusercontent.com/google-deepmind/xquad/master/xquad.{}.json"
XOR_URL = "https://nlp.cs.washington.edu/xorqa/XORQA_site/data/{}"
# XOR-Retrieve's collection: English Wikipedia 2019-02-01 in 100-word passages (DPR's TSV layout,
# ~18.2M rows, 13 GB). DPR's own psgs_w100 is a different dump (2018-12-20, 21M passages) whose ids
# the authors' released queries do not follow.
XOR_WIKI = XOR_URL.format("models/enwiki_20190201_w100.tsv")
# SQuAD v1.1 dev (the mirror holds a rebuilt copy with the official totals under this name) and
# SQuAD-es's dev questions, which keep SQuAD's ids: English paragraphs with Spanish questions.
SQUAD_DEV_URL = "https://rajpurkar.github.io/SQuAD-explorer/dataset/dev-v1.1.json"
SQUAD_ES_URL = "https://raw.githubusercontent.com/ccasimiro88/TranslateAlignRetrieve/master/SQuAD-es-v1.1/dev-v1.1-es_small.json"

MLQA_DEV_COUNTS = {"en": 1148, "de": 512, "es": 500, "ar": 517, "zh": 504, "vi": 511, "hi": 507}


@dataclass(frozen=True)
class DataFile:
    """One file of a release: where it lives, where it comes from, how many records it holds."""

    rel: str  # path under the data folder (the official layout)
    url: str | None  # direct download, or None if it comes out of `archive`
    count: int | None  # expected number of questions/lines, None if not pinned
    archive: str | None = None  # zip URL holding the file
    member: str | None = None  # path inside the zip
    optional: bool = False  # a mirror may lack it (the official host always has it)


def _catalogue() -> dict[str, list[DataFile]]:
    mlqa = []
    for lang, n in MLQA_DEV_COUNTS.items():
        name = f"MLQA_V1/dev/dev-context-en-question-{lang}.json"
        mlqa.append(DataFile(f"mlqa/{name}", None, n, MLQA_ZIP, name))
    for lang in MLQA_DEV_COUNTS:
        if lang != "en":
            name = f"MLQA_V1/dev/dev-context-{lang}-question-{lang}.json"
            mlqa.append(DataFile(f"mlqa/{name}", None, MLQA_DEV_COUNTS[lang], MLQA_ZIP, name))
    for lang in MLQA_DEV_COUNTS:  # the test split: in the official archive, optional in a mirror
        name = f"MLQA_V1/test/test-context-en-question-{lang}.json"
        mlqa.append(DataFile(f"mlqa/{name}", None, None, MLQA_ZIP, name, optional=True))
    # every XQuAD language; the mirror holds MLQA's seven, the others come from the official host
    xquad = [
        DataFile(
            f"xquad/xquad.{lang}.json", XQUAD_URL.format(lang), 1190, optional=lang not in MLQA_DEV_COUNTS
        )
        for lang in XQUAD_LANGUAGES
    ]
    xor = [
        DataFile(
            "xor-tydi/xor_dev_retrieve_eng_span_v1_1.jsonl",
            XOR_URL.format("xor_dev_retrieve_eng_span_v1_1.jsonl"),
            2110,
        ),
        DataFile(
            "xor-tydi/xor_train_retrieve_eng_span.jsonl",
            XOR_URL.format("xor_train_retrieve_eng_span.jsonl"),
            15250,
        ),
    ]
    wiki = [DataFile("wiki/enwiki_20190201_w100.tsv", XOR_WIKI, None)]
    squad = [
        DataFile("squad/dev-v1.1.reconstructed.json", SQUAD_DEV_URL, 10570),
        DataFile("squad-es/dev-v1.1-es_small.json", SQUAD_ES_URL, 6583),
    ]
    return {"mlqa": mlqa, "xquad": xquad, "xor-tydi": xor, "squad": squad, "wiki": wiki}


CATALOGUE = _catalogue()


def sha256(path: Path) -> str:
    """SHA-256 of a file, streamed."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def verify(path: Path, spec: DataFile) -> None:
    """Parse a file in full and check its record count; raise DataError naming the file."""
    if spec.rel.endswith(".json"):
        n = sum(1 for _ in iter_squad(path))
    elif spec.rel.endswith(".jsonl"):
        try:
            n = sum(1 for _ in iter_jsonl(path))
        except ValueError as e:
            raise DataError(f"{spec.rel}: corrupt or truncated: {e}") from e
    else:
        return
    if spec.count is not None and n != spec.count:
        raise DataError(f"{spec.rel}: expected {spec.count} records, found {n} (truncated or wrong file)")


def download(url: str, dest: Path) -> None:
    """Download `url` to `dest` through `dest.part`, resuming a partial download."""
    part = dest.with_name(dest.name + ".part")
    dest.parent.mkdir(parents=True, exist_ok=True)
    have = part.stat().st_size if part.exists() else 0
    req = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
    with urllib.request.urlopen(req, timeout=60) as resp:
        if have and resp.status != 206:  # server ignored the range: start again
            have = 0
        total = int(resp.headers.get("Content-Length", 0)) + have
        with (
            open(part, "ab" if have else "wb") as f,
            tqdm(total=total or None, initial=have, unit="B", unit_scale=True, desc=dest.name) as bar,
        ):
            for block in iter(lambda: resp.read(1 << 20), b""):
                f.write(block)
                bar.update(len(block))
    os.replace(part, dest)


def _obtain(spec: DataFile, dest_root: Path, mirror: Path | None) -> Path:
    """Put one file in place (not yet verified) through a .part file."""
    target = dest_root / spec.rel
    target.parent.mkdir(parents=True, exist_ok=True)
    part = target.with_name(target.name + ".part")
    if mirror is not None:
        src = mirror / spec.rel
        if not src.exists():
            raise FileNotFoundError(f"mirror {mirror} has no {spec.rel}")
        shutil.copyfile(src, part)
    elif spec.archive is not None:
        archive = dest_root / "downloads" / Path(spec.archive).name
        if not archive.exists():
            download(spec.archive, archive)
        try:
            with zipfile.ZipFile(archive) as zf, zf.open(spec.member) as fin, open(part, "wb") as fout:
                shutil.copyfileobj(fin, fout)
        except (zipfile.BadZipFile, KeyError) as e:
            archive.unlink(missing_ok=True)
            raise DataError(f"{archive}: corrupt archive or missing {spec.member}: {e}") from e
    else:
        download(spec.url, part.with_name(target.name + ".dl"))
        os.replace(part.with_name(target.name + ".dl"), part)
    return part


def fetch(datasets: list[str], dest_root: Path, mirror: Path | None) -> dict[str, str]:
    """Fetch and verify the files of `datasets`; return {relative path: sha256}."""
    manifest_path = dest_root / "MANIFEST.json"
    # progress goes to a partial manifest; MANIFEST.json (what `make` waits for) is written only
    # once every requested file is verified, so a failed fetch is retried, never taken as done
    partial_path = dest_root / "MANIFEST.partial.json"
    manifest = {}
    for path in (manifest_path, partial_path):
        if path.exists():
            manifest.update(json.loads(path.read_text()))
    for name in datasets:
        if name not in CATALOGUE:
            raise ValueError(f"unknown dataset {name!r}; known: {', '.join(CATALOGUE)}")
        for spec in CATALOGUE[name]:
            target = dest_root / spec.rel
            if target.exists() and manifest.get(spec.rel) == sha256(target):
                continue  # verified before and unchanged
            if mirror is not None and not (mirror / spec.rel).exists() and spec.optional:
                print(f"skip {spec.rel} (not in the mirror {mirror})")
                continue
            part = _obtain(spec, dest_root, mirror)
            try:
                verify(part, spec)
            except DataError:
                part.unlink(missing_ok=True)
                raise
            os.replace(part, target)
            manifest[spec.rel] = sha256(target)
            write_json(partial_path, manifest)
            print(f"ok   {spec.rel}")
    write_json(manifest_path, manifest)
    partial_path.unlink(missing_ok=True)
    return manifest


def main(argv: list[str] | None = None) -> None:
    """Command-line entry point of `make data`."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--datasets",
        nargs="+",
        default=["mlqa", "xquad", "xor-tydi", "squad"],
        help=f"any of {', '.join(CATALOGUE)} (wiki: the 18M-passage XOR collection)",
    )
    ap.add_argument("--dest", type=Path, default=data_dir())
    ap.add_argument(
        "--mirror",
        type=Path,
        default=os.environ.get("XQG_DATA_MIRROR") or None,
        help="local mirror folder (default: $XQG_DATA_MIRROR)",
    )
    args = ap.parse_args(argv)
    manifest = fetch(args.datasets, args.dest, args.mirror)
    print(f"{len(manifest)} verified files under {args.dest}")


if __name__ == "__main__":
    main()
