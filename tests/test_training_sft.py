"""src/sft.py on the smoke assets: completion-only loss, demonstration subsets, LoRA and merge_lora."""

import json
import subprocess
import sys

import pytest
import yaml
from helpers import REPO, entry

from rlvr_world.training.cli import parse_recipe
from rlvr_world.training.smoke import smoke_assets

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="session")
def assets(tmp_path_factory):
    return smoke_assets(tmp_path_factory.getbasetemp() / "training_smoke")


def sft_recipe(tmp_path, assets, **values):
    recipe = {
        "task": "textgame", "model_name_or_path": assets["model"], "dataset_name": assets["data"],
        "num_demonstrations": 12, "learning_rate": 1e-2, "max_steps": 2, "per_device_train_batch_size": 4,
        "max_length": 1024, "completion_only_loss": True, "activation_checkpointing": False,
        "use_cpu": True, "bf16": False, "logging_steps": 1, "save_steps": 2, "report_to": "none", "seed": 0,
        "output_dir": str(tmp_path / "sft"), **values,
    }
    path = tmp_path / "sft.yaml"
    path.write_text(yaml.safe_dump(recipe))
    return str(path)


def test_sft_trains_on_the_answer_only(assets, tmp_path):
    from transformers import AutoTokenizer

    from rlvr_world.training.tasks import get_task

    sft = entry("sft")
    parsed = parse_recipe(sft.parser_types(), [sft_recipe(tmp_path, assets)])
    trainer = sft.main(*parsed)
    tok = AutoTokenizer.from_pretrained(assets["model"])

    # The demonstration subset: 12 seeded rows, in the order the builder gives them.
    demos, info = get_task("textgame").build_sft_dataset(parsed[0], parsed[1], tok)
    assert info["num_demonstrations"] == len(demos) == len(trainer.train_dataset) == 12
    batch = trainer.data_collator([trainer.train_dataset[i] for i in range(4)])
    for i in range(4):
        prompt_ids = tok.apply_chat_template(demos[i]["prompt"], add_generation_prompt=True, tokenize=True)["input_ids"]
        answer_ids = tok(demos[i]["completion"][0]["content"], add_special_tokens=False)["input_ids"]
        row = trainer.train_dataset[i]
        assert row["input_ids"] == prompt_ids + answer_ids + [tok.eos_token_id]
        assert row["labels"] == [-100] * len(prompt_ids) + answer_ids + [tok.eos_token_id]
        # the collated batch keeps the mask (right padding, pad positions ignored too)
        labels = batch["labels"][i].tolist()
        n = len(row["input_ids"])
        assert labels[:n] == row["labels"] and all(x == -100 for x in labels[n:])

    out = tmp_path / "sft"
    assert (out / "checkpoint-2" / "trainer_state.json").is_file() and (out / "model.safetensors").is_file()
    logs = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    losses = [r["loss"] for r in logs if "loss" in r]
    assert len(losses) == 2 and all(x > 0 for x in losses)
    assert json.loads((out / "run_info.json").read_text())[0]["data"]["num_demonstrations"] == 12


def test_lora_sft_then_merge_gives_the_adapter_models_logits(assets, tmp_path):
    import torch
    from peft import AutoPeftModelForCausalLM
    from transformers import AutoModelForCausalLM, AutoTokenizer

    sft = entry("sft")
    merged_dir = tmp_path / "merged"
    recipe = sft_recipe(tmp_path, assets, use_peft=True, lora_r=8, lora_alpha=16, lora_dropout=0.0,
                        lora_target_modules="all-linear", merged_output_dir=str(merged_dir), learning_rate=5e-2)
    sft.main(*parse_recipe(sft.parser_types(), [recipe]))
    adapter_dir = tmp_path / "sft"
    adapter_config = json.loads((adapter_dir / "adapter_config.json").read_text())
    assert adapter_config["r"] == 8 and adapter_config["lora_alpha"] == 16
    targets = adapter_config["target_modules"]  # all linear layers of both blocks, not the LM head
    assert {t.rsplit(".", 1)[-1] for t in targets} == {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj",
                                                        "up_proj", "down_proj"}
    assert len(targets) == 7 * 2

    # merge_lora.py as a command too
    cli_dir = tmp_path / "merged_cli"
    proc = subprocess.run([sys.executable, str(REPO / "src" / "merge_lora.py"), "--adapter", str(adapter_dir),
                           "--output_dir", str(cli_dir)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]

    tok = AutoTokenizer.from_pretrained(merged_dir)
    ids = torch.tensor([tok("The final answer is: {\"modified\": []}", add_special_tokens=False)["input_ids"]])
    with torch.no_grad():
        adapted = AutoPeftModelForCausalLM.from_pretrained(str(adapter_dir)).eval()(ids).logits
        base = AutoModelForCausalLM.from_pretrained(assets["model"]).eval()(ids).logits
        for path in (merged_dir, cli_dir):
            merged_model = AutoModelForCausalLM.from_pretrained(path).eval()
            assert not any("lora" in name for name, _ in merged_model.named_parameters())
            torch.testing.assert_close(merged_model(ids).logits, adapted, atol=1e-4, rtol=1e-4)
    assert (adapted - base).abs().max() > 1e-3  # the adapter did change the model


def test_scoring_only_labelled_positions_gives_the_same_loss_and_gradients(monkeypatch):
    """The CPU speed-up of `score_labelled_positions_only`: TRL's fused LM head then projects only the
    positions with a label; per-token log-probabilities, entropies and gradients are unchanged."""
    import torch
    import trl.trainer.utils as trl_utils
    from transformers import LlamaConfig, LlamaForCausalLM

    from rlvr_world.training.common import score_labelled_positions_only

    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=97, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, tie_word_embeddings=True)
    model = LlamaForCausalLM(config)
    trl_utils.add_fused_lm_head(model, outputs=("log_probs", "entropy"))
    input_ids = torch.randint(0, 97, (2, 12))
    labels = input_ids.clone()
    labels[:, :8] = -100  # a prompt: no loss there
    labels[1, 10:] = -100  # padding

    def run():
        model.zero_grad()
        out = model(input_ids=input_ids, labels=labels, fused_lm_head=True)
        out.loss.backward()
        return out, [p.grad.clone() for p in model.parameters()]

    from trl.kernels import chunked_logprob

    # TRL's own choice (an in-process training run earlier may have patched it); restored after the test
    monkeypatch.setattr(trl_utils, "_use_triton", chunked_logprob._use_triton)
    assert not trl_utils._use_triton(torch.device("cpu"))
    every, every_grads = run()
    score_labelled_positions_only()
    assert trl_utils._use_triton(torch.device("cpu"))
    score_labelled_positions_only()  # idempotent
    assert trl_utils._use_triton._rlvr_world_compact
    compact, compact_grads = run()
    assert torch.equal(every.label_mask, compact.label_mask) and int(compact.label_mask.sum()) == 4 + 2  # shifted by one
    torch.testing.assert_close(compact.log_probs, every.log_probs)
    torch.testing.assert_close(compact.entropy, every.entropy)
    assert float(compact.log_probs[~compact.label_mask].abs().sum()) == 0.0
    for a, b in zip(compact_grads, every_grads):
        torch.testing.assert_close(a, b)
