"""Pieces shared by `src/sft.py` and `src/grpo.py`: logging, model/LoRA settings, run records."""

from __future__ import annotations

import json
import logging
import os
import sys

logger = logging.getLogger("rlvr_world.training")


def setup_logging(training_args) -> None:
    import datasets
    import transformers

    level = training_args.get_process_log_level()
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S",
                        handlers=[logging.StreamHandler(sys.stdout)])
    logger.setLevel(logging.INFO if training_args.should_log else level)
    logging.getLogger("rlvr_world").setLevel(logging.INFO if training_args.should_log else level)
    datasets.utils.logging.set_verbosity(level)
    transformers.utils.logging.set_verbosity(level)


def apply_threads(script_args) -> None:
    n = getattr(script_args, "torch_num_threads", None)
    if n:
        import torch

        torch.set_num_threads(int(n))


def score_labelled_positions_only() -> None:
    """Make TRL's fused LM head score only the positions that carry a label, on every device.

    TRL does so only on Triton devices; elsewhere it scores every position, to keep tile shapes fixed
    for compilers such as Neuron's, and its CPU path runs those tiles in fp32 even under bf16 autocast.
    A text-game sequence is ~85% prompt, which SFT (completion-only loss) and GRPO never score: on 2 CPU
    cores a SmolLM2 SFT step of 4 sequences spent about 7 of its 16 s projecting prompt positions onto
    the 49k-token vocabulary. The loss and gradients are the same either way (tested).
    """
    import trl.trainer.utils as trl_utils

    original = getattr(trl_utils, "_use_triton", None)
    if original is None or getattr(original, "_rlvr_world_compact", False):
        return  # another TRL layout (nothing to patch), or already patched

    def compact_positions(device):
        return device.type == "cpu" or original(device)

    compact_positions._rlvr_world_compact = True
    trl_utils._use_triton = compact_positions


def normalize_model_args(model_args) -> None:
    """`lora_target_modules: all-linear` arrives as a string from YAML but as `["all-linear"]` from
    the command line; PEFT only understands the string."""
    targets = model_args.lora_target_modules
    if isinstance(targets, list) and len(targets) == 1 and targets[0] == "all-linear":
        model_args.lora_target_modules = "all-linear"


def apply_model_init_kwargs(model_args, training_args) -> None:
    """Fill `training_args.model_init_kwargs` from `ModelConfig` (dtype, attention, revision)."""
    kwargs = dict(
        revision=model_args.model_revision,
        attn_implementation=model_args.attn_implementation,
        dtype=model_args.dtype,
    )
    kwargs = {k: v for k, v in kwargs.items() if v is not None}
    if getattr(training_args, "model_init_kwargs", None):
        kwargs.update(training_args.model_init_kwargs)
    training_args.model_init_kwargs = kwargs


def load_tokenizer(model_args):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(
        model_args.model_name_or_path, revision=model_args.model_revision, trust_remote_code=False
    )
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def write_run_info(training_args, info: dict, filename: str = "run_info.json") -> None:
    """Record what a run was built from (dataset sizes, resume point, ...) next to its outputs."""
    if not training_args.should_save:
        return
    os.makedirs(training_args.output_dir, exist_ok=True)
    path = os.path.join(training_args.output_dir, filename)
    history = []
    if os.path.isfile(path):
        try:
            with open(path) as f:
                history = json.load(f)
            if not isinstance(history, list):
                history = [history]
        except (OSError, ValueError):
            history = []
    history.append(info)
    with open(path, "w") as f:
        json.dump(history, f, indent=2, default=str)
