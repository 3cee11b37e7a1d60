"""Small, fast assets for tests and smoke runs of the training entry points: a handful of
generated text-game transitions (short prompts), an untrained tiny model built on them, and a
warm-started copy that already answers in the right format.

    from rlvr_world.training.smoke import smoke_assets
    paths = smoke_assets("/tmp/x")   # {"data", "model", "warm"}; built once, then reused
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from rlvr_world.training.tiny_model import TinyModelConfig

SMOKE_GAMES = ["grow-bean", "measure-tea", "heat-soup", "sort-recycling"]
SMOKE_MODEL = TinyModelConfig(vocab_size=1024, hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                              num_key_value_heads=2, intermediate_size=128, max_position_embeddings=1024)


def smoke_dataset(episodes_per_game: int = 1, seed: int = 0, games: list[str] | None = SMOKE_GAMES):
    """A DatasetDict (`train`, `heldout`) of generated transitions with rule-free, example-free JSON prompts."""
    import datasets

    from rlvr_world.data.textgame import build_dataset
    from rlvr_world.data.textgame_generator import generate_transitions
    from rlvr_world.text.textgame import PromptOptions

    records = generate_transitions(games=games, episodes_per_game=episodes_per_game, seed=seed)
    ds = build_dataset(records, None, None, PromptOptions(include_rules=False, include_examples=False,
                                                          state_format="json"))
    # Every 5th row held out: enough for an accuracy curve in tests; not the demo's split.
    held = [i for i in range(len(ds)) if i % 5 == 4]
    train = [i for i in range(len(ds)) if i % 5 != 4]
    return datasets.DatasetDict({"train": ds.select(train), "heldout": ds.select(held)})


def smoke_assets(root: str | os.PathLike, warm: bool = False, model_config: TinyModelConfig = SMOKE_MODEL) -> dict:
    """Build (once) under `root` the smoke dataset and an untrained tiny model, and with `warm=True`
    a warm-started copy (see `warm_start`); return their paths `{"data", "model"[, "warm"]}`."""
    from rlvr_world.training.tiny_model import build_tiny_model, texts_from_dataset

    root = Path(root)
    paths = {"data": str(root / "data"), "model": str(root / "model")}
    if not (root / "done.json").is_file():
        root.mkdir(parents=True, exist_ok=True)
        smoke_dataset().save_to_disk(paths["data"])
        build_tiny_model(texts_from_dataset(paths["data"], ["train"]), paths["model"], model_config)
        (root / "done.json").write_text(json.dumps(paths))
    if warm:
        paths["warm"] = str(root / "warm")
        if not (root / "warm_done.json").is_file():
            warm_start(paths["model"], paths["data"], paths["warm"])
            (root / "warm_done.json").write_text(json.dumps(paths))
    return paths


def warm_start(model_dir: str | os.PathLike, data_dir: str | os.PathLike, output_dir: str | os.PathLike,
               steps: int = 20, batch_size: int = 8, lr: float = 1e-2, prompt_tail_tokens: int | None = None,
               seed: int = 0) -> str:
    """Teach the untrained tiny model, in a few seconds, to answer "nothing changes" in the right format.

    Trains on the prompt (or its last `prompt_tail_tokens` tokens) followed by the copy answer
    (answer tokens only in the loss); about 10 s on one core. Sampled at temperature 1 the
    model then gives a mix of well-formed copy answers (reward > 0 under the real rewards) and broken ones
    (reward 0): GRPO groups have reward variance, hence non-zero advantages and gradients, as in a
    real run.
    """
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # see TaskDataArguments.torch_num_threads
    try:
        return _warm_start(model_dir, data_dir, output_dir, steps, batch_size, lr, prompt_tail_tokens, seed)
    finally:
        torch.set_num_threads(threads)


def _warm_start(model_dir, data_dir, output_dir, steps, batch_size, lr, prompt_tail_tokens, seed) -> str:
    import datasets
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from rlvr_world.text.textgame import empty_diff, format_answer

    torch.manual_seed(seed)
    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    model = AutoModelForCausalLM.from_pretrained(str(model_dir))
    rows = datasets.load_from_disk(str(data_dir))["train"]
    answer = [{"role": "assistant", "content": format_answer(empty_diff())}]
    examples = []
    for prompt in rows["prompt"]:
        p = tokenizer.apply_chat_template(prompt, add_generation_prompt=True, tokenize=True)["input_ids"]
        full = tokenizer.apply_chat_template(prompt + answer, tokenize=True)["input_ids"]
        cut = 0 if prompt_tail_tokens is None else max(len(p) - prompt_tail_tokens, 0)
        examples.append((full[cut:], len(p) - cut))
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr)
    model.train()
    gen = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        idx = torch.randint(len(examples), (batch_size,), generator=gen).tolist()
        width = max(len(examples[i][0]) for i in idx)
        ids = torch.full((batch_size, width), tokenizer.pad_token_id)
        labels = torch.full((batch_size, width), -100)
        mask = torch.zeros((batch_size, width), dtype=torch.long)
        for row, i in enumerate(idx):
            full, n_prompt = examples[i]
            ids[row, : len(full)] = torch.tensor(full)
            labels[row, n_prompt : len(full)] = torch.tensor(full[n_prompt:])
            mask[row, : len(full)] = 1
        loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    model.save_pretrained(str(output_dir))
    tokenizer.save_pretrained(str(output_dir))
    return str(output_dir)
