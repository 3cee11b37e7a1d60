"""Recipe parsing, checkpoint discovery and the data helpers of the training entry points (no model)."""

import json
import subprocess
import sys
import tempfile
from pathlib import Path

import datasets
import pytest
import yaml

from helpers import REPO
from rlvr_world.configs import GRPOScriptArguments, SFTScriptArguments
from rlvr_world.training.cli import (
    RecipeError,
    find_last_checkpoint,
    parse_recipe,
    resolve_resume,
    rewrite_argv,
)
from rlvr_world.training.data import rebalanced_epochs, select_demonstrations


def grpo_types():
    from trl import GRPOConfig, ModelConfig

    return (GRPOScriptArguments, GRPOConfig, ModelConfig)


def sft_types():
    from trl import ModelConfig, SFTConfig

    return (SFTScriptArguments, SFTConfig, ModelConfig)


def write_recipe(path, **values):
    base = {"output_dir": str(path.parent / "out"), "use_cpu": True, "bf16": False, "report_to": "none"}
    path.write_text(yaml.safe_dump({**base, **values}))
    return str(path)


def test_rewrite_argv():
    assert rewrite_argv(["r.yaml", "--lr", "1"]) == ["--config", "r.yaml", "--lr", "1"]
    assert rewrite_argv(["r.yml"]) == ["--config", "r.yml"]
    assert rewrite_argv(["--config", "r.yaml", "--x", "1"]) == ["--config", "r.yaml", "--x", "1"]
    assert rewrite_argv(["--x", "1"]) == ["--x", "1"]
    assert rewrite_argv([]) == []
    with pytest.raises(RecipeError, match="either"):
        rewrite_argv(["r.yaml", "--config", "s.yaml"])


def test_recipe_values_and_command_line_overrides(tmp_path):
    recipe = write_recipe(
        tmp_path / "r.yaml",
        task="textgame", model_name_or_path="m", dataset_name="d", learning_rate=1e-6, num_generations=5,
        per_device_train_batch_size=10,
        beta=0.001, loss_type="grpo", reward_funcs=["textgame_binary"], num_unchanged_per_epoch=10,
        reward_kwargs={"textgame_task_specific": {"item_weight": 0.5}},
        use_peft=True, lora_r=32, lora_alpha=16, lora_target_modules="all-linear",
    )
    script, train, model = parse_recipe(grpo_types(), [recipe])
    assert (train.learning_rate, train.num_generations, train.beta, train.loss_type) == (1e-6, 5, 0.001, "grpo")
    assert script.reward_funcs == ["textgame_binary"] and script.num_unchanged_per_epoch == 10
    assert script.reward_kwargs == {"textgame_task_specific": {"item_weight": 0.5}}
    assert (model.use_peft, model.lora_r, model.lora_alpha, model.lora_target_modules) == (True, 32, 16, "all-linear")

    script, train, model = parse_recipe(grpo_types(), [
        recipe, "--learning_rate", "3e-4", "--num_unchanged_per_epoch", "7",
        "--reward_funcs", "textgame_task_specific", "textgame_format",
        "--reward_kwargs", '{"textgame_task_specific": {"changed_weight": 2.0}}', "--use_peft", "false",
    ])
    assert train.learning_rate == 3e-4 and train.num_generations == 5  # the rest of the recipe stays
    assert script.num_unchanged_per_epoch == 7
    assert script.reward_funcs == ["textgame_task_specific", "textgame_format"]
    assert script.reward_kwargs == {"textgame_task_specific": {"changed_weight": 2.0}}
    assert model.use_peft is False


def test_unknown_keys_fail_with_a_clear_message(tmp_path):
    recipe = write_recipe(tmp_path / "r.yaml", model_name_or_path="m", lerning_rate=1e-5, num_demos=3)
    with pytest.raises(RecipeError) as err:
        parse_recipe(sft_types(), [recipe])
    message = str(err.value)
    assert "lerning_rate" in message and "did you mean 'learning_rate'" in message and "num_demos" in message

    good = write_recipe(tmp_path / "g.yaml", model_name_or_path="m")
    with pytest.raises(RecipeError, match="--num_generation.*did you mean 'num_generations'"):
        parse_recipe(grpo_types(), [good, "--num_generation", "4"])
    with pytest.raises(RecipeError, match="recipe not found"):
        parse_recipe(grpo_types(), [str(tmp_path / "missing.yaml")])
    # GRPO-only keys are unknown to SFT.
    grpo_only = write_recipe(tmp_path / "x.yaml", model_name_or_path="m", num_generations=4)
    with pytest.raises(RecipeError, match="num_generations"):
        parse_recipe(sft_types(), [grpo_only])


