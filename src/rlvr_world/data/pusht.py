"""PushT episodes from the gym-pusht simulator, rendered headless, as an HF dataset.

A scripted, noisy pushing policy drives the agent: it picks a point on the T and a push
direction (mostly towards the goal), travels round the T to the far side, and pushes through,
then plans the next push. Frames are drawn at the simulator's native 512x512 and area-resized
to the requested size (gym-pusht's own bilinear resize aliases badly when shrinking 8x).

Per step the dataset keeps the frame, the action (the agent's target position in
``[0, 512]^2``), the simulator state (agent xy, block xy and angle, world units) and the goal
coverage / success signal of that frame.

CLI: ``python src/make_dataset.py pusht --output_dir DIR --num_episodes N --episode_length T
--image_size 64 --seed S``.
"""

from __future__ import annotations

import argparse
import math
import os
import shlex
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from .frames import (
    ACTIONS,
    EPISODE_INDEX,
    FRAMES,
    NUM_FRAMES,
    episode_features,
    split_counts,
    write_episode_dataset,
)

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")  # pygame draws off-screen; no display needed
os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")

WORLD_SIZE = 512.0
GOAL_XY = np.array([256.0, 256.0])
AGENT_RADIUS = 15.0
# Anything within this distance of the T's centroid is clear of it (its farthest point is 79
# world units away, plus the agent's radius and a margin).
TEE_CLEARANCE = 105.0
# The T in body coordinates (gym-pusht `add_tee`): bar and stem rectangles (x0, x1, y0, y1).
TEE_RECTS = ((-60.0, 60.0, 0.0, 30.0), (-15.0, 15.0, 30.0, 120.0))
# The agent is kinematic: walls do not stop it (nor the T it pushes), so targets stay this far
# inside the border (walls end 7 units in, the agent's radius is 15), which also keeps the agent
# out of the wall band that the frame parser reads for the T only.
TARGET_MARGIN = 30.0
TEE_CENTROID = np.array([0.0, (3600 * 15 + 2700 * 75) / 6300])


# ---------------------------------------------------------------------------------------- policy


def _rotation(angle: float) -> np.ndarray:
    c, s = math.cos(angle), math.sin(angle)
    return np.array([[c, -s], [s, c]])


def tee_distance(point: np.ndarray, block_pose: np.ndarray) -> float:
    """Distance from a world point to the T (0 inside)."""
    local = _rotation(block_pose[2]).T @ (point - block_pose[:2])
    distances = []
    for x0, x1, y0, y1 in TEE_RECTS:
        dx = max(x0 - local[0], 0.0, local[0] - x1)
        dy = max(y0 - local[1], 0.0, local[1] - y1)
        distances.append(math.hypot(dx, dy))
    return min(distances)


def tee_corners(block_pose: np.ndarray) -> np.ndarray:
    """World coordinates ``[8, 2]`` of the T's corners."""
    local = np.array([(x, y) for x0, x1, y0, y1 in TEE_RECTS for x in (x0, x1) for y in (y0, y1)])
    return block_pose[:2] + local @ _rotation(block_pose[2]).T


def pushes_into_wall(block_pose: np.ndarray, direction: np.ndarray, margin: float = 30.0) -> bool:
    """Whether pushing along ``direction`` drives a T corner that is near a wall into it."""
    corners = tee_corners(block_pose)
    near_low = corners.min(axis=0) < margin
    near_high = corners.max(axis=0) > WORLD_SIZE - margin
    return bool(np.any(near_low & (direction < 0)) or np.any(near_high & (direction > 0)))


