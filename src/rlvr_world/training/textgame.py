"""The text-game task for the training entry points: dataset builders, rewards, scoring.

Both our canonical datasets (`src/make_dataset.py textgame`) and the Hub layout
(`thuml/bytesized32-world-model-cot`: `prompt`, `reward_model.ground_truth`,
`extra_info.{data_state, data_action}`) are accepted; the Hub columns are mapped to ours
(`ground_truth`, `data_state`, `data_action`, `changed`) so the same reward callables serve both.
"""

from __future__ import annotations

import json
import logging
import math

from rlvr_world.training.data import (
    limit_prompt_length,
    load_split,
    rebalanced_epochs,
    select_demonstrations,
    take_first,
)
from rlvr_world.training.tasks import TrainingTask, register_task

logger = logging.getLogger(__name__)

REWARD_COLUMNS = ("prompt", "data_state", "ground_truth")
KEEP_COLUMNS = ("prompt", "data_state", "ground_truth", "data_action", "changed", "game", "state_id")


def load_canonical(name: str, split: str, config: str | None = None):
    """One split in our canonical columns, whatever the source layout."""
    from rlvr_world.data.textgame import from_hub_columns
    from rlvr_world.text.textgame import is_changed

    dataset = from_hub_columns(load_split(name, split, config))
    missing = [c for c in REWARD_COLUMNS if c not in dataset.column_names]
    if missing:
        raise ValueError(
            f"{name} [{split}] lacks the column(s) {missing}; expected our canonical text-game columns or the "
            f"Hub layout (prompt, reward_model.ground_truth, extra_info.data_state); has {dataset.column_names}"
        )
    if "changed" not in dataset.column_names:
        dataset = dataset.map(
            lambda row: {"changed": is_changed(json.loads(row["data_state"]), json.loads(row["ground_truth"]))}
        )
    return dataset


def _seed(script_args, training_args) -> int:
    return int(training_args.seed) + int(script_args.data_seed_offset)


def rows_per_step(training_args) -> int:
    """Dataset rows (prompts) one GRPO optimizer step consumes across all processes."""
    world = max(int(getattr(training_args, "world_size", 1) or 1), 1)
    per_step = training_args.per_device_train_batch_size * world * training_args.gradient_accumulation_steps
    return max(per_step // max(int(training_args.num_generations or 1), 1), 1)


def build_grpo_dataset(script_args, training_args, tokenizer, load=None, keep=KEEP_COLUMNS):
    """The RL training set: every changed transition plus `num_unchanged_per_epoch` unchanged ones,
    resampled each epoch and laid out epoch after epoch (see `rebalanced_epochs`).

    The number of epochs laid out is `num_data_epochs` if set, else enough for `max_steps` (when > 0)
    or `ceil(num_train_epochs)`; `grpo.py` then trains one pass over the laid-out rows.
    `load(name, split, config)` reads a split in a task's canonical columns (with `changed`; other
    tasks pass theirs) and `keep` names the columns the rewards read.
    """
    seed = _seed(script_args, training_args)
    dataset = (load or load_canonical)(script_args.dataset_name, script_args.dataset_train_split,
                                       script_args.dataset_config)
    dataset = take_first(dataset, script_args.max_train_samples, seed)
    dataset = dataset.remove_columns([c for c in dataset.column_names if c not in keep])
    dataset = limit_prompt_length(dataset, tokenizer, script_args.max_prompt_length, script_args.prompt_truncation)

    n_changed = sum(bool(c) for c in dataset["changed"])
    n_unchanged = len(dataset) - n_changed
    per_epoch = len(dataset) if script_args.num_unchanged_per_epoch is None else (
        n_changed + min(script_args.num_unchanged_per_epoch, n_unchanged)
    )
    if per_epoch == 0:
        raise ValueError("the rebalanced epoch is empty (no changed transitions and num_unchanged_per_epoch=0)")
    if script_args.num_data_epochs is not None:
        epochs = script_args.num_data_epochs
    elif training_args.max_steps and training_args.max_steps > 0:
        epochs = math.ceil(training_args.max_steps * rows_per_step(training_args) / per_epoch)
    else:
        epochs = max(math.ceil(training_args.num_train_epochs), 1)
    dataset, info = rebalanced_epochs(
        dataset, dataset["changed"], script_args.num_unchanged_per_epoch, epochs, seed
    )
    info["num_changed"], info["num_unchanged"] = n_changed, n_unchanged
    return dataset, info


def gold_completion(row) -> str | list:
    """The gold answer for a row without a `completion` column."""
    from rlvr_world.text.textgame import format_answer, gold_diff

    text = format_answer(gold_diff(json.loads(row["data_state"]), json.loads(row["ground_truth"])))
    return [{"role": "assistant", "content": text}] if isinstance(row["prompt"], list) else text


def build_sft_dataset(script_args, training_args, tokenizer, load=None):
    """Demonstrations: `num_demonstrations` rows of the train split (all if None), as prompt/completion.

    `load` as in `build_grpo_dataset`."""
    seed = _seed(script_args, training_args)
    dataset = (load or load_canonical)(script_args.dataset_name, script_args.dataset_train_split,
                                       script_args.dataset_config)
    dataset = take_first(dataset, script_args.max_train_samples, seed)
    if "completion" not in dataset.column_names:
        dataset = dataset.map(lambda row: {"completion": gold_completion(row)})
    dataset = select_demonstrations(
        dataset,
        script_args.num_demonstrations,
        seed,
        positive=dataset["changed"],
        positive_fraction=script_args.demonstrations_changed_fraction,
    )
    info = {"num_demonstrations": len(dataset), "num_changed": int(sum(bool(c) for c in dataset["changed"]))}
    dataset = dataset.remove_columns([c for c in dataset.column_names if c not in ("prompt", "completion")])
    dataset = limit_prompt_length(dataset, tokenizer, script_args.max_prompt_length, script_args.prompt_truncation)
    return dataset, info


def build_reward_funcs(names, options=None):
    from rlvr_world.rewards import get_reward_funcs

    return get_reward_funcs(list(names), options or {})


def score_completions(completions, rows) -> list[dict]:
    from rlvr_world.metrics.text import score_completion

    results = []
    for text, row in zip(completions, rows):
        r = score_completion(text, row["data_state"], row["ground_truth"])
        results.append({"correct": r.correct, "changed": r.changed, "format_error": r.format_error})
    return results


def load_eval_rows(script_args, split):
    return load_canonical(script_args.dataset_name, split, script_args.dataset_config)


TEXTGAME = register_task(
    TrainingTask(
        name="textgame",
        build_grpo_dataset=build_grpo_dataset,
        build_sft_dataset=build_sft_dataset,
        build_reward_funcs=build_reward_funcs,
        score_completions=score_completions,
        load_eval_rows=load_eval_rows,
    )
)
