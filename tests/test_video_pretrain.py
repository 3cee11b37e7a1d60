"""`src/pretrain.py`: windows tokenised once into a cached dataset (labels as the layout says),
a few `Trainer` steps, the saved directory (model + processor + tokenizer copy) and resuming."""

from __future__ import annotations

import json
import sys

import datasets
import numpy as np
import pytest
import torch
import yaml
from transformers import AutoModelForCausalLM

import rlvr_world  # noqa: F401
from rlvr_world.data.frames import episode_features
from rlvr_world.training.cli import run_cli
from rlvr_world.video.generation import generate_next_frame, rollout
from rlvr_world.video.processor import IGNORE_INDEX, VideoWorldModelProcessor
from rlvr_world.video.tokenizer import CompressiveVQGANFSQConfig, CompressiveVQGANFSQModel, VQGANFSQConfig, VQGANFSQModel

sys.path.insert(0, "src")
import pretrain  # noqa: E402


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    """Six 7-frame episodes of 8x8 frames, a per-frame and a compressive tokenizer (random weights)."""
    root = tmp_path_factory.mktemp("pretrain")
    rng = np.random.default_rng(0)
    features = episode_features((8, 8), 2)

    def split(n, first):
        return datasets.Dataset.from_dict({
            "episode_index": list(range(first, first + n)),
            "num_frames": [7] * n,
            "frames": [rng.integers(0, 256, (7, 8, 8, 3), dtype=np.uint8) for _ in range(n)],
            "actions": [rng.uniform(0, 512, (7, 2)).astype(np.float32) for _ in range(n)],
        }, features=features)

    datasets.DatasetDict({"train": split(4, 0), "validation": split(1, 4), "test": split(1, 5)}).save_to_disk(str(root / "episodes"))
    torch.manual_seed(0)
    VQGANFSQModel(VQGANFSQConfig(block_out_channels=[8, 16, 16], layers_per_block=1, norm_num_groups=4,
                                 fsq_levels=[5, 5, 5])).save_pretrained(root / "tokenizer")
    CompressiveVQGANFSQModel(CompressiveVQGANFSQConfig(
        block_out_channels=[8, 16], layers_per_block=1, norm_num_groups=4, num_attention_heads=2, latent_channels=4,
        patch_size=2, context_fsq_levels=[3, 3, 3], future_fsq_levels=[5, 5, 5])).save_pretrained(root / "compressive")
    return root


def recipe(workdir, mode: str, **overrides) -> str:
    config = {
        "dataset_name": str(workdir / "episodes"),
        "tokenizer_name_or_path": str(workdir / ("tokenizer" if mode == "single_step" else "compressive")),
        "sequence_mode": mode,
        "num_context_frames": 2,
        "num_future_frames": 3,
        "window_stride": 1,
        "eval_window_stride": 2,
        "world_model_config": {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4},
        "torch_num_threads": 1,
        "output_dir": str(workdir / f"run_{mode}"),
        "max_steps": 3,
        "per_device_train_batch_size": 4,
        "learning_rate": 1e-3,
        "warmup_steps": 1,
        "logging_steps": 1,
        "save_steps": 3,
        "eval_strategy": "no",
        "use_cpu": True,
        "report_to": "none",
        "disable_tqdm": True,
        **overrides,
    }
    path = workdir / f"{mode}.yaml"
    path.write_text(yaml.safe_dump(config))
    return str(path)


@pytest.mark.slow
def test_single_step_pretrain_save_and_resume(workdir):
    path = recipe(workdir, "single_step")
    trainer = run_cli(pretrain.main, pretrain.parser_types(), [path])
    out = workdir / "run_single_step"
    assert trainer.state.global_step == 3
    # windows: 7 frames, 3 per window, stride 1 -> 5 per training episode; eval stride 2 -> 3
    tokenized = datasets.load_from_disk(str(out / "tokenized"))
    assert len(tokenized["train"]) == 4 * 5 and len(tokenized["validation"]) == 3
    row = tokenized["train"][0]
    processor = VideoWorldModelProcessor.from_pretrained(out)
    assert len(row["input_ids"]) == processor.sequence_length == 2 * (4 + 2) + 1 + 4 + 1
    masked = [label == IGNORE_INDEX for label in row["labels"]]
    assert masked == [True] * 12 + [False] * 6
    assert processor.action_binner.low.tolist() != [0.0, 0.0]  # fitted on the training split
    # the released directory runs on its own
    model = AutoModelForCausalLM.from_pretrained(out).eval()
    prompt = torch.tensor([row["input_ids"][: processor.prompt_length]])
    generated = generate_next_frame(model, processor, prompt, do_sample=False, decode=True)
    assert generated.frames.shape == (1, 1, 3, 8, 8)
    assert (out / "visual_tokenizer" / "model.safetensors").is_file()
    # checkpoints load like releases too (their processor points at the original tokenizer)
    from_checkpoint = VideoWorldModelProcessor.from_pretrained(out / "checkpoint-3")
    assert from_checkpoint.visual_tokenizer.config.codebook_size == 125
    log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log if "loss" in r] == [1, 2, 3]
    assert (out / "loss_curve.png").is_file()
    summary = json.loads((out / "train_summary.json").read_text())
    assert summary["global_step"] == 3 and summary["resumed_from"] is None
    # started again with more steps: resumes from checkpoint-3, reuses the tokenised cache
    stamp = (out / "tokenized" / "tokenization.json").stat().st_mtime
    trainer = run_cli(pretrain.main, pretrain.parser_types(), [path, "--max_steps", "5", "--save_steps", "5"])
    assert trainer.state.global_step == 5
    summary = json.loads((out / "train_summary.json").read_text())
    assert summary["resumed_from"].endswith("checkpoint-3")
    assert (out / "tokenized" / "tokenization.json").stat().st_mtime == stamp


@pytest.mark.slow
def test_multi_step_pretrain_labels_and_rollout(workdir):
    path = recipe(workdir, "multi_step", max_steps=2, save_steps=2)
    run_cli(pretrain.main, pretrain.parser_types(), [path])
    out = workdir / "run_multi_step"
    processor = VideoWorldModelProcessor.from_pretrained(out)
    tokenized = datasets.load_from_disk(str(out / "tokenized"))
    assert len(tokenized["train"]) == 4 * 4  # 4-frame windows of 7-frame episodes
    row = tokenized["train"][0]
    kinds = processor.token_kinds()
    trained = torch.tensor(row["labels"]) != IGNORE_INDEX
    assert torch.equal(trained, kinds == 0)  # exactly the future-frame tokens
    model = AutoModelForCausalLM.from_pretrained(out).eval()
    ids = torch.tensor([row["input_ids"]])
    actions = processor.split_sequence(ids)["action_ids"][:, 1:]
    out = rollout(model, processor, ids[:, : processor.prompt_length], actions, do_sample=False, decode=True)
    assert out.frames.shape == (1, 3, 3, 8, 8)


def test_bad_recipe_is_named(workdir, capsys):
    path = recipe(workdir, "single_step", sequence_mode="both")
    with pytest.raises(SystemExit):
        run_cli(pretrain.main, pretrain.parser_types(), [path])
    assert "sequence_mode" in capsys.readouterr().err
