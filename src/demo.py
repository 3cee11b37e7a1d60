"""`make demo`: the embedded CPU-scale text-game RLVR pipeline, end to end.

1. data: our procedural games (short prompts) and, when present, the real ByteSized32 test set;
2. the tiny model, built from nothing (BPE tokenizer + Qwen-style LM);
3. SFT on a small demonstration subset, mostly of changes (recipes/tiny/textgame_sft.yaml), and, as a
   reference without RL, the same SFT on balanced demonstrations (beside GRPO, on its idle core);
4. RLVR: GRPO on the whole rebalanced pool with the task-specific reward (recipes/tiny/textgame_grpo.yaml);
5. two controls from the same SFT checkpoint with GRPO's training time: continued SFT on the same
   demonstrations, and MLE on the gold answers of the whole pool (side by side, one core each);
6. greedy evaluation of every model and the copy baseline on held-out transitions and held-out games,
   the sampling headroom of the SFT and RLVR models (``--headroom_samples`` per held-out transition),
   why each model's answers are wrong, and which transitions each fixes or breaks against the SFT model;
7. ``runs/demo/textgame/report.md``, ``report.json`` and ``curves.png``.
8. then the web-page pipeline (``rlvr_world.demos.webpage``: SFT, then GRPO with the line-F1 reward),
   ``runs/demo/webpage/report.md`` and ``report.json`` (``--skip_webpage`` skips it).

Stages whose output exists are skipped, so a killed demo continues where it stopped; evaluations of
unchanged models on the same rows are reused.
``--quick`` shrinks every stage to seconds (used by the tests).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from functools import partial
from pathlib import Path

from rlvr_world.data import load_dataset_dir
from rlvr_world.data.textgame import DEFAULT_BYTESIZED32_DIR
from rlvr_world.data.textgame import main as make_textgame
from rlvr_world.demos.textgame_bases import BASES, FEW_SHOT, ZERO_SHOT, build_model_args, few_shot_dataset, trained
from rlvr_world.demos.webpage import run_webpage_demo
from rlvr_world.evaluation.cache import cached_evaluation, evaluation_key
from rlvr_world.evaluation.textgame import (GenerationOptions, error_table, evaluate, headroom_table, separation_table,
                                            transition_flips)

SRC = Path(__file__).resolve().parent
RECIPES = SRC.parent / "recipes" / "tiny"
SPLITS = ("heldout_transitions", "heldout_games")
# build_tiny_model.py arguments per size; tiny is what fits `make demo`'s 20 minutes on 2 CPU cores.
MODEL_SIZES = {
    "quick": ["--hidden_size", "32", "--num_hidden_layers", "1", "--intermediate_size", "64",
              "--num_attention_heads", "2", "--num_key_value_heads", "1"],  # --quick: seconds, for tests
    "tiny": [],
    "small": ["--hidden_size", "384", "--num_hidden_layers", "6", "--intermediate_size", "1536",
              "--num_attention_heads", "6", "--num_key_value_heads", "2"],
}
BALANCED_SFT = "reference: SFT on balanced demonstrations (no RL)"
METRIC_KEYS = ("accuracy_overall", "accuracy_unchanged", "accuracy_changed", "format_error_rate")


def run(stage: str, args: list[str], log_dir: Path) -> float:
    """Run one stage as a subprocess (its own process, like a user would), tee its log, return seconds."""
    log_dir.mkdir(parents=True, exist_ok=True)
    print(f"\n=== {stage}: {' '.join(args)}", flush=True)
    start = time.perf_counter()
    with open(log_dir / f"{stage}.log", "w") as log:
        proc = subprocess.Popen([sys.executable, *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for line in proc.stdout:
            log.write(line)
            sys.stdout.write(line)
        if proc.wait() != 0:
            raise SystemExit(f"stage '{stage}' failed (exit {proc.returncode}); see {log_dir / (stage + '.log')}")
    return time.perf_counter() - start


def start_background(stage: str, args: list[str], log_dir: Path) -> tuple[subprocess.Popen, float]:
    """Start a stage beside the others, logging to its file; finish it with `wait_background`."""
    log_dir.mkdir(parents=True, exist_ok=True)
    print(f"\n=== {stage} (in parallel, log {log_dir / (stage + '.log')}): {' '.join(args)}", flush=True)
    proc = subprocess.Popen([sys.executable, *args], stdout=open(log_dir / f"{stage}.log", "w"), stderr=subprocess.STDOUT)
    return proc, time.perf_counter()


def wait_background(stage: str, started: tuple[subprocess.Popen, float], log_dir: Path) -> float:
    proc, begun = started
    if proc.wait() != 0:
        raise SystemExit(f"stage '{stage}' failed (exit {proc.returncode}); see {log_dir / (stage + '.log')}")
    seconds = time.perf_counter() - begun
    print(f"=== {stage} done in {seconds:.0f} s", flush=True)
    return seconds


def run_parallel(stages: dict[str, list[str]], log_dir: Path) -> dict[str, float]:
    """Run stages side by side (one core each), logging to files; return each one's seconds."""
    started = {stage: start_background(stage, args, log_dir) for stage, args in stages.items()}
    return {stage: wait_background(stage, begun, log_dir) for stage, begun in started.items()}


