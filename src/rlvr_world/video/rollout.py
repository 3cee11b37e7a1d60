"""The visual-decoding generation hook GRPO uses: TRL's `rollout_func(prompts, trainer)`.

TRL hands a rollout function only the prompts of its batch (each already repeated
`num_generations` times by its sampler, so one sample per prompt is drawn here) and the trainer.
A video prompt is the world model's token ids written as text (`VisualTokenTokenizer`); a
multi-step rollout also needs the true actions that follow each predicted frame, and since
nothing but the prompt reaches this function, they travel in the prompt text after a `|` marker:

    single-step:  "f_0 a_0 ... f_{k-1} a_{k-1} <bos>"
    multi-step:   "c_0 a_0 | a_1 ... a_{T-1}"        (model prompt | actions to insert)

The samples come from `rlvr_world.video.generation` (constrained to the valid code range at every
position, temperature / top-k / top-p from `GRPOConfig`); multi-step rollouts insert the true
action tokens after each frame and mark them `env_mask = 0`, which TRL multiplies into the loss
mask. The hook returns (multi-step) the context codes and the processor; the reward callables
read the frame codes from `completion_ids` and decode every completion once with the frozen tokenizer.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from .processor import MULTI_STEP, VideoWorldModelProcessor
from .token_text import VisualTokenTokenizer

ACTIONS_MARKER = "|"


def conditioning_text(tokenizer: VisualTokenTokenizer, prompt_ids: Sequence[int],
                      future_action_ids: Sequence[int] | None = None) -> str:
    """The `prompt` column's text: the model prompt, then (multi-step) ``| a_1 ... a_{T-1}``."""
    text = tokenizer.ids_to_text(prompt_ids)
    if future_action_ids is not None and len(future_action_ids):
        text = f"{text} {ACTIONS_MARKER} {tokenizer.ids_to_text(future_action_ids)}"
    return text


def parse_conditioning(tokenizer: VisualTokenTokenizer, text: str) -> tuple[list[int], list[int]]:
    """Inverse of `conditioning_text`: ``(prompt_ids, future_action_ids)``."""
    head, _, tail = text.partition(f" {ACTIONS_MARKER} ")
    return tokenizer.text_to_ids(head), tokenizer.text_to_ids(tail)


def _sampling(args) -> dict:
    """GRPOConfig's sampling settings (the reference samples at temperature 1 with no top-k)."""
    top_k = getattr(args, "top_k", None)
    top_p = getattr(args, "top_p", None)
    return dict(
        do_sample=True,
        temperature=float(getattr(args, "temperature", 1.0) or 1.0),
        top_k=top_k if top_k and top_k > 0 else None,
        top_p=top_p if top_p is not None and top_p < 1.0 else None,
    )


def sample_completions(model, processor: VideoWorldModelProcessor, tokenizer: VisualTokenTokenizer,
                       prompts: Sequence[str], **sampling):
    """One sampled completion per prompt text -> `VideoGenerationOutput` (rows in prompt order)."""
    from .generation import generate_next_frame, rollout

    parsed = [parse_conditioning(tokenizer, text) for text in prompts]
    lengths = {len(p) for p, _ in parsed}
    if lengths != {processor.prompt_length}:
        raise ValueError(f"prompts must hold {processor.prompt_length} tokens for this processor, got lengths {sorted(lengths)}")
    prompt_ids = torch.tensor([p for p, _ in parsed], dtype=torch.long)
    if processor.mode != MULTI_STEP:
        return generate_next_frame(model, processor, prompt_ids, **sampling)
    needed = (processor.num_future_frames - 1) * processor.action_dim
    if any(len(a) != needed for _, a in parsed):
        raise ValueError(f"multi-step prompts must carry {needed} future action tokens after '{ACTIONS_MARKER}'")
    action_ids = torch.tensor([a for _, a in parsed], dtype=torch.long).reshape(
        len(parsed), processor.num_future_frames - 1, processor.action_dim
    )
    return rollout(model, processor, prompt_ids, action_ids, num_frames=processor.num_future_frames, **sampling)


def make_rollout_func(processor: VideoWorldModelProcessor, tokenizer: VisualTokenTokenizer) -> Callable:
    """TRL's `rollout_func` for a video world model (single-step or interactive multi-step)."""

    def rollout_func(prompts: list[str], trainer) -> dict:
        from trl.models import unwrap_model_for_generation

        with unwrap_model_for_generation(
            trainer.model_wrapped, trainer.accelerator,
            gather_deepspeed3_params=getattr(trainer.args, "ds3_gather_for_generation", True),
        ) as model:
            out = sample_completions(model, processor, tokenizer, prompts, **_sampling(trainer.args))
        rows = len(out.completion_ids)
        context = processor.context_codes_from_prompt(out.prompt_ids.cpu()) if processor.mode == MULTI_STEP else None
        return {
            "prompt_ids": out.prompt_ids.tolist(),
            "completion_ids": out.completion_ids.tolist(),
            "logprobs": None,  # TRL recomputes the policy's log-probs itself
            "env_mask": out.env_mask.tolist(),
            "context_codes": list(context) if context is not None else [None] * rows,
            "video_processor": processor,
        }

    return rollout_func


__all__ = ["ACTIONS_MARKER", "conditioning_text", "make_rollout_func", "parse_conditioning", "sample_completions"]
