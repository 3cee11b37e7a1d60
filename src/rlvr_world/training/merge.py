"""Merge a LoRA adapter into its base model and save a plain checkpoint (+ tokenizer)."""

from __future__ import annotations

import json
import os


def adapter_base_model(adapter_dir: str) -> str:
    with open(os.path.join(adapter_dir, "adapter_config.json")) as f:
        base = json.load(f).get("base_model_name_or_path")
    if not base:
        raise ValueError(f"{adapter_dir}/adapter_config.json names no base model; pass base_model")
    return base


def merge_lora(adapter_dir: str, output_dir: str, base_model: str | None = None, dtype: str | None = None) -> str:
    """Load `base_model` (default: the adapter's own base), apply the adapter, merge, save to `output_dir`.

    The tokenizer is taken from the adapter folder when it has one (SFT saves it there), else from
    the base model. Returns `output_dir`.
    """
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if not os.path.isfile(os.path.join(adapter_dir, "adapter_config.json")):
        raise FileNotFoundError(f"{adapter_dir} is not a LoRA adapter folder (no adapter_config.json)")
    base_model = base_model or adapter_base_model(adapter_dir)
    torch_dtype = getattr(torch, dtype) if dtype and dtype != "auto" else ("auto" if dtype == "auto" else None)
    kwargs = {"dtype": torch_dtype} if torch_dtype is not None else {}
    base = AutoModelForCausalLM.from_pretrained(base_model, **kwargs)
    model = PeftModel.from_pretrained(base, adapter_dir)
    merged = model.merge_and_unload()
    merged.save_pretrained(output_dir)
    has_tokenizer = any(
        os.path.isfile(os.path.join(adapter_dir, name)) for name in ("tokenizer.json", "tokenizer_config.json")
    )
    tokenizer = AutoTokenizer.from_pretrained(adapter_dir if has_tokenizer else base_model)
    tokenizer.save_pretrained(output_dir)
    return output_dir
