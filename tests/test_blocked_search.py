"""Collections on disk and searched a block at a time: the same bits as one in-memory index."""

from __future__ import annotations

import zipfile

import numpy as np
import pytest

from xqg.data.schema import Passage
from xqg.retrieval.augment import GeneratedEmbeddings, augment
from xqg.retrieval.dense import encode_passages
from xqg.retrieval.embeddings import load_embeddings, open_embeddings, save_embedding_blocks, save_embeddings
from xqg.retrieval.query_sums import SumGroup, augment_with_sums, build_query_sums
from xqg.retrieval.search import build_index, retrieve, search, search_blocks


def _blocks(matrix: np.ndarray, size: int):
    return (matrix[s : s + size] for s in range(0, len(matrix), size))


def test_embeddings_written_in_blocks_read_back_and_memory_map(tmp_path):
    rng = np.random.default_rng(0)
    ids, emb = [f"p{i}" for i in range(1000)], rng.standard_normal((1000, 16), dtype=np.float32)
    save_embedding_blocks(tmp_path / "a.npz", ids, _blocks(emb, 300), 16)
    save_embedding_blocks(tmp_path / "b.npz", ids, _blocks(emb, 999), 16)
    assert (tmp_path / "a.npz").read_bytes() == (tmp_path / "b.npz").read_bytes()  # no dates, no block trace
    got_ids, got = load_embeddings(tmp_path / "a.npz")
    assert got_ids == ids and np.array_equal(got, emb)
    save_embeddings(tmp_path / "c.npz", ids, emb)  # numpy's own writer: memory-mapped as well
    for name in ("a.npz", "c.npz"):
        got_ids, mapped = open_embeddings(tmp_path / name)
        assert isinstance(mapped, np.memmap) and not mapped.flags.writeable
        assert got_ids == ids and np.array_equal(mapped, emb)


def test_embeddings_that_do_not_add_up_are_refused_and_leave_no_file(tmp_path):
    ids, emb = [f"p{i}" for i in range(10)], np.ones((10, 4), np.float32)
    with pytest.raises(ValueError, match=r"short\.npz: 10 ids but 9 embeddings"):
        save_embedding_blocks(tmp_path / "short.npz", ids, _blocks(emb[:9], 4), 4)
    with pytest.raises(ValueError, match=r"wide\.npz: block \(4, 4\) does not fit 10 x 3"):
        save_embedding_blocks(tmp_path / "wide.npz", ids, _blocks(emb, 4), 3)
    with pytest.raises(ValueError, match=r"dup\.npz: duplicate ids"):
        save_embedding_blocks(tmp_path / "dup.npz", ["a", "a"], _blocks(emb[:2], 4), 4)
    assert list(tmp_path.iterdir()) == []
    with zipfile.ZipFile(tmp_path / "other.npz", "w") as z:
        z.writestr("x.npy", b"")
    with pytest.raises(ValueError, match=r"other\.npz: not an embeddings file"):
        open_embeddings(tmp_path / "other.npz")
    np.savez_compressed(tmp_path / "packed.npz", ids=np.array(["a"]), emb=np.ones((1, 2), np.float32))
    with pytest.raises(ValueError, match=r"packed\.npz: 'emb' is compressed"):
        open_embeddings(tmp_path / "packed.npz")


@pytest.mark.parametrize("n_queries", [5, 50, 300])
@pytest.mark.parametrize("k", [1, 10, 100])
def test_search_in_blocks_gives_the_bits_of_one_flat_index(n_queries, k):
    rng = np.random.default_rng(n_queries + k)
    passages = rng.standard_normal((5000, 64), dtype=np.float32)
    queries = rng.standard_normal((n_queries, 64), dtype=np.float32)
    want_scores, want_rows = search(build_index(passages), queries, k)
    for size in (1024, 2048, 8192):
        scores, rows = search_blocks(_blocks(passages, size), queries, k)
        assert np.array_equal(scores, want_scores) and np.array_equal(rows, want_rows)
    scores, rows = search_blocks(_blocks(passages[:7], 1024), queries, k)  # k capped at the collection
    assert rows.shape == (n_queries, min(k, 7)) and (rows >= 0).all()


