"""Evaluate a video world model against copy-last-frame and the tokenizer's own reconstruction.

Held-out episodes are cut into evaluation windows of ``context + future`` frames (single-step:
the processor's context frames and one target; multi-step: the compressive tokenizer's context
frame and the rolled-out future frames). Every predictor fills the future frames of every window:

- ``copy_last_frame``: the last context frame, unchanged (the trivial baseline);
- ``reconstruction``: the target frames encoded and decoded by the tokenizer (the ceiling: a world
  model that predicts every token right decodes to exactly this);
- ``model``: the world model's predicted tokens, decoded by the same tokenizer.

Figures per predicted frame on ``[0, 1]`` pixels: MSE, MAE, PSNR, SSIM (Gaussian window 11,
sigma 1.5) and LPIPS when its backbone weights are on this machine (otherwise reported as
unavailable), plus the repetition rate (share of predicted frames whose tokens equal the previous
frame's). Outputs: ``metrics.json``, ``report.md``, ``windows.jsonl`` (per-window figures),
``curves.png`` and, per sampled episode, ``samples/episode_N.png`` (rows: truth, model, copy,
|model - truth| x4) and ``samples/episode_N.gif``.

CLI: ``python src/evaluate.py --task video_single_step|video_multi_step --model DIR --dataset DIR``.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rlvr_world.metrics.video import (
    LPIPS,
    lpips_available,
    mae,
    mse,
    psnr,
    repeated_frames,
    ssim,
)

TASKS = ("video_single_step", "video_multi_step")
METRICS = ("mse", "mae", "psnr", "ssim", "lpips")
# Lower is better for these; best-of-N keeps the sample with the lowest (or highest) value.
LOWER_IS_BETTER = {"mse": True, "mae": True, "psnr": False, "ssim": False, "lpips": True}
PREDICTORS = ("model", "copy_last_frame", "reconstruction")
GRID_COLUMNS = 14
_LABELS = {"model": "world model", "copy_last_frame": "copy last frame", "reconstruction": "tokenizer reconstruction"}


@dataclass
class SamplingOptions:
    """How the world model draws its tokens (the paper evaluates with top-k 100)."""

    do_sample: bool = True
    temperature: float = 1.0
    top_k: int | None = 100
    top_p: float | None = None
    num_samples: int = 1  # best-of-N against the ground truth (test-time scaling), under `best_of`
    best_of: str = "mse"
    reject_repeats: bool = False  # multi-step: resample a frame that repeats its predecessor
    latent_mbr: bool = False  # each visual token by minimum Bayes risk in the tokenizer's latent space

    def __post_init__(self):
        if self.latent_mbr and (self.do_sample or self.num_samples > 1 or self.reject_repeats):
            raise ValueError("latent MBR decoding is deterministic: it takes no sampling, best-of-N or repeat rejection")


@dataclass
class VideoEvalConfig:
    task: str
    dataset: str
    output_dir: str
    model: str | None = None
    tokenizer: str | None = None
    split: str = "test"
    num_episodes: int | None = None
    limit: int | None = None
    stride: int | None = None
    context_frames: int | None = None
    future_frames: int | None = None
    batch_size: int = 16
    num_visualized: int = 4
    seed: int = 0
    device: str | None = None
    progress: bool = True
    sampling: SamplingOptions = field(default_factory=SamplingOptions)


# ---------------------------------------------------------------------------------------- data


def load_windows(
    dataset: str,
    split: str,
    context_frames: int,
    future_frames: int,
    stride: int | None = None,
    num_episodes: int | None = None,
    limit: int | None = None,
):
    """Evaluation windows of held-out episodes, in a fixed order: a
    :class:`~rlvr_world.data.frames.FrameSequenceDataset` (``train=False``) over the first
    ``num_episodes`` episodes of ``split``, every ``stride`` frames (default: non-overlapping),
    cut to the first ``limit`` windows."""
    from rlvr_world.data import load_dataset_dir
    from rlvr_world.data.frames import ACTIONS, FRAMES, FrameSequenceDataset

    episodes = load_dataset_dir(dataset, split)
    missing = {FRAMES, ACTIONS} - set(episodes.column_names)
    if missing:
        raise ValueError(f"{dataset} [{split}]: no column(s) {sorted(missing)} (has {episodes.column_names})")
    if num_episodes is not None:
        episodes = episodes.select(range(min(num_episodes, len(episodes))))
    windows = FrameSequenceDataset(episodes, context_frames, future_frames, train=False, stride=stride)
    if limit is not None:
        windows.windows = windows.windows[:limit]
    if not len(windows):
        raise ValueError(
            f"{dataset} [{split}]: no episode has {context_frames + future_frames} frames "
            f"({context_frames} context + {future_frames} future)"
        )
    return windows


# ---------------------------------------------------------------------------------------- predictors


@dataclass
class Prediction:
    """Predicted future frames ``[B, F, 3, H, W]`` in ``[0, 1]`` and, for token predictors, their
    visual tokens ``[B, F, N]`` and the last context frame's ``[B, N]`` (``None`` when the context
    is coded differently, as with the compressive tokenizer)."""

    frames: torch.Tensor
    tokens: torch.Tensor | None = None
    previous_tokens: torch.Tensor | None = None


Predictor = Callable[[torch.Tensor, torch.Tensor], Prediction]


def copy_last_frame(pixels: torch.Tensor, context_frames: int) -> torch.Tensor:
    """``[B, T, 3, H, W]`` -> the last context frame repeated for every future frame ``[B, T - k, 3, H, W]``."""
    future = pixels.shape[1] - context_frames
    return pixels[:, context_frames - 1 : context_frames].expand(-1, future, -1, -1, -1)


def is_compressive(tokenizer) -> bool:
    return tokenizer.config.model_type == "compressive_vqgan_fsq"


@torch.no_grad()
def reconstruct_future(tokenizer, pixels: torch.Tensor, context_frames: int) -> Prediction:
    """The tokenizer's round trip of the future frames of ``pixels`` ``[B, T, 3, H, W]``.

    Per-frame tokenizer: each frame on its own (tokens ``[B, F, h*w]``, the last context frame's as
    ``previous_tokens``). Compressive tokenizer: the clip's own context frame(s) condition the future
    codes, as in a multi-step world model's sequence (its first ``num_context_frames`` frames must be
    the window's last context frames).
    """
    if is_compressive(tokenizer):
        tc = tokenizer.config.num_context_frames
        clip = pixels[:, context_frames - tc :]
        context = tokenizer.encode_context(clip[:, :tc])
        codes = tokenizer.encode_future(clip[:, tc:], context)
        frames = tokenizer.decode_future(codes, tokenizer.context_from_codes(context.codes))
        return Prediction(frames=frames, tokens=codes.flatten(2))
    codes = tokenizer.encode(pixels[:, context_frames - 1 :])
    frames = tokenizer.decode(codes[:, 1:])
    codes = codes.flatten(2)
    return Prediction(frames=frames, tokens=codes[:, 1:], previous_tokens=codes[:, 0])


class WorldModelPredictor:
    """Predicts the future frames of evaluation windows with a world model (helper of :func:`run`).

    Single-step: the prompt holds the window's ``k`` context frames and their actions, the model
    samples the next frame's tokens. Multi-step: the prompt holds the context frame and its action,
    the model rolls out the future frames, each followed by the true next action. With
    ``num_samples > 1`` it keeps, per window, the sample closest to the ground truth under
    ``best_of`` (best-of-N, the test-time-scaling figure, not a deployable predictor).
    """

    def __init__(self, model, processor, sampling: SamplingOptions, device: str, seed: int = 0, lpips_model=None):
        self.model, self.processor, self.sampling = model, processor, sampling
        self.device, self.seed, self.lpips_model = device, seed, lpips_model
        self.multi_step = processor.mode == "multi_step"
        self.calls = 0
        self.num_resampled = 0
        # Teacher-forced figures: the model's argmax on the true frame tokens, and how often a true
        # frame token equals the same position's token one frame earlier (what copying gets right).
        self.tokens_total = self.tokens_right = self.copy_total = self.copy_right = 0

    @classmethod
    def from_pretrained(cls, path: str, task: str, device: str, sampling: SamplingOptions, seed: int = 0):
        from transformers import AutoModelForCausalLM

        import rlvr_world.video.world_model  # noqa: F401  (registers the world model with the Auto classes)
        from rlvr_world.video.processor import VideoWorldModelProcessor

        processor = VideoWorldModelProcessor.from_pretrained(path)
        expected = "single_step" if task == "video_single_step" else "multi_step"
        if processor.mode != expected:
            raise ValueError(f"{path}: a {processor.mode} world model cannot be evaluated as {task}")
        if sampling.reject_repeats and processor.mode != "multi_step":
            raise ValueError("--reject_repeats applies to multi-step rollouts only")
        model = AutoModelForCausalLM.from_pretrained(path).to(device).eval()
        processor.visual_tokenizer.to(device)
        predictor = cls(model, processor, sampling, device, seed)
        predictor.path = path
        return predictor

    @property
    def tokenizer(self):
        return self.processor.visual_tokenizer

    @property
    def tokenizer_path(self) -> str:
        return str(Path(getattr(self, "path", ".")) / self.processor.tokenizer_name_or_path)

    @property
    def layout(self) -> tuple[int, int]:
        return self.processor.num_context_frames, self.processor.num_future_frames

    def _score(self, target: torch.Tensor):
        """Best-of-N score: higher is better, one value per candidate (candidates of a window adjacent)."""
        name, n = self.sampling.best_of, self.sampling.num_samples
        if name == "lpips" and self.lpips_model is None:
            raise ValueError("--best_of lpips needs the LPIPS backbone weights")
        metric = {"mse": mse, "mae": mae, "psnr": psnr, "ssim": ssim, "lpips": self.lpips_model}[name]
        repeated = target.repeat_interleave(n, dim=0)

        def score(frames: torch.Tensor) -> torch.Tensor:
            value = metric(frames.float().clamp(0, 1), repeated.to(frames.device).float()).mean(-1)
            return -value if LOWER_IS_BETTER[name] else value

        return score

    @torch.no_grad()
    def __call__(self, pixels: torch.Tensor, actions: torch.Tensor) -> Prediction:
        from rlvr_world.video import generation

        k, future = self.layout
        pixels, actions = pixels.to(self.device), actions.to(self.device)
        s = self.sampling
        options = dict(do_sample=s.do_sample, temperature=s.temperature, top_k=s.top_k, top_p=s.top_p,
                       seed=self.seed + self.calls, latent_mbr=s.latent_mbr)
        self.calls += 1
        if self.multi_step:
            prompt = self.processor.build_prompt(pixels[:, :k], actions[:, :k])
            options.update(action_ids=self.processor.action_tokens(actions[:, k : k + future - 1]),
                           reject_repeats=s.reject_repeats)
            generate = generation.rollout
        else:
            prompt = self.processor.build_prompt(pixels[:, :k], actions[:, :k])
            generate = generation.generate_next_frame
        if s.num_samples > 1:
            out = generation.best_of_n(self.model, self.processor, prompt, s.num_samples, self._score(pixels[:, k:]), **options)
        else:
            out = generate(self.model, self.processor, prompt, decode=True, **options)
        if out.num_resampled is not None:
            self.num_resampled += int(out.num_resampled.sum())
        truth = self._teacher_forced(pixels[:, : k + future], actions[:, : k if not self.multi_step else future])
        # Per-frame codes: the last context frame is comparable with the first prediction.
        previous = None if self.multi_step else truth[:, 0].flatten(1)
        return Prediction(frames=out.frames.float(), tokens=out.frame_codes.flatten(2), previous_tokens=previous)

    def _teacher_forced(self, pixels: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """Counts the teacher-forced token figures for one batch; returns the true frame codes
        ``[B, T', h, w]`` (single-step: the last context frame and the target; multi-step: the future frames)."""
        batch = self.processor(pixels, actions)
        ids, labels = batch["input_ids"].to(self.device), batch["labels"].to(self.device)
        target = labels[:, 1:]
        visual = (target >= 0) & (target < self.processor.num_visual_codes)
        # The output head only where a visual token is predicted (most positions are context).
        hidden = self.model.model(input_ids=ids).last_hidden_state[:, :-1][visual]
        logits = self.model.lm_head(hidden)[:, : self.processor.num_visual_codes]
        self.tokens_right += int((logits.argmax(-1) == target[visual]).sum())
        self.tokens_total += int(visual.sum())
        if self.multi_step:
            codes = self.processor.encode_frames(pixels)[1]
        else:
            codes = self.processor.encode_frames(pixels[:, -2:])
        self.copy_right += int((codes[:, 1:] == codes[:, :-1]).sum())
        self.copy_total += codes[:, 1:].numel()
        return codes

    def extra_metrics(self) -> dict[str, Any]:
        """Figures only a token predictor has, for the model's summary."""
        extra = {
            "token_accuracy": self.tokens_right / max(self.tokens_total, 1),
            "copy_token_accuracy": self.copy_right / max(self.copy_total, 1),
        }
        if self.sampling.reject_repeats:
            extra["resampled_frames"] = self.num_resampled
        return extra


def load_tokenizer(path: str, device: str):
    from transformers import AutoModel

    import rlvr_world  # noqa: F401  (registers the tokenizers with the Auto classes)

    return AutoModel.from_pretrained(path).to(device).eval()


# ---------------------------------------------------------------------------------------- metrics


@torch.no_grad()
def frame_metrics(pred: torch.Tensor, target: torch.Tensor, lpips_model: LPIPS | None = None) -> dict[str, torch.Tensor]:
    """Per-frame figures ``{name: [B, F]}`` for frames ``[B, F, 3, H, W]`` in ``[0, 1]`` (LPIPS only
    with a real backbone)."""
    pred, target = pred.float().clamp(0, 1), target.float()
    values = {"mse": mse(pred, target), "mae": mae(pred, target), "psnr": psnr(pred, target), "ssim": ssim(pred, target)}
    if lpips_model is not None:
        if lpips_model.random_backbone:
            raise ValueError("Refusing to report LPIPS from a randomly initialised backbone.")
        values["lpips"] = lpips_model(pred, target)
    return {name: value.cpu() for name, value in values.items()}


def repetition(prediction: Prediction) -> torch.Tensor | None:
    """Bool ``[B, F]`` (or ``[B, F - 1]`` without the context frame's tokens): frame repeats its predecessor."""
    if prediction.tokens is None:
        return None
    return repeated_frames(prediction.tokens.cpu(), None if prediction.previous_tokens is None else prediction.previous_tokens.cpu())


def summarise(per_frame: dict[str, torch.Tensor]) -> dict[str, Any]:
    """Means over all predicted frames, and per future step (``per_step``: lists of length F)."""
    summary: dict[str, Any] = {name: float(values.double().mean()) for name, values in per_frame.items() if name != "repeated"}
    summary["per_step"] = {
        name: [float(v) for v in values.double().mean(0)] for name, values in per_frame.items() if name != "repeated"
    }
    repeats = per_frame.get("repeated")
    summary["repetition_rate"] = float(repeats.float().mean()) if repeats is not None and repeats.numel() else None
    return summary


def win_rate(model: torch.Tensor, baseline: torch.Tensor, lower_is_better: bool = True) -> float:
    """Share of windows where the model's mean error beats the baseline's (ties count half)."""
    a, b = model.double().mean(-1), baseline.double().mean(-1)
    better = (a < b) if lower_is_better else (a > b)
    return float((better.double() + 0.5 * (a == b).double()).mean())


def pusht_figures(background: torch.Tensor) -> Callable[[torch.Tensor, torch.Tensor], dict[str, float | None]]:
    """PushT scene figures against the training split's median frame ``background``: PSNR over the
    pixels that differ from the static table (the global figures mostly score the empty table), and
    how often the agent and the T block read back from the predicted frame lie within 2 px of the
    truth's (:func:`rlvr_world.metrics.pusht.evaluate_reconstruction`)."""
    from rlvr_world.metrics.pusht import evaluate_reconstruction

    def figures(pred: torch.Tensor, target: torch.Tensor) -> dict[str, float | None]:
        result = evaluate_reconstruction(target, pred.clamp(0, 1), background, lpips_model=None)
        return {key: result[key] for key in SCENE_FIGURES}

    return figures


SCENE_FIGURES = ("foreground_psnr", "agent_within_2px", "block_within_2px", "block_angle_within_10deg")


def pusht_background(dataset: str, split: str = "train", num_frames: int = 512) -> torch.Tensor | None:
    """Median frame ``[3, H, W]`` of ``num_frames`` random frames of a PushT dataset's ``split``
    (``None`` when the dataset is not PushT, i.e. has no ``block_pose`` column, or lacks the split)."""
    from rlvr_world.data import load_dataset_dir
    from rlvr_world.data.frames import frames_to_tensor, sample_frames
    from rlvr_world.metrics.pusht import median_background

    loaded = load_dataset_dir(dataset)
    if not hasattr(loaded, "keys") or split not in loaded or "block_pose" not in loaded[split].column_names:
        return None
    return median_background(frames_to_tensor(sample_frames(loaded[split], num_frames, seed=0)))


# ---------------------------------------------------------------------------------------- pictures


def _to_uint8(frames: torch.Tensor) -> np.ndarray:
    """``[..., 3, H, W]`` in ``[0, 1]`` -> uint8 ``[..., H, W, 3]``."""
    return (frames.detach().float().clamp(0, 1).movedim(-3, -1).cpu().numpy() * 255).round().astype(np.uint8)


def comparison_rows(truth: torch.Tensor, predictions: dict[str, torch.Tensor]) -> list[tuple[str, torch.Tensor]]:
    """Rows of a comparison picture: truth, each prediction, and |model - truth| x4 (or the first one's)."""
    rows = [("truth", truth)] + list(predictions.items())
    name, first = next(iter(predictions.items()))
    rows.append((f"|{name} - truth| x4", ((first - truth).abs() * 4).clamp(0, 1)))
    return rows


def _white_border(frames: torch.Tensor, bottom: bool) -> torch.Tensor:
    """A 1-px white gap right of (and below) each frame, so neighbours stay apart."""
    return torch.nn.functional.pad(frames.float(), (0, 1, 0, 1) if bottom else (0, 1), value=1.0)


def save_grid(path: Path, rows: Sequence[tuple[str, torch.Tensor]], scale: int = 3) -> Path:
    """PNG grid: one row per ``(label, frames [N, 3, H, W])``, frames side by side, 1-px gaps."""
    from PIL import Image

    grid = torch.cat([torch.cat(list(_white_border(frames, bottom=True)), dim=-1) for _, frames in rows], dim=-2)
    image = Image.fromarray(_to_uint8(grid))
    image = image.resize((image.width * scale, image.height * scale), Image.NEAREST)
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path)
    return path


