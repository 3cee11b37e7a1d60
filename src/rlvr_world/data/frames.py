"""Episode datasets of video frames and actions: schema, writing, fast reading, torch datasets.

Every video source (PushT, RT-1) is stored the same way: an HF ``DatasetDict`` saved with
``save_to_disk`` with ``train`` / ``validation`` / ``test`` splits, one row per episode:

- ``frames``: uint8 ``[T, H, W, 3]``, ``actions``: float32 ``[T, D]`` (``actions[t]`` is taken
  at ``frames[t]`` and leads to ``frames[t + 1]``), ``num_frames``: ``T``, ``episode_index``;
- plus source-specific per-step columns (PushT: simulator state, coverage, success).

The torch datasets here read frame ranges straight from the Arrow buffers, so sampling a
segment never decodes a whole episode (``datasets``' numpy/torch formatting would also widen
uint8 to int64).
"""

from __future__ import annotations

import math
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import datasets
import numpy as np
import pyarrow as pa
import torch

FRAMES = "frames"
ACTIONS = "actions"
NUM_FRAMES = "num_frames"
EPISODE_INDEX = "episode_index"
SPLITS = ("train", "validation", "test")


# ---------------------------------------------------------------------------------------- schema


def episode_features(
    image_size: tuple[int, int], action_dim: int, extra: dict[str, datasets.features.FeatureType] | None = None
) -> datasets.Features:
    """Columns shared by every video episode dataset, plus ``extra`` source-specific ones."""
    height, width = image_size
    features = {
        EPISODE_INDEX: datasets.Value("int64"),
        NUM_FRAMES: datasets.Value("int32"),
        FRAMES: datasets.Array4D(shape=(None, height, width, 3), dtype="uint8"),
        ACTIONS: datasets.Array2D(shape=(None, action_dim), dtype="float32"),
    }
    features.update(extra or {})
    return datasets.Features(features)


def frames_to_tensor(frames: np.ndarray | torch.Tensor) -> torch.Tensor:
    """uint8 ``[..., H, W, 3]`` -> float32 ``[..., 3, H, W]`` in ``[0, 1]``."""
    if isinstance(frames, torch.Tensor):
        return frames.float().div_(255.0).movedim(-1, -3).contiguous()
    # numpy does the layout change and conversion ~30x faster than torch on a strided view.
    array = np.moveaxis(np.asarray(frames), -1, -3).astype(np.float32, order="C")
    array /= np.float32(255.0)
    return torch.from_numpy(array)


def tensor_to_frames(pixels: torch.Tensor) -> np.ndarray:
    """float ``[..., 3, H, W]`` in ``[0, 1]`` -> uint8 ``[..., H, W, 3]`` (rounded)."""
    pixels = pixels.detach().float().clamp(0, 1).mul(255).round().to(torch.uint8)
    return pixels.movedim(-3, -1).cpu().numpy()


# ---------------------------------------------------------------------------------------- writing

SplitSource = tuple[Callable[..., Iterator[dict[str, Any]]], list[Any]]


def write_episode_dataset(
    output_dir: str | Path,
    splits: dict[str, SplitSource],
    features: datasets.Features,
    card_context: dict[str, Any],
    num_proc: int | None = None,
) -> datasets.DatasetDict:
    """Builds each split from ``generator(items)``, saves the ``DatasetDict`` and its card.

    Args:
        output_dir: target directory (``save_to_disk`` layout plus ``README.md``).
        splits: ``name -> (generator, items)``; the generator is called as
            ``generator(items=chunk)`` and yields one row per episode. With ``num_proc > 1`` the
            items are divided between processes.
        features: the schema (see :func:`episode_features`).
        card_context: variables for ``hub_cards/video_dataset_card.md`` (split sizes are added).
    """
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    # A private cache, removed afterwards: datasets' shared cache would reuse stale generator
    # output keyed on arguments alone, and fill the home directory with a second copy.
    cache_dir = Path(tempfile.mkdtemp(prefix=".build-", dir=output_dir))
    # The generators show an episode bar with a total; datasets' own would only count rows.
    bars_were_on = not datasets.utils.are_progress_bars_disabled()
    datasets.utils.disable_progress_bars()
    try:
        built = {}
        for name, (generator, items) in splits.items():
            if not items:
                built[name] = datasets.Dataset.from_dict({key: [] for key in features}, features=features)
                continue
            built[name] = datasets.Dataset.from_generator(
                generator,
                features=features,
                gen_kwargs={"items": list(items)},
                cache_dir=str(cache_dir),
                num_proc=num_proc if num_proc and num_proc > 1 and len(items) > 1 else None,
                split=datasets.NamedSplit(name),
            )
        if bars_were_on:
            datasets.utils.enable_progress_bars()
        dataset = datasets.DatasetDict(built)
        # An empty split still needs one (empty) shard to load back.
        dataset.save_to_disk(str(output_dir), num_shards={name: 1 for name, ds in built.items() if len(ds) == 0})
    finally:
        if bars_were_on:
            datasets.utils.enable_progress_bars()
        shutil.rmtree(cache_dir, ignore_errors=True)
    dataset = datasets.load_from_disk(str(output_dir))
    (output_dir / "README.md").write_text(render_dataset_card(dataset, card_context))
    return dataset


