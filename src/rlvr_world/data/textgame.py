"""Text-game datasets: GPT-simulator records (real or generated) -> HF datasets, and the Hub format.

Our canonical columns (what SFT, GRPO and evaluation read):

- ``prompt``: chat messages ``[{"role": "user", "content": ...}]`` (or a plain string),
- ``completion``: the gold answer, ``[{"role": "assistant", "content": "The final answer is: ..."}]``,
- ``data_state`` / ``ground_truth``: JSON game states before and after (``{"game_state": [...]}``),
- ``data_action``, ``game``, ``state_id``, ``changed``.

The Hub dataset ``thuml/bytesized32-world-model-cot`` stores the same facts as ``prompt``,
``reward_model.ground_truth`` and ``extra_info.{data_state, data_action}``; :func:`to_hub_rows`
and :func:`from_hub_columns` convert between the two.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Iterable

import datasets

from rlvr_world.text.textgame import (
    GameRules,
    PromptOptions,
    build_examples_text,
    build_prompt,
    chat_prompt,
    current_game_state,
    format_answer,
    gold_diff,
    is_changed,
    next_game_state,
)

# Where the real ByteSized32 files live (read-only): $RLVR_WORLD_BYTESIZED32 or ../shared beside the repo.
REPO_ROOT = Path(__file__).resolve().parents[3]
DEFAULT_BYTESIZED32_DIR = Path(
    os.environ.get("RLVR_WORLD_BYTESIZED32", REPO_ROOT.parent / "shared" / "data" / "bytesized32")
)

CANONICAL_COLUMNS = {
    "prompt": "the user prompt (chat messages, or a plain string with `--plain_prompt`)",
    "completion": "the gold answer as an assistant message (`The final answer is: {diff}`)",
    "data_state": "JSON of the current game state `{\"game_state\": [objects..., score]}`",
    "ground_truth": "JSON of the next game state (after the action and the tick)",
    "data_action": "the action taken",
    "game": "the game's name",
    "state_id": "the transition's id within its game",
    "changed": "whether some object property or containment changes",
}


def load_examples(path: str | Path | None = None) -> dict:
    path = Path(path) if path else DEFAULT_BYTESIZED32_DIR / "examples.json"
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


def load_real_rules(rules_dir: str | Path | None = None) -> GameRules:
    return GameRules.from_dir(rules_dir or DEFAULT_BYTESIZED32_DIR / "rules")


def transition_row(record: dict, prompt: str, plain_prompt: bool = False, answer_format: str = "json") -> dict:
    """One canonical row for a GPT-simulator record whose prompt is already built."""
    current, nxt = current_game_state(record), next_game_state(record)
    answer = format_answer(gold_diff(current, nxt), answer_format)
    return {
        "prompt": prompt if plain_prompt else chat_prompt(prompt),
        "completion": answer if plain_prompt else [{"role": "assistant", "content": answer}],
        "data_state": json.dumps(current),
        "ground_truth": json.dumps(nxt),
        "data_action": record["tick_state"]["lastAction"],
        "game": record["game"],
        "state_id": int(record.get("state_id", -1)),
        "changed": is_changed(current, nxt),
    }


def build_dataset(
    records: Iterable[dict],
    rules: GameRules | None,
    examples: dict | None,
    options: PromptOptions | None = None,
    plain_prompt: bool = False,
) -> datasets.Dataset:
    """Canonical dataset for a list of records; the in-context examples are rendered once."""
    options = options or PromptOptions()
    examples_text = build_examples_text(examples, rules, options) if options.include_examples else None
    rows = [
        transition_row(r, build_prompt(r, rules, examples, options, examples_text), plain_prompt)
        for r in records
    ]
    return datasets.Dataset.from_list(rows)


def to_hub_rows(dataset: datasets.Dataset, split: str) -> datasets.Dataset:
    """The ``thuml/bytesized32-world-model-cot`` layout (the reference's RL parquet)."""

    def convert(row, index):
        return {
            "data_source": "llm_simulator",
            "prompt": row["prompt"],
            "ability": "next state prediction",
            "reward_model": {"style": "rule", "ground_truth": row["ground_truth"]},
            "extra_info": {
                "split": split,
                "index": index,
                "data_state": row["data_state"],
                "data_action": row["data_action"],
            },
        }

    keep = [c for c in dataset.column_names if c in ("prompt",)]
    return dataset.map(convert, with_indices=True, remove_columns=[c for c in dataset.column_names if c not in keep])


def from_hub_columns(dataset: datasets.Dataset) -> datasets.Dataset:
    """Map the Hub layout to our canonical columns so the same rewards and evaluation serve both."""
    if "reward_model" not in dataset.column_names or "extra_info" not in dataset.column_names:
        return dataset
    for index, row in enumerate(dataset.select(range(min(len(dataset), 1)))):
        for field, container in (("ground_truth", "reward_model"), ("data_state", "extra_info"), ("data_action", "extra_info")):
            if not isinstance(row[container], dict) or field not in row[container]:
                raise ValueError(f"row {index}: missing field '{container}.{field}' in the Hub-format dataset")

    def convert(row):
        current = json.loads(row["extra_info"]["data_state"])
        nxt = json.loads(row["reward_model"]["ground_truth"])
        return {
            "ground_truth": row["reward_model"]["ground_truth"],
            "data_state": row["extra_info"]["data_state"],
            "data_action": row["extra_info"]["data_action"],
            "changed": is_changed(current, nxt),
        }

    return dataset.map(convert)


def split_summary(dataset: datasets.Dataset, name: str) -> dict:
    changed = sum(dataset["changed"]) if "changed" in dataset.column_names else 0
    games = len(set(dataset["game"])) if "game" in dataset.column_names else 0
    return {"name": name, "num_rows": len(dataset), "changed": changed, "unchanged": len(dataset) - changed, "games": games}


# ----------------------------------------------------------------------------- command


def _parser():
    import argparse

    parser = argparse.ArgumentParser(
        prog="make_dataset.py textgame",
        description="Build a text-game state-prediction dataset (canonical or Hub layout) on disk.",
    )
    parser.add_argument("--source", choices=["generated", "jsonl"], default="generated",
                        help="our procedural generator, or GPT-simulator .jsonl/.jsonl.gz records")
    parser.add_argument("--input", help="the .jsonl(.gz) file for --source jsonl "
                        "(default: the real ByteSized32 test set)")
    parser.add_argument("--split_name", default="test", help="split name for --source jsonl")
    parser.add_argument("--output_dir", required=True)
    parser.add_argument("--rules_dir", help="rules directory (default: the real human-written rules)")
    parser.add_argument("--examples", help="examples.json with the in-context examples")
    parser.add_argument("--no_rules", action="store_true", help="drop the game rules from prompts")
    parser.add_argument("--no_examples", action="store_true", help="drop the in-context examples from prompts")
    parser.add_argument("--state_format", choices=["python", "json", "json_min"], default="python",
                        help="how states are printed in prompts (the reference prints Python dicts)")
    parser.add_argument("--short_instruction", action="store_true",
                        help="a short instruction instead of the reference's (with --no_examples; CPU-scale LMs)")
    parser.add_argument("--plain_prompt", action="store_true", help="plain-text prompt instead of chat messages")
    parser.add_argument("--hub_format", action="store_true",
                        help="write the thuml/bytesized32-world-model-cot layout instead of ours")
    parser.add_argument("--seed", type=int, default=0, help="generator seed")
    parser.add_argument("--episodes_per_game", type=int, default=None, help="generator episodes per game")
    parser.add_argument("--push_to_hub", metavar="REPO_ID", help="also push the dataset and its card to the Hub")
    return parser


def _load_splits(args) -> tuple[dict[str, list[dict]], GameRules | None, str]:
    from rlvr_world.text.textgame import load_transitions

    if args.source == "jsonl":
        path = Path(args.input) if args.input else DEFAULT_BYTESIZED32_DIR / "test.jsonl.gz"
        rules = None if args.no_rules else load_real_rules(args.rules_dir)
        return {args.split_name: load_transitions(path)}, rules, f"GPT-simulator transitions from `{path.name}`"
    from rlvr_world.data import textgame_generator as generator

    kwargs = {"seed": args.seed}
    if args.episodes_per_game:
        kwargs["episodes_per_game"] = args.episodes_per_game
    splits = generator.make_splits(**kwargs)
    rules = None
    if not args.no_rules:
        generated = GameRules(**generator.rules())
        # The in-context examples come from the real `dishwasher` game and need its rules.
        rules = generated if args.no_examples else load_real_rules(args.rules_dir).merged(generated)
    return splits, rules, f"rlvr-world's procedural text-game generator (seed {args.seed})"


def main(argv: list[str] | None = None) -> datasets.DatasetDict:
    import shlex
    import sys

    args = _parser().parse_args(argv)
    options = PromptOptions(not args.no_rules, not args.no_examples, args.state_format, args.short_instruction)
    examples = None if args.no_examples else load_examples(args.examples)
    splits, rules, source_description = _load_splits(args)
    canonical = datasets.DatasetDict(
        {name: build_dataset(records, rules, examples, options, args.plain_prompt) for name, records in splits.items()}
    )
    summaries = [split_summary(ds, name) for name, ds in canonical.items()]
    if args.hub_format:
        out = datasets.DatasetDict({name: to_hub_rows(ds, name) for name, ds in canonical.items()})
        columns = {
            "prompt": CANONICAL_COLUMNS["prompt"],
            "reward_model.ground_truth": CANONICAL_COLUMNS["ground_truth"],
            "extra_info.data_state": CANONICAL_COLUMNS["data_state"],
            "extra_info.data_action": CANONICAL_COLUMNS["data_action"],
        }
        layout = "the `thuml/bytesized32-world-model-cot` layout (parquet)"
    else:
        out, columns, layout = canonical, CANONICAL_COLUMNS, "rlvr-world's canonical columns (parquet)"
    save_dataset(out, args.output_dir)

    from rlvr_world.hub import dataset_card

    command = "python src/make_dataset.py textgame " + shlex.join(argv if argv is not None else sys.argv[1:])
    card = dataset_card(
        "textgame_dataset_card.md",
        {"license": "apache-2.0", "language": ["en"], "task_categories": ["text-generation"],
         "tags": ["world-model", "rlvr", "text-game"], "pretty_name": "Text-game state prediction"},
        pretty_name="Text-game state prediction",
        source_description=source_description,
        include_rules=options.include_rules,
        include_examples=options.include_examples,
        state_format=options.state_format,
        layout_description=layout,
        splits=summaries,
        columns=columns,
        command=command,
    )
    card.save(str(Path(args.output_dir) / "README.md"))
    for s in summaries:
        print(f"{s['name']}: {s['num_rows']} transitions ({s['changed']} changed) from {s['games']} games")
    print(f"wrote {args.output_dir}")
    if args.push_to_hub:
        out.push_to_hub(args.push_to_hub)
        card.push_to_hub(args.push_to_hub, repo_type="dataset")
    return out


def save_dataset(dataset: datasets.DatasetDict, output_dir: str | Path) -> None:
    """``save_to_disk`` (for ``load_from_disk``) plus the Hub's parquet layout ``data/<split>-*.parquet``."""
    output_dir = Path(output_dir)
    dataset.save_to_disk(str(output_dir))
    (output_dir / "data").mkdir(exist_ok=True)
    for name, split in dataset.items():
        split.to_parquet(str(output_dir / "data" / f"{name}-00000-of-00001.parquet"))
