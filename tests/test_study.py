"""The study package's structure: typed configs and profile inheritance, the workspace, the
leakage-free split on the real data, code fingerprints, and the rules that keep it easy to live in
(no import loops, no module-level mutable state, steps that never import steps)."""

from __future__ import annotations

import ast
import dataclasses
import shutil
import typing
from pathlib import Path

import pytest

from xqg.paths import PROJECT_ROOT
from xqg.pipeline import check_params, unused_common_keys
from xqg.study.config import PARAMS, merged_params, profile_chain, type_name
from xqg.study.fingerprint import closure, fingerprint
from xqg.study.steps import STEPS, module_name, step_config
from xqg.study.workspace import Workspace

PACKAGE = PROJECT_ROOT / "xqg"


def _write(folder: Path, name: str, text: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(text)


@pytest.fixture
def params(tmp_path) -> Path:
    """A copy of the real parameter files to break."""
    out = tmp_path / "params"
    shutil.copytree(PARAMS, out)
    return out


def test_every_config_field_has_a_type_and_help():
    for step in STEPS:
        config = step_config(step)
        assert step == config.STEP
        types = config.field_types()
        for f in dataclasses.fields(config):
            assert f.metadata.get("help"), f"{step}: field {f.name} has no help"
            assert _plain(types[f.name]) in (int, float, str, bool, list[str], list[float], list[int])
            assert "FieldInfo" not in type_name(types[f.name])


def _plain(typ):
    """The YAML-expressible type under ranges (Annotated) and choices (Literal)."""
    origin, args = typing.get_origin(typ), typing.get_args(typ)
    if origin is typing.Annotated:
        return _plain(args[0])
    if origin is typing.Literal:
        return type(args[0])
    return list[_plain(args[0])] if origin is list else typ


def test_variants_inherit_from_the_paper_profile():
    assert profile_chain("paper-xlmr") == ["paper", "paper-xlmr"]
    xlmr = step_config("04_train_retriever").load("paper-xlmr")
    paper = step_config("04_train_retriever").load("paper")
    assert xlmr.encoder == "xlm-roberta-base" and paper.encoder == "bert-base-multilingual-cased"
    assert dataclasses.replace(xlmr, encoder=paper.encoder) == paper  # everything else inherited
    released = step_config("02_train_generator").load("paper-released")
    assert (released.generator_steps, released.generator_lr) == (0, 1e-4)  # own file, then inherited
    value, path = merged_params("paper-released", "02_train_generator")["generator_batch_size"]
    assert value == 128 and path == PARAMS / "paper" / "02_train_generator.yml"


def test_a_wrong_type_is_refused_naming_file_and_key(params):
    path = params / "smoke" / "05_retrieve.yml"
    path.write_text(path.read_text() + "n_queries: two\n")
    problems = check_params(["smoke"], params)
    assert f"{path}: 'n_queries' = 'two': Input should be a valid integer (expected int >= 1)" in problems
    with pytest.raises(ValueError, match=r"05_retrieve.yml: 'n_queries' = 'two'"):
        step_config("05_retrieve").load("smoke", params=params)
    path.write_text(path.read_text().replace("n_queries: two\n", "alphas: [0.1, big]\n"))
    assert any("'alphas[1]' = [0.1, 'big']" in p for p in check_params(["smoke"], params))


def test_unknown_missing_and_stray_keys_are_named(params):
    _write(params / "smoke", "06_qa.yml", (params / "smoke" / "06_qa.yml").read_text() + "reader_stepz: 3\n")
    common = params / "smoke" / "common.yml"
    common.write_text(common.read_text() + "n_querys: 2\n")
    text = (params / "smoke" / "04_train_retriever.yml").read_text()
    (params / "smoke" / "04_train_retriever.yml").write_text(text.replace("n_negatives: 2\n", ""))
    _write(params / "smoke", "09_extra.yml", "x: 1\n")
    problems = "\n".join(check_params(["smoke"], params))
    assert "06_qa.yml: 'reader_stepz' is not a parameter of step 06_qa" in problems
    assert "common.yml: 'n_querys' is a parameter of no step" in problems
    # what `xqg.pipeline run` refuses before any work, without importing the steps
    assert unused_common_keys("smoke", params) == [f"{common}: 'n_querys' is a parameter of no step"]
    assert "'n_negatives' is not set for step 04_train_retriever" in problems
    assert "09_extra.yml: not a step's file" in problems
    with pytest.raises(ValueError, match="'alpha' is not a parameter of step 05_retrieve"):
        step_config("05_retrieve").load("mini", {"alpha": 0.1})


def test_extends_cycles_and_unknown_parents_are_named(params):
    _write(params / "a", "common.yml", "extends: b\n")
    _write(params / "b", "common.yml", "extends: a\n")
    with pytest.raises(ValueError, match="'extends' makes a cycle"):
        profile_chain("a", params)
    _write(params / "c", "common.yml", "extends: nowhere\n")
    with pytest.raises(ValueError, match="unknown profile 'nowhere' \\(extended by 'c'\\)"):
        profile_chain("c", params)


def test_overrides_replace_profile_values_with_type_checks():
    config = step_config("05_retrieve").load("mini", {"alphas": [0.5], "n_queries": 3})
    assert (
        config.alphas == [0.5]
        and config.n_queries == 3
        and config.modes == ["sum", "mean", "routed-sum", "routed-mean"]
    )
    with pytest.raises(ValueError, match="'n_queries' = 3.5"):
        step_config("05_retrieve").load("mini", {"n_queries": 3.5})


def test_workspace_names_each_artefact_once(tmp_path):
    ws = Workspace("smoke", tmp_path / "w", tmp_path / "r", tmp_path / "f")
    assert ws.generated_queries("seen-only") == tmp_path / "w" / "generated" / "queries-seen-only.jsonl"
    assert (
        ws.result("generation_quality.csv", "seen-only")
        == tmp_path / "r" / "generation_quality-seen-only.csv"
    )
    assert ws.result("per_query_qa.csv.gz") == tmp_path / "r" / "per_query_qa.csv.gz"
    assert ws.embeddings_dir("org/model", "zero-shot", "bfloat16").name == "org_model-zero-shot-bfloat16"
    assert ws.trainings("zero-shot") == ["zero-shot"]
    ws.retriever_checkpoint.mkdir(parents=True)
    assert ws.trainings("zero-shot") == ["zero-shot", "fine-tuned"]
    assert ws.encoder_source("e5", "fine-tuned") == str(ws.retriever_checkpoint)
    with pytest.raises(ValueError, match="generator variant"):
        ws.generator_dir("half")
    assert Workspace("mini").work.name == "mini"


def test_data_step_split_is_leakage_free_on_the_real_data(tmp_path, raw_data):
    """mini's preparation: nothing that evaluates (or tunes alpha) was trained on, by article."""
    from xqg.study.steps import data

    ws = Workspace("mini", tmp_path / "w", tmp_path / "r", tmp_path / "f")
    summary = data.run(ws, data.Config.load("mini"))
    test, tuning = ws.queries("eval"), ws.queries("tuning")
    train, triples = ws.queries("train"), ws.triples()
    collection, train_collection = ws.passages(), ws.passages(ws.train_collection)
    assert len(collection) == 978 and summary["collection passages"] == 978
    test_articles, tuning_articles = {q.article for q in test}, {q.article for q in tuning}
    assert test_articles and tuning_articles and not test_articles & tuning_articles
    trained_articles = {t.title for t in triples} | {p.title for p in train_collection.values()}
    assert not (test_articles | tuning_articles) & trained_articles
    # XQuAD and MLQA dev share two articles: dropped from training
    assert {"Harvard University", "Prime number"} <= {p.title for p in collection.values()}
    assert not {"Harvard University", "Prime number"} & {p.title for p in train_collection.values()}
    # no evaluation question's passage trains the generator, and the held-out passages never do
    trained_passages = {t.passage_id for t in triples}
    assert not {q.gold_passage for q in test + tuning} & trained_passages
    assert not set(ws.passages(ws.generator_heldout)) & trained_passages
    # half of the MLQA articles train the generator; ~30% of the rest tune alpha
    assert (len(test), len(tuning)) == (1540, 546)
    assert len(train) == summary["retriever training queries"] and train


def _module_imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names |= {node.module} | {f"{node.module}.{a.name}" for a in node.names}
    return {n for n in names if n.startswith("xqg")}


def _modules() -> dict[str, Path]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PROJECT_ROOT).with_suffix("").parts
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return out


