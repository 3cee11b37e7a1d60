"""`make demo-video`: the video RLVR pipeline of the tiny PushT models on CPU, with a report.

    python -m rlvr_world.demos.video [--grpo_steps N [N_MULTI]] [--modes single_step multi_step] [--with_mae] [--quick]
        [--output_dir DIR] [--parallel N]

Stages (each is skipped when its output is already there, so a second run only redoes what is
missing; a killed stage resumes from its last checkpoint when started again):

1. data: 600 PushT episodes of 64 frames at 64x64 (`src/make_dataset.py pusht`);
2. visual tokenizers: `recipes/tiny/tokenizer_pusht{,_compressive}.yaml` (`src/train_tokenizer.py`);
3. MLE pre-training: `recipes/tiny/video_pretrain_pusht_{mode}.yaml` (`src/pretrain.py`): the base models;
4. RLVR: `recipes/tiny/video_grpo_pusht_{mode}.yaml` (`src/grpo.py`, reward -(MAE + LPIPS)), and with
   `--with_mae` the same with the MAE-only reward;
5. control: continued MLE pre-training from the base model, side by side with GRPO (one core each), until
   GRPO has finished and for as long as GRPO trained (`--match_train_seconds_of`);
6. evaluation on the held-out test episodes (`src/evaluate.py --task video_{mode}`) of base, RLVR and
   control, two at a time, plus the copy-last-frame baseline;
7. `runs/demo/video/report.md` and `report.json` (rows `{"model", "task", "mse", "mae", "psnr", "ssim",
   "lpips", "repetition_rate"}`), curves of the GRPO reward and of the held-out metrics against the step
   and the wall time (RLVR and control), and frame grids and GIFs of base vs RLVR.

`--quick` runs stages 4-7 in seconds on the untrained 32x32 smoke models (a check of the plumbing).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
OUT = REPO / "runs" / "demo" / "video"
DATA = REPO / "runs" / "data" / "pusht64_600"
TOKENIZERS = {"single_step": REPO / "runs" / "tiny" / "tokenizer_pusht",
              "multi_step": REPO / "runs" / "tiny" / "tokenizer_pusht_compressive"}
BASES = {mode: REPO / "runs" / "tiny" / f"world_model_pusht_{mode}" for mode in ("single_step", "multi_step")}
METRIC_KEYS = ("mse", "mae", "psnr", "ssim", "lpips", "repetition_rate")
# Evaluation options per mode: every 4th single-step window of all 60 test episodes (960), sampled as
# the paper evaluates (temperature 1, top-k 100, seed 0); the 8-frame windows of the first 15 test
# episodes (120 x 7 predicted frames) decoded greedily, since sampled rollouts never repeat a frame
# exactly and repetition is a property of the model's most likely rollout. ~6 and ~5 minutes on one thread.
# GRPO steps per mode: a multi-step step (7 frames generated, decoded and scored) costs ~3.5x a single-step one
# (33 s vs 9.7 s on one thread beside the control): 100 + 50 steps keep the demo within an hour on 2 cores.
GRPO_STEPS = {"single_step": 100, "multi_step": 50}
EVAL_ARGS = {"single_step": ["--stride", "4"], "multi_step": ["--num_episodes", "15", "--greedy"]}
# The control's checkpoint interval (its held-out curve evaluates each): ~90 s / ~280 s of training apart.
CONTROL_SAVE_STEPS = {"single_step": 200, "multi_step": 200}


def _recipe(name: str) -> str:
    return str(REPO / "recipes" / "tiny" / f"{name}.yaml")


def _done(path: Path) -> bool:
    return (path / "model.safetensors").is_file() and (path / "config.json").is_file()


@dataclass
class Stage:
    """One stage of the demo: a command run as its own process (fresh accelerate state), logged to `log`."""

    name: str
    command: list[str]
    log: Path


_T0 = time.perf_counter()  # the demo's start, for each stage's start offset in the report


def _run_stages(stages: list[Stage | None], timings: dict, parallel: int = 1) -> None:
    """Run `stages` as processes, at most `parallel` at a time in list order (each on one thread: the demo
    gives every process one core), tee-ing their output to their logs and to stdout; None (a stage whose
    output is already there) is skipped. A failed stage stops the others and the demo."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "OMP_NUM_THREADS": "1",
           "TRL_EXPERIMENTAL_SILENCE": "1", "PYTHONPATH": str(REPO / "src")}
    pending, running, failed, lock = [s for s in stages if s is not None], {}, [], threading.Lock()

    def tee(stage: Stage, process: subprocess.Popen, start: float) -> None:
        prefix = f"[{stage.name}] " if parallel > 1 else ""
        with open(stage.log, "a") as f:
            for line in process.stdout:
                f.write(line)
                if "it/s" not in line and "s/it" not in line:
                    with lock:
                        sys.stdout.write(prefix + line)
        if process.wait() != 0:
            failed.append(stage)
        timings[stage.name] = {"seconds": round(time.perf_counter() - start, 1), "start_s": round(start - _T0, 1)}

    while pending or running:
        while pending and len(running) < max(parallel, 1) and not failed:
            stage = pending.pop(0)
            print(f"[demo-video] {stage.name}: {' '.join(stage.command)}", flush=True)
            stage.log.parent.mkdir(parents=True, exist_ok=True)
            process = subprocess.Popen(stage.command, cwd=REPO, env=env, stdout=subprocess.PIPE,
                                       stderr=subprocess.STDOUT, text=True)
            thread = threading.Thread(target=tee, args=(stage, process, time.perf_counter()), daemon=True)
            thread.start()
            running[stage.name] = (process, thread)
        for name, (process, thread) in list(running.items()):
            if not thread.is_alive():
                del running[name]
        if failed:
            for process, thread in running.values():
                process.terminate()
                thread.join()
            stage = failed[0]
            raise SystemExit(f"[demo-video] {stage.name} failed; see {stage.log}")
        time.sleep(0.2)