def render_dataset_card(dataset: datasets.DatasetDict, context: dict[str, Any]) -> str:
    """Fills ``hub_cards/video_dataset_card.md`` with ``context`` and the split sizes.

    ``context`` holds the template's fields plus ``license``, ``source`` (a tag) and
    ``pretty_name`` for the card's YAML metadata.
    """
    from rlvr_world.hub import dataset_card

    splits = [
        {"name": name, "episodes": len(split), "frames": int(np.sum(split[NUM_FRAMES])) if len(split) else 0}
        for name, split in dataset.items()
    ]
    card_data = {
        "license": context["license"],
        "pretty_name": context["pretty_name"],
        "task_categories": ["robotics"],
        "tags": ["world-model", "video-prediction", "rlvr", context["source"]],
        "size_categories": [_size_category(sum(row["episodes"] for row in splits))],
    }
    return str(dataset_card("video_dataset_card.md", card_data, splits=splits, **context))


def _size_category(num_rows: int) -> str:
    for limit, name in ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M")):
        if num_rows < limit:
            return name
    return "1M<n<10M"


# ---------------------------------------------------------------------------------------- reading


class EpisodeReader:
    """Random access to frame/action ranges of an episode split, straight from Arrow.

    ``read(episode, start, stop)`` returns ``frames[start:stop]`` (uint8 ``[n, H, W, 3]``) with
    no copy of the rest of the episode; ``read_column`` does the same for any per-step column.
    """

    def __init__(self, split: datasets.Dataset):
        self.split = split
        self._table = split.data
        # `select`/`shuffle` leave an indices mapping instead of rewriting the table.
        indices = split._indices
        self._rows = None if indices is None else indices.column(0).to_numpy()
        self._shapes = {
            name: feature.shape[1:] if hasattr(feature, "shape") else ()
            for name, feature in split.features.items()
        }
        if NUM_FRAMES in split.column_names:
            self.num_frames = np.asarray(split.data.column(NUM_FRAMES).to_numpy(), dtype=np.int64)
            if self._rows is not None:
                self.num_frames = self.num_frames[self._rows]
        else:
            self.num_frames = np.array([self._length(i) for i in range(len(split))], dtype=np.int64)

    def __len__(self) -> int:
        return len(self.split)

    def read(self, episode: int, start: int = 0, stop: int | None = None) -> np.ndarray:
        return self.read_column(FRAMES, episode, start, stop)

    def read_column(self, column: str, episode: int, start: int = 0, stop: int | None = None) -> np.ndarray:
        steps = self._steps(column, episode)
        stop = len(steps) if stop is None else min(stop, len(steps))
        values = steps.slice(start, max(stop - start, 0))
        inner_shape = self._shapes[column]
        for _ in inner_shape:
            values = values.flatten()
        array = values.to_numpy(zero_copy_only=False)
        if not array.flags.writeable:  # a view of the Arrow buffer; torch wants writable memory
            array = array.copy()
        return array.reshape(-1, *inner_shape)

    def _steps(self, column: str, episode: int) -> pa.Array:
        row = int(self._rows[episode]) if self._rows is not None else int(episode)
        scalar = self._table.column(column)[row]
        if isinstance(scalar, pa.ExtensionScalar):  # ArrayXD columns wrap a nested list
            scalar = scalar.value
        return scalar.values

    def _length(self, episode: int) -> int:
        return len(self._steps(FRAMES, episode))


def sample_frames(split: datasets.Dataset, num_frames: int, seed: int = 0) -> np.ndarray:
    """Up to ``num_frames`` distinct random frames (uint8 ``[N, H, W, 3]``) from a split."""
    reader = EpisodeReader(split)
    offsets = np.concatenate([[0], np.cumsum(reader.num_frames)])
    total = int(offsets[-1])
    rng = np.random.default_rng(seed)
    picks = np.sort(rng.choice(total, size=min(num_frames, total), replace=False))
    episodes = np.searchsorted(offsets, picks, side="right") - 1
    frames = [reader.read(int(e), int(p - offsets[e]), int(p - offsets[e]) + 1) for e, p in zip(episodes, picks)]
    return np.concatenate(frames) if frames else np.zeros((0, 0, 0, 3), np.uint8)


# ---------------------------------------------------------------------------------------- torch datasets


