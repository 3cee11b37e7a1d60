"""Metric-oriented rewards: does GRPO with reward X improve metric X most?

    python bench/bench_video_reward_metrics.py                          # video_mse and video_ssim, 100 steps
    python bench/bench_video_reward_metrics.py --rewards video_mse video_ssim video_mae_lpips --steps 50
    python bench/bench_video_reward_metrics.py --seeds 0 1                # two GRPO seeds per reward, averaged

From the tiny single-step base model (`runs/tiny/world_model_pusht_single_step`, built by `make
demo-video` or its recipe), one GRPO run per reward through the demo's own stages (`src/grpo.py` with
`recipes/tiny/video_grpo_pusht_single_step.yaml`, `--reward_funcs REWARD`), then the demo's held-out
evaluation of each (test split, every 4th window, sampled at temperature 1 with top-k 100, seed 0).
A run or evaluation already on disk is reused, and so are the demo's own base and -(MAE + LPIPS) RLVR
evaluations when they exist (`--demo_dir`). Prints a table of every model on every metric, with the best
of each column marked, and writes `OUT/reward_metrics.json`.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from rlvr_world.demos import video as demo  # noqa: E402

# metric -> True where higher is better
METRICS = {"mse": False, "mae": False, "psnr": True, "ssim": True, "lpips": False}


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rewards", nargs="+", default=["video_mse", "video_ssim"])
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0], help="GRPO seeds per reward (rows averaged)")
    parser.add_argument("--output_dir", default=str(REPO / "runs" / "bench" / "video_reward_metrics"))
    parser.add_argument("--demo_dir", default=str(demo.OUT), help="reuse the demo's base / RLVR evaluations")
    args = parser.parse_args(argv)

    out = Path(args.output_dir).resolve()
    demo.OUT = out  # the demo's stages log under OUT/logs
    mode, base, data, timings = "single_step", demo.BASES["single_step"], demo.DATA, {}
    if not demo._done(base):
        raise SystemExit(f"no base model at {base}: run `make demo-video` (or its pre-training recipe) first")
    evaluations = {}
    demo_eval = Path(args.demo_dir) / "eval"
    for name, folder in (("base", "single_step_base"), ("video_mae_lpips (demo)", "single_step_RLVR")):
        if (demo_eval / folder / "metrics.json").is_file():
            evaluations[name] = json.loads((demo_eval / folder / "metrics.json").read_text())
    if "base" not in evaluations:
        evaluations["base"] = demo.evaluate(mode, base, data, out / "eval" / "base", timings, sys.executable,
                                            demo.EVAL_ARGS[mode])
    per_seed = {}
    for reward in args.rewards:
        for seed in args.seeds:
            suffix = "" if seed == 0 else f"_seed{seed}"  # seed 0 keeps the single-seed layout
            run = demo.grpo(mode, base, data, out / f"grpo_{reward}{suffix}", reward, args.steps, timings,
                            sys.executable, ["--seed", str(seed)])
            per_seed[f"{reward} (seed {seed})"] = demo.evaluate(mode, run, data, out / "eval" / f"{reward}{suffix}",
                                                                timings, sys.executable, demo.EVAL_ARGS[mode])
        runs = [per_seed[f"{reward} (seed {seed})"] for seed in args.seeds]
        evaluations[reward] = {k: sum(m[k] for m in runs) / len(runs) for k in METRICS}

    best = {m: (max if higher else min)(evaluations, key=lambda n: evaluations[n][m]) for m, higher in METRICS.items()}
    print(f"\nsingle-step, test split ({' '.join(demo.EVAL_ARGS[mode])}, sampled top-k 100), {args.steps} GRPO steps, "
          f"GRPO seeds {args.seeds} (a reward's row is their mean); * marks the best model on each metric")
    print("| model | " + " | ".join(METRICS) + " |")
    print("|---|" + "---|" * len(METRICS))
    for name, m in evaluations.items():
        cells = [f"{m[k]:.5g}{' *' if best[k] == name else ''}" for k in METRICS]
        print(f"| {name} | " + " | ".join(cells) + " |")
    if len(args.seeds) > 1:
        print("\nper seed:")
        for name, m in per_seed.items():
            print(f"| {name} | " + " | ".join(f"{m[k]:.5g}" for k in METRICS) + " |")
    own = {r: best[r.removeprefix("video_")] == r for r in args.rewards if r.removeprefix("video_") in METRICS}
    for reward, wins in own.items():
        print(f"{reward}: {'best' if wins else 'NOT best'} on its own metric")
    result = {"steps": args.steps, "seeds": args.seeds,
              "per_seed": {n: {k: m[k] for k in METRICS} for n, m in per_seed.items()},
              "metrics": {n: {k: m[k] for k in METRICS} for n, m in evaluations.items()},
              "best": best, "best_on_own_metric": own, "timings": timings}
    out.mkdir(parents=True, exist_ok=True)
    (out / "reward_metrics.json").write_text(json.dumps(result, indent=2) + "\n")
    return result


if __name__ == "__main__":
    main()