def _run(stage: str, command: list[str], log: Path, timings: dict) -> None:
    _run_stages([Stage(stage, command, log)], timings)


def _grpo_settings(mode: str, extra: list[str]) -> dict:
    """The GRPO recipe of `mode`, then `extra`'s overrides (`--name value` pairs)."""
    import yaml

    settings = yaml.safe_load(Path(_recipe(f"video_grpo_pusht_{mode}")).read_text())
    for i, flag in enumerate(extra[:-1]):
        if flag.startswith("--"):
            settings[flag[2:]] = extra[i + 1]
    return settings


def _grpo_curve_settings(mode: str, extra: list[str]) -> dict:
    """How GRPO's held-out curve picks and samples its windows, so that the control's curve sees the same
    windows and, with the seeded sampler, draws the same samples."""
    settings = _grpo_settings(mode, extra)
    return {"stride": int(settings["video_window_stride"]), "limit": int(settings["accuracy_eval_samples"]),
            "batch_size": int(settings["accuracy_eval_batch_size"])}


def _prompts_per_step(mode: str, extra: list[str]) -> int:
    """Windows one GRPO step samples its groups for (one process): completions per step / group size."""
    from types import SimpleNamespace

    from rlvr_world.training.textgame import rows_per_step

    settings = _grpo_settings(mode, extra)
    return rows_per_step(SimpleNamespace(
        per_device_train_batch_size=int(settings["per_device_train_batch_size"]),
        gradient_accumulation_steps=int(settings.get("gradient_accumulation_steps", 1)),
        num_generations=int(settings["num_generations"]),
    ))  # fmt: skip


# --------------------------------------------------------------------------------------------- stages


def build_bases(timings: dict, modes, python: str) -> None:
    if not (DATA / "dataset_dict.json").is_file():
        _run("data", [python, "src/make_dataset.py", "pusht", "--output_dir", str(DATA), "--num_episodes", "600",
                      "--episode_length", "64", "--image_size", "64", "--seed", "0"], OUT / "logs" / "data.log", timings)
    for mode in modes:
        name = TOKENIZERS[mode].name
        if not _done(TOKENIZERS[mode]):
            _run(f"tokenizer_{mode}", [python, "src/train_tokenizer.py", _recipe(name)],
                 OUT / "logs" / f"{name}.log", timings)
        if not _done(BASES[mode]):
            _run(f"pretrain_{mode}", [python, "src/pretrain.py", _recipe(f"video_pretrain_pusht_{mode}")],
                 OUT / "logs" / f"pretrain_{mode}.log", timings)


