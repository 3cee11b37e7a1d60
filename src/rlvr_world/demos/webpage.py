"""The embedded CPU-scale web-page RLVR pipeline (part of `make demo`), end to end.

1. data: the simulated shop's transitions with short prompts (``make_dataset.py webpage --no_instruction``);
2. the tiny model, built from nothing (a BPE tokenizer trained on the generated pages + a Qwen-style LM);
3. SFT on a small demonstration subset (recipes/tiny/webpage_sft.yaml);
4. RLVR: GRPO from the SFT model on the whole training pool, reward = line F1 (recipes/tiny/webpage_grpo.yaml);
5. greedy evaluation of both models and the no-change baseline on held-out transitions and held-out pages;
6. ``<output_dir>/webpage/report.md``, ``report.json`` and ``curves.png``.

Stages whose output exists are skipped, so a killed demo continues where it stopped.

    python -m rlvr_world.demos.webpage [--quick] [--output_dir runs/demo]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

SRC = Path(__file__).resolve().parents[2]
RECIPES = SRC.parent / "recipes" / "tiny"
SPLITS = ("heldout_transitions", "heldout_pages")
METRIC_KEYS = ("precision", "recall", "f1", "format_error_rate")
QUICK_MODEL = ["--hidden_size", "32", "--num_hidden_layers", "1", "--intermediate_size", "64",
               "--num_attention_heads", "2", "--num_key_value_heads", "1"]


def run_stage(stage: str, args: list[str], log_dir: Path) -> float:
    """Run one stage as its own process, its output in ``log_dir/<stage>.log``; return its seconds."""
    log_dir.mkdir(parents=True, exist_ok=True)
    print(f"\n=== webpage {stage}: {' '.join(args)}", flush=True)
    start = time.perf_counter()
    with open(log_dir / f"{stage}.log", "w") as log:
        code = subprocess.call([sys.executable, *args], stdout=log, stderr=subprocess.STDOUT)
    if code != 0:
        raise SystemExit(f"webpage stage '{stage}' failed (exit {code}); see {log_dir / (stage + '.log')}")
    seconds = time.perf_counter() - start
    print(f"=== webpage {stage} done in {seconds:.0f} s", flush=True)
    return seconds


def evaluate_all(models: dict[str, Path | None], data_dir: Path, eval_dir: Path, samples: int,
                 max_new_tokens: int, log_dir: Path) -> list[dict]:
    """Greedy evaluation of every model on both held-out splits: one process per model (a core each)."""
    from rlvr_world.data import load_dataset_dir
    from rlvr_world.evaluation.webpage import evaluate

    splits = load_dataset_dir(data_dir)
    subsets = {}
    for split in SPLITS:
        subset_dir = eval_dir / "subsets" / split
        if not (subset_dir / "dataset_info.json").exists():
            rows = splits[split].shuffle(seed=0).select(range(min(samples, len(splits[split]))))
            rows.save_to_disk(str(subset_dir))
        subsets[split] = subset_dir
    procs = {}
    for label, model in models.items():
        for split, subset in subsets.items():
            out = eval_dir / f"{split}_{label}"
            if (out / "metrics.json").exists():
                continue
            if model is None:  # the baseline needs no model: score it here
                evaluate(load_dataset_dir(subset), "no_change", out, dataset_name=f"generated [{split}]")
                continue
            args = [str(SRC / "evaluate.py"), "--task", "webpage", "--dataset", str(subset), "--predictor", "model",
                    "--model", str(model), "--output_dir", str(out), "--batch_size", "64",
                    "--max_new_tokens", str(max_new_tokens)]
            log = open(log_dir / f"eval_{split}_{label}.log", "w")
            procs.setdefault(label, []).append((args, log, out))
    # One process per model at a time, the models side by side (OMP_NUM_THREADS=1 each).
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    running = []
    for label, jobs in procs.items():
        running.append(subprocess.Popen(
            [sys.executable, "-c", _SEQUENTIAL, json.dumps([args for args, _, _ in jobs])],
            stdout=jobs[0][1], stderr=subprocess.STDOUT, env=env))
    for proc in running:
        if proc.wait() != 0:
            raise SystemExit(f"webpage evaluation failed (exit {proc.returncode}); see {log_dir}")
    rows = []
    for split in SPLITS:
        for label in models:
            m = json.loads((eval_dir / f"{split}_{label}" / "metrics.json").read_text())
            rows.append({"model": label, "split": split, **{k: m[k] for k in METRIC_KEYS},
                         "exact_match": m["exact_match"], "num_transitions": m["num_transitions"]})
    return rows


# Runs several `evaluate.py` command lines one after the other in one process (imports paid once).
_SEQUENTIAL = (
    "import json, runpy, sys\n"
    "for args in json.loads(sys.argv[1]):\n"
    "    sys.argv = args\n"
    "    runpy.run_path(args[0], run_name='__main__')\n"
)


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def plot_curves(grpo_dir: Path, path: Path) -> None:
    """GRPO's training reward and the held-out F1 against the step."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_reward, ax_f1) = plt.subplots(1, 2, figsize=(11, 4))
    logs = [r for r in read_jsonl(grpo_dir / "log.jsonl") if "reward" in r]
    if logs:
        ax_reward.plot([r["step"] for r in logs], [r["reward"] for r in logs], label="F1 reward")
    curve = [r for r in read_jsonl(grpo_dir / "accuracy.jsonl") if "f1" in r]
    if curve:
        ax_f1.plot([r["step"] for r in curve], [r["f1"] for r in curve], marker="o", label="F1")
        ax_f1.plot([r["step"] for r in curve], [r["precision"] for r in curve], marker="x", ls="--", label="precision")
        ax_f1.plot([r["step"] for r in curve], [r["recall"] for r in curve], marker="+", ls=":", label="recall")
    ax_reward.set(title="GRPO training reward (line F1)", xlabel="GRPO step", ylabel="mean reward")
    ax_f1.set(title="Held-out transitions, greedy (%)", xlabel="GRPO step", ylabel="percent")
    for ax in (ax_reward, ax_f1):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def write_report(report_dir: Path, rows: list[dict], timings: dict, settings: dict) -> None:
    (report_dir / "report.json").write_text(json.dumps({"rows": rows, "timings_s": timings, "settings": settings},
                                                       indent=2))
    lines = ["# Web-page world model: RLVR demo", "",
             "Greedy decoding; precision, recall and F1 of exact item lines (summed over the sections New / Deleted / "
             "Updated items, `None` counting as a line), mean per transition, in percent. SFT learns from a small "
             f"demonstration subset ({settings['num_demonstrations']} transitions); RLVR (GRPO, reward = line F1) "
             f"trains from the SFT model on the whole training pool for {settings['grpo_steps']} steps.", ""]
    for split in SPLITS:
        lines += [f"## {split}", "", "| model | precision | recall | F1 | exact match | format errors | transitions |",
                  "|---|---|---|---|---|---|---|"]
        lines += [f"| {r['model']} | {r['precision']} | {r['recall']} | {r['f1']} | {r['exact_match']} | "
                  f"{r['format_error_rate']} | {r['num_transitions']} |" for r in rows if r["split"] == split]
        lines.append("")
    by = {(r["model"], r["split"]): r["f1"] for r in rows}
    gain = by[("rlvr", SPLITS[0])] - by[("sft", SPLITS[0])]
    lines += [f"RLVR - SFT on {SPLITS[0]}: {gain:+.2f} F1 points.", "",
              "## Wall time (s)", "", "| stage | seconds |", "|---|---|"]
    lines += [f"| {k} | {v:.0f} |" for k, v in timings.items()]
    lines += ["", "![curves](curves.png)", ""]
    (report_dir / "report.md").write_text("\n".join(lines))


