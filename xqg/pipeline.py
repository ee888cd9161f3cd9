"""Running the study's notebooks with papermill, and checking notebooks, parameters and code.

    python -m xqg.pipeline run STEP --profile PROFILE    # execute one step's notebook
    python -m xqg.pipeline describe STEP --profile P     # a step's parameters: type, value, help
    python -m xqg.pipeline check-params [PROFILE ...]    # the profiles' parameters are valid
    python -m xqg.pipeline check-notebooks               # source notebooks carry no outputs
    python -m xqg.pipeline fingerprint STEP --profile P --out FILE   # code + parameter hash (Make)

A notebook receives only ``profile`` (and, by hand, ``overrides``); the step reads its own typed
configuration from ``params/<profile>/`` (`xqg.study.config`), so a notebook run in JupyterLab,
by papermill or by Make runs the same parameters. Executed notebooks go to
``runs/<profile>/<step>.ipynb``, replaced atomically when the step ends, failed or not, so it
always shows the last run. A run holds the profile's lock (`xqg.lock`) and its kernel dies with
it (`xqg.kernel_guard`): a killed run leaves nothing running and a second run of the profile
stops at once, naming the first.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from pathlib import Path

from xqg.io import write_text_atomic
from xqg.lock import Locked, exclusive
from xqg.paths import PROJECT_ROOT, runs_dir, work_dir
from xqg.study.config import (
    EXTENDS,
    PARAMS,
    PLACEMENT,
    help_of,
    merged_params,
    profile_chain,
    profiles,
    read_yaml,
    type_name,
)
from xqg.study.fingerprint import config_fields, step_fingerprint
from xqg.study.steps import STEPS, module_name, step_config

NOTEBOOKS = PROJECT_ROOT / "notebooks"
NOTEBOOK_PARAMETERS = {"profile", "overrides"}
KERNEL = "xqg"  # the Jupyter kernel `make venv` installs for .venv


def check_params(names: tuple[str, ...] | list[str] | None = None, params: Path = PARAMS) -> list[str]:
    """Problems of the profiles' parameter files: unknown files and keys, unset or mistyped values."""
    names = profiles(params) if names is None else names
    configs = {step: step_config(step) for step in STEPS}
    problems = []
    for profile in names:
        folder = params / profile
        if not (folder / "common.yml").exists():
            return [f"unknown profile {profile!r}; profiles are {profiles(params)}"]
        for path in sorted(folder.glob("*.yml")):
            if path.stem != "common" and path.stem not in STEPS:
                problems.append(f"{path}: not a step's file (steps are {', '.join(STEPS)})")
        problems += [p for p in unused_common_keys(profile, params) if str(folder) in p]
        for config in configs.values():
            problems += config.problems(profile, params)
    return list(dict.fromkeys(problems))  # a common.yml key several steps read is named once


def unused_common_keys(profile: str, params: Path = PARAMS) -> list[str]:
    """Keys in the common.yml files of a profile (and those it extends) that no step reads: a
    typo there would otherwise be ignored. Read from the steps' sources, without importing them."""
    fields = {f for step in STEPS for f in config_fields(module_name(step))}
    problems = []
    for name in profile_chain(profile, params):
        common = params / name / "common.yml"
        problems += [
            f"{common}: '{k}' is a parameter of no step"
            for k in sorted(set(read_yaml(common)) - fields - {EXTENDS})
        ]
    return problems


def check_notebooks() -> list[str]:
    """Problems: source notebooks with outputs, no `parameters` cell, or other parameters than
    ``profile`` and ``overrides`` (a step's settings belong in ``params/``)."""
    import papermill

    problems = []
    for nb_path in sorted(NOTEBOOKS.glob("*.ipynb")):
        nb = json.loads(nb_path.read_text())
        cells = [c for c in nb["cells"] if c["cell_type"] == "code"]
        if any(c.get("outputs") or c.get("execution_count") for c in cells):
            problems.append(f"{nb_path.name}: carries outputs (clear them before committing)")
        if not any("parameters" in c.get("metadata", {}).get("tags", []) for c in cells):
            problems.append(f"{nb_path.name}: no cell tagged 'parameters'")
        declared = papermill.inspect_notebook(str(nb_path))
        if set(declared) != NOTEBOOK_PARAMETERS:
            problems.append(
                f"{nb_path.name}: parameters {sorted(declared)}, expected {sorted(NOTEBOOK_PARAMETERS)}"
            )
        elif (declared["profile"]["default"], declared["overrides"]["default"]) != ('"mini"', "{}"):
            problems.append(f'{nb_path.name}: defaults must be profile = "mini" and overrides = {{}}')
        if nb.get("metadata", {}).get("kernelspec", {}).get("name") != KERNEL:
            problems.append(f"{nb_path.name}: kernel is not the project's ({KERNEL!r}, made by `make venv`)")
    return problems


