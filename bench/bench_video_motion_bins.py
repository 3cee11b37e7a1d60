"""Where a single-step PushT model loses or wins against copy-last-frame, by how far the agent moved.

    python bench/bench_video_motion_bins.py runs/tiny/eval_single_step_v2 runs/tiny/eval_single_step_v2_mbr

Reads each evaluation's `windows.jsonl` (per-window MSE of the model and of copy-last-frame) and the
simulator's agent positions from the evaluated split (`agent_pos`, world units; 8 per pixel at 64x64),
then prints, per bin of agent displacement in pixels, the windows, the model's mean MSE excess over copy,
that bin's share of the overall gap, and how often the model beats copy. Near-still windows are where a
likelihood-trained model's greedy choice costs most (see the README's single-step section).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

BINS = (0.0, 0.25, 1.0, 2.0, 4.0, float("inf"))


def motion_table(eval_dir: Path) -> list[dict]:
    from rlvr_world.data import load_dataset_dir

    metrics = json.loads((eval_dir / "metrics.json").read_text())
    if metrics["context_frames"] != 1 or metrics["future_frames"] != 1:
        raise ValueError(f"{eval_dir}: a single-step evaluation with one context frame is expected")
    rows = [json.loads(line) for line in (eval_dir / "windows.jsonl").read_text().splitlines() if line.strip()]
    split = load_dataset_dir(metrics["dataset"], metrics["split"])
    if "agent_pos" not in split.column_names:
        raise ValueError(f"{metrics['dataset']} [{metrics['split']}]: no agent_pos column (PushT data is needed)")
    scale = metrics["image_size"][0] / 512.0  # world units -> pixels
    agent = split.select_columns(["agent_pos"])  # not the frames
    positions = {i: np.asarray(agent[i]["agent_pos"]) for i in sorted({r["episode_index"] for r in rows})}
    moved = np.array([np.linalg.norm(positions[r["episode_index"]][r["start"] + 1] - positions[r["episode_index"]][r["start"]])
                      * scale for r in rows])
    excess = np.array([r["model_mse"][0] - r["copy_last_frame_mse"][0] for r in rows])
    table = []
    for low, high in zip(BINS, BINS[1:]):
        inside = (moved >= low) & (moved < high)
        if inside.any():
            table.append({"moved_px": f"{low:g}-{high:g}", "windows": int(inside.sum()),
                          "mean_excess_mse": float(excess[inside].mean()), "share_of_gap": float(excess[inside].sum() / len(rows)),
                          "model_beats_copy": float((excess[inside] < 0).mean())})
    table.append({"moved_px": "all", "windows": len(rows), "mean_excess_mse": float(excess.mean()),
                  "share_of_gap": float(excess.mean()), "model_beats_copy": float((excess < 0).mean())})
    return table


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("eval_dirs", nargs="+", type=Path, help="outputs of src/evaluate.py --task video_single_step")
    args = parser.parse_args(argv)
    for eval_dir in args.eval_dirs:
        print(f"\n{eval_dir} ({json.loads((eval_dir / 'metrics.json').read_text())['sampling']})")
        print(f"{'agent moved (px)':>17} {'windows':>8} {'model - copy MSE':>17} {'adds to the mean':>17} {'model wins':>11}")
        for row in motion_table(eval_dir):
            print(f"{row['moved_px']:>17} {row['windows']:>8} {row['mean_excess_mse']:>+17.2e} {row['share_of_gap']:>+17.2e}"
                  f" {row['model_beats_copy']:>10.0%}")


if __name__ == "__main__":
    main()
