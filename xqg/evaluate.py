"""Command-line evaluators that accept the official input formats.

    python -m xqg.evaluate xor-retrieve --data_file DEV.jsonl --pred_file PRED.json \
        [--max_token_num N] [--json]
    python -m xqg.evaluate mlqa DATASET.json PREDICTIONS.json ANSWER_LANG

XOR-Retrieve predictions are a JSON list of ``{"id", "lang", "ctxs": [texts in rank order]}``;
scores are R@2kt and R@5kt (or R@{N/1000}kt) per language and macro-averaged, in percent.
MLQA predictions are ``{question_id: answer_text}``; the output is
``{"exact_match": .., "f1": ..}`` in percent, as MLQA's official script prints.

Inputs are checked before scoring, and a problem is an error (exit 2) naming the file, the item
and the field: a prediction for a question the data file does not have, a wrong type (a string
of contexts, a null answer), swapped arguments, an empty file. A prediction file that misses
questions fails too, unless ``--partial`` asks for the official scripts' behaviour (XOR: score the
predicted questions only; MLQA: a missing answer scores 0).
"""

from __future__ import annotations

import argparse
import json
import sys

from xqg.data.schema import DataError
from xqg.data.xor_tydi import load_xor_queries
from xqg.io import read_json
from xqg.languages import normalise_code
from xqg.metrics import qa
from xqg.metrics.xor_retrieve import r_at_kt


def _examples(ids, n: int = 3) -> str:
    ids = sorted(ids)
    return ", ".join(repr(i) for i in ids[:n]) + (f" and {len(ids) - n} more" if len(ids) > n else "")


def _coverage(pred_file: str, data_file: str, predicted: set[str], known: set[str], partial: bool) -> None:
    """Refuse ids the data file lacks; refuse missing ones unless `partial` (then warn)."""
    unknown = predicted - known
    if unknown:
        raise ValueError(
            f"{pred_file}: {len(unknown)} predictions for questions not in {data_file}: {_examples(unknown)}"
            " (wrong data file, or the arguments swapped?)"
        )
    missing = known - predicted
    if missing and not partial:
        raise ValueError(
            f"{pred_file}: no prediction for {len(missing)} of the {len(known)} questions of "
            f"{data_file} ({_examples(missing)}); pass --partial to score anyway"
        )
    if missing:
        print(
            f"warning: {len(missing)} of {len(known)} questions of {data_file} have no prediction",
            file=sys.stderr,
        )


def read_xor_predictions(pred_file: str) -> dict[str, tuple[str | None, list[str]]]:
    """{id: (lang or None, context texts in rank order)} of an XOR-Retrieve prediction file."""
    preds = read_json(pred_file)
    if not isinstance(preds, list):
        raise ValueError(
            f"{pred_file}: expected a JSON list of {{id, lang, ctxs}}, got a {type(preds).__name__}"
        )
    if not preds:
        raise ValueError(f"{pred_file}: no predictions")
    out: dict[str, tuple[str | None, list[str]]] = {}
    for i, item in enumerate(preds):
        where = f"{pred_file}: item {i}"
        if not isinstance(item, dict):
            raise ValueError(f"{where}: expected an object {{id, lang, ctxs}}, got {item!r:.60}")
        for key in ("id", "ctxs"):
            if key not in item:
                raise ValueError(f"{where}: field '{key}' missing")
        qid, ctxs = str(item["id"]), item["ctxs"]
        where = f"{where} (id {qid})"
        if not isinstance(ctxs, list):
            raise ValueError(f"{where}: field 'ctxs' must be a list of passages, got a {type(ctxs).__name__}")
        texts = []
        for j, c in enumerate(ctxs):
            text = c.get("text") if isinstance(c, dict) else c
            if not isinstance(text, str):
                raise ValueError(f"{where}: ctxs[{j}] must be a passage text or an object with 'text'")
            texts.append(text)
        if qid in out:
            raise ValueError(f"{where}: a second prediction for this question")
        lang = item.get("lang")
        out[qid] = (None if lang is None else str(lang), texts)
    return out


