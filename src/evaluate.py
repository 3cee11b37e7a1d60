"""Evaluate a world model or a baseline and write ``metrics.json`` and ``report.md``.

    python src/evaluate.py --task textgame --dataset DIR --split test --predictor {copy,oracle,model} \
        [--model DIR] --output_dir DIR
"""

import argparse
import sys

from rlvr_world.data import load_dataset_dir

TASKS = ("textgame",)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--task", choices=TASKS, required=True)
    parser.add_argument("--dataset", required=True, help="a directory written by make_dataset.py, or a Hub id")
    parser.add_argument("--split", default=None, help="split to evaluate (default: the only/first split)")
    parser.add_argument("--predictor", choices=["copy", "oracle", "model"], required=True)
    parser.add_argument("--model", help="model or LoRA adapter directory for --predictor model")
    parser.add_argument("--output_dir", required=True)
    parser.add_argument("--limit", type=int, help="evaluate only the first N rows")
    parser.add_argument("--batch_size", type=int, default=8)
    parser.add_argument("--max_new_tokens", type=int, default=1024)
    parser.add_argument("--do_sample", action="store_true", help="sample instead of greedy decoding")
    parser.add_argument("--temperature", type=float, default=1.0)
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    from rlvr_world.data.textgame import from_hub_columns
    from rlvr_world.evaluation.textgame import GenerationOptions, evaluate

    loaded = load_dataset_dir(args.dataset)
    if hasattr(loaded, "keys"):
        split = args.split or next(iter(loaded.keys()))
        if split not in loaded:
            sys.exit(f"{args.dataset}: no split '{split}' (splits: {', '.join(loaded)})")
        dataset = loaded[split]
    else:
        split, dataset = args.split, loaded
    dataset = from_hub_columns(dataset)
    if args.limit:
        dataset = dataset.select(range(min(args.limit, len(dataset))))
    generation = GenerationOptions(args.batch_size, args.max_new_tokens, args.do_sample, args.temperature)
    metrics = evaluate(dataset, args.predictor, args.output_dir, args.model, generation, f"{args.dataset} [{split}]")
    print(
        f"{args.predictor}: overall {metrics['accuracy_overall']}%, unchanged {metrics['accuracy_unchanged']}%, "
        f"changed {metrics['accuracy_changed']}%, format errors {metrics['format_error_rate']}% "
        f"on {metrics['num_transitions']} transitions -> {args.output_dir}"
    )
    return metrics


if __name__ == "__main__":
    main()
