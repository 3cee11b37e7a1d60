"""Which part of a decoded frame decides a multi-step GRPO group's advantages?

    python bench/bench_video_group_spread.py                      # the tiny multi-step base, 16 training windows
    python bench/bench_video_group_spread.py --model runs/demo/video/grpo_multi_step --split test

For each window it samples a group as GRPO does (G rollouts at the recipe's temperature, no top-k) and the greedy
rollout the evaluation scores, decodes them, and splits the variance of the paper's reward -(MAE + LPIPS) within
the group into its terms: LPIPS, the full-frame MAE, and the part of that MAE on the pixels that move in the
ground truth (`rlvr_world.metrics.video.moving_pixels`, frames 1..T-1). GRPO's advantages are these deviations
divided by the group's spread, so a term with no spread teaches nothing. It also prints the motion term
(`video_motion_mae`: MAE over the moving pixels alone) and its correlation with the reward: does the reward know
which samples moved the objects right? And the greedy rollout's rank among the samples and its repetition rate.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from rlvr_world.evaluation.video import load_windows  # noqa: E402
from rlvr_world.metrics.video import LPIPS, mae, moving_pixels, moving_region_mae  # noqa: E402
from rlvr_world.video.generation import repetition_flags, rollout  # noqa: E402
from rlvr_world.video.processor import VideoWorldModelProcessor  # noqa: E402


def group_terms(frames: torch.Tensor, target: torch.Tensor, lpips: LPIPS) -> dict[str, torch.Tensor]:
    """Per rollout ``[N]``: the reward's terms on decoded ``frames [N, T, 3, H, W]`` against ``target [T, 3, H, W]``."""
    moving = moving_pixels(target).float()  # [T-1, H, W]
    error = (frames[:, 1:] - target[1:]).abs().mean(2)  # [N, T-1, H, W]
    with torch.no_grad():
        distance = torch.stack([lpips.distance_to(f[None], target)[0] for f in frames])  # [N, T]
    full_mae = mae(frames, target.expand_as(frames)).mean(1)
    return {
        "mae": full_mae,
        "lpips": distance.mean(1),
        # the moving pixels' share of the full-frame MAE (frames 1..T-1, scaled to all T frames' mean)
        "mae_moving_part": (error * moving).mean((2, 3)).sum(1) / frames.shape[1],
        "motion_mae": moving_region_mae(frames, target.expand_as(frames)).mean(1),
        "reward": -(full_mae + distance.mean(1)),
    }


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=str(REPO / "runs" / "tiny" / "world_model_pusht_multi_step"))
    parser.add_argument("--dataset", default=str(REPO / "runs" / "data" / "pusht64_600"))
    parser.add_argument("--split", default="train")
    parser.add_argument("--windows", type=int, default=16, help="seeded draw of windows (stride 4, as GRPO's)")
    parser.add_argument("--num_generations", type=int, default=8)
    parser.add_argument("--temperature", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)

    from transformers import AutoModelForCausalLM

    import rlvr_world.video.world_model  # noqa: F401  (registers the world model with the Auto classes)

    torch.set_num_threads(args.threads)
    model = AutoModelForCausalLM.from_pretrained(args.model).eval()
    processor = VideoWorldModelProcessor.from_pretrained(args.model)
    k, horizon = processor.num_context_frames, processor.num_future_frames
    windows = load_windows(args.dataset, args.split, k, horizon, stride=4)
    chosen = np.random.default_rng(args.seed).permutation(len(windows))[: args.windows]
    lpips = LPIPS("vgg")
    rows = []
    for n, index in enumerate(chosen):
        item = windows[int(index)]
        pixels, actions = item["pixel_values"][None], item["actions"][None]
        prompt = processor.build_prompt(pixels[:, :k], actions[:, :k])
        future = processor.action_tokens(actions[:, k : k + horizon - 1])
        with torch.no_grad():
            greedy = rollout(model, processor, prompt, future, do_sample=False)
            group = rollout(model, processor, prompt, future, temperature=args.temperature,
                            num_return_sequences=args.num_generations, seed=args.seed + int(index))
            codes = torch.cat([greedy.frame_codes, group.frame_codes])
            context = processor.context_codes_from_prompt(prompt).repeat(len(codes), 1, 1, 1)
            frames = processor.decode_frames(codes, context).float().clamp(0, 1)
        terms = group_terms(frames, pixels[0, k : k + horizon].float(), lpips)
        samples = {name: value[1:] for name, value in terms.items()}
        repeats = torch.cat([repetition_flags(greedy.frame_codes), repetition_flags(group.frame_codes)]).float().mean(1)
        motion, reward = samples["motion_mae"].numpy(), samples["reward"].numpy()
        row = {f"var_{name}": float(value.var()) for name, value in samples.items()}
        row.update(
            corr_motion_reward=float(np.corrcoef(-motion, reward)[0, 1]) if motion.std() > 0 else float("nan"),
            greedy_reward=float(terms["reward"][0]), sample_reward=float(reward.mean()),
            greedy_rank=int((samples["reward"] > terms["reward"][0]).sum()),  # samples that beat greedy
            greedy_motion_mae=float(terms["motion_mae"][0]), sample_motion_mae=float(motion.mean()),
            greedy_repetition=float(repeats[0]), sample_repetition=float(repeats[1:].mean()),
        )
        rows.append(row)
        print(f"window {n + 1}/{len(chosen)}: " + json.dumps({key: float(f"{v:.4g}") for key, v in row.items()}), flush=True)
    mean = {key: float(np.nanmean([r[key] for r in rows])) for key in rows[0]}
    share = {name: mean[f"var_{name}"] / mean["var_reward"] for name in ("lpips", "mae", "mae_moving_part")}
    summary = {"model": args.model, "split": args.split, "windows": len(rows), "num_generations": args.num_generations,
               "temperature": args.temperature, "mean": mean, "variance_share_of_reward": share}
    print(json.dumps(summary, indent=2))
    return summary


if __name__ == "__main__":
    main()