def run_webpage_demo(out: Path, quick: bool = False, eval_samples: int = 250, grpo_steps: int = 200,
                     num_demonstrations: int = 200, sft_epochs: float = 10) -> dict:
    """Run every stage under ``out`` (data and model beside the text game's) and return the report."""
    from rlvr_world.data.webpage import main as make_webpage

    out = Path(out)
    report_dir = out / "webpage"
    logs = report_dir / "logs"
    timings: dict[str, float] = {}
    start = time.perf_counter()
    if quick:
        eval_samples, grpo_steps, num_demonstrations, sft_epochs = min(eval_samples, 8), 2, 16, 1
    max_new_tokens = 8 if quick else 160

    data_dir = out / "data" / "webpage_generated"
    if not (data_dir / "dataset_dict.json").exists():
        make_webpage(["--output_dir", str(data_dir), "--no_instruction"] + (["--episodes", "60"] if quick else []))
    model_dir = out / "models" / "webpage_tiny"
    if not (model_dir / "config.json").exists():
        timings["build tiny model"] = run_stage("build_model", [
            str(SRC / "build_tiny_model.py"), "--data", str(data_dir), "--output_dir", str(model_dir),
            *(QUICK_MODEL if quick else [])], logs)
    common = ["--dataset_name", str(data_dir)]
    quick_eval = ["--accuracy_eval_samples", "4", "--accuracy_eval_max_new_tokens", "8"] if quick else []
    sft_dir = report_dir / "sft"
    if not (sft_dir / "model.safetensors").exists():
        timings["SFT"] = run_stage("sft", [
            str(SRC / "sft.py"), str(RECIPES / "webpage_sft.yaml"), *common, "--model_name_or_path", str(model_dir),
            "--output_dir", str(sft_dir), "--num_demonstrations", str(num_demonstrations),
            "--num_train_epochs", str(sft_epochs), *quick_eval], logs)
    grpo_dir = report_dir / "grpo"
    # GRPO runs alone, so it keeps torch's default threads (every core), as SFT does.
    if not (grpo_dir / "model.safetensors").exists():
        quick_rl = ["--max_completion_length", "8", "--accuracy_eval_steps", "0", "--save_steps", "1"] if quick else []
        timings["RLVR (GRPO)"] = run_stage("grpo", [
            str(SRC / "grpo.py"), str(RECIPES / "webpage_grpo.yaml"), *common, "--model_name_or_path", str(sft_dir),
            "--output_dir", str(grpo_dir), "--max_steps", str(grpo_steps),
            "--accuracy_eval_steps", str(max(grpo_steps // 4, 1)), *quick_eval, *quick_rl], logs)
    eval_start = time.perf_counter()
    rows = evaluate_all({"no-change baseline": None, "sft": sft_dir, "rlvr": grpo_dir}, data_dir,
                        report_dir / "eval", eval_samples, max_new_tokens, logs)
    timings["evaluation"] = time.perf_counter() - eval_start
    timings["total"] = time.perf_counter() - start
    plot_curves(grpo_dir, report_dir / "curves.png")
    settings = {"num_demonstrations": num_demonstrations, "sft_epochs": sft_epochs, "grpo_steps": grpo_steps,
                "eval_samples": eval_samples, "quick": quick}
    write_report(report_dir, rows, timings, settings)
    print((report_dir / "report.md").read_text())
    print(f"report: {report_dir / 'report.md'}")
    return {"rows": rows, "timings_s": timings}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output_dir", default="runs/demo")
    parser.add_argument("--quick", action="store_true", help="seconds-long stages, for tests")
    parser.add_argument("--eval_samples", type=int, default=250, help="rows per held-out split to evaluate")
    parser.add_argument("--grpo_steps", type=int, default=200)
    parser.add_argument("--num_demonstrations", type=int, default=200)
    parser.add_argument("--sft_epochs", type=float, default=10)
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    run_webpage_demo(Path(args.output_dir), args.quick, args.eval_samples, args.grpo_steps, args.num_demonstrations,
                     args.sft_epochs)


if __name__ == "__main__":
    main()