def grpo_stage(mode: str, base: Path, data: Path, out: Path, reward: str, steps: int, python: str,
               extra: list[str]) -> Stage | None:
    """GRPO from `base` with `reward` for `steps` steps (None when `out` holds the finished run)."""
    if _done(out):
        return None
    return Stage(out.name, [python, "src/grpo.py", _recipe(f"video_grpo_pusht_{mode}"), "--model_name_or_path", str(base),
                            "--dataset_name", str(data), "--output_dir", str(out), "--reward_funcs", reward,
                            # each training window is seen once
                            "--max_steps", str(steps), "--max_train_samples", str(_prompts_per_step(mode, extra) * steps),
                            *extra],
                 OUT / "logs" / f"{out.name}.log")


def mle_stage(mode: str, base: Path, data: Path, out: Path, grpo_run: Path, python: str, extra: list[str]) -> Stage | None:
    """The control: continued MLE from the base model (constant small learning rate, one thread as GRPO) until
    the GRPO run in `grpo_run`, trained beside it or before it, has finished, and for as long as it trained."""
    if _done(out):
        return None
    if (base / "tokenized").is_dir():  # the base run's tokenised windows (checked against the tokenizer's hash)
        extra = ["--tokenized_dataset_dir", str(base / "tokenized"), *extra]
    return Stage(f"mle_{mode}", [python, "src/pretrain.py", _recipe(f"video_pretrain_pusht_{mode}"),
                                 "--init_from", str(base), "--dataset_name", str(data),
                                 "--tokenizer_name_or_path", str(base / "visual_tokenizer"), "--output_dir", str(out),
                                 # GRPO's time is the limit, not the pre-training recipe's 30-minute budget
                                 "--match_train_seconds_of", str(grpo_run), "--max_train_seconds", "36000",
                                 "--max_steps", "1000000", "--learning_rate", "1e-4", "--lr_scheduler_type", "constant",
                                 "--warmup_steps", "0", "--save_steps", str(CONTROL_SAVE_STEPS[mode]), "--save_total_limit", "50",
                                 "--eval_strategy", "no", "--torch_num_threads", "1", *extra],
                 OUT / "logs" / f"mle_{mode}.log")


def eval_stage(mode: str, model: Path, data: Path, out: Path, python: str, extra: list[str]) -> Stage | None:
    """Held-out test evaluation of `model` into `out/metrics.json` (None when it is there)."""
    if (out / "metrics.json").is_file():
        return None
    return Stage(f"eval_{out.name}", [python, "src/evaluate.py", "--task", f"video_{mode}", "--dataset", str(data),
                                      "--split", "test", "--model", str(model), "--output_dir", str(out),
                                      "--num_threads", "1", "--no_progress", *extra],
                 OUT / "logs" / f"eval_{out.name}.log")


def grpo(mode: str, base: Path, data: Path, out: Path, reward: str, steps: int, timings: dict, python: str,
         extra: list[str]) -> Path:
    """Run (or reuse) one GRPO stage now."""
    _run_stages([grpo_stage(mode, base, data, out, reward, steps, python, extra)], timings)
    return out


def evaluate(mode: str, model: Path, data: Path, out: Path, timings: dict, python: str, extra: list[str]) -> dict:
    """Run (or reuse) one evaluation now; its metrics."""
    _run_stages([eval_stage(mode, model, data, out, python, extra)], timings)
    return json.loads((out / "metrics.json").read_text())


# --------------------------------------------------------------------------------------------- curves and pictures


