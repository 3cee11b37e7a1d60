"""Is a metric change from training more than any change of the weights? A random-update control.

    python bench/bench_random_update.py --changed runs/demo/video/mle_multi_step     # the demo's multi-step control

Builds BASE + a random update of the same per-tensor size as CHANGED - BASE (Gaussian noise per tensor, scaled to
the norm of that tensor's change; seeded), evaluates it as the video demo evaluates its mode (the same test windows
and decoding), and prints it beside the base and the changed model. If the random update moves a metric as the
training did, the training's change of that metric says nothing about what it learnt (for example the greedy
repetition rate: an exact tie between two frames' tokens breaks under any perturbation).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from rlvr_world.demos import video as demo  # noqa: E402

WEIGHTS = "model.safetensors"


def random_update(base: Path, changed: Path, out: Path, seed: int = 0) -> float:
    """Write BASE + noise with the per-tensor norms of CHANGED - BASE into `out`; the update's size relative to
    the base weights' norm."""
    if out.exists():
        shutil.rmtree(out)
    shutil.copytree(base, out, ignore=shutil.ignore_patterns("checkpoint-*", "tokenized"))
    before, after = load_file(base / WEIGHTS), load_file(changed / WEIGHTS)
    generator = torch.Generator().manual_seed(seed)
    moved, update_sq, weight_sq = {}, 0.0, 0.0
    for name, weight in before.items():
        change = after[name].float() - weight.float()
        noise = torch.randn(weight.shape, generator=generator)
        noise *= change.norm() / noise.norm().clamp_min(1e-12)
        moved[name] = (weight.float() + noise).to(weight.dtype).contiguous()
        update_sq += float(change.norm() ** 2)
        weight_sq += float(weight.float().norm() ** 2)
    save_file(moved, out / WEIGHTS, metadata={"format": "pt"})
    return (update_sq / weight_sq) ** 0.5


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mode", default="multi_step", choices=["single_step", "multi_step"])
    parser.add_argument("--base", default=None, help="default: the demo's base of --mode")
    parser.add_argument("--changed", required=True, help="a model trained from the base (its final weights)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output_dir", default=str(REPO / "runs" / "bench" / "random_update"))
    args = parser.parse_args(argv)

    out = Path(args.output_dir).resolve()
    demo.OUT = out  # the demo's stages log under OUT/logs
    base = Path(args.base) if args.base else demo.BASES[args.mode]
    changed = Path(args.changed)
    model = out / f"random_update_seed{args.seed}"
    size = random_update(base, changed, model, args.seed)
    rows, timings = {}, {}
    for name, path in (("base", base), ("changed", changed), ("random update", model)):
        rows[name] = demo.evaluate(args.mode, path, demo.DATA, out / "eval" / f"{name.replace(' ', '_')}_{path.name}",
                                   timings, sys.executable, demo.EVAL_ARGS[args.mode])
    print(f"update size (relative to the base weights' norm): {size:.4f}; {args.mode}, {demo.EVAL_ARGS[args.mode]}")
    print("| model | MSE | MAE + LPIPS | repetition |\n|---|---|---|---|")
    for name, m in rows.items():
        print(f"| {name} | {m['mse']:.3e} | {m['mae'] + m['lpips']:.4f} | {100 * m['repetition_rate']:.1f}% |")
    result = {"update_size": size, "rows": rows}
    (out / "random_update.json").write_text(json.dumps(result, indent=2) + "\n")
    return result


if __name__ == "__main__":
    main()
