"""Our GRPO step against a bare TRL `GRPOTrainer` script: same model, data, reward and settings, one run.

    python bench/bench_trl_grpo.py --recipe recipes/small/textgame_grpo.yaml --model M --data D --steps 3

First the bare script: a `GRPOTrainer` built directly from the recipe's numbers (LoRA from
`peft.LoraConfig`, the task-specific reward callable, the dataset's train split as it is, no rebalancing,
no callbacks), timed by TRL's own `step_time` log. Then `bench/bench_grpo.py` on the same recipe (our
`src/grpo.py` path). Prints both and the ratio ours / bare, generated tokens per second, peak memory,
and whether generation used the KV cache. `runs/bench/trl_grpo/compare.json` holds the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))


def peak_rss_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # Linux: KiB


def bare_trl_steps(recipe: dict, model: str, data: str, steps: int, warmup: int, out: Path) -> dict:
    """The plain script: what a user writes from TRL's docs with the recipe's values."""
    import datasets
    import torch
    from peft import LoraConfig
    from trl import GRPOConfig, GRPOTrainer

    from rlvr_world.rewards import get_reward_funcs

    torch.manual_seed(0)
    train = datasets.load_from_disk(data)["train"].shuffle(seed=0)
    train = train.select_columns(["prompt", "data_state", "ground_truth"])
    reward = get_reward_funcs(recipe["reward_funcs"], recipe.get("reward_kwargs") or {})
    keys = ("loss_type", "scale_rewards", "beta", "epsilon", "learning_rate", "lr_scheduler_type", "num_generations",
            "per_device_train_batch_size", "gradient_accumulation_steps", "max_completion_length", "temperature",
            "use_cpu", "bf16")
    config = GRPOConfig(output_dir=str(out), max_steps=warmup + steps, logging_steps=1, save_strategy="no",
                        report_to="none", seed=0, **{k: recipe[k] for k in keys if k in recipe})
    lora = LoraConfig(r=recipe["lora_r"], lora_alpha=recipe["lora_alpha"], lora_dropout=recipe["lora_dropout"],
                      target_modules=recipe["lora_target_modules"], task_type="CAUSAL_LM")
    trainer = GRPOTrainer(model=model, reward_funcs=reward, args=config, train_dataset=train, peft_config=lora)
    from bench_grpo import generation_uses_cache

    use_cache = generation_uses_cache(trainer)
    start = time.perf_counter()
    trainer.train()
    wall = time.perf_counter() - start
    logs = [r for r in trainer.state.log_history if "step_time" in r and r["step"] > warmup]
    tokens = [r["completions/mean_length"] * config.per_device_train_batch_size * config.gradient_accumulation_steps
              for r in logs]
    return {"steps": len(logs), "step_s": statistics.fmean(r["step_time"] for r in logs),
            "mean_completion_length": statistics.fmean(r["completions/mean_length"] for r in logs),
            "tokens_per_step_s": sum(tokens) / sum(r["step_time"] for r in logs), "wall_s": wall,
            "use_cache": use_cache, "peak_rss_gib": peak_rss_gib()}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--recipe", default=str(REPO / "recipes" / "small" / "textgame_grpo.yaml"))
    parser.add_argument("--model", required=True)
    parser.add_argument("--data", required=True)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="recipe overrides (both runs)")
    parser.add_argument("--output_dir", default=str(REPO / "runs" / "bench" / "trl_grpo"))
    args = parser.parse_args(argv)
    for key, value in (("HF_HUB_OFFLINE", "1"), ("HF_DATASETS_OFFLINE", "1"), ("TOKENIZERS_PARALLELISM", "false")):
        os.environ.setdefault(key, value)
    import bench_grpo
    import torch
    import yaml

    torch.set_num_threads(args.threads)
    recipe = yaml.safe_load(Path(args.recipe).read_text())
    for item in args.set:
        key, _, value = item.partition("=")
        recipe[key] = yaml.safe_load(value)
    if str(recipe.get("bf16")).lower() == "auto":  # the same precision as ours (src/grpo.py resolves it so)
        from rlvr_world.training.precision import resolve_mixed_precision

        recipe["bf16"] = resolve_mixed_precision("auto", use_cpu=bool(recipe.get("use_cpu"))) == "bf16"
    out = Path(args.output_dir)
    bare = bare_trl_steps(recipe, args.model, args.data, args.steps, args.warmup, out / "bare")
    ours = bench_grpo.main(["--recipe", args.recipe, "--model", args.model, "--data", args.data, "--steps",
                            str(args.steps), "--warmup", str(args.warmup), "--threads", str(args.threads),
                            "--output_dir", str(out / "ours"), *[f"--set={s}" for s in args.set]])
    result = {"recipe": args.recipe, "model": args.model, "threads": args.threads, "load_average": os.getloadavg(),
              "bare_trl": bare, "ours": {k: ours[k] for k in ("step_s", "generation_s", "reward_s", "optimisation_s",
                                                              "tokens_per_s", "mean_completion_length")},
              "ratio_ours_over_bare": ours["step_s"]["mean"] / bare["step_s"], "peak_rss_gib": peak_rss_gib()}
    out.mkdir(parents=True, exist_ok=True)
    (out / "compare.json").write_text(json.dumps(result, indent=2) + "\n")
    print(f"bare TRL GRPOTrainer: {bare['step_s']:.1f} s/step (completion {bare['mean_completion_length']:.0f} tokens, "
          f"KV cache {bare['use_cache']}); ours: {ours['step_s']['mean']:.1f} s/step "
          f"(completion {ours['mean_completion_length']:.0f} tokens); ratio ours/bare "
          f"{result['ratio_ours_over_bare']:.2f}; peak RSS {result['peak_rss_gib']:.1f} GiB")
    return result


if __name__ == "__main__":
    main()
