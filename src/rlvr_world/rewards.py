"""Reward registry: name -> reward callable with TRL's signature.

TRL calls ``reward(prompts=..., completions=..., completion_ids=..., **columns)`` where every extra
dataset column arrives as a list aligned with ``completions``; a reward returns one float per
completion. Malformed model output scores 0 and never raises.
"""

from __future__ import annotations

import functools
from typing import Any, Callable

from rlvr_world.metrics.text import score_completion

RewardFunc = Callable[..., list[float]]
REWARD_FUNCS: dict[str, Callable[..., RewardFunc]] = {}


def register_reward(name: str):
    """Register a reward *factory*: ``factory(**options) -> reward callable`` named ``name``."""

    def decorator(factory):
        if name in REWARD_FUNCS:
            raise ValueError(f"reward '{name}' is already registered")
        REWARD_FUNCS[name] = factory
        return factory

    return decorator


def get_reward_funcs(names: list[str], options: dict[str, dict] | None = None) -> list[RewardFunc]:
    """Build the named rewards; ``options[name]`` holds keyword options for that reward."""
    options = options or {}
    unknown = [n for n in names if n not in REWARD_FUNCS]
    if unknown:
        raise KeyError(f"unknown reward(s) {unknown}; registered: {sorted(REWARD_FUNCS)}")
    return [REWARD_FUNCS[name](**options.get(name, {})) for name in names]


def completion_text(completion: Any) -> str:
    """TRL passes plain strings, or chat messages for conversational datasets."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, list) and completion and isinstance(completion[-1], dict):
        return str(completion[-1].get("content", ""))
    return ""


def _named(func, name: str):
    # TRL logs each reward under the callable's __name__.
    func.__name__ = func.__qualname__ = name
    return func


# ----------------------------------------------------------------------------- text game


@register_reward("textgame_binary")
def textgame_binary(**_: Any) -> RewardFunc:
    """1 if the predicted next state (objects and score) is exactly right, else 0."""

    def reward(completions, data_state, ground_truth, **kwargs) -> list[float]:
        return [
            float(score_completion(completion_text(c), cur, gold).correct)
            for c, cur, gold in zip(completions, data_state, ground_truth)
        ]

    return _named(reward, "textgame_binary")


# The reference's weights of the task-specific reward's terms.
TASK_SPECIFIC_WEIGHTS = {"item": 0.09, "score": 0.01, "correct": 0.2, "changed": 1.0}


def task_specific_value(
    result,
    item: float = TASK_SPECIFIC_WEIGHTS["item"],
    score: float = TASK_SPECIFIC_WEIGHTS["score"],
    correct: float = TASK_SPECIFIC_WEIGHTS["correct"],
    changed: float = TASK_SPECIFIC_WEIGHTS["changed"],
) -> float:
    """``item*item_score + score*score_score + correct*[exact] + changed*acc_changed`` (0 on format error).

    ``acc_changed`` covers only the gold-changed properties, so an empty diff earns nothing there;
    the term is dropped when the transition changes nothing.
    """
    s = result.score
    if s is None:
        return 0.0
    value = item * s.item_score + score * s.score_score + correct * float(s.is_correct)
    if s.acc_changed is not None:
        value += changed * s.acc_changed
    return value


@register_reward("textgame_task_specific")
def textgame_task_specific(
    item_weight: float = TASK_SPECIFIC_WEIGHTS["item"],
    score_weight: float = TASK_SPECIFIC_WEIGHTS["score"],
    correct_weight: float = TASK_SPECIFIC_WEIGHTS["correct"],
    changed_weight: float = TASK_SPECIFIC_WEIGHTS["changed"],
) -> RewardFunc:
    """The paper's task-specific reward; weights default to the reference's 0.09/0.01/0.2/1.0."""
    weights = dict(item=item_weight, score=score_weight, correct=correct_weight, changed=changed_weight)

    def reward(completions, data_state, ground_truth, **kwargs) -> list[float]:
        return [
            task_specific_value(score_completion(completion_text(c), cur, gold), **weights)
            for c, cur, gold in zip(completions, data_state, ground_truth)
        ]

    return _named(reward, "textgame_task_specific")


@register_reward("textgame_format")
def textgame_format(**_: Any) -> RewardFunc:
    """1 if the output holds a parsable partial diff, else 0 (a diagnostic, not in the paper)."""

    def reward(completions, data_state, ground_truth, **kwargs) -> list[float]:
        return [
            float(not score_completion(completion_text(c), cur, gold).format_error)
            for c, cur, gold in zip(completions, data_state, ground_truth)
        ]

    return _named(reward, "textgame_format")


# ----------------------------------------------------------------------------- web page


def _webpage_reward(name: str, value: Callable[[Any], float]) -> RewardFunc:
    """A reward scoring each completion against the gold three-section changes in ``ground_truth``."""
    from rlvr_world.metrics.webpage import score_completion as score_webpage

    def reward(completions, ground_truth, **kwargs) -> list[float]:
        return [value(score_webpage(completion_text(c), gold)) for c, gold in zip(completions, ground_truth)]

    return _named(reward, name)


@register_reward("webpage_f1")
def webpage_f1(**_: Any) -> RewardFunc:
    """The paper's web-page reward: micro F1 of exact item lines over the three sections (0 on format error)."""
    return _webpage_reward("webpage_f1", lambda s: s.f1)