def save_gif(path: Path, panels: Sequence[torch.Tensor], scale: int = 3, duration_ms: int = 250) -> Path:
    """Animated GIF whose frame ``t`` shows ``panels[i][t]`` side by side (each ``[T, 3, H, W]``)."""
    from PIL import Image

    frames = _to_uint8(torch.cat([_white_border(p, bottom=False) for p in panels], dim=-1))
    images = [Image.fromarray(f).resize((f.shape[1] * scale, f.shape[0] * scale), Image.NEAREST) for f in frames]
    path.parent.mkdir(parents=True, exist_ok=True)
    images[0].save(path, save_all=True, append_images=images[1:], duration=duration_ms, loop=0)
    return path


def plot_curves(path: Path, summaries: dict[str, dict], per_window: dict[str, dict[str, torch.Tensor]]) -> Path:
    """MSE and PSNR per future step for each predictor, and model vs copy MSE per window."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    for name, summary in summaries.items():
        steps = range(1, len(summary["per_step"]["mse"]) + 1)
        axes[0].plot(steps, summary["per_step"]["mse"], marker="o", label=_LABELS[name])
        axes[1].plot(steps, summary["per_step"]["psnr"], marker="o", label=_LABELS[name])
    axes[0].set(xlabel="future step", ylabel="MSE", yscale="log", title="MSE per predicted frame")
    axes[1].set(xlabel="future step", ylabel="dB", title="PSNR per predicted frame")
    for ax in axes[:2]:
        ax.legend()
    if "model" in per_window:
        model, copy = per_window["model"]["mse"].mean(-1), per_window["copy_last_frame"]["mse"].mean(-1)
        low, high = float(min(model.min(), copy.min())), float(max(model.max(), copy.max()))
        axes[2].scatter(copy.numpy(), model.numpy(), s=8, alpha=0.6)
        axes[2].plot([low, high], [low, high], color="grey", linewidth=1)
        axes[2].set(xscale="log", yscale="log", xlabel="copy last frame MSE", ylabel="world model MSE",
                    title="per window (below the line: model better)")
    else:
        axes[2].axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path


# ---------------------------------------------------------------------------------------- report


def _fmt(value: float | None, digits: int) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{value:.{digits}f}"


_ROWS = (("mse", "MSE", 5, 1), ("mae", "MAE", 4, 1), ("psnr", "PSNR (dB)", 2, 1), ("ssim", "SSIM x100", 2, 100),
         ("lpips", "LPIPS x100", 2, 100), ("repetition_rate", "repetition rate (%)", 1, 100))


_SCENE_ROWS = (("foreground_psnr", "foreground PSNR (dB)", 2, 1), ("agent_within_2px", "agent within 2 px (%)", 1, 100),
               ("block_within_2px", "T block within 2 px (%)", 1, 100),
               ("block_angle_within_10deg", "T angle within 10 deg (%)", 1, 100))


def write_report(output_dir: Path, metrics: dict[str, Any]) -> Path:
    summaries = metrics["predictors"]
    names = [n for n in PREDICTORS if n in summaries]
    lines = [
        f"# Video world model evaluation: {metrics['task']}",
        "",
        f"Data: `{metrics['dataset']}` [{metrics['split']}], {metrics['num_episodes']} episodes, "
        f"{metrics['num_windows']} windows of {metrics['context_frames']} context + {metrics['future_frames']} "
        f"predicted frames ({metrics['num_predicted_frames']} predicted frames per predictor), "
        f"{metrics['image_size'][0]}x{metrics['image_size'][1]} pixels.",
        f"World model: `{metrics['model'] or 'none'}`; tokenizer: `{metrics['tokenizer'] or 'none'}`.",
    ]
    if metrics.get("sampling"):
        s = metrics["sampling"]
        how = (f"sampling, temperature {s['temperature']}, top-k {s['top_k']}, top-p {s['top_p']}" if s["do_sample"]
               else "latent MBR (each visual token: the code nearest the expected latent)" if s.get("latent_mbr")
               else "greedy decoding")
        lines.append(f"Decoding: {how}; best of {s['num_samples']} by {s['best_of']}; "
                     f"reject repeats: {s['reject_repeats']}; seed {metrics['seed']}.")
    lines += ["", "| metric | " + " | ".join(_LABELS[n] for n in names) + " |", "|---|" + "---|" * len(names)]
    for key, label, digits, scale in _ROWS:
        cells = []
        for name in names:
            value = summaries[name].get(key)
            cells.append(_fmt(None if value is None else value * scale, digits))
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    lines.append("")
    if not metrics["lpips_available"]:
        lines.append("LPIPS: unavailable (its backbone weights are not on this machine); no number is reported.")
    lines.append("Repetition rate: share of predicted frames whose visual tokens all equal the previous frame's "
                 f"({metrics['repetition_note']}); for the reconstruction it is the ground truth's own rate.")
    if all("scene" in summaries[n] for n in names):
        lines += ["", "PushT scene figures (what moves; the global figures mostly score the static table):", "",
                  "| figure | " + " | ".join(_LABELS[n] for n in names) + " |", "|---|" + "---|" * len(names)]
        for key, label, digits, scale in _SCENE_ROWS:
            cells = [_fmt(None if summaries[n]["scene"][key] is None else summaries[n]["scene"][key] * scale, digits)
                     for n in names]
            lines.append(f"| {label} | " + " | ".join(cells) + " |")
    if "model" in summaries:
        lines += [
            "",
            f"The world model beats copy-last-frame on MSE in {metrics['model_beats_copy_mse'] * 100:.1f}% of windows "
            f"(mean MSE {summaries['model']['mse']:.5f} vs {summaries['copy_last_frame']['mse']:.5f}).",
        ]
        model = summaries["model"]
        if "token_accuracy" in model:
            lines.append(
                f"Teacher-forced on the true tokens, the model's most likely visual token is right for "
                f"{model['token_accuracy'] * 100:.1f}% of the true frame tokens; the token at the same position one "
                f"frame earlier is right for {model['copy_token_accuracy'] * 100:.1f}% (copying in token space)."
            )
        if "resampled_frames" in model:
            lines.append(f"Repeat rejection resampled {model['resampled_frames']} frames.")
    if metrics["future_frames"] > 1:
        lines += ["", "## Per predicted frame (MSE)", "", "| step | " + " | ".join(_LABELS[n] for n in names) + " |",
                  "|---|" + "---|" * len(names)]
        for step in range(metrics["future_frames"]):
            lines.append(f"| {step + 1} | " + " | ".join(_fmt(summaries[n]["per_step"]["mse"][step], 5) for n in names) + " |")
    lines += ["", "## Pictures", "", "Curves: `curves.png` (per-step MSE/PSNR; per-window model vs copy MSE).",
              "Per sampled episode (N: its row in the split), `samples/episode_N.png` (rows: truth, then each predictor, "
              f"then |first predictor - truth| x4; one column per predicted frame, the first {GRID_COLUMNS}) and "
              "`samples/episode_N.gif` (truth and each predictor side by side, every window: context, then predictions).", ""]
    for sample in metrics["samples"]:
        lines.append(f"![episode {sample['episode_index']}]({sample['grid']})")
    lines.append("")
    path = output_dir / "report.md"
    path.write_text("\n".join(lines))
    return path


# ---------------------------------------------------------------------------------------- evaluation


def _flat_metrics(metrics: dict[str, Any]) -> dict[str, Any]:
    """The top-level keys: the model's figures bare, the baselines' prefixed (``copy_last_frame_mse``)."""
    flat = {}
    for name, summary in metrics["predictors"].items():
        prefix = "" if name == "model" else f"{name}_"
        for key in (*METRICS, "repetition_rate"):
            flat[f"{prefix}{key}"] = summary.get(key)
    for name in PREDICTORS:
        if name not in metrics["predictors"]:
            prefix = "" if name == "model" else f"{name}_"
            flat.update({f"{prefix}{key}": None for key in (*METRICS, "repetition_rate")})
    return flat


def evaluate(
    windows,
    predictors: dict[str, Predictor],
    output_dir: str | Path,
    context_frames: int,
    batch_size: int = 16,
    lpips_model: LPIPS | None = None,
    num_visualized: int = 4,
    progress: bool = True,
    info: dict[str, Any] | None = None,
    scene_figures: Callable[[torch.Tensor, torch.Tensor], dict[str, float | None]] | None = None,
) -> dict[str, Any]:
    """Run every predictor over ``windows`` (items with ``pixel_values`` ``[T, 3, H, W]`` and
    ``actions``) and write ``metrics.json``, ``report.md``, ``windows.jsonl``, ``curves.png`` and the
    sample pictures into ``output_dir``. Returns the metrics.

    ``scene_figures(pred, target)``, given all predicted and true future frames ``[W, F, 3, H, W]``,
    adds dataset-specific figures per predictor under ``scene`` (PushT: :func:`pusht_figures`).
    """
    from tqdm.auto import tqdm

    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    loader = torch.utils.data.DataLoader(windows, batch_size=batch_size, shuffle=False)
    per_frame: dict[str, dict[str, list[torch.Tensor]]] = {name: {} for name in predictors}
    kept: dict[int, dict[str, list[torch.Tensor]]] = {}  # frames of the sampled episodes
    all_frames: dict[str, list[torch.Tensor]] = {"truth": []}  # every frame, for scene_figures only
    episodes_seen: list[int] = []
    episode_of, start_of = [], []
    started = time.perf_counter()
    for batch in tqdm(loader, desc="evaluating", unit="batch", disable=not progress):
        pixels, actions = batch["pixel_values"], batch["actions"]
        target = pixels[:, context_frames:]
        if scene_figures is not None:
            all_frames["truth"].append(target)
        predictions = {}
        for name, predict in predictors.items():
            prediction = predict(pixels, actions)
            predictions[name] = prediction.frames.cpu()
            if scene_figures is not None:
                all_frames.setdefault(name, []).append(predictions[name])
            values = frame_metrics(predictions[name], target, lpips_model)
            repeats = repetition(prediction)
            if repeats is not None:
                values["repeated"] = repeats
            for key, value in values.items():
                per_frame[name].setdefault(key, []).append(value)
        for i, episode in enumerate(batch["episode_index"].tolist()):
            episode_of.append(episode)
            start_of.append(int(batch["start"][i]))
            if episode not in episodes_seen:
                episodes_seen.append(episode)
            if episodes_seen.index(episode) < num_visualized:
                store = kept.setdefault(episode, {"truth": [], "context": []})
                store["truth"].append(target[i])
                store["context"].append(pixels[i, :context_frames])
                for name, frames in predictions.items():
                    store.setdefault(name, []).append(frames[i])
    elapsed = time.perf_counter() - started
    per_window = {name: {key: torch.cat(parts) for key, parts in values.items()} for name, values in per_frame.items()}
    summaries = {name: summarise(values) for name, values in per_window.items()}
    if scene_figures is not None:
        truth = torch.cat(all_frames.pop("truth"))
        for name, frames in all_frames.items():
            summaries[name]["scene"] = scene_figures(torch.cat(frames), truth)

    sample = next(iter(windows))["pixel_values"]
    future_frames = sample.shape[0] - context_frames
    metrics: dict[str, Any] = {
        **(info or {}),
        "context_frames": context_frames,
        "future_frames": future_frames,
        "image_size": list(sample.shape[-2:]),
        "num_episodes": len(episodes_seen),
        "num_windows": len(episode_of),
        "num_predicted_frames": len(episode_of) * future_frames,
        "lpips_available": lpips_model is not None,
        "wall_time_s": round(elapsed, 1),
    }
    metrics.setdefault("repetition_note", "the first predicted frame is compared with the last context frame")
    metrics["predictors"] = summaries
    for name, predict in predictors.items():
        if hasattr(predict, "extra_metrics"):
            summaries[name].update(predict.extra_metrics())
    if "model" in per_window and "copy_last_frame" in per_window:
        metrics["model_beats_copy_mse"] = win_rate(per_window["model"]["mse"], per_window["copy_last_frame"]["mse"])
    metrics = {**_flat_metrics(metrics), **metrics}

    samples = []
    order = [n for n in PREDICTORS if n in predictors]
    for episode, store in kept.items():
        # The grid shows the first GRID_COLUMNS predicted frames; the GIF plays them all.
        truth = torch.stack(store["truth"]).flatten(0, 1)[:GRID_COLUMNS]
        shown = {name: torch.stack(store[name]).flatten(0, 1)[:GRID_COLUMNS] for name in order}
        grid = save_grid(output_dir / "samples" / f"episode_{episode}.png", comparison_rows(truth, shown))
        # The GIF plays each window's context, then its predictions (truth beside each predictor).
        context = torch.stack(store["context"])
        panels = [torch.cat([torch.cat([c, t]) for c, t in zip(context, torch.stack(store["truth"]))])]
        for name in order:
            panels.append(torch.cat([torch.cat([c, p]) for c, p in zip(context, torch.stack(store[name]))]))
        gif = save_gif(output_dir / "samples" / f"episode_{episode}.gif", panels)
        samples.append({"episode_index": episode, "grid": str(grid.relative_to(output_dir)),
                        "gif": str(gif.relative_to(output_dir)), "panels": ["truth", *order]})
    metrics["samples"] = samples
    metrics["curves"] = str(plot_curves(output_dir / "curves.png", summaries, per_window).relative_to(output_dir))

    with open(output_dir / "windows.jsonl", "w") as f:
        for i, (episode, start) in enumerate(zip(episode_of, start_of)):
            row = {"episode_index": episode, "start": start}
            for name, values in per_window.items():
                row[f"{name}_mse"] = [round(float(v), 7) for v in values["mse"][i]]
                if "repeated" in values:
                    row[f"{name}_repeated"] = [bool(v) for v in values["repeated"][i]]
            f.write(json.dumps(row) + "\n")
    (output_dir / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    write_report(output_dir, metrics)
    return metrics


# ---------------------------------------------------------------------------------------- command line


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="evaluate.py --task video_single_step|video_multi_step",
        description="Evaluate a video world model (or only the baselines) on held-out episodes.",
    )
    parser.add_argument("--task", choices=TASKS, required=True)
    parser.add_argument("--dataset", required=True, help="an episode dataset written by make_dataset.py (pusht, rt1)")
    parser.add_argument("--split", default="test", help="held-out split (default: test)")
    parser.add_argument("--model", help="world model directory (its processor names the tokenizer)")
    parser.add_argument("--tokenizer", help="without --model: evaluate the baselines alone (no tokenizer: copy-last-frame only)")
    parser.add_argument("--output_dir", required=True)
    parser.add_argument("--num_episodes", type=int, help="evaluate only the first N episodes of the split")
    parser.add_argument("--limit", type=int, help="evaluate only the first N windows")
    parser.add_argument("--stride", type=int, help="frames between window starts (default: non-overlapping windows)")
    parser.add_argument("--context_frames", type=int, help="default: the model's processor (single-step 4, multi-step 1)")
    parser.add_argument("--future_frames", type=int, help="default: the model's processor (single-step 1, multi-step 7)")
    parser.add_argument("--batch_size", type=int, default=16)
    parser.add_argument("--greedy", action="store_true", help="greedy decoding instead of sampling")
    parser.add_argument("--latent_mbr", action="store_true",
                        help="each visual token by minimum Bayes risk under squared latent distance: the code nearest the "
                             "expected latent under the model's distribution (deterministic, instead of sampling or greedy)")
    parser.add_argument("--temperature", type=float, default=1.0)
    parser.add_argument("--top_k", type=int, default=100, help="0 turns top-k off (the paper evaluates with 100)")
    parser.add_argument("--top_p", type=float, default=None)
    parser.add_argument("--num_samples", type=int, default=1, help="best-of-N: draw N samples, keep the best by --best_of")
    parser.add_argument("--best_of", choices=[m for m in METRICS if m != "lpips"] + ["lpips"], default="mse")
    parser.add_argument("--reject_repeats", action="store_true", help="multi-step: resample a frame that repeats the previous one")
    parser.add_argument("--num_visualized", type=int, default=4, help="episodes that get a PNG grid and a GIF")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default=None, help="default: cuda when available, else cpu")
    parser.add_argument("--num_threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--no_progress", action="store_true", help="no progress bar")
    return parser


def config_from_args(args: argparse.Namespace) -> VideoEvalConfig:
    sampling = SamplingOptions(
        do_sample=not (args.greedy or args.latent_mbr), temperature=args.temperature, top_k=args.top_k or None,
        top_p=args.top_p, num_samples=args.num_samples, best_of=args.best_of, reject_repeats=args.reject_repeats,
        latent_mbr=args.latent_mbr,
    )
    return VideoEvalConfig(
        task=args.task, dataset=args.dataset, output_dir=args.output_dir, model=args.model, tokenizer=args.tokenizer,
        split=args.split, num_episodes=args.num_episodes, limit=args.limit, stride=args.stride,
        context_frames=args.context_frames, future_frames=args.future_frames, batch_size=args.batch_size,
        num_visualized=args.num_visualized, seed=args.seed, device=args.device, progress=not args.no_progress,
        sampling=sampling,
    )


def default_layout(task: str) -> tuple[int, int]:
    """(context, future) frames when neither a model nor the command line says."""
    return (4, 1) if task == "video_single_step" else (1, 7)


def run(config: VideoEvalConfig) -> dict[str, Any]:
    """Build the predictors for ``config`` and evaluate them."""
    if config.sampling.num_samples < 1:
        raise ValueError("--num_samples must be at least 1")
    torch.manual_seed(config.seed)
    device = config.device or ("cuda" if torch.cuda.is_available() else "cpu")
    world_model = None
    if config.model is not None:
        if config.tokenizer is not None:
            raise ValueError("--tokenizer is for the baselines alone: a world model decodes with its own tokenizer")
        world_model = WorldModelPredictor.from_pretrained(config.model, config.task, device, config.sampling, config.seed)
        tokenizer = world_model.tokenizer
        context_frames, future_frames = world_model.layout
    else:
        # Without a tokenizer only copy-last-frame runs (the figure a world model must beat).
        tokenizer = None if config.tokenizer is None else load_tokenizer(config.tokenizer, device)
        context_frames, future_frames = default_layout(config.task)
    context_frames = config.context_frames or context_frames
    future_frames = config.future_frames or future_frames
    compressive = tokenizer is not None and is_compressive(tokenizer)
    if compressive and context_frames < tokenizer.config.num_context_frames:
        raise ValueError(f"the compressive tokenizer needs {tokenizer.config.num_context_frames} context frame(s)")

    windows = load_windows(config.dataset, config.split, context_frames, future_frames, config.stride,
                           config.num_episodes, config.limit)
    image_size = list(windows[0]["pixel_values"].shape[-2:])
    trained_size = None if world_model is None else world_model.processor.image_size
    if trained_size is not None and list(trained_size) != image_size:
        raise ValueError(f"{config.dataset}: frames are {image_size[0]}x{image_size[1]}, the world model {config.model} "
                         f"was trained on {trained_size[0]}x{trained_size[1]}")

    def reconstruction(pixels, actions):
        return reconstruct_future(tokenizer, pixels.to(device), context_frames)

    predictors: dict[str, Predictor] = {}
    if world_model is not None:
        predictors["model"] = world_model
    predictors["copy_last_frame"] = lambda pixels, actions: Prediction(copy_last_frame(pixels, context_frames))
    if tokenizer is not None:
        predictors["reconstruction"] = reconstruction

    lpips_model = LPIPS("vgg").to(device) if lpips_available("vgg") else None
    if world_model is not None:
        world_model.lpips_model = lpips_model
    info = {
        "task": config.task, "dataset": config.dataset, "split": config.split, "model": config.model,
        "tokenizer": config.tokenizer or (world_model.tokenizer_path if world_model else None),
        "seed": config.seed, "device": device,
        "sampling": asdict(config.sampling) if world_model is not None else None,
        "repetition_note": ("the first predicted frame is compared with the last context frame" if not compressive
                            else "compressive tokenizer: the context frame has its own codebook, so the first predicted "
                                 "frame has no predecessor; frames 2.. are compared"),
    }
    background = pusht_background(config.dataset)
    scene = None if background is None else pusht_figures(background)
    return evaluate(windows, predictors, config.output_dir, context_frames, config.batch_size, lpips_model,
                    config.num_visualized, config.progress, info, scene)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = build_parser().parse_args(argv)
    if args.num_threads:
        torch.set_num_threads(args.num_threads)
    metrics = run(config_from_args(args))
    parts = [f"{name}: MSE {s['mse']:.5f}, PSNR {s['psnr']:.2f}" for name, s in metrics["predictors"].items()]
    rep = metrics.get("repetition_rate")
    if rep is not None:
        parts.append(f"model repetition rate {rep * 100:.1f}%")
    print(f"{metrics['num_windows']} windows ({metrics['num_episodes']} episodes): " + "; ".join(parts)
          + f" -> {args.output_dir}")
    return metrics
