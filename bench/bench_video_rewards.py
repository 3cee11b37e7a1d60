"""Video reward cost per GRPO batch: one decode shared by every callable, then each metric term.

    python bench/bench_video_rewards.py [--tokenizer runs/tiny/tokenizer_pusht] [--batch 64] [--group 8] [--threads 1]

Scores `batch` single-step completions of random codes (the work does not depend on the codes)
against random 64x64 targets, `group` completions per target as in a GRPO group, the way TRL calls the registry's callables in one step: prints the
decode time, the time of each term on the decoded frames (LPIPS with VGG, the paper's, and AlexNet),
and the step's reward time for `video_mae` + `video_ssim` + `video_mae_lpips` with the shared decode
against what three separate decodes would cost. Without `--tokenizer` a tokenizer of the tiny
recipe's size with random weights decodes (same cost as a trained one).
"""

import argparse
import time

import numpy as np
import torch

import rlvr_world  # noqa: F401  (Auto-class registration)
from rlvr_world.metrics.video import lpips_available
from rlvr_world.rewards import get_reward_funcs
from rlvr_world.video import rewards as video_rewards
from rlvr_world.video.actions import ActionBinner
from rlvr_world.video.processor import SINGLE_STEP, VideoWorldModelProcessor
from rlvr_world.video.rewards import VideoRewardScorer

IMAGE = (64, 64)


def tokenizer(path: str | None):
    from transformers import AutoModel

    from rlvr_world.video.tokenizer import VQGANFSQConfig, VQGANFSQModel

    if path:
        return AutoModel.from_pretrained(path).eval()
    config = VQGANFSQConfig(block_out_channels=[16, 32, 64], layers_per_block=1, norm_num_groups=4)
    return VQGANFSQModel(config).eval()


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tokenizer", default=None)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--group", type=int, default=8, help="completions per prompt (they share a target)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    binner = ActionBinner(low=[0.0, 0.0], high=[512.0, 512.0], num_bins=256)
    processor = VideoWorldModelProcessor.from_tokenizer(tokenizer(args.tokenizer), None, SINGLE_STEP, binner, IMAGE, 4)
    g = torch.Generator().manual_seed(0)
    codes = torch.randint(0, processor.num_visual_codes, (args.batch, processor.tokens_per_frame), generator=g)
    call = dict(
        prompts=[str(i) for i in range(args.batch)],
        completion_ids=[row.tolist() + [processor.eos_token_id] for row in codes],
        target_frames=[np.random.default_rng(i // args.group).integers(0, 256, (1, *IMAGE, 3), dtype=np.uint8)
                       for i in range(args.batch)],
        video_processor=[processor] * args.batch,
    )
    print(f"{args.batch} single-step completions, {IMAGE[0]}x{IMAGE[1]} frames "
          f"({processor.tokens_per_frame} tokens), groups of {args.group} sharing a target, {args.threads} thread(s), "
          f"tokenizer: {args.tokenizer or 'random, tiny size'}")

    scorer = VideoRewardScorer()
    scorer.decoded(**call)  # warm-up (first-call allocations)
    scorer = VideoRewardScorer()
    decode = timed(lambda: scorer.decoded(**call))
    print(f"  decode + parse + targets {decode:7.3f} s  ({args.batch / decode:7.1f} completions/s)")
    batch = scorer.last_batch
    terms = ["mae", "mse", "psnr", "ssim"] + (["lpips"] if lpips_available("vgg") else [])
    for term in terms:
        seconds = timed(lambda: scorer.term(batch, term))  # noqa: B023
        print(f"  {term:24s} {seconds:7.3f} s  ({args.batch / seconds:7.1f} frames/s)")
    if lpips_available("alex"):
        alex = VideoRewardScorer(lpips_net="alex")
        alex.decoded(**call)
        seconds = timed(lambda: alex.term(alex.last_batch, "lpips"))
        print(f"  {'lpips (alex)':24s} {seconds:7.3f} s  ({args.batch / seconds:7.1f} frames/s)")

    names = ["video_mae", "video_ssim"] + (["video_mae_lpips"] if lpips_available("vgg") else [])
    video_rewards._SHARED.clear()
    funcs = get_reward_funcs(names)
    shared = timed(lambda: [f(**call) for f in funcs])
    decodes = video_rewards.shared_scorer().num_decoded // args.batch
    print(f"  step reward ({' + '.join(names)}): {shared:.3f} s with {decodes} shared decode; "
          f"separate decodes would add {(len(names) - 1) * decode:.3f} s")


if __name__ == "__main__":
    main()
