"""The whole smoke pipeline through papermill, asserting on what the notebooks recorded."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from conftest import roots_env

from xqg.pipeline import check_notebooks, check_params
from xqg.study.steps import step_config
from xqg.study.systems import METRIC_COLUMNS


def test_params_match_notebooks_in_every_profile():
    assert check_params() == []


def test_source_notebooks_have_no_outputs():
    assert check_notebooks() == []


def test_unknown_profile_and_step_are_named():
    with pytest.raises(ValueError, match="unknown profile 'huge'"):
        step_config("01_data").load("huge")
    with pytest.raises(ValueError, match="unknown step '09_x'"):
        step_config("09_x")
    proc = subprocess.run(
        [sys.executable, "-m", "xqg.pipeline", "run", "05_retrieve", "--profile", "nope"],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2 and "unknown profile 'nope'" in proc.stderr


def test_smoke_pipeline_records_consistent_results(smoke_run):
    root = smoke_run
    summary = json.loads((root / "work" / "smoke" / "data" / "summary.json").read_text())
    assert summary["collection passages"] == 30
    n_test = summary["evaluation queries (test)"]
    metrics = pd.read_csv(root / "results" / "smoke" / "metrics.csv")
    assert set(METRIC_COLUMNS) <= set(metrics.columns)
    test = metrics[
        (metrics.split == "test") & (metrics.language == "macro") & (metrics.encoder != "gold passage")
    ]
    # zero-shot and fine-tuned, each without xQG and with 1..2 queries per language
    assert set(zip(test.training, test.n_queries)) == {
        (t, n) for t in ("zero-shot", "fine-tuned") for n in (0, 1, 2)
    }
    assert (test[test.metric == "Recall@20"]["n"] == n_test).all()
    assert metrics["value"].between(0, 100).all()
    # Recall@k cannot fall as k grows
    wide = test.pivot_table(index=["training", "n_queries"], columns="metric", values="value")
    assert (wide["Recall@1"] <= wide["Recall@5"]).all() and (wide["Recall@5"] <= wide["Recall@20"]).all()
    # the macro row is the mean of the language rows
    rows = metrics[
        (metrics.split == "test")
        & (metrics.metric == "MRR@10")
        & (metrics.training == "zero-shot")
        & (metrics.n_queries == 0)
    ]
    rows = rows[rows.passage_format == rows.passage_format.iloc[0]]  # one baseline per passage format
    assert rows[rows.language == "macro"]["value"].iloc[0] == pytest.approx(
        rows[rows.language != "macro"]["value"].mean()
    )


def test_smoke_pipeline_writes_generation_tables_and_figures(smoke_run):
    root = smoke_run
    lines = (root / "work" / "smoke" / "generated" / "queries.jsonl").read_text().splitlines()
    assert len(lines) == 30 * 2 * 2  # passages x languages x queries
    quality = pd.read_csv(root / "results" / "smoke" / "generation_quality.csv", index_col=0)
    assert list(quality.index) == ["de", "zh", "macro"] and quality["queries"].tolist() == [60, 60, 120]
    assert quality.loc["macro", "round-trip R@10"] == pytest.approx(quality["round-trip R@10"][:2].mean())
    # the held-out columns count only passages no generator trained on nor chose its checkpoint by
    data = root / "work" / "smoke" / "data"

    def ids(name: str, field: str) -> set[str]:
        return {json.loads(line)[field] for line in (data / name).read_text().splitlines()}

    held_out = ids("collection.jsonl", "id") - ids("generator_train.jsonl", "passage_id")
    held_out -= ids("generator_heldout.jsonl", "id")
    assert quality.loc["macro", "held-out queries"] == len(held_out) * 2 * 2
    as_json = json.loads((root / "results" / "smoke" / "generation_quality.json").read_text())
    assert as_json["macro"]["queries"] == 120 and set(as_json) == {"de", "zh", "macro"}
    tables = root / "results" / "smoke" / "tables"
    for suffix in (".csv", ".tex", ".md"):
        assert (tables / f"retrieval_MRR_at_10{suffix}").exists()
    assert "\\toprule" in (tables / "retrieval_MRR_at_10.tex").read_text()
    for name in ("ablation_n_queries", "alpha_sweep"):
        for suffix in (".pdf", ".png"):
            assert (root / "figures" / "smoke" / f"{name}{suffix}").stat().st_size > 1000
    assert (root / "work" / "smoke" / "models" / "retriever" / "final" / "xqg_encoder.json").exists()


def test_smoke_pipeline_answers_questions_end_to_end(smoke_run):
    results = smoke_run / "results" / "smoke"
    summary = json.loads((smoke_run / "work" / "smoke" / "data" / "summary.json").read_text())
    qa = pd.read_csv(results / "metrics_qa.csv", keep_default_na=False)
    macro = qa[qa.language == "macro"]
    assert set(macro.metric) == {"EM", "F1"}
    assert macro["value"].between(0, 100).all()
    # the gold-passage upper bound, each encoder without and with xQG (n = 2), and RQ1's seen-only systems
    systems = set(zip(macro.encoder, macro.training, macro.xqg, macro.generator, macro.gen_languages))
    assert ("gold passage", "oracle", False, "full", "") in systems
    for training in ("zero-shot", "fine-tuned"):
        assert {
            (training, False, "full", ""),
            (training, True, "full", ""),
            (training, True, "seen-only", ""),
            (training, True, "seen-only", "de"),
            (training, True, "full", "de"),
        } <= {s[1:] for s in systems}
    # every test question answered once per system; EM never above F1
    n_test = summary["evaluation queries (test)"]
    assert (macro[macro.metric == "F1"]["n"] == n_test).all()
    wide = qa.pivot_table(
        index=["encoder", "training", "xqg", "mode", "generator", "gen_languages", "language"],
        columns="metric",
        values="value",
    )
    assert (wide["EM"] <= wide["F1"] + 1e-9).all()
    preds = pd.read_csv(results / "predictions_qa.csv.gz", keep_default_na=False)
    assert (
        len(preds)
        == n_test
        * macro.drop_duplicates(["encoder", "training", "xqg", "mode", "generator", "gen_languages"]).shape[0]
    )


def test_smoke_pipeline_runs_every_perturbation_family(smoke_run):
    results = smoke_run / "results" / "smoke"
    rob = pd.read_csv(results / "metrics_robustness.csv", keep_default_na=False)
    from xqg.data.perturb import FAMILIES

    cells = set(zip(rob.perturbation, rob.severity))
    assert cells == {("none", 0.0)} | {(f, s) for f in FAMILIES for s in (0.2, 0.5)}
    # code_switch runs only where a dictionary exists: the tiny German one, not zh (reported missing)
    cs = rob[(rob.perturbation == "code_switch") & (rob.language != "macro")]
    assert set(cs.language) == {"de"}
    coverage = pd.read_csv(results / "perturbation_coverage.csv")
    assert coverage.set_index("language")["headwords"].to_dict() == {"de": 35, "zh": 0}
    samples = pd.read_csv(results / "perturbation_samples.csv", keep_default_na=False)
    assert not samples[samples.perturbation == "none"]["changed"].any()
    assert samples[samples.perturbation == "char_substitute"]["changed"].all()
    tables = results / "tables"
    for name in ("rq1_MRR_at_10", "rq1_F1", "rq1_gains", "rq2_F1", "rq2_Recall_at_20"):
        for suffix in (".csv", ".tex", ".md"):
            assert (tables / f"{name}{suffix}").exists()
    findings = (tables / "findings.md").read_text()
    assert "**RQ1 (generalisation)**" in findings and "**RQ2 (robustness)**" in findings
    rq2 = pd.read_csv(tables / "rq2_F1.csv", index_col=0)
    assert len(rq2) == len(FAMILIES) * 2 and rq2["p (Holm)"].between(0, 1).all()
    for name in ("rq1_per_language_gains", "rq2_robustness"):
        for suffix in (".pdf", ".png"):
            assert (smoke_run / "figures" / "smoke" / f"{name}{suffix}").stat().st_size > 1000


def test_the_robustness_figure_refuses_a_table_name_for_a_metric(tmp_path):
    """`F1, routed` names a table (the routed system's drops), not a metric: given it, the figure
    drew a row of empty panels; the routed system is a line in the F1 panels."""
    from xqg.study.research_questions import robustness_figure

    rows = [
        {
            "split": "robustness",
            "language": "de",
            "metric": "F1",
            "perturbation": p,
            "severity": s,
            "xqg": x,
            "mode": "sum",
            "value": v,
        }
        for p, s in (("none", 0.0), ("word_drop", 0.2))
        for x, v in ((False, 50.0), (True, 51.0))
    ]
    metrics = pd.DataFrame(rows)
    with pytest.raises(ValueError, match=r"F1, routed"):
        robustness_figure(metrics, ["F1", "F1, routed"], tmp_path / "rq2")
    assert [p.suffix for p in robustness_figure(metrics, ["F1"], tmp_path / "rq2")] == [".pdf", ".png"]


def test_smoke_runs_score_the_same_under_trec_eval(smoke_run):
    """Each test system's TREC run, scored by trec_eval's own code (ir_measures' pytrec_eval
    provider) against the written qrels, gives the project's per-query numbers."""
    import ir_measures
    from ir_measures import RR, R

    from xqg.study.systems import System

    results = smoke_run / "results" / "smoke"
    runs = results / "runs" / "test"
    pq = pd.read_csv(results / "per_query_retrieval.csv.gz", keep_default_na=False)
    pq = pq[pq.split == "test"]
    tags = pq.drop_duplicates(
        ["training", "passage_format", "mode", "n_queries", "generator", "gen_languages"]
    )
    tags = {System.from_row(r).tag for _, r in tags.iterrows()}
    # 2 trainings x (2 passage formats' baselines + 2 families x (n = 1, 2 and three RQ1 systems))
    assert {f.stem for f in runs.glob("*.trec")} == tags and len(tags) == 2 * (2 + 2 * 5)
    qrels = list(ir_measures.read_trec_qrels(str(runs / "qrels.txt")))
    names = {"RR@10": "MRR@10", "R@1": "Recall@1", "R@5": "Recall@5", "R@20": "Recall@20"}
    for path in sorted(runs.glob("*.trec")):
        # RR@10 from the top 10 (the pytrec_eval provider does not cut recip_rank at 10)
        run = [r for r in ir_measures.read_trec_run(str(path)) if r.score is not None]
        by_query: dict[str, list] = {}
        for r in run:
            by_query.setdefault(r.query_id, []).append(r)
        top10 = [r for rs in by_query.values() for r in sorted(rs, key=lambda r: -r.score)[:10]]
        theirs = {
            (m.query_id, names[str(m.measure)]): m.value
            for m in ir_measures.pytrec_eval.iter_calc([R @ 1, R @ 5, R @ 20], qrels, run)
        }
        rr = ir_measures.pytrec_eval.iter_calc([RR @ 10], qrels, top10)
        theirs |= {(m.query_id, "MRR@10"): m.value for m in rr}
        rows = pq[[System.from_row(r).tag == path.stem for _, r in pq.iterrows()]]
        ours = {(r.query_id, r.metric): r.value for r in rows.itertuples() if r.metric in names.values()}
        assert ours == pytest.approx(theirs), path.name


def test_a_notebook_runs_its_profile_in_lab_papermill_and_make(tmp_path, raw_data):
    """01_data run three ways: as JupyterLab's Run All does (the notebook's own defaults: mini),
    by papermill by hand with `-p profile smoke`, and as Make does (`xqg.pipeline run`)."""
    import os

    import nbformat
    import papermill
    from nbclient import NotebookClient

    from xqg.pipeline import NOTEBOOKS

    def summary(root):
        return json.loads((root / "work" / "smoke" / "data" / "summary.json").read_text())

    lab, by_hand, make = tmp_path / "lab", tmp_path / "papermill", tmp_path / "make"
    old = dict(os.environ)
    try:
        os.environ.update(roots_env(lab))
        nb = nbformat.read(NOTEBOOKS / "01_data.ipynb", as_version=4)
        NotebookClient(
            nb, kernel_name="python3", resources={"metadata": {"path": str(NOTEBOOKS.parent)}}
        ).execute()
        os.environ.update(roots_env(by_hand))
        papermill.execute_notebook(
            str(NOTEBOOKS / "01_data.ipynb"),
            str(tmp_path / "out.ipynb"),
            parameters={"profile": "smoke"},
            kernel_name="python3",
            cwd=str(NOTEBOOKS.parent),
            progress_bar=False,
        )
    finally:
        os.environ.clear()
        os.environ.update(old)
    proc = subprocess.run(
        [sys.executable, "-m", "xqg.pipeline", "run", "01_data", "--profile", "smoke"],
        env={**os.environ, **roots_env(make)},
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    lab_summary = json.loads((lab / "work" / "mini" / "data" / "summary.json").read_text())
    assert lab_summary["collection passages"] == 978  # the mini profile, as the notebook says
    assert summary(by_hand) == summary(make) and summary(make)["collection passages"] == 30
    assert not (by_hand / "work" / "mini").exists()


def test_make_lab_runs_as_root_with_the_projects_kernel():
    out = subprocess.run(["make", "-n", "lab"], capture_output=True, text=True, check=True).stdout
    lab = next(line for line in out.splitlines() if "jupyter lab" in line)
    as_root = subprocess.run(
        ["bash", "-c", lab.replace(".venv/bin/jupyter lab", "echo")], capture_output=True, text=True
    )
    assert ("--allow-root" in as_root.stdout) == (__import__("os").geteuid() == 0)
    assert "ipykernel install --user --name xqg" in Path("Makefile").read_text()
    import importlib.util

    assert importlib.util.find_spec("ipywidgets") is not None  # tqdm.auto draws widgets in Lab


def test_step_05_closing_table_keeps_every_system(smoke_run):
    """Read as the notebook reads it: 2 trainings x (a baseline per passage format, then per family
    of modes, folded and routed: n = 1, 2 and three RQ1 systems)."""
    from xqg.study.systems import evaluation_summary

    metrics = pd.read_csv(smoke_run / "results" / "smoke" / "metrics_retrieval.csv", keep_default_na=False)
    choice = json.loads((smoke_run / "work" / "smoke" / "xqg_config.json").read_text())
    table = evaluation_summary(metrics)
    assert len(table) == 2 * (2 + 2 * 5) and not table.isna().any().any()
    fmt = choice["zero-shot"]["passage_format"]
    key = ("zero-shot", fmt, False, "sum", 0, "full", "")  # the chosen format's baseline
    base = metrics[(metrics.split == "test") & (metrics.language == "macro") & (metrics.metric == "MRR@10")]
    base = base[(base.training == "zero-shot") & ~base.xqg & (base.passage_format == fmt)]
    assert table.loc[key, "MRR@10"] == round(base["value"].iloc[0], 1)
    # every xQG system reads passages in the chosen format, one per family with step 05's choice
    xqg = table.reset_index()
    xqg = xqg[xqg.xqg & (xqg.training == "zero-shot") & (xqg.n_queries == 2) & (xqg.gen_languages == "")]
    assert set(xqg.passage_format) == {fmt}
    assert set(xqg["mode"]) == {c["mode"] for c in choice["zero-shot"]["xqg"].values()}


def test_reader_is_the_same_whatever_ran_before_it(smoke_run, tmp_path):
    """Step 06's fresh span head: two builds from the same prepared data give the same reader and
    losses even when the process drew different amounts of randomness before."""
    import shutil

    import torch
    from safetensors.torch import load_file

    from xqg.study.steps import qa
    from xqg.study.workspace import Workspace

    config = qa.Config.load("smoke")
    histories, weights = [], []
    for i, draws in enumerate((0, 7)):
        root = tmp_path / str(i)
        shutil.copytree(smoke_run / "work" / "smoke", root / "work", ignore=shutil.ignore_patterns("reader"))
        ws = Workspace("smoke", root / "work", root / "results", root / "figures")
        torch.rand(draws)  # whatever ran earlier in the process
        histories.append(qa.build_reader(ws, config)["history"])
        weights.append(load_file(str(ws.reader_checkpoint / "model.safetensors")))
        assert not list(ws.reader_dir.glob("*training_state*"))  # the resume state goes with the saved model
    assert histories[0] and histories[0] == histories[1]
    assert weights[0].keys() == weights[1].keys()
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])
