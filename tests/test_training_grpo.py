"""src/grpo.py on the smoke assets: a 2-step run with the real rewards, and the GRPO dataset builder."""

import json

import datasets
import pytest
import yaml
from helpers import entry

from rlvr_world.training.cli import is_complete_checkpoint, parse_recipe
from rlvr_world.training.smoke import smoke_assets

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="session")
def assets(tmp_path_factory):
    return smoke_assets(tmp_path_factory.getbasetemp() / "training_smoke", warm=True)


def grpo_recipe(tmp_path, assets, **values):
    recipe = {
        "task": "textgame", "model_name_or_path": assets["warm"], "dataset_name": assets["data"],
        "num_unchanged_per_epoch": 4, "reward_funcs": ["textgame_task_specific", "textgame_binary"],
        "reward_weights": [1.0, 0.0], "learning_rate": 1e-3, "per_device_train_batch_size": 8,
        "num_generations": 4, "max_completion_length": 32, "temperature": 1.0, "beta": 0.001,
        "loss_type": "grpo", "scale_rewards": "group", "max_steps": 2, "activation_checkpointing": False,
        "use_cpu": True, "bf16": False, "logging_steps": 1, "save_steps": 2, "report_to": "none", "seed": 0,
        "output_dir": str(tmp_path / "grpo"), **values,
    }
    path = tmp_path / "grpo.yaml"
    path.write_text(yaml.safe_dump(recipe))
    return str(path)


def test_two_grpo_steps_with_the_real_rewards(assets, tmp_path):
    import torch
    from transformers import AutoModelForCausalLM

    grpo = entry("grpo")
    recipe = grpo_recipe(tmp_path, assets, accuracy_eval_split="heldout", accuracy_eval_samples=4,
                         accuracy_eval_max_new_tokens=32)
    trainer = grpo.main(*parse_recipe(grpo.parser_types(), [recipe]))
    out = tmp_path / "grpo"
    assert trainer.state.global_step == 2
    assert is_complete_checkpoint(str(out / "checkpoint-2")) and (out / "model.safetensors").is_file()

    logs = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    steps = [r for r in logs if "rewards/textgame_task_specific/mean" in r]
    assert [r["step"] for r in steps] == [1, 2]
    for r in steps:
        assert 0.0 <= r["rewards/textgame_task_specific/mean"] <= 1.3
        assert 0.0 <= r["rewards/textgame_binary/mean"] <= 1.0
        assert r["reward"] == pytest.approx(r["rewards/textgame_task_specific/mean"])  # weights [1, 0]
        assert r["timing/generation_s"] > 0 and r["timing/generated_tokens"] > 0 and r["step_time"] > 0
        assert "kl" in r and r["completions/max_length"] <= 32
    # the warm-started model gets some answers right and some wrong: a real learning signal
    assert any(r["reward_std"] > 0 for r in steps) and any(r["grad_norm"] > 0 for r in steps)
    assert any(r["rewards/textgame_task_specific/mean"] > 0 for r in steps)

    before = AutoModelForCausalLM.from_pretrained(assets["warm"]).state_dict()
    after = AutoModelForCausalLM.from_pretrained(out).state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in before)

    accuracy = [json.loads(line) for line in (out / "accuracy.jsonl").read_text().splitlines()]
    assert [a["step"] for a in accuracy] == [0, 2] and all(a["num_transitions"] == 4 for a in accuracy)
    info = json.loads((out / "run_info.json").read_text())[0]
    assert info["reward_funcs"] == ["textgame_task_specific", "textgame_binary"] and info["resume_from"] is None
    assert info["data"]["rows_per_epoch"] == info["data"]["num_changed"] + 4


def test_grpo_builder_maps_the_hub_layout_and_rebalances(assets, tmp_path):
    from transformers import AutoTokenizer

    from rlvr_world.data.textgame import to_hub_rows
    from rlvr_world.rewards import get_reward_funcs
    from rlvr_world.training.tasks import get_task

    canonical = datasets.load_from_disk(assets["data"])["train"]
    hub_dir = tmp_path / "hub"
    datasets.DatasetDict({"train": to_hub_rows(canonical, "train")}).save_to_disk(str(hub_dir))
    grpo = entry("grpo")
    script, train, _ = parse_recipe(grpo.parser_types(), [
        grpo_recipe(tmp_path, assets, dataset_name=str(hub_dir), num_unchanged_per_epoch=3, max_steps=10)])
    tok = AutoTokenizer.from_pretrained(assets["model"])
    built, info = get_task("textgame").build_grpo_dataset(script, train, tok)

    assert set(built.column_names) == {"prompt", "data_state", "ground_truth", "data_action", "changed"}
    n_changed = sum(canonical["changed"])
    per_epoch = n_changed + 3
    # 10 steps x (8 completions / 4 generations) = 20 prompts -> enough epochs laid out
    assert info["rows_per_epoch"] == per_epoch and info["num_epochs"] == -(-20 // per_epoch)
    assert len(built) == per_epoch * info["num_epochs"]
    by_state = {(r["data_state"], r["data_action"]): r for r in canonical}
    for row in built.select(range(per_epoch)):
        gold = by_state[(row["data_state"], row["data_action"])]
        assert row["ground_truth"] == gold["ground_truth"] and row["changed"] == gold["changed"]
        assert row["prompt"] == gold["prompt"]
    assert sum(built.select(range(per_epoch))["changed"]) == n_changed  # every changed transition, once

    # the same reward callables score both layouts identically
    reward = get_reward_funcs(["textgame_task_specific"])[0]
    answers = [c[0]["content"] for c in canonical["completion"]]
    gold = reward(completions=answers, data_state=canonical["data_state"], ground_truth=canonical["ground_truth"])
    assert gold == [pytest.approx(0.3 + (1.0 if ch else 0.0)) for ch in canonical["changed"]]


def test_prompt_length_limit(assets, tmp_path):
    from transformers import AutoTokenizer

    from rlvr_world.training.data import _prompt_token_count, limit_prompt_length

    tok = AutoTokenizer.from_pretrained(assets["model"])
    rows = datasets.load_from_disk(assets["data"])["train"].select(range(6))
    lengths = [_prompt_token_count(tok, p) for p in rows["prompt"]]
    limit = min(lengths) - 5
    left = limit_prompt_length(rows, tok, limit, "left")
    assert all(_prompt_token_count(tok, p) <= limit for p in left["prompt"])
    tail = rows[0]["prompt"][0]["content"][-40:]
    assert left[0]["prompt"][0]["content"].endswith(tail)  # the action and instruction survive
    right = limit_prompt_length(rows, tok, limit, "right")
    assert right[0]["prompt"][0]["content"].startswith(rows[0]["prompt"][0]["content"][:40])
    cap = sorted(lengths)[2]
    kept = limit_prompt_length(rows, tok, cap, "drop")
    assert len(kept) == sum(n <= cap for n in lengths) and all(_prompt_token_count(tok, p) <= cap for p in kept["prompt"])
    with pytest.raises(ValueError, match="exceed max_prompt_length"):
        limit_prompt_length(rows, tok, limit, "error")
    assert limit_prompt_length(rows, tok, max(lengths), "error") is rows
