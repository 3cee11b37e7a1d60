"""Seconds per GRPO step of a recipe (default: the tiny text-game recipe), split into generation,
reward and optimisation, and tokens generated per second.

    python bench/bench_grpo.py                                   # recipes/tiny/textgame_grpo.yaml
    python bench/bench_grpo.py --model runs/demo/textgame/sft --steps 20 --threads 1
    python bench/bench_grpo.py --recipe R.yaml --set num_generations=4 --set max_completion_length=64

Runs `src/grpo.py`'s own code path for `warmup + steps` optimizer steps (no checkpoints, no accuracy
evaluation) and reads the per-step timings that `TimedGRPOTrainer` logs:

- generation: `timing/generation_s` (tokenise, sample, decode);
- reward: `timing/reward_s` (all reward functions);
- optimisation: `step_time - generation - reward` (old/reference log-probs, loss forward/backward,
  optimizer step);
- tokens/s: completion tokens generated / generation seconds.

The first `warmup` steps are left out of the summary. When the recipe's model or dataset folder is
missing, the bench builds the generated dataset and an untrained tiny model (its completions run
to `max_completion_length`, so generation time is then an upper bound). Timings on a shared CPU are
noisy: the load average is printed with them.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))


def ensure_assets(recipe: dict, work: Path) -> tuple[str, str, str]:
    """(model, dataset, note): the recipe's own when present, else ones built under `work`."""
    model, data, notes = recipe["model_name_or_path"], recipe["dataset_name"], []
    if not Path(data).is_dir():
        data = str(work / "data")
        if not Path(data, "dataset_dict.json").is_file():
            from rlvr_world.data.textgame import main as make_textgame

            make_textgame(["--source", "generated", "--output_dir", data, "--no_rules", "--no_examples",
                           "--state_format", "json"])
        notes.append(f"dataset {recipe['dataset_name']} missing: built the generated games in {data}")
    if not Path(model).is_dir():
        model = str(work / "tiny")
        if not Path(model, "config.json").is_file():
            from rlvr_world.training.tiny_model import build_tiny_model, texts_from_dataset

            build_tiny_model(texts_from_dataset(data, ["train"]), model)
        notes.append(f"model {recipe['model_name_or_path']} missing: untrained tiny model {model} "
                     "(completions run to max_completion_length: generation time is an upper bound)")
    return model, data, "; ".join(notes)


def generation_uses_cache(trainer) -> bool:
    """What `generate()` resolves for the KV cache: TRL's generation config (None unless set), else the
    model's generation config, else transformers' default (on)."""
    for value in (trainer.generation_config.use_cache, trainer.model.generation_config.use_cache):
        if value is not None:
            return bool(value)
    return True


