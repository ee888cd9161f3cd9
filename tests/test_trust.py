"""Results that survive edits, kills and typos: recipes on artefacts, identical resumes,
misconfiguration refused before work, the profile lock, kernels that die with their run, and
evaluators that reject nonsense."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from conftest import roots_env

from xqg import evaluate
from xqg.generation.prompts import prompt, triples
from xqg.io import atomic_dir
from xqg.lock import Locked, exclusive
from xqg.study import checks
from xqg.study.provenance import Recipe, claim, key_of, machines, recipe_file
from xqg.study.workspace import Workspace


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def copy_workspace(smoke_run: Path, dest: Path, ignore: tuple[str, ...] = ()) -> Workspace:
    """A private copy of the finished smoke run's work folder."""
    shutil.copytree(smoke_run / "work" / "smoke", dest / "work", ignore=shutil.ignore_patterns(*ignore))
    return Workspace("smoke", dest / "work", dest / "results", dest / "figures")


# --- 1. artefacts carry their recipe --------------------------------------------------------------
def test_claim_keeps_the_same_recipe_and_rebuilds_any_other(tmp_path, capsys):
    art = tmp_path / "model"
    first = Recipe("code-1", {"lr": 0.001, "steps": 4}, {"data": "k1"})
    key = claim(art, first)
    art.mkdir()
    (art / "weights").write_text("trained")
    assert claim(art, Recipe("code-1", {"steps": 4, "lr": 0.001}, {"data": "k1"})) == key  # order-free
    assert (art / "weights").exists() and key_of(art, "02") == key
    claim(art, Recipe("code-1", {"lr": 0.0005, "steps": 4}, {"data": "k2"}))
    assert not art.exists()
    assert "lr 0.001 -> 0.0005; input data" in capsys.readouterr().out
    art.write_text("made before recipes existed")
    recipe_file(art).unlink()
    claim(art, first)
    assert not art.exists()  # no record: rebuilt, never trusted
    with pytest.raises(FileNotFoundError, match="run step 02_train_generator first"):
        key_of(art, "02_train_generator")


def test_a_recipe_records_its_machine_outside_the_key(tmp_path):
    """Native and emulated bf16 products differ in the last bits of a sum: the recipe says which
    made an artefact, and another machine with the same recipe still reuses it."""
    art, recipe = tmp_path / "reader", Recipe("code-1", {"reader_dtype": "bfloat16"})
    key = claim(art, recipe)
    art.mkdir()
    made_on = json.loads(recipe_file(art).read_text())["made_on"]
    native = torch.ops.mkldnn._is_mkldnn_bf16_supported()
    assert made_on["cpu_bf16_products"] == ("native" if native else "emulated")
    assert made_on["torch"] == torch.__version__ and made_on["threads"] == torch.get_num_threads()
    assert made_on["cpu_capability"] == torch.backends.cpu.get_cpu_capability()

    record = json.loads(recipe_file(art).read_text())
    other = {"torch": "2.13.0+cpu", "cuda": None, "cpu_capability": "AVX2", "threads": 64}
    other["cpu_bf16_products"] = "emulated"
    recipe_file(art).write_text(json.dumps({**record, "made_on": other}))
    assert claim(art, recipe) == key and art.exists()  # same recipe elsewhere: reused, record kept
    assert json.loads(recipe_file(art).read_text())["made_on"] == other

    old = tmp_path / "sub" / "queries.jsonl"
    old.parent.mkdir()
    claim(old, Recipe("code-2", {}))
    stripped = json.loads(recipe_file(old).read_text())
    del stripped["made_on"]  # written before machines were recorded
    recipe_file(old).write_text(json.dumps(stripped))
    claim(tmp_path / "sub" / "sums", Recipe("code-3", {}))
    here = (
        f"CPU {made_on['cpu_capability']}, bf16 products {made_on['cpu_bf16_products']}, "
        f"{made_on['threads']} threads, torch {torch.__version__}"
    )
    if made_on["cuda"]:
        here = f"GPU {made_on['cuda']}, {here}"
    assert machines(tmp_path) == {
        "CPU AVX2, bf16 products emulated, 64 threads, torch 2.13.0+cpu": 1,
        "unrecorded": 1,
        here: 1,
    }


