"""Generation time of two profiles' trained generators on the same passages (step 03's sampling).

A profile that changes the generator (``mini``'s pointer against ``mini-gate``'s gate) must
not cost `mini`'s budget in step 03: this times each profile's selected full generator writing its
profile's `n_queries` per passage and generator language for the first `--passages` passages of
the first profile's collection, through step 03's own sampling, in alternating rounds (the best
of `--rounds` counts), and gives each time as a ratio to the first profile's. Step 02 of every
profile must have run. Run it on a quiet machine:

    python -m xqg.benchmarks.generator_speed mini-gate mini --passages 100

With `--scoring`, each profile's generator instead writes the questions twice in each round: scoring
every vocabulary piece at each step (the baseline) and scoring only the pieces a restricted
pointer generator can draw (`E5QuestionGenerator.sampling_columns`, what step 03 does), and the
two sets of questions are compared:

    python -m xqg.benchmarks.generator_speed mini --scoring --passages 100
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from xqg.study.generators import load_trained_generator
from xqg.study.provenance import Recipe
from xqg.study.steps import generate
from xqg.study.workspace import Workspace, save_passages


def measure(profiles: list[str], passages: int, rounds: int = 2) -> dict[str, dict]:
    """{profile: {"seconds": best of the rounds, "ratio": to the first profile's, "questions": n}}."""
    sample = dict(list(Workspace(profiles[0]).passages().items())[:passages])
    seconds: dict[str, list[float]] = {p: [] for p in profiles}
    questions = {}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        collection = root / "collection.jsonl"
        save_passages(collection, sample)
        for r in range(rounds):
            for profile in profiles:
                ws, config = Workspace(profile), generate.Config.load(profile)
                target = root / f"{profile}-{r}.jsonl"
                recipe = Recipe("benchmark", {"profile": profile, "passages": passages, "round": r})
                start = time.perf_counter()
                generate._sample(ws, config, "full", collection, config.n_queries, target, recipe)
                seconds[profile].append(time.perf_counter() - start)
                questions[profile] = len(target.read_text().splitlines())
    base = min(seconds[profiles[0]])
    return {
        p: {"seconds": round(min(s), 1), "ratio": round(min(s) / base, 2), "questions": questions[p]}
        for p, s in seconds.items()
    }


def measure_scoring(profile: str, passages: int, rounds: int = 2) -> dict[str, dict]:
    """{"whole vocabulary" | "drawable pieces": {"seconds", "ratio" to the whole vocabulary's,
    "questions"}, "same questions": bool} for `profile`'s full generator on its first `passages`
    passages (step 03's sampling and settings; the best of `rounds` counts)."""
    ws, config = Workspace(profile), generate.Config.load(profile)
    gen = load_trained_generator(ws, config.generator_kind, "full", config.device)
    seconds: dict[str, list[float]] = {"whole vocabulary": [], "drawable pieces": []}
    texts = {}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        collection = root / "collection.jsonl"
        save_passages(collection, dict(list(ws.passages().items())[:passages]))
        for r in range(rounds):
            for scoring in seconds:
                gen.score_every_piece = scoring == "whole vocabulary"
                gen.forget_passages()  # each run encodes its passages, as step 03's jobs do
                target = root / f"{r}-{scoring}.jsonl"
                start = time.perf_counter()
                generate.sample_collection(gen, config, collection, config.n_queries, target)
                seconds[scoring].append(time.perf_counter() - start)
                texts[scoring] = target.read_text()
    base = min(seconds["whole vocabulary"])
    out: dict[str, dict] = {
        k: {
            "seconds": round(min(s), 1),
            "ratio": round(min(s) / base, 2),
            "questions": len(texts[k].splitlines()),
        }
        for k, s in seconds.items()
    }
    out["same questions"] = texts["whole vocabulary"] == texts["drawable pieces"]
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("profiles", nargs="+", help="the first is the baseline")
    parser.add_argument("--passages", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument(
        "--scoring",
        action="store_true",
        help="each profile: the whole vocabulary against the drawable pieces",
    )
    args = parser.parse_args(argv)
    if args.scoring:
        for profile in args.profiles:
            print(f"{profile}: {measure_scoring(profile, args.passages, args.rounds)}")
        return
    for profile, row in measure(args.profiles, args.passages, args.rounds).items():
        print(f"{profile}: {row}")


if __name__ == "__main__":
    main()
