"""Compressive VQGAN+FSQ visual tokenizer (context-conditioned, for multi-step world models).

A clip is split into `num_context_frames` context frames followed by future frames.

* Context frames are tokenised like the per-frame tokenizer but at a finer grid (`H/f x W/f`,
  e.g. /8: 256x320 -> 32x40 = 1280 tokens) with their own FSQ codebook.
* Each future frame is encoded by a second encoder whose coarsest feature maps cross-attend to
  the context encoder's feature maps; its latent grid is cut into `p x p` patches and each patch
  is quantised by a second FSQ codebook into one token (4x4 patches: 8x10 = 80 tokens at 256x320).
  The future tokens only need to carry what changed with respect to the context.
* The context codes are decoded by a context decoder; each future frame's tokens are un-patchified
  and decoded by a future decoder that cross-attends to the context decoder's feature maps.

The context features are computed once and kept in a [`ContextCache`], so a multi-step rollout
encodes/decodes each new frame without re-running the context networks
(`encode_context` / `context_from_codes` -> `encode_future` / `decode_future`).

Pixels are `[0, 1]` floats at the API; the networks see `[-1, 1]`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from transformers import PreTrainedModel
from transformers.utils import ModelOutput

from .blocks import FrameDecoder, FrameEncoder, build_fsq, init_tokenizer_weights
from .configuration_compressive_vqgan_fsq import CompressiveVQGANFSQConfig


@dataclass
class ContextCache:
    """What the future-frame networks need from the context frames.

    Attributes:
        codes: `[B, Tc, h, w]` context codes.
        encoder_features: per encoder level, `[B, Tc, C, h_i, w_i]` (None where no cross-attention
            reads it); needed by `encode_future`. Only set by `encode_context`.
        decoder_features: per decoder level (mid block first), likewise; needed by `decode_future`.
            Filled on first use from `codes` and then reused.
        reconstruction: `[B, Tc, C, H, W]` the decoded context frames (filled with the decoder
            features).
    """

    codes: torch.LongTensor
    encoder_features: list[torch.Tensor | None] | None = None
    decoder_features: list[torch.Tensor | None] | None = None
    reconstruction: torch.Tensor | None = None

    def repeat_interleave(self, repeats: int) -> ContextCache:
        """Repeat every sample `repeats` times along the batch (e.g. G rollouts of one prompt)."""

        def rep(t):
            return None if t is None else t.repeat_interleave(repeats, dim=0)

        return ContextCache(
            codes=rep(self.codes),
            encoder_features=None if self.encoder_features is None else [rep(f) for f in self.encoder_features],
            decoder_features=None if self.decoder_features is None else [rep(f) for f in self.decoder_features],
            reconstruction=rep(self.reconstruction),
        )


@dataclass
class CompressiveVQGANFSQOutput(ModelOutput):
    """Output of [`CompressiveVQGANFSQModel.forward`].

    Args:
        loss: the (optionally pixel-weighted) L1 reconstruction loss over all frames.
        reconstruction: `[B, T, C, H, W]` reconstructed frames (context first; unclamped).
        context_codes: `[B, Tc, H/f, W/f]`.
        future_codes: `[B, T - Tc, H/(f p), W/(f p)]`.
    """

    loss: torch.FloatTensor | None = None
    reconstruction: torch.FloatTensor | None = None
    context_codes: torch.LongTensor | None = None
    future_codes: torch.LongTensor | None = None


class CompressiveVQGANFSQPreTrainedModel(PreTrainedModel):
    config_class = CompressiveVQGANFSQConfig
    base_model_prefix = "tokenizer"
    main_input_name = "pixel_values"
    supports_gradient_checkpointing = False

    def _init_weights(self, module):
        init_tokenizer_weights(module)


class CompressiveVQGANFSQModel(CompressiveVQGANFSQPreTrainedModel):
    """Context frames -> many tokens; future frames -> few tokens conditioned on the context."""

    def __init__(self, config: CompressiveVQGANFSQConfig):
        super().__init__(config)
        common = dict(
            block_out_channels=config.block_out_channels,
            layers_per_block=config.layers_per_block,
            norm_num_groups=config.norm_num_groups,
            act_fn=config.act_fn,
            mid_block_attention=config.mid_block_attention,
        )
        conditioning = dict(
            cross_attention_depth=config.cross_attention_depth,
            num_attention_heads=config.num_attention_heads,
            num_context_frames=config.num_context_frames,
        )
        latent, p = config.latent_channels, config.patch_size

        # context path: frame -> latent grid -> FSQ (codebook 1) -> frame
        self.context_encoder = FrameEncoder(config.in_channels, latent, **common)
        self.context_quantizer = build_fsq(config.context_fsq_levels, dim=latent)
        self.context_decoder = FrameDecoder(latent, config.in_channels, **common)

        # future path: frame (x-attn to context encoder) -> latent grid -> p x p patches -> FSQ
        # (codebook 2, with its own projections) -> un-patchify -> frame (x-attn to context decoder)
        self.future_encoder = FrameEncoder(config.in_channels, latent, **common, **conditioning)
        self.future_quantizer = build_fsq(config.future_fsq_levels, dim=latent * p * p)
        self.future_decoder = FrameDecoder(latent, config.in_channels, **common, **conditioning)

        self.post_init()

    # ----------------------------------------------------------------------------------- helpers
    @property
    def context_codebook_size(self) -> int:
        return self.config.context_codebook_size

    @property
    def future_codebook_size(self) -> int:
        return self.config.future_codebook_size

    def _flatten_frames(self, frames: torch.Tensor) -> torch.Tensor:
        if frames.ndim != 5:
            raise ValueError(f"expected frames [B, T, C, H, W], got {tuple(frames.shape)}")
        c, h, w = frames.shape[-3:]
        f = self.config.future_downsample_factor
        if c != self.config.in_channels or h % f or w % f:
            raise ValueError(
                f"frames of {c}x{h}x{w}: need {self.config.in_channels} channels and a height and width "
                f"divisible by downsampling x patch size = {f}"
            )
        return frames.reshape(-1, c, h, w).to(self.dtype) * 2 - 1

    @staticmethod
    def _split(t: torch.Tensor, batch: int) -> torch.Tensor:
        return t.reshape(batch, t.shape[0] // batch, *t.shape[1:])

    def _keep(self, features: list[torch.Tensor], used: list[int], batch: int) -> list[torch.Tensor | None]:
        """Keep only the levels some cross-attention reads, as [B, Tc, C, h, w]."""
        return [self._split(f, batch) if i in used else None for i, f in enumerate(features)]

    def _check_codes(self, codes: torch.Tensor, size: int, name: str) -> None:
        if codes.numel() and (codes.min() < 0 or codes.max() >= size):
            raise ValueError(f"{name} codes must lie in [0, {size}), got [{codes.min()}, {codes.max()}]")

    # ---------------------------------------------------------------------------- context frames
    def _encode_context(self, frames: torch.Tensor) -> tuple[torch.Tensor, ContextCache]:
        batch = frames.shape[0]
        latents, features = self.context_encoder(self._flatten_frames(frames), return_features=True)
        quantized, codes = self.context_quantizer(latents)
        cache = ContextCache(
            codes=self._split(codes.long(), batch),
            encoder_features=self._keep(features, self.future_encoder.cross_attention_blocks, batch),
        )
        return quantized, cache

    def _decode_context(self, quantized: torch.Tensor, cache: ContextCache) -> ContextCache:
        batch = cache.codes.shape[0]
        out, features = self.context_decoder(quantized, return_features=True)
        cache.decoder_features = self._keep(features, self.future_decoder.cross_attention_blocks, batch)
        cache.reconstruction = self._split((out + 1) / 2, batch)
        return cache

    def encode_context(self, frames: torch.Tensor) -> ContextCache:
        """Context frames [B, Tc, C, H, W] in [0, 1] -> cache with `codes` [B, Tc, H/f, W/f] and the
        encoder features that `encode_future` needs."""
        return self._encode_context(frames)[1]

    def context_from_codes(self, codes: torch.LongTensor) -> ContextCache:
        """Context codes [B, Tc, h, w] -> cache with the decoder features (and decoded context frames)
        that `decode_future` needs."""
        return self.decode_context(ContextCache(codes=codes))

    def decode_context(self, cache: ContextCache) -> ContextCache:
        """Fill `cache.decoder_features` and `cache.reconstruction` from `cache.codes` (no-op if done)."""
        if cache.decoder_features is None:
            self._check_codes(cache.codes, self.context_codebook_size, "context")
            flat = cache.codes.reshape(-1, *cache.codes.shape[-2:]).long()
            quantized = self.context_quantizer.indices_to_codes(flat).to(self.dtype)
            self._decode_context(quantized, cache)
        return cache

    # ----------------------------------------------------------------------------- future frames
    def _encode_future(self, frames: torch.Tensor, context: ContextCache) -> tuple[torch.Tensor, torch.Tensor]:
        if context.encoder_features is None:
            raise ValueError("encode_future needs a cache from encode_context (it reads the encoder features)")
        batch = frames.shape[0]
        latents = self.future_encoder(self._flatten_frames(frames), context_features=context.encoder_features)
        patches = F.pixel_unshuffle(latents, self.config.patch_size)  # [N, D*p*p, h/p, w/p]
        quantized, codes = self.future_quantizer(patches)
        return quantized, self._split(codes.long(), batch)

    def _decode_future(self, quantized: torch.Tensor, context: ContextCache) -> torch.Tensor:
        latents = F.pixel_shuffle(quantized, self.config.patch_size)
        out = self.future_decoder(latents, context_features=context.decoder_features)
        return (out + 1) / 2

    def encode_future(self, frames: torch.Tensor, context: ContextCache) -> torch.LongTensor:
        """Future frames [B, Tf, C, H, W] -> codes [B, Tf, H/(f p), W/(f p)], given the context."""
        return self._encode_future(frames, context)[1]

    def decode_future(self, codes: torch.LongTensor, context: ContextCache) -> torch.Tensor:
        """Future codes [B, Tf, h, w] -> frames [B, Tf, C, H, W] in [0, 1]. The context decode is
        computed once and cached in `context` for the next call."""
        self.decode_context(context)
        self._check_codes(codes, self.future_codebook_size, "future")
        batch = codes.shape[0]
        flat = codes.reshape(-1, *codes.shape[-2:]).long()
        quantized = self.future_quantizer.indices_to_codes(flat).to(self.dtype)
        return self._split(self._decode_future(quantized, context).clamp(0, 1), batch)

    # ------------------------------------------------------------------------------ whole clips
    def encode(self, frames: torch.Tensor) -> tuple[torch.LongTensor, torch.LongTensor]:
        """Clip [B, T, C, H, W] -> (context codes [B, Tc, h, w], future codes [B, T-Tc, h', w'])."""
        tc = self.config.num_context_frames
        context = self.encode_context(frames[:, :tc])
        return context.codes, self.encode_future(frames[:, tc:], context)

    def decode(self, context_codes: torch.LongTensor, future_codes: torch.LongTensor) -> torch.Tensor:
        """(context codes, future codes) -> clip [B, Tc + Tf, C, H, W] in [0, 1]."""
        context = self.context_from_codes(context_codes)
        future = self.decode_future(future_codes, context)
        return torch.cat([context.reconstruction.clamp(0, 1), future], dim=1)

    def forward(
        self,
        pixel_values: torch.Tensor,
        pixel_weights: torch.Tensor | None = None,
        return_dict: bool = True,
    ) -> CompressiveVQGANFSQOutput | tuple:
        """Reconstruct the clip `pixel_values` [B, T, C, H, W] (first `num_context_frames` are the
        context). `pixel_weights` (broadcastable to [B, T, 1, H, W]) weights the L1 loss per pixel."""
        tc = self.config.num_context_frames
        if pixel_values.ndim != 5 or pixel_values.shape[1] <= tc:
            raise ValueError(f"expected [B, T > {tc}, C, H, W] clips, got {tuple(pixel_values.shape)}")
        quantized_context, context = self._encode_context(pixel_values[:, :tc])
        self._decode_context(quantized_context, context)
        quantized_future, future_codes = self._encode_future(pixel_values[:, tc:], context)
        future = self._split(self._decode_future(quantized_future, context), pixel_values.shape[0])
        recon = torch.cat([context.reconstruction, future], dim=1)
        error = (recon.float() - pixel_values.float()).abs()  # fp32 loss under autocast
        if pixel_weights is None:
            loss = error.mean()
        else:
            weights = pixel_weights.float().expand_as(error)
            loss = (error * weights).sum() / weights.sum().clamp_min(1e-8)
        out = CompressiveVQGANFSQOutput(
            loss=loss, reconstruction=recon, context_codes=context.codes, future_codes=future_codes
        )
        return out if return_dict else out.to_tuple()


__all__ = [
    "CompressiveVQGANFSQModel",
    "CompressiveVQGANFSQPreTrainedModel",
    "CompressiveVQGANFSQOutput",
    "ContextCache",
]
