"""The video tasks `video_single_step` and `video_multi_step` for `src/grpo.py`.

- processing class: a `VisualTokenTokenizer` (token ids as text, what TRL's GRPOTrainer needs)
  carrying the model's `VideoWorldModelProcessor` (frozen visual tokenizer included); every
  process builds its own copy, nothing in it trains;
- GRPO data: windows of held-in episodes (the recipe's `dataset_train_split`) cut every
  `video_window_stride` frames; a row holds the prompt as token-id text (multi-step: with the true
  future actions after `|`, see `rlvr_world.video.rollout`) and the ground-truth frames of the
  predicted steps in `target_frames` (uint8 `[T, H, W, 3]`), which the video rewards score against;
- rewards: the registry's `video_*` callables with the recipe's weights (`reward_weights`);
- rollout: `rlvr_world.video.rollout.make_rollout_func` (constrained sampling; multi-step inserts
  the true actions and masks them out of the loss through `env_mask`);
- callback: held-out MSE/MAE/PSNR/SSIM(/LPIPS) and repetition every `accuracy_eval_steps` steps on
  `accuracy_eval_samples` windows of `accuracy_eval_split` (`video_metrics.jsonl`).
"""

from __future__ import annotations

import logging
import math

import numpy as np
import torch

from rlvr_world.training.tasks import TrainingTask, register_task

logger = logging.getLogger(__name__)

MODES = {"video_single_step": "single_step", "video_multi_step": "multi_step"}
TARGET_COLUMN = "target_frames"
METRICS_FILE = "video_metrics.jsonl"


# --------------------------------------------------------------------------------------------- model side


def load_processing_class(model_args, task_name: str):
    """The world model's `VisualTokenTokenizer`, with its processor attached (`.video_processor`)."""
    from transformers import AutoConfig

    import rlvr_world.video.world_model  # noqa: F401  (registers the world model with the Auto classes)
    from rlvr_world.video.processor import VideoWorldModelProcessor
    from rlvr_world.video.token_text import VisualTokenTokenizer, register_auto_tokenizer

    register_auto_tokenizer()
    path = model_args.model_name_or_path
    config = AutoConfig.from_pretrained(path, revision=model_args.model_revision)
    if getattr(config, "model_type", None) != "video_world_model":
        raise ValueError(f"{path}: task {task_name} needs a video world model, got model_type={config.model_type!r}")
    processor = VideoWorldModelProcessor.from_pretrained(path)
    processor.check_model_config(config)
    if processor.mode != MODES[task_name]:
        raise ValueError(f"{path} is a {processor.mode} world model; task {task_name} needs a {MODES[task_name]} one")
    # Load the frozen tokenizer now (a missing one fails at start-up), on this process's device: every DDP /
    # DeepSpeed rank holds its own copy, which decodes its completions for the rewards.
    from accelerate import PartialState

    processor.visual_tokenizer.to(PartialState().device)
    return VisualTokenTokenizer.from_model_config(config, video_processor=processor)


# --------------------------------------------------------------------------------------------- data


def _windows(script_args, processor, split: str):
    from rlvr_world.evaluation.video import load_windows

    k = processor.num_context_frames
    return load_windows(script_args.dataset_name, split, k, processor.num_future_frames,
                        stride=script_args.video_window_stride)


def window_rows(windows, indices, processor, tokenizer, batch_size: int = 64) -> dict[str, list]:
    """Dataset columns for the given windows: `prompt` text, `target_frames`, `episode_index`, `start`."""
    from rlvr_world.video.processor import MULTI_STEP
    from rlvr_world.video.rollout import conditioning_text

    k, future = processor.num_context_frames, processor.num_future_frames
    rows = {"prompt": [], TARGET_COLUMN: [], "episode_index": [], "start": []}
    for lo in range(0, len(indices), batch_size):
        items = [windows[int(i)] for i in indices[lo : lo + batch_size]]
        pixels = torch.stack([it["pixel_values"] for it in items])  # [B, k + T, 3, H, W]
        actions = torch.stack([it["actions"] for it in items])
        prompts = processor.build_prompt(pixels[:, :k], actions[:, :k]).tolist()
        future_actions = [None] * len(items)
        if processor.mode == MULTI_STEP:
            future_actions = processor.action_tokens(actions[:, k : k + future - 1]).flatten(1).tolist()
        for prompt, acts in zip(prompts, future_actions):
            rows["prompt"].append(conditioning_text(tokenizer, prompt, acts))
        target = pixels[:, k : k + future].mul(255).round().to(torch.uint8).permute(0, 1, 3, 4, 2)
        rows[TARGET_COLUMN].extend(target.numpy())
        rows["episode_index"].extend(int(it["episode_index"]) for it in items)
        rows["start"].extend(int(it["start"]) for it in items)
    return rows


