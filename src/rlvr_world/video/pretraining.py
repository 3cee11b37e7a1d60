"""MLE pre-training of the video world model: tokenised windows (cached on disk) and the `Trainer` run.

`src/pretrain.py RECIPE.yaml` calls [`pretrain`]. Steps:

1. The processor: the frozen visual tokenizer named by the recipe, the action ranges fitted on
   the training split (256 bins per dimension), the sequence mode and window sizes.
2. The episodes are tokenised once into a `DatasetDict` of fixed-length windows (`input_ids`,
   `labels`, `episode_index`, `start`), saved with `save_to_disk`; `tokenization.json` beside it
   records what it was built from, and a cache built from anything else is rebuilt.
3. transformers' `Trainer` (warmup + cosine schedule, checkpoints that resume, evaluation loss on
   validation windows). The final model, the processor and a copy of the tokenizer go to
   `output_dir`, with `log.jsonl`, `loss_curve.png` and `train_summary.json`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import datasets
import numpy as np
import torch
import torch.nn.functional as F
from transformers import TrainerCallback

from rlvr_world.data.frames import ACTIONS, FRAMES, EpisodeReader, episode_actions
from rlvr_world.video.actions import ActionBinner
from rlvr_world.video.processor import (
    IGNORE_INDEX,
    SINGLE_STEP,
    VideoWorldModelProcessor,
)

logger = logging.getLogger(__name__)

TOKENIZATION_FILE = "tokenization.json"
TOKENIZED_FEATURES = datasets.Features({
    "input_ids": datasets.Sequence(datasets.Value("int32")),
    "labels": datasets.Sequence(datasets.Value("int32")),
    "episode_index": datasets.Value("int64"),
    "start": datasets.Value("int32"),
})


# ---------------------------------------------------------------------------------------- processor


def load_episodes(dataset_name: str) -> datasets.DatasetDict:
    if not os.path.isdir(dataset_name):
        raise FileNotFoundError(f"episode dataset not found: {dataset_name} (build it with src/make_dataset.py)")
    episodes = datasets.load_from_disk(dataset_name)
    if not isinstance(episodes, datasets.DatasetDict) or "train" not in episodes:
        raise ValueError(f"{dataset_name}: expected a DatasetDict with a 'train' split")
    for name, split in episodes.items():
        for column in (FRAMES, ACTIONS):
            if column not in split.column_names:
                raise ValueError(f"{dataset_name}, split {name!r}: no {column!r} column")
    return episodes


def build_processor(script_args, episodes: datasets.DatasetDict) -> VideoWorldModelProcessor:
    """The processor for the recipe: its tokenizer, the training split's action ranges, the layout."""
    from transformers import AutoModel

    import rlvr_world  # noqa: F401  (registers the tokenizers)

    path = script_args.tokenizer_name_or_path
    if not path or not os.path.isdir(path):
        raise FileNotFoundError(f"visual tokenizer not found: {path!r} (train it with src/train_tokenizer.py)")
    tokenizer = AutoModel.from_pretrained(path).eval().requires_grad_(False)
    binner = ActionBinner(num_bins=script_args.num_action_bins).fit(episode_actions(episodes["train"]))
    image_size = tuple(episodes["train"].features[FRAMES].shape[1:3])
    return VideoWorldModelProcessor.from_tokenizer(
        tokenizer, str(Path(path).resolve()), script_args.sequence_mode, binner, image_size,
        num_context_frames=script_args.num_context_frames, num_future_frames=script_args.num_future_frames,
    )


# ---------------------------------------------------------------------------------------- tokenisation


def window_frames(processor: VideoWorldModelProcessor) -> int:
    """Frames per window: ``k + 1`` (single-step) or ``1 + T`` (multi-step)."""
    if processor.mode == SINGLE_STEP:
        return processor.num_context_frames + 1
    return 1 + processor.num_future_frames


