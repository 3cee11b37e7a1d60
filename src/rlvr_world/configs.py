"""Script-argument dataclasses, in one place.

Recipes (YAML) fill these together with TRL's own `SFTConfig` / `GRPOConfig` and `ModelConfig`;
`rlvr_world.training.cli.parse_recipe` does the parsing. Every field name here must differ from
the fields of `transformers.TrainingArguments`, TRL's configs and `ModelConfig`: the parser puts
them all into one namespace.

Other engineers append their own blocks below (e.g. the video tokenizer); keep blocks separate.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any


def _maybe_json(value: Any, name: str) -> Any:
    """YAML gives mappings as dicts; the command line gives them as JSON strings."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except json.JSONDecodeError as err:
            raise ValueError(f"`{name}` must be a mapping (YAML) or a JSON object string, got {value!r}") from err
    return value


# --------------------------------------------------------------------------------------------
# Training entry points (src/sft.py, src/grpo.py)
# --------------------------------------------------------------------------------------------


@dataclass
class TaskDataArguments:
    """What to train on: the task and its dataset, shared by SFT and GRPO."""

    task: str = field(
        default="textgame",
        metadata={"help": "Task name; picks the dataset builder, reward functions and rollout hook."},
    )
    dataset_name: str | None = field(
        default=None,
        metadata={
            "help": "A `datasets.load_from_disk` directory (DatasetDict or Dataset) or a Hub dataset id "
            "(e.g. thuml/bytesized32-world-model-cot)."
        },
    )
    dataset_config: str | None = field(default=None, metadata={"help": "Hub dataset configuration name."})
    dataset_train_split: str = field(default="train", metadata={"help": "Split to train on."})
    max_prompt_length: int | None = field(
        default=None,
        metadata={
            "help": "Longest prompt, in tokens after the chat template, kept when building the dataset "
            "(TRL no longer truncates prompts). None: no limit."
        },
    )
    prompt_truncation: str = field(
        default="left",
        metadata={
            "help": "What to do with a prompt longer than max_prompt_length: 'left' (drop its first tokens), "
            "'right' (drop its last tokens), 'drop' (drop the row) or 'error'."
        },
    )
    max_train_samples: int | None = field(
        default=None,
        metadata={"help": "Keep only the first N rows of the source split (after a seeded shuffle); for tests."},
    )
    data_seed_offset: int = field(
        default=0,
        metadata={"help": "Added to `seed` for every data sampling decision (demonstrations, rebalancing)."},
    )
    max_train_seconds: float | None = field(
        default=None,
        metadata={
            "help": "Stop training (and save) after this many seconds of training; for equal-wall-time "
            "comparisons between runs. None: no limit."
        },
    )
    torch_num_threads: int | None = field(
        default=None,
        metadata={
            "help": "torch.set_num_threads at start (None: torch's default). On small shared CPUs use 1: with "
            "2 threads on 2 busy cores OpenMP barriers made tiny-model generation ~30x slower here."
        },
    )
    auto_resume: bool = field(
        default=True,
        metadata={
            "help": "Resume from the last complete checkpoint in output_dir when resume_from_checkpoint is unset, "
            "so a killed run continues when started again with the same command."
        },
    )
    accuracy_eval_split: str | None = field(
        default=None,
        metadata={"help": "Split scored by greedy decoding during training (task accuracy curve); None: off."},
    )
    accuracy_eval_samples: int | None = field(
        default=None, metadata={"help": "Rows of accuracy_eval_split to score (None: all)."}
    )
    accuracy_eval_steps: int = field(
        default=0, metadata={"help": "Score every N optimizer steps (0: only at the start and the end)."}
    )
    accuracy_eval_batch_size: int = field(default=64, metadata={"help": "Greedy generation batch size."})
    accuracy_eval_max_new_tokens: int | None = field(
        default=None, metadata={"help": "Greedy max new tokens (None: max_completion_length or 512)."}
    )

    def __post_init__(self):
        if self.prompt_truncation not in ("left", "right", "drop", "error"):
            raise ValueError(
                f"prompt_truncation must be 'left', 'right', 'drop' or 'error', got {self.prompt_truncation!r}"
            )


@dataclass
class SFTScriptArguments(TaskDataArguments):
    """Arguments of `src/sft.py` besides `trl.SFTConfig` and `trl.ModelConfig`."""

    num_demonstrations: int | None = field(
        default=None,
        metadata={"help": "Size of the demonstration subset drawn from the train split (None: the whole split)."},
    )
    demonstrations_changed_fraction: float | None = field(
        default=None,
        metadata={
            "help": "If set, draw this fraction of the demonstrations from changed transitions and the rest from "
            "unchanged ones (as far as each pool allows); None: a uniform draw."
        },
    )
    merged_output_dir: str | None = field(
        default=None,
        metadata={"help": "With LoRA: also merge the adapter into the base model and save a plain checkpoint here."},
    )


