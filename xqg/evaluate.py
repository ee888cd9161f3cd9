"""Command-line evaluators that accept the official input formats.

    python -m xqg.evaluate xor-retrieve --data_file DEV.jsonl --pred_file PRED.json \
        [--max_token_num N] [--json]
    python -m xqg.evaluate mlqa DATASET.json PREDICTIONS.json ANSWER_LANG

XOR-Retrieve predictions are a JSON list of ``{"id", "lang", "ctxs": [texts in rank order]}``;
scores are R@2kt and R@5kt (or R@{N/1000}kt) per language and macro-averaged, in percent.
MLQA predictions are ``{question_id: answer_text}``; the output is
``{"exact_match": .., "f1": ..}`` in percent, as MLQA's official script prints.
"""

from __future__ import annotations

import argparse
import json
import sys

from xqg.data.xor_tydi import load_xor_queries
from xqg.io import read_json
from xqg.metrics import qa
from xqg.metrics.xor_retrieve import r_at_kt


def evaluate_xor(data_file: str, pred_file: str, budgets: list[int]) -> dict[str, dict[str, float]]:
    """R@kt of an XOR-Retrieve prediction file against the questions of `data_file`."""
    queries = {q.id: q for q in load_xor_queries(path=data_file)}
    preds = read_json(pred_file)
    if not isinstance(preds, list):
        raise ValueError(f"{pred_file}: expected a JSON list of {{id, lang, ctxs}}")
    contexts = {}
    for i, item in enumerate(preds):
        for key in ("id", "ctxs"):
            if key not in item:
                raise ValueError(f"{pred_file}: item {i}: field '{key}' missing")
        if item["id"] in queries:
            contexts[str(item["id"])] = [c["text"] if isinstance(c, dict) else c for c in item["ctxs"]]
    answers = {qid: q.answers for qid, q in queries.items() if qid in contexts}
    missing = len(queries) - len(answers)
    if missing:
        print(
            f"warning: {missing} questions of {data_file} have no prediction; "
            "they are left out, as the official evaluator does",
            file=sys.stderr,
        )
    languages = {qid: q.language for qid, q in queries.items()}
    return {f"R@{n // 1000}kt": r_at_kt(contexts, answers, languages, n)[1] for n in budgets}


def main(argv: list[str] | None = None) -> None:
    """Entry point: `xor-retrieve` or `mlqa`."""
    ap = argparse.ArgumentParser(prog="python -m xqg.evaluate", description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="task", required=True)
    xor = sub.add_parser("xor-retrieve", help="R@kt of an XOR-Retrieve prediction file")
    xor.add_argument("--data_file", required=True)
    xor.add_argument("--pred_file", required=True)
    xor.add_argument(
        "--max_token_num", type=int, default=None, help="one token budget (default: both 2000 and 5000)"
    )
    xor.add_argument("--json", action="store_true", help="print one JSON object")
    mlqa = sub.add_parser("mlqa", help="MLQA EM/F1 of a predictions file")
    mlqa.add_argument("dataset_file")
    mlqa.add_argument("prediction_file")
    mlqa.add_argument("answer_language")
    args = ap.parse_args(argv)

    if args.task == "xor-retrieve":
        budgets = [args.max_token_num] if args.max_token_num else [2000, 5000]
        scores = evaluate_xor(args.data_file, args.pred_file, budgets)
        if args.json:
            print(json.dumps(scores))
        else:
            for metric, by_lang in scores.items():
                print(metric)
                for lang, v in by_lang.items():
                    print(f"  {lang:6s} {v:6.2f}")
    else:
        dataset = read_json(args.dataset_file)
        predictions = read_json(args.prediction_file)
        print(json.dumps(qa.evaluate(dataset, predictions, args.answer_language)))


if __name__ == "__main__":
    main()