class ScriptedPushPolicy:
    """A noisy pushing heuristic for PushT that produces informative contact-rich motion.

    Each plan picks a random point on the T and a push direction (towards the goal with
    probability ``goal_bias``, otherwise uniform), walks back along that direction until the
    agent fits clear of the T, approaches that spot (going round the T when it is in the way),
    then pushes through for a few steps. Occasionally it wanders to a random spot instead.
    Actions are target positions that lead the agent by at most ``lead`` world units, plus
    Gaussian noise; speed and noise are drawn per episode.
    """

    def __init__(self, rng: np.random.Generator, goal_bias: float = 0.7, wander_prob: float = 0.1):
        self.rng = rng
        self.goal_bias = goal_bias
        self.wander_prob = wander_prob
        self.lead = rng.uniform(25.0, 60.0)  # the PD controller moves ~half the lead per step
        self.noise = rng.uniform(1.0, 6.0)
        self._phase = "plan"
        self._steps_left = 0
        self._waypoint = np.zeros(2)
        self._direction = np.zeros(2)

    def __call__(self, agent_xy: np.ndarray, block_pose: np.ndarray) -> np.ndarray:
        if self._phase == "plan":
            self._plan(agent_xy, block_pose)
        if self._phase in ("approach", "wander"):
            self._steps_left -= 1
            if np.linalg.norm(self._waypoint - agent_xy) < 8.0:
                self._phase, self._steps_left = ("push", int(self.rng.integers(4, 15))) if self._phase == "approach" else ("plan", 0)
            elif self._steps_left <= 0:
                self._phase = "plan"
        if self._phase == "push":
            self._steps_left -= 1
            if self._steps_left <= 0 or pushes_into_wall(block_pose, self._direction):
                self._phase = "plan"
            target = agent_xy + self._direction * self.lead
        else:
            target = self._toward(agent_xy, self._route(agent_xy, block_pose))
        target = target + self.rng.normal(0.0, self.noise, size=2)
        return np.clip(target, TARGET_MARGIN, WORLD_SIZE - TARGET_MARGIN).astype(np.float32)

    def _plan(self, agent_xy: np.ndarray, block_pose: np.ndarray) -> None:
        if self.rng.random() < self.wander_prob:
            self._phase, self._steps_left = "wander", 15
            self._waypoint = self.rng.uniform(60.0, WORLD_SIZE - 60.0, size=2)
            return
        rotation = _rotation(block_pose[2])
        for _ in range(10):
            x0, x1, y0, y1 = TEE_RECTS[0] if self.rng.random() < 3600 / 6300 else TEE_RECTS[1]
            contact = block_pose[:2] + rotation @ np.array([self.rng.uniform(x0, x1), self.rng.uniform(y0, y1)])
            if self.rng.random() < self.goal_bias:
                heading = math.atan2(*(GOAL_XY - contact)[::-1]) + self.rng.normal(0.0, math.radians(30))
            else:
                heading = self.rng.uniform(-math.pi, math.pi)
            direction = np.array([math.cos(heading), math.sin(heading)])
            if pushes_into_wall(block_pose, direction):
                continue
            back = next(
                (d for d in range(0, 200, 4) if tee_distance(contact - d * direction, block_pose) > AGENT_RADIUS + 5),
                None,
            )
            if back is None:
                continue
            start = contact - back * direction
            if np.all((start > 25.0) & (start < WORLD_SIZE - 25.0)):  # reachable inside the walls
                self._phase, self._steps_left = "approach", 25
                self._waypoint, self._direction = start, direction
                return
        self._phase, self._steps_left = "wander", 10
        self._waypoint = self.rng.uniform(60.0, WORLD_SIZE - 60.0, size=2)

    def _route(self, agent_xy: np.ndarray, block_pose: np.ndarray) -> np.ndarray:
        """The waypoint, or a detour point beside the T when the straight path runs into it."""
        if self._phase != "approach":
            return self._waypoint
        path = agent_xy + np.linspace(0.0, 1.0, 12)[:, None] * (self._waypoint - agent_xy)
        if min(tee_distance(p, block_pose) for p in path[1:-1]) > AGENT_RADIUS + 2:
            return self._waypoint
        centroid = block_pose[:2] + _rotation(block_pose[2]) @ TEE_CENTROID
        u_agent, u_goal = _unit(agent_xy - centroid), _unit(self._waypoint - centroid)
        bisector = u_agent + u_goal
        if np.linalg.norm(bisector) < 1e-3:  # straight across: go round either side
            bisector = np.array([-u_agent[1], u_agent[0]])
        return centroid + TEE_CLEARANCE * _unit(bisector)

    def _toward(self, agent_xy: np.ndarray, point: np.ndarray) -> np.ndarray:
        offset = point - agent_xy
        distance = np.linalg.norm(offset)
        return point if distance <= self.lead else agent_xy + offset / distance * self.lead