def test_no_import_loops_even_through_function_level_imports():
    modules = _modules()
    graph = {m: {n for n in _module_imports(p) if n in modules and n != m} for m, p in modules.items()}
    state: dict[str, int] = {}

    def visit(m: str, stack: list[str]) -> None:
        state[m] = 1
        for n in sorted(graph[m]):
            if state.get(n) == 1:
                raise AssertionError("import loop: " + " -> ".join([*stack[stack.index(n) :], n]))
            if n not in state:
                visit(n, [*stack, n])
        state[m] = 2

    for m in sorted(modules):
        if m not in state:
            visit(m, [m])


def test_steps_never_import_steps():
    for step in STEPS:
        name = module_name(step)
        path = _modules()[name]
        others = {module_name(s) for s in STEPS} - {name}
        assert not _module_imports(path) & others, f"{name} imports another step"


MUTATORS = {"append", "update", "clear", "pop", "setdefault", "add", "extend", "insert", "remove"}


def test_study_package_keeps_no_module_level_mutable_state():
    for path in (PACKAGE / "study").rglob("*.py"):
        tree = ast.parse(path.read_text())
        assert not any(isinstance(n, ast.Global) for n in ast.walk(tree)), f"{path}: global statement"
        mutable = set()
        for node in tree.body:
            targets = node.targets if isinstance(node, ast.Assign) else [getattr(node, "target", None)]
            value = getattr(node, "value", None)
            if isinstance(node, ast.Assign | ast.AnnAssign) and isinstance(
                value, ast.Dict | ast.List | ast.Set | ast.Call
            ):
                mutable |= {t.id for t in targets if isinstance(t, ast.Name)}
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
                target = node.func.value
                if isinstance(target, ast.Name) and target.id in mutable and node.func.attr in MUTATORS:
                    raise AssertionError(f"{path}:{node.lineno}: mutates module-level {target.id}")
            if isinstance(node, ast.Assign | ast.AugAssign):
                for t in node.targets if isinstance(node, ast.Assign) else [node.target]:
                    if (
                        isinstance(t, ast.Subscript)
                        and isinstance(t.value, ast.Name)
                        and t.value.id in mutable
                    ):
                        raise AssertionError(f"{path}:{node.lineno}: writes into module-level {t.value.id}")


