"""Evaluate a world model or a baseline and write ``metrics.json`` and ``report.md``.

    python src/evaluate.py --task textgame --dataset DIR --split test --predictor {copy,oracle,model} \
        [--model DIR] --output_dir DIR [--headroom_samples K] [--no_change_scores] [--shuffle_seed S --limit N]
    python src/evaluate.py --task video_single_step|video_multi_step --dataset DIR --model DIR --output_dir DIR
        (its own options: python src/evaluate.py --task video_single_step --help)
    python src/evaluate.py --task webpage --dataset DIR --split S --predictor {no_change,oracle,model} [--model DIR] \
        --output_dir DIR
"""

import argparse
import importlib
import sys

from rlvr_world.data import load_dataset_dir

# Tasks with a command line of their own: `--task NAME` hands all arguments to that module's `main`.
OWN_CLI_TASKS = {"video_single_step": "rlvr_world.evaluation.video", "video_multi_step": "rlvr_world.evaluation.video",
                 "webpage": "rlvr_world.evaluation.webpage"}
TASKS = ("textgame", *OWN_CLI_TASKS)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--task", choices=TASKS, required=True)
    parser.add_argument("--dataset", required=True, help="a directory written by make_dataset.py, or a Hub id")
    parser.add_argument("--split", default=None, help="split to evaluate (default: the only/first split)")
    parser.add_argument("--predictor", choices=["copy", "oracle", "model"], required=True)
    parser.add_argument("--model", help="model or LoRA adapter directory for --predictor model")
    parser.add_argument("--output_dir", required=True)
    parser.add_argument("--limit", type=int, help="evaluate only the first N rows")
    parser.add_argument("--shuffle_seed", type=int, default=None,
                        help="shuffle the rows with this seed before --limit (the demo's draw: 0)")
    parser.add_argument("--batch_size", type=int, default=8)
    parser.add_argument("--max_new_tokens", type=int, default=1024)
    parser.add_argument("--do_sample", action="store_true", help="sample instead of greedy decoding")
    parser.add_argument("--temperature", type=float, default=1.0)
    parser.add_argument("--headroom_samples", type=int, default=0, metavar="K",
                        help="also draw K samples per transition and report pass@K and how often the best sample "
                             "beats greedy decoding (the room GRPO has to learn in)")
    parser.add_argument("--headroom_temperature", type=float, default=1.0, help="sampling temperature for the headroom")
    parser.add_argument("--no_change_scores", action="store_true",
                        help="also score p(empty diff) per transition and how well it separates unchanged from "
                             "changed transitions (AUROC; one forward pass per row)")
    return parser.parse_args(argv)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    peek = argparse.ArgumentParser(add_help=False)
    peek.add_argument("--task")
    task = peek.parse_known_args(argv)[0].task
    if task in OWN_CLI_TASKS:
        return importlib.import_module(OWN_CLI_TASKS[task]).main(argv)
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
    if args.shuffle_seed is not None:
        dataset = dataset.shuffle(seed=args.shuffle_seed)
    if args.limit:
        dataset = dataset.select(range(min(args.limit, len(dataset))))
    generation = GenerationOptions(args.batch_size, args.max_new_tokens, args.do_sample, args.temperature)
    metrics = evaluate(dataset, args.predictor, args.output_dir, args.model, generation, f"{args.dataset} [{split}]",
                       headroom_samples=args.headroom_samples, headroom_temperature=args.headroom_temperature,
                       no_change_scores=args.no_change_scores)
    print(
        f"{args.predictor}: overall {metrics['accuracy_overall']}%, unchanged {metrics['accuracy_unchanged']}%, "
        f"changed {metrics['accuracy_changed']}%, format errors {metrics['format_error_rate']}% "
        f"on {metrics['num_transitions']} transitions -> {args.output_dir}"
    )
    headroom = metrics.get("sampling_headroom")
    if headroom:
        for kind in ("unchanged", "changed"):
            h = headroom[kind]
            print(f"  {kind}: greedy {h['greedy_accuracy']}%, pass@{headroom['num_samples']} {h['pass_at_k']}%, "
                  f"best sample beats greedy on {h['best_beats_greedy']}% (reward {h['greedy_reward']} -> "
                  f"{h['best_of_k_reward']})")
    separation = metrics.get("no_change_separation")
    if separation:
        print(f"  p(empty diff): unchanged {separation['p_empty_unchanged']}, changed {separation['p_empty_changed']}, "
              f"AUROC {separation['auroc']}; best threshold {separation['threshold_accuracy']}% "
              f"(greedy {separation['greedy_accuracy']}%)")
    return metrics


if __name__ == "__main__":
    main()
