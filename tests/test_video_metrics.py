"""Video metrics (MSE/MAE/PSNR/SSIM/LPIPS, repetition) and the PushT metrics and frame parser."""

import math

import numpy as np
import pytest
import torch

from rlvr_world.metrics import pusht as pusht_metrics
from rlvr_world.metrics.video import (
    LPIPS,
    mae,
    moving_region_mae,
    mse,
    psnr,
    repeated_frames,
    repetition_rate,
    ssim,
    video_metrics,
)


def _frames(*shape, seed=0):
    return torch.rand(*shape, generator=torch.Generator().manual_seed(seed))


# ---------------------------------------------------------------------------------------- pixel metrics


def test_identical_frames():
    x = _frames(2, 3, 3, 16, 16)
    assert torch.equal(mse(x, x), torch.zeros(2, 3))
    assert torch.equal(mae(x, x), torch.zeros(2, 3))
    torch.testing.assert_close(psnr(x, x), torch.full((2, 3), 100.0))  # capped, not inf
    torch.testing.assert_close(ssim(x, x), torch.ones(2, 3))


def test_known_error_gives_known_values():
    target = torch.full((4, 3, 12, 12), 0.5)
    pred = target + 0.1
    torch.testing.assert_close(mse(pred, target), torch.full((4,), 0.01))
    torch.testing.assert_close(mae(pred, target), torch.full((4,), 0.1))
    torch.testing.assert_close(psnr(pred, target), torch.full((4,), 20.0))
    # Gaussian noise of standard deviation sigma: PSNR close to -20 log10(sigma) = 26.02 dB.
    target = torch.full((4, 3, 64, 64), 0.5)
    noise = 0.05 * torch.randn(target.shape, generator=torch.Generator().manual_seed(0))
    per_frame = psnr(target + noise, target)
    torch.testing.assert_close(per_frame, -10 * torch.log10(noise.pow(2).mean((1, 2, 3))))
    assert abs(float(per_frame.mean()) - 26.02) < 0.1


def _dot_frames(columns: list[int], size: int = 8) -> torch.Tensor:
    """One white pixel per frame on black, at row 2 and the given column: ``[F, 3, size, size]``."""
    frames = torch.zeros(len(columns), 3, size, size)
    for f, c in enumerate(columns):
        frames[f, :, 2, c] = 1.0
    return frames


def test_moving_region_mae_scores_the_moving_pixels_alone():
    truth = _dot_frames([1, 2, 3, 3])  # moves twice, then stays
    torch.testing.assert_close(moving_region_mae(truth, truth), torch.zeros(3))
    # Frozen at frame 0: frame 1's region is {1, 2} (this step), frame 2's {1, 2, 3} (step {2, 3} and so
    # far {1, 3}), frame 3's {1, 3} (so far; this step moved nothing). Wrong at the old and the new place.
    frozen = _dot_frames([1, 1, 1, 1])
    torch.testing.assert_close(moving_region_mae(frozen, truth), torch.tensor([1.0, 2 / 3, 1.0]))
    # Lagging one step behind: right at the old place of frame 1 only.
    lagging = _dot_frames([1, 1, 2, 3])
    torch.testing.assert_close(moving_region_mae(lagging, truth), torch.tensor([1.0, 2 / 3, 0.0]))
    # Static truth: an empty region scores 0 whatever is predicted (the full-frame terms see it).
    still = _dot_frames([4, 4, 4])
    torch.testing.assert_close(moving_region_mae(_dot_frames([5, 6, 7]), still), torch.zeros(2))
    # Batched, with the full-frame MAE for scale: 2 wrong pixels of 64 against 2 of 2.
    batch = torch.stack([frozen, truth])
    torch.testing.assert_close(moving_region_mae(batch, torch.stack([truth, truth]))[:, 0], torch.tensor([1.0, 0.0]))
    assert float(mae(frozen[1], truth[1])) == pytest.approx(2 / 64)
    # A change below the threshold (0.1) is not motion.
    dim = truth.clone()
    dim[1:, :, 5, 5] = 0.05
    torch.testing.assert_close(moving_region_mae(truth, dim), moving_region_mae(truth, truth))
    torch.testing.assert_close(moving_region_mae(frozen, truth, reduction="mean"), torch.tensor(8 / 9))
    with pytest.raises(ValueError, match="F >= 2"):
        moving_region_mae(truth[:1], truth[:1])


def test_reductions_and_half_precision():
    x, y = _frames(2, 5, 3, 16, 16, seed=1), _frames(2, 5, 3, 16, 16, seed=2)
    for metric in (mse, mae, psnr, ssim):
        per_frame = metric(x, y)
        assert per_frame.shape == (2, 5)
        torch.testing.assert_close(metric(x, y, reduction="mean"), per_frame.mean())
        torch.testing.assert_close(metric(x.half(), y.half()), per_frame, atol=2e-2, rtol=1e-2)
    with pytest.raises(ValueError):
        mse(x, y[:1])
    with pytest.raises(ValueError):
        ssim(_frames(1, 3, 8, 8), _frames(1, 3, 8, 8))  # smaller than the window