def describe(step: str, profile: str) -> str:
    """A step's parameters in a profile: name, type, value and the file that set it, help."""
    config = step_config(step)
    merged = merged_params(profile, step)
    lines = [f"{step} [{profile}]"]
    for f in dataclasses.fields(config):
        value, path = merged.get(f.name, (f.default, "default"))
        typ = config.field_types()[f.name]
        lines.append(f"  {f.name}: {type_name(typ)} = {value!r}  ({path})\n      {help_of(f)}")
    return "\n".join(lines)


def write_fingerprint(step: str, profile: str, out: Path) -> bool:
    """Write the hash of the code a step runs and of its parameter values in `profile` to `out`,
    only when it changed (so Make sees a new file time only then); returns whether it changed."""
    module = module_name(step)
    merged = merged_params(profile, step)
    values = {k: merged[k][0] for k in config_fields(module) if k in merged and k not in PLACEMENT}
    digest = step_fingerprint([module, "xqg.pipeline"], values)
    if out.exists() and out.read_text() == digest:
        return False
    write_text_atomic(out, digest)
    return True


def guarded_kernel_manager():
    """nbclient's kernel manager, starting the kernel through `xqg.kernel_guard` so that it dies
    with this process."""
    from jupyter_client.manager import AsyncKernelManager

    class GuardedKernelManager(AsyncKernelManager):
        def format_kernel_cmd(self, extra_arguments=None):
            return [
                sys.executable,
                "-m",
                "xqg.kernel_guard",
                "--",
                *super().format_kernel_cmd(extra_arguments),
            ]

    return GuardedKernelManager


def run(step: str, profile: str) -> Path:
    """Execute one step's notebook for a profile, after checking the profile's parameters, under
    the profile's lock."""
    import papermill

    # imported here: they load torch, and Make's `fingerprint` calls must stay fast
    from xqg.study.checks import check_before_work
    from xqg.study.workspace import Workspace

    config = step_config(step).load(profile)  # refuses bad parameters before any work, naming file and key
    unused = unused_common_keys(profile)
    if unused:
        raise ValueError("; ".join(unused))
    runs = runs_dir(profile)
    out = runs / f"{step}.ipynb"
    with exclusive(work_dir(profile) / ".lock", f"profile {profile!r}"):
        # models and upstream artefacts: a short error here, not a kernel traceback (the step checks again)
        check_before_work(Workspace(profile), config)
        runs.mkdir(parents=True, exist_ok=True)
        for stale in [*runs.glob(f".{step}.running.*.ipynb"), *runs.glob(f".{step}.ipynb.*")]:
            stale.unlink()  # left by a killed run (the lock says none is running)
        executing = runs / f".{step}.running.{os.getpid()}.ipynb"
        try:
            papermill.execute_notebook(
                str(NOTEBOOKS / f"{step}.ipynb"),
                str(executing),
                parameters={"profile": profile},
                kernel_name="python3",
                kernel_manager_class=guarded_kernel_manager(),
                cwd=str(PROJECT_ROOT),
                log_output=True,
                progress_bar=False,
            )
        finally:
            if executing.exists():  # a failed run's notebook (with its error) replaces the last good one
                os.replace(executing, out)
    return out


def main(argv: list[str] | None = None) -> None:
    """Command-line entry point."""
    ap = argparse.ArgumentParser(prog="python -m xqg.pipeline")
    sub = ap.add_subparsers(dest="cmd", required=True)
    for name in ("run", "describe"):
        p = sub.add_parser(name)
        p.add_argument("step", choices=STEPS)
        p.add_argument("--profile", default="mini")
    cp = sub.add_parser("check-params")
    cp.add_argument("profiles", nargs="*", help="profiles to check (default: all)")
    sub.add_parser("check-notebooks")
    fp = sub.add_parser("fingerprint")
    fp.add_argument("step", choices=STEPS)
    fp.add_argument("--profile", default="mini")
    fp.add_argument("--out", type=Path, required=True)
    args = ap.parse_args(argv)
    try:
        if args.cmd == "run":
            print(run(args.step, args.profile))
            return
        if args.cmd == "describe":
            print(describe(args.step, args.profile))
            return
        if args.cmd == "fingerprint":
            write_fingerprint(args.step, args.profile, args.out)
            return
    except (ValueError, FileNotFoundError, Locked) as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    problems = check_params(args.profiles or None) if args.cmd == "check-params" else check_notebooks()
    for p in problems:
        print(p, file=sys.stderr)
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
