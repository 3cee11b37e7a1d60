"""The web-page task through src/sft.py and src/grpo.py: a short SFT, then two GRPO steps with the F1 reward."""

import json

import datasets
import pytest
import yaml
from helpers import entry

from rlvr_world.training.cli import is_complete_checkpoint, parse_recipe

pytestmark = pytest.mark.usefixtures("one_thread")  # one torch thread for every test here


@pytest.fixture(scope="session")
def assets(tmp_path_factory):
    """Generated shop transitions (short prompts) and an untrained tiny model trained on their text."""
    from rlvr_world.data.webpage import build_dataset
    from rlvr_world.data.webpage_generator import make_splits
    from rlvr_world.text.webpage import WebPromptOptions
    from rlvr_world.training.smoke import SMOKE_MODEL
    from rlvr_world.training.tiny_model import build_tiny_model, texts_from_dataset

    root = tmp_path_factory.mktemp("webpage_smoke")
    splits = make_splits(seed=0, episodes=24)
    options = WebPromptOptions(include_instruction=False)
    data = datasets.DatasetDict({name: build_dataset(splits[name], options)
                                 for name in ("train", "heldout_transitions")})
    data.save_to_disk(str(root / "data"))
    build_tiny_model(texts_from_dataset(str(root / "data"), ["train"]), root / "model", SMOKE_MODEL)
    return {"data": str(root / "data"), "model": str(root / "model"), "root": root}


def write_recipe(path, **values):
    path.write_text(yaml.safe_dump(values))
    return str(path)


def test_sft_then_two_grpo_steps_with_the_f1_reward(assets):
    import torch
    from transformers import AutoModelForCausalLM

    root = assets["root"]
    sft, grpo = entry("sft"), entry("grpo")
    sft_recipe = write_recipe(
        root / "sft.yaml", task="webpage", model_name_or_path=assets["model"], dataset_name=assets["data"],
        num_demonstrations=64, learning_rate=1e-2, max_steps=24, per_device_train_batch_size=8, max_length=512,
        completion_only_loss=True, activation_checkpointing=False, use_cpu=True, bf16=False, logging_steps=8,
        save_steps=24, report_to="none", seed=0, output_dir=str(root / "sft"))
    trainer = sft.main(*parse_recipe(sft.parser_types(), [sft_recipe]))
    assert trainer.state.global_step == 24
    info = json.loads((root / "sft" / "run_info.json").read_text())[0]
    assert info["data"]["num_demonstrations"] == 64

    grpo_recipe = write_recipe(
        root / "grpo.yaml", task="webpage", model_name_or_path=str(root / "sft"), dataset_name=assets["data"],
        reward_funcs=["webpage_f1", "webpage_precision", "webpage_recall"], reward_weights=[1.0, 0.0, 0.0],
        learning_rate=1e-3, per_device_train_batch_size=8, num_generations=4, max_completion_length=48,
        temperature=1.0, beta=0.001, loss_type="grpo", scale_rewards="group", max_steps=2,
        activation_checkpointing=False, use_cpu=True, bf16=False, logging_steps=1, save_steps=2, report_to="none",
        seed=0, output_dir=str(root / "grpo"), accuracy_eval_split="heldout_transitions", accuracy_eval_samples=4,
        accuracy_eval_max_new_tokens=48)
    trainer = grpo.main(*parse_recipe(grpo.parser_types(), [grpo_recipe]))
    out = root / "grpo"
    assert trainer.state.global_step == 2
    assert is_complete_checkpoint(str(out / "checkpoint-2")) and (out / "model.safetensors").is_file()
    logs = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    steps = [r for r in logs if "rewards/webpage_f1/mean" in r]
    assert [r["step"] for r in steps] == [1, 2]
    for r in steps:
        for name in ("f1", "precision", "recall"):
            assert 0.0 <= r[f"rewards/webpage_{name}/mean"] <= 1.0
        assert r["reward"] == pytest.approx(r["rewards/webpage_f1/mean"])  # weights [1, 0, 0]
        assert r["completions/max_length"] <= 48
    # the briefly fine-tuned model gets some lines right and some wrong: a real learning signal
    assert any(r["rewards/webpage_f1/mean"] > 0 for r in steps) and any(r["reward_std"] > 0 for r in steps)
    before = AutoModelForCausalLM.from_pretrained(str(root / "sft")).state_dict()
    after = AutoModelForCausalLM.from_pretrained(out).state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in before)
    curve = [json.loads(line) for line in (out / "accuracy.jsonl").read_text().splitlines()]
    assert [c["step"] for c in curve] == [0, 2]
    assert all(c["num_transitions"] == 4 and 0.0 <= c["f1"] <= 100.0 for c in curve)
    run_info = json.loads((out / "run_info.json").read_text())[0]
    assert run_info["reward_funcs"] == ["webpage_f1", "webpage_precision", "webpage_recall"]


def test_evaluation_writes_metrics_and_report_for_the_baselines(assets, tmp_path):
    from rlvr_world.evaluation.webpage import evaluate

    rows = datasets.load_from_disk(assets["data"])["heldout_transitions"]
    oracle = evaluate(rows, "oracle", tmp_path / "oracle")
    none = evaluate(rows, "no_change", tmp_path / "none")
    assert oracle["f1"] == 100.0 and oracle["exact_match"] == 100.0 and oracle["format_error_rate"] == 0.0
    unchanged = sum(not c for c in rows["changed"])
    assert none["exact_match"] == pytest.approx(round(100 * unchanged / len(rows), 2))
    assert 0 < none["f1"] < 100 and set(none["per_action_type"]) == set(rows["action_type"])
    saved = json.loads((tmp_path / "none" / "metrics.json").read_text())
    assert saved["f1"] == none["f1"] and saved["predictor"] == "no_change"
    report = (tmp_path / "none" / "report.md").read_text()
    assert "| no_change |" in report and "## Per page type" in report
    assert len((tmp_path / "none" / "predictions.jsonl").read_text().splitlines()) == len(rows)