def checkpoint_curve(run_dir: Path, windows_from: Path, data: Path, split: str = "validation", limit: int = 32,
                     stride: int | None = None, batch_size: int = 32) -> list[dict]:
    """Held-out metrics of every `checkpoint-N` of an MLE run (same windows and sampling as the GRPO curve),
    with the training wall time of each checkpoint from the run's log."""
    import torch
    from transformers import AutoModelForCausalLM

    import rlvr_world.video.world_model  # noqa: F401
    from rlvr_world.evaluation.video import load_windows
    from rlvr_world.training.video_metrics import VideoMetricsCallback
    from rlvr_world.video.processor import VideoWorldModelProcessor

    processor = VideoWorldModelProcessor.from_pretrained(windows_from)
    windows = load_windows(str(data), split, processor.num_context_frames, processor.num_future_frames, stride=stride)
    picks = torch.linspace(0, len(windows) - 1, min(limit, len(windows))).round().long().tolist()
    callback = VideoMetricsCallback(processor, windows, picks, batch_size=batch_size)
    callback._start = None
    wall_of = {}
    log = run_dir / "log.jsonl"
    if log.is_file():
        for line in log.read_text().splitlines():
            record = json.loads(line)
            if "wall_s" in record and "step" in record:
                wall_of[int(record["step"])] = record["wall_s"]
    summary_file = run_dir / "train_summary.json"
    if summary_file.is_file():  # no per-step wall time in the log: spread the training time evenly over the steps
        summary = json.loads(summary_file.read_text())
        per_step = summary.get("train_wall_s", 0.0) / max(summary.get("global_step", 1), 1)
    curve = []
    checkpoints = sorted(run_dir.glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[1]))
    for path in [windows_from, *checkpoints]:
        step = 0 if path == windows_from else int(path.name.split("-")[1])
        model = AutoModelForCausalLM.from_pretrained(path)
        record = callback.evaluate(model, step)
        record["wall_s"] = 0.0 if step == 0 else wall_of.get(step, round(step * per_step, 1) if summary_file.is_file() else None)
        curve.append(record)
    return curve


def plot_curves(path: Path, grpo_runs: dict[str, Path], mle_curves: dict[str, list[dict]]) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    modes = list(grpo_runs)
    fig, axes = plt.subplots(len(modes), 3, figsize=(14, 3.6 * len(modes)), squeeze=False)
    for row, mode in enumerate(modes):
        run = grpo_runs[mode]
        logs = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
        steps = [r for r in logs if "reward" in r]
        ax = axes[row][0]
        ax.plot([r["step"] for r in steps], [r["reward"] for r in steps], lw=1)
        ax.set(title=f"{mode}: GRPO training reward", xlabel="step", ylabel="reward")
        metrics = [json.loads(line) for line in (run / "video_metrics.jsonl").read_text().splitlines()]
        mle = mle_curves.get(mode, [])
        for col, key in ((1, "mae"), (2, "lpips")):
            ax = axes[row][col]
            if metrics and key in metrics[0]:
                ax.plot([m["wall_s"] or 0 for m in metrics], [m[key] for m in metrics], "o-", label="RLVR (GRPO)")
            if mle and key in mle[0]:
                ax.plot([m["wall_s"] or 0 for m in mle], [m[key] for m in mle], "s--", label="continued MLE")
            ax.set(title=f"{mode}: held-out {key.upper()} (validation)", xlabel="training wall time (s)", ylabel=key)
            ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def base_vs_rlvr_pictures(mode: str, models: dict[str, Path], data: Path, out: Path, episodes: int = 2) -> list[dict]:
    """Grids (PNG) and GIFs of the first windows of held-out test episodes: truth, then each model,
    all sampled with the evaluation's settings and the same seed."""
    import torch
    from transformers import AutoModelForCausalLM

    import rlvr_world.video.world_model  # noqa: F401
    from rlvr_world.evaluation.video import SamplingOptions, WorldModelPredictor, load_windows, save_gif, save_grid
    from rlvr_world.video.processor import VideoWorldModelProcessor

    first = next(iter(models.values()))
    processor = VideoWorldModelProcessor.from_pretrained(first)
    k = processor.num_context_frames
    windows = load_windows(str(data), "test", k, processor.num_future_frames)
    seen, picks = set(), []
    for i, (episode, _) in enumerate(windows.windows):
        if episode not in seen and len(seen) < episodes:
            seen.add(episode)
            picks.append(i)
    items = [windows[i] for i in picks]
    pixels = torch.stack([it["pixel_values"] for it in items])
    actions = torch.stack([it["actions"] for it in items])
    predictions = {}
    for name, path in models.items():
        model = AutoModelForCausalLM.from_pretrained(path).eval()
        predictor = WorldModelPredictor(model, VideoWorldModelProcessor.from_pretrained(path), SamplingOptions(), "cpu")
        predictions[name] = predictor(pixels, actions).frames
    pictures = []
    for i, item in enumerate(items):
        truth = pixels[i, k:]
        rows = [("truth", truth)] + [(name, frames[i]) for name, frames in predictions.items()]
        stem = f"{mode}_episode_{int(item['episode_index'])}"
        grid = save_grid(out / f"{stem}.png", rows)
        context = pixels[i, :k]
        gif = save_gif(out / f"{stem}.gif", [torch.cat([context, frames]) for _, frames in rows])
        pictures.append({"mode": mode, "episode_index": int(item["episode_index"]), "rows": [r[0] for r in rows],
                         "grid": str(grid.relative_to(OUT)), "gif": str(gif.relative_to(OUT))})
    return pictures