def iter_windows(
    processor: VideoWorldModelProcessor, split: datasets.Dataset, stride: int, batch_size: int,
    description: str = "tokenising",
) -> Iterator[dict[str, Any]]:
    """Every window (start ``0, stride, ...``) of every episode as one row, with a progress bar."""
    from tqdm.auto import tqdm

    reader = EpisodeReader(split)
    length = window_frames(processor)
    has_index = "episode_index" in split.column_names
    indices = list(split.select_columns(["episode_index"])["episode_index"]) if has_index else range(len(reader))
    for episode in tqdm(range(len(reader)), desc=description, unit="episode"):
        frames = reader.read(episode)
        actions = reader.read_column(ACTIONS, episode).astype(np.float32)
        episode_index = int(indices[episode])
        starts = list(range(0, len(frames) - length + 1, stride))
        if not starts:
            continue
        action_ids = processor.action_tokens(actions)  # [T, D]
        if processor.mode == SINGLE_STEP:
            # Per-frame codes do not depend on the window: encode every frame once.
            codes = torch.cat([processor.encode_frames(frames[None, i : i + batch_size]).cpu()
                               for i in range(0, len(frames), batch_size)], dim=1)[0]
        for i in range(0, len(starts), batch_size):
            chunk = starts[i : i + batch_size]
            window_actions = torch.stack([action_ids[s : s + length - 1] for s in chunk])
            if processor.mode == SINGLE_STEP:
                window_codes = torch.stack([codes[s : s + length] for s in chunk])
                batch = processor.build_sequences(window_codes, window_actions)
            else:
                # Future codes are encoded against their own window's context frame.
                context, future = processor.encode_frames(np.stack([frames[s : s + length] for s in chunk]))
                batch = processor.build_sequences(future.cpu(), window_actions, context_codes=context.cpu())
            for row, start in enumerate(chunk):
                yield {
                    "input_ids": batch["input_ids"][row].to(torch.int32).numpy(),
                    "labels": batch["labels"][row].to(torch.int32).numpy(),
                    "episode_index": episode_index,
                    "start": start,
                }


def tokenization_record(script_args, processor: VideoWorldModelProcessor) -> dict[str, Any]:
    """What a tokenised cache depends on (a different record means a rebuild)."""
    weights = Path(script_args.tokenizer_name_or_path) / "model.safetensors"
    digest = hashlib.sha256(weights.read_bytes()).hexdigest() if weights.is_file() else None
    return {
        "dataset_name": str(Path(script_args.dataset_name).resolve()),
        "tokenizer_weights_sha256": digest,
        "processor": {k: v for k, v in processor.to_dict().items() if k != "tokenizer_name_or_path"},
        "window_stride": script_args.window_stride,
        "eval_window_stride": script_args.eval_window_stride,
    }


def load_or_build_tokenized(script_args, processor, episodes: datasets.DatasetDict, directory: str) -> datasets.DatasetDict:
    """The cached tokenised windows at ``directory``, built first if missing or stale."""
    directory = Path(directory)
    record = tokenization_record(script_args, processor)
    record_file = directory / TOKENIZATION_FILE
    if record_file.is_file():
        try:
            if json.loads(record_file.read_text()) == record:
                logger.info("using the tokenised windows in %s", directory)
                return datasets.load_from_disk(str(directory))
        except (OSError, ValueError):
            pass
        logger.info("the tokenised windows in %s are stale: rebuilding", directory)
    directory.parent.mkdir(parents=True, exist_ok=True)
    build = Path(tempfile.mkdtemp(prefix=".tokenizing-", dir=directory.parent))
    try:
        splits = {}
        for name, split in episodes.items():
            stride = script_args.window_stride if name == "train" else script_args.eval_window_stride
            rows = list(iter_windows(processor, split, stride, script_args.tokenize_batch_size, f"tokenising {name}"))
            if not rows:
                splits[name] = datasets.Dataset.from_dict({k: [] for k in TOKENIZED_FEATURES}, features=TOKENIZED_FEATURES)
                continue
            splits[name] = datasets.Dataset.from_dict(
                {key: [row[key] for row in rows] for key in TOKENIZED_FEATURES}, features=TOKENIZED_FEATURES
            )
        tokenized = datasets.DatasetDict(splits)
        tokenized.save_to_disk(str(build / "data"))
        if directory.exists():
            shutil.rmtree(directory)
        (build / "data").rename(directory)
        record_file.write_text(json.dumps(record, indent=2) + "\n")  # written last: marks it complete
    finally:
        shutil.rmtree(build, ignore_errors=True)
    return datasets.load_from_disk(str(directory))


# ---------------------------------------------------------------------------------------- training


