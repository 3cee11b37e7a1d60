"""Two GRPO steps of the smoke model under `accelerate launch` with DeepSpeed ZeRO-2 and ZeRO-3 on CPU
(2 processes, gloo). The very first run on a machine compiles DeepSpeed's shared-memory comm op into
runs/torch_extensions (about 75 s, once); after that each run takes about 20 s on 2 cores. ZeRO-2 is
in the default run, ZeRO-3 (same code path plus parameter sharding) is marked slow."""

import json
import os
import subprocess
import sys

import pytest
import yaml

from helpers import REPO
from rlvr_world.training.cli import is_complete_checkpoint
from rlvr_world.training.smoke import smoke_assets


@pytest.fixture(scope="session")
def assets(tmp_path_factory):
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return smoke_assets(tmp_path_factory.getbasetemp() / "training_smoke", warm=True)
    finally:
        torch.set_num_threads(before)


@pytest.mark.parametrize("stage", [2, pytest.param(3, marks=pytest.mark.slow)])
def test_grpo_under_deepspeed_zero_on_cpu(assets, tmp_path, stage):
    import torch
    from transformers import AutoModelForCausalLM

    out = tmp_path / f"zero{stage}"
    recipe = tmp_path / "grpo.yaml"
    recipe.write_text(yaml.safe_dump({
        "task": "textgame", "model_name_or_path": assets["warm"], "dataset_name": assets["data"],
        "num_unchanged_per_epoch": 4, "reward_funcs": ["textgame_task_specific", "textgame_binary"],
        "reward_weights": [1.0, 0.0], "learning_rate": 1e-3, "per_device_train_batch_size": 4,
        "num_generations": 4, "max_completion_length": 32, "beta": 0.001, "loss_type": "grpo",
        "max_steps": 2, "activation_checkpointing": False, "use_cpu": True, "bf16": False, "logging_steps": 1,
        "save_steps": 2, "report_to": "none", "seed": 0, "output_dir": str(out),
    }))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
           "TOKENIZERS_PARALLELISM": "false", "TORCH_EXTENSIONS_DIR": str(REPO / "runs" / "torch_extensions")}
    command = [sys.executable, "-m", "accelerate.commands.launch", "--config_file",
               str(REPO / "recipes" / "accelerate" / f"zero{stage}.yaml"), "--num_processes", "2",
               "--mixed_precision", "no", str(REPO / "src" / "grpo.py"), str(recipe)]
    proc = subprocess.run(command, env=env, capture_output=True, text=True, timeout=900, cwd=REPO)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]

    checkpoint = out / "checkpoint-2"
    assert is_complete_checkpoint(str(checkpoint))
    # DeepSpeed wrote the checkpoint: its engine folder with one optimizer shard per rank, and two RNG states
    engine = checkpoint / "global_step2"
    shards = sorted(p.name for p in engine.iterdir() if "optim_states" in p.name)
    assert len(shards) == 2 and any("rank_0" in s for s in shards) and any("rank_1" in s for s in shards)
    assert (checkpoint / "rng_state_0.pth").is_file() and (checkpoint / "rng_state_1.pth").is_file()
    assert (checkpoint / "latest").read_text().strip() == "global_step2"

    logs = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    steps = [r for r in logs if "rewards/textgame_task_specific/mean" in r]
    assert [r["step"] for r in steps] == [1, 2]
    assert any(r["reward_std"] > 0 for r in steps) and any(r["grad_norm"] > 0 for r in steps)

    before = AutoModelForCausalLM.from_pretrained(assets["warm"]).state_dict()
    after = AutoModelForCausalLM.from_pretrained(out).state_dict()  # the gathered final weights
    assert before.keys() == after.keys()
    assert any(not torch.equal(before[k], after[k]) for k in before)