# --------------------------------------------------------------------------------------------- report


def row(model: str, task: str, metrics: dict, prefix: str = "") -> dict:
    return {"model": model, "task": task, **{k: metrics.get(f"{prefix}{k}") for k in METRIC_KEYS}}


def _fmt(value, digits=4, kind="f"):
    return "n/a" if value is None else f"{value:.{digits}{kind}}"


def _rewarded(r: dict) -> float | None:
    """The default reward's metric, MAE + LPIPS (lower is better); None without LPIPS."""
    return None if r["lpips"] is None else r["mae"] + r["lpips"]


def findings(rows: list[dict], grpo_steps: dict[str, int]) -> list[str]:
    """The issue's checks, computed from the table (nothing asserted: reported as measured)."""
    lines = []
    by = {(r["model"], r["task"]): r for r in rows}
    single = ("base", "video_single_step"), ("RLVR", "video_single_step")
    if all(key in by for key in single):
        b, r = _rewarded(by[single[0]]), _rewarded(by[single[1]])
        if b is not None and r is not None:
            gain = 100 * (b - r) / b
            lines.append(f"- single-step: the rewarded metric MAE + LPIPS goes {b:.4f} -> {r:.4f} on held-out test "
                         f"episodes after {grpo_steps['single_step']} GRPO steps: {gain:+.1f}% relative (target: >= 5% better): "
                         f"{'met' if gain >= 5 else 'NOT met'}")
            mle = by.get(("continued MLE", "video_single_step"))
            if mle and _rewarded(mle) is not None:
                m = _rewarded(mle)
                lines.append(f"- single-step control: continued MLE for the same wall time gives {m:.4f} "
                             f"({100 * (b - m) / b:+.1f}% relative to base)")
    multi = ("base", "video_multi_step"), ("RLVR", "video_multi_step")
    if all(key in by for key in multi):
        base, rl = by[multi[0]], by[multi[1]]
        rep_ok = (rl["repetition_rate"] or 0) < (base["repetition_rate"] or 0)
        err_ok = rl["mae"] <= base["mae"] and rl["mse"] <= base["mse"]
        lines.append(f"- multi-step: repetition {_fmt(base['repetition_rate'], 3)} -> {_fmt(rl['repetition_rate'], 3)} "
                     f"({'lower' if rep_ok else 'NOT lower'}); MAE {base['mae']:.4f} -> {rl['mae']:.4f}, MSE "
                     f"{base['mse']:.3e} -> {rl['mse']:.3e} ({'not worse' if err_ok else 'WORSE'})")
        mle = by.get(("continued MLE", "video_multi_step"))
        if mle:
            # the efficiency claim: does the same wall time of MLE match each part of the RLVR gain?
            parts = [("MAE + LPIPS", _rewarded), ("MSE", lambda r: r["mse"]), ("repetition", lambda r: r["repetition_rate"])]
            said = []
            for name, value in parts:
                b, r, m = value(base), value(rl), value(mle)
                if None not in (b, r, m):
                    said.append(f"{name} {m:.4g} against RLVR's {r:.4g} (base {b:.4g}: "
                                f"{'RLVR ahead' if r < m else 'control ahead' if m < r else 'equal'})")
            lines.append("- multi-step control: continued MLE for the same wall time gives " + "; ".join(said))
    return lines