def _ssim_by_hand(x: np.ndarray, y: np.ndarray) -> float:
    """Direct SSIM of [C, H, W] arrays: explicit weighted sums at every valid window position."""
    offsets = np.arange(11) - 5
    g = np.exp(-(offsets**2) / (2 * 1.5**2))
    window = np.outer(g, g) / np.outer(g, g).sum()
    c1, c2 = 0.01**2, 0.03**2
    values = []
    for a, b in zip(x, y):
        for i in range(a.shape[0] - 10):
            for j in range(a.shape[1] - 10):
                pa, pb = a[i : i + 11, j : j + 11], b[i : i + 11, j : j + 11]
                mu_a, mu_b = (window * pa).sum(), (window * pb).sum()
                var_a = (window * (pa - mu_a) ** 2).sum()
                var_b = (window * (pb - mu_b) ** 2).sum()
                cov = (window * (pa - mu_a) * (pb - mu_b)).sum()
                values.append(
                    ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2))
                )
    return float(np.mean(values))


def test_ssim_matches_a_hand_computation():
    x = _frames(3, 13, 14, seed=3).double()
    y = (0.7 * x + 0.3 * _frames(3, 13, 14, seed=4).double()).clamp(0, 1)
    assert float(ssim(x, y)) == pytest.approx(_ssim_by_hand(x.numpy(), y.numpy()), abs=1e-9)


def test_ssim_matches_skimage():
    skimage_metrics = pytest.importorskip("skimage.metrics")
    x = _frames(3, 32, 40, seed=5)
    y = (x + 0.1 * torch.randn(x.shape, generator=torch.Generator().manual_seed(6))).clamp(0, 1)
    reference = skimage_metrics.structural_similarity(
        x.permute(1, 2, 0).double().numpy(),
        y.permute(1, 2, 0).double().numpy(),
        gaussian_weights=True,
        sigma=1.5,
        use_sample_covariance=False,
        data_range=1.0,
        channel_axis=-1,
    )
    assert float(ssim(x.double(), y.double())) == pytest.approx(reference, abs=1e-6)


def test_metrics_are_differentiable():
    x = _frames(2, 3, 16, 16).requires_grad_()
    y = _frames(2, 3, 16, 16, seed=1)
    (mse(x, y, "mean") + mae(x, y, "mean") - psnr(x, y, "mean") - ssim(x, y, "mean")).backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()


# ---------------------------------------------------------------------------------------- LPIPS


# The real (converted) weights, their cache and the missing-weights error: tests/test_lpips_weights.py.


@pytest.fixture(scope="module")
def random_lpips():
    return LPIPS("alex", pnet_rand=True)


def test_lpips_random_backbone_runs(random_lpips):
    torch.manual_seed(0)
    x, y = _frames(2, 3, 3, 64, 64), _frames(2, 3, 3, 64, 64, seed=1)
    assert random_lpips.random_backbone
    distances = random_lpips(x, y)
    assert distances.shape == (2, 3) and (distances > 0).all()
    torch.testing.assert_close(random_lpips(x, x), torch.zeros(2, 3))
    # Deterministic (no dropout) even when the surrounding model trains.
    random_lpips.train()
    torch.testing.assert_close(random_lpips(x, y), distances)
    assert video_metrics(x, y, random_lpips)["lpips"] == pytest.approx(float(distances.mean()))
    assert all(not p.requires_grad for p in random_lpips.parameters())


def test_no_reported_number_from_a_random_backbone(random_lpips):
    frames = _frames(2, 3, 32, 32)
    with pytest.raises(ValueError, match="random"):
        pusht_metrics.evaluate_reconstruction(frames, frames, frames[0], lpips_model=random_lpips)


# ---------------------------------------------------------------------------------------- repetition


def test_repetition():
    tokens = torch.tensor([[[1, 2], [1, 2], [3, 4], [3, 4]], [[5, 6], [7, 8], [7, 9], [7, 9]]])
    assert repeated_frames(tokens).tolist() == [[True, False, True], [False, False, True]]
    assert repetition_rate(tokens) == pytest.approx(3 / 6)
    previous = torch.tensor([[1, 2], [0, 0]])
    assert repeated_frames(tokens, previous).tolist() == [[True, True, False, True], [False, False, False, True]]
    assert repetition_rate(tokens, previous) == pytest.approx(4 / 8)


# ---------------------------------------------------------------------------------------- PushT


@pytest.fixture(scope="module")
def rendered():
    """Frames rendered by gym-pusht at several sizes, with the simulator state of each."""
    from rlvr_world.data.pusht import make_env, resize_frame

    env = make_env()
    rng = np.random.default_rng(0)
    frames = {64: [], 128: []}
    states = []
    for episode in range(12):
        pixels, info = env.reset(seed=100 + episode)
        for _ in range(5):
            for size, sized in frames.items():
                sized.append(resize_frame(pixels, (size, size)))
            states.append(np.r_[info["pos_agent"], info["block_pose"]])
            pixels, _, _, _, info = env.step(rng.uniform(60, 450, size=2))
    to_tensor = lambda fr: torch.from_numpy(np.stack(fr)).permute(0, 3, 1, 2).float() / 255
    return {size: to_tensor(fr) for size, fr in frames.items()}, torch.tensor(np.array(states), dtype=torch.float32)


