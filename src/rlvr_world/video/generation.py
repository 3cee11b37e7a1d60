"""Sampling from the video world model: single-step prediction, interactive multi-step rollouts,
repeated-frame rejection and best-of-N, all through transformers' `generate`.

- Every sampled position is constrained to the token range its layout allows
  ([`CodeRangeLogitsProcessor`]): visual codes for frame tokens, EOS where the single-step
  sequence ends. Masking runs before temperature / top-k / top-p (transformers applies custom
  processors first), so a sample is always decodable.
- A multi-step rollout generates one frame's tokens, appends the true action tokens, and
  continues from the same KV cache (`generate(..., cache=...)` only runs the uncached suffix).
- The outputs carry the prompt and completion ids and TRL's `env_mask` (1 = sampled by the
  model, 0 = an inserted action token), which is what GRPO's rollout hook hands back to TRL.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from transformers import GenerationConfig, LogitsProcessor, LogitsProcessorList

from .processor import EOS, MULTI_STEP, SINGLE_STEP, VISUAL, VideoWorldModelProcessor


@dataclass
class VideoGenerationOutput:
    """What the generation functions return. ``B' = B * num_return_sequences``; the samples of one
    prompt are adjacent rows.

    Attributes:
        prompt_ids: ``[B', P]``.
        completion_ids: ``[B', C]`` (single-step: the frame tokens then EOS; multi-step:
            ``f_1 a_1 f_2 ... a_{T-1} f_T``).
        env_mask: ``[B', C]`` 1 where the model sampled the token, 0 for inserted action tokens.
        frame_codes: ``[B', T, h, w]`` tokenizer codes of the predicted frames.
        frames: ``[B', T, 3, H, W]`` decoded frames in [0, 1] (``decode=True`` only).
        num_resampled: ``[B']`` frames that repeated-frame rejection sampled again.
        scores: best-of-N only: ``[B, n]`` the metric of every candidate (the kept rows are the best).
    """

    prompt_ids: torch.LongTensor
    completion_ids: torch.LongTensor
    env_mask: torch.LongTensor
    frame_codes: torch.LongTensor
    frames: torch.Tensor | None = None
    num_resampled: torch.LongTensor | None = None
    scores: torch.Tensor | None = None

    @property
    def sequences(self) -> torch.LongTensor:
        return torch.cat([self.prompt_ids, self.completion_ids], dim=1)


class CodeRangeLogitsProcessor(LogitsProcessor):
    """Sets every logit outside ``ranges[i]`` to -inf at the ``i``-th generated position.

    Args:
        prompt_length: length of the input when generation starts (positions are counted from it).
        ranges: one half-open ``(lo, hi)`` token-id range per generated position; positions past
            the end reuse the last range.
    """

    def __init__(self, prompt_length: int, ranges: Sequence[tuple[int, int]]):
        if not ranges:
            raise ValueError("CodeRangeLogitsProcessor needs at least one range")
        self.prompt_length = int(prompt_length)
        self.ranges = [(int(lo), int(hi)) for lo, hi in ranges]
        for lo, hi in self.ranges:
            if not 0 <= lo < hi:
                raise ValueError(f"empty or negative token range [{lo}, {hi})")

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        position = input_ids.shape[1] - self.prompt_length
        lo, hi = self.ranges[min(max(position, 0), len(self.ranges) - 1)]
        allowed = torch.zeros(scores.shape[-1], dtype=torch.bool, device=scores.device)
        allowed[lo:hi] = True
        return scores.masked_fill(~allowed, float("-inf"))


class LatentMBRLogitsProcessor(LogitsProcessor):
    """Minimum-Bayes-risk choice of each visual token under squared distance in the tokenizer's latent space.

    Where the next token is a visual code, it keeps only the code whose latent is nearest to the expected
    latent under the model's distribution over the codes (which minimises the expected squared latent
    error, since `E||z_c - z||^2 = ||z_c - E z||^2 + const`); greedy decoding then picks it. Why: where the
    model is unsure, its mass spreads over many neighbouring FSQ codes, and the single most likely one
    lies off-centre (a tiny PushT model gives the agent's cell 2-10% per code); the expected latent is
    the centre of that spread. Run it after [`CodeRangeLogitsProcessor`] (scores outside the allowed
    range are then -inf); positions whose allowed range is not the visual codes pass unchanged.

    Args:
        code_latents: ``[num_visual_codes, D]`` the latent of each visual code (`processor.visual_code_latents()`).
    """

    def __init__(self, code_latents: torch.Tensor):
        if code_latents.ndim != 2:
            raise ValueError(f"code_latents must be [num_codes, D], got {tuple(code_latents.shape)}")
        self.code_latents = code_latents.float()

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        n = self.code_latents.shape[0]
        visual = torch.isfinite(scores[:, :n]).any(-1) & ~torch.isfinite(scores[:, n:]).any(-1)
        if not visual.any():
            return scores
        self.code_latents = self.code_latents.to(scores.device)  # once: a no-op on later tokens
        expected = scores[visual, :n].float().softmax(-1) @ self.code_latents
        chosen = torch.cdist(expected, self.code_latents).argmin(-1)
        out = scores.clone()
        rows = out[visual].fill_(float("-inf"))
        rows[torch.arange(len(chosen), device=scores.device), chosen] = 0.0
        out[visual] = rows
        return out


def repetition_flags(frame_codes: torch.LongTensor, previous_codes: torch.LongTensor | None = None) -> torch.BoolTensor:
    """``[B, T]``: frame ``t``'s tokens equal frame ``t-1``'s (frame 0 is compared with
    ``previous_codes`` ``[B, h, w]`` when given, else never flagged)."""
    flat = frame_codes.flatten(2)
    flags = torch.zeros(flat.shape[:2], dtype=torch.bool, device=flat.device)
    flags[:, 1:] = (flat[:, 1:] == flat[:, :-1]).all(dim=-1)
    if previous_codes is not None:
        flags[:, 0] = (flat[:, 0] == previous_codes.flatten(1).to(flat.device)).all(dim=-1)
    return flags


# ---------------------------------------------------------------------------------------- helpers


def _generation_config(
    processor: VideoWorldModelProcessor, max_new_tokens: int, do_sample: bool, temperature: float,
    top_k: int | None, top_p: float | None, use_cache: bool,
) -> GenerationConfig:
    if do_sample and temperature <= 0:
        raise ValueError(f"temperature must be > 0 when sampling, got {temperature}")
    sampling = dict(temperature=temperature, top_k=top_k or 0, top_p=1.0 if top_p is None else top_p) if do_sample else {}
    # The layout fixes every length and the constraint places EOS (only ever as the single-step
    # sequence's last token), so no min_new_tokens: it would mask the one allowed token there.
    return GenerationConfig(
        max_new_tokens=max_new_tokens, do_sample=do_sample, use_cache=use_cache, return_dict_in_generate=True,
        pad_token_id=processor.pad_token_id, bos_token_id=processor.bos_token_id, eos_token_id=None, **sampling,
    )


def _ranges(processor: VideoWorldModelProcessor, kinds: torch.Tensor) -> list[tuple[int, int]]:
    table = processor.kind_ranges()
    return [table[int(k)] for k in kinds]


def _check_prompts(processor: VideoWorldModelProcessor, prompt_ids: torch.Tensor, mode: str, wrong_mode: str) -> None:
    if processor.mode != mode:
        raise ValueError(wrong_mode)
    if prompt_ids.ndim != 2 or prompt_ids.shape[1] != processor.prompt_length:
        raise ValueError(f"expected prompts [B, {processor.prompt_length}], got {tuple(prompt_ids.shape)}")


def _device(model) -> torch.device:
    return next(model.parameters()).device


def _seed(seed: int | None) -> None:
    if seed is not None:
        torch.manual_seed(seed)


def _latent_mbr(processor: VideoWorldModelProcessor, latent_mbr: bool, do_sample: bool) -> LatentMBRLogitsProcessor | None:
    """The MBR token chooser when asked for (built once per call: the code latents do not change)."""
    if not latent_mbr:
        return None
    if do_sample:
        raise ValueError("latent_mbr chooses each token itself: pass do_sample=False")
    return LatentMBRLogitsProcessor(processor.visual_code_latents())


def _logits_processors(constraint: CodeRangeLogitsProcessor, mbr: LatentMBRLogitsProcessor | None) -> LogitsProcessorList:
    return LogitsProcessorList([constraint] if mbr is None else [constraint, mbr])


# ---------------------------------------------------------------------------------------- single step


@torch.no_grad()
def generate_next_frame(
    model,
    processor: VideoWorldModelProcessor,
    prompt_ids: torch.LongTensor,
    *,
    do_sample: bool = True,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    num_return_sequences: int = 1,
    use_cache: bool = True,
    decode: bool = False,
    seed: int | None = None,
    latent_mbr: bool = False,
) -> VideoGenerationOutput:
    """Single-step prediction: the target frame's ``N`` tokens and EOS after each prompt ``[B, P]``
    (``latent_mbr``: each visual token by [`LatentMBRLogitsProcessor`] instead of sampling or greedy)."""
    _check_prompts(processor, prompt_ids, SINGLE_STEP, "generate_next_frame is for single-step world models; use rollout")
    mbr = _latent_mbr(processor, latent_mbr, do_sample)
    _seed(seed)
    prompts = prompt_ids.to(_device(model)).repeat_interleave(num_return_sequences, dim=0)
    kinds = processor.token_kinds()[processor.prompt_length:]  # N visual positions, then EOS
    config = _generation_config(processor, len(kinds), do_sample, temperature, top_k, top_p, use_cache)
    processors = _logits_processors(CodeRangeLogitsProcessor(prompts.shape[1], _ranges(processor, kinds)), mbr)
    sequences = model.generate(prompts, generation_config=config, logits_processor=processors).sequences
    completion = sequences[:, prompts.shape[1]:]
    codes, _ = processor.completion_to_codes(completion)
    return VideoGenerationOutput(
        prompt_ids=prompts,
        completion_ids=completion,
        env_mask=torch.ones_like(completion),
        frame_codes=codes,
        frames=processor.decode_frames(codes) if decode else None,
        num_resampled=torch.zeros(len(prompts), dtype=torch.long, device=prompts.device),
    )


# ---------------------------------------------------------------------------------------- multi step


@torch.no_grad()
def rollout(
    model,
    processor: VideoWorldModelProcessor,
    prompt_ids: torch.LongTensor,
    action_ids: torch.LongTensor,
    *,
    num_frames: int | None = None,
    do_sample: bool = True,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    num_return_sequences: int = 1,
    use_cache: bool = True,
    reject_repeats: bool = False,
    max_resample: int = 4,
    decode: bool = False,
    seed: int | None = None,
    latent_mbr: bool = False,
) -> VideoGenerationOutput:
    """Interactive multi-step rollout: sample frame ``t``'s tokens, append the true action ``a_t``,
    continue (reusing the KV cache when ``use_cache``).

    Args:
        prompt_ids: ``[B, P]`` context tokens and ``a_0`` (``processor.build_prompt``).
        action_ids: ``[B, >= T-1, D]`` the action token ids ``a_1 .. a_{T-1}`` (``processor.action_tokens``).
        num_frames: ``T`` (default: ``action_ids.shape[1] + 1``).
        reject_repeats: resample a frame whose tokens equal the previous frame's, up to
            ``max_resample`` times (the paper's rejection baseline).
        latent_mbr: each visual token by [`LatentMBRLogitsProcessor`] (deterministic: no sampling, no rejection).
    """
    _check_prompts(processor, prompt_ids, MULTI_STEP, "rollout is for multi-step world models; use generate_next_frame")
    mbr = _latent_mbr(processor, latent_mbr, do_sample)
    if latent_mbr and reject_repeats:
        raise ValueError("latent_mbr is deterministic: a rejected frame would come back the same; drop reject_repeats")
    num_frames = action_ids.shape[1] + 1 if num_frames is None else num_frames
    if action_ids.ndim != 3 or action_ids.shape[0] != prompt_ids.shape[0] or action_ids.shape[1] < num_frames - 1:
        raise ValueError(f"expected action ids [{prompt_ids.shape[0]}, >= {num_frames - 1}, D], got {tuple(action_ids.shape)}")
    _seed(seed)
    device = _device(model)
    prompts = prompt_ids.to(device).repeat_interleave(num_return_sequences, dim=0)
    actions = action_ids[:, : num_frames - 1].to(device).repeat_interleave(num_return_sequences, dim=0)
    n = processor.tokens_per_frame
    config = _generation_config(processor, n, do_sample, temperature, top_k, top_p, use_cache)
    visual = [processor.kind_ranges()[VISUAL]] * n

    def sample_frame(sequence: torch.Tensor, cache):
        processors = _logits_processors(CodeRangeLogitsProcessor(sequence.shape[1], visual), mbr)
        out = model.generate(sequence, generation_config=config, logits_processor=processors, cache=cache)
        return out.sequences[:, -n:], out.get("cache")

    sequence, cache, previous = prompts, None, None
    masks = []
    num_resampled = torch.zeros(len(prompts), dtype=torch.long, device=device)
    for t in range(num_frames):
        cached_before = cache.get_seq_length() if cache is not None else 0
        frame, cache = sample_frame(sequence, cache)
        if reject_repeats and previous is not None:
            repeated = (frame == previous).all(dim=1)
            resampled_any = bool(repeated.any())
            for _ in range(max_resample):
                if not repeated.any():
                    break
                rows = repeated.nonzero().squeeze(1)
                redo, _ = sample_frame(sequence[rows], None)  # fresh cache for the few resampled rows
                frame[rows] = redo
                num_resampled[rows] += 1
                repeated[rows] = (redo == previous[rows]).all(dim=1)
            if resampled_any and cache is not None:
                # The shared cache holds the rejected samples' keys/values: drop this frame's
                # entries; the next call re-reads the kept tokens in one batched forward.
                cache.crop(cached_before - cache.get_seq_length())  # a negative count: tokens to drop
        parts, mask = [sequence, frame], [torch.ones_like(frame)]
        if t < num_frames - 1:
            parts.append(actions[:, t])
            mask.append(torch.zeros_like(actions[:, t]))
        sequence = torch.cat(parts, dim=1)
        masks += mask
        previous = frame
    completion = sequence[:, prompts.shape[1]:]
    codes, _ = processor.completion_to_codes(completion)
    frames = None
    if decode:
        frames = processor.decode_frames(codes, processor.context_codes_from_prompt(prompts))
    return VideoGenerationOutput(
        prompt_ids=prompts,
        completion_ids=completion,
        env_mask=torch.cat(masks, dim=1),
        frame_codes=codes,
        frames=frames,
        num_resampled=num_resampled,
    )


# ---------------------------------------------------------------------------------------- best of N


@torch.no_grad()
def best_of_n(
    model,
    processor: VideoWorldModelProcessor,
    prompt_ids: torch.LongTensor,
    n: int,
    score_fn: Callable[[torch.Tensor], torch.Tensor],
    *,
    action_ids: torch.LongTensor | None = None,
    **sampling,
) -> VideoGenerationOutput:
    """Sample ``n`` candidates per prompt and keep the one ``score_fn`` rates highest (test-time scaling).

    ``score_fn(frames)`` gets the decoded candidates ``[B * n, T, 3, H, W]`` (the ``n`` samples of
    prompt ``b`` are rows ``b*n .. b*n + n - 1``; repeat references with ``repeat_interleave(n)``)
    and returns ``[B * n]`` scores, higher is better. ``sampling``: the keyword arguments of
    :func:`generate_next_frame` / :func:`rollout`.
    """
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    sampling = {**sampling, "num_return_sequences": n, "decode": True}
    if processor.mode == SINGLE_STEP:
        out = generate_next_frame(model, processor, prompt_ids, **sampling)
    else:
        if action_ids is None:
            raise ValueError("multi-step best-of-N needs the action ids")
        out = rollout(model, processor, prompt_ids, action_ids, **sampling)
    scores = torch.as_tensor(score_fn(out.frames), dtype=torch.float32).reshape(-1, n)
    if not torch.isfinite(scores).all():
        scores = torch.nan_to_num(scores, nan=float("-inf"))
    rows = torch.arange(scores.shape[0]) * n + scores.argmax(dim=1).cpu()
    rows = rows.to(out.prompt_ids.device)
    return VideoGenerationOutput(
        prompt_ids=out.prompt_ids[rows],
        completion_ids=out.completion_ids[rows],
        env_mask=out.env_mask[rows],
        frame_codes=out.frame_codes[rows],
        frames=out.frames[rows.to(out.frames.device)],
        num_resampled=out.num_resampled[rows],
        scores=scores,
    )


__all__ = [
    "CodeRangeLogitsProcessor",
    "LatentMBRLogitsProcessor",
    "VideoGenerationOutput",
    "best_of_n",
    "generate_next_frame",
    "repetition_flags",
    "rollout",
]