def test_the_readme_section_names_the_machines_that_made_the_run(tmp_path):
    import pandas as pd

    from xqg.study.steps.analysis import readme_section

    made_on = {"CPU AVX512, bf16 products native, 2 threads, torch 2.13.0+cpu": 3, "unrecorded": 1}
    inputs = ([], tmp_path / "none.csv", Path("figures/mini"), pd.DataFrame())
    lines = readme_section(*inputs, None, made_on).splitlines()
    assert lines[2] == (
        "Artefacts made on: CPU AVX512, bf16 products native, 2 threads, torch 2.13.0+cpu (3 of 4); "
        "unrecorded (1 of 4)."
    )
    assert "Artefacts made on" not in readme_section(*inputs)
    assert "Artefacts made on" not in readme_section(*inputs, None, {"unrecorded": 4})


def test_a_changed_parameter_rebuilds_exactly_what_it_affects(smoke_run, tmp_path):
    """Before recipes, changed generator_lr, top_k or reader_steps reran the steps but reused the
    old checkpoint, queries and reader: nothing changed."""
    from xqg.study.encoding import EmbeddingCache
    from xqg.study.steps import generate, qa, train_generator

    ws = copy_workspace(smoke_run, tmp_path)
    best = ws.generator_checkpoint() / "model.safetensors"
    seen_only = ws.generator_checkpoint("seen-only") / "model.safetensors"
    queries, reader = ws.generated_queries(), ws.reader_checkpoint / "model.safetensors"
    cache = EmbeddingCache(ws)
    generated = ws.embeddings_dir("tiny-xlm-roberta", "zero-shot", "float32") / "sums" / "all.npy"
    before = {p: (digest(p), p.stat().st_mtime_ns) for p in (best, seen_only, queries, reader, generated)}

    train_generator.run(ws, train_generator.Config.load("smoke"))  # same parameters: all reused
    assert (digest(best), best.stat().st_mtime_ns) == before[best]

    train_generator.run(ws, train_generator.Config.load("smoke", {"generator_lr": 5e-4}))
    assert digest(best) != before[best][0] and digest(seen_only) != before[seen_only][0]
    generate.generate(ws, generate.Config.load("smoke"))  # a new generator: new queries
    assert digest(queries) != before[queries][0]
    cache.query_sums("tiny-xlm-roberta")  # new queries: new sums of their embeddings
    assert digest(generated) != before[generated][0]

    after_lr = (digest(queries), queries.stat().st_mtime_ns)
    generate.generate(ws, generate.Config.load("smoke", {"encode_dtype": "bfloat16"}))  # not a query input
    assert (digest(queries), queries.stat().st_mtime_ns) == after_lr
    generator_now = digest(best)
    generate.generate(ws, generate.Config.load("smoke", {"top_k": 3}))
    assert digest(queries) != after_lr[0] and digest(best) == generator_now  # the generator is kept

    qa.build_reader(ws, qa.Config.load("smoke", {"reader_steps": 5}))
    assert (
        digest(reader) != before[reader][0] and len(json.loads(ws.reader_record.read_text())["history"]) == 5
    )
    assert not ws.reads.exists()  # the old reader's answers went with it


def test_a_staged_full_generator_starts_from_the_seen_only_one(smoke_run, tmp_path):
    """`generator_staged` (smoke and mini): the full generator is the seen-only one trained on;
    its recipe names the seen-only generator as an input, so retraining that rebuilds it."""
    from safetensors.torch import load_file

    from xqg.study.provenance import params_of
    from xqg.study.steps import train_generator

    ws = copy_workspace(smoke_run, tmp_path)
    trained_full = digest(ws.generator_checkpoint() / "model.safetensors")
    config = train_generator.Config.load("smoke")
    assert config.generator_staged and params_of(ws.generator_dir(), "02")["generator_staged"]
    record = json.loads(recipe_file(ws.generator_dir()).read_text())
    assert record["inputs"]["start"] == key_of(ws.generator_dir("seen-only"), "02")
    # with no steps of its own the full generator is the seen-only one, weight for weight
    zero = train_generator.Config.load("smoke", {"generator_steps": 0})
    train_generator.train_generator(ws, zero, "full", None, start_from="seen-only")
    full, seen = (ws.generator_checkpoint(v) / "model.safetensors" for v in ("full", "seen-only"))
    assert digest(full) != trained_full  # the smoke run's full generator trained on from there
    a, b = load_file(full), load_file(seen)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    with pytest.raises(ValueError, match="generator_staged needs a seen-only generator"):
        train_generator.run(ws, train_generator.Config.load("smoke", {"unseen_languages": []}))


