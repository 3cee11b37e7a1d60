"""Building blocks shared by the per-frame and the compressive VQGAN+FSQ tokenizers.

`FrameEncoder` and `FrameDecoder` are the diffusers VAE encoder/decoder layouts (down blocks of
ResNet layers, a mid block with self-attention, up blocks), rebuilt from the diffusers blocks so
that they can (a) hand back the feature map of every level and (b) optionally cross-attend to
another network's features at the coarsest levels. The compressive tokenizer uses both; the
per-frame tokenizer uses neither and is then the plain diffusers layout.

Nothing here depends on the image size: the only constraint is that height and width are
divisible by the total downsampling factor `2 ** (len(block_out_channels) - 1)`.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from diffusers.models.activations import get_activation
from diffusers.models.unets.unet_2d_blocks import (
    UNetMidBlock2D,
    get_down_block,
    get_up_block,
)
from torch import nn
from transformers import initialization as init
from vector_quantize_pytorch import FSQ


def sinusoidal_position_2d(height: int, width: int, channels: int, device, dtype) -> torch.Tensor:
    """Fixed 2-D sine/cosine position code for a `height x width` grid, shape [height*width, channels].

    Half of the channels encode the row, half the column (channels need not be a multiple of 4: the
    remainder is zero). Works for any grid size, so no resolution is baked into the weights.
    """
    quarter = channels // 4
    out = torch.zeros(height, width, channels, device=device, dtype=torch.float32)
    if quarter == 0:
        return out.reshape(height * width, channels).to(dtype)
    freqs = torch.exp(
        -math.log(10000.0) * torch.arange(quarter, device=device, dtype=torch.float32) / quarter
    )
    rows = torch.arange(height, device=device, dtype=torch.float32)[:, None] * freqs  # [H, q]
    cols = torch.arange(width, device=device, dtype=torch.float32)[:, None] * freqs  # [W, q]
    out[:, :, 0 * quarter : 1 * quarter] = rows.sin()[:, None, :]
    out[:, :, 1 * quarter : 2 * quarter] = rows.cos()[:, None, :]
    out[:, :, 2 * quarter : 3 * quarter] = cols.sin()[None, :, :]
    out[:, :, 3 * quarter : 4 * quarter] = cols.cos()[None, :, :]
    return out.reshape(height * width, channels).to(dtype)


class ContextCrossAttention(nn.Module):
    """Residual cross-attention from a frame's feature map to the context frames' feature maps.

    Queries: `x` of shape [B*Tf, C, h, w] (Tf future frames per sample). Keys/values: `context` of
    shape [B, Tc, C, h', w'] (Tc context frames). All Tf future frames of a sample attend to the same
    keys, so they are folded into the query sequence instead of repeating the context Tf times.
    The output projection starts at zero, so a fresh block is the identity.
    """

    def __init__(self, channels: int, num_heads: int, num_context_frames: int, norm_num_groups: int):
        super().__init__()
        if channels % num_heads:
            raise ValueError(f"channels ({channels}) must be divisible by num_heads ({num_heads})")
        self.num_heads = num_heads
        self.q_norm = nn.GroupNorm(norm_num_groups, channels, eps=1e-6)
        self.kv_norm = nn.GroupNorm(norm_num_groups, channels, eps=1e-6)
        self.frame_embedding = nn.Parameter(torch.zeros(num_context_frames, channels))
        self.to_q = nn.Linear(channels, channels)
        self.to_k = nn.Linear(channels, channels)
        self.to_v = nn.Linear(channels, channels)
        self.to_out = nn.Linear(channels, channels)

    def forward(self, x: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        batch, num_ctx, channels, kh, kw = context.shape
        bt, _, h, w = x.shape
        num_future = bt // batch
        heads = self.num_heads

        q_in = self.q_norm(x).flatten(2).transpose(1, 2)  # [B*Tf, h*w, C]
        q_in = q_in + sinusoidal_position_2d(h, w, channels, x.device, x.dtype)
        q_in = q_in.reshape(batch, num_future * h * w, channels)

        kv = self.kv_norm(context.flatten(0, 1)).flatten(2).transpose(1, 2)  # [B*Tc, kh*kw, C]
        kv = kv + sinusoidal_position_2d(kh, kw, channels, x.device, x.dtype)
        kv = kv.reshape(batch, num_ctx, kh * kw, channels) + self.frame_embedding[:num_ctx, None, :]
        kv = kv.reshape(batch, num_ctx * kh * kw, channels)

        def heads_first(t: torch.Tensor) -> torch.Tensor:
            return t.reshape(batch, t.shape[1], heads, channels // heads).transpose(1, 2)

        attn = F.scaled_dot_product_attention(
            heads_first(self.to_q(q_in)), heads_first(self.to_k(kv)), heads_first(self.to_v(kv))
        )
        attn = attn.transpose(1, 2).reshape(batch, num_future * h * w, channels)
        attn = self.to_out(attn).reshape(bt, h * w, channels).transpose(1, 2).reshape(bt, channels, h, w)
        return x + attn


def _num_cross_attention_levels(num_levels: int, depth: int) -> int:
    return max(0, min(depth, num_levels))


class FrameEncoder(nn.Module):
    """Image -> latent map at stride `2 ** (len(block_out_channels) - 1)` (diffusers VAE encoder layout).

    With `cross_attention_depth > 0` the feature maps after the down blocks at the
    `cross_attention_depth` coarsest strides cross-attend to the features of another encoder at
    the same positions in the network (`context_features`, as returned with
    `return_features=True`).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        block_out_channels: list[int],
        layers_per_block: int,
        norm_num_groups: int,
        act_fn: str = "silu",
        mid_block_attention: bool = True,
        cross_attention_depth: int = 0,
        num_attention_heads: int = 4,
        num_context_frames: int = 1,
    ):
        super().__init__()
        num_levels = len(block_out_channels)
        self.conv_in = nn.Conv2d(in_channels, block_out_channels[0], kernel_size=3, padding=1)
        self.down_blocks = nn.ModuleList()
        out_ch = block_out_channels[0]
        for i, channels in enumerate(block_out_channels):
            in_ch, out_ch = out_ch, channels
            self.down_blocks.append(
                get_down_block(
                    "DownEncoderBlock2D",
                    num_layers=layers_per_block,
                    in_channels=in_ch,
                    out_channels=out_ch,
                    add_downsample=i < num_levels - 1,
                    resnet_eps=1e-6,
                    downsample_padding=0,
                    resnet_act_fn=act_fn,
                    resnet_groups=norm_num_groups,
                    attention_head_dim=out_ch,
                    temb_channels=None,
                )
            )
        self.mid_block = UNetMidBlock2D(
            in_channels=block_out_channels[-1],
            resnet_eps=1e-6,
            resnet_act_fn=act_fn,
            output_scale_factor=1,
            resnet_time_scale_shift="default",
            attention_head_dim=block_out_channels[-1],
            resnet_groups=norm_num_groups,
            temb_channels=None,
            add_attention=mid_block_attention,
        )
        self.conv_norm_out = nn.GroupNorm(norm_num_groups, block_out_channels[-1], eps=1e-6)
        self.conv_act = nn.SiLU()
        self.conv_out = nn.Conv2d(block_out_channels[-1], out_channels, kernel_size=3, padding=1)

        # Stride exponent after down block i is min(i + 1, L - 1): cross-attend at the coarsest ones.
        depth = _num_cross_attention_levels(num_levels, cross_attention_depth)
        self.cross_attention_blocks = [
            i for i in range(num_levels) if depth and min(i + 1, num_levels - 1) >= num_levels - depth
        ]
        self.cross_attentions = nn.ModuleDict(
            {
                str(i): ContextCrossAttention(
                    block_out_channels[i], num_attention_heads, num_context_frames, norm_num_groups
                )
                for i in self.cross_attention_blocks
            }
        )

    def forward(
        self,
        sample: torch.Tensor,
        context_features: list[torch.Tensor] | None = None,
        return_features: bool = False,
    ):
        """`sample` [N, C, H, W]. `context_features[i]` [B, Tc, C_i, h_i, w_i] with N = B * Tf.

        Returns the latent [N, out_channels, H/f, W/f] and, with `return_features`, the list of
        feature maps after each down block.
        """
        features = []
        sample = self.conv_in(sample)
        for i, block in enumerate(self.down_blocks):
            sample = block(sample)
            if str(i) in self.cross_attentions:
                sample = self.cross_attentions[str(i)](sample, context_features[i])
            if return_features:
                features.append(sample)
        sample = self.mid_block(sample)
        sample = self.conv_out(self.conv_act(self.conv_norm_out(sample)))
        return (sample, features) if return_features else sample


