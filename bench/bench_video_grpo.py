"""Seconds per GRPO step of the tiny video recipes, split into generation, decoding + reward and
optimisation, and the share of the step spent outside the world model's forward/backward passes.

    python bench/bench_video_grpo.py                              # both tiny PushT recipes
    python bench/bench_video_grpo.py --mode single_step --steps 5 --set num_generations=4

Runs `src/grpo.py`'s own code path for `warmup + steps` optimizer steps (no checkpoints, no held-out
evaluation) and reads the per-step timings `TimedGRPOTrainer` logs (see `bench/bench_grpo.py`):
generation (`rollout_func`: constrained sampling, multi-step action insertion), decoding + reward (the
video rewards decode each completion once with the frozen tokenizer and score it, LPIPS included)
and optimisation (`step_time` minus both: reference/old log-probs, loss forward/backward, optimizer).

On top, the bench times every forward pass of the world model (policy and reference model, in
generation and in the loss; a global forward hook on `VideoWorldModelForCausalLM`) and every
`accelerator.backward`, so that it can report how much of a step is spent *outside* the model's
forward/backward: Python and `generate` overhead, sampling, decoding, reward, optimizer.

When a recipe's world model is missing (the tiny checkpoints come from `src/pretrain.py`), the bench
times untrained models with the tiny recipes' architectures on the 64x64 episodes instead (same
compute per step), or with `--smoke` (or without the episodes) the 32x32 smoke models, and says so.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))
sys.path.insert(0, str(REPO / "bench"))

RECIPES = {
    "single_step": REPO / "recipes" / "tiny" / "video_grpo_pusht_single_step.yaml",
    "multi_step": REPO / "recipes" / "tiny" / "video_grpo_pusht_multi_step.yaml",
}


class ModelTimer:
    """Wall time inside the world model's forward passes and inside `accelerator.backward`."""

    def __init__(self):
        self.forward_s = 0.0
        self.backward_s = 0.0
        self._depth = 0
        self._t0 = 0.0

    def install(self):
        import accelerate
        import torch

        from rlvr_world.video.world_model import VideoWorldModelForCausalLM

        def pre(module, args):
            if isinstance(module, VideoWorldModelForCausalLM):
                if self._depth == 0:
                    self._t0 = time.perf_counter()
                self._depth += 1

        def post(module, args, output):
            if isinstance(module, VideoWorldModelForCausalLM):
                self._depth -= 1
                if self._depth == 0:
                    self.forward_s += time.perf_counter() - self._t0

        self._handles = [torch.nn.modules.module.register_module_forward_pre_hook(pre),
                         torch.nn.modules.module.register_module_forward_hook(post)]
        original = accelerate.Accelerator.backward
        timer = self

        def backward(accelerator, loss, **kwargs):
            t0 = time.perf_counter()
            try:
                return original(accelerator, loss, **kwargs)
            finally:
                timer.backward_s += time.perf_counter() - t0

        accelerate.Accelerator.backward = backward
        self._original_backward = original
        return self

    def remove(self):
        import accelerate

        for handle in self._handles:
            handle.remove()
        accelerate.Accelerator.backward = self._original_backward


def step_times_callback(timer: ModelTimer, records: list):
    """A TrainerCallback appending each optimizer step's forward/backward seconds to `records`."""
    from transformers import TrainerCallback

    class StepTimes(TrainerCallback):
        def on_step_begin(self, args, state, control, **kwargs):
            self.start = (timer.forward_s, timer.backward_s)

        def on_step_end(self, args, state, control, **kwargs):
            records.append({"step": state.global_step, "forward_s": timer.forward_s - self.start[0],
                            "backward_s": timer.backward_s - self.start[1]})

    return StepTimes()