class FrameSequenceDataset(torch.utils.data.Dataset):
    """Segments of ``context_frames + future_frames`` consecutive frames with their actions.

    Training (``train=True``): item ``i`` is episode ``i % num_episodes`` at a fresh random
    start each time (``samples_per_episode`` items per episode and epoch). Evaluation: every
    segment start ``0, stride, 2 * stride, ...`` of every episode, in a fixed order.
    Episodes shorter than a segment are skipped.

    Items: ``pixel_values`` float ``[T, 3, H, W]`` in ``[0, 1]`` (uint8 with ``as_uint8``),
    ``actions`` float32 ``[T, D]``, ``episode_index`` and ``start``.
    """

    def __init__(
        self,
        split: datasets.Dataset,
        context_frames: int,
        future_frames: int,
        train: bool = True,
        stride: int | None = None,
        samples_per_episode: int = 1,
        as_uint8: bool = False,
    ):
        if context_frames < 0 or future_frames < 0 or context_frames + future_frames < 1:
            raise ValueError("Need context_frames + future_frames >= 1")
        self.reader = EpisodeReader(split)
        self.context_frames, self.future_frames = context_frames, future_frames
        self.segment_length = context_frames + future_frames
        self.train, self.as_uint8 = train, as_uint8
        self.samples_per_episode = samples_per_episode
        self.episodes = np.flatnonzero(self.reader.num_frames >= self.segment_length)
        if train:
            self.windows = None
        else:
            stride = stride or self.segment_length
            self.windows = [
                (int(e), start)
                for e in self.episodes
                for start in range(0, int(self.reader.num_frames[e]) - self.segment_length + 1, stride)
            ]

    def __len__(self) -> int:
        if self.train:
            return len(self.episodes) * self.samples_per_episode
        return len(self.windows)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        if self.train:
            episode = int(self.episodes[index % len(self.episodes)])
            last_start = int(self.reader.num_frames[episode]) - self.segment_length
            start = int(torch.randint(0, last_start + 1, ()).item())
        else:
            episode, start = self.windows[index]
        stop = start + self.segment_length
        frames = self.reader.read(episode, start, stop)
        actions = torch.from_numpy(self.reader.read_column(ACTIONS, episode, start, stop).astype(np.float32))
        if self.as_uint8:
            pixels = torch.from_numpy(np.ascontiguousarray(np.moveaxis(frames, -1, -3)))
        else:
            pixels = frames_to_tensor(frames)
        return {
            "pixel_values": pixels,
            "actions": actions,
            "episode_index": torch.tensor(episode),
            "start": torch.tensor(start),
        }


class SingleFrameDataset(torch.utils.data.Dataset):
    """Every frame of a split on its own, for tokenizer training and evaluation.

    Items: ``pixel_values`` float ``[3, H, W]`` in ``[0, 1]`` after the optional ``transform``.
    """

    def __init__(self, split: datasets.Dataset, transform: Callable[[torch.Tensor], torch.Tensor] | None = None):
        self.reader = EpisodeReader(split)
        self.offsets = np.concatenate([[0], np.cumsum(self.reader.num_frames)])
        self.transform = transform

    def __len__(self) -> int:
        return int(self.offsets[-1])

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        if not 0 <= index < len(self):
            raise IndexError(index)
        episode = int(np.searchsorted(self.offsets, index, side="right") - 1)
        step = int(index - self.offsets[episode])
        pixels = frames_to_tensor(self.reader.read(episode, step, step + 1)[0])
        if self.transform is not None:
            pixels = self.transform(pixels)
        return {"pixel_values": pixels}


def iter_episodes(split: datasets.Dataset, columns: Iterable[str] = (FRAMES, ACTIONS)) -> Iterator[dict[str, np.ndarray]]:
    """Yields each episode's ``columns`` as numpy arrays (frames stay uint8)."""
    reader = EpisodeReader(split)
    for episode in range(len(reader)):
        yield {column: reader.read_column(column, episode) for column in columns}


def episode_actions(split: datasets.Dataset) -> list[np.ndarray]:
    """Each episode's actions ``[T, D]`` (e.g. to fit an :class:`~rlvr_world.video.actions.ActionBinner`)."""
    reader = EpisodeReader(split)
    return [reader.read_column(ACTIONS, episode).astype(np.float32) for episode in range(len(reader))]


def split_counts(num_episodes: int, validation_fraction: float, test_fraction: float) -> tuple[int, int, int]:
    """Train/validation/test episode counts; a nonzero fraction keeps at least one episode once
    there are enough episodes to leave one for training."""

    def count(fraction: float) -> int:
        if fraction <= 0:
            return 0
        return max(1, math.floor(num_episodes * fraction + 0.5)) if num_episodes >= 3 else 0

    validation, test = count(validation_fraction), count(test_fraction)
    if validation + test >= num_episodes:
        raise ValueError(f"{num_episodes} episodes leave none for training with these fractions")
    return num_episodes - validation - test, validation, test
