"""Per-frame VQGAN+FSQ visual tokenizer.

Each frame is encoded independently by a CNN encoder (diffusers VAE layout: ResNet down blocks,
a mid block with self-attention; or, with `patch_local_encoder`, an MLP applied to each patch on
its own), quantised by finite scalar quantisation (FSQ, no codebook to
learn, no commitment loss) and decoded by the mirrored CNN decoder. A frame of `H x W` pixels
becomes `(H/f) x (W/f)` integer codes in `[0, prod(fsq_levels))`, `f = 2 ** (levels - 1)`.

Pixels are `[0, 1]` floats at the API; the networks see `[-1, 1]`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from transformers import PreTrainedModel
from transformers.utils import ModelOutput

from .blocks import (
    FrameDecoder,
    FrameEncoder,
    PatchEncoder,
    build_fsq,
    init_tokenizer_weights,
)
from .configuration_vqgan_fsq import VQGANFSQConfig


@dataclass
class VQGANFSQOutput(ModelOutput):
    """Output of [`VQGANFSQModel.forward`].

    Args:
        loss: the (optionally pixel-weighted) L1 reconstruction loss.
        reconstruction: `[B, T, C, H, W]` reconstructed frames in `[0, 1]` (not clamped, so that
            the loss has gradients everywhere; clamp for display).
        codes: `[B, T, h, w]` integer codes.
        latents: `[B, T, D, h, w]` quantised latents (straight-through).
    """

    loss: torch.FloatTensor | None = None
    reconstruction: torch.FloatTensor | None = None
    codes: torch.LongTensor | None = None
    latents: torch.FloatTensor | None = None


class VQGANFSQPreTrainedModel(PreTrainedModel):
    config_class = VQGANFSQConfig
    base_model_prefix = "tokenizer"
    main_input_name = "pixel_values"
    supports_gradient_checkpointing = False

    def _init_weights(self, module):
        init_tokenizer_weights(module)


class VQGANFSQModel(VQGANFSQPreTrainedModel):
    """Per-frame VQGAN+FSQ tokenizer: `encode` frames to codes, `decode` codes to frames."""

    def __init__(self, config: VQGANFSQConfig):
        super().__init__(config)
        if config.patch_local_encoder:
            self.encoder = PatchEncoder(
                in_channels=config.in_channels,
                out_channels=config.latent_channels,
                patch_size=config.downsample_factor,
                hidden_channels=config.block_out_channels[-1],
                num_layers=len(config.block_out_channels),
                act_fn=config.act_fn,
            )
        else:
            self.encoder = FrameEncoder(
                in_channels=config.in_channels,
                out_channels=config.latent_channels,
                block_out_channels=config.block_out_channels,
                layers_per_block=config.layers_per_block,
                norm_num_groups=config.norm_num_groups,
                act_fn=config.act_fn,
                mid_block_attention=config.mid_block_attention,
            )
        self.quantizer = build_fsq(config.fsq_levels, dim=config.latent_channels)
        self.decoder = FrameDecoder(
            in_channels=config.latent_channels,
            out_channels=config.in_channels,
            block_out_channels=config.block_out_channels,
            layers_per_block=config.layers_per_block,
            norm_num_groups=config.norm_num_groups,
            act_fn=config.act_fn,
            mid_block_attention=config.mid_block_attention,
        )
        self.post_init()

    # ----------------------------------------------------------------------------------- helpers
    @property
    def codebook_size(self) -> int:
        return self.config.codebook_size

    @property
    def downsample_factor(self) -> int:
        return self.config.downsample_factor

    def _check_frames(self, frames: torch.Tensor) -> tuple[torch.Tensor, tuple[int, ...]]:
        """Accept [B, T, C, H, W] (or [B, C, H, W]); return [N, C, H, W] and the leading shape."""
        if frames.ndim == 4:
            lead = frames.shape[:1]
        elif frames.ndim == 5:
            lead = frames.shape[:2]
        else:
            raise ValueError(f"expected frames [B, T, C, H, W] or [B, C, H, W], got {tuple(frames.shape)}")
        c, h, w = frames.shape[-3:]
        f = self.downsample_factor
        if c != self.config.in_channels or h % f or w % f:
            raise ValueError(
                f"frames of {c}x{h}x{w}: need {self.config.in_channels} channels and a height and width "
                f"divisible by the downsampling factor {f}"
            )
        return frames.reshape(-1, c, h, w), lead

    def _quantize(self, pixels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """[N, C, H, W] in [0, 1] -> quantised latents [N, D, h, w], codes [N, h, w] (long)."""
        latents = self.encoder(pixels.to(self.dtype) * 2 - 1)
        quantized, indices = self.quantizer(latents)
        return quantized, indices.long()

    def _decode_latents(self, quantized: torch.Tensor) -> torch.Tensor:
        return (self.decoder(quantized) + 1) / 2

    # ------------------------------------------------------------------------------------ public
    def encode(self, frames: torch.Tensor) -> torch.LongTensor:
        """`frames` [B, T, C, H, W] (or [B, C, H, W]) in [0, 1] -> codes [B, T, H/f, W/f] (long)."""
        pixels, lead = self._check_frames(frames)
        _, codes = self._quantize(pixels)
        return codes.reshape(*lead, *codes.shape[-2:])

    def codes_to_latents(self, codes: torch.LongTensor) -> torch.Tensor:
        """codes [..., h, w] -> quantised latents [N, D, h, w]."""
        if codes.min() < 0 or codes.max() >= self.codebook_size:
            raise ValueError(f"codes must lie in [0, {self.codebook_size}), got [{codes.min()}, {codes.max()}]")
        flat = codes.reshape(-1, *codes.shape[-2:]).long()
        return self.quantizer.indices_to_codes(flat).to(self.dtype)

    def decode(self, codes: torch.LongTensor) -> torch.Tensor:
        """codes [B, T, h, w] (or [B, h, w]) -> frames [B, T, C, h*f, w*f] in [0, 1] (clamped)."""
        lead = codes.shape[:-2]
        frames = self._decode_latents(self.codes_to_latents(codes)).clamp(0, 1)
        return frames.reshape(*lead, *frames.shape[-3:])

    def forward(
        self,
        pixel_values: torch.Tensor,
        pixel_weights: torch.Tensor | None = None,
        return_dict: bool = True,
    ) -> VQGANFSQOutput | tuple:
        """Reconstruct `pixel_values` [B, T, C, H, W] in [0, 1] through the quantiser.

        `pixel_weights` (broadcastable to [B, T, 1, H, W]) weights the L1 loss per pixel, e.g. to
        up-weight the foreground; the loss is the weighted mean.
        """
        pixels, lead = self._check_frames(pixel_values)
        quantized, codes = self._quantize(pixels)
        recon = self._decode_latents(quantized)
        recon = recon.reshape(*lead, *recon.shape[-3:])
        error = (recon.float() - pixel_values.float()).abs()  # fp32 loss under autocast
        if pixel_weights is None:
            loss = error.mean()
        else:
            weights = pixel_weights.float().expand_as(error)
            loss = (error * weights).sum() / weights.sum().clamp_min(1e-8)
        out = VQGANFSQOutput(
            loss=loss,
            reconstruction=recon,
            codes=codes.reshape(*lead, *codes.shape[-2:]),
            latents=quantized.reshape(*lead, *quantized.shape[-3:]),
        )
        return out if return_dict else out.to_tuple()


__all__ = ["VQGANFSQModel", "VQGANFSQPreTrainedModel", "VQGANFSQOutput"]