def evaluate_xor(
    data_file: str, pred_file: str, budgets: list[int], partial: bool = False
) -> dict[str, dict[str, float]]:
    """R@kt of an XOR-Retrieve prediction file against the questions of `data_file`."""
    queries = {q.id: q for q in load_xor_queries(path=data_file)}
    if not queries:
        raise ValueError(f"{data_file}: no questions")
    preds = read_xor_predictions(pred_file)
    _coverage(pred_file, data_file, set(preds), set(queries), partial)
    for qid, (lang, _) in preds.items():
        want = queries[qid].language
        if lang is not None and normalise_code(lang, source=f"{pred_file}: id {qid}: field 'lang'") != want:
            raise ValueError(f"{pred_file}: id {qid}: field 'lang' is {lang!r}, but {data_file} has {want!r}")
    contexts = {qid: texts for qid, (_, texts) in preds.items()}
    answers = {qid: q.answers for qid, q in queries.items() if qid in contexts}
    languages = {qid: q.language for qid, q in queries.items()}
    return {f"R@{n // 1000}kt": r_at_kt(contexts, answers, languages, n)[1] for n in budgets}


def read_mlqa_inputs(dataset_file: str, prediction_file: str) -> tuple[dict, dict[str, str]]:
    """An MLQA (SQuAD-format) dataset and a ``{question id: answer text}`` file, checked."""
    dataset, predictions = read_json(dataset_file), read_json(prediction_file)
    if not isinstance(dataset, dict) or not isinstance(dataset.get("data"), list):
        hint = " (the arguments swapped?)" if isinstance(dataset, dict) and "data" not in dataset else ""
        raise ValueError(f'{dataset_file}: not an MLQA/SQuAD dataset: expected {{"data": [articles]}}{hint}')
    try:
        golds = qa.squad_golds(dataset)
    except (KeyError, TypeError) as e:
        raise ValueError(f"{dataset_file}: malformed SQuAD structure (field {e})") from e
    if not golds:
        raise ValueError(f"{dataset_file}: no questions")
    if not isinstance(predictions, dict):
        raise ValueError(
            f"{prediction_file}: expected a JSON object {{question id: answer text}}, "
            f"got a {type(predictions).__name__}"
        )
    for qid, answer in predictions.items():
        if not isinstance(answer, str):
            raise ValueError(
                f"{prediction_file}: question {qid!r}: the answer must be a string, got {answer!r}"
            )
    return dataset, predictions


def evaluate_mlqa(
    dataset_file: str, prediction_file: str, answer_language: str, partial: bool = False
) -> dict:
    """MLQA's official EM/F1 of a predictions file, after the checks of `read_mlqa_inputs`."""
    dataset, predictions = read_mlqa_inputs(dataset_file, prediction_file)
    known = set(qa.squad_golds(dataset))
    _coverage(prediction_file, dataset_file, set(predictions), known, partial)
    return qa.evaluate(dataset, predictions, answer_language)


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
    xor.add_argument("--partial", action="store_true", help="score only the predicted questions")
    mlqa = sub.add_parser("mlqa", help="MLQA EM/F1 of a predictions file")
    mlqa.add_argument("dataset_file")
    mlqa.add_argument("prediction_file")
    mlqa.add_argument("answer_language")
    mlqa.add_argument("--partial", action="store_true", help="missing answers score 0 instead of failing")
    args = ap.parse_args(argv)
    try:
        _run(args)
    except (ValueError, DataError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)


def _run(args: argparse.Namespace) -> None:

    if args.task == "xor-retrieve":
        budgets = [args.max_token_num] if args.max_token_num else [2000, 5000]
        scores = evaluate_xor(args.data_file, args.pred_file, budgets, args.partial)
        if args.json:
            print(json.dumps(scores))
        else:
            for metric, by_lang in scores.items():
                print(metric)
                for lang, v in by_lang.items():
                    print(f"  {lang:6s} {v:6.2f}")
    else:
        scores = evaluate_mlqa(args.dataset_file, args.prediction_file, args.answer_language, args.partial)
        print(json.dumps(scores))


if __name__ == "__main__":
    main()