def build_data(out: Path, prompt_flags: tuple[str, ...] = BASES["tiny"].data_flags) -> dict[str, Path]:
    sets = {"generated": out / "data" / "textgame_generated"}
    if not (sets["generated"] / "dataset_dict.json").exists():
        make_textgame(["--source", "generated", "--output_dir", str(sets["generated"]), *prompt_flags])
    if (DEFAULT_BYTESIZED32_DIR / "test.jsonl.gz").exists():
        sets["bytesized32"] = out / "data" / "textgame_bytesized32"
        if not (sets["bytesized32"] / "dataset_dict.json").exists():
            make_textgame(["--source", "jsonl", "--output_dir", str(sets["bytesized32"])])
    return sets


def train_runtime(run_dir: Path) -> float | None:
    """Training seconds of a finished run, from its log."""
    log = run_dir / "log.jsonl"
    if not log.exists():
        return None
    for line in reversed(log.read_text().splitlines()):
        record = json.loads(line)
        if "train_runtime" in record:
            return float(record["train_runtime"])
    return None


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def plot_curves(grpo_dirs: dict[str, Path], path: Path) -> None:
    """Training reward and held-out accuracy against the GRPO step."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_reward, ax_acc) = plt.subplots(1, 2, figsize=(11, 4))
    for label, run_dir in grpo_dirs.items():
        logs = [r for r in read_jsonl(run_dir / "log.jsonl") if "reward" in r]
        if logs:
            ax_reward.plot([r["step"] for r in logs], [r["reward"] for r in logs], label=label)
        acc = read_jsonl(run_dir / "accuracy.jsonl")
        if acc:
            steps = [r["step"] for r in acc]
            ax_acc.plot(steps, [r["accuracy_overall"] for r in acc], marker="o", label=f"{label}: all")
            ax_acc.plot(steps, [r["accuracy_changed"] for r in acc], marker="x", ls="--", label=f"{label}: changed")
    ax_reward.set(title="GRPO training reward", xlabel="GRPO step", ylabel="mean reward")
    ax_acc.set(title="Held-out transitions, greedy accuracy (%)", xlabel="GRPO step", ylabel="accuracy (%)")
    for ax in (ax_reward, ax_acc):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def write_report(report_dir: Path, rows: list[dict], timings: dict, baselines: list[dict],
                 headroom: dict[str, dict] | None = None, errors: dict[str, dict] | None = None,
                 flips: dict[str, dict] | None = None, separations: dict[str, dict] | None = None) -> None:
    (report_dir / "report.json").write_text(json.dumps({"rows": rows, "timings_s": timings,
                                                        "real_test_baselines": baselines,
                                                        "sampling_headroom": headroom or {},
                                                        "error_breakdown": errors or {},
                                                        "against_sft": flips or {},
                                                        "no_change_separation": separations or {}}, indent=2))
    lines = ["# Text-game world model: RLVR demo", "",
             "Greedy decoding; accuracies in percent. SFT learns from a small demonstration subset (mostly "
             "changes); RLVR (GRPO) trains on the whole rebalanced pool from the SFT checkpoint. The two controls "
             "start from the same checkpoint with the same wall time as GRPO."
             + (" The reference row is the same SFT on balanced demonstrations, without RL."
                if any(r["model"] == BALANCED_SFT for r in rows) else ""), ""]
    for split in SPLITS:
        lines += [f"## {split}", "", "| model | all | unchanged | changed | format errors | transitions |",
                  "|---|---|---|---|---|---|"]
        for r in rows:
            if r["split"] == split:
                lines.append(f"| {r['model']} | {r['accuracy_overall']} | {r['accuracy_unchanged']} | "
                             f"{r['accuracy_changed']} | {r['format_error_rate']} | {r['num_transitions']} |")
        lines.append("")
    if headroom:
        k = next(iter(headroom.values()))["num_samples"]
        why = ("Unchanged transitions share one better answer (the empty diff); on changed ones the better "
               "sample is particular to its transition.")
        lines += [f"## Sampling headroom on {SPLITS[0]} ({k} samples per transition, temperature 1.0)", "", why, "",
                  *headroom_table(headroom, kinds=("unchanged", "changed")), ""]
    if separations:
        lines += [f"## Does the model know when nothing changes? ({SPLITS[0]})", "",
                  "p(empty diff): the model's probability of answering \"nothing changes\" once its answer reaches the "
                  "`modified` list (one forward pass per transition). AUROC 0.5: it cannot tell unchanged from changed "
                  "transitions, so any push toward \"nothing changes\" (what GRPO finds on unchanged transitions) moves "
                  "every transition alike. Last column: the best overall accuracy of answering the empty diff above a "
                  "threshold on p(empty diff) and the greedy answer below it, the threshold tuned on these rows (an upper "
                  "bound on what moving that one decision can reach).", "", *separation_table(separations), ""]
    if errors:
        lines += [f"## Why answers are wrong on {SPLITS[0]}", "", *error_table(errors), ""]
    if flips:
        lines += [f"## Against the SFT model on {SPLITS[0]}", "",
                  "Transitions each model gets right that the SFT model got wrong (fixed), and the reverse (broken); "
                  "p: exact McNemar test of fixed against broken (small p: a real difference, not noise).",
                  "", "| model | unchanged: fixed / broken | p | changed: fixed / broken | p |", "|---|---|---|---|---|"]
        lines += [f"| {label} | {f['unchanged']['fixed']} / {f['unchanged']['broken']} | {f['unchanged']['p_value']:.2g} | "
                  f"{f['changed']['fixed']} / {f['changed']['broken']} | {f['changed']['p_value']:.2g} |"
                  for label, f in flips.items()]
        lines.append("")
    if baselines:
        lines += ["## Real ByteSized32 test set (trivial baselines)", "", "| predictor | all | unchanged | changed |",
                  "|---|---|---|---|"]
        lines += [f"| {b['model']} | {b['accuracy_overall']} | {b['accuracy_unchanged']} | {b['accuracy_changed']} |"
                  for b in baselines]
        lines.append("")
    lines += ["## Wall time (s)", "", "| stage | seconds |", "|---|---|"]
    lines += [f"| {k} | {v:.0f} |" for k, v in timings.items()]
    lines += ["", "![curves](curves.png)", ""]
    (report_dir / "report.md").write_text("\n".join(lines))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base", choices=sorted(BASES), default="tiny",
                        help="tiny: the embedded model built from nothing (make demo); smollm2: SmolLM2-135M-Instruct "
                        "from PyPI with LoRA (recipes/small; zero-/few-shot rows of the base model)")
    parser.add_argument("--output_dir", default=None, help="default: runs/demo (tiny), runs/demo_smollm2 (smollm2)")
    parser.add_argument("--quick", action="store_true", help="seconds-long stages, for tests")
    parser.add_argument("--eval_samples", type=int, default=None, help="rows per held-out split (default: the base's)")
    parser.add_argument("--with_binary", action="store_true",
                        help="also run GRPO with the binary reward (adds GRPO's wall time again)")
    parser.add_argument("--sft_epochs", type=float, default=None, help="SFT epochs (default: tiny 12, else the recipe's)")
    parser.add_argument("--grpo_steps", type=int, default=None,
                        help="GRPO steps (default: tiny 100, smollm2 20 on CPU, 200 with --gpu); the controls "
                        "get the same time")
    parser.add_argument("--headroom_samples", type=int, default=4,
                        help="samples per held-out transition for the SFT and RLVR models' sampling headroom (0: skip)")
    parser.add_argument("--model_size", choices=["tiny", "small"], default="tiny",
                        help="the embedded model's size: tiny (2.5M parameters, CPU) or small (about 14M, for a GPU)")
    parser.add_argument("--skip_webpage", action="store_true",
                        help="skip the web-page pipeline (alone: python -m rlvr_world.demos.webpage)")
    parser.add_argument("--gpu", action="store_true",
                        help="train on the GPU in bf16 (the recipes default to CPU); controls share the GPU")
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    base = BASES[args.base]
    recipes = base.recipes
    args.output_dir = args.output_dir or base.output_dir
    args.eval_samples = args.eval_samples or (base.gpu_eval_samples if args.gpu else base.eval_samples)
    args.grpo_steps = args.grpo_steps or (base.gpu_grpo_steps if args.gpu else base.grpo_steps)
    args.sft_epochs = args.sft_epochs or base.sft_epochs
    if args.quick:
        args.eval_samples = min(args.eval_samples, base.quick_eval_samples)
    out = Path(args.output_dir)
    report_dir = out / "textgame"
    logs = report_dir / "logs"
    timings: dict[str, float] = {}
    start = time.perf_counter()

    data = build_data(out, base.data_flags)
    generated = str(data["generated"])
    model_dir = out / "models" / base.model_dir
    common = ["--dataset_name", generated]
    # The 20-minute budget of `make demo` on 2 cores sets these; the recipes hold everything else.
    budget_sft = ["--num_train_epochs", str(args.sft_epochs)] if args.sft_epochs else []
    # On CPU each training process gets one thread (a core each); on a GPU everything runs there in bf16.
    # (SFT on CPU keeps torch's default threads: it runs alone.)
    device = ["--use_cpu", "false", "--bf16", "true"] if args.gpu else ["--torch_num_threads", "1"]
    sft_device = device if args.gpu else []
    # GRPO shares the cores only with the balanced-SFT reference; without one it takes them all, as SFT does.
    grpo_device = device if args.gpu or base.balanced_reference else sft_device
    budget_rl = ["--max_steps", str(args.grpo_steps), "--accuracy_eval_steps", str(max(args.grpo_steps // 4, 1)),
                 *(base.gpu_grpo if args.gpu else ())]
    quick_sft = ["--num_demonstrations", str(base.quick_demonstrations), "--num_train_epochs", "1",
                 "--accuracy_eval_samples", "4",
                 "--accuracy_eval_max_new_tokens", "8", "--max_length", "2048"] if args.quick else []
    quick_rl = ["--max_steps", "2", "--accuracy_eval_samples", "4", "--accuracy_eval_steps", "0",
                "--accuracy_eval_max_new_tokens", "8", "--max_completion_length", "8", "--save_steps", "1",
                *base.quick_grpo] if args.quick else []

    if not (model_dir / "config.json").exists():
        size = MODEL_SIZES["quick" if args.quick else args.model_size]
        timings[f"build {base.name} model"] = run("build_model", build_model_args(base, SRC, generated, model_dir, size),
                                                  logs)
    sft_dir = report_dir / "sft"
    # With LoRA, SFT saves its adapter beside and merges it into sft_dir, where GRPO and the controls start.
    sft_out = ["--output_dir", str(report_dir / "sft_adapter"), "--merged_output_dir", str(sft_dir)] if base.lora \
        else ["--output_dir", str(sft_dir)]
    if not trained(sft_dir):
        timings["SFT"] = run("sft", [str(SRC / "sft.py"), str(recipes / "textgame_sft.yaml"), *common,
                                     "--model_name_or_path", str(model_dir), *sft_out,
                                     *budget_sft, *sft_device, *quick_sft], logs)

    # Reference without RL: the same SFT on balanced demonstrations (half of them "nothing changes").
    # On CPU it runs on the core GRPO leaves idle (one thread each), beside the first GRPO run.
    balanced_dir = report_dir / "sft_balanced"
    balanced = None
    if base.balanced_reference and not trained(balanced_dir):
        balanced = start_background("sft_balanced", [
            str(SRC / "sft.py"), str(recipes / "textgame_sft.yaml"), *common, "--model_name_or_path", str(model_dir),
            "--output_dir", str(balanced_dir), "--demonstrations_changed_fraction", "0.5", *budget_sft,
            *device, *quick_sft], logs)

    rl_runs = {"RLVR (task-specific reward)": ("grpo", "textgame_grpo.yaml")}
    if args.with_binary:
        rl_runs["RLVR (binary reward)"] = ("grpo_binary", "textgame_grpo_binary.yaml")
    for label, (name, recipe) in rl_runs.items():
        run_dir = report_dir / name
        if not trained(run_dir):
            timings[label] = run(name, [str(SRC / "grpo.py"), str(recipes / recipe), *common,
                                        "--model_name_or_path", str(sft_dir), "--output_dir", str(run_dir),
                                        *grpo_device, *budget_rl, *quick_rl], logs)
    if balanced is not None:
        timings[BALANCED_SFT] = wait_background("sft_balanced", balanced, logs)
    # The controls get GRPO's training seconds on the same device (one thread each on CPU), as GRPO had:
    # time, not the recipes' step counts, ends them (their learning rates are constant).
    budget = train_runtime(report_dir / "grpo") or 60.0
    controls = {"control: continued SFT on the demonstrations": ("sft_continued", "textgame_sft_continued.yaml"),
                "control: MLE on the whole pool": ("mle_pool", "textgame_mle_pool.yaml")}
    # Same budget for both, so they run side by side, one thread each (a core each on 2 cores).
    pending = {label: name for label, (name, _) in controls.items()
               if not trained(report_dir / name)}
    seconds = run_parallel({name: [str(SRC / "sft.py"), str(recipes / recipe), *common,
                                   "--model_name_or_path", str(sft_dir), "--output_dir", str(report_dir / name),
                                   "--max_train_seconds", f"{budget:.0f}", "--max_steps", "1000000", *device,
                                   *quick_rl[:2]]
                            for label, (name, recipe) in controls.items() if label in pending}, logs)
    timings.update({label: seconds[name] for label, name in pending.items()})

    models = {"SFT (demonstrations)": sft_dir, **{k: report_dir / v[0] for k, v in rl_runs.items()},
              **{k: report_dir / v[0] for k, v in controls.items()}}
    if base.balanced_reference:
        models[BALANCED_SFT] = balanced_dir
    if base.base_rows:  # the pre-trained base before any training, alone and with two demonstrations
        models = {ZERO_SHOT: model_dir, FEW_SHOT: model_dir, **models}
    generation = GenerationOptions(batch_size=base.eval_batch_size,
                                   max_new_tokens=8 if args.quick else base.eval_max_new_tokens)
    rows, headroom, errors, scored, separations = [], {}, {}, {}, {}
    # Where sampling beats greedy decoding, GRPO has something to learn from: measured for SFT and RLVR.
    with_headroom = {"SFT (demonstrations)", *rl_runs} if args.headroom_samples > 0 else set()
    eval_start = time.perf_counter()
    splits = load_dataset_dir(data["generated"])
    for split in SPLITS:
        dataset = splits[split].shuffle(seed=0).select(range(min(args.eval_samples, len(splits[split]))))
        for label, predictor, model in [("copy baseline", "copy", None)] + [(k, "model", str(v)) for k, v in models.items()]:
            samples = args.headroom_samples if split == SPLITS[0] and label in with_headroom else 0
            # Whether a trained model tells unchanged from changed transitions: one forward pass per row.
            no_change = split == SPLITS[0] and predictor == "model" and label not in (ZERO_SHOT, FEW_SHOT)
            eval_dir = report_dir / "eval" / f"{split}_{'few_shot' if label == FEW_SHOT else Path(model or 'copy').name}"
            rows_in = few_shot_dataset(dataset, splits["train"]) if label == FEW_SHOT else dataset
            # A re-run reuses evaluations of unchanged models on the same rows: on 2 CPU cores the base
            # model's zero- and few-shot rows alone take 14 minutes.
            key = evaluation_key(rows_in, model, generation, samples, no_change)
            metrics = cached_evaluation(eval_dir, key, partial(evaluate, rows_in, predictor, eval_dir, model, generation,
                                                               f"generated [{split}]", headroom_samples=samples,
                                                               no_change_scores=no_change))
            rows.append({"model": label, "split": split, **{k: metrics[k] for k in METRIC_KEYS},
                         "num_transitions": metrics["num_transitions"]})
            if samples:
                headroom[label] = metrics["sampling_headroom"]
            if no_change:
                separations[label] = metrics["no_change_separation"]
            if split == SPLITS[0] and predictor == "model":
                errors[label] = metrics["error_breakdown"]
                scored[label] = read_jsonl(eval_dir / "predictions.jsonl")
    timings["evaluation"] = time.perf_counter() - eval_start

    baselines = []
    if "bytesized32" in data:
        real = load_dataset_dir(data["bytesized32"], "test")
        for predictor in ("copy", "oracle"):
            m = evaluate(real, predictor, report_dir / "eval" / f"bytesized32_{predictor}", dataset_name="bytesized32")
            baselines.append({"model": f"{predictor} baseline", **{k: m[k] for k in METRIC_KEYS}})
    timings["total"] = time.perf_counter() - start
    plot_curves({k: report_dir / v[0] for k, v in rl_runs.items()}, report_dir / "curves.png")
    sft_rows = scored.pop("SFT (demonstrations)")
    flips = {label: transition_flips(sft_rows, other) for label, other in scored.items()}
    write_report(report_dir, rows, timings, baselines, headroom, errors, flips, separations)
    print((report_dir / "report.md").read_text())
    print(f"report: {report_dir / 'report.md'}")
    if not args.skip_webpage and args.base == "tiny":  # the web-page pipeline: runs/demo/webpage/report.md
        run_webpage_demo(out, quick=args.quick)


if __name__ == "__main__":
    main()
