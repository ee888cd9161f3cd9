"""Running the study's notebooks with papermill, and checking notebooks and parameter files.

    python -m xqg.pipeline run STEP --profile PROFILE   # execute one step
    python -m xqg.pipeline check-params                 # every profile sets what each notebook needs
    python -m xqg.pipeline check-notebooks              # source notebooks carry no outputs

Parameters of a step are ``params/<profile>/common.yml`` merged with
``params/<profile>/<step>.yml`` (flat YAML, later files win); the runner adds ``profile`` and
passes each notebook the shared keys it declares. The checks: every key of a step file is a
parameter of its notebook, every shared key is a parameter of some notebook, and every parameter a
notebook declares is set by every profile (papermill itself only warns on unknown names).
Executed notebooks go to ``runs/<profile>/<step>.ipynb`` (written atomically).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import yaml

from xqg.io import atomic_path
from xqg.paths import PROJECT_ROOT

STEPS = (
    "01_data",
    "02_train_generator",
    "03_generate",
    "04_train_retriever",
    "05_retrieve",
    "06_qa",
    "07_robustness",
    "08_analysis",
)
NOTEBOOKS = PROJECT_ROOT / "notebooks"
PARAMS = PROJECT_ROOT / "params"
# smoke, mini and paper, plus the paper's variants (paper-xlmr, paper-released): one folder each
PROFILES = (
    tuple(sorted(p.name for p in PARAMS.iterdir() if (p / "common.yml").exists())) if PARAMS.exists() else ()
)


def _read_yaml(path: Path) -> dict:
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as e:
        raise ValueError(f"{path}: malformed YAML: {e}") from e
    if not isinstance(data, dict) or any(isinstance(v, dict) for v in data.values()):
        raise ValueError(f"{path}: parameter files are flat mappings of name: value")
    return data


def load_params(profile: str, step: str) -> dict:
    """Merged parameters of one step in one profile."""
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; use one of {PROFILES}")
    if step not in STEPS:
        raise ValueError(f"unknown step {step!r}; steps are {STEPS}")
    common = PARAMS / profile / "common.yml"
    if not common.exists():
        raise FileNotFoundError(f"{common}: missing parameter file")
    params = _read_yaml(common)
    specific = PARAMS / profile / f"{step}.yml"
    if specific.exists():
        params.update(_read_yaml(specific))
    return {**params, "profile": profile}


def notebook_parameters(step: str) -> dict:
    """The parameters a notebook declares (name -> papermill's description)."""
    import papermill

    return papermill.inspect_notebook(str(NOTEBOOKS / f"{step}.ipynb"))


def check_params(profiles=PROFILES) -> list[str]:
    """Problems: keys no notebook declares, or declared parameters a profile leaves unset."""
    problems = []
    declared = {step: set(notebook_parameters(step)) for step in STEPS}
    everywhere = set().union(*declared.values())
    for profile in profiles:
        shared = set(_read_yaml(PARAMS / profile / "common.yml"))
        problems += [
            f"{profile}/common.yml: '{k}' is a parameter of no notebook" for k in sorted(shared - everywhere)
        ]
        for step in STEPS:
            specific = PARAMS / profile / f"{step}.yml"
            own = set(_read_yaml(specific)) if specific.exists() else set()
            problems += [
                f"{profile}/{step}.yml: '{k}' is not a parameter of notebooks/{step}.ipynb"
                for k in sorted(own - declared[step])
            ]
            given = set(load_params(profile, step))
            problems += [
                f"{profile}/{step}: parameter '{k}' is not set" for k in sorted(declared[step] - given)
            ]
    return problems


def check_notebooks() -> list[str]:
    """Problems: source notebooks with outputs or execution counts, or no `parameters` cell."""
    problems = []
    for nb_path in sorted(NOTEBOOKS.glob("*.ipynb")):
        nb = json.loads(nb_path.read_text())
        cells = [c for c in nb["cells"] if c["cell_type"] == "code"]
        if any(c.get("outputs") or c.get("execution_count") for c in cells):
            problems.append(f"{nb_path.name}: carries outputs (clear them before committing)")
        if not any("parameters" in c.get("metadata", {}).get("tags", []) for c in cells):
            problems.append(f"{nb_path.name}: no cell tagged 'parameters'")
    return problems


def run(step: str, profile: str) -> Path:
    """Execute one step's notebook with its profile's parameters."""
    import papermill

    problems = [p for p in check_params([profile]) if f"/{step}" in p]
    if problems:
        raise ValueError("parameter problems: " + "; ".join(problems))
    declared = notebook_parameters(step)
    params = {k: v for k, v in load_params(profile, step).items() if k in declared}
    out = PROJECT_ROOT / "runs" / profile / f"{step}.ipynb"
    with atomic_path(out) as tmp:
        papermill.execute_notebook(
            str(NOTEBOOKS / f"{step}.ipynb"),
            str(tmp.with_suffix(".ipynb")),
            parameters=params,
            kernel_name="python3",
            cwd=str(PROJECT_ROOT),
            log_output=True,
            progress_bar=False,
        )
        tmp.with_suffix(".ipynb").replace(tmp)
    return out


def main(argv: list[str] | None = None) -> None:
    """Command-line entry point."""
    ap = argparse.ArgumentParser(prog="python -m xqg.pipeline")
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run")
    r.add_argument("step", choices=STEPS)
    r.add_argument("--profile", default="mini", choices=PROFILES or None)
    sub.add_parser("check-params")
    sub.add_parser("check-notebooks")
    args = ap.parse_args(argv)
    if args.cmd == "run":
        print(run(args.step, args.profile))
        return
    problems = check_params() if args.cmd == "check-params" else check_notebooks()
    for p in problems:
        print(p, file=sys.stderr)
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