def build_grpo_dataset(script_args, training_args, tokenizer):
    """Training windows, shuffled, laid out epoch after epoch (enough for `max_steps`).

    `max_train_samples` keeps that many windows (a seeded draw) before the epochs are laid out.
    """
    import datasets

    from rlvr_world.training.data import rebalanced_epochs
    from rlvr_world.training.textgame import rows_per_step

    processor = tokenizer.video_processor
    if training_args.mask_truncated_completions:
        # Multi-step completions have no EOS, so TRL would count (and mask) every one as truncated.
        logger.warning("video completions have a fixed length: setting mask_truncated_completions=False")
        training_args.mask_truncated_completions = False
    seed = int(training_args.seed) + int(script_args.data_seed_offset)
    windows = _windows(script_args, processor, script_args.dataset_train_split)
    order = np.random.default_rng(seed).permutation(len(windows))
    if script_args.max_train_samples is not None:
        order = order[: script_args.max_train_samples]
    rows = window_rows(windows, order, processor, tokenizer)
    height, width = rows[TARGET_COLUMN][0].shape[1:3]
    features = datasets.Features({
        "prompt": datasets.Value("string"),
        TARGET_COLUMN: datasets.Array4D(shape=(processor.num_future_frames, height, width, 3), dtype="uint8"),
        "episode_index": datasets.Value("int64"),
        "start": datasets.Value("int32"),
    })
    dataset = datasets.Dataset.from_dict(rows, features=features)
    if script_args.num_data_epochs is not None:
        epochs = script_args.num_data_epochs
    elif training_args.max_steps and training_args.max_steps > 0:
        epochs = math.ceil(training_args.max_steps * rows_per_step(training_args) / len(dataset))
    else:
        epochs = max(math.ceil(training_args.num_train_epochs), 1)
    dataset, info = rebalanced_epochs(dataset, [True] * len(dataset), None, epochs, seed)
    info = {"num_windows": len(order), "num_epochs": info["num_epochs"], "total_rows": info["total_rows"],
            "prompt_length": processor.prompt_length, "completion_length": processor.completion_length,
            "split": script_args.dataset_train_split}
    return dataset, info


# --------------------------------------------------------------------------------------------- rewards


def build_reward_funcs(names, options=None):
    """The registry's rewards; a video reward with an LPIPS term fails here, before the model loads, when the
    LPIPS weights are missing (`rlvr_world.video.rewards.make_video_reward`)."""
    from rlvr_world.rewards import get_reward_funcs

    return get_reward_funcs(list(names), options or {})


def build_rollout_func(script_args, training_args, tokenizer):
    from rlvr_world.video.rollout import make_rollout_func

    return make_rollout_func(tokenizer.video_processor, tokenizer)


# --------------------------------------------------------------------------------------------- held-out metrics


def build_callbacks(script_args, training_args, tokenizer) -> list:
    """The held-out metrics callback when the recipe names an `accuracy_eval_split`."""
    if not script_args.accuracy_eval_split:
        return []
    from rlvr_world.training.video_metrics import VideoMetricsCallback

    processor = tokenizer.video_processor
    windows = _windows(script_args, processor, script_args.accuracy_eval_split)
    n = len(windows) if script_args.accuracy_eval_samples is None else min(script_args.accuracy_eval_samples, len(windows))
    # A fixed, spread-out subset (every episode represented) so that every evaluation sees the same windows.
    picks = np.linspace(0, len(windows) - 1, n).round().astype(int) if n < len(windows) else np.arange(len(windows))
    return [VideoMetricsCallback(processor, windows, picks, every_steps=script_args.accuracy_eval_steps,
                                 batch_size=script_args.accuracy_eval_batch_size, seed=int(training_args.seed))]


def _register(name: str) -> TrainingTask:
    return register_task(
        TrainingTask(
            name=name,
            build_grpo_dataset=build_grpo_dataset,
            build_reward_funcs=build_reward_funcs,
            build_rollout_func=build_rollout_func,
            load_processing_class=lambda model_args, _name=name: load_processing_class(model_args, _name),
            build_callbacks=build_callbacks,
        )
    )


VIDEO_SINGLE_STEP = _register("video_single_step")
VIDEO_MULTI_STEP = _register("video_multi_step")
