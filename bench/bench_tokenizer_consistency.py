"""Temporal consistency of trained per-frame tokenizers: how many tokens change between consecutive
frames where the pixels did not change, and how far from the motion.

    python bench/bench_tokenizer_consistency.py runs/tiny/tokenizer_pusht [OTHER_TOKENIZER ...] \
        [--dataset runs/data/pusht64_600 --split validation --num_episodes 8]

For each pair of consecutive frames of the first `--num_episodes` episodes, a token cell (the pixels
one token covers) is *static* when none of its pixels changed. A world model must predict every token
that changes; changes in static cells carry no pixel motion, only the encoder's reaction to motion
elsewhere in its receptive field (and FSQ rounding near a level boundary), so they are noise a
predictor can learn only approximately. Printed per tokenizer: the share of changed tokens, of moving
cells, P(token changed | static cell), the share of all changes that fall in static cells, and
P(changed) by Chebyshev distance (in cells) from the nearest moving cell.
"""

from __future__ import annotations

import argparse
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

import datasets
import numpy as np
import torch
from scipy.ndimage import distance_transform_cdt
from transformers import AutoModel

import rlvr_world.video.tokenizer  # noqa: F401  (registers the tokenizers with the Auto classes)
from rlvr_world.data.frames import frames_to_tensor

DISTANCE_BANDS = [(1, 1), (2, 2), (3, 4), (5, None)]


def consistency(tokenizer, episodes: datasets.Dataset) -> dict[str, float]:
    changed, moving = [], []
    factor = tokenizer.config.downsample_factor
    for episode in episodes:
        frames = np.stack(episode["frames"])  # [T, H, W, 3] uint8
        with torch.no_grad():
            codes = tokenizer.encode(frames_to_tensor(frames[None]))[0]
        codes = codes.reshape(len(frames), -1).numpy()
        diff = np.abs(frames[1:].astype(np.int16) - frames[:-1].astype(np.int16)).max(-1)
        t, h, w = diff.shape
        cells = diff.reshape(t, h // factor, factor, w // factor, factor).max((2, 4)) > 0
        changed.append(codes[1:] != codes[:-1])
        moving.append(cells)
    changed, moving = np.concatenate(changed), np.concatenate(moving)  # [pairs, cells], [pairs, h, w]
    distance = np.stack([
        distance_transform_cdt(~m, metric="chessboard") if m.any() else np.full(m.shape, 10**6) for m in moving
    ]).reshape(len(moving), -1)
    moving = moving.reshape(len(moving), -1)
    static = ~moving
    result = {
        "tokens_changed": changed.mean(),
        "cells_moving": moving.mean(),
        "p_changed_static": changed[static].mean(),
        "changes_in_static_cells": (changed & static).sum() / max(changed.sum(), 1),
    }
    for low, high in DISTANCE_BANDS:
        band = (distance >= low) & (distance <= (high or 10**6))
        result[f"p_changed_{low}-{high or 'inf'}_cells_away"] = changed[band].mean() if band.any() else float("nan")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("tokenizers", nargs="+", help="saved per-frame tokenizer directories")
    parser.add_argument("--dataset", default="runs/data/pusht64_600")
    parser.add_argument("--split", default="validation")
    parser.add_argument("--num_episodes", type=int, default=8)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    split = datasets.load_from_disk(os.path.join(args.dataset, args.split))
    episodes = split.select(range(min(args.num_episodes, len(split))))
    for path in args.tokenizers:
        tokenizer = AutoModel.from_pretrained(path).eval()
        print(f"{path} ({len(episodes)} episodes of {args.dataset}/{args.split})")
        for name, value in consistency(tokenizer, episodes).items():
            print(f"  {name:32s} {value:.3f}")


if __name__ == "__main__":
    main()
