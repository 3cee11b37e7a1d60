"""A GRPO run killed with SIGKILL after its first checkpoint continues from its last checkpoint when
the same command is run again (a real subprocess, a real kill)."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import yaml

from helpers import REPO
from rlvr_world.training.cli import find_last_checkpoint
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


def _env():
    return {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
            "TOKENIZERS_PARALLELISM": "false"}


def test_sigkill_then_rerun_resumes_from_the_last_checkpoint(assets, tmp_path):
    out = tmp_path / "grpo"
    max_steps = 16
    recipe = tmp_path / "grpo.yaml"
    recipe.write_text(yaml.safe_dump({
        "task": "textgame", "model_name_or_path": assets["warm"], "dataset_name": assets["data"],
        "num_unchanged_per_epoch": 4, "reward_funcs": ["textgame_task_specific"], "learning_rate": 1e-3,
        "per_device_train_batch_size": 8, "num_generations": 4, "max_completion_length": 32, "beta": 0.001,
        "loss_type": "grpo", "max_steps": max_steps, "activation_checkpointing": False, "use_cpu": True,
        "bf16": False, "logging_steps": 1, "save_steps": 2, "report_to": "none", "seed": 0,
        "torch_num_threads": 1, "output_dir": str(out),
    }))
    command = [sys.executable, str(REPO / "src" / "grpo.py"), str(recipe)]

    first = subprocess.Popen(command, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                             start_new_session=True)
    deadline = time.time() + 300
    try:
        while find_last_checkpoint(str(out)) is None:
            assert first.poll() is None, "the run ended before its first checkpoint"
            assert time.time() < deadline, "no checkpoint within 300 s"
            time.sleep(0.02)
        os.killpg(first.pid, signal.SIGKILL)
    finally:
        if first.poll() is None:
            os.killpg(first.pid, signal.SIGKILL)
        first.wait(timeout=60)
    assert first.returncode == -signal.SIGKILL
    killed_at = find_last_checkpoint(str(out))
    step_at_kill = int(killed_at.rsplit("-", 1)[1])
    assert 2 <= step_at_kill < max_steps and not (out / "model.safetensors").exists()
    logged_first = [json.loads(line)["step"] for line in (out / "log.jsonl").read_text().splitlines()]

    second = subprocess.run(command, env=_env(), capture_output=True, text=True, timeout=600)
    assert second.returncode == 0, second.stderr[-3000:]
    resumed_from = json.loads((out / "run_info.json").read_text())[-1]["resume_from"]
    # the second run started from the newest complete checkpoint, which is at least the one seen at the kill
    step_resumed = int(resumed_from.rsplit("-", 1)[1])
    assert step_resumed >= step_at_kill and resumed_from.startswith(str(out))
    print(f"killed with checkpoint-{step_at_kill}, logged steps {logged_first}; resumed from {step_resumed}")

    state = json.loads((out / f"checkpoint-{max_steps}" / "trainer_state.json").read_text())
    assert state["global_step"] == max_steps and (out / "model.safetensors").is_file()
    history_steps = [h["step"] for h in state["log_history"] if "reward" in h]
    assert history_steps == list(range(1, max_steps + 1))  # every step once: none lost, none repeated

    records = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    logged_second = [r["step"] for r in records[len(logged_first):] if "reward" in r]
    assert logged_second == list(range(step_resumed + 1, max_steps + 1))  # global_step continued
    assert set(s for s in logged_first if s <= step_resumed) == set(range(1, step_resumed + 1))