class PatchEncoder(nn.Module):
    """Image -> latent map in which each latent sees only its own `patch_size x patch_size` patch.

    The frame encoder's 3x3 convolutions, GroupNorm and mid-block attention let every code react to
    pixels far away, so a static region's codes change when something moves nearby; a world model
    must then predict that reaction. Here every patch goes through the same MLP on its own pixels
    (pixel-unshuffle, then per-position layers with LayerNorm over channels), so identical pixels
    always give identical codes.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        patch_size: int,
        hidden_channels: int,
        num_layers: int,
        act_fn: str = "silu",
    ):
        super().__init__()
        self.patch_size = patch_size
        self.proj_in = nn.Linear(in_channels * patch_size * patch_size, hidden_channels)
        self.blocks = nn.ModuleList(
            nn.Sequential(
                nn.LayerNorm(hidden_channels),
                nn.Linear(hidden_channels, 4 * hidden_channels),
                get_activation(act_fn),
                nn.Linear(4 * hidden_channels, hidden_channels),
            )
            for _ in range(num_layers)
        )
        self.norm_out = nn.LayerNorm(hidden_channels)
        self.proj_out = nn.Linear(hidden_channels, out_channels)

    def forward(self, sample: torch.Tensor) -> torch.Tensor:
        """`sample` [N, C, H, W] -> latent [N, out_channels, H/p, W/p]."""
        patches = F.pixel_unshuffle(sample, self.patch_size)  # [N, C*p*p, h, w]
        n, _, h, w = patches.shape
        x = self.proj_in(patches.flatten(2).transpose(1, 2))  # [N, h*w, hidden]
        for block in self.blocks:
            x = x + block(x)
        x = self.proj_out(self.norm_out(x))
        return x.transpose(1, 2).reshape(n, -1, h, w)


class FrameDecoder(nn.Module):
    """Latent map -> image (diffusers VAE decoder layout), optionally cross-attending to another
    decoder's features after the mid block and the up blocks at the coarsest strides."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        block_out_channels: list[int],
        layers_per_block: int,
        norm_num_groups: int,
        act_fn: str = "silu",
        mid_block_attention: bool = True,
        cross_attention_depth: int = 0,
        num_attention_heads: int = 4,
        num_context_frames: int = 1,
    ):
        super().__init__()
        num_levels = len(block_out_channels)
        reversed_channels = list(reversed(block_out_channels))
        self.conv_in = nn.Conv2d(in_channels, reversed_channels[0], kernel_size=3, padding=1)
        self.mid_block = UNetMidBlock2D(
            in_channels=reversed_channels[0],
            resnet_eps=1e-6,
            resnet_act_fn=act_fn,
            output_scale_factor=1,
            resnet_time_scale_shift="default",
            attention_head_dim=reversed_channels[0],
            resnet_groups=norm_num_groups,
            temb_channels=None,
            add_attention=mid_block_attention,
        )
        self.up_blocks = nn.ModuleList()
        out_ch = reversed_channels[0]
        for i, channels in enumerate(reversed_channels):
            prev_ch, out_ch = out_ch, channels
            self.up_blocks.append(
                get_up_block(
                    "UpDecoderBlock2D",
                    num_layers=layers_per_block + 1,
                    in_channels=prev_ch,
                    out_channels=out_ch,
                    prev_output_channel=prev_ch,
                    add_upsample=i < num_levels - 1,
                    resnet_eps=1e-6,
                    resnet_act_fn=act_fn,
                    resnet_groups=norm_num_groups,
                    attention_head_dim=out_ch,
                    temb_channels=None,
                    resnet_time_scale_shift="group",
                )
            )
        self.conv_norm_out = nn.GroupNorm(norm_num_groups, block_out_channels[0], eps=1e-6)
        self.conv_act = nn.SiLU()
        self.conv_out = nn.Conv2d(block_out_channels[0], out_channels, kernel_size=3, padding=1)

        # Feature index 0 is the mid block (stride exponent L-1); index i+1 is up block i, whose
        # output (after its upsampler) has stride exponent L-2-i (0 for the last block).
        depth = _num_cross_attention_levels(num_levels, cross_attention_depth)
        strides = [num_levels - 1] + [max(num_levels - 2 - i, 0) for i in range(num_levels)]
        channels_at = [reversed_channels[0]] + reversed_channels
        self.cross_attention_blocks = [
            j for j, s in enumerate(strides) if depth and s >= num_levels - depth
        ]
        self.cross_attentions = nn.ModuleDict(
            {
                str(j): ContextCrossAttention(
                    channels_at[j], num_attention_heads, num_context_frames, norm_num_groups
                )
                for j in self.cross_attention_blocks
            }
        )

    def forward(
        self,
        sample: torch.Tensor,
        context_features: list[torch.Tensor] | None = None,
        return_features: bool = False,
    ):
        """`sample` [N, C, h, w] -> image [N, out_channels, h*f, w*f] (and the feature list)."""
        features = []
        sample = self.conv_in(sample)
        sample = self.mid_block(sample)
        if "0" in self.cross_attentions:
            sample = self.cross_attentions["0"](sample, context_features[0])
        if return_features:
            features.append(sample)
        for i, block in enumerate(self.up_blocks):
            sample = block(sample)
            if str(i + 1) in self.cross_attentions:
                sample = self.cross_attentions[str(i + 1)](sample, context_features[i + 1])
            if return_features:
                features.append(sample)
        sample = self.conv_out(self.conv_act(self.conv_norm_out(sample)))
        return (sample, features) if return_features else sample