def test_step_03_builds_the_query_sums_step_05_reads(smoke_run, tmp_path, capsys):
    """Step 03 built the full generator's sums before the seen-only queries existed, without
    RQ1's seen-language group, so step 05 rebuilt them: every generated query encoded twice (in
    `mini` step 05 took 344 s with the rebuild and 53 s without). The group now comes from the
    seen-only generator, whether or not its queries exist yet."""
    from xqg.study.encoding import EmbeddingCache
    from xqg.study.steps import generate, retrieve
    from xqg.study.systems import seen_languages

    ws = copy_workspace(smoke_run, tmp_path)
    one_group_each = {"routed_sums": False}  # else smoke's one seen language is its routed group
    emb = ws.embeddings_dir("tiny-xlm-roberta", "zero-shot", "float32")
    seen_only = ws.generated_queries("seen-only")
    shards = seen_only.with_name(seen_only.name + ".shards")
    for path in (seen_only, shards, emb / "sums", emb / "sums-seen-only"):
        shutil.rmtree(path) if path.is_dir() else path.unlink()  # as before a cold step 03
    assert seen_languages(ws) == ["de"]  # from step 02's seen-only generator, before its queries
    generate.run(ws, generate.Config.load("smoke", one_group_each))
    meta = emb / "sums" / "meta.json"
    assert [g["languages"] for g in json.loads(meta.read_text())["groups"]] == [None, ["de"]]
    built = meta.stat().st_mtime_ns
    capsys.readouterr()
    cache = EmbeddingCache.for_step(ws, retrieve.Config.load("smoke", one_group_each))
    for variant in ("full", "seen-only"):
        cache.query_sums("tiny-xlm-roberta", "zero-shot", variant)
    assert "rebuilding" not in capsys.readouterr().out and meta.stat().st_mtime_ns == built


# --- 2. a killed step 02 resumes to the same result ---------------------------------------------
class _Killed(Exception):
    pass


@contextlib.contextmanager
def _dies_after_first_checkpoint(path):
    """`atomic_dir` that kills the run right after the first ``last`` checkpoint is complete."""
    with atomic_dir(path) as tmp:
        yield tmp
    if Path(path).name == "last":
        raise _Killed


def _same_weights(a: Path, b: Path) -> None:
    """The checkpoints in folders `a` and `b` hold equal tensors."""
    from safetensors.torch import load_file

    checked = 0
    for path in sorted(a.iterdir()):
        if path.suffix == ".safetensors":
            left, right = load_file(str(path)), load_file(str(b / path.name))
        elif path.name == "decoder.pt":
            left, right = torch.load(path), torch.load(b / path.name)
        else:
            continue
        assert left.keys() == right.keys() and all(torch.equal(left[k], right[k]) for k in left), path
        checked += 1
    assert checked


def test_a_killed_seq2seq_fine_tune_resumes_to_the_uninterrupted_result(small_texts, mlqa, tmp_path):
    from xqg.generation import seq2seq
    from xqg.models.tiny import tiny_mt5

    tiny_mt5(small_texts + [prompt(lang, "t", "p") for lang in ("de", "zh")], tmp_path / "mt5")
    tr = triples(mlqa, ["de", "zh"])[:24]

    def fine_tune(out: str, draws: int, stop_after: int | None = None):
        gen = seq2seq.Seq2SeqGenerator.from_pretrained(tmp_path / "mt5")
        torch.rand(draws)  # whatever ran before in the process
        args = seq2seq.Seq2SeqTrainingArgs(
            output_dir=str(tmp_path / out),
            steps=6,
            batch_size=8,
            micro_batch=4,
            learning_rate=1e-3,
            eval_every=2,
        )
        return seq2seq.fine_tune(gen, tr, tr[:4], args, stop_after=stop_after)

    whole = fine_tune("whole", 0)
    assert [h["step"] for h in whole] == [2, 4, 6] and len({h["dev_loss"] for h in whole}) == 3
    killed = fine_tune("killed", 3, stop_after=3)  # a kill after step 3: its last checkpoint is step 3's
    assert [h["step"] for h in killed] == [2] and not (tmp_path / "killed" / "best").exists()
    assert sorted(p.name for p in (tmp_path / "killed" / "checkpoints").iterdir()) == [
        "checkpoint-2",
        "checkpoint-3",
    ]
    assert fine_tune("killed", 5) == whole
    _same_weights(tmp_path / "whole" / "best", tmp_path / "killed" / "best")
    written = (tmp_path / "whole" / "best" / "model.safetensors").stat().st_mtime_ns
    assert fine_tune("whole", 0) == whole  # finished: reused as it is, nothing rewritten
    assert (tmp_path / "whole" / "best" / "model.safetensors").stat().st_mtime_ns == written


