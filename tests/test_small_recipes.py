"""recipes/small (the pre-trained SmolLM2 base): the recipes parse and agree with each other, and their code
path (LoRA SFT merged into a plain checkpoint, then LoRA GRPO from it) runs on a tiny LLaMA built from a config."""

import json
from pathlib import Path

import pytest
from helpers import REPO, entry

from rlvr_world.training.cli import load_recipe, parse_recipe
from rlvr_world.training.precision import cpu_has_native_bf16

SMALL = REPO / "recipes" / "small"
LINEAR = {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"}


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def tiny_llama(tmp_path_factory):
    """A 2-layer LLaMA (the SmolLM2 architecture: GQA, tied embeddings) on the smoke tokenizer, warm-started to
    answer in the right format; and the smoke dataset."""
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from rlvr_world.training.smoke import smoke_assets, warm_start

    root = tmp_path_factory.mktemp("small_recipes")
    assets = smoke_assets(root / "smoke")
    tokenizer = AutoTokenizer.from_pretrained(assets["model"])
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=1024,
                         tie_word_embeddings=True, bos_token_id=tokenizer.bos_token_id,
                         eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
    LlamaForCausalLM(config).save_pretrained(root / "llama")
    tokenizer.save_pretrained(root / "llama")
    warm = warm_start(root / "llama", assets["data"], root / "llama_warm")
    return {"model": warm, "data": assets["data"]}


def test_the_small_recipes_parse_and_chain():
    sft, grpo = entry("sft"), entry("grpo")
    parsed = {}
    for name in ("textgame_sft", "textgame_sft_continued", "textgame_mle_pool", "textgame_grpo"):
        types = (grpo if name.endswith("grpo") else sft).parser_types()
        parsed[name] = parse_recipe(types, [str(SMALL / f"{name}.yaml")])
    for name, (script, train, model) in parsed.items():
        # `bf16: auto`: autocast only where this CPU computes bf16 natively
        assert script.task == "textgame" and train.use_cpu and train.bf16 is cpu_has_native_bf16(), name
        assert model.use_peft and (model.lora_r, model.lora_alpha) == (32, 16), name
        assert model.lora_target_modules == "all-linear" and model.lora_dropout == 0.0, name
    sft_script = parsed["textgame_sft"][0]
    # GRPO and the two controls start from the merged SFT model; continued SFT sees SFT's demonstrations.
    for name in ("textgame_sft_continued", "textgame_mle_pool", "textgame_grpo"):
        assert parsed[name][2].model_name_or_path == sft_script.merged_output_dir, name
    continued = parsed["textgame_sft_continued"][0]
    assert (continued.num_demonstrations, continued.demonstrations_changed_fraction) == \
        (sft_script.num_demonstrations, sft_script.demonstrations_changed_fraction)
    assert parsed["textgame_mle_pool"][0].num_demonstrations is None
    # the equal-time controls learn at GRPO's rate: only the objective differs
    assert {parsed[name][1].learning_rate for name in ("textgame_sft_continued", "textgame_mle_pool",
                                                        "textgame_grpo")} == {5e-4}
    script, train, _ = parsed["textgame_grpo"]
    assert script.reward_funcs == ["textgame_task_specific"]
    assert (train.loss_type, train.scale_rewards, train.epsilon) == ("dr_grpo", "none", 0.2)  # Dr. GRPO (measured)
    assert train.per_device_train_batch_size * train.gradient_accumulation_steps % train.num_generations == 0
    # every recipe trains on the compact-prompt dataset the demo builds
    assert len({p[0].dataset_name for p in parsed.values()}) == 1
    assert load_recipe(str(SMALL / "textgame_sft.yaml"))["model_name_or_path"].endswith("smollm2-135m-instruct")


def test_lora_sft_merge_then_two_lora_grpo_steps(tiny_llama, tmp_path):
    """The demo's chain on a tiny LLaMA: LoRA SFT (2 steps) merged into a plain checkpoint, then two GRPO
    steps with a fresh LoRA from it, both through recipes/small with only sizes and paths overridden."""
    import torch
    from peft import AutoPeftModelForCausalLM
    from transformers import AutoModelForCausalLM

    from rlvr_world.evaluation.textgame import (
        GenerationOptions,
        generate_completions,
        load_causal_lm,
    )

    sft, grpo = entry("sft"), entry("grpo")
    merged = tmp_path / "sft"
    sft_trainer = sft.main(*parse_recipe(sft.parser_types(), [
        str(SMALL / "textgame_sft.yaml"), "--model_name_or_path", tiny_llama["model"],
        "--dataset_name", tiny_llama["data"], "--output_dir", str(tmp_path / "sft_adapter"),
        "--merged_output_dir", str(merged), "--num_demonstrations", "8", "--max_steps", "2",
        "--per_device_train_batch_size", "4", "--save_steps", "2", "--learning_rate", "1e-2"]))
    assert sft_trainer.state.global_step == 2
    assert (tmp_path / "sft_adapter" / "adapter_model.safetensors").is_file()
    assert (merged / "model.safetensors").is_file() and not (merged / "adapter_config.json").exists()
    base = AutoModelForCausalLM.from_pretrained(tiny_llama["model"]).state_dict()
    merged_weights = AutoModelForCausalLM.from_pretrained(merged).state_dict()
    assert base.keys() == merged_weights.keys()
    assert any(not torch.equal(base[k], merged_weights[k]) for k in base if "proj" in k)

    out = tmp_path / "grpo"
    trainer = grpo.main(*parse_recipe(grpo.parser_types(), [
        str(SMALL / "textgame_grpo.yaml"), "--model_name_or_path", str(merged), "--dataset_name", tiny_llama["data"],
        "--output_dir", str(out), "--max_steps", "2", "--max_completion_length", "32", "--save_steps", "2",
        "--num_unchanged_per_epoch", "4", "--learning_rate", "1e-2", "--torch_num_threads", "1"]))
    assert trainer.state.global_step == 2
    adapter = json.loads((out / "adapter_config.json").read_text())
    assert (adapter["r"], adapter["lora_alpha"]) == (32, 16) and {m.rsplit(".", 1)[-1] for m in adapter["target_modules"]} == LINEAR
    assert Path(adapter["base_model_name_or_path"]) == merged
    assert (out / "adapter_model.safetensors").is_file() and not (out / "model.safetensors").exists()
    logs = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    steps = [r for r in logs if "rewards/textgame_task_specific/mean" in r]
    assert [r["step"] for r in steps] == [1, 2]
    assert all(r["timing/generated_tokens"] > 0 and r["completions/max_length"] <= 32 for r in steps)
    assert any(r["reward_std"] > 0 for r in steps) and any(r["grad_norm"] > 0 for r in steps)

    # LoRA B starts at zero: after two steps with gradients it has moved, and the merged base has not.
    policy = AutoPeftModelForCausalLM.from_pretrained(out)
    lora_b = [p for n, p in policy.named_parameters() if "lora_B" in n]
    assert len(lora_b) == 2 * len(LINEAR) and any(p.abs().sum() > 0 for p in lora_b)
    after = policy.get_base_model().state_dict()
    for key, value in merged_weights.items():
        lookup = key.replace(".weight", ".base_layer.weight") if any(m in key for m in LINEAR) else key
        assert torch.equal(after[lookup], value), key
    # the evaluation loads the adapter on its base and decodes greedily
    model, tokenizer = load_causal_lm(str(out), device="cpu")
    rows = __import__("datasets").load_from_disk(tiny_llama["data"])["heldout"].select(range(2))
    texts = generate_completions(model, tokenizer, rows["prompt"], GenerationOptions(batch_size=2, max_new_tokens=8),
                                 progress=False)
    assert len(texts) == 2 and all(isinstance(t, str) for t in texts)


def test_compact_prompts_for_the_pretrained_base():
    """`--short_instruction --state_format json_min`: the same state, action and answer marker in fewer
    characters (the demo measures the tokens: median 610 with SmolLM2's chat template, against 851)."""
    from rlvr_world.data.textgame_generator import generate_transitions
    from rlvr_world.text.textgame import (
        SHORT_INSTRUCTION,
        PromptOptions,
        build_prompt,
        current_game_state,
    )

    record = generate_transitions(games=["sort-recycling"], episodes_per_game=1)[1]
    json_prompt = build_prompt(record, None, None, PromptOptions(False, False, "json"))
    compact = build_prompt(record, None, None, PromptOptions(False, False, "json_min", short_instruction=True))
    assert compact.startswith(SHORT_INSTRUCTION) and "'modified'" in compact and "UUID base" in compact
    assert json.dumps(current_game_state(record), separators=(",", ":")) in compact
    assert f"The action to take is:\n{record['tick_state']['lastAction']}\n" in compact
    assert compact.endswith("starting with 'The final answer is:'.\n")
    assert len(compact) < 0.8 * len(json_prompt)
    with pytest.raises(ValueError, match="short_instruction replaces the instruction"):
        build_prompt(record, None, {}, PromptOptions(False, True, "json", short_instruction=True))


def test_few_shot_rows_put_one_changed_and_one_unchanged_demonstration_first():
    from rlvr_world.demos.textgame_bases import few_shot_dataset
    from rlvr_world.training.smoke import smoke_dataset

    data = smoke_dataset()
    rows = data["heldout"].select(range(3))
    shots = few_shot_dataset(rows, data["train"])
    assert len(shots) == 3
    for before, after in zip(rows, shots):
        roles = [m["role"] for m in after["prompt"]]
        assert roles == ["user", "assistant", "user", "assistant", "user"]
        assert after["prompt"][-1] == before["prompt"][-1]
        assert after["data_state"] == before["data_state"] and after["ground_truth"] == before["ground_truth"]
    first = shots[0]["prompt"]
    assert first[:4] == shots[2]["prompt"][:4]  # the same demonstrations for every row
    answers = [first[1]["content"], first[3]["content"]]
    assert answers[1].endswith('{"modified": [], "removed": [], "score": {}}')  # the unchanged one
    assert '"modified": [{' in answers[0]  # the changed one


def test_a_demo_evaluation_is_reused_only_for_the_same_rows_model_files_and_decoding(tmp_path):
    import os

    from datasets import Dataset

    from rlvr_world.evaluation.cache import cached_evaluation, evaluation_key
    from rlvr_world.evaluation.textgame import GenerationOptions

    base, adapter = tmp_path / "base", tmp_path / "adapter"
    base.mkdir(), adapter.mkdir()
    (base / "model.safetensors").write_bytes(b"base")
    (adapter / "adapter_model.safetensors").write_bytes(b"lora")
    (adapter / "adapter_config.json").write_text(json.dumps({"base_model_name_or_path": str(base)}))
    rows = Dataset.from_list([{"prompt": "p1", "completion": "c1"}, {"prompt": "p2", "completion": "c2"}])
    greedy = GenerationOptions(batch_size=2, max_new_tokens=8)
    key = evaluation_key(rows, str(adapter), greedy, 0)
    calls = []

    def run(value):
        def evaluate():
            calls.append(value)
            (tmp_path / "eval" / "metrics.json").write_text(json.dumps({"accuracy_overall": value}))
            return {"accuracy_overall": value}
        return evaluate

    (tmp_path / "eval").mkdir()
    assert cached_evaluation(tmp_path / "eval", key, run(1.0)) == {"accuracy_overall": 1.0}
    assert cached_evaluation(tmp_path / "eval", key, run(2.0)) == {"accuracy_overall": 1.0}  # reused
    assert calls == [1.0]
    assert evaluation_key(rows, str(adapter), greedy, 0) == key
    others = [evaluation_key(rows.select([0]), str(adapter), greedy, 0),
              evaluation_key(rows, str(adapter), GenerationOptions(batch_size=2, max_new_tokens=16), 0),
              evaluation_key(rows, str(adapter), greedy, 4),
              evaluation_key(rows, str(adapter), greedy, 0, no_change_scores=True)]
    os.utime(base / "model.safetensors", ns=(1, 1))  # the base under the adapter was retrained
    others.append(evaluation_key(rows, str(adapter), greedy, 0))
    assert key not in others and len(set(others)) == len(others)
    assert cached_evaluation(tmp_path / "eval", others[-1], run(3.0)) == {"accuracy_overall": 3.0}
    assert calls == [1.0, 3.0]