def build_fsq(levels: list[int], dim: int) -> FSQ:
    """FSQ quantiser built on CPU even inside transformers' meta-device init (its constructor calls
    `.item()`); its non-persistent buffers are rebuilt by `reset_fsq_buffers` after loading."""
    with torch.device("cpu"):
        fsq = FSQ(levels=list(levels), dim=dim)
    fsq.levels_list = list(levels)
    return fsq


@torch.no_grad()
def reset_fsq_buffers(fsq: FSQ) -> None:
    levels = fsq.levels_list
    device = fsq._levels.device
    fsq._levels.copy_(torch.tensor(levels, dtype=torch.int32, device=device))
    basis = torch.cumprod(torch.tensor([1] + levels[:-1], device=device), dim=0, dtype=torch.int32)
    fsq._basis.copy_(basis)
    fsq.implicit_codebook.copy_(fsq._indices_to_codes(torch.arange(fsq.codebook_size, device=device)))


def init_tokenizer_weights(module) -> None:
    """PyTorch's default initialisation (what the diffusers blocks are designed for), zero-initialised
    cross-attention outputs, and rebuilt FSQ buffers."""
    if isinstance(module, FSQ):
        reset_fsq_buffers(module)
    elif isinstance(module, ContextCrossAttention):
        init.zeros_(module.to_out.weight)
        init.zeros_(module.to_out.bias)
        init.zeros_(module.frame_embedding)
    elif isinstance(module, (torch.nn.Linear, torch.nn.Conv2d, torch.nn.GroupNorm, torch.nn.LayerNorm)):
        module.reset_parameters()