def test_retrieve_takes_a_matrix_or_its_blocks():
    rng = np.random.default_rng(3)
    passages, queries = rng.standard_normal((3000, 8), np.float32), rng.standard_normal((30, 8), np.float32)
    pids, qids = [f"p{i}" for i in range(3000)], [f"q{i}" for i in range(30)]
    assert retrieve(pids, _blocks(passages, 1024), qids, queries, 20) == retrieve(
        pids, passages, qids, queries, 20
    )
    with pytest.raises(ValueError, match="searched exactly"):
        retrieve(pids, _blocks(passages, 1024), qids, queries, 20, kind="hnsw")
    with pytest.raises(ValueError, match="2999 passage ids but more embeddings"):
        retrieve(pids[:-1], _blocks(passages, 1024), qids, queries, 3000)


def test_streamed_sums_augmented_and_searched_per_block_equal_in_memory_augmentation(tmp_path):
    """What `EmbeddingCache.run` does at any scale (memory-mapped passages and sums, alpha
    applied per block, top k merged) against the whole augmented matrix in memory."""
    rng = np.random.default_rng(7)
    n, dim, langs = 2500, 16, ["ar", "zh"]
    pids = [f"p{i}" for i in range(n)]
    records = [
        {"passage_id": p, "language": lang, "sample": s, "text": f"{p} {lang} {s}"}
        for p in pids
        for lang in langs
        for s in range(3)
    ]
    vectors = rng.standard_normal((len(records), dim), dtype=np.float32)
    row = {r["text"]: i for i, r in enumerate(records)}
    save_embeddings(tmp_path / "p.npz", pids, rng.standard_normal((n, dim), dtype=np.float32))
    _, pemb = open_embeddings(tmp_path / "p.npz")
    sums = build_query_sums(
        iter(records), pids, lambda texts: vectors[[row[t] for t in texts]], [SumGroup(None, (1, 3))],
        tmp_path / "s", languages=langs, dim=dim, chunk_size=1 << 15,
    )  # fmt: skip
    gen = GeneratedEmbeddings(
        [r["passage_id"] for r in records], [r["language"] for r in records],
        np.array([r["sample"] for r in records]), vectors,
    )  # fmt: skip
    queries, qids = rng.standard_normal((40, dim), dtype=np.float32), [f"q{i}" for i in range(40)]
    for count in (1, 3):
        for mode in ("sum", "mean"):
            want = retrieve(pids, augment(pids, pemb, gen.select(count), 0.01, mode), qids, queries, 50)
            total, per = sums.total(count), sums.per_passage(count)
            blocks = (
                augment_with_sums(pemb[s : s + 1024], total[s : s + 1024], per[s : s + 1024], 0.01, mode)
                for s in range(0, n, 1024)
            )
            assert retrieve(pids, blocks, qids, queries, 50) == want


class _CountingEncoder:
    """Encodes a text as (its length, its number of words), counting the calls."""

    class model:  # noqa: N801 - mimics `Encoder.model.config.hidden_size`
        class config:  # noqa: N801
            hidden_size = 2

    def __init__(self):
        self.calls: list[int] = []

    def encode(self, texts, kind, max_length, batch_size, dtype):
        self.calls.append(len(texts))
        return np.array([[len(t), len(t.split())] for t in texts], np.float32)


def test_passages_are_encoded_and_written_a_block_at_a_time(tmp_path):
    passages = {f"p{i}": Passage(f"p{i}", f"T{i}", ("x " * i).strip()) for i in range(10)}
    encoder = _CountingEncoder()
    ids, emb = encode_passages(lambda: encoder, passages, tmp_path / "e.npz", 16, block=4)
    assert encoder.calls == [4, 4, 2] and isinstance(emb, np.memmap)
    assert ids == list(passages) and emb[3].tolist() == [len("T3 x x x"), 4]
    again = _CountingEncoder()
    assert np.array_equal(encode_passages(lambda: again, passages, tmp_path / "e.npz", 16)[1], emb)
    assert again.calls == []  # read from the cache, the encoder never used