@pytest.mark.parametrize("size", [64, 128])
def test_parser_matches_simulator_state(rendered, size):
    frames, state = rendered
    parsed = pusht_metrics.parse_frames(frames[size])
    agent_error = (parsed.agent_xy - pusht_metrics.sim_to_pixel(state[:, :2], size)).norm(dim=-1)
    block_error = (parsed.block_xy - pusht_metrics.sim_to_pixel(state[:, 2:4], size)).norm(dim=-1)
    angle_error = torch.rad2deg(pusht_metrics.angle_difference(parsed.block_angle, state[:, 4]))
    assert (agent_error <= 1.5).float().mean() >= 0.95
    assert (block_error <= 2.0).float().mean() >= 0.95
    assert (angle_error <= 10.0).float().mean() >= 0.95
    # Typical errors are far smaller than the thresholds.
    assert agent_error.median() < 0.3 and block_error.median() < 0.5 and angle_error.median() < 2.0


def test_parser_reports_missing_objects(rendered):
    frames, _ = rendered
    blank = torch.ones(2, 3, 64, 64)
    parsed = pusht_metrics.parse_frames(blank)
    assert torch.isnan(parsed.agent_xy).all() and torch.isnan(parsed.block_xy).all()
    assert torch.isnan(parsed.block_angle).all()
    # The median background shows the goal but neither the agent nor the T.
    background = pusht_metrics.median_background(frames[64])
    parsed = pusht_metrics.parse_frames(background)
    assert torch.isnan(parsed.agent_xy).all() and torch.isnan(parsed.block_angle).all()


def test_median_background_and_foreground_psnr():
    frames = torch.zeros(5, 3, 16, 16)
    frames[0, :, 2:4, 2:4] = 1.0  # a moving object seen once
    background = pusht_metrics.median_background(frames)
    assert torch.equal(background, torch.zeros(3, 16, 16))
    target = frames[:1]
    pred = target.clone()
    pred[0, :, 2, 2] = 0.5  # one of the four foreground pixels is off by 0.5
    mask = pusht_metrics.foreground_mask(target, background)
    assert int(mask.sum()) == 4
    expected = -10 * math.log10(0.25 / 4)
    assert float(pusht_metrics.foreground_psnr(pred, target, background)) == pytest.approx(expected, rel=1e-5)
    # No foreground: NaN per frame, ignored by the mean.
    per_frame = pusht_metrics.foreground_psnr(frames[1:3], frames[1:3], background)
    assert torch.isnan(per_frame).all()
    both = torch.cat([pred, frames[1:2]]), torch.cat([target, frames[1:2]])
    assert float(pusht_metrics.foreground_psnr(*both, background, reduction="mean")) == pytest.approx(expected, rel=1e-5)


def test_evaluate_reconstruction_and_median_baseline(rendered):
    frames, _ = rendered
    target = frames[64]
    background = pusht_metrics.median_background(target)
    keys = {"psnr", "ssim", "mse", "mae", "foreground_psnr", "agent_within_2px", "block_within_2px",
            "block_angle_within_10deg", "lpips"}
    perfect = pusht_metrics.evaluate_reconstruction(target, target, background, lpips_model=None)
    assert set(perfect) == keys
    assert perfect["psnr"] == pytest.approx(100.0) and perfect["ssim"] == pytest.approx(1.0)
    assert perfect["agent_within_2px"] == perfect["block_within_2px"] == perfect["block_angle_within_10deg"] == 1.0
    assert perfect["lpips"] is None

    baseline = pusht_metrics.median_baseline(target.view(6, 10, 3, 64, 64), background, lpips_model=None)
    assert set(baseline) == keys
    assert baseline["agent_within_2px"] == baseline["block_within_2px"] == baseline["block_angle_within_10deg"] == 0.0
    # The static scene scores well globally but not where things move.
    assert 18 < baseline["psnr"] < 30 and baseline["ssim"] > 0.8
    assert baseline["foreground_psnr"] < 12

    # Shifting the frame by a pixel keeps objects within 2 px; the angle is unchanged.
    shifted = torch.roll(target, shifts=1, dims=-1)
    moved = pusht_metrics.evaluate_reconstruction(target, shifted, background, lpips_model=None)
    assert moved["agent_within_2px"] >= 0.95 and moved["block_angle_within_10deg"] >= 0.95


def test_coordinate_conversions_invert():
    xy = torch.tensor([[0.0, 0.0], [256.0, 100.0], [512.0, 512.0]])
    assert torch.allclose(pusht_metrics.pixel_to_sim(pusht_metrics.sim_to_pixel(xy, (48, 64)), (48, 64)), xy, atol=1e-4)
    torch.testing.assert_close(pusht_metrics.sim_to_pixel(torch.tensor([256.0, 256.0]), 64), torch.tensor([31.5, 31.5]))