@register_reward("webpage_precision")
def webpage_precision(**_: Any) -> RewardFunc:
    """Matched / predicted item lines (a metric to log beside the F1 reward, weight 0)."""
    return _webpage_reward("webpage_precision", lambda s: s.precision)


@register_reward("webpage_recall")
def webpage_recall(**_: Any) -> RewardFunc:
    """Matched / gold item lines (a metric to log beside the F1 reward, weight 0)."""
    return _webpage_reward("webpage_recall", lambda s: s.recall)


# ----------------------------------------------------------------------------- video
# Decoding and scoring live in rlvr_world.video.rewards: every video callable of a process shares
# one scorer, so the terms of a step (whether combined by TRL's `reward_weights` over several
# callables or inside `video_mae_lpips`) read one batched decode of the completions.


def _video_reward(name: str, weights: dict[str, float], **options: Any) -> RewardFunc:
    from rlvr_world.video.rewards import make_video_reward

    return make_video_reward(name, weights, **options)


@register_reward("video_mae")
def video_mae(**options: Any) -> RewardFunc:
    """-MAE of the decoded frames against `target_frames`, averaged over the predicted frames."""
    return _video_reward("video_mae", {"mae": 1.0}, **options)


@register_reward("video_mse")
def video_mse(**options: Any) -> RewardFunc:
    """-MSE of the decoded frames (mean over the predicted frames)."""
    return _video_reward("video_mse", {"mse": 1.0}, **options)


@register_reward("video_psnr")
def video_psnr(**options: Any) -> RewardFunc:
    """PSNR in dB (peak 1) of the decoded frames (mean over the predicted frames)."""
    return _video_reward("video_psnr", {"psnr": 1.0}, **options)


@register_reward("video_ssim")
def video_ssim(**options: Any) -> RewardFunc:
    """SSIM (Gaussian window 11, sigma 1.5) of the decoded frames (mean over the predicted frames)."""
    return _video_reward("video_ssim", {"ssim": 1.0}, **options)


@register_reward("video_lpips")
def video_lpips(**options: Any) -> RewardFunc:
    """-LPIPS (VGG unless `lpips_net` says otherwise); fails at build time without its weights."""
    return _video_reward("video_lpips", {"lpips": 1.0}, **options)


@register_reward("video_motion_mae")
def video_motion_mae(**options: Any) -> RewardFunc:
    """-MAE over the pixels that move between true frames or since the first (multi-step; frames 1..T-1).

    Not in the paper: an added term for multi-step GRPO. Full-frame -(MAE + LPIPS) barely sees
    PushT's small agent, so its group spread does not say which samples moved it right."""
    return _video_reward("video_motion_mae", {"motion_mae": 1.0}, **options)


@register_reward("video_mae_lpips")
def video_mae_lpips(mae_weight: float = 1.0, lpips_weight: float = 1.0, **options: Any) -> RewardFunc:
    """The paper's default video reward -(mae_weight * MAE + lpips_weight * LPIPS), frame-averaged."""
    return _video_reward("video_mae_lpips", {"mae": mae_weight, "lpips": lpips_weight}, **options)