@dataclass
class GRPOScriptArguments(TaskDataArguments):
    """Arguments of `src/grpo.py` besides `trl.GRPOConfig` and `trl.ModelConfig`."""

    reward_funcs: list[str] = field(
        default_factory=lambda: ["textgame_task_specific"],
        metadata={"help": "Reward functions by registry name (rlvr_world.rewards.REWARD_FUNCS)."},
    )
    reward_kwargs: dict[str, Any] | str | None = field(
        default=None,
        metadata={
            "help": "Options for the reward builders, e.g. the task-specific reward's term weights. A mapping in "
            "YAML, a JSON object on the command line."
        },
    )
    num_unchanged_per_epoch: int | None = field(
        default=None,
        metadata={
            "help": "Rebalancing: each epoch uses all changed transitions plus this many unchanged ones, resampled "
            "every epoch. None: no rebalancing (every row, every epoch)."
        },
    )
    num_data_epochs: int | None = field(
        default=None,
        metadata={
            "help": "Epochs of rebalanced data to lay out, each with its own sample of unchanged rows; training "
            "walks them in order. None: enough for max_steps (if > 0), else ceil(num_train_epochs)."
        },
    )

    video_window_stride: int | None = field(
        default=None,
        metadata={
            "help": "Video tasks: GRPO prompts (and held-out windows) start every N frames of each episode "
            "(None: non-overlapping windows)."
        },
    )

    def __post_init__(self):
        super().__post_init__()
        self.reward_kwargs = _maybe_json(self.reward_kwargs, "reward_kwargs") or {}
        if isinstance(self.reward_funcs, str):
            self.reward_funcs = [self.reward_funcs]
        if self.num_data_epochs is not None and self.num_data_epochs < 1:
            raise ValueError("num_data_epochs must be >= 1")


# --------------------------------------------------------------------------------------------
# Video world-model pre-training (src/pretrain.py)
# --------------------------------------------------------------------------------------------


@dataclass
class VideoPretrainScriptArguments:
    """Arguments of `src/pretrain.py` besides `transformers.TrainingArguments`."""

    dataset_name: str | None = field(
        default=None, metadata={"help": "Episode DatasetDict (save_to_disk) from src/make_dataset.py pusht|rt1."}
    )
    tokenizer_name_or_path: str | None = field(
        default=None, metadata={"help": "The trained visual tokenizer (vqgan_fsq single-step, compressive_vqgan_fsq multi-step)."}
    )
    sequence_mode: str = field(default="single_step", metadata={"help": "'single_step' or 'multi_step'."})
    num_context_frames: int = field(default=4, metadata={"help": "Context frames k of a single-step sequence."})
    num_future_frames: int = field(default=1, metadata={"help": "Predicted frames T of a multi-step sequence."})
    num_action_bins: int = field(default=256, metadata={"help": "Bins per action dimension."})
    window_stride: int = field(default=1, metadata={"help": "Frames between the starts of two training windows."})
    eval_window_stride: int = field(default=8, metadata={"help": "The same for the validation and test windows."})
    max_train_windows: int | None = field(default=None, metadata={"help": "Train on a seeded subset of the windows."})
    max_eval_windows: int | None = field(default=256, metadata={"help": "Validation windows scored at each evaluation."})
    tokenized_dataset_dir: str | None = field(
        default=None, metadata={"help": "Where the tokenised windows are cached (default: output_dir/tokenized)."}
    )
    tokenize_batch_size: int = field(default=32, metadata={"help": "Frames/windows per tokenizer call."})
    world_model_config: dict[str, Any] | str | None = field(
        default=None,
        metadata={"help": "VideoWorldModelConfig fields (hidden_size, num_hidden_layers, ...); the vocabulary "
                  "comes from the tokenizer. A mapping in YAML, a JSON object on the command line."},
    )
    init_from: str | None = field(default=None, metadata={"help": "Start from this saved world model instead."})
    torch_num_threads: int | None = field(default=None, metadata={"help": "torch.set_num_threads at start."})
    auto_resume: bool = field(
        default=True, metadata={"help": "Resume from the last complete checkpoint in output_dir."}
    )
    max_train_seconds: float | None = field(
        default=None, metadata={"help": "Stop (and save) after this many seconds of training."}
    )
    match_train_seconds_of: str | None = field(
        default=None,
        metadata={"help": "Equal-wall-time control: train until the run in this directory (running beside this one, "
                  "or finished) has finished, and for as long as its training took (its log.jsonl)."},
    )

    def __post_init__(self):
        if self.sequence_mode not in ("single_step", "multi_step"):
            raise ValueError(f"sequence_mode must be 'single_step' or 'multi_step', got {self.sequence_mode!r}")
        self.world_model_config = _maybe_json(self.world_model_config, "world_model_config") or {}
