"""Task registry: one `grpo.py` / `sft.py` serves every task.

A recipe's `task` field names a `TrainingTask`, which provides the dataset builders, the reward
functions, an optional GRPO rollout hook (video plugs one in later) and an optional scorer used by
the accuracy callback. Tasks register themselves on import; `get_task` imports the built-in ones
lazily so that importing this module stays cheap.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

# name -> module that registers it (imported on first use)
_BUILTIN_TASK_MODULES = {
    "textgame": "rlvr_world.training.textgame",
    "webpage": "rlvr_world.training.webpage",
    "video_single_step": "rlvr_world.training.video",
    "video_multi_step": "rlvr_world.training.video",
}


@dataclass
class TrainingTask:
    name: str
    # (script_args, training_args, tokenizer) -> datasets.Dataset with a `prompt` column + reward columns
    build_grpo_dataset: Callable[..., Any]
    # (script_args, training_args, tokenizer) -> datasets.Dataset with `prompt` and `completion`
    build_sft_dataset: Callable[..., Any] | None = None
    # (names, **options) -> list of TRL reward callables
    build_reward_funcs: Callable[..., list] | None = None
    # (script_args, training_args, tokenizer) -> TRL rollout_func or None
    build_rollout_func: Callable[..., Any] | None = None
    # (completions: list[str], rows: list[dict]) -> list[dict] with at least "correct" (bool)
    score_completions: Callable[..., list[dict]] | None = None
    # (script_args, split) -> datasets.Dataset of rows for score_completions (a `prompt` column + gold columns)
    load_eval_rows: Callable[..., Any] | None = None
    # (model_args) -> the processing_class handed to the trainer (None: the model's AutoTokenizer)
    load_processing_class: Callable[..., Any] | None = None
    # (script_args, training_args, processing_class) -> extra TrainerCallbacks (e.g. held-out video metrics)
    build_callbacks: Callable[..., list] | None = None


TASKS: dict[str, TrainingTask] = {}


def register_task(task: TrainingTask) -> TrainingTask:
    TASKS[task.name] = task
    return task


def get_task(name: str) -> TrainingTask:
    if name not in TASKS and name in _BUILTIN_TASK_MODULES:
        importlib.import_module(_BUILTIN_TASK_MODULES[name])
    if name not in TASKS:
        known = sorted(set(TASKS) | set(_BUILTIN_TASK_MODULES))
        raise ValueError(f"unknown task {name!r}; known tasks: {', '.join(known)}")
    return TASKS[name]