def test_a_killed_e5_generator_training_resumes_to_the_uninterrupted_result(
    small_texts, mlqa, tmp_path, monkeypatch
):
    from xqg.data.schema import Passage
    from xqg.generation import train_e5
    from xqg.generation.e5_generator import build_generator
    from xqg.models.tiny import tiny_encoder

    enc = tiny_encoder(small_texts, "bert", seed=0)
    tr = triples(mlqa, ["de", "zh"])[:24]
    held = [Passage(t.passage_id, t.title, t.passage) for t in tr[:4]]

    def train(out: str, draws: int):
        texts = [t.question for t in tr] + [f"{t.title} {t.passage}" for t in tr]
        gen = build_generator("tiny", ["de", "zh"], texts, n_layers=1, encoder=enc, seed=0)
        torch.rand(draws)
        args = train_e5.GeneratorTrainingArgs(
            output_dir=str(tmp_path / out), steps=6, batch_size=8, eval_every=2, learning_rate=1e-3,
            warmup_steps=1, max_new_tokens=6,
        )  # fmt: skip
        return train_e5.train_e5_generator(gen, tr, held, held, args)

    whole = train("whole", 0)
    with monkeypatch.context() as m:
        m.setattr(train_e5, "atomic_dir", _dies_after_first_checkpoint)
        with pytest.raises(_Killed):
            train("killed", 3)
    assert train("killed", 5) == whole
    _same_weights(tmp_path / "whole" / "last", tmp_path / "killed" / "last")


# --- 3. clean runs agree byte for byte --------------------------------------------------------------
def test_step_06_rerun_from_scratch_writes_the_same_metrics_bytes(smoke_run, tmp_path):
    from xqg.study.steps import qa

    ws = copy_workspace(smoke_run, tmp_path, ignore=("reader", "reader.recipe.json"))
    qa.run(ws, qa.Config.load("smoke"))
    for name in ("metrics_qa.csv", "per_query_qa.csv.gz", "predictions_qa.csv.gz"):
        assert digest(ws.result(name)) == digest(smoke_run / "results" / "smoke" / name), name


# --- 4. misconfiguration is refused before any work -------------------------------------------------
@pytest.mark.parametrize(
    ("step", "overrides", "message"),
    [
        (
            "05_retrieve",
            {"alphas": [-0.5, 0.1]},
            "'alphas[0]' = [-0.5, 0.1]: Input should be greater than or equal to 0",
        ),
        ("05_retrieve", {"modes": ["avg"]}, "Input should be 'sum', 'mean', 'routed-sum' or 'routed-mean'"),
        ("03_generate", {"n_queries": "two"}, "'n_queries' = 'two': Input should be a valid integer"),
        ("03_generate", {"n_queries": 0}, "greater than or equal to 1"),
        ("07_robustness", {"perturbation_severities": [0.0]}, "greater than 0"),
        ("06_qa", {"reader_dtype": "fp16"}, "Input should be 'float32' or 'bfloat16'"),
    ],
)
def test_values_out_of_range_are_named(step, overrides, message):
    from xqg.study.steps import step_config

    with pytest.raises(ValueError) as err:
        step_config(step).load("smoke", overrides)
    assert message in str(err.value) and "<overrides>" in str(err.value)


def test_n_queries_above_what_was_generated_is_refused_before_work(smoke_run, tmp_path):
    from xqg.study.steps import retrieve

    ws = copy_workspace(smoke_run, tmp_path)
    with pytest.raises(ValueError, match=r"'n_queries' = 5, but step 03 generated 2 per passage"):
        retrieve.run(ws, retrieve.Config.load("smoke", {"n_queries": 5}))
    assert not ws.results.exists()  # nothing was written