def summarize(records: list[dict], warmup: int) -> dict:
    steps = [r for r in records if "step_time" in r and r["step"] > warmup]
    if not steps:
        raise SystemExit("no timed steps after warm-up; raise --steps")

    def stat(values):
        return {"mean": statistics.fmean(values), "median": statistics.median(values),
                "min": min(values), "max": max(values)}

    gen = [r["timing/generation_s"] for r in steps]
    rew = [r["timing/reward_s"] for r in steps]
    total = [r["step_time"] for r in steps]
    opt = [t - g - w for t, g, w in zip(total, gen, rew)]
    tokens = [r["timing/generated_tokens"] for r in steps]
    return {
        "steps": len(steps),
        "step_s": stat(total),
        "generation_s": stat(gen),
        "reward_s": stat(rew),
        "optimisation_s": stat(opt),
        "generated_tokens_per_step": stat(tokens),
        "tokens_per_s": sum(tokens) / sum(gen),
        "mean_completion_length": statistics.fmean(r["completions/mean_length"] for r in steps),
        "share": {"generation": sum(gen) / sum(total), "reward": sum(rew) / sum(total),
                  "optimisation": sum(opt) / sum(total)},
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--recipe", default=str(REPO / "recipes" / "tiny" / "textgame_grpo.yaml"))
    parser.add_argument("--model", help="override the recipe's model_name_or_path")
    parser.add_argument("--data", help="override the recipe's dataset_name")
    parser.add_argument("--steps", type=int, default=10, help="timed steps")
    parser.add_argument("--warmup", type=int, default=2, help="untimed first steps")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1 is fastest on small shared CPUs)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="extra recipe overrides, e.g. --set num_generations=4")
    parser.add_argument("--output_dir", default=str(REPO / "runs" / "bench" / "grpo"))
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

    import yaml

    from rlvr_world.training.cli import parse_recipe

    sys.path.insert(0, str(REPO / "src"))
    import grpo  # src/grpo.py

    with open(args.recipe) as f:
        recipe = yaml.safe_load(f)
    if args.model:
        recipe["model_name_or_path"] = args.model
    if args.data:
        recipe["dataset_name"] = args.data
    out = Path(args.output_dir)
    model, data, note = ensure_assets(recipe, out / "assets")
    run_dir = out / "run"
    shutil.rmtree(run_dir, ignore_errors=True)
    overrides = [
        "--model_name_or_path", model, "--dataset_name", data, "--output_dir", str(run_dir),
        "--max_steps", str(args.warmup + args.steps), "--logging_steps", "1", "--save_strategy", "no",
        "--auto_resume", "false", "--torch_num_threads", str(args.threads),
        "--report_to", "none",
    ]
    for item in args.set:
        key, _, value = item.partition("=")
        overrides += [f"--{key}", value]
    script_args, training_args, model_args = parse_recipe(grpo.parser_types(), [args.recipe, *overrides])
    script_args.accuracy_eval_split = None
    start = time.perf_counter()
    trainer = grpo.main(script_args, training_args, model_args)
    wall = time.perf_counter() - start
    use_cache = generation_uses_cache(trainer)

    records = [json.loads(line) for line in (run_dir / "log.jsonl").read_text().splitlines()]
    summary = summarize(records, args.warmup)
    result = {
        "recipe": args.recipe, "model": model, "dataset": data, "note": note, "threads": args.threads,
        "load_average": os.getloadavg(), "wall_s": wall,
        "prompts_per_step": training_args.per_device_train_batch_size * training_args.gradient_accumulation_steps
        // training_args.num_generations,
        "num_generations": training_args.num_generations,
        "max_completion_length": training_args.max_completion_length,
        "use_cache": bool(use_cache),
        "peak_rss_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,  # Linux: KiB
        **summary,
    }
    out.mkdir(parents=True, exist_ok=True)
    (out / "bench_grpo.json").write_text(json.dumps(result, indent=2) + "\n")
    s = summary
    lines = [
        f"GRPO step timing: {args.recipe}",
        f"  model {model}; {result['prompts_per_step']} prompts x {result['num_generations']} generations, "
        f"max {result['max_completion_length']} new tokens; {args.threads} thread(s); load {result['load_average']}",
        f"  {s['steps']} timed steps (after {args.warmup} warm-up), mean completion {s['mean_completion_length']:.1f} tokens",
        f"  step         {s['step_s']['mean']:.3f} s (median {s['step_s']['median']:.3f})",
        f"  generation   {s['generation_s']['mean']:.3f} s ({100 * s['share']['generation']:.0f}%)",
        f"  reward       {s['reward_s']['mean']:.4f} s ({100 * s['share']['reward']:.1f}%)",
        f"  optimisation {s['optimisation_s']['mean']:.3f} s ({100 * s['share']['optimisation']:.0f}%)",
        f"  generated    {s['generated_tokens_per_step']['mean']:.0f} tokens/step, {s['tokens_per_s']:.0f} tokens/s",
        f"  KV cache {result['use_cache']}; peak memory (RSS) {result['peak_rss_gib']:.2f} GiB",
    ]
    if note:
        lines.append(f"  note: {note}")
    print("\n".join(lines))
    (out / "bench_grpo.md").write_text("\n".join(lines) + "\n")
    return result


if __name__ == "__main__":
    main()
