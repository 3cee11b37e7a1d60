"""Evaluate a web-page world model (or a baseline) on a dataset split: line precision, recall, F1.

Predictors:
- ``no_change``: every section ``None`` (the trivial baseline);
- ``oracle``: the gold changes (an upper bound that checks the pipeline end to end);
- ``model``: a causal LM (a full checkpoint or a LoRA adapter directory) decoding each prompt greedily.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

from rlvr_world.evaluation.textgame import (
    GenerationOptions,
    generate_completions,
    load_causal_lm,
)
from rlvr_world.metrics.webpage import F1Counter, score_completion
from rlvr_world.text.webpage import format_changes, no_changes

PREDICTORS = ("no_change", "oracle", "model")
BREAKDOWNS = ("action_type", "page_type")
HEADLINE = ("precision", "recall", "f1", "exact_match", "format_error_rate")


def baseline_predictions(dataset, predictor: str) -> list[str]:
    if predictor == "no_change":
        return [format_changes(no_changes())] * len(dataset)
    if predictor == "oracle":
        return list(dataset["ground_truth"])
    raise ValueError(f"no baseline called {predictor!r}")


def score_predictions(dataset, predictions: Sequence[str]) -> tuple[dict, list[dict]]:
    """Overall metrics, breakdowns by action and page type where the dataset has them, one row per transition."""
    if len(predictions) != len(dataset):
        raise ValueError(f"{len(dataset)} transitions but {len(predictions)} predictions")
    overall = F1Counter()
    groups = {key: defaultdict(F1Counter) for key in BREAKDOWNS if key in dataset.column_names}
    rows = []
    for index, (text, gold) in enumerate(zip(predictions, dataset["ground_truth"])):
        score = score_completion(text, gold)
        overall.add(score)
        for key, counters in groups.items():
            counters[dataset[index][key]].add(score)
        rows.append({"f1": score.f1, "precision": score.precision, "recall": score.recall, "exact": score.exact,
                     "format_error": score.format_error, "prediction": text, "gold": gold})
    metrics = overall.summary()
    for key, counters in groups.items():
        metrics[f"per_{key}"] = {name: counter.summary() for name, counter in sorted(counters.items())}
    return metrics, rows


def _fmt(value) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def metrics_table(labelled: dict[str, dict], first: str = "model") -> list[str]:
    """A markdown table of headline metrics, one row per label."""
    lines = [f"| {first} | transitions | precision | recall | F1 | exact match | format errors |",
             "|---|---|---|---|---|---|---|"]
    for label, m in labelled.items():
        lines.append(f"| {label} | {m['num_transitions']} | " + " | ".join(_fmt(m[k]) for k in HEADLINE) + " |")
    return lines


def write_report(output_dir: Path, metrics: dict, rows: list[dict], title: str, details: dict,
                 examples: int = 3) -> Path:
    lines = [f"# {title}", ""]
    lines += [f"- **{k}**: `{v}`" for k, v in details.items()]
    lines += ["", *metrics_table({details.get("predictor", "model"): metrics}, "predictor"), "",
              "Mean per-transition precision, recall and F1 of exact item lines (summed over the three sections; "
              "`None` counts as a line), in percent; exact match: every line right.", ""]
    for key in BREAKDOWNS:
        if f"per_{key}" in metrics:
            lines += [f"## Per {key.replace('_', ' ')}", "", *metrics_table(metrics[f"per_{key}"], key), ""]
    wrong = [r for r in rows if not r["exact"]][:examples]
    if wrong:
        lines += ["## Examples of wrong answers", ""]
        for r in wrong:
            lines += [f"F1 {100 * r['f1']:.1f}", "", "Predicted:", "", "```", r["prediction"].strip() or "(empty)", "```",
                      "", "Gold:", "", "```", r["gold"].strip(), "```", ""]
    path = output_dir / "report.md"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def evaluate(dataset, predictor: str, output_dir: str | Path, model_dir: str | None = None,
             generation: GenerationOptions | None = None, dataset_name: str = "") -> dict:
    """Predict, score, and write ``metrics.json``, ``report.md`` and ``predictions.jsonl``."""
    if predictor not in PREDICTORS:
        raise ValueError(f"predictor must be one of {PREDICTORS}, got {predictor!r}")
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    generation = generation or GenerationOptions(max_new_tokens=512)
    if predictor == "model":
        if not model_dir:
            raise ValueError("--predictor model needs --model DIR")
        model, tokenizer = load_causal_lm(model_dir)
        predictions = generate_completions(model, tokenizer, dataset["prompt"], generation)
    else:
        predictions = baseline_predictions(dataset, predictor)
    metrics, rows = score_predictions(dataset, predictions)
    metrics["predictor"], metrics["model"] = predictor, model_dir
    (output_dir / "metrics.json").write_text(json.dumps(metrics, indent=2), encoding="utf-8")
    (output_dir / "predictions.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    decoding = {"model": model_dir, "decoding": "greedy"} if model_dir else {}
    write_report(output_dir, metrics, rows, "Web-page world model evaluation",
                 {"dataset": dataset_name, "predictor": predictor, **decoding})
    return metrics


def main(argv=None) -> dict:
    """``python src/evaluate.py --task webpage --dataset DIR --split S --predictor {no_change,oracle,model} ...``"""
    import argparse

    from rlvr_world.data import load_dataset_dir
    from rlvr_world.data.webpage import from_hub_columns

    parser = argparse.ArgumentParser(prog="evaluate.py --task webpage", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--task", choices=["webpage"], required=True)
    parser.add_argument("--dataset", required=True, help="a directory written by make_dataset.py, or a Hub id")
    parser.add_argument("--split", default=None, help="split to evaluate (default: the first split)")
    parser.add_argument("--predictor", choices=[*PREDICTORS, "copy"], required=True,
                        help="no_change (alias: copy), oracle, or model")
    parser.add_argument("--model", help="model or LoRA adapter directory for --predictor model")
    parser.add_argument("--output_dir", required=True)
    parser.add_argument("--limit", type=int, help="evaluate only the first N rows")
    parser.add_argument("--batch_size", type=int, default=8)
    parser.add_argument("--max_new_tokens", type=int, default=1024)
    args = parser.parse_args(argv)
    loaded = load_dataset_dir(args.dataset)
    split = args.split or next(iter(loaded.keys())) if hasattr(loaded, "keys") else args.split
    if hasattr(loaded, "keys") and split not in loaded:
        raise SystemExit(f"{args.dataset}: no split '{split}' (splits: {', '.join(loaded)})")
    name = f"{args.dataset} [{split}]"
    dataset = from_hub_columns(loaded[split] if hasattr(loaded, "keys") else loaded, where=name)
    if args.limit:
        dataset = dataset.select(range(min(args.limit, len(dataset))))
    predictor = "no_change" if args.predictor == "copy" else args.predictor
    generation = GenerationOptions(args.batch_size, args.max_new_tokens)
    metrics = evaluate(dataset, predictor, args.output_dir, args.model, generation, name)
    print(f"{predictor}: precision {metrics['precision']}%, recall {metrics['recall']}%, F1 {metrics['f1']}%, "
          f"format errors {metrics['format_error_rate']}% on {metrics['num_transitions']} transitions "
          f"-> {args.output_dir}")
    return metrics
