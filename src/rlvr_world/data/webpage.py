"""Web-page datasets: simulated-shop transitions -> HF datasets, and the Hub layout of the reference.

Our canonical columns (what SFT, GRPO and evaluation read):

- ``prompt``: chat messages ``[{"role": "user", "content": ...}]`` (or a plain string),
- ``completion``: the gold changes as an assistant message (the three sections),
- ``ground_truth``: the gold changes as text (``New items: ... Deleted items: ... Updated items: ...``),
- ``url``, ``objective``, ``previous_action``, ``action``, ``action_type``, ``page_type``,
  ``next_page_type``, ``num_changes``, ``changed``, ``episode``, ``step``.

The Hub dataset ``thuml/webarena-world-model-cot`` keeps SFT columns ``question`` (the prompt text)
and ``answer`` (reasoning, then the three sections), and RL columns ``prompt`` (chat messages) and
``reward_model.ground_truth``; :func:`from_hub_columns` maps either layout to ours, and
:func:`to_hub_rows` writes ours in that layout.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import datasets

from rlvr_world.text.webpage import (
    WebPromptOptions,
    build_prompt,
    count_changes,
    format_changes,
    parse_changes,
)

CANONICAL_COLUMNS = {
    "prompt": "the user prompt (chat messages, or a plain string with `--plain_prompt`)",
    "completion": "the gold changes as an assistant message (three sections)",
    "ground_truth": "the gold changes: `New items:`, `Deleted items:`, `Updated items:` (item lines or `None`)",
    "url": "the current page's URL",
    "objective": "the user's objective in this episode",
    "previous_action": "the action before the current one (`None` at the start)",
    "action": "the current action (`click [id]`, `type [id] [text]`, `select [id] [option]`, `go_back`)",
    "action_type": "the action's verb",
    "page_type": "the current page's type (home, search, product, cart, account, order)",
    "next_page_type": "the page type after the action",
    "num_changes": "how many item lines change",
    "changed": "whether anything changes",
    "episode": "the episode's index",
    "step": "the step within the episode",
}


class WebDataFormatError(ValueError):
    """A dataset row lacks a field or holds an unusable value; the message names the row and field."""


def transition_row(record: dict, options: WebPromptOptions, plain_prompt: bool = False) -> dict:
    """One canonical row for a generated transition record."""
    prompt = build_prompt(record["url"], record["objective"], record["previous_action"], record["observation"],
                          record["action"], options)
    answer = format_changes(record["changes"])
    n = count_changes(record["changes"])
    return {
        "prompt": prompt if plain_prompt else [{"role": "user", "content": prompt}],
        "completion": answer if plain_prompt else [{"role": "assistant", "content": answer}],
        "ground_truth": answer,
        **{k: record[k] for k in ("url", "objective", "previous_action", "action", "action_type", "page_type",
                                  "next_page_type", "episode", "step")},
        "num_changes": n,
        "changed": n > 0,
    }


def build_dataset(records: Iterable[dict], options: WebPromptOptions | None = None,
                  plain_prompt: bool = False) -> datasets.Dataset:
    options = options or WebPromptOptions()
    return datasets.Dataset.from_list([transition_row(r, options, plain_prompt) for r in records])


# ----------------------------------------------------------------------------- the Hub layout


def to_hub_rows(dataset: datasets.Dataset, split: str) -> datasets.Dataset:
    """The ``thuml/webarena-world-model-cot`` layout: SFT ``question``/``answer`` and RL ``prompt``/``reward_model``."""

    def convert(row, index):
        prompt = row["prompt"] if isinstance(row["prompt"], list) else [{"role": "user", "content": row["prompt"]}]
        return {
            "data_source": "webarena",
            "prompt": prompt,
            "ability": "next state prediction",
            "reward_model": {"style": "rule", "ground_truth": row["ground_truth"]},
            "extra_info": {"split": split, "index": index},
            "question": prompt[-1]["content"],
            "answer": row["ground_truth"],
        }

    return dataset.map(convert, with_indices=True, remove_columns=dataset.column_names)


def _user_text(prompt) -> str | None:
    if isinstance(prompt, str):
        return prompt
    if isinstance(prompt, list):
        users = [m.get("content") for m in prompt if isinstance(m, dict) and m.get("role") == "user"]
        return users[-1] if users and isinstance(users[-1], str) else None
    return None


def _hub_row(row: dict, index: int, where: str) -> dict:
    if "reward_model" in row and row["reward_model"] is not None:
        reward_model = row["reward_model"]
        gold = reward_model.get("ground_truth") if isinstance(reward_model, dict) else None
        if not isinstance(gold, str):
            raise WebDataFormatError(f"{where}, row {index}: field 'reward_model.ground_truth' must be a string")
        prompt = row.get("prompt")
        if _user_text(prompt) is None:
            raise WebDataFormatError(f"{where}, row {index}: field 'prompt' must be chat messages with a user turn")
    else:
        question, answer = row.get("question"), row.get("answer")
        for name, value in (("question", question), ("answer", answer)):
            if not isinstance(value, str):
                raise WebDataFormatError(f"{where}, row {index}: field '{name}' must be a string")
        prompt, gold = [{"role": "user", "content": question}], answer
    changes = parse_changes(gold)
    if changes is None:
        raise WebDataFormatError(f"{where}, row {index}: the gold answer has no 'New items:' / 'Deleted items:' / "
                                 "'Updated items:' section")
    gold = format_changes({k: [line for line in v if line != "None"] for k, v in changes.items()})
    n = sum(line != "None" for lines in changes.values() for line in lines)
    answer = row.get("answer") if isinstance(row.get("answer"), str) else gold
    return {"prompt": prompt, "completion": [{"role": "assistant", "content": answer}], "ground_truth": gold,
            "num_changes": n, "changed": n > 0}


def from_hub_columns(dataset: datasets.Dataset, where: str = "dataset") -> datasets.Dataset:
    """Map the Hub layout (SFT ``question``/``answer`` or RL ``prompt`` + ``reward_model.ground_truth``) to ours.

    The gold changes are re-written in our canonical form (sections in order, ``None`` for an empty
    one), so the same rewards score both. A dataset already in our columns is returned as it is.
    """
    columns = set(dataset.column_names)
    if "ground_truth" in columns:
        return dataset
    if "reward_model" not in columns and not {"question", "answer"} <= columns:
        raise WebDataFormatError(
            f"{where}: expected our canonical web-page columns (prompt, ground_truth), the Hub SFT columns "
            f"(question, answer) or the Hub RL columns (prompt, reward_model.ground_truth); has {sorted(columns)}"
        )
    rows = [_hub_row(row, i, where) for i, row in enumerate(dataset)]
    keep = [c for c in ("data_source", "extra_info") if c in columns]
    out = datasets.Dataset.from_list(rows)
    for name in keep:
        out = out.add_column(name, dataset[name])
    return out


def split_summary(dataset: datasets.Dataset, name: str) -> dict:
    changed = sum(dataset["changed"])
    pages = sorted(set(dataset["page_type"])) if "page_type" in dataset.column_names else []
    return {"name": name, "num_rows": len(dataset), "changed": changed, "unchanged": len(dataset) - changed,
            "page_types": ", ".join(pages)}


# ----------------------------------------------------------------------------- command


def _parser():
    import argparse

    from rlvr_world.data.webpage_generator import (
        DEFAULT_EPISODES,
        DEFAULT_HELDOUT_PAGES,
        PAGE_TYPES,
    )

    parser = argparse.ArgumentParser(
        prog="make_dataset.py webpage",
        description="Build a web-page world-model dataset from the simulated shop (canonical or Hub layout).",
    )
    parser.add_argument("--output_dir", required=True)
    parser.add_argument("--seed", type=int, default=0, help="generator seed (catalog, episodes, splits)")
    parser.add_argument("--episodes", type=int, default=DEFAULT_EPISODES, help="episodes of the scripted agent")
    parser.add_argument("--noise", type=float, default=0.3, help="probability of a random action at each step")
    parser.add_argument("--heldout_pages", nargs="+", default=list(DEFAULT_HELDOUT_PAGES), choices=PAGE_TYPES,
                        help="page types held out: every transition from or to them goes to heldout_pages")
    parser.add_argument("--no_instruction", action="store_true",
                        help="prompts with the five input fields only (short, for tiny models)")
    parser.add_argument("--plain_prompt", action="store_true", help="plain-text prompt instead of chat messages")
    parser.add_argument("--hub_format", action="store_true",
                        help="write the thuml/webarena-world-model-cot layout instead of ours")
    parser.add_argument("--push_to_hub", metavar="REPO_ID", help="also push the dataset and its card to the Hub")
    return parser


def main(argv: list[str] | None = None) -> datasets.DatasetDict:
    import shlex
    import sys

    from rlvr_world.data.textgame import save_dataset
    from rlvr_world.data.webpage_generator import make_splits
    from rlvr_world.hub import dataset_card

    args = _parser().parse_args(argv)
    options = WebPromptOptions(include_instruction=not args.no_instruction)
    splits = make_splits(args.seed, args.episodes, args.heldout_pages, noise=args.noise)
    canonical = datasets.DatasetDict({name: build_dataset(r, options, args.plain_prompt) for name, r in splits.items()})
    summaries = [split_summary(ds, name) for name, ds in canonical.items()]
    if args.hub_format:
        out = datasets.DatasetDict({name: to_hub_rows(ds, name) for name, ds in canonical.items()})
        columns = {"question": "the prompt text (SFT)", "answer": "the gold changes (SFT target)",
                   "prompt": "the prompt as chat messages (RL)", "reward_model.ground_truth": CANONICAL_COLUMNS["ground_truth"]}
        layout = "the `thuml/webarena-world-model-cot` layout (parquet)"
    else:
        out, columns, layout = canonical, CANONICAL_COLUMNS, "rlvr-world's canonical columns (parquet)"
    save_dataset(out, args.output_dir)
    command = "python src/make_dataset.py webpage " + shlex.join(argv if argv is not None else sys.argv[1:])
    card = dataset_card(
        "webpage_dataset_card.md",
        {"license": "apache-2.0", "language": ["en"], "task_categories": ["text-generation"],
         "tags": ["world-model", "rlvr", "web"], "pretty_name": "Web-page state-change prediction"},
        pretty_name="Web-page state-change prediction",
        seed=args.seed, episodes=args.episodes, heldout_pages=", ".join(args.heldout_pages),
        include_instruction=options.include_instruction, layout_description=layout,
        splits=summaries, columns=columns, command=command,
    )
    card.save(str(Path(args.output_dir) / "README.md"))
    for s in summaries:
        print(f"{s['name']}: {s['num_rows']} transitions ({s['changed']} with changes) on pages {s['page_types']}")
    print(f"wrote {args.output_dir}")
    if args.push_to_hub:
        out.push_to_hub(args.push_to_hub)
        card.push_to_hub(args.push_to_hub, repo_type="dataset")
    return out
