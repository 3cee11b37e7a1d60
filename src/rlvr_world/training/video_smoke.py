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
    from rlvr_world.video.pretraining import world_model_config
    from rlvr_world.video.world_model import VideoWorldModelForCausalLM

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
    config = world_model_config(processor, {
        "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1, "num_attention_heads": 2,
        "num_key_value_heads": 2, "max_position_embeddings": 512,
        # the tiny recipes' inputs, so the GRPO tests run through their lookups
        "previous_frame_input": True, "previous_frame_radius": 1, "action_input": True, "place_input": True,
    })
    VideoWorldModelForCausalLM(config).save_pretrained(output_dir)
    processor.save_pretrained(output_dir)


def recipe_shaped_assets(root: str | Path, dataset: str | Path, repo: str | Path) -> dict[str, str]:
    """Untrained models with the tiny PushT recipes' architectures (tokenizers from
    `recipes/tiny/tokenizer_pusht*.yaml`, world models from `recipes/tiny/video_pretrain_pusht_*.yaml`) on
    the real 64x64 episodes: the compute of the tiny recipes without their training, for benchmarks."""
    import datasets
    import torch
    import yaml

    from rlvr_world.data.frames import episode_actions
    from rlvr_world.video.actions import ActionBinner
    from rlvr_world.video.processor import VideoWorldModelProcessor
    from rlvr_world.video.tokenizer import (
        CompressiveVQGANFSQConfig,
        CompressiveVQGANFSQModel,
        VQGANFSQConfig,
        VQGANFSQModel,
    )
    from rlvr_world.video.pretraining import world_model_config
    from rlvr_world.video.world_model import VideoWorldModelForCausalLM

    root, recipes = Path(root), Path(repo) / "recipes" / "tiny"
    paths = {"data": str(dataset)}
    for mode, tokenizer_recipe, build in (("single_step", "tokenizer_pusht", (VQGANFSQConfig, VQGANFSQModel)),
                                          ("multi_step", "tokenizer_pusht_compressive",
                                           (CompressiveVQGANFSQConfig, CompressiveVQGANFSQModel))):
        out = root / mode
        paths[mode] = str(out)
        if (out / "model.safetensors").is_file():
            continue
        torch.manual_seed(0)
        tokenizer = build[1](build[0](**yaml.safe_load((recipes / f"{tokenizer_recipe}.yaml").read_text())["model"]))
        pretrain = yaml.safe_load((recipes / f"video_pretrain_pusht_{mode}.yaml").read_text())
        episodes = datasets.load_from_disk(str(dataset))["train"]
        binner = ActionBinner(num_bins=pretrain["num_action_bins"]).fit(episode_actions(episodes))
        size = tuple(int(x) for x in episodes.features["frames"].shape[1:3])
        processor = VideoWorldModelProcessor.from_tokenizer(
            tokenizer.eval(), None, mode, binner, size, num_context_frames=pretrain.get("num_context_frames", 4),
            num_future_frames=pretrain.get("num_future_frames", 1))
        config = world_model_config(processor, pretrain["world_model_config"])
        VideoWorldModelForCausalLM(config).save_pretrained(out)
        processor.save_pretrained(out)
    return paths


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
