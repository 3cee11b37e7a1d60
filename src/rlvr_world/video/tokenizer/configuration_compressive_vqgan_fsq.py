"""Configuration of the compressive (context-conditioned) VQGAN+FSQ visual tokenizer."""

from __future__ import annotations

import math

from transformers import PretrainedConfig


class CompressiveVQGANFSQConfig(PretrainedConfig):
    r"""Configuration for [`CompressiveVQGANFSQModel`].

    The context frame(s) are tokenised on the full latent grid (`H/f x W/f`, `f = 2 **
    (len(block_out_channels) - 1)`); every future frame is encoded with cross-attention to the
    context encoder's features, its latent grid is cut into `patch_size x patch_size` patches and
    each patch becomes one token (`H/(f*p) x W/(f*p)` tokens). With the defaults at 256x320:
    32x40 = 1280 context tokens and 8x10 = 80 tokens per future frame.

    Args:
        in_channels (`int`, defaults to 3).
        block_out_channels (`list[int]`, defaults to `[128, 128, 256, 512]`): channels per level (/8).
        layers_per_block (`int`, defaults to 2).
        norm_num_groups (`int`, defaults to 32).
        act_fn (`str`, defaults to `"silu"`).
        mid_block_attention (`bool`, defaults to `True`).
        latent_channels (`int`, defaults to 8): channels of the encoders' output latent maps.
        context_fsq_levels (`list[int]`, defaults to `[7, 5, 5, 5, 5]`): FSQ levels of the context
            codebook (4375 codes).
        future_fsq_levels (`list[int]`, defaults to `[7, 5, 5, 5, 5]`): FSQ levels of the future-frame
            codebook.
        patch_size (`int`, defaults to 4): side of the latent patches that become one future token.
        num_context_frames (`int`, defaults to 1): context frames per sample.
        cross_attention_depth (`int`, defaults to 1): number of coarsest strides at which the
            future encoder/decoder cross-attend to the context encoder/decoder features.
        num_attention_heads (`int`, defaults to 8): heads of the cross-attention blocks.
    """

    model_type = "compressive_vqgan_fsq"

    def __init__(
        self,
        in_channels: int = 3,
        block_out_channels: list[int] | tuple[int, ...] = (128, 128, 256, 512),
        layers_per_block: int = 2,
        norm_num_groups: int = 32,
        act_fn: str = "silu",
        mid_block_attention: bool = True,
        latent_channels: int = 8,
        context_fsq_levels: list[int] | tuple[int, ...] = (7, 5, 5, 5, 5),
        future_fsq_levels: list[int] | tuple[int, ...] = (7, 5, 5, 5, 5),
        patch_size: int = 4,
        num_context_frames: int = 1,
        cross_attention_depth: int = 1,
        num_attention_heads: int = 8,
        **kwargs,
    ):
        self.in_channels = in_channels
        self.block_out_channels = list(block_out_channels)
        self.layers_per_block = layers_per_block
        self.norm_num_groups = norm_num_groups
        self.act_fn = act_fn
        self.mid_block_attention = mid_block_attention
        self.latent_channels = latent_channels
        self.context_fsq_levels = list(context_fsq_levels)
        self.future_fsq_levels = list(future_fsq_levels)
        self.patch_size = patch_size
        self.num_context_frames = num_context_frames
        self.cross_attention_depth = cross_attention_depth
        self.num_attention_heads = num_attention_heads
        for c in self.block_out_channels:
            if c % norm_num_groups or c % num_attention_heads:
                raise ValueError(
                    f"every channel count must be divisible by norm_num_groups={norm_num_groups} and "
                    f"num_attention_heads={num_attention_heads}, got {c}"
                )
        super().__init__(**kwargs)

    @property
    def downsample_factor(self) -> int:
        """Pixels per context token side."""
        return 2 ** (len(self.block_out_channels) - 1)

    @property
    def future_downsample_factor(self) -> int:
        """Pixels per future token side."""
        return self.downsample_factor * self.patch_size

    @property
    def context_codebook_size(self) -> int:
        return math.prod(self.context_fsq_levels)

    @property
    def future_codebook_size(self) -> int:
        return math.prod(self.future_fsq_levels)

    def num_context_tokens(self, height: int, width: int) -> int:
        f = self.downsample_factor
        return self.num_context_frames * (height // f) * (width // f)

    def num_future_tokens(self, height: int, width: int) -> int:
        """Tokens per future frame."""
        f = self.future_downsample_factor
        return (height // f) * (width // f)