def run(mode: str, args, out: Path) -> dict:
    import yaml

    from bench_grpo import summarize
    from rlvr_world.training.cli import parse_recipe
    from rlvr_world.training.video_smoke import recipe_shaped_assets, video_smoke_assets

    import grpo  # src/grpo.py

    recipe_path = str(RECIPES[mode])
    recipe = yaml.safe_load(Path(recipe_path).read_text())
    model, data, note = recipe["model_name_or_path"], recipe["dataset_name"], ""
    if not (Path(model) / "config.json").is_file() and Path(data, "dataset_dict.json").is_file() and not args.smoke:
        model = recipe_shaped_assets(out / "recipe_shaped", data, REPO)[mode]
        note = (f"{recipe['model_name_or_path']} missing: untrained models with the tiny recipes' architectures "
                f"({model}); a step costs the same, but an untrained tokenizer's codes change more between samples")
    elif not (Path(model) / "config.json").is_file() or not Path(data).is_dir():
        assets = video_smoke_assets(out / "assets")
        model, data = assets[mode], assets["data"]
        note = (f"{recipe['model_name_or_path']} missing: untrained 32x32 smoke model {model} "
                "(timings of the code path, not of the tiny recipe's model)")
    run_dir = out / f"run_{mode}"
    shutil.rmtree(run_dir, ignore_errors=True)
    overrides = ["--model_name_or_path", model, "--dataset_name", data, "--output_dir", str(run_dir),
                 "--max_steps", str(args.warmup + args.steps), "--logging_steps", "1", "--save_strategy", "no",
                 "--auto_resume", "false", "--torch_num_threads", str(args.threads), "--report_to", "none",
                 "--max_train_samples", str(4 * (args.warmup + args.steps) + 8)]
    if "smoke" in note:
        overrides += ["--video_window_stride", "1"]
    for item in args.set:
        key, _, value = item.partition("=")
        overrides += [f"--{key}", value]
    script_args, training_args, model_args = parse_recipe(grpo.parser_types(), [recipe_path, *overrides])
    script_args.accuracy_eval_split = None

    # grpo.main imports standard_callbacks when it runs: add the step timer there for this run only.
    from rlvr_world.training import callbacks as callbacks_module

    timer, step_records = ModelTimer().install(), []
    standard = callbacks_module.standard_callbacks
    callbacks_module.standard_callbacks = lambda *a, **k: [*standard(*a, **k), step_times_callback(timer, step_records)]
    try:
        start = time.perf_counter()
        trainer = grpo.main(script_args, training_args, model_args)
        wall = time.perf_counter() - start
    finally:
        callbacks_module.standard_callbacks = standard
        timer.remove()

    records = [json.loads(line) for line in (run_dir / "log.jsonl").read_text().splitlines()]
    summary = summarize(records, args.warmup)
    timed = [r for r in step_records if r["step"] > args.warmup]
    logged = {r["step"]: r for r in records if "step_time" in r}
    total = sum(logged[r["step"]]["step_time"] for r in timed)
    forward, backward = sum(r["forward_s"] for r in timed), sum(r["backward_s"] for r in timed)
    processor = trainer.processing_class.video_processor
    return {
        "mode": mode, "recipe": recipe_path, "model": model, "dataset": data, "note": note,
        "threads": args.threads, "load_average": os.getloadavg(), "wall_s": wall,
        "prompts_per_step": training_args.per_device_train_batch_size // training_args.num_generations,
        "num_generations": training_args.num_generations,
        "completion_tokens": processor.completion_length, "prompt_tokens": processor.prompt_length,
        "reward_funcs": script_args.reward_funcs,
        **summary,
        "model_forward_s": statistics.fmean(r["forward_s"] for r in timed),
        "model_backward_s": statistics.fmean(r["backward_s"] for r in timed),
        "share_outside_forward_backward": 1.0 - (forward + backward) / total if total else None,
    }


def report(result: dict) -> list[str]:
    s = result
    lines = [
        f"GRPO step, {s['mode']}: {s['recipe']}",
        f"  model {s['model']}; {s['prompts_per_step']} prompts x {s['num_generations']} samples, "
        f"prompt {s['prompt_tokens']} + completion {s['completion_tokens']} tokens; rewards {s['reward_funcs']}; "
        f"{s['threads']} thread(s); load {tuple(round(x, 1) for x in s['load_average'])}",
        f"  {s['steps']} timed steps: step {s['step_s']['mean']:.2f} s (median {s['step_s']['median']:.2f})",
        f"  generation        {s['generation_s']['mean']:.2f} s ({100 * s['share']['generation']:.0f}%), "
        f"{s['tokens_per_s']:.0f} tokens/s",
        f"  decoding + reward {s['reward_s']['mean']:.2f} s ({100 * s['share']['reward']:.0f}%)",
        f"  optimisation      {s['optimisation_s']['mean']:.2f} s ({100 * s['share']['optimisation']:.0f}%)",
        f"  world-model forward {s['model_forward_s']:.2f} s + backward {s['model_backward_s']:.2f} s per step; "
        f"outside them: {100 * s['share_outside_forward_backward']:.0f}% of the step",
    ]
    if s["note"]:
        lines.append(f"  note: {s['note']}")
    return lines


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mode", choices=[*RECIPES, "both"], default="both")
    parser.add_argument("--steps", type=int, default=5, help="timed steps")
    parser.add_argument("--warmup", type=int, default=1, help="untimed first steps")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="recipe overrides")
    parser.add_argument("--smoke", action="store_true", help="time the 32x32 smoke models (seconds per step)")
    parser.add_argument("--output_dir", default=str(REPO / "runs" / "bench" / "video_grpo"))
    args = parser.parse_args(argv)
    for key, value in (("HF_HUB_OFFLINE", "1"), ("HF_DATASETS_OFFLINE", "1"), ("TRL_EXPERIMENTAL_SILENCE", "1")):
        os.environ.setdefault(key, value)
    out = Path(args.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    results, lines = [], []
    for mode in (RECIPES if args.mode == "both" else [args.mode]):
        result = run(mode, args, out)
        results.append(result)
        lines += report(result)
        print("\n".join(report(result)), flush=True)
    (out / "bench_video_grpo.json").write_text(json.dumps(results, indent=2) + "\n")
    (out / "bench_video_grpo.md").write_text("\n".join(lines) + "\n")
    return results


if __name__ == "__main__":
    main()