def _unit(vector: np.ndarray) -> np.ndarray:
    norm = np.linalg.norm(vector)
    return vector / norm if norm > 1e-9 else np.array([1.0, 0.0])


# ---------------------------------------------------------------------------------------- episodes


@dataclass
class PushTEpisode:
    frames: np.ndarray  # uint8 [T, H, W, 3]
    actions: np.ndarray  # float32 [T, 2], target positions in [0, 512]^2
    agent_pos: np.ndarray  # float32 [T, 2], world units
    block_pose: np.ndarray  # float32 [T, 3], x, y (world units) and angle in [0, 2 pi)
    coverage: np.ndarray  # float32 [T], fraction of the goal T covered
    success: np.ndarray  # bool [T], coverage above the simulator's 95% threshold


_ENV = None


def make_env():
    """A gym-pusht env rendering 512x512 pixels (one per process; reset re-creates the physics)."""
    global _ENV
    if _ENV is None:
        from gym_pusht.envs import PushTEnv

        _ENV = PushTEnv(obs_type="pixels", render_mode="rgb_array", observation_width=512, observation_height=512)
    return _ENV


def resize_frame(frame: np.ndarray, image_size: tuple[int, int]) -> np.ndarray:
    """Area resize (exact box average when shrinking) of a uint8 ``[H, W, 3]`` frame."""
    import cv2

    height, width = image_size
    if frame.shape[:2] == (height, width):
        return frame
    shrinking = height <= frame.shape[0] and width <= frame.shape[1]
    return cv2.resize(frame, (width, height), interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)


def generate_episode(seed: int, episode_length: int, image_size: tuple[int, int] = (64, 64)) -> PushTEpisode:
    """One episode of ``episode_length`` frames from a seeded initial state and policy."""
    env = make_env()
    rng = np.random.default_rng(seed)
    policy = ScriptedPushPolicy(rng)
    pixels, info = env.reset(seed=seed)
    coverage = env._get_coverage()  # reset() reports no coverage; the step infos do
    frames, actions, agent_pos, block_pose, coverages = [], [], [], [], []
    for t in range(episode_length):
        frames.append(resize_frame(pixels, image_size))
        agent_pos.append(info["pos_agent"])
        block = np.array(info["block_pose"], dtype=np.float64)
        block[2] = block[2] % (2 * math.pi)
        block_pose.append(block)
        coverages.append(coverage)
        actions.append(policy(np.asarray(info["pos_agent"], dtype=np.float64), block))
        if t + 1 < episode_length:
            pixels, _, _, _, info = env.step(actions[-1])
            coverage = info["coverage"]
    coverage = np.asarray(coverages, dtype=np.float32)
    return PushTEpisode(
        frames=np.stack(frames),
        actions=np.stack(actions).astype(np.float32),
        agent_pos=np.stack(agent_pos).astype(np.float32),
        block_pose=np.stack(block_pose).astype(np.float32),
        coverage=coverage,
        success=coverage > env.success_threshold,
    )


def episode_seed(seed: int, episode_index: int) -> int:
    """Independent 31-bit seeds per (dataset seed, episode)."""
    return int(np.random.SeedSequence([seed, episode_index]).generate_state(1)[0] >> 1)


# ---------------------------------------------------------------------------------------- dataset


def pusht_features(image_size: tuple[int, int]):
    import datasets

    return episode_features(
        image_size,
        action_dim=2,
        extra={
            "seed": datasets.Value("int64"),
            "agent_pos": datasets.Array2D(shape=(None, 2), dtype="float32"),
            "block_pose": datasets.Array2D(shape=(None, 3), dtype="float32"),
            "coverage": datasets.Sequence(datasets.Value("float32")),
            "success": datasets.Sequence(datasets.Value("bool")),
        },
    )


