"""Task-independent dataset helpers for the training entry points.

- `load_split`: a `load_from_disk` folder (DatasetDict or Dataset) or a Hub id.
- `limit_prompt_length`: TRL no longer truncates prompts, so it happens here, measured in tokens
  after the chat template.
- `rebalanced_epochs`: per epoch, every "positive" row (e.g. changed transitions) plus N sampled
  other rows, resampled each epoch; the epochs are laid out one after the other so the trainer
  (with `shuffle_dataset: false`) walks them in order and a resumed run sees the same data.
- `select_demonstrations`: a seeded (optionally stratified) subset for SFT.
"""

from __future__ import annotations

import logging
import os

import numpy as np

logger = logging.getLogger(__name__)


def load_split(name: str, split: str, config: str | None = None):
    """Load one split from a `save_to_disk` folder or the Hub."""
    import datasets

    if os.path.isdir(name):
        loaded = datasets.load_from_disk(name)
        if isinstance(loaded, datasets.DatasetDict):
            if split not in loaded:
                raise ValueError(f"split {split!r} not in {name} (has {', '.join(loaded)})")
            return loaded[split]
        return loaded
    if os.path.isfile(name):
        ext = name.rsplit(".", 1)[-1]
        builder = {"jsonl": "json", "json": "json", "parquet": "parquet", "csv": "csv"}.get(ext)
        if builder is None:
            raise ValueError(f"cannot load dataset file {name}")
        return datasets.load_dataset(builder, data_files=name, split="train")
    return datasets.load_dataset(name, config, split=split)


def take_first(dataset, n: int | None, seed: int):
    """A seeded random subset of size n (the whole dataset if n is None or too large)."""
    if n is None or n >= len(dataset):
        return dataset
    return dataset.shuffle(seed=seed).select(range(n))


def _prompt_token_count(tokenizer, prompt) -> int:
    if isinstance(prompt, list):  # chat messages
        ids = tokenizer.apply_chat_template(prompt, add_generation_prompt=True, tokenize=True)
        if isinstance(ids, dict) or hasattr(ids, "keys"):
            ids = ids["input_ids"]
        return len(ids)
    return len(tokenizer(prompt, add_special_tokens=False)["input_ids"])


def _truncate_text(tokenizer, text: str, n_tokens: int, side: str) -> str:
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    if n_tokens <= 0:
        return ""
    kept = ids[-n_tokens:] if side == "left" else ids[:n_tokens]
    return tokenizer.decode(kept, skip_special_tokens=False)


def _truncate_prompt(tokenizer, prompt, max_len: int, side: str):
    """Shorten the last user message (chat) or the text so that the templated prompt fits."""
    for _ in range(4):  # decode/re-encode can shift a few tokens; converge in a few passes
        total = _prompt_token_count(tokenizer, prompt)
        excess = total - max_len
        if excess <= 0:
            return prompt
        if isinstance(prompt, list):
            idx = max(i for i, m in enumerate(prompt) if m["role"] == "user")
            content = prompt[idx]["content"]
            n = len(tokenizer(content, add_special_tokens=False)["input_ids"])
            prompt = [dict(m) for m in prompt]
            prompt[idx]["content"] = _truncate_text(tokenizer, content, n - excess, side)
        else:
            n = len(tokenizer(prompt, add_special_tokens=False)["input_ids"])
            prompt = _truncate_text(tokenizer, prompt, n - excess, side)
    return prompt


def limit_prompt_length(dataset, tokenizer, max_len: int | None, mode: str = "left", num_proc: int | None = None):
    """Make every prompt fit `max_len` tokens (after the chat template).

    mode: 'left' / 'right' truncate the (last user message of the) prompt on that side, 'drop' removes
    the row, 'error' raises.
    """
    if max_len is None:
        return dataset
    lengths = [_prompt_token_count(tokenizer, p) for p in dataset["prompt"]]
    too_long = [i for i, n in enumerate(lengths) if n > max_len]
    if not too_long:
        return dataset
    logger.warning("%d of %d prompts exceed %d tokens (longest %d): %s", len(too_long), len(dataset), max_len,
                   max(lengths), mode)
    if mode == "error":
        raise ValueError(f"{len(too_long)} prompts exceed max_prompt_length={max_len} (longest {max(lengths)})")
    if mode == "drop":
        bad = set(too_long)
        return dataset.select([i for i in range(len(dataset)) if i not in bad])
    bad = set(too_long)

    def fix(example, idx):
        if idx in bad:
            return {"prompt": _truncate_prompt(tokenizer, example["prompt"], max_len, mode)}
        return {"prompt": example["prompt"]}

    return dataset.map(fix, with_indices=True, num_proc=num_proc, desc="Truncating prompts")


def rebalanced_epochs(dataset, positive: list[bool], num_negative: int | None, num_epochs: int, seed: int):
    """Lay out `num_epochs` epochs; each has every positive row plus `num_negative` negatives drawn
    without replacement (a fresh draw per epoch, seed + epoch), shuffled within the epoch.

    `num_negative=None` keeps every row in every epoch (only shuffled). Returns (dataset, info).
    """
    positive = np.asarray(positive, dtype=bool)
    pos_idx = np.flatnonzero(positive)
    neg_idx = np.flatnonzero(~positive)
    order = []
    for epoch in range(num_epochs):
        rng = np.random.default_rng(seed + epoch)
        if num_negative is None:
            negs = neg_idx
        else:
            k = min(int(num_negative), len(neg_idx))
            negs = rng.choice(neg_idx, size=k, replace=False) if k > 0 else np.array([], dtype=int)
        block = np.concatenate([pos_idx, negs]).astype(int)
        rng.shuffle(block)
        order.append(block)
    order = np.concatenate(order) if order else np.array([], dtype=int)
    info = {
        "num_positive": int(len(pos_idx)),
        "num_negative_pool": int(len(neg_idx)),
        "rows_per_epoch": int(len(order) // max(num_epochs, 1)),
        "num_epochs": int(num_epochs),
        "total_rows": int(len(order)),
    }
    return dataset.select(order.tolist()), info


def select_demonstrations(dataset, n: int | None, seed: int, positive: list[bool] | None = None,
                          positive_fraction: float | None = None):
    """A seeded subset of n rows; with `positive_fraction`, that share comes from the positive rows."""
    if n is None or n >= len(dataset):
        return dataset.shuffle(seed=seed)
    rng = np.random.default_rng(seed)
    if positive_fraction is None or positive is None:
        idx = rng.choice(len(dataset), size=n, replace=False)
    else:
        positive = np.asarray(positive, dtype=bool)
        pos, neg = np.flatnonzero(positive), np.flatnonzero(~positive)
        n_pos = min(len(pos), int(round(n * positive_fraction)))
        n_neg = min(len(neg), n - n_pos)
        n_pos = min(len(pos), n - n_neg)  # top up from the other pool if one runs short
        idx = np.concatenate([rng.choice(pos, size=n_pos, replace=False), rng.choice(neg, size=n_neg, replace=False)])
        rng.shuffle(idx)
    return dataset.select(idx.tolist())
