"""Streamed running sums of generated-query embeddings against in-memory augmentation."""

from __future__ import annotations

import numpy as np
import pytest

from xqg.retrieval.augment import GeneratedEmbeddings, augment
from xqg.retrieval.query_sums import QuerySums, SumGroup, augment_with_sums, build_query_sums

LANGS = ["ar", "de", "zh"]


def _collection(n_passages=7, per_lang=4, dim=5, seed=0):
    rng = np.random.default_rng(seed)
    pids = [f"p{i}" for i in range(n_passages)]
    records = [
        {"passage_id": p, "language": lang, "sample": s, "text": f"{p} {lang} {s}"}
        for p in pids
        for lang in LANGS
        for s in range(per_lang)
    ]
    rng.shuffle(records)  # the file's order is any order
    vectors = {r["text"]: rng.normal(size=dim).astype(np.float32) for r in records}
    pemb = rng.normal(size=(n_passages, dim)).astype(np.float32)
    return pids, records, vectors, pemb


def _encoder(vectors, calls):
    def encode(texts):
        calls.append(len(texts))
        return np.stack([vectors[t] for t in texts])

    return encode


def _in_memory(records, vectors):
    return GeneratedEmbeddings(
        [r["passage_id"] for r in records],
        [r["language"] for r in records],
        np.array([r["sample"] for r in records]),
        np.stack([vectors[r["text"]] for r in records]),
    )


@pytest.mark.parametrize("chunk_size", [1 << 15, 5])
def test_streamed_sums_equal_in_memory_augmentation(tmp_path, chunk_size):
    pids, records, vectors, pemb = _collection()
    calls = []
    groups = [SumGroup(None, (1, 2, 3, 4)), SumGroup(("ar", "zh"), (4,)), SumGroup(("de",), (2,))]
    sums = build_query_sums(
        iter(records), pids, _encoder(vectors, calls), groups, tmp_path / "s", languages=LANGS, dim=5,
        chunk_size=chunk_size,
    )  # fmt: skip
    assert max(calls) <= chunk_size and sum(calls) == len(records)
    gen = _in_memory(records, vectors)
    for n, langs in [(1, None), (3, None), (4, None), (4, ["ar", "zh"]), (2, ["de"])]:
        for mode in ("sum", "mean"):
            want = augment(pids, pemb, gen.select(n, langs), 0.1, mode)
            got = augment_with_sums(pemb, sums.total(n, langs), sums.per_passage(n, langs), 0.1, mode)
            np.testing.assert_allclose(got, want, atol=1e-6, rtol=0)
            in_place = pemb.copy()
            augment_with_sums(
                in_place, sums.total(n, langs), sums.per_passage(n, langs), 0.1, mode, 3, out=in_place
            )
            assert np.array_equal(in_place, got)  # in place and in blocks of 3: the same bits
            if chunk_size > len(records):  # one chunk: the same additions in the same order
                assert np.array_equal(got, want)
    assert (sums.per_passage(3) == 9).all() and (sums.per_passage(4, ["ar", "zh"]) == 8).all()
    with pytest.raises(KeyError, match="no sums for ar at n=2"):
        sums.total(2, ["ar"])
    sums.check_passages(pids)
    with pytest.raises(ValueError, match="another collection"):
        sums.check_passages(pids[::-1])


@pytest.mark.parametrize(("dtype", "tolerance"), [("float32", 1e-6), ("float16", 2e-3)])
def test_narrow_sums_stay_close(tmp_path, dtype, tolerance):
    pids, records, vectors, pemb = _collection(per_lang=6)
    sums = build_query_sums(
        records, pids, _encoder(vectors, []), [SumGroup(None, (6,))], tmp_path / "s", languages=LANGS, dim=5,
        dtype=dtype, chunk_size=7,
    )  # fmt: skip
    want = augment(pids, pemb, _in_memory(records, vectors), 0.01)
    got = augment_with_sums(pemb, sums.total(6), sums.per_passage(6), 0.01)
    np.testing.assert_allclose(got, want, atol=tolerance * 0.01 * 18, rtol=0)


def test_gaps_duplicates_strangers_and_uneven_counts_are_refused(tmp_path):
    pids, records, vectors, _ = _collection(n_passages=3, per_lang=2)
    encode = _encoder(vectors, [])

    def build(recs, name):
        return build_query_sums(
            recs, pids, encode, [SumGroup(None, (2,))], tmp_path / name, languages=LANGS, dim=5
        )

    with pytest.raises(ValueError, match="occurs twice"):
        build(records + records[:1], "dup")
    with pytest.raises(ValueError, match="miss samples"):
        build([r for r in records if not (r["passage_id"] == "p0" and r["sample"] == 0)], "gap")
    with pytest.raises(KeyError, match="'px', not in the collection"):
        build(records + [{**records[0], "passage_id": "px"}], "stranger")
    assert not (tmp_path / "dup").exists()  # a failed build leaves nothing
    uneven = build([r for r in records if not (r["passage_id"] == "p0" and r["sample"] == 1)], "uneven")
    with pytest.raises(ValueError, match="uneven numbers"):
        uneven.per_passage(2)
    assert (uneven.per_passage(1) == 3).all()  # the first sample exists everywhere
    assert QuerySums(tmp_path / "uneven").languages == LANGS


def test_the_quality_report_reads_all_of_a_small_collection_and_a_fixed_sample_of_a_large_one():
    from xqg.study.steps.generate import quality_sample

    ids = [f"p{i}" for i in range(50)]
    assert quality_sample(ids, 50) == set(ids)
    picked = quality_sample(ids, 10)
    assert len(picked) == 10 and picked == quality_sample(list(reversed(ids)), 10)  # order-free


def test_scale_benchmark_point_stores_six_sums_per_passage(tmp_path):
    """Disk per passage is (5 counts + 1 subset) x dim x itemsize (plus the .npy headers and the
    per-language counts), whatever the queries per passage: flat in queries, linear in passages."""
    from xqg.benchmarks.scale import one_point

    few, many = one_point(300, 5, 16, "float16", 1000), one_point(300, 35, 16, "float16", 1000)
    for point, languages in ((few, 1), (many, 7)):
        overhead = (6 * 128 + 128 + 300 * languages * 4 + 400) / 300  # headers, counts, meta
        assert 6 * 16 * 2 <= point["sums bytes per passage"] <= 6 * 16 * 2 + overhead
    assert many["queries file bytes per passage"] > 6 * few["queries file bytes per passage"]
