"""PushT-specific video evaluation: foreground PSNR and a colour-based frame parser.

A PushT frame is mostly a static white table with the green goal T, so global PSNR/SSIM reward
predicting the empty table (the per-pixel median frame). These metrics look at what moves:
the pixels where the ground truth differs from the static background, and the positions of the
blue agent disc and the grey T read back from the pixels and compared with the ground truth's.

Frames are float tensors ``[..., 3, H, W]`` in ``[0, 1]`` (as in :mod:`rlvr_world.metrics.video`).
Pixel coordinates are ``(x, y) = (column, row)`` with pixel centres at integers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from .video import LPIPS, lpips_available, mae, mse, psnr, ssim

# gym-pusht draws a 512x512 world (pymunk coordinates = pixels, y down) and resizes it.
WORLD_SIZE = 512.0
AGENT_RADIUS = 15.0
# Drawn colours. The agent is a RoyalBlue ring around a 1.2x lighter disc; the T is a 1.2x
# lighter LightSlateGray fill inside a 4-px LightSlateGray outline; the goal T is LightGreen;
# the walls are LightGray segments within 8 world units of the border. Taking the ring and the
# fill as the reference colours keeps the other shade of each object out of the other object's
# coverage (the lighter disc reads as -0.7 block, the outline as -0.2 agent).
AGENT_RGB = (65, 105, 225)
BLOCK_RGB = (143, 163, 184)
GOAL_RGB = (144, 238, 144)
WALL_RGB = (211, 211, 211)
# The walls end 8 units in; the band read with the wall's colour is a little wider so that a
# slightly blurred or shifted wall in a predicted frame is not taken for the T.
WALL_MARGIN = 12.0
# T geometry (gym-pusht `add_tee`, scale 30): bar [-60, 60] x [0, 30], stem [-15, 15] x [30, 120]
# in body coordinates, so the stem points along the body's +y axis. Drawn with a 2-unit outline,
# the T's area centroid lies this far from the body origin along +y (the dilated bar and stem,
# 4216 and 3060 units^2 at y = 15 and 77).
BLOCK_CENTROID_OFFSET = (4216 * 15 + 3060 * 77) / (4216 + 3060)
BLOCK_AREA = 4216.0 + 3060.0
# Coverage below this is colour noise, not object.
COVERAGE_THRESHOLD = 0.2
# An object counts as present when at least this fraction of its expected area is seen.
MIN_VISIBLE_FRACTION = 0.3


# ---------------------------------------------------------------------------------------- coordinates


def sim_to_pixel(xy: np.ndarray | torch.Tensor, image_size: int | tuple[int, int]) -> np.ndarray | torch.Tensor:
    """World coordinates ``[..., 2]`` -> pixel coordinates of a render at ``image_size`` (H, W).

    gym-pusht draws at 512x512 (world units = pixels of that canvas, y down); the frame is
    then an area resize. In continuous coordinates where pixel ``i`` spans ``[i, i + 1)`` the
    drawing sits at ``p * size / 512``; pixel centres are at ``i + 0.5``.
    """
    height, width = _size(image_size)
    scale = xy.new_tensor([width, height]) if isinstance(xy, torch.Tensor) else np.array([width, height])
    return xy * scale / WORLD_SIZE - 0.5


def pixel_to_sim(xy: np.ndarray | torch.Tensor, image_size: int | tuple[int, int]) -> np.ndarray | torch.Tensor:
    """Inverse of :func:`sim_to_pixel`."""
    height, width = _size(image_size)
    scale = xy.new_tensor([width, height]) if isinstance(xy, torch.Tensor) else np.array([width, height])
    return (xy + 0.5) * WORLD_SIZE / scale


def _size(image_size: int | tuple[int, int]) -> tuple[int, int]:
    return (image_size, image_size) if isinstance(image_size, int) else tuple(image_size)


def as_unit_float(frames: torch.Tensor) -> torch.Tensor:
    """uint8 ``0..255`` -> float ``[0, 1]``; float tensors pass through (as float32 at least)."""
    if frames.dtype == torch.uint8:
        return frames.float() / 255.0
    return frames if frames.dtype == torch.float64 else frames.float()


def angle_difference(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Absolute angular difference in radians, in ``[0, pi]``."""
    return torch.remainder(a - b + math.pi, 2 * math.pi).sub(math.pi).abs()


# ---------------------------------------------------------------------------------------- parser


