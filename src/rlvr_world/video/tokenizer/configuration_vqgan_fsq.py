"""Configuration of the per-frame VQGAN+FSQ visual tokenizer."""

from __future__ import annotations

import math

from transformers import PretrainedConfig


class VQGANFSQConfig(PretrainedConfig):
    r"""Configuration for [`VQGANFSQModel`].

    Args:
        in_channels (`int`, defaults to 3): channels of the input frames.
        block_out_channels (`list[int]`, defaults to `[128, 128, 256, 256, 512]`): channels of each
            encoder level (reversed in the decoder). There are `len(block_out_channels) - 1`
            downsamplings, so the token grid is the frame size divided by
            `2 ** (len(block_out_channels) - 1)` (the default gives /16: 256x320 -> 16x20).
        layers_per_block (`int`, defaults to 2): ResNet layers per encoder level (the decoder
            uses one more, as in diffusers).
        norm_num_groups (`int`, defaults to 32): GroupNorm groups (must divide every channel count).
        act_fn (`str`, defaults to `"silu"`).
        mid_block_attention (`bool`, defaults to `True`): self-attention in the mid blocks.
        patch_local_encoder (`bool`, defaults to `False`): encode each `f x f` patch on its own (an
            MLP on its pixels, `len(block_out_channels)` residual layers of width
            `block_out_channels[-1]`) instead of with the convolutional encoder, so that a code
            changes only when its own pixels change; the decoder is unchanged.
        latent_channels (`int`, *optional*): channels of the encoder output fed to the quantiser;
            defaults to `len(fsq_levels)` (FSQ then needs no projection).
        fsq_levels (`list[int]`, defaults to `[7, 5, 5, 5, 5]`): FSQ levels per code dimension; the
            codebook has `prod(fsq_levels)` entries (4375 by default).
    """

    model_type = "vqgan_fsq"

    def __init__(
        self,
        in_channels: int = 3,
        block_out_channels: list[int] | tuple[int, ...] = (128, 128, 256, 256, 512),
        layers_per_block: int = 2,
        norm_num_groups: int = 32,
        act_fn: str = "silu",
        mid_block_attention: bool = True,
        patch_local_encoder: bool = False,
        latent_channels: int | None = None,
        fsq_levels: list[int] | tuple[int, ...] = (7, 5, 5, 5, 5),
        **kwargs,
    ):
        self.in_channels = in_channels
        self.block_out_channels = list(block_out_channels)
        self.layers_per_block = layers_per_block
        self.norm_num_groups = norm_num_groups
        self.act_fn = act_fn
        self.mid_block_attention = mid_block_attention
        self.patch_local_encoder = patch_local_encoder
        self.fsq_levels = list(fsq_levels)
        self.latent_channels = latent_channels if latent_channels is not None else len(self.fsq_levels)
        for c in self.block_out_channels:
            if c % norm_num_groups:
                raise ValueError(f"norm_num_groups={norm_num_groups} must divide every channel count, got {c}")
        super().__init__(**kwargs)

    @property
    def downsample_factor(self) -> int:
        return 2 ** (len(self.block_out_channels) - 1)

    @property
    def codebook_size(self) -> int:
        return math.prod(self.fsq_levels)

    def num_tokens(self, height: int, width: int) -> int:
        """Tokens per frame of size `height x width`."""
        f = self.downsample_factor
        return (height // f) * (width // f)