def write_report(rows: list[dict], info: dict, pictures: list[dict]) -> Path:
    lines = ["# Video RLVR demo (tiny PushT models, CPU)", "",
             f"Held-out test episodes of `{info['data']}` (`src/evaluate.py` options: {info['eval_args']}; without "
             "`--greedy` it samples at temperature 1 with top-k 100, seed 0). "
             f"GRPO: {', '.join(f'{n} steps ({m})' for m, n in info['grpo_steps'].items())} of the tiny recipes (reward `{info['reward']}`); the control continues "
             "MLE pre-training from the same base model for GRPO's training wall time.", "",
             "| model | task | MSE | MAE | PSNR | SSIM | LPIPS | repetition |", "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['model']} | {r['task']} | {_fmt(r['mse'], 3, 'e')} | {_fmt(r['mae'])} | {_fmt(r['psnr'], 2)} | "
                     f"{_fmt(r['ssim'])} | {_fmt(r['lpips'])} | {_fmt(r['repetition_rate'], 3)} |")
    lines += ["", "## Findings", "", *(findings(rows, info["grpo_steps"]) or ["- (no model rows)"]), "",
              "## Curves", "", "![curves](curves.png)", "",
              "Left: GRPO training reward per step. Middle/right: held-out (validation) MAE and LPIPS against "
              "training wall time for RLVR and for the continued-MLE control.", "", "## Base vs RLVR", ""]
    for p in pictures:
        lines += [f"{p['mode']}, test episode {p['episode_index']} (rows: {', '.join(p['rows'])}):", "",
                  f"![grid]({p['grid']}) ![gif]({p['gif']})", ""]
    lines += ["## Wall time", "", f"Up to {info['parallel']} stages at once, one thread each (stages run in this "
              "run only; cached ones are not listed).", "", "| stage | seconds | started at (s) |", "|---|---|---|"]
    lines += [f"| {stage} | {t['seconds']} | {t['start_s']} |" for stage, t in info["timings"].items()]
    lines += [f"| total (this run) | {info['wall_s']} | |", ""]
    path = OUT / "report.md"
    path.write_text("\n".join(lines) + "\n")
    return path


# --------------------------------------------------------------------------------------------- main