def test_an_unknown_model_is_named_at_once(smoke_run, tmp_path, monkeypatch):
    from xqg.study.steps import retrieve

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert "not in the Hugging Face cache" in checks.model_problem("nobody/no-such-model")
    assert checks.model_problem("./models/nope") == "no model folder ./models/nope"
    assert checks.model_problem("tiny-xlm-roberta") is None
    ws = copy_workspace(smoke_run, tmp_path)
    start = time.monotonic()
    with pytest.raises(ValueError, match=r"<overrides>: 'encoder': nobody/no-such-model is not in"):
        retrieve.run(ws, retrieve.Config.load("smoke", {"encoder": "nobody/no-such-model"}))
    assert time.monotonic() - start < 5


def test_a_missing_dictionary_stops_robustness_before_any_work(smoke_run, tmp_path):
    from xqg.study.steps import robustness

    ws = copy_workspace(smoke_run, tmp_path)
    with pytest.raises(FileNotFoundError, match="dict-freedict-deu-eng"):
        robustness.run(ws, robustness.Config.load("smoke", {"dictionary_dir": str(tmp_path / "none")}))
    assert not ws.results.exists()


# --- 6. and 7. kills leave nothing running; one run per profile --------------------------------------
def _alive(pid: int) -> bool:
    """A process that runs (a zombie waiting for a reaper is dead)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "\nState:\tZ" not in status


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_a_guarded_kernel_dies_with_its_parent(tmp_path):
    """The kernel of a killed pipeline run used to go on writing for up to a second."""
    pid_file = tmp_path / "child"
    child_code = f"import os, time; open({str(pid_file)!r}, 'w').write(str(os.getpid())); time.sleep(60)"
    guarded = [sys.executable, "-m", "xqg.kernel_guard", "--", sys.executable, "-c", child_code]
    script = tmp_path / "parent.py"
    script.write_text(
        f"import subprocess, time\nsubprocess.Popen({guarded!r}, start_new_session=True)\ntime.sleep(60)\n"
    )
    parent = subprocess.Popen([sys.executable, str(script)])
    for _ in range(100):
        if pid_file.exists() and pid_file.read_text():
            break
        time.sleep(0.1)
    child = int(pid_file.read_text())
    parent.kill()
    parent.wait()
    for _ in range(20):
        if not _alive(child):
            return
        time.sleep(0.05)
    os.kill(child, signal.SIGKILL)
    pytest.fail("the guarded child outlived its parent by a second")


def test_a_second_run_of_a_profile_is_refused_naming_the_first(tmp_path):
    env = {**os.environ, **roots_env(tmp_path)}
    with exclusive(tmp_path / "work" / "smoke" / ".lock", "profile 'smoke'"):
        proc = subprocess.run(
            [sys.executable, "-m", "xqg.pipeline", "run", "01_data", "--profile", "smoke"],
            env=env,
            capture_output=True,
            text=True,
        )
        with (
            pytest.raises(Locked, match=f"pid {os.getpid()}"),
            exclusive(tmp_path / "work" / "smoke" / ".lock", "profile 'smoke'"),
        ):
            pass
    assert proc.returncode == 2
    assert f"profile 'smoke' is in use by pid {os.getpid()}" in proc.stderr
    assert not (tmp_path / "work" / "smoke" / "data").exists()


def test_a_failed_step_replaces_its_notebook_and_leaves_no_partial_files(tmp_path):
    runs = tmp_path / "runs" / "smoke"
    runs.mkdir(parents=True)
    (runs / "01_data.ipynb").write_text("{}")  # the last successful run's notebook
    (runs / ".01_data.running.12345.ipynb").write_text("{")  # left by a killed run
    (runs / ".01_data.ipynb.abc.tmp").write_text("{")
    (tmp_path / "no-data").mkdir()
    proc = subprocess.run(  # no benchmark files: step 01 fails inside its notebook
        [sys.executable, "-m", "xqg.pipeline", "run", "01_data", "--profile", "smoke"],
        env={**os.environ, **roots_env(tmp_path), "XQG_DATA_DIR": str(tmp_path / "no-data")},
        capture_output=True,
        text=True,
    )
    assert proc.returncode != 0
    assert sorted(p.name for p in runs.iterdir()) == ["01_data.ipynb"]
    failed = json.loads((runs / "01_data.ipynb").read_text())
    errors = [o for c in failed["cells"] for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert errors and errors[0]["ename"] == "FileNotFoundError"


def test_a_step_whose_inputs_are_missing_exits_2_with_one_line(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "xqg.pipeline", "run", "05_retrieve", "--profile", "smoke"],
        env={**os.environ, **roots_env(tmp_path)},
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "queries.jsonl: missing or made without a recipe; run step 03_generate first" in proc.stderr
    assert not (tmp_path / "runs" / "smoke" / "05_retrieve.ipynb").exists()


# --- 8. evaluators reject nonsense --------------------------------------------------------------------
XOR_DEV = [
    {"id": "1", "question": "q", "answers": ["Paris"], "lang": "fi"},
    {"id": "2", "question": "q", "answers": ["Rome"], "lang": "ja"},
    {"id": "3", "question": "q", "answers": ["Oslo"], "lang": "ja"},
]


def _xor(tmp_path: Path, preds, partial: bool = False):
    data, pred = tmp_path / "dev.jsonl", tmp_path / "pred.json"
    data.write_text("\n".join(json.dumps(r) for r in XOR_DEV))
    pred.write_text(json.dumps(preds))
    return evaluate.evaluate_xor(str(data), str(pred), [2000], partial)


def _ctx(qid: str, ctxs, lang: str | None = None) -> dict:
    return {"id": qid, "ctxs": ctxs, **({"lang": lang} if lang else {})}


@pytest.mark.parametrize(
    ("preds", "message"),
    [
        ([], "no predictions"),
        ({"1": ["in Paris"]}, "expected a JSON list"),
        ([_ctx("1", "in Paris")], r"item 0 \(id 1\): field 'ctxs' must be a list of passages, got a str"),
        ([_ctx("1", [{"title": "t"}])], r"ctxs\[0\] must be a passage text"),
        ([_ctx("1", ["x"]), _ctx("1", ["y"])], "a second prediction"),
        ([{"ctxs": []}], "item 0: field 'id' missing"),
        ([_ctx(q, ["x"]) for q in ("1", "2", "3", "99")], r"1 predictions for questions not in .*'99'"),
        ([_ctx("1", ["x"])], r"no prediction for 2 of the 3 questions .*--partial"),
        ([_ctx("1", ["x"], "ja"), _ctx("2", ["x"]), _ctx("3", ["x"])], "field 'lang' is 'ja', but"),
    ],
)
def test_xor_retrieve_refuses_bad_predictions(tmp_path, preds, message):
    with pytest.raises(ValueError, match=message):
        _xor(tmp_path, preds)


def test_xor_retrieve_scores_a_partial_file_only_when_asked(tmp_path, capsys):
    got = _xor(tmp_path, [_ctx("1", ["in Paris"]), _ctx("2", ["in Oslo"])], partial=True)
    assert got["R@2kt"] == {"fi": 100.0, "ja": 0.0, "macro": 50.0}
    assert "1 of 3 questions" in capsys.readouterr().err


MLQA = {"data": [{"title": "t", "paragraphs": [{"context": "c", "qas": [
    {"id": "a", "question": "q", "answers": [{"text": "Paris", "answer_start": 0}]},
    {"id": "b", "question": "q", "answers": [{"text": "red dog", "answer_start": 0}]},
]}]}]}  # fmt: skip


@pytest.mark.parametrize(
    ("dataset", "preds", "message"),
    [
        (MLQA, ["Paris", "red dog"], "expected a JSON object"),
        (MLQA, {"a": None, "b": "x"}, "question 'a': the answer must be a string, got None"),
        (MLQA, {"a": 3, "b": "x"}, "got 3"),
        (MLQA, {"a": "Paris", "b": "x", "zz": "y"}, r"1 predictions for questions not in .*'zz'"),
        (MLQA, {"a": "Paris"}, r"no prediction for 1 of the 2 questions .*--partial"),
        ({"a": "Paris", "b": "x"}, MLQA, r"not an MLQA/SQuAD dataset.*swapped"),
        ({"data": []}, {}, "no questions"),
        ({"data": [{"title": "t"}]}, {}, "malformed SQuAD structure"),
    ],
)
def test_mlqa_refuses_bad_input(tmp_path, dataset, preds, message):
    (tmp_path / "d.json").write_text(json.dumps(dataset))
    (tmp_path / "p.json").write_text(json.dumps(preds))
    with pytest.raises(ValueError, match=message):
        evaluate.evaluate_mlqa(str(tmp_path / "d.json"), str(tmp_path / "p.json"), "en")


def test_evaluator_cli_exits_2_naming_the_file(tmp_path):
    (tmp_path / "d.json").write_text(json.dumps(MLQA))
    (tmp_path / "p.json").write_text(json.dumps({"a": "Paris"}))
    cmd = [
        sys.executable,
        "-m",
        "xqg.evaluate",
        "mlqa",
        str(tmp_path / "d.json"),
        str(tmp_path / "p.json"),
        "en",
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    assert proc.returncode == 2 and f"{tmp_path / 'p.json'}: no prediction for 1" in proc.stderr
    proc = subprocess.run([*cmd, "--partial"], capture_output=True, text=True, check=True)
    assert json.loads(proc.stdout) == {"exact_match": 50.0, "f1": 50.0}


def test_make_checks_every_steps_parameters_before_the_first_step(tmp_path):
    """A bad value in a later step's file used to cost a rerun of the steps before it."""
    params = tmp_path / "params"
    shutil.copytree(Path("params"), params)
    common = params / "smoke" / "common.yml"
    common.write_text(common.read_text().replace("n_queries: 2", 'n_queries: "two"'))
    from xqg.pipeline import check_params

    problems = check_params(["smoke"], params)
    assert problems == [f"{common}: 'n_queries' = 'two': Input should be a valid integer (expected int >= 1)"]
    rule = Path("Makefile").read_text()
    assert "| $(VENV) params-ok" in rule and "check-params $(PROFILE)" in rule