def _generate_rows(items: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    from tqdm.auto import tqdm

    for item in tqdm(items, desc=f"PushT {items[0]['split']}", unit="episode"):
        episode = generate_episode(item["seed"], item["episode_length"], tuple(item["image_size"]))
        yield {
            EPISODE_INDEX: item["episode_index"],
            NUM_FRAMES: len(episode.frames),
            FRAMES: episode.frames,
            ACTIONS: episode.actions,
            "seed": item["seed"],
            "agent_pos": episode.agent_pos,
            "block_pose": episode.block_pose,
            "coverage": episode.coverage,
            "success": episode.success,
        }


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="make_dataset.py pusht",
        description="Generate PushT episodes (gym-pusht, scripted noisy pushing policy) as an HF dataset.",
    )
    parser.add_argument("--output_dir", required=True, help="Where to save the DatasetDict and its README.md.")
    parser.add_argument("--num_episodes", type=int, default=1000)
    parser.add_argument("--episode_length", type=int, default=32, help="Frames per episode.")
    parser.add_argument("--image_size", type=int, nargs="+", default=[64], metavar="N", help="N, or H W.")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--validation_fraction", type=float, default=0.1)
    parser.add_argument("--test_fraction", type=float, default=0.1)
    parser.add_argument("--num_proc", type=int, default=1, help="Processes generating episodes.")
    return parser


def main(argv: list[str] | None = None):
    args = build_parser().parse_args(argv)
    if len(args.image_size) not in (1, 2) or min(args.image_size) < 1:
        raise SystemExit("--image_size takes one or two positive integers")
    image_size = (args.image_size[0], args.image_size[-1])
    if args.num_episodes < 1 or args.episode_length < 1:
        raise SystemExit("--num_episodes and --episode_length must be positive")
    counts = split_counts(args.num_episodes, args.validation_fraction, args.test_fraction)

    splits, first = {}, 0
    for name, count in zip(("train", "validation", "test"), counts):
        items = [
            {
                "split": name,
                "episode_index": index,
                "seed": episode_seed(args.seed, index),
                "episode_length": args.episode_length,
                "image_size": list(image_size),
            }
            for index in range(first, first + count)
        ]
        splits[name], first = (_generate_rows, items), first + count

    started = time.perf_counter()
    command = "python src/make_dataset.py pusht " + shlex.join(argv if argv is not None else sys.argv[1:])
    dataset = write_episode_dataset(
        args.output_dir,
        splits,
        pusht_features(image_size),
        card_context=_card_context(args, image_size, command),
        num_proc=args.num_proc,
    )
    elapsed = time.perf_counter() - started
    print(
        f"Wrote {args.num_episodes} PushT episodes x {args.episode_length} frames at "
        f"{image_size[0]}x{image_size[1]} to {args.output_dir} in {elapsed:.1f} s "
        f"({args.num_episodes / elapsed:.1f} episodes/s): "
        + ", ".join(f"{name} {len(split)}" for name, split in dataset.items())
    )
    return dataset


def _card_context(args: argparse.Namespace, image_size: tuple[int, int], command: str) -> dict[str, Any]:
    return {
        "pretty_name": "PushT episodes (gym-pusht, scripted pushing policy)",
        "source": "pusht",
        "license": "mit",
        "command": command,
        "image_size": f"{image_size[0]}x{image_size[1]}",
        "action_dim": 2,
        "description": (
            "Episodes of the PushT task simulated with the `gym-pusht` package (pymunk physics). "
            "A scripted, noisy pushing policy picks a point on the grey T and a push direction "
            "(towards the goal 70% of the time), goes round the T to the far side and pushes through. "
            "Frames are drawn at the simulator's native 512x512 and area-resized."
        ),
        "actions": "target position of the agent (world units, `[0, 512]^2`), tracked by the simulator's PD controller",
        "columns": [
            ("seed", "int64", "seed of the episode's initial state and policy noise"),
            ("agent_pos", "float32 [T, 2]", "agent position, world units (x right, y down)"),
            ("block_pose", "float32 [T, 3]", "T body origin x, y (world units) and angle in [0, 2pi)"),
            ("coverage", "float32 [T]", "fraction of the goal T covered by the block in this frame"),
            ("success", "bool [T]", "coverage above gym-pusht's 95% success threshold"),
        ],
        "notes": [
            (
                "World units map to pixel coordinates of an H x W frame as "
                "`x_px = x * W / 512 - 0.5`, `y_px = y * H / 512 - 0.5` (pixel centres at integers)."
            ),
            (
                f"Splits by episode: {args.validation_fraction:.0%} validation, {args.test_fraction:.0%} test "
                f"(the last episodes), seed {args.seed}; episode i uses seed SeedSequence([seed, i])."
            ),
            "The episode continues after success (fixed length); `success` marks the frames that count.",
        ],
    }