def test_fingerprint_follows_the_code_a_step_runs(tmp_path):
    root = tmp_path / "repo"
    shutil.copytree(PACKAGE, root / "xqg", ignore=shutil.ignore_patterns("__pycache__"))
    files = {p.relative_to(root).as_posix() for p in closure([module_name("05_retrieve")], root)}
    assert {"xqg/__init__.py", "xqg/study/encoding.py", "xqg/retrieval/augment.py"} <= files
    assert "xqg/qa/reader.py" not in files and "xqg/study/steps/qa.py" not in files
    before = {s: fingerprint([module_name(s)], root) for s in STEPS}
    reader = root / "xqg" / "qa" / "reader.py"
    reader.write_text(reader.read_text() + "\n# a change\n")
    after = {s: fingerprint([module_name(s)], root) for s in STEPS}
    changed = {s for s in STEPS if before[s] != after[s]}
    assert changed == {"06_qa", "07_robustness"}


def test_one_benchmark_for_training_and_evaluation_is_split_by_article(tmp_path, raw_data):
    """XQuAD both trains and evaluates: its articles are divided, not all dropped as shared."""
    from xqg.study.steps import data

    ws = Workspace("smoke", tmp_path / "w", tmp_path / "r", tmp_path / "f")
    config = data.Config.load(
        "smoke", {"train_benchmark": "xquad", "eval_benchmark": "xquad", "ceiling_fraction": 0.0}
    )
    summary = data.run(ws, config)
    trained = {p.title for p in ws.passages(ws.train_collection).values()} | {t.title for t in ws.triples()}
    evaluated = {q.article for q in ws.queries("eval") + ws.queries("tuning")}
    assert summary["generator training triples"] > 0 and summary["retriever training queries"] > 0
    assert evaluated and not trained & evaluated
    assert {q.language for q in ws.queries("eval")} <= {"en", "de", "zh"}


def test_make_data_knows_every_xquad_language():
    from xqg.data.fetch import CATALOGUE
    from xqg.languages import XQUAD_LANGUAGES

    files = {Path(f.rel).name: f for f in CATALOGUE["xquad"]}
    assert len(XQUAD_LANGUAGES) == 12 and set(files) == {f"xquad.{lang}.json" for lang in XQUAD_LANGUAGES}
    assert {n for n, f in files.items() if f.optional} == {
        f"xquad.{x}.json" for x in ("el", "ro", "ru", "th", "tr")
    }


def test_readme_documents_every_profile_and_what_mini_costs():
    readme = (PROJECT_ROOT / "README.md").read_text()
    table = readme[readme.index("## Profiles") : readme.index("## Generator")]
    for profile in sorted(p.name for p in PARAMS.iterdir() if (p / "common.yml").exists()):
        assert f"| `{profile}`" in table, f"README's profile table lacks {profile}"
    mini = next(line for line in table.splitlines() if line.startswith("| `mini`"))
    assert "minutes" in mini and "GB" in mini
    assert "**Adding a profile**" in readme and "extends:" in readme


def test_paper_encodes_at_the_lengths_its_retriever_trains_with():
    """The authors' xDR trains and encodes at 32 / 128 tokens (Tevatron); `mini` encodes e5 at 64 / 256."""
    train = step_config("04_train_retriever").load("paper")
    for step in ("03_generate", "05_retrieve", "06_qa", "07_robustness"):
        c = step_config(step).load("paper")
        assert (
            (c.encode_query_len, c.encode_passage_len)
            == (train.query_max_len, train.passage_max_len)
            == (32, 128)
        )
        assert c.sums_dtype == "float16" and step_config(step).load("mini").sums_dtype == "float64"


def test_the_static_field_list_is_the_configs_own_inherited_ones_included():
    """Make's fingerprints and the common.yml typo check read the fields from the source; an
    inherited field (EncodingConfig's) missed there would let its changes go unnoticed."""
    from xqg.study.fingerprint import config_fields

    for step in STEPS:
        assert config_fields(module_name(step)) == [f.name for f in dataclasses.fields(step_config(step))]
    assert "sums_dtype" in config_fields(module_name("05_retrieve"))