def test_reader_curve_gives_step_06s_gold_scores_and_reuses_its_readers(smoke_run, tmp_path):
    """The reader's quality-against-steps benchmark (issue 12) trains step 06's reader in folders of
    its own: at step 06's step count it gives step 06's gold-passage EM and F1 in every language,
    the study's reader stays untouched, a rerun reuses a trained count and other settings retrain."""
    import pandas as pd

    from xqg.benchmarks.reader_curve import curve
    from xqg.study.steps import qa

    ws = copy_workspace(smoke_run, tmp_path)
    study_reader = digest(ws.reader_checkpoint / "model.safetensors")
    steps = qa.Config.load("smoke").reader_steps
    rows = curve("smoke", [1, steps], tmp_path / "curve", ws=ws)
    assert rows["steps"].tolist() == [1, steps] and (rows["seconds"] > 0).all()
    metrics = pd.read_csv(smoke_run / "results" / "smoke" / "metrics_qa.csv", keep_default_na=False)
    gold = metrics[metrics.encoder == "gold passage"]
    languages = {q.language for q in qa.scored_questions(ws)}
    assert sorted(gold.metric + " " + gold.language) == sorted(
        f"{m} {lang}" for m in ("EM", "F1") for lang in [*languages, "macro"]
    )
    for r in gold.itertuples():
        assert rows.iloc[1][f"{r.metric} {r.language}"] == r.value
    one, all_steps = (tmp_path / "curve" / f"steps-{n}" / "final" / "model.safetensors" for n in (1, steps))
    assert digest(one) != digest(all_steps)  # each count trains a reader of its own
    assert digest(ws.reader_checkpoint / "model.safetensors") == study_reader
    again = curve("smoke", [steps], tmp_path / "curve", ws=ws)  # trained before: reused, with its clock
    assert again.iloc[0].equals(rows.iloc[1])
    other = curve("smoke", [steps], tmp_path / "curve", {"reader_lr": 1e-2}, ws)  # retrained
    assert other.iloc[0]["seconds"] != rows.iloc[1]["seconds"]
    with pytest.raises(FileNotFoundError, match="run step 01"):
        curve("smoke", [1], tmp_path / "none", ws=Workspace("smoke", tmp_path / "empty"))


