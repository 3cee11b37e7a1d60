"""The web-page task for the training entry points: dataset builders, rewards, scoring.

Both our canonical datasets (`src/make_dataset.py webpage`) and the Hub layout of
`thuml/webarena-world-model-cot` (SFT `question`/`answer`, RL `prompt` + `reward_model.ground_truth`)
are accepted; the Hub columns are mapped to ours (`prompt`, `completion`, `ground_truth`, `changed`)
so the same reward callables (`webpage_f1`, ...) serve both. The builders are the text game's, reading
our columns: GRPO walks the train split (`num_unchanged_per_epoch` rebalances transitions that change
nothing), SFT draws `num_demonstrations` of it (`demonstrations_changed_fraction`: the share that
change the page).
"""

from __future__ import annotations

from functools import partial

from rlvr_world.training import textgame
from rlvr_world.training.tasks import TrainingTask, register_task

KEEP_COLUMNS = ("prompt", "ground_truth", "changed", "action_type", "page_type", "num_changes")


def load_canonical(name: str, split: str, config: str | None = None):
    """One split in our canonical columns, whatever the source layout."""
    from rlvr_world.data.webpage import from_hub_columns
    from rlvr_world.training.data import load_split

    return from_hub_columns(load_split(name, split, config), where=f"{name} [{split}]")


def score_completions(completions, rows) -> list[dict]:
    """Per completion: `correct` (every line right), `changed`, `format_error`, and the line F1 / P / R."""
    from rlvr_world.metrics.webpage import score_completion

    results = []
    for text, row in zip(completions, rows):
        s = score_completion(text, row["ground_truth"])
        results.append({"correct": s.exact, "changed": bool(row["changed"]), "format_error": s.format_error,
                        "f1": s.f1, "precision": s.precision, "recall": s.recall})
    return results


def load_eval_rows(script_args, split):
    return load_canonical(script_args.dataset_name, split, script_args.dataset_config)


WEBPAGE = register_task(
    TrainingTask(
        name="webpage",
        build_grpo_dataset=partial(textgame.build_grpo_dataset, load=load_canonical, keep=KEEP_COLUMNS),
        build_sft_dataset=partial(textgame.build_sft_dataset, load=load_canonical),
        build_reward_funcs=textgame.build_reward_funcs,
        score_completions=score_completions,
        load_eval_rows=load_eval_rows,
    )
)
