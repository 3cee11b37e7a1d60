"""RT-1 / Open X-Embodiment episodes (one ``.npz`` per episode) as an HF dataset.

Input layout (the reference's): a directory of ``.npz`` files, each holding ``image`` uint8
``[T, H, W, 3]`` and ``action`` float ``[T, D]`` (13 dimensions for RT-1). In sorted file order,
every 100th episode (``index % 100 == 0``) is held out as the test split; episodes with
``index % 100 == validation_offset`` form the validation split (ours, off with ``-1``); the rest
train.

CLI: ``python src/make_dataset.py rt1 --input_dir DIR --output_dir DIR [--image_size H W]``.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from .frames import (
    ACTIONS,
    EPISODE_INDEX,
    FRAMES,
    NUM_FRAMES,
    episode_features,
    write_episode_dataset,
)

TEST_EVERY = 100


def list_episode_files(input_dir: str | Path) -> list[Path]:
    """All ``.npz`` files under ``input_dir`` in sorted (relative path) order."""
    input_dir = Path(input_dir)
    files = sorted(input_dir.rglob("*.npz"), key=lambda path: path.relative_to(input_dir).as_posix())
    if not files:
        raise FileNotFoundError(f"No .npz episodes under {input_dir}")
    return files


def assign_split(index: int, validation_offset: int = 50) -> str:
    """The split of the episode at position ``index`` of the sorted file list."""
    if index % TEST_EVERY == 0:
        return "test"
    if validation_offset >= 0 and index % TEST_EVERY == validation_offset:
        return "validation"
    return "train"


def load_episode(path: str | Path, image_size: tuple[int, int] | None = None) -> dict[str, np.ndarray]:
    """Reads and checks one episode; resizes the frames when ``image_size`` (H, W) is given."""
    with np.load(path) as episode:
        missing = {"image", "action"} - set(episode.files)
        if missing:
            raise KeyError(f"{path} lacks {sorted(missing)} (has {episode.files})")
        frames, actions = episode["image"], episode["action"]
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"{path}: image must be [T, H, W, 3], got {frames.shape}")
    if actions.ndim != 2 or len(actions) != len(frames):
        raise ValueError(f"{path}: action must be [T, D] with T = {len(frames)}, got {actions.shape}")
    if frames.dtype != np.uint8:
        raise ValueError(f"{path}: image must be uint8, got {frames.dtype}")
    if image_size is not None and frames.shape[1:3] != tuple(image_size):
        frames = np.stack([_resize(frame, image_size) for frame in frames])
    return {"frames": frames, "actions": actions.astype(np.float32)}


def _resize(frame: np.ndarray, image_size: tuple[int, int]) -> np.ndarray:
    import cv2

    height, width = image_size
    shrinking = height <= frame.shape[0] and width <= frame.shape[1]
    return cv2.resize(frame, (width, height), interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)


def _generate_rows(items: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    from tqdm.auto import tqdm

    for item in tqdm(items, desc=f"RT-1 {items[0]['split']}", unit="episode"):
        image_size = tuple(item["image_size"]) if item["image_size"] else None
        episode = load_episode(item["path"], image_size)
        yield {
            EPISODE_INDEX: item["episode_index"],
            NUM_FRAMES: len(episode["frames"]),
            FRAMES: episode["frames"],
            ACTIONS: episode["actions"],
            "source_file": item["source_file"],
        }


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="make_dataset.py rt1",
        description="Convert RT-1 / OXE episodes (one .npz per episode: image [T,H,W,3], action [T,D]) to an HF dataset.",
    )
    parser.add_argument("--input_dir", required=True, help="Directory of .npz episodes (searched recursively).")
    parser.add_argument("--output_dir", required=True, help="Where to save the DatasetDict and its README.md.")
    parser.add_argument("--image_size", type=int, nargs=2, default=None, metavar=("H", "W"), help="Resize frames.")
    parser.add_argument(
        "--validation_offset",
        type=int,
        default=50,
        help="Episodes with index %% 100 == this form the validation split (-1: no validation episodes).",
    )
    parser.add_argument("--num_proc", type=int, default=1, help="Processes reading episodes.")
    return parser


def main(argv: list[str] | None = None):
    args = build_parser().parse_args(argv)
    if not -1 <= args.validation_offset < TEST_EVERY or args.validation_offset == 0:
        raise SystemExit("--validation_offset must be -1 or in 1..99 (0 is the test split)")
    input_dir = Path(args.input_dir)
    files = list_episode_files(input_dir)

    # The schema needs the frame size and action width: take them from the first episode.
    first = load_episode(files[0], args.image_size)
    image_size = first["frames"].shape[1:3]
    action_dim = first["actions"].shape[1]
    items: dict[str, list[dict[str, Any]]] = {"train": [], "validation": [], "test": []}
    for index, path in enumerate(files):
        split = assign_split(index, args.validation_offset)
        items[split].append(
            {
                "split": split,
                "episode_index": index,
                "path": str(path),
                "source_file": path.relative_to(input_dir).as_posix(),
                "image_size": list(args.image_size) if args.image_size else None,
            }
        )
    _check_shapes(files, image_size, action_dim, resized=args.image_size is not None)

    import datasets

    features = episode_features(image_size, action_dim, extra={"source_file": datasets.Value("string")})
    started = time.perf_counter()
    dataset = write_episode_dataset(
        args.output_dir,
        {name: (_generate_rows, split_items) for name, split_items in items.items()},
        features,
        card_context=_card_context(args, image_size, action_dim, argv),
        num_proc=args.num_proc,
    )
    print(
        f"Wrote {len(files)} RT-1 episodes to {args.output_dir} in {time.perf_counter() - started:.1f} s: "
        + ", ".join(f"{name} {len(split)}" for name, split in dataset.items())
    )
    return dataset


def _check_shapes(files: list[Path], image_size: tuple[int, int], action_dim: int, resized: bool) -> None:
    """Fails early (before any writing) when episodes disagree on frame size or action width."""
    for path in files:
        frames_shape, action_shape = _npz_shape(path, "image"), _npz_shape(path, "action")
        if action_shape[-1] != action_dim:
            raise ValueError(f"{path}: {action_shape[-1]} action dimensions, the first episode has {action_dim}")
        if not resized and tuple(frames_shape[1:3]) != tuple(image_size):
            raise ValueError(
                f"{path}: frames are {frames_shape[1:3]}, the first episode's are {tuple(image_size)}; "
                "pass --image_size H W to resize them all"
            )


def _npz_shape(path: Path, key: str) -> tuple[int, ...]:
    """Shape of one array in an ``.npz`` from its header, without decompressing the data."""
    with zipfile.ZipFile(path) as archive:
        if f"{key}.npy" not in archive.namelist():
            raise KeyError(f"{path} lacks {key!r}")
        with archive.open(f"{key}.npy") as stream:
            version = np.lib.format.read_magic(stream)
            read_header = (
                np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
            )
            return read_header(stream)[0]


def _card_context(args: argparse.Namespace, image_size: tuple[int, int], action_dim: int, argv) -> dict[str, Any]:
    return {
        "pretty_name": "RT-1 episodes (Open X-Embodiment npz)",
        "source": "rt1",
        "license": "cc-by-4.0",
        "command": "python src/make_dataset.py rt1 " + shlex.join(argv if argv is not None else sys.argv[1:]),
        "image_size": f"{image_size[0]}x{image_size[1]}",
        "action_dim": action_dim,
        "description": (
            "Robot manipulation episodes from RT-1 (Open X-Embodiment), converted from one `.npz` per "
            "episode (`image [T, H, W, 3]`, `action [T, D]`)."
        ),
        "actions": "the robot action vector of the source episode",
        "columns": [("source_file", "string", "the episode's `.npz` file, relative to the input directory")],
        "notes": [
            f"In sorted file order, every {TEST_EVERY}th episode (index % {TEST_EVERY} == 0) is the test split, "
            "as in the reference."
            + (
                f" Index % {TEST_EVERY} == {args.validation_offset} is the validation split."
                if args.validation_offset >= 0
                else " There is no validation episode."
            ),
            "Frames were resized with an area filter." if args.image_size else "Frames keep their source size.",
        ],
    }