def test_generator_curve_trains_its_own_copy_and_resumes(smoke_run, tmp_path):
    """The quality-against-steps benchmark (issue 12) trains step 02's e5-decoder in a folder of
    its own: one row per evaluation, the study's generator untouched, a rerun resumes."""
    from xqg.benchmarks.generator_curve import curve

    ws = copy_workspace(smoke_run, tmp_path)
    study_generator = digest(ws.generator_checkpoint() / "model.safetensors")
    e5 = {"generator_kind": "e5-decoder", "generator_model": "tiny-xlm-roberta", "decoder_layers": 1}
    rows = curve("smoke", 4, 2, tmp_path / "curve", e5, ws)
    assert rows["step"].tolist() == [2, 4] and rows["seconds"].is_monotonic_increasing
    assert (rows["triples"] == len(ws.triples())).all()
    assert (rows["heldout_passages"] == len(ws.passages(ws.generator_heldout))).all()
    languages = sorted({t.language for t in ws.triples()})
    assert rows["mean"].tolist() == pytest.approx(rows[languages].mean(axis=1).tolist())
    assert digest(ws.generator_checkpoint() / "model.safetensors") == study_generator
    again = curve("smoke", 4, 2, tmp_path / "curve", e5, ws)  # finished: the history, no new clock
    assert again[languages].equals(rows[languages]) and again["seconds"].isna().all()
    other = curve("smoke", 2, 2, tmp_path / "curve", {**e5, "decoder_dropout": 0.1}, ws)  # starts over
    assert other["step"].tolist() == [2] and other["seconds"].notna().all()
    with pytest.raises(ValueError, match="not an e5-decoder"):
        curve("smoke", 4, 2, tmp_path / "other", {}, ws)
    # step 01 parameters prepare the benchmark's own data: SQuAD-es's pairs join the triples
    es = {"generator_data": ["squad-es"], "generator_languages": ["de", "es", "zh"]}
    more = curve("smoke", 2, 2, tmp_path / "more", {**e5, **es}, ws)
    prepared = Workspace("smoke", tmp_path / "more" / "work")
    assert more["triples"].tolist() == [len(prepared.triples())]
    assert len(prepared.triples()) > len(ws.triples())
    assert ws.generator_train.read_bytes() != prepared.generator_train.read_bytes()
    # the checkpoint's questions on passages no triple names, next to the humans' on the same passages
    from xqg.benchmarks.generator_quality import quality

    best = tmp_path / "curve" / "generator" / "best"
    table = quality([best], "smoke", 4, ws=ws)
    trained = {t.passage_id for t in ws.triples()}
    pool = [pid for pid in ws.passages() if pid not in trained][:4]
    mine = table[table["source"] == str(best)].set_index("language")
    assert (
        mine.index.tolist() == [*languages, "macro"] and (mine.loc[languages, "questions"] == len(pool)).all()
    )
    for col in ["Recall@10", "Recall@10 in language", "in language %"]:  # shares of the pool's questions
        hits = mine.loc[languages, col] * len(pool) / 100
        assert (hits - hits.round()).abs().max() < 1e-9
    assert (mine["Recall@10 in language"] <= mine["Recall@10"]).all()
    assert mine.loc["macro", "Recall@10"] == pytest.approx(mine.loc[languages, "Recall@10"].mean())
    human = table[table["source"] == "human"].set_index("language")
    asked = [q for name in ("tuning", "eval") for q in ws.queries(name) if q.gold_passage in set(pool)]
    assert human.loc[languages, "questions"].tolist() == [
        min(4, sum(q.language == lang for q in asked)) for lang in languages
    ]
    # restrict_vocabulary (step 02): the selected checkpoint carries each trained language's pieces,
    # and the benchmark can restrict a checkpoint trained without it
    from xqg.generation.e5_generator import E5QuestionGenerator, kept_pieces

    curve("smoke", 2, 2, tmp_path / "restricted", {**e5, "restrict_vocabulary": True}, ws)
    saved = E5QuestionGenerator.load(tmp_path / "restricted" / "generator" / "best")
    assert sorted(saved.config.language_pieces) == languages
    zh = [t.question for t in ws.triples() if t.language == "zh"]
    assert saved.config.language_pieces["zh"] == kept_pieces(saved.encoder.tokenizer, zh)
    again = quality([best], "smoke", 4, ws=ws, restrict=True)
    assert set(again["source"]) == {f"{best} restricted", "human"}
    # a seen-only generator takes its vocabularies from its own triples: an unseen language stays free
    from xqg.study.steps import train_generator

    config = train_generator.Config.load("smoke", {**e5, "restrict_vocabulary": True})
    seen = [t for t in ws.triples() if t.language == "de"]
    gen, _, _ = train_generator.e5_generator_setup(ws, config, ws.triples(), seen)
    assert list(gen.config.language_pieces) == ["de"] and gen.allowed_pieces("zh") is None
    # script_budget (step 02) goes into the generator's config; the benchmark can sample with it
    config = train_generator.Config.load("smoke", {**e5, "script_budget": True})
    assert train_generator.e5_generator_setup(ws, config, ws.triples())[0].config.script_budget
    budget = quality([best], "smoke", 4, ws=ws, script_budget=True)
    assert set(budget["source"]) == {f"{best} script budget", "human"}
    assert budget[budget["source"] == "human"].equals(table[table["source"] == "human"])
