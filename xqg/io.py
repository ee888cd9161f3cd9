"""Atomic file writing and JSON Lines helpers: a killed run never leaves half a file."""

from __future__ import annotations

import contextlib
import gzip
import io
import json
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to `path`; rename it onto `path` only on success."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # the mode a plain open() would give, not mkstemp's 0600
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike) -> Iterator[Path]:
    """Yield an empty temporary folder next to `path`; it replaces `path` only on success,
    so a checkpoint folder is either complete or absent."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        yield tmp
        shutil.rmtree(path, ignore_errors=True)
        os.replace(tmp, path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    """Write a text file atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json(path: str | os.PathLike, obj: Any) -> None:
    """Write JSON atomically (UTF-8, indented, non-ASCII kept)."""
    write_text_atomic(path, json.dumps(obj, ensure_ascii=False, indent=1) + "\n")


def read_json(path: str | os.PathLike) -> Any:
    """Read a JSON file, naming the file if it is malformed."""
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: malformed JSON at line {e.lineno}: {e.msg}") from e


def iter_jsonl(path: str | os.PathLike) -> Iterator[dict]:
    """Yield the records of a JSON Lines file (gzip-compressed when its name ends in ``.gz``),
    naming file and line of a malformed one."""
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                yield json.loads(line)
            except json.JSONDecodeError as e:
                raise ValueError(f"{path}:{lineno}: malformed JSON line: {e.msg}") from e


def write_jsonl(path: str | os.PathLike, records: Iterable[dict]) -> None:
    """Write records as JSON Lines, atomically."""
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as f:
        for rec in records:
            f.write(json.dumps(rec, ensure_ascii=False) + "\n")


def read_appendable_jsonl(path: str | os.PathLike) -> list[dict]:
    """Records of an append-only JSON Lines file that a killed run may have cut short.

    Bytes after the last newline are a torn write: they are dropped, and the file is rewritten
    (atomically) without them so that the next append starts on a fresh line. Any malformed
    complete line is an error naming file and line."""
    path = Path(path)
    if not path.exists():
        return []
    data = path.read_bytes()
    good = data[: data.rfind(b"\n") + 1]
    records = []
    for lineno, line in enumerate(good.decode("utf-8").split("\n"), 1):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError as e:
            raise ValueError(f"{path}:{lineno}: malformed JSON line: {e.msg}") from e
    if len(good) != len(data):
        write_jsonl(path, records)
    return records


def write_csv(frame: Any, path: str | os.PathLike, index: bool = False) -> None:
    """Write a pandas frame as CSV atomically; ``.gz`` paths are gzip-compressed with an empty
    file name and a zero time in the header (pandas would record the temporary file's random
    name), so the same frame gives the same bytes."""
    path = Path(path)
    with atomic_path(path) as tmp:
        if path.suffix != ".gz":
            frame.to_csv(tmp, index=index)
            return
        with (
            open(tmp, "wb") as raw,
            gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as packed,
            io.TextIOWrapper(packed, encoding="utf-8", newline="") as text,
        ):
            frame.to_csv(text, index=index)