@pytest.mark.parametrize("native", [True, False])
def test_bf16_auto_follows_the_cpu(tmp_path, monkeypatch, native):
    import rlvr_world.training.precision as precision

    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda flags=None: native)
    copies = lambda: set(Path(tempfile.gettempdir()).glob("recipe-*.yaml"))  # noqa: E731
    before = copies()
    recipe = write_recipe(tmp_path / "r.yaml", model_name_or_path="m", dataset_name="d", bf16="auto", seed=3)
    script, train, model = parse_recipe(sft_types(), [recipe])
    assert train.bf16 is native and train.use_cpu and train.seed == 3 and model.model_name_or_path == "m"
    # the command line's `--bf16 auto` too, over a recipe that says false
    plain = write_recipe(tmp_path / "p.yaml", model_name_or_path="m", dataset_name="d")
    assert parse_recipe(sft_types(), [plain, "--bf16", "auto"])[1].bf16 is native
    train = parse_recipe(sft_types(), [plain, "--bf16=auto", "--seed", "4"])[1]
    assert train.bf16 is native and train.seed == 4
    assert parse_recipe(sft_types(), [recipe, "--bf16", "false"])[1].bf16 is False  # an explicit value wins
    assert copies() <= before  # no recipe copy is left behind


def test_entry_point_exits_2_on_unknown_key(tmp_path):
    recipe = write_recipe(tmp_path / "r.yaml", model_name_or_path="m", dataset_name="d", not_a_key=1)
    proc = subprocess.run([sys.executable, str(REPO / "src" / "grpo.py"), recipe],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert "unknown key(s) in recipe" in proc.stderr and "not_a_key" in proc.stderr


def test_shipped_recipes_parse():
    cpu = ["--bf16", "false", "--use_cpu", "true"]  # paper recipes ask for bf16 GPUs
    for path in sorted((REPO / "recipes").glob("textgame*.yaml")) + sorted((REPO / "recipes" / "tiny").glob("textgame*.yaml")):
        types = sft_types() if "sft" in path.name or "mle" in path.name else grpo_types()
        script, train, model = parse_recipe(types, [str(path), *cpu])
        assert script.task == "textgame" and model.model_name_or_path and script.dataset_name, path


def test_paper_recipes_match_the_reference():
    cpu = ["--bf16", "false", "--use_cpu", "true"]
    script, train, model = parse_recipe(sft_types(), [str(REPO / "recipes" / "textgame_sft.yaml"), *cpu])
    assert model.model_name_or_path == "deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B"
    assert (model.use_peft, model.lora_r, model.lora_alpha, model.lora_target_modules) == (True, 32, 16, "all-linear")
    assert train.learning_rate == 1e-5 and train.completion_only_loss is True
    assert script.dataset_name == "thuml/bytesized32-world-model-cot" and script.max_prompt_length == 7192
    for name, reward in (("textgame.yaml", "textgame_task_specific"), ("textgame_binary.yaml", "textgame_binary")):
        script, train, model = parse_recipe(grpo_types(), [str(REPO / "recipes" / name), *cpu])
        assert model.model_name_or_path == "thuml/bytesized32-world-model-sft"
        assert script.reward_funcs == [reward] and script.max_prompt_length == 7192
        assert (train.learning_rate, train.num_generations, train.temperature, train.beta, train.epsilon) == (
            1e-6, 5, 1.0, 1e-3, 0.2)
        assert (train.loss_type, train.scale_rewards, train.use_bias_correction_kl) == ("grpo", "group", False)
        assert train.max_completion_length == 4096 and train.use_vllm is False
        # 128 prompts x 5 generations per optimizer step on the 8 processes the recipe is written for
        assert train.per_device_train_batch_size * 8 * train.gradient_accumulation_steps == 128 * 5
    script, _, _ = parse_recipe(grpo_types(), [str(REPO / "recipes" / "textgame.yaml"), *cpu])
    assert script.reward_kwargs == {"textgame_task_specific": {
        "item_weight": 0.09, "score_weight": 0.01, "correct_weight": 0.2, "changed_weight": 1.0}}


def _fake_checkpoint(root, step, complete=True, state_step=None):
    folder = root / f"checkpoint-{step}"
    folder.mkdir(parents=True)
    (folder / "model.safetensors").write_text("x")
    if complete:
        (folder / "trainer_state.json").write_text(json.dumps({"global_step": step if state_step is None else state_step}))
    return folder


def test_find_last_checkpoint_skips_half_written_ones(tmp_path):
    assert find_last_checkpoint(str(tmp_path / "nothing")) is None
    assert find_last_checkpoint(str(tmp_path)) is None
    _fake_checkpoint(tmp_path, 2)
    _fake_checkpoint(tmp_path, 10)
    _fake_checkpoint(tmp_path, 12, complete=False)  # killed while saving
    broken = _fake_checkpoint(tmp_path, 14, complete=False)
    (broken / "trainer_state.json").write_text('{"global_st')  # killed while writing the state
    _fake_checkpoint(tmp_path, 16, state_step=3)  # inconsistent
    (tmp_path / "checkpoint-x").mkdir()
    assert find_last_checkpoint(str(tmp_path)) == str(tmp_path / "checkpoint-10")

    class Args:
        output_dir = str(tmp_path)
        resume_from_checkpoint = None

    assert resolve_resume(Args, auto_resume=True) == str(tmp_path / "checkpoint-10")
    assert resolve_resume(Args, auto_resume=False) is None
    Args.resume_from_checkpoint = "false"
    assert resolve_resume(Args, auto_resume=True) is None
    Args.resume_from_checkpoint = str(tmp_path / "checkpoint-2")
    assert resolve_resume(Args, auto_resume=True) == str(tmp_path / "checkpoint-2")


def test_rebalanced_epochs_take_every_positive_and_resample_negatives():
    positive = [i % 4 == 0 for i in range(40)]  # 10 positives, 30 negatives
    ds = datasets.Dataset.from_dict({"i": list(range(40))})
    out, info = rebalanced_epochs(ds, positive, num_negative=5, num_epochs=3, seed=7)
    assert info == {"num_positive": 10, "num_negative_pool": 30, "rows_per_epoch": 15, "num_epochs": 3,
                    "total_rows": 45}
    epochs = [out["i"][k * 15:(k + 1) * 15] for k in range(3)]
    negatives = []
    for rows in epochs:
        assert sorted(i for i in rows if i % 4 == 0) == list(range(0, 40, 4))  # all positives, once each
        negs = sorted(i for i in rows if i % 4)
        assert len(negs) == len(set(negs)) == 5
        negatives.append(negs)
    assert len({tuple(n) for n in negatives}) == 3  # resampled every epoch
    again, _ = rebalanced_epochs(ds, positive, num_negative=5, num_epochs=3, seed=7)
    assert again["i"] == out["i"]  # deterministic: a resumed run sees the same data
    everything, info = rebalanced_epochs(ds, positive, num_negative=None, num_epochs=2, seed=0)
    assert info["rows_per_epoch"] == 40 and sorted(everything["i"][:40]) == list(range(40))
    capped, info = rebalanced_epochs(ds, positive, num_negative=100, num_epochs=1, seed=0)
    assert info["rows_per_epoch"] == 40


def test_select_demonstrations_is_seeded_and_stratified():
    ds = datasets.Dataset.from_dict({"i": list(range(100))})
    positive = [i < 20 for i in range(100)]
    a = select_demonstrations(ds, 10, seed=1)
    assert a["i"] == select_demonstrations(ds, 10, seed=1)["i"] and len(set(a["i"])) == 10
    assert a["i"] != select_demonstrations(ds, 10, seed=2)["i"]
    strat = select_demonstrations(ds, 10, seed=1, positive=positive, positive_fraction=0.5)
    assert sum(i < 20 for i in strat["i"]) == 5
    short = select_demonstrations(ds, 30, seed=1, positive=positive, positive_fraction=1.0)
    assert sum(i < 20 for i in short["i"]) == 20 and len(short) == 30  # topped up from the other pool
    assert len(select_demonstrations(ds, None, seed=0)) == 100