@dataclass
class PushTFrameState:
    """What :func:`parse_frames` reads from frames ``[...]``; NaN where an object is not found.

    Attributes:
        agent_xy: agent disc centre ``[..., 2]`` (pixels).
        block_xy: the T's body origin ``[..., 2]`` (pixels), the simulator's ``block_pose[:2]``.
        block_angle: the T's rotation ``[...]`` in radians in ``[0, 2 pi)``, the simulator's angle.
        block_centroid: centroid of the T's pixels ``[..., 2]`` (pixels).
    """

    agent_xy: torch.Tensor
    block_xy: torch.Tensor
    block_angle: torch.Tensor
    block_centroid: torch.Tensor


def _unmixing_matrix(background_rgb: tuple[int, int, int]) -> torch.Tensor:
    # In "ink" space (1 - rgb) white paper is zero and a pixel that is part object, part white is
    # the object's ink times its coverage, so solving ink = sum_k a_k * ink_k per pixel gives each
    # object's coverage a_k even on anti-aliased edges. Rows: the static object, block, agent.
    inks = 1.0 - torch.tensor([background_rgb, BLOCK_RGB, AGENT_RGB], dtype=torch.float64) / 255.0
    return torch.linalg.inv(inks.T)


# Three colour channels separate three inks: the goal T in the middle of the table, the grey
# wall (which alone would read as T) in the border band, never both in one place. The agent
# stays clear of the band (the data's policy keeps its centre 30 units in; its radius is 15).
_UNMIX_CENTRE = _unmixing_matrix(GOAL_RGB)
_UNMIX_BORDER = _unmixing_matrix(WALL_RGB)


def object_coverage(frames: torch.Tensor) -> torch.Tensor:
    """Per-pixel coverage ``[..., 3, H, W]`` in ``[0, 1]`` of (goal, block, agent)."""
    frames = as_unit_float(frames)
    height, width = frames.shape[-2:]
    ink = 1.0 - frames
    centre = torch.einsum("kc,...chw->...khw", _UNMIX_CENTRE.to(frames.device, frames.dtype), ink)
    border = torch.einsum("kc,...chw->...khw", _UNMIX_BORDER.to(frames.device, frames.dtype), ink)
    # Only the T is read in the band: the darker T outline mixed with wall reads as a little agent.
    keep_block = torch.tensor([0.0, 1.0, 0.0], device=frames.device, dtype=frames.dtype)[:, None, None]
    border = border * keep_block
    coverage = torch.where(_border_band(height, width, frames.device), border, centre).clamp(0.0, 1.0)
    return torch.where(coverage > COVERAGE_THRESHOLD, coverage, torch.zeros_like(coverage))


def _border_band(height: int, width: int, device: torch.device) -> torch.Tensor:
    """Bool ``[H, W]``: pixels within ``WALL_MARGIN`` world units of the border."""
    margin_y = math.ceil(WALL_MARGIN * height / WORLD_SIZE)
    margin_x = math.ceil(WALL_MARGIN * width / WORLD_SIZE)
    band = torch.ones(height, width, dtype=torch.bool, device=device)
    band[margin_y : height - margin_y, margin_x : width - margin_x] = False
    return band


