"""Tiny video assets for tests and benchmarks: PushT episodes and untrained world models built from configs.

`video_smoke_assets(root)` writes (once; later calls reuse them):

- `root/data`: 6 PushT episodes of 10 frames at 32x32 (`src/make_dataset.py pusht`);
- `root/single_step`: a single-step world model (2 context frames, a per-frame tokenizer with
  125 codes on an 8x8 grid);
- `root/multi_step`: a multi-step world model (3 future frames, a compressive tokenizer: 8x8
  context codes, 4x4 future codes);

each a complete world-model directory (model, `video_processor_config.json`, `visual_tokenizer/`).
The models are random: they exercise the real code paths in seconds, nothing more.
"""

from __future__ import annotations

from pathlib import Path

IMAGE_SIZE = 32
COMMON = dict(block_out_channels=[8, 16, 16], layers_per_block=1, norm_num_groups=4)


def _episodes(path: Path) -> None:
    from rlvr_world.data import pusht

    pusht.main(["--output_dir", str(path), "--num_episodes", "6", "--episode_length", "10",
                "--image_size", str(IMAGE_SIZE), "--seed", "5"])


def _world_model(data: Path, mode: str, output_dir: Path, seed: int = 0) -> None:
    import datasets
    import torch

    from rlvr_world.data.frames import episode_actions
    from rlvr_world.video.actions import ActionBinner
    from rlvr_world.video.processor import VideoWorldModelProcessor
    from rlvr_world.video.tokenizer import (
        CompressiveVQGANFSQConfig,
        CompressiveVQGANFSQModel,
        VQGANFSQConfig,
        VQGANFSQModel,
    )
    from rlvr_world.video.world_model import VideoWorldModelConfig, VideoWorldModelForCausalLM

    torch.manual_seed(seed)
    binner = ActionBinner(num_bins=16).fit(episode_actions(datasets.load_from_disk(str(data))["train"]))
    size = (IMAGE_SIZE, IMAGE_SIZE)
    if mode == "single_step":
        tokenizer = VQGANFSQModel(VQGANFSQConfig(**COMMON, fsq_levels=[5, 5, 5])).eval()
        processor = VideoWorldModelProcessor.from_tokenizer(tokenizer, None, mode, binner, size, num_context_frames=2)
    else:
        tokenizer = CompressiveVQGANFSQModel(CompressiveVQGANFSQConfig(
            **COMMON, num_attention_heads=2, latent_channels=4, patch_size=2,
            context_fsq_levels=[5, 5, 5], future_fsq_levels=[5, 5, 5],
        )).eval()
        processor = VideoWorldModelProcessor.from_tokenizer(tokenizer, None, mode, binner, size, num_future_frames=3)
    config = VideoWorldModelConfig(**processor.model_config_kwargs(), hidden_size=32, intermediate_size=64,
                                   num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=2,
                                   max_position_embeddings=512)
    VideoWorldModelForCausalLM(config).save_pretrained(output_dir)
    processor.save_pretrained(output_dir)


def video_smoke_assets(root: str | Path) -> dict[str, str]:
    """Paths of the tiny assets (`data`, `single_step`, `multi_step`), built under `root` if missing."""
    root = Path(root)
    paths = {name: root / name for name in ("data", "single_step", "multi_step")}
    if not (paths["data"] / "dataset_dict.json").is_file():
        _episodes(paths["data"])
    for mode in ("single_step", "multi_step"):
        if not (paths[mode] / "model.safetensors").is_file():
            _world_model(paths["data"], mode, paths[mode])
    return {name: str(path) for name, path in paths.items()}