def predicting_positions(labels: torch.Tensor) -> torch.Tensor:
    """The positions whose next token is labelled in any row (the windows share one layout)."""
    return (labels[:, 1:] != IGNORE_INDEX).any(0).nonzero().squeeze(-1)


def collate_windows(rows: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
    """Fixed-length windows -> ``input_ids`` / ``labels`` / ``attention_mask`` tensors, and
    ``logits_to_keep``: the output head runs only where a label follows (half of a single-step
    sequence is context; the head and its cross-entropy were a quarter of a tiny model's step)."""
    input_ids = torch.tensor([row["input_ids"] for row in rows], dtype=torch.long)
    labels = torch.tensor([row["labels"] for row in rows], dtype=torch.long)
    return {"input_ids": input_ids, "labels": labels, "attention_mask": torch.ones_like(input_ids),
            "logits_to_keep": predicting_positions(labels)}


def next_token_loss(outputs, labels: torch.Tensor, num_items_in_batch: torch.Tensor | int | None = None) -> torch.Tensor:
    """Cross-entropy of logits kept at [`predicting_positions`] against the tokens that follow them
    (the Trainer's `compute_loss_func`); summed over `num_items_in_batch` under gradient accumulation."""
    positions = predicting_positions(labels).to(labels.device)
    logits = outputs["logits"] if isinstance(outputs, dict) else outputs[0]
    if logits.shape[1] != positions.numel():
        raise ValueError(f"{logits.shape[1]} logits per row for {positions.numel()} labelled positions: "
                         "pass the collator's logits_to_keep to the model")
    targets = labels[:, positions + 1]
    loss = F.cross_entropy(logits.float().flatten(0, 1), targets.flatten(), ignore_index=IGNORE_INDEX, reduction="sum")
    if num_items_in_batch is None:
        return loss / (targets != IGNORE_INDEX).sum().clamp(min=1)
    return loss / num_items_in_batch


def build_model(script_args, processor: VideoWorldModelProcessor):
    from rlvr_world.video.world_model import VideoWorldModelForCausalLM

    if script_args.init_from:
        model = VideoWorldModelForCausalLM.from_pretrained(script_args.init_from)
        processor.check_model_config(model.config)
        return model
    return VideoWorldModelForCausalLM(world_model_config(processor, script_args.world_model_config))


def world_model_config(processor: VideoWorldModelProcessor, options: dict[str, Any]):
    """A recipe's `world_model_config` as a `VideoWorldModelConfig` for this processor's sequences.

    Besides Llama's fields it takes `previous_frame_input: true`, which fills the frame layout in.
    """
    from rlvr_world.video.world_model import VideoWorldModelConfig

    options = dict(options)
    options.setdefault("max_position_embeddings", processor.sequence_length)
    if options["max_position_embeddings"] < processor.sequence_length:
        raise ValueError(f"world_model_config.max_position_embeddings={options['max_position_embeddings']} is shorter "
                         f"than the sequences ({processor.sequence_length} tokens)")
    if options.pop("previous_frame_input", False):
        options.update(processor.frame_layout(options["max_position_embeddings"]))
    return VideoWorldModelConfig(**processor.model_config_kwargs(), **options)


def plot_loss_curve(output_dir: str) -> Path | None:
    """``loss_curve.png`` from ``log.jsonl``: training and evaluation loss against the step."""
    log = Path(output_dir) / "log.jsonl"
    if not log.is_file():
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    records = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    train = [(r["step"], r["loss"]) for r in records if "loss" in r]
    evaluation = [(r["step"], r["eval_loss"]) for r in records if "eval_loss" in r]
    fig, ax = plt.subplots(figsize=(6, 4))
    for points, label in ((train, "train"), (evaluation, "validation")):
        if points:
            ax.plot(*zip(*points), marker="." if label == "validation" else None, label=label)
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("cross-entropy (nats / frame token)")
    ax.set_title(Path(output_dir).name)
    ax.legend()
    fig.tight_layout()
    path = Path(output_dir) / "loss_curve.png"
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


class SaveProcessorCallback(TrainerCallback):
    """Writes the processor config into every checkpoint, so a checkpoint loads like a release
    (its tokenizer reference is the tokenizer's absolute path, not a copy)."""

    def __init__(self, processor: VideoWorldModelProcessor):
        self.processor = processor

    def on_save(self, args, state, control, **kwargs):
        checkpoint = Path(args.output_dir) / f"checkpoint-{state.global_step}"
        if state.is_world_process_zero and checkpoint.is_dir():
            self.processor.save_pretrained(checkpoint, save_tokenizer=False)


def pretrain(script_args, training_args):
    """Tokenise (cached), train with `Trainer`, save model + processor + tokenizer copy."""
    from transformers import Trainer

    from rlvr_world.training.callbacks import JsonlLogCallback, MatchTrainTimeCallback, TimeLimitCallback
    from rlvr_world.training.cli import resolve_resume

    if script_args.torch_num_threads:
        torch.set_num_threads(int(script_args.torch_num_threads))
    episodes = load_episodes(script_args.dataset_name)
    processor = build_processor(script_args, episodes)
    logger.info("processor: %s", processor)
    tokenized_dir = script_args.tokenized_dataset_dir or os.path.join(training_args.output_dir, "tokenized")
    started = time.perf_counter()
    tokenized = load_or_build_tokenized(script_args, processor, episodes, tokenized_dir)
    tokenize_s = time.perf_counter() - started
    train_windows = tokenized["train"]
    if script_args.max_train_windows:
        train_windows = train_windows.shuffle(seed=training_args.seed).select(range(min(script_args.max_train_windows, len(train_windows))))
    eval_windows = tokenized["validation"] if "validation" in tokenized and len(tokenized["validation"]) else None
    if eval_windows is not None and script_args.max_eval_windows:
        eval_windows = eval_windows.shuffle(seed=0).select(range(min(script_args.max_eval_windows, len(eval_windows))))
    logger.info("windows: train %d, validation %d", len(train_windows), 0 if eval_windows is None else len(eval_windows))

    model = build_model(script_args, processor)
    logger.info("model: %.2fM parameters, %d tokens per sequence", model.num_parameters() / 1e6, processor.sequence_length)
    if training_args.should_save:  # the directory is usable (model config aside) from the start
        processor.save_pretrained(training_args.output_dir)
    callbacks = [JsonlLogCallback(), SaveProcessorCallback(processor)]
    if script_args.max_train_seconds:
        callbacks.append(TimeLimitCallback(script_args.max_train_seconds))
    if script_args.match_train_seconds_of:
        callbacks.append(MatchTrainTimeCallback(script_args.match_train_seconds_of))
    training_args.remove_unused_columns = False  # the collator picks its columns
    training_args.prediction_loss_only = True  # evaluation reports the loss; gathering logits only costs memory
    trainer = Trainer(
        model=model,
        args=training_args,
        train_dataset=train_windows,
        eval_dataset=eval_windows,
        data_collator=collate_windows,
        compute_loss_func=next_token_loss,
        callbacks=callbacks,
    )
    checkpoint = resolve_resume(training_args, script_args.auto_resume)
    if checkpoint:
        logger.info("resuming from %s", checkpoint)
    started = time.perf_counter()
    result = trainer.train(resume_from_checkpoint=checkpoint)
    train_s = time.perf_counter() - started
    trainer.save_model(training_args.output_dir)
    metrics = trainer.evaluate() if eval_windows is not None else {}
    if trainer.is_world_process_zero():
        processor.save_pretrained(training_args.output_dir)
        plot_loss_curve(training_args.output_dir)
        summary = {
            "global_step": trainer.state.global_step,
            "train_loss": result.training_loss,
            "eval_loss": metrics.get("eval_loss"),
            "train_wall_s": round(train_s, 1),
            "tokenize_wall_s": round(tokenize_s, 1),
            "resumed_from": checkpoint,
            "parameters": model.num_parameters(),
            "sequence_length": processor.sequence_length,
            "train_windows": len(train_windows),
            "torch_threads": torch.get_num_threads(),
            "finished": time.strftime("%Y-%m-%d %H:%M:%S"),
        }
        Path(training_args.output_dir, "train_summary.json").write_text(json.dumps(summary, indent=2) + "\n")
        logger.info("saved %s: %s", training_args.output_dir, summary)
    return trainer


__all__ = [
    "build_model",
    "build_processor",
    "collate_windows",
    "iter_windows",
    "load_or_build_tokenized",
    "next_token_loss",
    "plot_loss_curve",
    "predicting_positions",
    "pretrain",
]