def parse_frames(frames: torch.Tensor) -> PushTFrameState:
    """Reads the agent position and the T's pose from rendered PushT frames ``[..., 3, H, W]``.

    The agent is the coverage-weighted centroid of its blue pixels. For the T, the centroid and
    second moments of its grey pixels give its long axis (the T is longer along its stem than
    across its bar); the sign of the third moment along that axis (the heavy bar at one end, the
    thin stem reaching further out at the other) tells which way the stem points, so the angle is
    defined over 360 degrees. All computation is vectorised over frames.
    """
    if frames.dim() < 3 or frames.shape[-3] != 3:
        raise ValueError(f"Expected frames [..., 3, H, W], got shape {tuple(frames.shape)}")
    height, width = frames.shape[-2:]
    coverage = object_coverage(frames)
    block_w, agent_w = coverage[..., 1, :, :], coverage[..., 2, :, :]

    # Moments in world units, so that the angle is right for any aspect ratio.
    ys = (torch.arange(height, dtype=torch.float32, device=frames.device) + 0.5) * WORLD_SIZE / height
    xs = (torch.arange(width, dtype=torch.float32, device=frames.device) + 0.5) * WORLD_SIZE / width
    pixel_area = (WORLD_SIZE / height) * (WORLD_SIZE / width)

    def centroid(weights: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        mass = weights.sum((-2, -1))
        safe = mass.clamp_min(1e-6)
        cx = (weights * xs).sum((-2, -1)) / safe
        cy = (weights * ys[:, None]).sum((-2, -1)) / safe
        return mass * pixel_area, cx, cy

    agent_area, ax, ay = centroid(agent_w)
    block_area, bx, by = centroid(block_w)

    dx = xs - bx[..., None, None]
    dy = ys[:, None] - by[..., None, None]
    safe = (block_area / pixel_area).clamp_min(1e-6)
    cxx = (block_w * dx * dx).sum((-2, -1)) / safe
    cyy = (block_w * dy * dy).sum((-2, -1)) / safe
    cxy = (block_w * dx * dy).sum((-2, -1)) / safe
    major = 0.5 * torch.atan2(2 * cxy, cxx - cyy)  # direction of the stem axis, up to sign
    ux, uy = torch.cos(major), torch.sin(major)
    along = dx * ux[..., None, None] + dy * uy[..., None, None]
    third = (block_w * along**3).sum((-2, -1))
    flip = torch.where(third < 0, -1.0, 1.0)
    ux, uy = ux * flip, uy * flip
    # The stem points along R(angle) @ (0, 1) = (-sin(angle), cos(angle)).
    angle = torch.remainder(torch.atan2(-ux, uy), 2 * math.pi)
    origin_x = bx - BLOCK_CENTROID_OFFSET * ux
    origin_y = by - BLOCK_CENTROID_OFFSET * uy

    agent_found = agent_area >= MIN_VISIBLE_FRACTION * math.pi * AGENT_RADIUS**2
    block_found = block_area >= MIN_VISIBLE_FRACTION * BLOCK_AREA
    nan = torch.tensor(float("nan"), device=frames.device)

    def to_pixels(x: torch.Tensor, y: torch.Tensor, found: torch.Tensor) -> torch.Tensor:
        xy = sim_to_pixel(torch.stack([x, y], dim=-1), (height, width))
        return torch.where(found[..., None], xy, nan)

    return PushTFrameState(
        agent_xy=to_pixels(ax, ay, agent_found),
        block_xy=to_pixels(origin_x, origin_y, block_found),
        block_angle=torch.where(block_found, angle, nan),
        block_centroid=to_pixels(bx, by, block_found),
    )


# ---------------------------------------------------------------------------------------- background


def median_background(frames: torch.Tensor, max_frames: int | None = None, seed: int = 0) -> torch.Tensor:
    """Per-pixel median ``[3, H, W]`` of frames ``[..., 3, H, W]`` (the training split's static scene).

    ``max_frames`` takes the median of a random subset to bound memory on large splits.
    """
    flat = frames.reshape(-1, *frames.shape[-3:])
    if max_frames is not None and flat.shape[0] > max_frames:
        generator = torch.Generator().manual_seed(seed)
        flat = flat[torch.randperm(flat.shape[0], generator=generator)[:max_frames].to(flat.device)]
    return flat.median(dim=0).values


def foreground_mask(target: torch.Tensor, background: torch.Tensor, threshold: float = 0.1) -> torch.Tensor:
    """Bool ``[..., H, W]``: pixels whose RGB distance to the background exceeds ``threshold``."""
    return (as_unit_float(target) - as_unit_float(background)).norm(dim=-3) > threshold


def foreground_psnr(
    pred: torch.Tensor,
    target: torch.Tensor,
    background: torch.Tensor,
    threshold: float = 0.1,
    reduction: str = "none",
) -> torch.Tensor:
    """PSNR (peak 1) over the ground truth's foreground pixels, per frame.

    NaN for a frame with no foreground; ``reduction="mean"`` averages over the other frames.
    """
    mask = foreground_mask(target, background, threshold).unsqueeze(-3).float()
    squared = (as_unit_float(pred) - as_unit_float(target)).pow(2) * mask
    count = mask.sum((-3, -2, -1)) * pred.shape[-3]
    per_frame = -10 * torch.log10((squared.sum((-3, -2, -1)) / count.clamp_min(1)).clamp_min(1e-10))
    per_frame = torch.where(count > 0, per_frame, torch.full_like(per_frame, float("nan")))
    if reduction == "none":
        return per_frame
    if reduction == "mean":
        return per_frame.nanmean()
    raise ValueError(f"reduction must be 'none' or 'mean', got {reduction!r}")


# ---------------------------------------------------------------------------------------- evaluation


_DEFAULT_LPIPS: dict[str, LPIPS] = {}


def _default_lpips() -> LPIPS | None:
    if not lpips_available("vgg"):
        return None
    if "vgg" not in _DEFAULT_LPIPS:
        _DEFAULT_LPIPS["vgg"] = LPIPS("vgg")
    return _DEFAULT_LPIPS["vgg"]


def _nanmean(values: torch.Tensor) -> float | None:
    return float(values.nanmean()) if bool((~torch.isnan(values)).any()) else None


def _fraction(hits: torch.Tensor, valid: torch.Tensor) -> float | None:
    return float(hits[valid].float().mean()) if bool(valid.any()) else None


@torch.no_grad()
def evaluate_reconstruction(
    target: torch.Tensor,
    pred: torch.Tensor,
    background: torch.Tensor,
    lpips_model: LPIPS | None | str = "auto",
    foreground_threshold: float = 0.1,
    chunk_size: int = 512,
) -> dict[str, float | None]:
    """PushT reconstruction/prediction figures over all frames ``[..., 3, H, W]``.

    Returns means of ``psnr``, ``ssim``, ``mse``, ``mae``, ``foreground_psnr`` and ``lpips``
    (``None`` without LPIPS weights; ``lpips_model="auto"`` uses VGG when available), and the
    fractions ``agent_within_2px``, ``block_within_2px`` (the T's body origin) and
    ``block_angle_within_10deg`` over the frames where the object is found in the ground truth
    (a prediction where it is missing counts as a miss; ``None`` when no frame qualifies).
    """
    if target.shape != pred.shape:
        raise ValueError(f"target {tuple(target.shape)} and pred {tuple(pred.shape)} differ in shape")
    if lpips_model == "auto":
        lpips_model = _default_lpips()
    if isinstance(lpips_model, LPIPS) and lpips_model.random_backbone:
        raise ValueError("Refusing to report LPIPS from a randomly initialised backbone.")
    target = target.reshape(-1, *target.shape[-3:])
    pred = pred.reshape(-1, *pred.shape[-3:])
    parts: dict[str, list[torch.Tensor]] = {}
    for start in range(0, target.shape[0], chunk_size):
        gt = as_unit_float(target[start : start + chunk_size])
        pr = as_unit_float(pred[start : start + chunk_size])
        truth, guess = parse_frames(gt), parse_frames(pr)
        chunk = {
            "psnr": psnr(pr, gt),
            "ssim": ssim(pr, gt),
            "mse": mse(pr, gt),
            "mae": mae(pr, gt),
            "foreground_psnr": foreground_psnr(pr, gt, background, foreground_threshold),
            "agent_error": (guess.agent_xy - truth.agent_xy).norm(dim=-1),
            "block_error": (guess.block_xy - truth.block_xy).norm(dim=-1),
            "angle_error": angle_difference(guess.block_angle, truth.block_angle),
            "agent_seen": ~torch.isnan(truth.agent_xy[..., 0]),
            "block_seen": ~torch.isnan(truth.block_angle),
        }
        if lpips_model is not None:
            chunk["lpips"] = lpips_model(pr, gt)
        for key, value in chunk.items():
            parts.setdefault(key, []).append(value.cpu())
    values = {key: torch.cat(chunks) for key, chunks in parts.items()}
    # NaN errors on frames seen in the ground truth come from objects missing in the prediction.
    agent_seen, block_seen = values["agent_seen"], values["block_seen"]
    return {
        "psnr": float(values["psnr"].mean()),
        "ssim": float(values["ssim"].mean()),
        "mse": float(values["mse"].mean()),
        "mae": float(values["mae"].mean()),
        "foreground_psnr": _nanmean(values["foreground_psnr"]),
        "lpips": float(values["lpips"].mean()) if "lpips" in values else None,
        "agent_within_2px": _fraction(values["agent_error"].nan_to_num(nan=math.inf) <= 2.0, agent_seen),
        "block_within_2px": _fraction(values["block_error"].nan_to_num(nan=math.inf) <= 2.0, block_seen),
        "block_angle_within_10deg": _fraction(
            values["angle_error"].nan_to_num(nan=math.inf) <= math.radians(10.0), block_seen
        ),
    }


def median_baseline(
    target: torch.Tensor,
    background: torch.Tensor,
    lpips_model: LPIPS | None | str = "auto",
    foreground_threshold: float = 0.1,
) -> dict[str, float | None]:
    """:func:`evaluate_reconstruction` of predicting the median background for every frame."""
    pred = as_unit_float(background).to(target.device)
    target = as_unit_float(target)
    pred = pred.to(target.dtype).expand_as(target)
    return evaluate_reconstruction(target, pred, background, lpips_model, foreground_threshold)
