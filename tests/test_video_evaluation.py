"""Video world-model evaluation: metrics on known values, baselines, and the report files of tiny runs."""

import json

import numpy as np
import pytest
import torch

from rlvr_world.data import pusht
from rlvr_world.data.frames import EpisodeReader
from rlvr_world.evaluation import video
from rlvr_world.video.tokenizer import (
    CompressiveVQGANFSQConfig,
    CompressiveVQGANFSQModel,
    VQGANFSQConfig,
    VQGANFSQModel,
)

# ---------------------------------------------------------------------------------------- metrics


def test_psnr_of_a_known_mse():
    target = torch.full((2, 3, 3, 16, 16), 0.5)
    values = video.frame_metrics(target + 0.1, target)  # every pixel off by 0.1: MSE 0.01, 20 dB
    assert values["mse"].shape == (2, 3)
    assert torch.allclose(values["mse"], torch.full((2, 3), 0.01), atol=1e-7)
    assert torch.allclose(values["mae"], torch.full((2, 3), 0.1), atol=1e-6)
    assert torch.allclose(values["psnr"], torch.full((2, 3), 20.0), atol=1e-4)
    assert "lpips" not in values  # no LPIPS model given: no number


def test_ssim_of_identical_frames_is_one_and_drops_with_noise():
    target = torch.rand(1, 2, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(video.frame_metrics(target, target)["ssim"], torch.ones(1, 2), atol=1e-6)
    noisy = (target + 0.2 * torch.randn(target.shape, generator=torch.Generator().manual_seed(1))).clamp(0, 1)
    assert float(video.frame_metrics(noisy, target)["ssim"].max()) < 0.9


def test_predictions_are_clamped_to_the_pixel_range():
    target = torch.ones(1, 1, 3, 12, 12)
    assert float(video.frame_metrics(target + 0.5, target)["mse"]) == 0.0


def test_repetition_rate_on_known_tokens():
    tokens = torch.tensor([[[1, 2], [1, 2], [3, 4], [3, 4]], [[5, 6], [5, 7], [5, 7], [5, 6]]])  # [B=2, F=4, N=2]
    previous = torch.tensor([[1, 2], [0, 0]])
    repeats = video.repetition(video.Prediction(frames=torch.zeros(2, 4, 3, 1, 1), tokens=tokens, previous_tokens=previous))
    assert repeats.tolist() == [[True, True, False, True], [False, False, True, False]]
    summary = video.summarise({"mse": torch.zeros(2, 4), "repeated": repeats})
    assert summary["repetition_rate"] == pytest.approx(4 / 8)
    # Without the context frame's tokens the first frame has nothing to repeat.
    no_context = video.repetition(video.Prediction(frames=torch.zeros(2, 4, 3, 1, 1), tokens=tokens))
    assert no_context.tolist() == [[True, False, True], [False, True, False]]
    assert video.repetition(video.Prediction(frames=torch.zeros(2, 4, 3, 1, 1))) is None


def test_summary_per_step_and_win_rate():
    per_frame = {"mse": torch.tensor([[1.0, 3.0], [3.0, 5.0]])}
    summary = video.summarise(per_frame)
    assert summary["mse"] == pytest.approx(3.0)
    assert summary["per_step"]["mse"] == pytest.approx([2.0, 4.0])
    assert summary["repetition_rate"] is None
    model, copy = torch.tensor([[1.0], [2.0], [3.0], [4.0]]), torch.tensor([[2.0], [2.0], [2.0], [2.0]])
    assert video.win_rate(model, copy) == pytest.approx((1 + 0.5) / 4)
    assert video.win_rate(model, copy, lower_is_better=False) == pytest.approx((2 + 0.5) / 4)


def test_copy_last_frame_on_a_constructed_case():
    # Window: 3 context frames, then 2 future frames that each add 0.25 to the last context frame.
    context = torch.rand(1, 3, 3, 12, 12, generator=torch.Generator().manual_seed(0)) * 0.5
    future = context[:, -1:].repeat(1, 2, 1, 1, 1) + torch.tensor([0.25, 0.5]).view(1, 2, 1, 1, 1)
    pixels = torch.cat([context, future], dim=1)
    copied = video.copy_last_frame(pixels, context_frames=3)
    assert copied.shape == (1, 2, 3, 12, 12)
    assert torch.equal(copied[0, 0], context[0, -1]) and torch.equal(copied[0, 1], context[0, -1])
    values = video.frame_metrics(copied, future)
    assert values["mse"][0].tolist() == pytest.approx([0.0625, 0.25])
    assert values["mae"][0].tolist() == pytest.approx([0.25, 0.5])


# ---------------------------------------------------------------------------------------- tiny runs


@pytest.fixture(scope="module")
def episodes(tmp_path_factory):
    path = tmp_path_factory.mktemp("pusht")
    pusht.main(["--output_dir", str(path), "--num_episodes", "6", "--episode_length", "10", "--image_size", "32", "--seed", "5"])
    return path


@pytest.fixture(scope="module")
def tokenizers(tmp_path_factory):
    root = tmp_path_factory.mktemp("tokenizers")
    torch.manual_seed(0)
    common = dict(block_out_channels=[8, 16, 16], layers_per_block=1, norm_num_groups=4)
    VQGANFSQModel(VQGANFSQConfig(**common)).save_pretrained(root / "per_frame")
    CompressiveVQGANFSQModel(
        CompressiveVQGANFSQConfig(**common, num_attention_heads=2, latent_channels=4, patch_size=2,
                                  context_fsq_levels=[5, 5, 5], future_fsq_levels=[7, 5, 5, 5, 5])
    ).save_pretrained(root / "compressive")
    return root


def _direct_copy_mse(dataset_dir, context_frames, future_frames):
    """Copy-last-frame MSE straight from the stored uint8 frames (non-overlapping windows)."""
    import datasets

    reader = EpisodeReader(datasets.load_from_disk(str(dataset_dir))["test"])
    errors, length = [], context_frames + future_frames
    for episode in range(len(reader)):
        frames = reader.read(episode).astype(np.float64) / 255.0
        for start in range(0, len(frames) - length + 1, length):
            last = frames[start + context_frames - 1]
            errors += [((frames[start + context_frames + f] - last) ** 2).mean() for f in range(future_frames)]
    return np.array(errors)


REPORT_KEYS = {"mse", "mae", "psnr", "ssim", "lpips", "repetition_rate"}


@pytest.mark.parametrize("task, tokenizer, layout", [("video_single_step", "per_frame", (4, 1)),
                                                      ("video_multi_step", "compressive", (1, 7))])
def test_baselines_only_run_writes_the_report(episodes, tokenizers, tmp_path, monkeypatch, task, tokenizer, layout):
    monkeypatch.setattr(video, "lpips_available", lambda net="vgg": False)  # the path without backbone weights
    out = tmp_path / "eval"
    metrics = video.main(["--task", task, "--dataset", str(episodes), "--tokenizer", str(tokenizers / tokenizer),
                          "--output_dir", str(out), "--no_progress", "--batch_size", "3"])
    written = json.loads((out / "metrics.json").read_text())
    assert written["num_windows"] == metrics["num_windows"] > 0
    assert (written["context_frames"], written["future_frames"]) == layout
    assert REPORT_KEYS <= set(written) and written["mse"] is None  # no model, no model figures
    for prefix in ("copy_last_frame_", "reconstruction_"):
        assert {prefix + key for key in REPORT_KEYS} <= set(written)
        assert written[prefix + "lpips"] is None and written["lpips_available"] is False
    # Copy-last-frame is exact against the stored frames; the reconstruction of a random tokenizer is poor.
    direct = _direct_copy_mse(episodes, *layout)
    assert written["copy_last_frame_mse"] == pytest.approx(direct.mean(), rel=1e-5)
    assert written["copy_last_frame_psnr"] == pytest.approx(np.mean(-10 * np.log10(np.maximum(direct, 1e-10))), rel=1e-5)
    assert written["copy_last_frame_repetition_rate"] is None
    assert 0 <= written["reconstruction_repetition_rate"] <= 1
    assert len(written["predictors"]["reconstruction"]["per_step"]["mse"]) == layout[1]
    # PushT data: the scene figures (foreground PSNR, objects within 2 px) sit beside the pixel metrics.
    scene = written["predictors"]["copy_last_frame"]["scene"]
    assert set(scene) == set(video.SCENE_FIGURES) and 0 <= scene["agent_within_2px"] <= 1
    report = (out / "report.md").read_text()
    assert "| MSE |" in report and "copy last frame" in report and "LPIPS: unavailable" in report
    assert written["samples"] and all((out / s["grid"]).is_file() and (out / s["gif"]).is_file() for s in written["samples"])
    assert (out / "curves.png").is_file()
    rows = [json.loads(line) for line in (out / "windows.jsonl").read_text().splitlines()]
    assert len(rows) == written["num_windows"] and len(rows[0]["copy_last_frame_mse"]) == layout[1]


@pytest.mark.skipif(not video.lpips_available("vgg"), reason="no LPIPS backbone weights on this machine")
def test_lpips_is_reported_when_its_weights_are_here(episodes, tokenizers, tmp_path):
    out = tmp_path / "eval"
    metrics = video.main(["--task", "video_single_step", "--dataset", str(episodes), "--tokenizer",
                          str(tokenizers / "per_frame"), "--output_dir", str(out), "--no_progress", "--limit", "2"])
    assert metrics["lpips_available"] is True
    # Copying a real frame is perceptually far closer than a random tokenizer's noise.
    assert 0 <= metrics["copy_last_frame_lpips"] < metrics["reconstruction_lpips"]
    assert "LPIPS: unavailable" not in (out / "report.md").read_text()


def test_gif_has_one_frame_per_step(tmp_path):
    from PIL import Image

    panels = [torch.rand(5, 3, 8, 8), torch.zeros(5, 3, 8, 8)]
    path = video.save_gif(tmp_path / "a.gif", panels, scale=2)
    with Image.open(path) as gif:
        assert gif.n_frames == 5 and gif.size == (2 * (2 * 9), 2 * 8)


# ---------------------------------------------------------------------------------------- with a world model


def _save_world_model(path, tokenizer_dir, mode, episodes_dir):
    """A tiny random world model with its processor and a copy of the tokenizer, as pretrain.py saves one."""
    import datasets
    from transformers import AutoModel

    from rlvr_world.data.frames import episode_actions
    from rlvr_world.video.actions import ActionBinner
    from rlvr_world.video.processor import VideoWorldModelProcessor
    from rlvr_world.video.world_model import (
        VideoWorldModelConfig,
        VideoWorldModelForCausalLM,
    )

    tokenizer = AutoModel.from_pretrained(str(tokenizer_dir)).eval()
    binner = ActionBinner().fit(episode_actions(datasets.load_from_disk(str(episodes_dir))["train"]))
    processor = VideoWorldModelProcessor.from_tokenizer(
        tokenizer, str(tokenizer_dir), mode, binner, (32, 32),
        **({"num_context_frames": 2} if mode == "single_step" else {"num_future_frames": 3}),
    )
    torch.manual_seed(0)
    config = VideoWorldModelConfig(**processor.model_config_kwargs(), hidden_size=32, intermediate_size=64,
                                   num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=2,
                                   max_position_embeddings=512)
    VideoWorldModelForCausalLM(config).save_pretrained(path)
    processor.save_pretrained(path, save_tokenizer=True)
    return path


@pytest.fixture(scope="module")
def world_models(episodes, tokenizers, tmp_path_factory):
    root = tmp_path_factory.mktemp("world_models")
    return {mode: _save_world_model(root / mode, tokenizers / tokenizer, mode, episodes)
            for mode, tokenizer in (("single_step", "per_frame"), ("multi_step", "compressive"))}


@pytest.mark.parametrize("task, mode", [("video_single_step", "single_step"), ("video_multi_step", "multi_step")])
def test_world_model_run_reports_model_and_baselines(episodes, world_models, tmp_path, monkeypatch, task, mode):
    monkeypatch.setattr(video, "lpips_available", lambda net="vgg": False)
    out = tmp_path / "eval"
    video.main(["--task", task, "--dataset", str(episodes), "--model", str(world_models[mode]), "--output_dir", str(out),
                "--no_progress", "--top_k", "10", "--seed", "3"])
    written = json.loads((out / "metrics.json").read_text())
    layout = (2, 1) if mode == "single_step" else (1, 3)
    assert (written["context_frames"], written["future_frames"]) == layout
    for prefix in ("", "copy_last_frame_", "reconstruction_"):
        assert {prefix + key for key in REPORT_KEYS} <= set(written)
    assert written["mse"] > 0 and 0 <= written["ssim"] <= 1 and written["lpips"] is None
    assert 0 <= written["repetition_rate"] <= 1 and 0 <= written["model_beats_copy_mse"] <= 1
    assert written["copy_last_frame_mse"] == pytest.approx(_direct_copy_mse(episodes, *layout).mean(), rel=1e-5)
    assert written["sampling"]["top_k"] == 10 and written["sampling"]["do_sample"] is True
    assert "| metric | world model | copy last frame | tokenizer reconstruction |" in (out / "report.md").read_text()
    assert written["samples"] and all((out / s["grid"]).is_file() and (out / s["gif"]).is_file() for s in written["samples"])
    model = written["predictors"]["model"]
    assert 0 <= model["token_accuracy"] < model["copy_token_accuracy"] <= 1  # an untrained model copies worse than copying
    rows = [json.loads(line) for line in (out / "windows.jsonl").read_text().splitlines()]
    assert len(rows[0]["model_repeated"]) == (layout[1] if mode == "single_step" else layout[1] - 1)


def test_sampling_is_seeded_and_best_of_n_never_does_worse(episodes, world_models, tmp_path, monkeypatch):
    monkeypatch.setattr(video, "lpips_available", lambda net="vgg": False)
    common = ["--task", "video_single_step", "--dataset", str(episodes), "--model", str(world_models["single_step"]),
              "--no_progress", "--seed", "1", "--top_k", "0", "--num_visualized", "0"]
    one = video.main(common + ["--output_dir", str(tmp_path / "one")])
    again = video.main(common + ["--output_dir", str(tmp_path / "again")])
    assert again["mse"] == one["mse"] and again["repetition_rate"] == one["repetition_rate"]
    four = video.main(common + ["--num_samples", "4", "--output_dir", str(tmp_path / "four")])
    # Same seed: the first of the four candidates is the single sample; keeping the best cannot be worse.
    assert four["mse"] <= one["mse"] + 1e-9
    assert four["sampling"]["num_samples"] == 4


def test_mismatched_task_is_a_clear_error(episodes, world_models, tmp_path):
    with pytest.raises(ValueError, match="single_step world model cannot be evaluated as video_multi_step"):
        video.main(["--task", "video_multi_step", "--dataset", str(episodes), "--model", str(world_models["single_step"]),
                    "--output_dir", str(tmp_path / "x"), "--no_progress"])


def test_latent_mbr_run_is_deterministic_and_named(episodes, world_models, tmp_path, monkeypatch):
    monkeypatch.setattr(video, "lpips_available", lambda net="vgg": False)
    common = ["--task", "video_single_step", "--dataset", str(episodes), "--model", str(world_models["single_step"]),
              "--no_progress", "--num_visualized", "0", "--latent_mbr"]
    one = video.main(common + ["--seed", "1", "--output_dir", str(tmp_path / "one")])
    other = video.main(common + ["--seed", "2", "--output_dir", str(tmp_path / "other")])
    assert one["mse"] == other["mse"]  # no sampling: the seed does not matter
    assert one["sampling"]["latent_mbr"] is True and one["sampling"]["do_sample"] is False
    assert "Decoding: latent MBR" in (tmp_path / "one" / "report.md").read_text()
    with pytest.raises(ValueError, match="deterministic"):
        video.main(common + ["--num_samples", "2", "--output_dir", str(tmp_path / "bad")])