def run_video_demo(modes=("single_step", "multi_step"), grpo_steps: int | dict[str, int] | None = None, with_mae: bool = False,
                   quick: bool = False, python: str = sys.executable, output_dir: str | None = None,
                   parallel: int | None = None) -> dict:
    global OUT, _T0
    start = _T0 = time.perf_counter()
    if parallel is None:  # GRPO beside its control, evaluations two at a time, on a machine with 2 cores or more
        parallel = min(2, os.cpu_count() or 1)
    timings: dict[str, dict] = {}  # stage -> seconds and start offset
    if output_dir is not None:
        OUT = Path(output_dir).resolve()
    elif quick:  # never mix the plumbing check's outputs into the real demo's cached stages
        OUT = OUT.parent / "video_quick"
    OUT.mkdir(parents=True, exist_ok=True)
    grpo_extra, mle_extra, eval_extra, data = [], [], [], DATA
    if grpo_steps is None:
        grpo_steps = {mode: GRPO_STEPS[mode] for mode in modes}
    elif isinstance(grpo_steps, int):
        grpo_steps = {mode: grpo_steps for mode in modes}
    bases = dict(BASES)
    if quick:
        from rlvr_world.training.video_smoke import video_smoke_assets

        assets = video_smoke_assets(OUT / "quick_assets")
        data = Path(assets["data"])
        bases = {mode: Path(assets[mode]) for mode in modes}
        grpo_steps = {mode: 2 for mode in modes}
        grpo_extra = ["--per_device_train_batch_size", "8", "--num_generations", "4", "--video_window_stride", "1",
                      "--accuracy_eval_samples", "4", "--accuracy_eval_steps", "1", "--save_steps", "1"]
        mle_extra = ["--save_steps", "2", "--max_eval_windows", "4", "--num_action_bins", "16",
                     "--num_context_frames", "2", "--num_future_frames", "3"]
        eval_extra = ["--limit", "4"]
    else:
        eval_extra = None  # per mode: EVAL_ARGS
        build_bases(timings, modes, python)
    reward = "video_mae_lpips"
    rows, grpo_runs, mle_curves, pictures = [], {}, {}, []
    for mode in modes:
        task, base = f"video_{mode}", bases[mode]
        run, mle = OUT / f"grpo_{mode}", OUT / f"mle_{mode}"
        grpo_runs[mode] = run
        # GRPO and its equal-time control side by side (one core each), then the evaluations
        models = {"base": base, "RLVR": run, "continued MLE": mle}
        training = [grpo_stage(mode, base, data, run, reward, grpo_steps[mode], python, grpo_extra),
                    mle_stage(mode, base, data, mle, run, python, mle_extra)]
        if with_mae:
            models["RLVR (MAE reward)"] = OUT / f"grpo_{mode}_mae"
            training.append(grpo_stage(mode, base, data, models["RLVR (MAE reward)"], "video_mae", grpo_steps[mode],
                                       python, grpo_extra))
        _run_stages(training, timings, parallel)
        # the control's held-out curve and the pictures (this process, one thread) beside the evaluations: three
        # evaluations two at a time would leave a core idle while the last one runs
        def curve_and_pictures(mode=mode, base=base, run=run, mle=mle):
            import torch

            torch.set_num_threads(1)  # per thread under OpenMP
            timer = time.perf_counter()
            curve = checkpoint_curve(mle, base, data, **_grpo_curve_settings(mode, grpo_extra))
            shown = base_vs_rlvr_pictures(mode, {"base": base, "RLVR": run}, data, OUT / "samples")
            timings[f"curve_and_pictures_{mode}"] = {"seconds": round(time.perf_counter() - timer, 1),
                                                     "start_s": round(timer - _T0, 1)}
            return curve, shown

        evals = {name: OUT / "eval" / f"{mode}_{name.replace(' ', '_').strip('()')}" for name in models}
        with ThreadPoolExecutor(1) as pool:
            background = pool.submit(curve_and_pictures)
            _run_stages([eval_stage(mode, path, data, evals[name], python,
                                    EVAL_ARGS[mode] if eval_extra is None else eval_extra)
                         for name, path in models.items()], timings, parallel)
            mle_curves[mode], shown = background.result()
        pictures += shown
        for name, out in evals.items():
            metrics = json.loads((out / "metrics.json").read_text())
            if name == "base":
                rows.append(row("copy last frame", task, metrics, prefix="copy_last_frame_"))
            rows.append(row(name, task, metrics))
    plot_curves(OUT / "curves.png", grpo_runs, mle_curves)
    windows = {mode: " ".join(EVAL_ARGS[mode] if eval_extra is None else eval_extra) for mode in modes}
    info = {"data": str(data), "grpo_steps": grpo_steps, "reward": reward, "timings": timings, "eval_args": windows,
            "wall_s": round(time.perf_counter() - start, 1), "quick": quick,
            "parallel": parallel}
    report = {"rows": rows, **info, "mle_curves": mle_curves, "pictures": pictures}
    (OUT / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    path = write_report(rows, info, pictures)
    print(f"[demo-video] report: {path} ({info['wall_s']} s)")
    return report


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--modes", nargs="+", default=["single_step", "multi_step"], choices=["single_step", "multi_step"])
    parser.add_argument("--grpo_steps", type=int, nargs="+", default=None,
                        help="GRPO steps: one number for every mode, or one per mode in the order of --modes "
                             f"(default {GRPO_STEPS})")
    parser.add_argument("--with_mae", action="store_true", help="also GRPO with the MAE-only reward (the comparison)")
    parser.add_argument("--quick", action="store_true", help="the plumbing on untrained 32x32 smoke models, in seconds")
    parser.add_argument("--output_dir", help="where the report and the demo's runs go (default runs/demo/video)")
    parser.add_argument("--parallel", type=int, default=None,
                        help="stages run at once, one thread each (default: 2 where there are 2 cores or more)")
    args = parser.parse_args(argv)
    steps = args.grpo_steps
    if steps is not None:
        if len(steps) not in (1, len(args.modes)):
            parser.error(f"--grpo_steps takes one number or one per mode ({len(args.modes)}), got {steps}")
        steps = steps[0] if len(steps) == 1 else dict(zip(args.modes, steps))
    return run_video_demo(tuple(args.modes), steps, args.with_mae, args.quick, output_dir=args.output_dir,
                          parallel=args.parallel)


if __name__ == "__main__":
    main()
