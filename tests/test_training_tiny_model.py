"""The embedded tiny model: build from nothing with src/build_tiny_model.py, reload offline."""

import json
import os
import subprocess
import sys

import pytest

from helpers import REPO
from rlvr_world.training.smoke import smoke_dataset
from rlvr_world.training.tiny_model import TinyModelConfig, build_model, count_parameters


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("tiny_data") / "data"
    smoke_dataset(games=["sort-recycling", "heat-soup"]).save_to_disk(str(path))
    return path


def build(data_dir, out, *extra):
    cmd = [sys.executable, str(REPO / "src" / "build_tiny_model.py"), "--data", str(data_dir), "--output_dir",
           str(out), "--vocab_size", "400", "--hidden_size", "32", "--num_hidden_layers", "2",
           "--num_attention_heads", "2", "--num_key_value_heads", "1", "--intermediate_size", "64", *extra]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}  # 2 threads on 2 busy cores is far slower than 1
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(next(line for line in proc.stdout.splitlines() if line.startswith("{")))


def test_build_and_reload_offline(data_dir, tmp_path):
    import datasets
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    out = tmp_path / "tiny"
    summary = build(data_dir, out)
    assert summary["vocab_size"] <= 400 and summary["parameters"] > 0
    assert {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json",
            "generation_config.json"} <= {p.name for p in out.iterdir()}

    tok = AutoTokenizer.from_pretrained(out)  # HF_HUB_OFFLINE=1 (conftest): nothing is fetched
    model = AutoModelForCausalLM.from_pretrained(out)
    assert type(model).__name__ == "Qwen3ForCausalLM"
    assert count_parameters(model) == summary["parameters"]
    assert model.config.vocab_size == len(tok) == summary["vocab_size"]
    assert tok.eos_token == "<|end|>" and tok.pad_token == "<|pad|>" and tok.pad_token_id != tok.eos_token_id
    assert model.generation_config.eos_token_id == tok.eos_token_id
    assert model.generation_config.pad_token_id == tok.pad_token_id

    rows = datasets.load_from_disk(str(data_dir))["train"]
    prompt, completion = rows[0]["prompt"], rows[0]["completion"]
    # Byte-level: any text round-trips, including text the tokenizer never saw.
    for text in [prompt[0]["content"], completion[0]["content"], "ünïcödé ✓ 12345 {\"x\": [1, 2]}"]:
        assert tok.decode(tok(text, add_special_tokens=False)["input_ids"]) == text
    # Digits are single tokens (uuids and scores are composed digit by digit).
    ids = tok("uuid 4071", add_special_tokens=False)["input_ids"]
    assert [tok.decode([i]) for i in ids][-4:] == ["4", "0", "7", "1"]
    # An object's name is one piece wherever it occurs: JSON string, contains list, action line.
    name_ids = tok("glass bin (ID: ", add_special_tokens=False)["input_ids"]
    for context in ['{"name": "glass bin (ID: 2)"', '"contains": ["glass bin (ID: 2)"]',
                    "is:\nput glass bin (ID: 2) in box (ID: 3)", "is:\ntake glass bin (ID: 2)"]:
        ids = tok(context, add_special_tokens=False)["input_ids"]
        assert any(ids[i : i + len(name_ids)] == name_ids for i in range(len(ids))), context
    # Merges cross word boundaries: the JSON scaffolding costs few tokens.
    answer = completion[0]["content"]
    assert len(tok(answer, add_special_tokens=False)["input_ids"]) < len(answer) / 3

    # Chat template: the prompt's tokens are a prefix of prompt+answer's, which ends with EOS.
    p_ids = tok.apply_chat_template(prompt, add_generation_prompt=True, tokenize=True)["input_ids"]
    full = tok.apply_chat_template(prompt + completion, tokenize=True)["input_ids"]
    assert full[: len(p_ids)] == p_ids and full[-1] == tok.eos_token_id
    assert tok.decode(full[len(p_ids):], skip_special_tokens=True) == answer
    rendered = tok.apply_chat_template(prompt, add_generation_prompt=True, tokenize=False)
    assert rendered == "<|user|>" + prompt[0]["content"] + "<|end|><|assistant|>"

    # It generates.
    with torch.no_grad():
        out_ids = model.generate(torch.tensor([p_ids]), max_new_tokens=5, do_sample=False)
    assert out_ids.shape == (1, len(p_ids) + 5) or out_ids[0, -1].item() == tok.eos_token_id


def test_qwen2_architecture_reloads_with_the_same_tokenization(data_dir, tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedTokenizerFast

    out = tmp_path / "tiny_qwen2"
    build(data_dir, out, "--architecture", "qwen2")  # the build itself checks the AutoTokenizer reload
    assert type(AutoModelForCausalLM.from_pretrained(out)).__name__ == "Qwen2ForCausalLM"
    auto, raw = AutoTokenizer.from_pretrained(out), PreTrainedTokenizerFast(tokenizer_file=str(out / "tokenizer.json"))
    text = '{"name": "glass jar (ID: 7)", "uuid": 7}'
    assert auto(text)["input_ids"] == raw(text)["input_ids"]


def test_default_size_is_a_few_million_parameters():
    class FakeTokenizer:
        pad_token_id, eos_token_id = 0, 1

        def __len__(self):
            return TinyModelConfig().vocab_size

    n = count_parameters(build_model(FakeTokenizer()))
    assert 2_000_000 <= n <= 6_000_000, n
